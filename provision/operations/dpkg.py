"""Before any apt work: finish an earlier run's apt unit and repair an interrupted dpkg (Docker and NVIDIA stages)."""

from __future__ import annotations

from provision.commands import apt, detached
from provision.facts.dpkg_state import DpkgState
from provision.operations.base import Change, NoChange


def repair(dpkg: DpkgState, *, lock_timeout: int, apt_timeout: int, proxy: dict[str, str] | None) -> Change | NoChange:
    """An earlier run's apt unit still running, or a dpkg interrupted half-way: wait, then repair, before
    anything else (apt refuses to work on an interrupted dpkg)."""
    if not dpkg.needs_repair:
        return NoChange("dpkg state", "clean")
    what = []
    if dpkg.units:
        what.append(f"waiting for the unfinished apt run {', '.join(dpkg.units)}")
    what.append("repairing an interrupted dpkg (dpkg --configure -a, apt-get -f install)" if dpkg.interrupted
                else "checking dpkg (dpkg --configure -a)")
    return Change("dpkg state", "; ".join(what),
                  [detached.repair_snippet(dpkg.units, lock_timeout, apt.env_prefix(proxy))],
                  timeout=lock_timeout + apt_timeout, detached=True)
