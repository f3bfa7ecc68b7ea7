"""Registry-less image shipping: local engine → local registry → reverse SSH tunnel → each host's engine.

1. `stage`: the local engine tags an image `127.0.0.1:<port>/provision/<repo>:<tag>` and pushes it to
   the operator's LocalRegistry; only layers the registry lacks are uploaded. The registry answers only to
   the run's random login, which every engine gets per request (`auth_config`), never stored.
2. `ship`: over the host's existing SSH connection, `ReverseTunnel` makes the HOST's
   127.0.0.1:<remote port> reach that registry, and the host's engine pulls from it; its engine
   downloads only the layers it lacks. The pulled image id is checked, tagged as the image's name,
   and the temporary 127.0.0.1 tag is removed. A host that already has the image id costs nothing.
Docker engines treat registries on 127.0.0.0/8 as plain-HTTP without configuration.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from provision.deploy.pull_progress import PullProgress
from provision.errors import ProvisionError

NAMESPACE = "provision"
CHUNK = 64 * 1024
POLL = 0.2  # seconds a pump waits before re-checking for close


# -- names ---------------------------------------------------------------------------------
def short_id(image_id: str) -> str:
    """The 12-hex short form of an image id (`sha256:...`)."""
    return image_id.split(":", 1)[-1][:12]


def host_reference(name: str, image_id: str) -> tuple[str, str]:
    """(repository, tag) the image is known by on a host: the name's tag, or the short id for a
    digest-only reference (`repo@sha256:...` cannot be a tag)."""
    bare = name.split("@", 1)[0]
    last = bare.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = bare.rsplit(":", 1)
        return repository, tag
    return bare, short_id(image_id) if "@" in name else "latest"


def staging_reference(name: str, image_id: str) -> tuple[str, str]:
    """(repository path in the local registry, tag): `provision/<repo>` with `:` (a registry port)
    made path-safe, so `localhost:5000/app:1` → (`provision/localhost-5000/app`, `1`)."""
    repository, tag = host_reference(name, image_id)
    return f"{NAMESPACE}/{repository.replace(':', '-').lower()}", tag


def human_bytes(n: float) -> str:
    """1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


# -- staging -------------------------------------------------------------------------------
@dataclass
class StagedImage:
    name: str
    image_id: str
    size: int
    repository: str  # path inside the registry, e.g. provision/myapp
    tag: str
    auth: dict | None = field(default=None, repr=False, compare=False)  # the registry's login (never shown)
    layers: tuple[tuple[str, int], ...] = ()  # (diff id, bytes shipped for it), bottom first; () if unknown


def stage(local_client, registry_port: int, name: str, auth: dict | None = None) -> StagedImage:
    """Push the local image `name` to the local registry (only missing layers travel), with its login."""
    import docker.errors

    try:
        image = local_client.images.get(name)
    except docker.errors.ImageNotFound:
        raise ProvisionError(f"image {name} is not in the local Docker engine; build or pull it first") from None
    if _is_image_id(name, image.id):
        raise ProvisionError(f"image {name} is an image id: ship images by name (repository[:tag])")
    repository, tag = staging_reference(name, image.id)
    target = f"127.0.0.1:{registry_port}/{repository}"
    image.tag(target, tag)
    try:
        _push(local_client, target, tag, name, auth)
    finally:
        _untag(local_client, f"{target}:{tag}")
    layers = _layers(image.attrs, registry_port, repository, tag, auth)
    return StagedImage(name, image.id, int(image.attrs.get("Size") or 0), repository, tag, auth, layers)


def _layers(attrs: dict, registry_port: int, repository: str, tag: str, auth: dict | None) -> tuple:
    """(diff id, compressed size) per layer: the image's RootFS and the staged manifest, in the same order."""
    import urllib.error

    from provision.deploy.local_registry import Credentials, RegistryAPI

    diff_ids = list((attrs.get("RootFS") or {}).get("Layers") or [])
    login = Credentials(auth["username"], auth["password"]) if auth else None
    try:
        sizes = RegistryAPI(registry_port, login).layer_sizes(repository, tag)
    except (OSError, urllib.error.URLError, ValueError):
        return ()
    return tuple(zip(diff_ids, sizes)) if len(sizes) == len(diff_ids) else ()


def missing_share(host_client, staged: StagedImage, *, most_images: int = 200) -> float:
    """The share (0..1) of the image's shipped bytes whose layers none of the host's images has (its
    `most_images` newest images are looked at); 1.0 when the layers are unknown."""
    total = sum(size for _, size in staged.layers)
    if not total:
        return 1.0
    import docker.errors

    present: set[str] = set()
    try:
        for summary in host_client.api.images()[:most_images]:
            present.update((host_client.api.inspect_image(summary["Id"]).get("RootFS") or {}).get("Layers") or [])
    except docker.errors.APIError:
        return 1.0
    return sum(size for diff_id, size in staged.layers if diff_id not in present) / total


def _is_image_id(name: str, image_id: str) -> bool:
    """`name` is (a prefix of) the image's id, `sha256:` or not, rather than a repository[:tag]."""
    bare = name.removeprefix("sha256:")
    return bool(bare) and all(c in "0123456789abcdef" for c in bare) and image_id.split(":", 1)[-1].startswith(bare)


def _push(local_client, target: str, tag: str, name: str, auth: dict | None) -> None:
    import docker.errors

    try:
        for event in local_client.api.push(target, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in event:
                raise ProvisionError(f"pushing {name} to the local registry failed: {event['error']}")
    except docker.errors.APIError as exc:
        raise ProvisionError(f"pushing {name} to the local registry failed: {exc.explanation or exc}") from None


def _untag(client, reference: str) -> None:
    """Remove one tag (cleanup: never raises); the image stays while another name refers to it."""
    import docker.errors

    try:
        client.api.remove_image(reference, noprune=True)
    except docker.errors.APIError:
        pass


# -- the tunnel ----------------------------------------------------------------------------
_TRANSPORT_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _transport_lock(transport) -> threading.Lock:
    """paramiko keeps ONE forward handler per transport: one tunnel per transport at a time."""
    with _LOCKS_GUARD:
        return _TRANSPORT_LOCKS.setdefault(transport, threading.Lock())


class ReverseTunnel:
    """The host's 127.0.0.1:<remote_port> → this machine's 127.0.0.1:<target_port>, over `transport`.

    Each forwarded connection is pumped in its own thread; bytes are counted both ways."""

    def __init__(self, transport, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self.transport = transport
        self.target = (target_host, target_port)
        self.remote_port: int | None = None
        self._lock = threading.Lock()
        self._to_host = 0
        self._closing = threading.Event()
        self._pumps: list[threading.Thread] = []
        self._ends: list = []
        self._held: threading.Lock | None = None

    @property
    def bytes_to_host(self) -> int:
        with self._lock:
            return self._to_host

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> int:
        """Ask the host's sshd to listen on its loopback; returns the port it chose."""
        import paramiko

        self._held = _transport_lock(self.transport)
        self._held.acquire()
        try:
            self.remote_port = self.transport.request_port_forward("127.0.0.1", 0, handler=self._accept)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self._release()
            raise ProvisionError(f"the host refused a reverse tunnel for image shipping ({exc}); "
                                 "its sshd needs AllowTcpForwarding yes (or remote)") from None
        return self.remote_port

    def close(self) -> None:
        """Cancel the forward, end every pump (closing its connections) and wait for them."""
        import paramiko

        self._closing.set()
        try:
            if self.remote_port is not None:
                self.transport.cancel_port_forward("127.0.0.1", self.remote_port)
        except (paramiko.SSHException, EOFError, OSError):  # a dead transport has nothing left to cancel
            pass
        finally:
            with self._lock:
                ends, pumps = list(self._ends), list(self._pumps)
            for end in ends:
                _close_quietly(end)
            for pump in pumps:
                pump.join(timeout=5)
            self._release()

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.release()

    # -- pumping ---------------------------------------------------------------------------
    def _accept(self, channel, origin, server) -> None:
        """paramiko calls this on its own thread: never block here."""
        if self._closing.is_set():
            _close_quietly(channel)
            return
        pump = threading.Thread(target=self._pump, args=(channel,), name=f"tunnel-{self.remote_port}", daemon=True)
        with self._lock:
            self._pumps.append(pump)
            self._ends.append(channel)
        pump.start()

    def _pump(self, channel) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            _close_quietly(channel)
            return
        with self._lock:
            self._ends.append(upstream)
        try:
            self._copy_both_ways(channel, upstream)
        finally:
            _close_quietly(upstream)
            _close_quietly(channel)

    def _copy_both_ways(self, channel, upstream) -> None:
        peers = {channel: upstream, upstream: channel}
        reading = {channel, upstream}
        while reading and not self._closing.is_set():
            try:
                ready, _, _ = select.select(list(reading), [], [], POLL)
                for source in ready:
                    data = source.recv(CHUNK)
                    if not data:
                        reading.discard(source)
                        _shutdown_write(peers[source])
                        continue
                    peers[source].sendall(data)
                    if source is upstream:  # the registry's bytes, on their way to the host
                        self._count(len(data))
            except (OSError, EOFError, ValueError):
                return  # a closed end (including close() from another thread)

    def _count(self, n: int) -> None:
        with self._lock:
            self._to_host += n


def _shutdown_write(end) -> None:
    try:
        end.shutdown(socket.SHUT_WR)
    except (OSError, EOFError):
        pass


def _close_quietly(end) -> None:
    try:
        end.close()
    except (OSError, EOFError):
        pass


# -- shipping ------------------------------------------------------------------------------
@dataclass
class ShipResult:
    name: str
    image_id: str
    bytes_sent: int
    skipped: bool
    seconds: float
    started: float = 0.0  # time.monotonic() when shipping this image began


def ship(transport, host_client, staged: StagedImage, registry_port: int,
         progress: Callable[[int, int | None], None] | None = None) -> ShipResult:
    """Make the host's engine hold `staged` under its name; only layers it lacks cross the tunnel."""
    started = time.monotonic()
    if _host_has(host_client, staged.image_id):
        _tag_on_host(host_client, staged)
        return ShipResult(staged.name, staged.image_id, 0, True, time.monotonic() - started, started)
    with ReverseTunnel(transport, registry_port) as tunnel:
        remote = f"127.0.0.1:{tunnel.remote_port}/{staged.repository}"
        report = ((lambda total=None: progress(tunnel.bytes_to_host, total)) if progress
                  else (lambda total=None: None))
        try:
            _pull(host_client, remote, staged, report)
            _verify(host_client, f"{remote}:{staged.tag}", staged)
            _tag_on_host(host_client, staged)
        finally:
            _untag(host_client, f"{remote}:{staged.tag}")
        sent = tunnel.bytes_to_host
    return ShipResult(staged.name, staged.image_id, sent, False, time.monotonic() - started, started)


def _host_has(host_client, image_id: str) -> bool:
    import docker.errors

    try:
        return host_client.api.inspect_image(image_id)["Id"] == image_id
    except docker.errors.NotFound:
        return False


def _pull(host_client, remote: str, staged: StagedImage, report: Callable[..., None]) -> None:
    """The host's engine pulls from the tunnel; `report(total)` after each event, `total` being the
    compressed bytes of the layers it downloads (as far as known: pull_progress), for the rate's ETA."""
    import docker.errors

    counted = PullProgress()
    try:
        for event in host_client.api.pull(remote, tag=staged.tag, stream=True, decode=True, auth_config=staged.auth):
            if "error" in event:
                raise ProvisionError(f"the host could not pull {staged.name} from the tunnel: {event['error']}")
            counted.feed(event)
            report(counted.total)
    except docker.errors.APIError as exc:
        raise ProvisionError(f"the host could not pull {staged.name} from the tunnel: "
                             f"{exc.explanation or exc}") from None
    report(counted.total)


def _verify(host_client, reference: str, staged: StagedImage) -> None:
    pulled = host_client.api.inspect_image(reference)["Id"]
    if pulled != staged.image_id:
        raise ProvisionError(f"shipping {staged.name}: the host received image {short_id(pulled)}, expected "
                             f"{short_id(staged.image_id)} (was the local image changed meanwhile?)")


def _tag_on_host(host_client, staged: StagedImage) -> None:
    repository, tag = host_reference(staged.name, staged.image_id)
    host_client.api.tag(staged.image_id, repository, tag)


def present(host_client, staged: StagedImage) -> bool:
    """The host's engine holds the image id already (tagged as its name now); False when it does not."""
    if not _host_has(host_client, staged.image_id):
        return False
    _tag_on_host(host_client, staged)
    return True


# -- one deploy's registry -----------------------------------------------------------------
@contextlib.contextmanager
def staged_images(names: list[str], local_client_factory, *, state_dir=None):
    """The locked-down local registry for one deploy, with every image in `names` pushed to it: yields
    (port, {name: StagedImage}). When the deploy ends (even with failed hosts) the keep policy's leftovers
    are garbage-collected; on an interrupt the registry just stops. It is stopped in every case."""
    from provision.deploy.local_registry import DEFAULT_STATE_DIR, LocalRegistry

    with LocalRegistry(DEFAULT_STATE_DIR if state_dir is None else state_dir) as registry:
        local = local_client_factory()
        staged = {name: stage(local, registry.port, name, registry.auth_config) for name in names}
        registry.record([(s.repository, s.tag) for s in staged.values()])
        yield registry.port, staged
