"""What the NVIDIA install decides from, beyond the general facts: one probe script (commands/probes.py) and
its pure parser."""

from __future__ import annotations

from dataclasses import dataclass, field

from provision.commands import dpkg, gpu_verify, probes, system
from provision.facts import dpkg_state
from provision.facts.script import split_sections


@dataclass
class NvidiaHostState:
    packages: dict[str, str] = field(default_factory=dict)
    keyring_sha: str | None = None
    remote_key_sha: str | None = None
    list_sha: str | None = None
    remote_list_sha: str | None = None
    remote_error: str | None = None
    checked_at: int | None = None  # host epoch seconds of the older of the key's and the list's checks
    host_now: int | None = None
    daemon_json: str | None = None
    cdi_spec: bool = False
    boot_marker: str = ""
    gpu_cgroup: dict[str, str] = field(default_factory=dict)  # docker's cgroup driver, the /dev/char remedy's state
    dpkg: dpkg_state.DpkgState = field(default_factory=dpkg_state.DpkgState)


def probe(base: str | None, env: str, max_age: int = 0, record: bool = False) -> str:
    """The probe script (built in commands/probes.py); its output is read by parse()."""
    return probes.nvidia_host(base, env, max_age, record)


def parse(output: str) -> NvidiaHostState:
    s = split_sections(output)

    def ok(name: str) -> str | None:
        section = s.get(name)
        return section.text.strip() if section is not None and section.rc == 0 else None

    state = NvidiaHostState()
    state.packages, _ = dpkg.parse_status(ok("packages") or "")
    state.keyring_sha = ok("keyring") or None
    state.list_sha = ok("list") or None
    checks: list[int] = []

    def digest(name: str) -> str | None:
        """`cached SHA CHECKED NOW`, or `fetched NOW` then SHA, or SHA alone (see probes.nvidia_host)."""
        text = ok(name)
        if not text:
            return None
        lines = text.splitlines()
        words = lines[-1].split()
        if len(words) == 4 and words[0] == "cached" and words[2].isdigit() and words[3].isdigit():
            checks.append(int(words[2]))
            state.host_now = int(words[3])
            return words[1]
        fetched = lines[-2].split() if len(lines) >= 2 else []
        if len(fetched) == 2 and fetched[0] == "fetched" and fetched[1].isdigit():
            checks.append(int(fetched[1]))
            state.host_now = int(fetched[1]) if state.host_now is None else state.host_now
        return lines[-1].strip()

    state.remote_key_sha = digest("remote_key")
    state.remote_list_sha = digest("remote_list")
    state.checked_at = min(checks) if len(checks) == 2 else None
    if not state.remote_key_sha or not state.remote_list_sha:
        bad = s.get("remote_key") if not state.remote_key_sha else s.get("remote_list")
        lines = bad.text.strip().splitlines() if bad else []
        state.remote_error = lines[-1] if lines else "could not fetch the NVIDIA repository"
    daemon = s.get("daemon_json")
    state.daemon_json = daemon.text if daemon is not None and daemon.rc == 0 else None
    state.cdi_spec = ok("cdi") == "yes"
    state.boot_marker = system.parse_boot_marker(ok("boot") or "")
    state.gpu_cgroup = gpu_verify.parse_cgroup_state(ok("gpu_cgroup") or "")
    state.dpkg = dpkg_state.parse(ok("dpkg_state"))
    return state
