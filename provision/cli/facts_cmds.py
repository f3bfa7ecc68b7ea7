"""`provision facts` and `provision run`: read what the hosts are, run an ad-hoc command on them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provision.cli import options as opt
from provision.cli.runner import finish, run_on_hosts


def register(app: typer.Typer) -> None:
    app.command("facts")(facts_command)
    app.command("run")(run_command)


# -- facts ----------------------------------------------------------------------------------
def facts_command(
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Gather facts (OS, arch, kernel, CPUs, memory, GPUs, NVIDIA driver, Docker, cloud-init) in one round trip per host.

    Read-only, so --check changes nothing either way."""
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("facts", o, lambda s: api.facts(inventory, limit=limit, check=check, settings=s))
    finish(report, console, o, render_facts)


def render_facts(console, report) -> None:
    """One row per host, short forms that fit 80 columns (`Debian 12 amd64`, `7.6 GiB`, `550.54 / CUDA 12.4`,
    the kernel without its architecture suffix); cells wrap at spaces rather than being cut. The full
    values are in --json. The systemd column shows only when some host lacks systemd."""
    from rich.table import Table
    from rich.text import Text

    from provision.cli.render import short_kernel, short_memory, short_nvidia, short_os

    rows = [(name, result.extra["facts"]) for name, result in report.hosts.items() if result.extra.get("facts")]
    if not rows:
        return
    without_systemd = any(not f.get("systemd") for _, f in rows)
    table = Table(title="facts", title_justify="left")
    columns = ["host", "os", "kernel", "cpus", "memory"] + (["systemd"] if without_systemd else []) + \
        ["docker", "gpus", "nvidia"]
    for column in columns:
        table.add_column(column, no_wrap=column in ("host", "kernel"), overflow="fold",
                         justify="right" if column in ("cpus", "gpus") else "left")
    for name, f in rows:
        docker = f.get("docker")
        cells = [name, f"{short_os(f.get('os'))} {f.get('arch') or ''}".strip(),
                 short_kernel(f.get("kernel"), f.get("arch")), str(f.get("cpus")), short_memory(f.get("memory_mib"))]
        if without_systemd:
            cells.append("yes" if f.get("systemd") else "no")
        cells += [(f"{docker['version']}" + ("" if docker.get("running") else " (stopped)") if docker else "-"),
                  str(len(f.get("gpus") or [])), short_nvidia(f.get("nvidia"))]
        table.add_row(*map(Text, cells))  # remote text, not markup
    console.print(table)


# -- run ------------------------------------------------------------------------------------
def run_command(
    command: Annotated[str, typer.Argument(help="Shell command run on each host.")],
    become: Annotated[bool, typer.Option("-b", "--become", help="Run it as root (or ansible_become_user) via sudo.")] = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Run an ad-hoc shell command on each host; show its output and exit code per host.

    With --check nothing is run (as Ansible's command module)."""
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("run", o, lambda s: api.run(inventory, command, become=become, limit=limit,
                                                                 check=check, settings=s))
    finish(report, console, o, render_output)


def render_output(console, report) -> None:
    from rich.markup import escape

    for name, result in report.hosts.items():
        if "rc" not in result.extra:
            continue
        console.print(f"[bold]{escape(name)}[/] | rc={result.extra['rc']} >>")
        for stream in ("stdout", "stderr"):
            text = result.extra[stream].rstrip("\n")
            if text:
                console.print(escape(text))
