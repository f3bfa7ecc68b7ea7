"""The `provision` command line: the Typer app, the command modules registered on it, and main(), the
one place that turns errors into messages and exit codes. No logic lives here.

Each command lives in a command module (hosts_cmds, facts_cmds, docker_cmds, deploy_cmds, ops_cmds,
sandbox_cmds, swarm_cmds) that parses its options, calls a workflow and renders through
provision.cli.runner. Heavy modules (paramiko, docker, pydantic, rich) are imported inside the
commands so that `provision --help` answers fast.

`main()` registers only the invoked command's module when the first argument names a command
(`provision run ...` builds the `run` command's parameters, not those of all 25 commands: typer
turns every registered function's signature into click parameters before parsing anything); the root
help, completion and anything else get the whole app. `app` (the whole Typer app, for tests and
scripts/cli-reference.py) is built on first access.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

import typer

EXIT_CODES_HELP = (
    "Exit codes: 0 all hosts ok/changed, 2 a host failed, 3 a host was unreachable (and none failed), "
    "4 bad input (nothing was touched), 1 other errors, 130 interrupted (Ctrl-C; 143 for SIGTERM)."
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


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print provision's version and exit."),
) -> None:
    """Turn fresh Ubuntu/Debian machines (cloud GPU VMs above all) into container hosts, over SSH,
    from an Ansible inventory."""


# `provision --help` lists the commands in this order, then the command groups in theirs:
# (module, its registering function) in registration order, and the names each registers.
REGISTRATION = (
    ("init_cmds", "register", ("init",)),
    ("hosts_cmds", "register", ("hosts",)),
    ("facts_cmds", "register", ("facts", "run")),
    ("docker_cmds", "register_commands", ("verify", "bootstrap")),
    ("config_cmds", "register", ("config",)),
    ("deploy_cmds", "register", ("deploy", "rollback")),
    ("ops_cmds", "register", ("status", "logs", "exec", "down", "prune", "df", "unlock")),
    ("sandbox_cmds", "register", ("sandbox",)),
    ("docker_cmds", "register_groups", ("docker", "nvidia")),  # groups: docker install|uninstall, nvidia install
    ("swarm_cmds", "register", ("swarm",)),
)


def build_app(command: str | None = None) -> typer.Typer:
    """The Typer app with every command, or with only what registers `command` (a top-level name)."""
    new = typer.Typer(
        name="provision",
        help="Turn fresh Ubuntu/Debian machines (cloud GPU VMs above all) into container hosts, over SSH, "
        "from an Ansible inventory.\n\n" + EXIT_CODES_HELP,
        no_args_is_help=True,
        add_completion=True,  # --install-completion / --show-completion [bash|zsh|fish|powershell]
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    new.callback()(_root)
    for module, function, names in REGISTRATION:
        if command is None or command in names:
            getattr(importlib.import_module(f"provision.cli.{module}"), function)(new)
    return new


def _command_in(argv: list[str]) -> str | None:
    """The top-level command `argv` invokes, when its first word names one (else None: the whole app)."""
    if not argv or os.environ.get("_PROVISION_COMPLETE"):
        return None
    return argv[0] if any(argv[0] in names for _, _, names in REGISTRATION) else None


_WHOLE_APP: typer.Typer | None = None


def __getattr__(name: str):
    """`provision.cli.app.app`: the whole app, built once on first access."""
    global _WHOLE_APP
    if name == "app":
        if _WHOLE_APP is None:
            _WHOLE_APP = build_app()
        return _WHOLE_APP
    raise AttributeError(name)


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
    no_invoke = _without_invoke()
    if argv is None:  # the process's own command line: the process is ours
        _fewer_collections()
    try:
        args = sys.argv[1:] if argv is None else list(argv)
        code = build_app(_command_in(args))(args=args, prog_name="provision", standalone_mode=False)
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
    finally:
        if no_invoke and sys.modules.get("invoke", False) is None:
            del sys.modules["invoke"]
        if argv is None:  # the process's own command line: it ends now
            _quick_teardown()
    sys.exit(code if isinstance(code, int) else 0)


def _quick_teardown() -> None:
    """Move every object to the garbage collector's permanent generation before the interpreter exits:
    its final collections then skip them (they are still freed, files flushed and closed, atexit handlers
    run). The collections over everything paramiko, cryptography, typer and rich created took 0.1-0.2 s
    of every `provision` process's exit on the sandbox machine (issue 12); with this, ~35 ms."""
    import gc

    gc.freeze()


GC_THRESHOLD_0 = 100_000  # CPython's default is 700


def _fewer_collections() -> None:
    """A young-generation collection every GC_THRESHOLD_0 allocations instead of 700: importing typer,
    pydantic, paramiko and rich and building the stack models allocate a few hundred thousand objects that
    live as long as the process, and the ~100 collections over them cost 25-70 ms of a deploy no-op's
    ~0.35 s of CPU (issue 12; reference cycles are still collected, less often; the older generations'
    thresholds are unchanged)."""
    import gc

    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD_0, older, oldest)


def _without_invoke() -> bool:
    """paramiko.config imports invoke (when installed, as Fabric's dependency) only to run ssh_config's
    `Match exec`, which provision never reads (no ssh_config is read at all: executor.ssh); that import
    is about a third of paramiko's. While the command runs, `import invoke` fails, so paramiko skips it;
    undone on return (a caller of main() in the same process may import invoke afterwards)."""
    if "invoke" in sys.modules or "paramiko" in sys.modules:
        return False
    sys.modules["invoke"] = None  # type: ignore[assignment]  # `import invoke` raises ImportError
    return True


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing more to say
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
