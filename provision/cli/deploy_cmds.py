"""`provision deploy` and `provision rollback`: thin Typer commands over provision.api.deploy and api.rollback."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli import options as opt
from provision.cli.config_cmds import ProjectName, Profiles
from provision.cli.runner import finish, run_on_hosts

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
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("deploy", o, lambda s: api.deploy(
        inventory, files, limit=limit, check=check, swarm=swarm, project_name=project_name, profiles=tuple(profile or ()),
        environ=os.environ, log=_stderr_log, warn=_warn, settings=s))  # bad input: exit 4 before any connection
    finish(report, console, o, render_deploy)


def _warn(warning: str) -> None:
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
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=False, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)  # no --check: a rollback always acts
    report, console = run_on_hosts("rollback", o, lambda s: api.rollback(inventory, service, limit=limit, settings=s))
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
