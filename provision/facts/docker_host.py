"""What the Docker install decides from: one probe script (one round trip, commands/probes.py) and its pure
parser."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from provision.commands import dpkg, probes
from provision.commands.daemon_json import PATH as DAEMON_JSON
from provision.facts import dpkg_state
from provision.facts.parsers import parse_os_release
from provision.facts.script import split_sections

WATCHED_PACKAGES = probes.WATCHED_PACKAGES  # the packages whose state the probe reads


@dataclass
class DockerHostState:
    os_id: str = ""
    version_id: str = ""
    codename: str = ""
    arch: str = ""
    systemd: bool = False
    cloud_init: str | None = None
    packages: dict[str, str] = field(default_factory=dict)  # installed package → version
    held: set[str] = field(default_factory=set)
    snap_docker: bool = False
    keyring_sha: str | None = None
    remote_key_sha: str | None = None
    remote_key_error: str | None = None
    key_checked_at: int | None = None  # host epoch seconds of the key check the digest comes from
    key_cached: bool = False  # the digest is the recorded check's (not downloaded this run)
    host_now: int | None = None  # the host's clock when probed (epoch seconds)
    sources: str | None = None
    stale_files: list[str] = field(default_factory=list)
    daemon_json: str | None = None
    docker_group: list[str] | None = None  # members, None when the group does not exist
    users: dict[str, bool] = field(default_factory=dict)  # wanted user → exists
    service_enabled: bool = False
    service_active: bool = False
    dpkg: dpkg_state.DpkgState = field(default_factory=dpkg_state.DpkgState)


def probe(key_url: str, env: str, users: list[str], key_max_age: int = 0, record: bool = False) -> str:
    """The probe script (built in commands/probes.py); its output is read by parse()."""
    return probes.docker_host(key_url, env, users, key_max_age, record)


def parse(output: str) -> DockerHostState:
    s = split_sections(output)

    def text(name: str) -> str | None:
        section = s.get(name)
        return section.text if section is not None and section.rc == 0 else None

    state = DockerHostState()
    os_release = parse_os_release(text("os_release") or "") or {}
    state.os_id = os_release.get("id") or ""
    state.version_id = os_release.get("version_id") or ""
    state.codename = os_release.get("codename") or ""
    state.arch = (text("arch") or "").strip()  # probes before issue 12 (`dpkg --print-architecture`)
    state.systemd = (text("systemd") or "").strip() == "yes"
    cloud = text("cloud_init")
    if cloud is not None or (s.get("cloud_init") and s["cloud_init"].rc not in (None, 127)):
        raw = s["cloud_init"].text
        state.cloud_init = next((l.split(":", 1)[1].strip() for l in raw.splitlines() if l.startswith("status:")), "unknown")
    state.packages, state.held, arch = _packages(text("packages") or "")
    state.arch = state.arch or arch
    state.snap_docker = bool((text("snap") or "").strip())
    state.keyring_sha = (text("keyring") or "").strip() or None
    remote = s.get("remote_key")
    if remote is not None and remote.rc == 0 and remote.text.strip():
        _read_key_check(state, remote.text.strip().splitlines())
    else:
        lines = remote.text.strip().splitlines() if remote else []
        state.remote_key_error = lines[-1] if lines else "could not fetch the repository key"
    state.sources = text("sources")
    if state.sources is not None:
        state.sources += "\n"
    state.stale_files = [l for l in (text("stale") or "").splitlines() if l.strip()]
    state.daemon_json = text("daemon_json")
    group = text("docker_group")
    if group is not None:
        members = group.strip().split(":")[-1]
        state.docker_group = [m for m in members.split(",") if m]
    for line in (text("users") or "").splitlines():
        name, _, uid = line.partition(" ")
        state.users[name] = uid.strip() not in ("", "none")
    service = dict(l.split("=", 1) for l in (text("service") or "").splitlines() if "=" in l)
    state.service_enabled = service.get("UnitFileState") == "enabled"
    state.service_active = service.get("ActiveState") == "active"
    state.dpkg = dpkg_state.parse(text("dpkg_state"))
    return state


def _packages(text: str) -> tuple[dict[str, str], set[str], str]:
    """(installed watched package → version, the held ones, the host's architecture) from the packages section:
    dpkg-query's `PACKAGE VERSION STATUS ARCH` lines (tab-separated, probes.DOCKER_PACKAGES_FORMAT), where the
    `dpkg` package's architecture is the host's (dpkg is always native). Lines of three fields (probes before
    issue 12) are read as dpkg.parse_status reads them."""
    lines, arch = [], ""
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == "dpkg":
            if parts[2].strip()[1:2] == "i":
                arch = parts[3].strip()
            continue
        lines.append("\t".join(parts[:3]))
    installed, held = dpkg.parse_status("\n".join(lines))
    return installed, held, arch


def _read_key_check(state: DockerHostState, lines: list[str]) -> None:
    """`cached SHA CHECKED NOW` (the recorded check stands), or `fetched NOW` then SHA, or SHA alone."""
    words = lines[-1].split()
    if len(words) == 4 and words[0] == "cached" and words[2].isdigit() and words[3].isdigit():
        state.remote_key_sha, state.key_cached = words[1], True
        state.key_checked_at, state.host_now = int(words[2]), int(words[3])
        return
    state.remote_key_sha = lines[-1].strip()
    fetched = lines[-2].split() if len(lines) >= 2 else []
    if len(fetched) == 2 and fetched[0] == "fetched" and fetched[1].isdigit():
        state.key_checked_at = state.host_now = int(fetched[1])


def daemon_config(state: DockerHostState) -> tuple[dict | None, str | None]:
    """(parsed daemon.json, error) — an unparsable file is an error we must not overwrite blindly."""
    if state.daemon_json is None:
        return None, None
    if not state.daemon_json.strip():
        return {}, None
    try:
        value = json.loads(state.daemon_json)
    except json.JSONDecodeError as exc:
        return None, f"{DAEMON_JSON} is not valid JSON ({exc}); fix or remove it first"
    if not isinstance(value, dict):
        return None, f"{DAEMON_JSON} must hold a JSON object"
    return value, None
