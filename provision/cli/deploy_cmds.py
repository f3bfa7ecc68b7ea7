"""`provision deploy` and `provision rollback`: thin Typer commands over provision.workflows.deploy."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli import options as opt
from provision.cli.config_cmds import ProjectName, Profiles
from provision.cli.runner import finish, run_on_hosts, run_options

StackFiles = Annotated[Optional[list[Path]], typer.Argument(
    help="Compose files, merged in order (docker compose -f A -f B). Default: compose.yaml (or compose.yml, "
         "docker-compose.yml, docker-compose.yaml) of this folder or the nearest parent with its "
         "compose.override.yaml, else the inventory var provision_stack_file. See docs/compose.md.",
    show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy_command)
    app.command("rollback")(rollback_command)


def _stderr_log(line: str) -> None:
    """The deploy's progress lines (image transfers, rollout steps): stderr, apart from the report."""
    sys.stderr.write(line + "\n")


def deploy_command(
    files: StackFiles = None,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
    swarm: Annotated[bool, typer.Option("--swarm", help="Deploy as Swarm services from a manager "
                                                        "(after `provision swarm init`).")] = False,
    project_name: ProjectName = None,
    profile: Profiles = None,
) -> None:
    """Deploy a Compose project through the docker SDK over SSH: networks, volumes, images (shipped from
    here, pulled or built on the host), then each service reconciled by its labels with a health-gated
    rollout (the old container keeps serving when the new one fails). --check shows the plan."""
    from provision.cli.render import LiveProgress, console_for
    from provision.workflows import deploy as workflow

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    console = console_for(json_)
    from provision.workflows import stack_files

    stack = stack_files.resolve(files, inventory, limit, environ=os.environ)  # bad input: exit 4 here
    profiles = tuple(profile or ())
    if swarm:
        from provision.workflows import swarm_deploy

        loaded = swarm_deploy.load(stack.files, inventory, limit, environ=os.environ, project_name=project_name,
                                   profiles=profiles)  # bad input: exit 4 here
        _warn(stack.warnings + loaded.playbook.warnings)
        options = run_options(o, needs_become=any(t.settings.become for t in loaded.hosts))
        with LiveProgress(console, "deploy", len(loaded.hosts), names=[t.name for t in loaded.hosts]) as progress:
            options.progress = progress
            report = swarm_deploy.deploy_swarm(loaded, options, log=_stderr_log)
        finish(report, console, o, render_deploy)
        return
    loaded = workflow.load(stack.files, inventory, limit, environ=os.environ, project_name=project_name,
                           profiles=profiles)  # bad input: exit 4 here
    _warn(stack.warnings + loaded[0].warnings)
    targets = loaded[1]  # (playbook, targets, services_by_host)
    options = run_options(o, needs_become=any(t.settings.become for t in targets))
    with LiveProgress(console, "deploy", len(targets), names=[t.name for t in targets]) as progress:
        options.progress = progress
        report = workflow.run(loaded, options, environ=os.environ, log=_stderr_log)
    finish(report, console, o, render_deploy)


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        sys.stderr.write(f"provision: warning: {warning}\n")


def rollback_command(
    service: Annotated[str, typer.Argument(help="The service to return to its previous version (SERVICE or STACK/SERVICE).")],
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Return a service to the version it replaced (kept stopped as NAME.previous), health-gated like a
    deploy; running it again swaps back."""
    from provision.workflows import deploy as workflow

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=False, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)  # no --check: a rollback always acts
    report, console = run_on_hosts("rollback", o, workflow.rollback_work(service))
    finish(report, console, o, render_deploy)


def render_deploy(console, report) -> None:
    from rich.markup import escape

    for name, result in report.hosts.items():
        plan = result.extra.get("plan")
        if plan is not None:
            changes = [item for item in plan if item["action"] != "keep"]
            console.print(f"[bold]{name}[/]: {len(changes)} change(s) planned" if changes
                          else f"[bold]{name}[/]: nothing to change")
            for item in plan:
                if item["action"] == "keep":
                    console.print(f"  [dim]keep {escape(item['object'])}: {escape(item['reason'])}[/]")
                else:
                    console.print(f"  [yellow]{escape(item['object'])}[/]: {escape(item['reason'])}")
        if result.extra.get("rolled_back"):
            console.print(f"[bold]{name}[/]: [red]rolled back[/]: the new version failed, the old one keeps serving")
