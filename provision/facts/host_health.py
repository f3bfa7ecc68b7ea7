"""Parsers (and the messages they lead to) for commands/host_health.py: free space under Docker's data
root, the Docker daemon's units, the dpkg-lock wait."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class FreeSpace:
    mount: str  # the filesystem's mount point
    available: int  # bytes free (df's Available column)


def parse_free_space(text: str) -> FreeSpace | None:
    """`df -P -k` output → the last line's Available (KiB → bytes) and mount point; None when unreadable."""
    lines = [l for l in text.splitlines() if l.strip()]
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    if len(fields) < 6 or not fields[3].isdigit():
        return None
    return FreeSpace(mount=" ".join(fields[5:]), available=int(fields[3]) * 1024)


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def space_shortfall(host: str, root: str, free: FreeSpace, needed: int) -> str | None:
    """The refusal when the filesystem holding Docker's data root has less than `needed` bytes free."""
    if free.available >= needed:
        return None
    return (f"{host}: {root} has {human(free.available)} free, the image(s) need about {human(needed)}: "
            f"free space on the host (e.g. `provision prune`) or lower deploy_min_free_mb, then re-run "
            f"(nothing was changed)")


@dataclass(frozen=True)
class DockerUnits:
    installed: bool  # docker.service exists
    service_active: str  # ActiveState of docker.service ("" when absent)
    socket_active: str

    @property
    def running(self) -> bool:
        return self.service_active == "active"


def parse_docker_units(text: str) -> DockerUnits:
    """`systemctl show -p Id -p LoadState -p ActiveState -p UnitFileState docker.service docker.socket`."""
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        props = dict(l.split("=", 1) for l in block.splitlines() if "=" in l)
        if props.get("Id"):
            units[props["Id"]] = props
    service = units.get("docker.service", {})
    socket = units.get("docker.socket", {})
    return DockerUnits(installed=service.get("LoadState") == "loaded",
                       service_active=service.get("ActiveState", "") if service.get("LoadState") == "loaded" else "",
                       socket_active=socket.get("ActiveState", "") if socket.get("LoadState") == "loaded" else "")


def daemon_problem(host: str, units: DockerUnits) -> str | None:
    """Why the Docker engine on HOST cannot answer, said so an operator knows what to do (None: running)."""
    if not units.installed:
        return f"Docker is not installed on {host}: run `provision docker install`"
    if units.running:
        return None
    return (f"the Docker daemon on {host} is not running (docker.service {units.service_active or 'inactive'}, "
            f"docker.socket {units.socket_active or 'inactive'}): start it with `systemctl start docker` on the "
            f"host, or run `provision docker install`, which enables and starts it")


@dataclass(frozen=True)
class LockWait:
    waited: int
    held: bool  # still held when the wait ended
    holder: str  # "PID COMMAND" of the process that held it ("" when nobody did)


def parse_lock_wait(text: str) -> LockWait:
    waited, _, rest = text.strip().partition("|")
    state, _, holder = rest.partition("|")
    return LockWait(waited=int(waited) if waited.isdigit() else 0, held=state == "held", holder=holder.strip())


def lock_message(lock: LockWait, timeout: int) -> str:
    pid, _, command = lock.holder.partition(" ")
    who = f"pid {pid}" + (f" ({command.strip()})" if command.strip() else "")
    if lock.held:
        return (f"dpkg's lock is still held by {who} after {timeout}s (apt_lock_timeout): wait for it to finish "
                f"(or stop it), then re-run; nothing was changed")
    if lock.holder and lock.waited > 0:
        return f"waited {lock.waited}s for the dpkg lock held by {who}"
    return "free"
