"""What every host-acting command does around its workflow: turn the command line into provision.api's
Settings, call the provision.api function (the one code path shared with library callers) with live
progress, render the report and end with its exit code.

Used by the host-acting command modules (facts_cmds, docker_cmds, deploy_cmds, ops_cmds, swarm_cmds);
heavy modules are imported inside the functions so that `provision --help` answers fast.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import typer

from provision.cli.options import HostOptions

Renderer = Callable[[Any, Any], None]  # (console, report): a command's own output before the recap


def ask_become_password() -> str:
    """-K: the sudo password, prompted (never echoed); asked by provision.api only when a host needs it and
    $PROVISION_BECOME_PASSWORD is not set."""
    import getpass

    return getpass.getpass("BECOME password: ")


def api_settings(o: HostOptions, console, command_name: str):
    """provision.api.Settings from the command line: --forks, --known-hosts, --accept-new-host-keys, -K, and
    the live progress on `console`."""
    from provision import api
    from provision.cli.render import LiveProgress

    return api.Settings(forks=o.forks, known_hosts=o.known_hosts, accept_new_host_keys=o.accept_new_host_keys,
                        become_password=ask_become_password if o.ask_become_pass else None,
                        progress=lambda _command, names: LiveProgress(console, command_name, len(names),
                                                                        names=names))


def run_on_hosts(command_name: str, o: HostOptions, workflow: Callable[[Any], Any]):
    """Run `workflow` (a function of provision.api.Settings returning the Report: one of provision.api's, the
    same code path a library caller takes) with the settings and live progress of the command line;
    return (report, console). Bad input raises before any connection (exit 4)."""
    from provision.cli.render import console_for

    console = console_for(o.json)
    report = workflow(api_settings(o, console, command_name))
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
