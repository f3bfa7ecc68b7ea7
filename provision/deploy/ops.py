"""Day-2 operations on one host's Docker engine, on the objects `provision deploy` creates.

Everything provision manages carries the label `io.provision.stack`; containers also carry
`io.provision.service`, `io.provision.replica`, `io.provision.spec-hash` and `io.provision.image`.
The serving container is `<stack>-<service>-<replica>`, the retained previous version (stopped,
kept for `provision rollback`) `<name>.previous`, a container being rolled out `<name>.next`.

Functions here take a `docker.DockerClient` and return data; they never print. Objects without
`io.provision.stack` are never removed by `down`, and `prune` never removes a provision-labelled
object (the `.previous` containers and the stack volumes stay).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from provision.errors import HostError, InputError

STACK, SERVICE, REPLICA = "io.provision.stack", "io.provision.service", "io.provision.replica"
SPEC_HASH, IMAGE = "io.provision.spec-hash", "io.provision.image"
PREVIOUS, NEXT = ".previous", ".next"
NEVER_STARTED = "0001-01-01T00:00:00Z"


class OpsError(HostError):
    """Some objects could not be removed; `done` lists what was, `errors` what was not and why."""

    def __init__(self, message: str, done: list[str], errors: list[str]) -> None:
        super().__init__(message)
        self.done = done
        self.errors = errors


# -- reading --------------------------------------------------------------------------------
def container_name(attrs: dict) -> str:
    return (attrs.get("Name") or "").lstrip("/")


def role(name: str) -> str:
    """serving | previous | next, from the container's name."""
    if name.endswith(PREVIOUS):
        return "previous"
    if name.endswith(NEXT):
        return "next"
    return "serving"


def label_filters(stack: str | None = None, service: str | None = None) -> list[str]:
    """The engine-side `label` filter selecting provision's containers (of a stack / service)."""
    labels = [f"{STACK}={stack}" if stack else STACK]
    if service:
        labels.append(f"{SERVICE}={service}")
    return labels


def managed_containers(client, stack: str | None = None, service: str | None = None,
                       include_previous: bool = False) -> list:
    """provision's containers (all states), sorted by stack, service, replica, role.

    Without include_previous only the serving containers (no `.previous`, no `.next`)."""
    found = client.containers.list(all=True, filters={"label": label_filters(stack, service)})
    if not include_previous:
        found = [c for c in found if role(container_name(c.attrs)) == "serving"]
    return sorted(found, key=lambda c: _sort_key(c.attrs))


def _sort_key(attrs: dict) -> tuple:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    name = container_name(attrs)
    return (labels.get(STACK, ""), labels.get(SERVICE, ""), _replica(labels.get(REPLICA)),
            ("serving", "next", "previous").index(role(name)), name)


def _replica(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def format_ports(ports: dict | None) -> str:
    """`NetworkSettings.Ports` as `docker ps` shows it: `127.0.0.1:8000->8000/tcp, 9000/tcp`."""
    shown: list[str] = []
    for container_port, bindings in sorted((ports or {}).items(), key=lambda kv: _port_key(kv[0])):
        if not bindings:
            shown.append(container_port)
            continue
        for binding in bindings:
            host_ip = binding.get("HostIp") or "0.0.0.0"
            host = f"[{host_ip}]" if ":" in host_ip and host_ip != "::" else host_ip
            text = f"{host}:{binding.get('HostPort')}->{container_port}"
            if text not in shown:
                shown.append(text)
    return ", ".join(shown)


def _port_key(spec: str) -> tuple:
    number, _, proto = spec.partition("/")
    return (int(number) if number.isdigit() else 0, proto)


def iso_time(value: str | None) -> str:
    """Docker's RFC 3339 nanosecond time → `2024-05-01T12:00:03Z` ("-" when never started)."""
    if not value or value.startswith("0001-01-01"):
        return "-"
    main, _, rest = value.partition(".")
    if not rest:
        return value
    zone = rest.lstrip("0123456789")
    return main + (zone or "Z")


def status_row(attrs: dict) -> dict[str, Any]:
    """One `provision status` row from a container's inspect document (what containers.list() holds)."""
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or {}
    state = attrs.get("State") or {}
    name = container_name(attrs)
    health = (state.get("Health") or {}).get("Status") or "-"
    return {
        "stack": labels.get(STACK, ""),
        "service": labels.get(SERVICE, ""),
        "replica": _replica(labels.get(REPLICA)),
        "container": name,
        "id": (attrs.get("Id") or "")[:12],
        "image": labels.get(IMAGE) or config.get("Image", ""),
        "state": state.get("Status", "unknown"),
        "health": health,
        "ports": format_ports((attrs.get("NetworkSettings") or {}).get("Ports")),
        "started": iso_time(state.get("StartedAt")),
        "previous": role(name) == "previous",
        "role": role(name),
    }


def status_rows(client, stack: str | None = None) -> list[dict[str, Any]]:
    """Every provision container on the host (serving, `.previous`, `.next`), one row each."""
    return [status_row(c.attrs) for c in managed_containers(client, stack, include_previous=True)]


def resolve_service(client, spec: str) -> tuple[str, str] | None:
    """`SERVICE` or `STACK/SERVICE` → (stack, service) on this host; None when it does not run here.

    A bare service name deployed by two stacks is ambiguous: InputError naming both."""
    stack, _, service = spec.rpartition("/")
    if not service:
        raise InputError(f"{spec!r}: expected SERVICE or STACK/SERVICE")
    stacks = sorted({(c.labels or {}).get(STACK, "")
                     for c in managed_containers(client, stack or None, service, include_previous=True)})
    if not stacks:
        return None
    if len(stacks) > 1:
        raise InputError(f"service {service!r} is deployed by several stacks ({', '.join(stacks)}): "
                         f"say which, e.g. {stacks[0]}/{service}")
    return stacks[0], service


def service_containers(client, spec: str, replica: int | None = None) -> list:
    """The serving containers of a service (all replicas, or one), [] when it does not run here."""
    resolved = resolve_service(client, spec)
    if resolved is None:
        return []
    found = managed_containers(client, *resolved)
    if replica is not None:
        found = [c for c in found if _replica((c.labels or {}).get(REPLICA)) == replica]
    return found


# -- logs and exec --------------------------------------------------------------------------
def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Log chunks (any boundaries) → text lines without their newline."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode(errors="replace")
    if pending:
        yield pending.rstrip(b"\r").decode(errors="replace")


def logs(client, containers: list, follow: bool = False, tail: int | None = 100,
         stop: threading.Event | None = None) -> Iterator[tuple[str, str]]:
    """(container name, line) for each container's stdout+stderr, the last `tail` lines (None: all).

    Without follow: container after container. With follow: every container at once (one reader
    thread each) until all streams end or `stop` is set; closing the iterator stops the readers."""
    tail_arg: int | str = "all" if tail is None else tail
    if not follow:
        for container in containers:
            data = container.logs(stdout=True, stderr=True, tail=tail_arg)
            for line in split_lines([data]):
                yield container.name, line
        return
    stop = stop or threading.Event()
    lines: queue.Queue = queue.Queue(maxsize=10000)
    streams = []
    done = object()

    def read(container, stream) -> None:
        try:
            for line in split_lines(stream):
                if stop.is_set():
                    break
                lines.put((container.name, line))
        except Exception:  # the stream was closed under us (stop) or the connection dropped
            pass
        finally:
            lines.put(done)

    readers = []
    for container in containers:
        stream = container.logs(stdout=True, stderr=True, tail=tail_arg, stream=True, follow=True)
        streams.append(stream)
        readers.append(threading.Thread(target=read, args=(container, stream), daemon=True,
                                        name=f"logs-{container.name}"))
    for reader in readers:
        reader.start()
    running = len(readers)
    try:
        while running and not stop.is_set():
            try:
                item = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is done:
                running -= 1
                continue
            yield item
    finally:
        stop.set()
        for stream in streams:
            try:
                stream.close()
            except Exception:
                pass


def exec_in(client, container, argv: list[str]) -> tuple[int, str]:
    """Run argv in a running container (no TTY); (exit code, stdout+stderr as text)."""
    result = container.exec_run(list(argv), stdout=True, stderr=True, tty=False)
    output = result.output or b""
    return int(result.exit_code if result.exit_code is not None else -1), output.decode(errors="replace")


# -- down -----------------------------------------------------------------------------------
def down_plan(client, stack: str | None, volumes: bool) -> list[tuple[str, Any]]:
    """(kind, object) to remove, in order: containers (incl. .previous/.next), networks, volumes.

    Only objects labelled io.provision.stack (=stack when given); volumes only when asked."""
    label = [f"{STACK}={stack}" if stack else STACK]
    plan: list[tuple[str, Any]] = [("container", c) for c in managed_containers(client, stack, include_previous=True)]
    plan += [("network", n) for n in sorted(client.networks.list(filters={"label": label}), key=lambda n: n.name)
             if (n.attrs.get("Labels") or {}).get(STACK)]
    if volumes:
        plan += [("volume", v) for v in sorted(client.volumes.list(filters={"label": label}), key=lambda v: v.name)
                 if (v.attrs.get("Labels") or {}).get(STACK)]
    return plan


def down(client, stack: str | None, volumes: bool = False, dry_run: bool = False) -> list[str]:
    """Remove a stack's objects (every provision stack when stack is None); `kind name` of each removed.

    Never touches an object without io.provision.stack. Best effort: what cannot be removed is
    reported (OpsError) after the rest is done."""
    removed: list[str] = []
    errors: list[str] = []
    for kind, obj in down_plan(client, stack, volumes):
        # double check on the object itself: never act on an unlabelled object, whatever the filter did
        labels = (obj.labels if kind == "container" else obj.attrs.get("Labels")) or {}
        if not labels.get(STACK) or (stack and labels.get(STACK) != stack):
            continue
        what = f"{kind} {obj.name}"
        if dry_run:
            removed.append(what)
            continue
        try:
            if kind == "container":
                obj.remove(force=True)
            else:
                obj.remove()
        except Exception as exc:
            errors.append(f"{what}: {_short(exc)}")
            continue
        removed.append(what)
    if errors:
        raise OpsError(f"{len(errors)} object(s) not removed: " + "; ".join(errors), removed, errors)
    return removed


# -- prune and df ---------------------------------------------------------------------------
def prune_filters(all_: bool) -> dict[str, dict]:
    """The filters of each prune call (Docker 20.10 / API 1.41 supports `label!` on all of them).

    `label!=io.provision.stack` keeps every provision object: the stopped `.previous` containers
    (kept for rollback), the stack networks and the stack volumes. Images: dangling only, or every
    image no container uses with --all. Volumes are pruned only with --all."""
    unmanaged = {"label!": [STACK]}
    filters: dict[str, dict] = {
        "containers": dict(unmanaged),
        "images": {"dangling": [str(not all_).lower()]},
        "networks": dict(unmanaged),
    }
    if all_:
        filters["volumes"] = dict(unmanaged)
    return filters


def prune(client, all_images: bool = False) -> dict[str, Any]:
    """`docker system prune` (`--all --volumes` with all_images) that spares provision's objects.

    Returns {"reclaimed": {kind: bytes}, "deleted": {kind: [names or ids]}}."""
    filters = prune_filters(all_images)
    reclaimed: dict[str, int] = {}
    deleted: dict[str, list[str]] = {}

    result = client.containers.prune(filters=filters["containers"]) or {}
    deleted["containers"] = [c[:12] for c in result.get("ContainersDeleted") or []]
    reclaimed["containers"] = int(result.get("SpaceReclaimed") or 0)

    result = client.networks.prune(filters=filters["networks"]) or {}
    deleted["networks"] = list(result.get("NetworksDeleted") or [])

    if "volumes" in filters:
        result = client.volumes.prune(filters=filters["volumes"]) or {}
        deleted["volumes"] = list(result.get("VolumesDeleted") or [])
        reclaimed["volumes"] = int(result.get("SpaceReclaimed") or 0)

    result = client.images.prune(filters=filters["images"]) or {}
    images = result.get("ImagesDeleted") or []
    deleted["images"] = [i.get("Untagged") or i.get("Deleted") for i in images if i.get("Untagged") or i.get("Deleted")]
    reclaimed["images"] = int(result.get("SpaceReclaimed") or 0)

    result = client.api.prune_builds(all=True) if all_images else client.api.prune_builds()
    result = result or {}
    deleted["build_cache"] = list(result.get("CachesDeleted") or [])
    reclaimed["build_cache"] = int(result.get("SpaceReclaimed") or 0)
    reclaimed["total"] = sum(v for k, v in reclaimed.items() if k != "total")
    return {"reclaimed": reclaimed, "deleted": deleted}


def summarize_df(data: dict) -> dict[str, dict[str, int]]:
    """`docker system df` from the engine's /system/df document: per kind count, active, size, reclaimable."""
    images = data.get("Images") or []
    used_images = [i for i in images if (i.get("Containers") or 0) > 0]
    layers = int(data.get("LayersSize") or 0)
    used = sum(max(0, (i.get("Size") or 0) - max(0, i.get("SharedSize") or 0)) for i in used_images)
    containers = data.get("Containers") or []
    volumes = data.get("Volumes") or []
    cache = data.get("BuildCache") or []

    def vsize(v: dict) -> int:
        return max(0, int(((v.get("UsageData") or {}).get("Size")) or 0))

    def vrefs(v: dict) -> int:
        return int(((v.get("UsageData") or {}).get("RefCount")) or 0)

    return {
        "images": {"count": len(images), "active": len(used_images), "size": layers,
                   "reclaimable": max(0, layers - used)},
        "containers": {"count": len(containers),
                       "active": sum(1 for c in containers if c.get("State") == "running"),
                       "size": sum(int(c.get("SizeRw") or 0) for c in containers),
                       "reclaimable": sum(int(c.get("SizeRw") or 0) for c in containers if c.get("State") != "running")},
        "volumes": {"count": len(volumes), "active": sum(1 for v in volumes if vrefs(v) > 0),
                    "size": sum(vsize(v) for v in volumes),
                    "reclaimable": sum(vsize(v) for v in volumes if vrefs(v) == 0)},
        "build_cache": {"count": len(cache), "active": sum(1 for b in cache if b.get("InUse")),
                        "size": sum(int(b.get("Size") or 0) for b in cache),
                        "reclaimable": sum(int(b.get("Size") or 0) for b in cache
                                           if not b.get("InUse") and not b.get("Shared"))},
    }


def df(client) -> dict[str, dict[str, int]]:
    return summarize_df(client.df())


def human_size(n: int) -> str:
    """Bytes as docker shows them (decimal units): 0B, 512B, 1.5kB, 23.4MB, 2.1GB."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    return f"{n}B"  # pragma: no cover


def _short(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).splitlines()[0][:200] if text else type(exc).__name__
