"""Install Docker Engine the way docs.docker.com does, idempotently.

Each function takes the probed host state and the settings and returns a Change (the commands
needed and why) or a NoChange (why nothing is needed). The same plan serves --check.
"""

from __future__ import annotations

from provision.commands import apt, daemon_json, docker_repo, files, system
from provision.commands.files import write_file
from provision.config.host_settings import DockerSettings
from provision.facts.docker_host import DockerHostState, daemon_config
from provision.operations.base import Change, NoChange, Refusal, age
from provision.redaction import holds_secrets, redact_json_text


def distro_and_suite(state: DockerHostState) -> tuple[str, str]:
    return state.os_id, state.codename


def preflight(state: DockerHostState) -> NoChange | Refusal:
    releases = docker_repo.SUPPORTED.get(state.os_id)
    label = f"{state.os_id or 'unknown OS'} {state.version_id}".strip()
    if releases is None or state.version_id not in releases:
        supported = "; ".join(f"{d} {', '.join(v)}" for d, v in docker_repo.SUPPORTED.items())
        return Refusal("preflight", f"{label} is not supported (supported: {supported}); nothing was changed")
    if state.arch not in docker_repo.ARCHES:
        return Refusal("preflight", f"architecture {state.arch or '?'} is not supported (amd64, arm64); nothing was changed")
    if not state.systemd:
        return Refusal("preflight", "systemd is not running (PID 1): the docker service cannot be managed; nothing was changed")
    if state.snap_docker:
        return Refusal("preflight", "Docker is installed as a snap, which conflicts with docker-ce: remove it first "
                                    "(`snap remove docker`; its data goes with it); nothing was changed")
    return NoChange("preflight", f"{label} ({state.codename}, {state.arch}) is supported")


def conflicting_packages(state: DockerHostState, settings: DockerSettings) -> Change | NoChange:
    present = [p for p in docker_repo.CONFLICTING if p in state.packages]
    if not present:
        return NoChange("conflicting packages", "none installed")
    return Change("conflicting packages",
                  f"removing {', '.join(present)} (Docker from other sources; /var/lib/docker is kept)",
                  [apt.remove(present, settings.apt_lock_timeout)], timeout=settings.apt_timeout, detached=True)


def repository(state: DockerHostState, settings: DockerSettings, stamp: str) -> Change | NoChange | Refusal:
    distro, suite = distro_and_suite(state)
    key_url = docker_repo.gpg_url(distro, settings.docker_gpg_url, settings.docker_repo_url)
    wanted_sources = docker_repo.sources_content(distro, suite, state.arch, settings.docker_repo_url)
    env = apt.env_prefix(settings.proxy)
    commands: list[str] = []
    undo: list[str] = []
    what: list[str] = []
    record = False
    if state.stale_files:
        commands.append(docker_repo.remove_stale_files(state.stale_files))
        what.append(f"removed stale definitions {', '.join(state.stale_files)}")
    if state.remote_key_sha is None:
        return Refusal("docker repository", f"cannot fetch the repository key {key_url}: {state.remote_key_error}")
    if state.keyring_sha != state.remote_key_sha:
        if state.keyring_sha:
            commands.append(files.backup(docker_repo.KEYRING, stamp))
            undo.append(files.restore(docker_repo.KEYRING, stamp))
        else:
            undo.append(files.remove(docker_repo.KEYRING))
        commands.append(docker_repo.fetch_key(key_url, docker_repo.KEYRING, env))
        what.append(f"key {key_url} → {docker_repo.KEYRING}")
        record = True
    diff = ""
    if state.sources != wanted_sources:
        commands.append(write_file(docker_repo.SOURCES, wanted_sources, backup=state.sources is not None, stamp=stamp))
        if state.sources is not None:
            undo.append(files.restore(docker_repo.SOURCES, stamp))
        else:
            undo.append(files.remove(docker_repo.SOURCES))
        what.append(f"{docker_repo.SOURCES} ({repo_label(distro, settings)} {suite} stable)")
        diff = daemon_json.diff(state.sources, wanted_sources).replace(daemon_json.PATH, docker_repo.SOURCES)
    if not commands:
        return NoChange("docker repository", f"{docker_repo.SOURCES} and {docker_repo.KEYRING} up to date"
                                             f"{key_check_note(state)}")
    commands.append(apt.update(settings.apt_lock_timeout, settings.proxy))
    if record and state.host_now is not None:  # the new key is the check's: the next runs need not fetch it
        commands.append(docker_repo.key_check_record(key_url, state.remote_key_sha, state.host_now))
    if undo:  # a failed `apt-get update` (wrong key: NO_PUBKEY) must not leave a repo that breaks apt
        undo.append(apt.update(settings.apt_lock_timeout, settings.proxy))
    return Change("docker repository", "; ".join(what), commands, diff=diff, undo=undo, timeout=settings.apt_timeout)


def key_check_note(state: DockerHostState) -> str:
    """` (key checked 3h ago)`, ` (key checked now)`, or nothing when the probe did not say."""
    if state.key_checked_at is None or state.host_now is None:
        return ""
    return f" (key checked {age(state.host_now - state.key_checked_at)})"


def repo_label(distro: str, settings: DockerSettings) -> str:
    return docker_repo.repo_url(distro, settings.docker_repo_url)


def daemon_config_change(state: DockerHostState, settings: DockerSettings, stamp: str) -> Change | NoChange | Refusal:
    current, error = daemon_config(state)
    if error:
        return Refusal("daemon.json", error)
    wanted = daemon_json.desired_config(current, settings.docker_daemon, settings.docker_daemon_defaults)
    clashes = daemon_json.clashes(wanted)
    if clashes:
        return Refusal("daemon.json", "; ".join(clashes))
    if current is not None and wanted == current:
        return NoChange("daemon.json", f"{daemon_json.PATH} already holds the wanted settings")
    text = daemon_json.render(wanted)
    candidate = daemon_json.CANDIDATE
    mode = "0600" if holds_secrets(wanted) else "0644"  # proxy credentials, registry auth: root only
    commands = [
        write_file(candidate, text, mode=mode, backup=False),
        daemon_json.validate_or_discard(candidate),
        files.remove(candidate),
        write_file(daemon_json.PATH, text, mode=mode, backup=current is not None, stamp=stamp, keep_one_backup=True),
    ]
    keys = sorted(set(wanted) - set(current or {})) + sorted(k for k in (current or {}) if wanted.get(k) != current[k])
    notes = []
    if state.service_active and not wanted.get("live-restore"):
        notes.append("docker restarts to apply daemon.json: running containers stop unless live-restore is set")
    return Change("daemon.json", f"{daemon_json.PATH}: set {', '.join(keys)}" + (
        f" (backup {daemon_json.backup_path(stamp)})" if current is not None else ""),
        commands, diff=daemon_json.diff(redact_json_text(state.daemon_json), redact_json_text(text)), notes=notes)


def resolve_pin(state: DockerHostState, settings: DockerSettings, available: list[str] | None) -> str | Refusal | None:
    """The full apt version for docker_version: the installed one if it matches, else from apt-cache madison.

    available is None when the repository is not configured yet (check mode on a fresh host)."""
    wanted = settings.docker_version
    if not wanted:
        return None
    installed = state.packages.get("docker-ce")
    pin = apt.resolve_version(wanted, [installed]) if installed else None
    if pin:
        return pin
    if available is None:
        return f"<{wanted}, resolved with apt-cache madison>"
    return apt.resolve_version(wanted, available) or Refusal(
        "docker packages", f"docker_version {wanted} is not in the repository; available: {', '.join(available) or 'none'}")


def packages(state: DockerHostState, settings: DockerSettings, available: list[str] | None) -> Change | NoChange | Refusal:
    pin = resolve_pin(state, settings, available)
    if isinstance(pin, Refusal):
        return pin
    specs = [f"{p}={pin}" if pin and p in docker_repo.PINNED else p for p in docker_repo.PACKAGES]

    def installed(spec: str) -> bool:
        name, _, version = spec.partition("=")
        return name in state.packages and (not version or state.packages[name] == version)

    missing = [spec for spec in specs if not installed(spec)]
    if not missing:
        return NoChange("docker packages", f"docker-ce {state.packages['docker-ce']} and the plugins are installed")
    commands = []
    if any(p in state.held for p in docker_repo.PINNED):
        commands.append(apt.unhold(list(docker_repo.PINNED)))
    commands.append(apt.install(missing, settings.apt_lock_timeout, settings.proxy, allow_downgrades=bool(pin)))
    return Change("docker packages", f"installing {', '.join(missing)}", commands, timeout=settings.apt_timeout,
                  detached=True)


def hold(state: DockerHostState, settings: DockerSettings, just_installed: bool) -> Change | NoChange:
    pinned = list(docker_repo.PINNED)
    if settings.docker_hold:
        if all(p in state.held for p in pinned) and not just_installed:
            return NoChange("hold", "docker-ce and docker-ce-cli are held")
        return Change("hold", "holding docker-ce and docker-ce-cli against upgrades", [apt.hold(pinned)])
    return NoChange("hold", "not requested (docker_hold)")


def users(state: DockerHostState, settings: DockerSettings) -> Change | NoChange | Refusal:
    if not settings.docker_users:
        return NoChange("docker users", "none requested (docker_users)")
    unknown = [u for u in settings.docker_users if state.users.get(u) is False]
    if unknown:
        return Refusal("docker users", f"no such user(s): {', '.join(unknown)}")
    members = state.docker_group or []
    to_add = [u for u in settings.docker_users if u not in members]
    if not to_add:
        return NoChange("docker users", f"{', '.join(settings.docker_users)} already in the docker group")
    return Change("docker users", f"adding {', '.join(to_add)} to the docker group",
                  [system.add_to_group(u, "docker") for u in to_add],
                  notes=[f"{', '.join(to_add)}: log out and in again for the docker group to apply "
                         "(the group is root-equivalent)"])


def service(state: DockerHostState, config_changed: bool, engine_installed: bool, stamp: str = "") -> Change | NoChange:
    """Restart only when daemon.json changed under a daemon that was already running and was not just
    (re)installed (daemon.json is written before the packages, so a new engine starts with it). A daemon.json
    that stops dockerd from starting is rolled back (to the backup daemon_config_change made) and docker
    started again; the step fails quoting dockerd's error."""
    if config_changed and state.service_active and not engine_installed:
        backup = daemon_json.backup_path(stamp) if state.daemon_json is not None else None
        return Change("docker service", "restarting docker to apply daemon.json",
                      [daemon_json.restart_or_restore(backup)])
    if state.service_enabled and state.service_active and not engine_installed:
        return NoChange("docker service", "enabled and running")
    return Change("docker service", "enabling and starting docker", [system.enable_unit("docker", now=True)])
