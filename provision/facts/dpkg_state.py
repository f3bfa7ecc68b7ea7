"""Is the host's package manager in a state apt can work from? A probe section (commands/probes.py) and its
pure parser.

`interrupted`: dpkg was stopped half-way (files in /var/lib/dpkg/updates, or `dpkg --audit` lists
packages left unpacked or half-configured): apt refuses to work until `dpkg --configure -a`.
`units`: provision's own apt runs (commands/detached.py) still running from a run whose connection dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provision.commands import probes

SECTION = probes.dpkg_state()  # (name, snippet), built in commands/probes.py


@dataclass
class DpkgState:
    interrupted: bool = False
    units: list[str] = field(default_factory=list)

    @property
    def needs_repair(self) -> bool:
        return self.interrupted or bool(self.units)


def parse(text: str | None) -> DpkgState:
    state = DpkgState()
    for line in (text or "").splitlines():
        key, _, value = line.strip().partition("=")
        if key == "interrupted":
            state.interrupted = True
        elif key == "unit" and value:
            state.units.append(value)
    return state
