"""Docker on the hosts: install (idempotent, --check), verify, uninstall, and bootstrap (facts → install → verify).

A no-op install run costs one round trip per host after connecting: the probe.
"""

from __future__ import annotations

import time

from provision import progress
from provision.commands import apt, docker_repo, docker_engine, files, system
from provision.config.host_settings import DockerSettings, docker_settings
from provision.executor.base import TIMED_OUT, Executor
from provision.facts.docker_host import DockerHostState, parse, probe
from provision.operations import docker_install as op
from provision.operations.base import Change, NoChange, Refusal
from provision.report import HostResult, StepResult
from provision.workflows.applier import Applier
from provision.workflows.host_lock import HostLock
from provision.workflows.targets import Target

WAITING_STATES = ("running", "not started", "not run")


def validate_settings(targets: list[Target]) -> None:
    """Bad docker_* vars are bad input: raise before any host is contacted."""
    for target in targets:
        docker_settings(target.name, target.hostvars)


def probe_state(executor: Executor, settings: DockerSettings, refresh: bool = False,
                record: bool = False) -> DockerHostState:
    """The host's state in one round trip. The repository key is downloaded (to compare digests) only when
    its last recorded check is older than docker_repo_key_max_age, does not match the keyring or its URL,
    or with REFRESH; RECORD (not under --check) records a download that matched the keyring."""
    env = apt.env_prefix(settings.proxy)
    max_age = 0 if refresh else settings.docker_repo_key_max_age
    script = probe(_key_url_expression(settings), env, settings.docker_users, max_age, record)
    result = executor.run(script, become=True)
    return parse(result.stdout)


def _key_url_expression(settings: DockerSettings) -> str:
    """The key URL; with the default repo the distro part is read from os-release on the host."""
    if settings.docker_gpg_url:
        return settings.docker_gpg_url
    if settings.docker_repo_url:
        return settings.docker_repo_url.rstrip("/") + "/gpg"
    return f"{docker_repo.DEFAULT_BASE}/{docker_repo.DISTRO_PLACEHOLDER}/gpg"


def install_work(check: bool, stamp: str, refresh: bool = False):
    """REFRESH: download the repository key to compare digests even if it was checked recently."""

    def work(target: Target, executor: Executor) -> HostResult:
        settings = docker_settings(target.name, target.hostvars)
        result = HostResult(target.name)
        with HostLock(executor, 'docker install', result=result, lazy=True) as lock:
            applier = Applier(executor, result, check, stamp=stamp, before_change=lock.ensure)
            progress.step("docker probe")
            state = probe_state(executor, settings, refresh, record=not check)
            applier.apply(op.preflight(state))
            if applier.failed:  # refused before any change
                return result
            if state.dpkg.needs_repair:  # a run cut mid-apt: finish and repair it first, then look again
                from provision.operations import dpkg  # here: a no-op run needs none of it (issue 12)

                applier.apply(dpkg.repair(state.dpkg, lock_timeout=settings.apt_lock_timeout,
                                          apt_timeout=settings.apt_timeout, proxy=settings.proxy))
                if applier.failed or check:
                    return result
                state = probe_state(executor, settings, refresh, record=True)
            if not check:
                _wait_cloud_init(applier, state, settings)
            conflicts = op.conflicting_packages(state, settings)
            repo = op.repository(state, settings, stamp)
            config = op.daemon_config_change(state, settings, stamp)
            if isinstance(conflicts, Change):  # plan the packages as they will be once those are removed
                state.packages = {k: v for k, v in state.packages.items() if k not in docker_repo.CONFLICTING}
            repo_ready = not isinstance(repo, Change)
            available = _available(executor, settings) if repo_ready else _index_versions(executor, state, settings)
            packages = op.packages(state, settings, available)
            if applier.refuse_before_changes([conflicts, repo, config, packages, op.users(state, settings)]):
                return result
            if not check and not applier.failed and any(isinstance(x, Change) for x in (conflicts, repo, packages)):
                _wait_dpkg_lock(applier, settings)
            applier.apply(conflicts)
            applier.apply(repo)
            config_changed = applier.apply(config)
            if not repo_ready and not check and not applier.failed:  # pins resolve once the repository is in place
                packages = op.packages(state, settings, _available(executor, settings))
            installed = applier.apply(packages)
            if installed and not check:  # the report says which versions landed
                from provision.commands import dpkg as dpkg_cmd

                versions = dpkg_cmd.parse_versions(executor.run(dpkg_cmd.versions(docker_repo.PACKAGES),
                                                                become=True).stdout)
                result.steps[-1].message += " → " + ", ".join(versions)
            applier.apply(op.hold(state, settings, installed))
            applier.apply(op.users(state, settings))
            applier.apply(op.service(state, config_changed, installed, stamp))
            if applier.notes:
                result.extra["notes"] = applier.notes
            if check:
                result.extra["plan"] = applier.plan
            return result

    return work


def _available(executor: Executor, settings: DockerSettings) -> list[str] | None:
    """docker-ce versions the repository offers (only asked when a version is pinned)."""
    if not settings.docker_version:
        return None
    return apt.parse_madison(executor.run(apt.madison("docker-ce"), become=True).stdout)


def _index_versions(executor: Executor, state: DockerHostState, settings: DockerSettings) -> list[str] | None:
    """docker-ce versions in the repository's index, read before the repository is configured, so that an
    unknown docker_version is refused before anything changes (None: not pinned, or the index is unreadable
    here, in which case apt-cache madison decides once the repository is in place)."""
    if not settings.docker_version:
        return None
    distro, suite = op.distro_and_suite(state)
    command = docker_repo.index_versions(docker_repo.repo_url(distro, settings.docker_repo_url), suite, state.arch,
                                         apt.env_prefix(settings.proxy))
    out = executor.run(command, become=True, timeout=120)
    return (docker_repo.parse_index_versions(out.stdout) or None) if out.ok else None


def _wait_cloud_init(applier: Applier, state: DockerHostState, settings: DockerSettings) -> None:
    if state.cloud_init not in WAITING_STATES:
        return
    start = time.monotonic()
    # the executor's own limit must outlast cloud-init's (provision_command_timeout is 600 s, cloud_init_timeout 900 s)
    out = applier.executor.run(system.cloud_init_wait(settings.cloud_init_timeout), become=True,
                               timeout=settings.cloud_init_timeout + 60 if settings.cloud_init_timeout else None)
    if out.exit_code == TIMED_OUT:  # `timeout` ended it, or the executor did (the same exit status)
        applier.apply(Refusal("cloud-init", f"cloud-init still running after {settings.cloud_init_timeout}s"))
    else:
        applier.ok("cloud-init", f"waited for cloud-init to finish ({out.stdout.strip() or 'done'})", start)


def _wait_dpkg_lock(applier: Applier, settings: DockerSettings) -> None:
    """Wait (up to apt_lock_timeout) for dpkg's lock; say who held it and for how long. Still held after
    that: the step fails naming the holder, before anything changed."""
    from provision.commands import host_health
    from provision.facts import host_health as health

    start = time.monotonic()
    out = applier.executor.run(host_health.wait_dpkg_lock(settings.apt_lock_timeout), become=True,
                               timeout=settings.apt_lock_timeout + 60)
    lock = health.parse_lock_wait(out.stdout)
    if lock.held:
        applier.apply(Refusal("dpkg lock", health.lock_message(lock, settings.apt_lock_timeout)))
    else:
        applier.ok("dpkg lock", health.lock_message(lock, settings.apt_lock_timeout), start)


# -- verify ---------------------------------------------------------------------------------
def verify_work(target: Target, executor: Executor) -> HostResult:
    settings = docker_settings(target.name, target.hostvars)
    result = HostResult(target.name)
    checks = [
        ("docker version", docker_engine.version()),
        ("docker info", docker_engine.info()),
        ("hello-world", docker_engine.hello(settings.verify_hello_image)),
    ]
    for name, command in checks:
        progress.step(name)
        start = time.monotonic()
        out = executor.run(command, become=True, timeout=300)
        duration = time.monotonic() - start
        result.commands.append({"step": name, "commands": [command], "output": (out.stdout + out.stderr).strip()})
        if not out.ok:
            problem = daemon_problem(target.name, executor) if name == "docker version" else None
            result.steps.append(StepResult(name, "failed", problem or f"{out.error_line()} (exit {out.exit_code})",
                                           duration))
            break
        text = out.stdout.strip()
        if name == "hello-world":
            greeted, text = docker_engine.parse_hello(out.stdout)
            if not greeted:
                result.steps.append(StepResult(name, "failed", f"unexpected output: {text}", duration))
                break
            # the evidence: the container's own greeting line, as it printed it
            text = '"' + next(line.strip() for line in out.stdout.splitlines()
                              if docker_engine.HELLO_GREETING in line) + '"'
        result.steps.append(StepResult(name, "ok", text, duration))
    return result


def daemon_problem(host: str, executor: Executor) -> str | None:
    """Asked once the engine did not answer: is Docker missing or its daemon stopped? (None: neither, or
    the units cannot be read: the caller keeps its own message.)"""
    from provision.commands import host_health
    from provision.facts import host_health as health

    out = executor.run(host_health.docker_units(), timeout=60)
    if not out.stdout.strip():
        return None
    return health.daemon_problem(host, health.parse_docker_units(out.stdout))


# -- uninstall ------------------------------------------------------------------------------
def uninstall_work(check: bool, purge_data: bool):
    def work(target: Target, executor: Executor) -> HostResult:
        settings = docker_settings(target.name, target.hostvars)
        result = HostResult(target.name)
        with HostLock(executor, 'docker uninstall', result=result, lazy=True) as lock:
            applier = Applier(executor, result, check, stamp=time.strftime("%Y%m%d%H%M%S"), before_change=lock.ensure)
            state = probe_state(executor, settings)
            present = [p for p in docker_repo.PACKAGES + ["docker-ce-rootless-extras"] if p in state.packages]
            if present:
                applier.apply(Change("docker packages", f"purging {', '.join(present)}",
                                     [apt.unhold(present, quiet=True), apt.remove(present, settings.apt_lock_timeout, purge=True)],
                                     timeout=settings.apt_timeout, detached=True))
            else:
                applier.apply(NoChange("docker packages", "not installed"))
            repo_files = [f for f, present_ in ((docker_repo.SOURCES, state.sources is not None),
                                                (docker_repo.KEYRING, state.keyring_sha is not None)) if present_]
            if repo_files:
                applier.apply(Change("docker repository", f"removing {', '.join(repo_files)}",
                                     [files.remove(*repo_files)]))
            else:
                applier.apply(NoChange("docker repository", "not configured"))
            if purge_data:
                applier.apply(Change("docker data", "deleting /var/lib/docker and /var/lib/containerd (--purge-data)",
                                     [files.remove_tree(*docker_engine.DATA_DIRS)]))
            else:
                applier.apply(NoChange("docker data", "/var/lib/docker kept (use --purge-data to delete images, "
                                                      "containers and volumes)"))
            if check:
                result.extra["plan"] = applier.plan
            return result

    return work
