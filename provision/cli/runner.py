"""What every host-acting command does around its workflow: build the run options, fan out over the
targets with live progress, render the report and end with its exit code.

Used by the host-acting command modules (facts_cmds, docker_cmds, deploy_cmds, ops_cmds, swarm_cmds);
heavy modules are imported inside the functions so that `provision --help` answers fast.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import typer

from provision.cli.options import HostOptions

Renderer = Callable[[Any, Any], None]  # (console, report): a command's own output before the recap


def become_password(ask: bool, needed: bool):
    """The sudo password: $PROVISION_BECOME_PASSWORD, else a prompt when -K was given and some host
    needs it, else None."""
    from provision.secret import Secret

    value = os.environ.get("PROVISION_BECOME_PASSWORD")
    if value:
        return Secret(value)
    if ask and needed:
        import getpass

        return Secret(getpass.getpass("BECOME password: "))
    return None


def run_options(o: HostOptions, *, needs_become: bool):
    """workflows.fanout.RunOptions from the command line: --forks, --check, --known-hosts,
    --accept-new-host-keys and -K (asked only when `needs_become`). The caller sets .progress."""
    from provision.executor.known_hosts import KnownHosts
    from provision.workflows.fanout import RunOptions

    return RunOptions(forks=o.forks, check=o.check,
                      known_hosts=KnownHosts(o.known_hosts, accept_changed=o.accept_new_host_keys),
                      become_password=become_password(o.ask_become_pass, needs_become))


def run_on_hosts(command_name: str, o: HostOptions, work, *, needs_become: bool = False):
    """Load the targets of --inventory/--limit (bad input → exit 4 before any connection), fan `work`
    out with live progress, return (report, console)."""
    from provision.cli.render import LiveProgress, console_for
    from provision.workflows.fanout import fan_out
    from provision.workflows.targets import load_targets

    targets = load_targets(o.inventory, o.limit)
    console = console_for(o.json)
    options = run_options(o, needs_become=needs_become or any(t.settings.become for t in targets))
    with LiveProgress(console, command_name, len(targets), names=[t.name for t in targets]) as progress:
        options.progress = progress
        report = fan_out(command_name, targets, work, options)
    return report, console


def finish(report, console, o: HostOptions, extra_render: Optional[Renderer] = None) -> None:
    """Render the (possibly partial) report and exit: 128+signal after an interrupt, else the report's code."""
    from provision.cli.render import emit_json, recap
    from provision.interrupts import INTERRUPT

    if extra_render:  # to the terminal, or to stderr with --json
        extra_render(console, report)
    recap(console, report, o.verbose)
    if o.json:
        emit_json(report)
    raise typer.Exit(INTERRUPT.exit_code or report.exit_code())
