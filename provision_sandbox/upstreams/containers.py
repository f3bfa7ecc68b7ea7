"""Shared plumbing of the upstream containers: labels, reconcile-by-config-hash, files in, readiness."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from dataclasses import dataclass
from typing import Callable

from provision.errors import EnvironmentProblem
from provision_sandbox.names import FLEET_LABEL, LABEL, UPSTREAM_CONFIG_LABEL, Paths


@dataclass(frozen=True)
class File:
    """A file to place in a container (put_archive) before it starts."""

    path: str  # absolute, inside the container
    data: bytes
    mode: int = 0o644


def config_hash(*parts: str | bytes) -> str:
    """Identity of a container's configuration: a changed part means the container is recreated."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def labels(paths: Paths, role: str, config: str | None = None) -> dict[str, str]:
    """The fleet's labels (so `sandbox down` removes the object) plus the config hash."""
    found = {LABEL: role, FLEET_LABEL: paths.fleet}
    if config is not None:
        found[UPSTREAM_CONFIG_LABEL] = config
    return found


def ensure_container(client, name: str, config: str, create: Callable[[], object], log: Callable[[str], None]):
    """The running container `name` with configuration `config`: kept, started, or (re)created."""
    import docker.errors

    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        container = None
    if container is not None and (container.labels or {}).get(UPSTREAM_CONFIG_LABEL) != config:
        log(f"recreating {name} (its configuration changed)")
        container.remove(force=True)
        container = None
    elif container is not None and container.status == "created":  # never started: maybe half set up
        container.remove(force=True)
        container = None
    if container is None:
        container = create()
        container.start()
        log(f"started {name}")
    elif container.status != "running":
        container.start()
    container.reload()
    return container


def endpoint(client, network: str, aliases: list[str]) -> dict:
    """networking_config joining `network` under extra DNS names."""
    return {network: client.api.create_endpoint_config(aliases=aliases)}


def files_tar(files: list[File], folders: tuple[str, ...] = ()) -> bytes:
    """A tar for put_archive at /: `files` (root-owned; missing parents are created 0755 by the
    engine) and extra empty `folders`."""
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder.strip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for f in files:
            info = tarfile.TarInfo(f.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(f.data), f.mode, now
            tar.addfile(info, io.BytesIO(f.data))
    return buffer.getvalue()


def wait_for(check: Callable[[], bool], container, what: str, timeout: float = 20) -> None:
    """Poll `check` until it holds; a container that exits meanwhile fails at once, with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.2)
    tail = container.logs(tail=15).decode(errors="replace").strip()
    raise EnvironmentProblem(f"{what} did not come up ({container.name}: {container.status}):\n{tail}")
