"""The `provision` command line: the Typer app, the command modules registered on it, and main(), the
one place that turns errors into messages and exit codes. No logic lives here.

Each command lives in a command module (hosts_cmds, facts_cmds, docker_cmds, deploy_cmds, ops_cmds,
sandbox_cmds, swarm_cmds) that parses its options, calls a workflow and renders through
provision.cli.runner. Heavy modules (fabric, paramiko, docker, pydantic) are imported inside the
commands so that `provision --help` answers fast.
"""

from __future__ import annotations

import os
import sys
import threading

import typer

from provision.cli import (config_cmds, deploy_cmds, docker_cmds, facts_cmds, hosts_cmds, init_cmds, ops_cmds,
                           sandbox_cmds, swarm_cmds)

EXIT_CODES_HELP = (
    "Exit codes: 0 all hosts ok/changed, 2 a host failed, 3 a host was unreachable (and none failed), "
    "4 bad input (nothing was touched), 1 other errors, 130 interrupted (Ctrl-C; 143 for SIGTERM)."
)

app = typer.Typer(
    name="provision",
    help="Turn fresh Ubuntu/Debian machines (cloud GPU VMs above all) into container hosts, over SSH, "
    "from an Ansible inventory.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion [bash|zsh|fish|powershell]
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"provision {package_version()}")
        raise typer.Exit()


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, through the package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("provision")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print provision's version and exit."),
) -> None:
    """Turn fresh Ubuntu/Debian machines (cloud GPU VMs above all) into container hosts, over SSH,
    from an Ansible inventory."""


# `provision --help` lists the commands in this order, then the command groups in theirs.
init_cmds.register(app)  # init
hosts_cmds.register(app)  # hosts
facts_cmds.register(app)  # facts, run
docker_cmds.register_commands(app)  # verify, bootstrap
config_cmds.register(app)  # config
deploy_cmds.register(app)  # deploy, rollback
ops_cmds.register(app)  # status, logs, exec, down, prune, df, unlock
sandbox_cmds.register(app)  # sandbox up|status|down
docker_cmds.register_groups(app)  # docker install|uninstall, nvidia install
swarm_cmds.register(app)  # swarm init


# -- entry point: the one place that turns errors into messages and exit codes ---------------
def _click_exceptions():
    """Typer >= 0.2x vendors click as typer._click; older releases use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions
    return exceptions


def main(argv: list[str] | None = None) -> None:
    """The exit boundary. Interrupts: while hosts are being worked on, the first Ctrl-C/SIGTERM stops
    at step boundaries and the partial report ends with 130/143 (see workflows.fanout); otherwise,
    and at the second one, KeyboardInterrupt lands here and the process exits at once (os._exit: the
    worker threads still in flight are not waited for; what they held was released, bounded)."""
    from provision.errors import EXIT_BAD_INPUT, ProvisionError
    from provision.interrupts import INTERRUPT

    click_errors = _click_exceptions()
    if threading.current_thread() is threading.main_thread():
        INTERRUPT.install()
    try:
        code = app(args=argv, prog_name="provision", standalone_mode=False)
    except click_errors.UsageError as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except BrokenPipeError:  # output piped into head & co.
        sys.exit(0)
    except (getattr(click_errors, "Abort", typer.Abort), typer.Abort):
        sys.stderr.write("provision: aborted\n")
        sys.exit(130)
    except ProvisionError as exc:
        sys.stderr.write(f"provision: error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("provision: interrupted\n")
        _exit_now(INTERRUPT.exit_code or 128 + (INTERRUPT.raised or 2))
    sys.exit(code if isinstance(code, int) else 0)


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing more to say
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
