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
    daemon_json: str | None = None
    cdi_spec: bool = False
    boot_marker: str = ""
    gpu_cgroup: dict[str, str] = field(default_factory=dict)  # docker's cgroup driver, the /dev/char remedy's state
    dpkg: dpkg_state.DpkgState = field(default_factory=dpkg_state.DpkgState)


def probe(base: str | None, env: str) -> str:
    """The probe script (built in commands/probes.py); its output is read by parse()."""
    return probes.nvidia_host(base, env)


def parse(output: str) -> NvidiaHostState:
    s = split_sections(output)

    def ok(name: str) -> str | None:
        section = s.get(name)
        return section.text.strip() if section is not None and section.rc == 0 else None

    state = NvidiaHostState()
    state.packages, _ = dpkg.parse_status(ok("packages") or "")
    state.keyring_sha = ok("keyring") or None
    state.list_sha = ok("list") or None
    def last_line(name: str) -> str | None:
        text = ok(name)
        return text.splitlines()[-1] if text else None

    state.remote_key_sha = last_line("remote_key")
    state.remote_list_sha = last_line("remote_list")
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
