"""provision as a library: the CLI's workflows as functions, for people who script their fleets.

    from provision import api

    report = api.bootstrap("inventories/prod.yml", limit="gpu")      # or an inventory NAME: "prod"
    print(report.to_dict()["summary"])                              # what `provision bootstrap --json` prints
    if report.exit_code():                                          # the CLI's exit code, as a number
        ...

Each function takes an inventory (a file or folder, or a NAME meaning inventories/NAME.yml|.yaml|.ini or
inventories/NAME/, as `--inventory`), the command's own options as keywords, and `settings` (forks, known_hosts,
the sudo password, progress): the same function the CLI command calls, so it returns the same
`provision.report.Report` whose `.to_dict()` is exactly what `--json` prints. Per-host outcomes (failed,
unreachable, skipped) are in the report, never raised; what stops a run before any host is touched raises the
project's errors (`provision.errors`): `InputError` (the CLI's exit 4: a bad inventory, option or Compose file),
`EnvironmentProblem`, `ProvisionError`. Nothing here calls sys.exit or prints (deploy's progress lines go to
`log`, warnings to `warn`).

Importing this module is light (no fabric, paramiko, docker or pydantic): they are imported when a function runs.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Mapping, Sequence

if TYPE_CHECKING:
    from provision.report import Report

__all__ = ["Settings", "facts", "run", "docker_install", "docker_uninstall", "nvidia_install", "verify", "bootstrap",
           "deploy", "rollback", "status", "logs", "exec_", "down", "prune", "df", "swarm_init", "run_work",
           "backup_stamp"]

Inventory = str | os.PathLike
Line = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How a run reaches the hosts: the CLI's -f, --known-hosts, --accept-new-host-keys, -K.

    become_password: the sudo password (a str); else $PROVISION_BECOME_PASSWORD; else, when it is a function,
    it is called (once, and only when a selected host uses become) and returns it; else none (`sudo -n`).
    progress: a function (command, the host names) returning a context manager that yields an object with
    host_started(name) and host_finished(result) (the CLI's live progress); default: nothing is shown."""

    forks: int = 10
    known_hosts: str | os.PathLike | None = None  # default: $PROVISION_KNOWN_HOSTS, $PROVISION_HOME/, ~/.provision/
    accept_new_host_keys: bool = False
    become_password: str | Callable[[], str] | None = None
    progress: Callable[[str, list[str]], ContextManager[Any]] | None = None


DEFAULT_SETTINGS = Settings()


def backup_stamp() -> str:
    """Suffix of the backups the stages write (FILE.provision-bak-<stamp>): the local time of the run."""
    import datetime

    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


# -- the one path every workflow takes ----------------------------------------------------------
def _become_password(value, needed: bool):
    from provision.secret import Secret

    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    from_env = os.environ.get("PROVISION_BECOME_PASSWORD")
    if from_env:
        return Secret(from_env)
    if callable(value) and needed:
        return Secret(value())
    return None


def _run_options(settings: Settings, check: bool, needs_become: bool):
    from provision.executor.known_hosts import KnownHosts, default_path
    from provision.workflows.fanout import RunOptions

    path = Path(settings.known_hosts) if settings.known_hosts is not None else default_path()
    return RunOptions(forks=settings.forks, check=check,
                      known_hosts=KnownHosts(path, accept_changed=settings.accept_new_host_keys),
                      become_password=_become_password(settings.become_password, needs_become))


def _progress(settings: Settings, command: str, names: list[str]) -> ContextManager[Any]:
    return settings.progress(command, names) if settings.progress else nullcontext(None)


def _inventory_path(inventory: Inventory) -> Path:
    """A path, or a NAME for inventories/NAME.yml|.yaml|.ini or inventories/NAME/ (as --inventory)."""
    from provision.config import inventory_path

    if isinstance(inventory, str) and not inventory.strip():
        from provision.errors import InputError

        raise InputError("the inventory path is empty")
    return inventory_path.resolve(inventory)


def _targets(inventory: Inventory, limit: str | None):
    from provision.workflows.targets import load_targets

    return load_targets(_inventory_path(inventory), limit)  # bad input: InputError before any connection


def run_work(command: str, inventory: Inventory, work, *, limit: str | None = None, check: bool = False,
             needs_become: bool = False, settings: Settings | None = None, targets=None) -> "Report":
    """The low-level path: load the targets (or take `targets`), fan `work` (target, executor) -> HostResult out
    over them, return the Report. Every function below ends here."""
    from provision.workflows.fanout import fan_out

    settings = settings or DEFAULT_SETTINGS
    targets = _targets(inventory, limit) if targets is None else targets
    options = _run_options(settings, check, needs_become or any(t.settings.become for t in targets))
    with _progress(settings, command, [t.name for t in targets]) as progress:
        if progress is not None:
            options.progress = progress
        return fan_out(command, targets, work, options)


def _stage_targets(inventory: Inventory, limit: str | None):
    """The targets of docker/nvidia/verify/bootstrap, their docker_*/nvidia_* vars validated (InputError)."""
    from provision.config.host_settings import docker_settings, nvidia_settings  # not the workflows: lighter

    targets = _targets(inventory, limit)
    for target in targets:
        docker_settings(target.name, target.hostvars)
    for target in targets:
        nvidia_settings(target.name, target.hostvars)
    return targets


# -- facts, run ---------------------------------------------------------------------------------
def facts(inventory: Inventory, *, limit: str | None = None, check: bool = False,
          settings: Settings | None = None) -> "Report":
    """`provision facts`: each host's facts under report.hosts[NAME].extra["facts"]."""
    from provision.workflows import facts as workflow

    return run_work("facts", inventory, workflow.gather, limit=limit, check=check, settings=settings)


def run(inventory: Inventory, command: str, *, become: bool = False, limit: str | None = None, check: bool = False,
        settings: Settings | None = None) -> "Report":
    """`provision run`: a shell command on each host; rc, stdout and stderr in each host's extra."""
    from provision.workflows.adhoc import run_command

    return run_work("run", inventory, run_command(command, become=become, check=check), limit=limit, check=check,
                    needs_become=become, settings=settings)


# -- host setup -----------------------------------------------------------------------------------
def docker_install(inventory: Inventory, *, limit: str | None = None, check: bool = False, refresh: bool = False,
                   settings: Settings | None = None) -> "Report":
    """`provision docker install [--refresh]`."""
    from provision.workflows.docker import install_work

    return run_work("docker install", inventory, install_work(check, backup_stamp(), refresh), check=check, needs_become=True,
                    settings=settings, targets=_stage_targets(inventory, limit))


def docker_uninstall(inventory: Inventory, *, purge_data: bool = False, limit: str | None = None,
                     check: bool = False, settings: Settings | None = None) -> "Report":
    """`provision docker uninstall [--purge-data]`."""
    from provision.workflows.docker import uninstall_work

    return run_work("docker uninstall", inventory, uninstall_work(check, purge_data), check=check, needs_become=True,
                    settings=settings, targets=_stage_targets(inventory, limit))


def nvidia_install(inventory: Inventory, *, reboot: bool = False, limit: str | None = None, check: bool = False,
                   refresh: bool = False, settings: Settings | None = None) -> "Report":
    """`provision nvidia install [--reboot] [--refresh]`."""
    from provision.workflows.nvidia import install_work

    return run_work("nvidia install", inventory, install_work(check, backup_stamp(), reboot, refresh), check=check,
                    needs_become=True, settings=settings, targets=_stage_targets(inventory, limit))


def verify(inventory: Inventory, *, limit: str | None = None, check: bool = False, deep: bool = False,
           settings: Settings | None = None) -> "Report":
    """`provision verify [--deep]`."""
    from provision.workflows.bootstrap import verify_work

    return run_work("verify", inventory, verify_work(check, deep), check=check, needs_become=True, settings=settings,
                    targets=_stage_targets(inventory, limit))


def bootstrap(inventory: Inventory, *, reboot: bool = False, limit: str | None = None, check: bool = False,
              refresh: bool = False, settings: Settings | None = None) -> "Report":
    """`provision bootstrap [--reboot] [--refresh]`: facts → docker install → NVIDIA stage (GPU hosts) → verify."""
    from provision.workflows.bootstrap import bootstrap_work

    return run_work("bootstrap", inventory, bootstrap_work(check, backup_stamp(), reboot, refresh), check=check,
                    needs_become=True, settings=settings, targets=_stage_targets(inventory, limit))


def swarm_init(inventory: Inventory, *, limit: str | None = None, check: bool = False,
               settings: Settings | None = None) -> "Report":
    """`provision swarm init`."""
    from provision.workflows import swarm

    settings = settings or DEFAULT_SETTINGS
    targets = swarm.load_swarm_targets(_inventory_path(inventory), limit)  # bad input before any connection
    options = _run_options(settings, check, True)
    with _progress(settings, "swarm init", [t.name for t in targets]) as progress:
        if progress is not None:
            options.progress = progress
        return swarm.init_swarm(targets, options)


# -- deploy -----------------------------------------------------------------------------------------
def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, stacklevel=3)


def deploy(inventory: Inventory, files: Sequence[str | os.PathLike] | None = None, *, limit: str | None = None,
           check: bool = False, swarm: bool = False, project_name: str | None = None, profiles: Sequence[str] = (),
           environ: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
           log: Line | None = None, warn: Line | None = None, settings: Settings | None = None) -> "Report":
    """`provision deploy [FILE...]`: with no files, Compose's default files of `cwd` (default: the current folder)
    or its nearest parent, else the inventory var provision_stack_file. `environ` (default os.environ) is what
    ${VAR} interpolation and Compose secrets read. Progress lines go to `log`, the Compose file's warnings to
    `warn` (default: warnings.warn)."""
    from provision.workflows import stack_files

    settings = settings or DEFAULT_SETTINGS
    inventory = _inventory_path(inventory)
    environ = os.environ if environ is None else environ
    log = log or (lambda line: None)
    warn = warn or _warn
    given = [Path(f) for f in files] if files else None
    stack = stack_files.resolve(given, inventory, limit, cwd=Path(cwd) if cwd else None, environ=environ)
    if swarm:
        from provision.workflows import swarm_deploy

        loaded = swarm_deploy.load(stack.files, inventory, limit, environ=environ, project_name=project_name,
                                   profiles=tuple(profiles))
        for warning in stack.warnings + loaded.playbook.warnings:
            warn(warning)
        options = _run_options(settings, check, any(t.settings.become for t in loaded.hosts))
        with _progress(settings, "deploy", [t.name for t in loaded.hosts]) as progress:
            if progress is not None:
                options.progress = progress
            return swarm_deploy.deploy_swarm(loaded, options, log=log)
    from provision.workflows import deploy as workflow

    loaded = workflow.load(stack.files, inventory, limit, environ=environ, project_name=project_name,
                           profiles=tuple(profiles))  # (playbook, targets, services_by_host)
    for warning in stack.warnings + loaded[0].warnings:
        warn(warning)
    targets = loaded[1]
    options = _run_options(settings, check, any(t.settings.become for t in targets))
    with _progress(settings, "deploy", [t.name for t in targets]) as progress:
        if progress is not None:
            options.progress = progress
        return workflow.run(loaded, options, environ=environ, log=log)


def rollback(inventory: Inventory, service: str, *, limit: str | None = None,
             settings: Settings | None = None) -> "Report":
    """`provision rollback SERVICE` (SERVICE or STACK/SERVICE)."""
    from provision.workflows.deploy import rollback_work

    return run_work("rollback", inventory, rollback_work(service), limit=limit, settings=settings)


# -- day 2 --------------------------------------------------------------------------------------------
def status(inventory: Inventory, *, stack: str | None = None, limit: str | None = None,
           settings: Settings | None = None) -> "Report":
    """`provision status [--stack S]`: the deployed containers per host."""
    from provision.workflows.ops import status_work

    return run_work("status", inventory, status_work(stack), limit=limit, settings=settings)


def logs(inventory: Inventory, service: str, *, tail: int | None = 100, replica: int | None = None,
         limit: str | None = None, settings: Settings | None = None) -> "Report":
    """`provision logs SERVICE [--tail N]` (not --follow: a library reads the report)."""
    from provision.workflows.ops import logs_work

    return run_work("logs", inventory, logs_work(service, tail=tail, replica=replica), limit=limit,
                    settings=settings)


def exec_(inventory: Inventory, service: str, argv: Sequence[str], *, replica: int | None = None,
          limit: str | None = None, settings: Settings | None = None) -> "Report":
    """`provision exec SERVICE -- CMD...` (named exec_ so as not to shadow Python's built-in exec)."""
    from provision.workflows.ops import exec_work

    return run_work("exec", inventory, exec_work(service, list(argv), replica), limit=limit, settings=settings)


def down(inventory: Inventory, *, stack: str | None = None, volumes: bool = False, limit: str | None = None,
         check: bool = False, settings: Settings | None = None) -> "Report":
    """`provision down [--stack S] [--volumes]`."""
    from provision.workflows.ops import down_work

    return run_work("down", inventory, down_work(stack, volumes, check), limit=limit, check=check, settings=settings)


def prune(inventory: Inventory, *, all: bool = False, limit: str | None = None,
          settings: Settings | None = None) -> "Report":
    """`provision prune [--all]` (calling it with all=True is the confirmation the CLI asks for)."""
    from provision.workflows.ops import prune_work

    return run_work("prune", inventory, prune_work(all), limit=limit, settings=settings)


def df(inventory: Inventory, *, limit: str | None = None, settings: Settings | None = None) -> "Report":
    """`provision df`: Docker's disk usage per host."""
    from provision.workflows.ops import df_work

    return run_work("df", inventory, df_work, limit=limit, settings=settings)
