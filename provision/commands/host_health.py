"""Probes of a host's health that decide a clear message before provision goes on: the free space of
the filesystem holding Docker's data root, the state of the Docker daemon's units, and the dpkg-lock
wait (parsed in facts/host_health.py)."""

from __future__ import annotations

from provision.commands.apt import dpkg_lock_holder_script
from provision.commands.argv import UnsafeValue, join

DOCKER_UNITS = ("docker.service", "docker.socket")


def free_space(path: str) -> str:
    """`df` of the filesystem holding PATH in POSIX format, 1 KiB blocks (a header line, then one line)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise UnsafeValue(f"path must be absolute, not {path!r}")
    return join(["df", "-P", "-k", "--", path], "path")


def docker_units() -> str:
    """LoadState/ActiveState/UnitFileState of docker.service and docker.socket (one block per unit)."""
    return join(["systemctl", "show", "-p", "Id", "-p", "LoadState", "-p", "ActiveState", "-p", "UnitFileState",
                 *DOCKER_UNITS])


def wait_dpkg_lock(timeout: int) -> str:
    """Wait up to TIMEOUT seconds for dpkg's lock to be free. Prints `WAITED|STATE|HOLDER`: STATE is `free`
    (the lock is free now; HOLDER is who held it while we waited, if anyone) or `held` (still held after
    TIMEOUT seconds; HOLDER is `PID COMMAND` of the process holding it)."""
    if not isinstance(timeout, int) or timeout < 0:
        raise UnsafeValue(f"lock timeout must be a whole number of seconds >= 0, not {timeout!r}")
    holder = dpkg_lock_holder_script()
    return (
        f"waited=0; who=''; state=free; while h=$({holder}); [ -n \"$h\" ]; do who=$h; "
        f"if [ $waited -ge {timeout} ]; then state=held; break; fi; sleep 1; waited=$((waited+1)); done; "
        "printf '%s|%s|%s\\n' \"$waited\" \"$state\" \"$who\""
    )
