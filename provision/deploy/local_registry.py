"""A real image registry on the operator's machine, on 127.0.0.1 only, for the length of a deploy.

Images are pushed here by the local engine (only layers the registry lacks travel) and pulled by
each host through a reverse SSH tunnel (see provision.deploy.shipping). No external registry.

Preferred: Debian's `docker-registry` binary (distribution 2.8) run as a subprocess (in its own
session, so a Ctrl-C in the terminal does not kill it while hosts still pull; it dies with
provision, even a killed one, through PR_SET_PDEATHSIG) with a minimal generated config; storage lives under a persistent state dir so unchanged layers are never pushed
twice. Fallback: the `registry:2` image, if the local engine already has it. Docker engines allow
plain-HTTP registries on 127.0.0.0/8 without any configuration, on both ends.

Locked down: distribution's htpasswd auth with a random per-run login (`Credentials`; only its bcrypt
hash is written), so any request without it (another local user, anything on a host that reaches a
tunnel's port) gets 401; engines get the login per request (`auth_config`), never stored. The state
dir is 0700 and its files 0600 (tightened when an older run left them looser; the registry runs with
umask 077). Garbage collection after a deploy that ran to its end: the manifests the keep policy
drops (`keep_policy`: per repository the tags of the last KEEP_DEPLOYS deploys, within 30 days) are
deleted through the API, then, the registry stopped, `docker-registry garbage-collect
--delete-untagged` reclaims their blobs (and those of re-pushed tags). Concurrent deploys from one
folder share the storage under a shared flock; collection needs it exclusively, else it is skipped.
The container fallback is locked down too, but not garbage-collected (its volume is shared by every
folder on that engine).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import secrets
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from provision.errors import EnvironmentProblem

BINARY = Path("/usr/bin/docker-registry")
DEFAULT_STATE_DIR = Path(".provision/registry")
FALLBACK_IMAGE = "registry:2"
FALLBACK_VOLUME = "provision-registry"
FALLBACK_STORAGE = "/var/lib/registry"
FALLBACK_CONFIG = "/etc/docker/registry/config.yml"
FALLBACK_HTPASSWD = "/auth/htpasswd"
CONTAINER_PORT = 5000
LABEL = "io.provision.local-registry"
START_ATTEMPTS = 3
USERNAME = "provision"
REALM = "provision"
# the password is 256 random bits, so the hash's cost adds no safety, only CPU on every request
# (the registry checks the bcrypt hash per HTTP request): bcrypt's minimum cost
BCRYPT_ROUNDS = 4
KEEP_DEPLOYS = 2  # per image repository: the tags of its last 2 deploys survive garbage collection...
KEEP_SECONDS = 30 * 24 * 3600  # ...if deployed within the last 30 days
GC_TIMEOUT = 300.0
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))


@dataclass(frozen=True)
class Credentials:
    """The per-run login of the local registry: random, in memory only (the registry gets its bcrypt hash).
    Engines get it per request (`auth_config`), so it is never stored in any config.json."""

    username: str
    password: str = field(repr=False)

    @classmethod
    def random(cls) -> Credentials:
        return cls(USERNAME, secrets.token_urlsafe(32))

    @property
    def auth_config(self) -> dict:
        return {"username": self.username, "password": self.password}

    def htpasswd(self) -> bytes:
        import bcrypt  # a dependency of paramiko

        return self.username.encode() + b":" + bcrypt.hashpw(self.password.encode(),
                                                              bcrypt.gensalt(BCRYPT_ROUNDS)) + b"\n"

    def header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def registry_config(storage: Path | str, port: int, *, htpasswd: Path | str | None = None,
                    address: str = "127.0.0.1") -> str:
    """The registry's config: filesystem storage, deletes allowed, loopback only, and (with `htpasswd`)
    distribution's own htpasswd (bcrypt) auth: every request without the login is refused with 401."""
    auth = f"""auth:
  htpasswd:
    realm: {REALM}
    path: {htpasswd}
""" if htpasswd is not None else ""
    return f"""version: 0.1
log:
  level: warn
  fields:
    service: provision-registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {address}:{port}
  headers:
    X-Content-Type-Options: [nosniff]
{auth}"""


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner can enter (0700): created so, and tightened if it exists looser."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a file readable by its owner only (0600): created so, tightened if it existed looser."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def keep_policy(index: dict[str, dict[str, float]], now: float, *, keep: int = KEEP_DEPLOYS,
                max_age: float = KEEP_SECONDS) -> set[tuple[str, str]]:
    """(repository, tag) pairs garbage collection keeps: per repository the `keep` most recently deployed
    tags, each deployed within `max_age` seconds. `index`: repository → tag → last deploy (epoch seconds)."""
    kept: set[tuple[str, str]] = set()
    for repository, tags in index.items():
        recent = sorted(tags.items(), key=lambda item: (item[1], item[0]), reverse=True)[:keep]
        kept.update((repository, tag) for tag, when in recent if now - when <= max_age)
    return kept


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int, credentials: Credentials | None = None) -> bool:
    """True when `GET /v2/` on 127.0.0.1:port answers 200 (a registry is serving; with its login if given)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/")
    if credentials is not None:
        request.add_header("Authorization", credentials.header())
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class LocalRegistry:
    """A registry on 127.0.0.1:<free port> that answers only to this run's random login (`credentials`).
    No I/O until `start()`; `with` starts it and always stops it, garbage-collecting on the way out
    unless the run was interrupted (see `stop`)."""

    def __init__(self, state_dir: Path | str = DEFAULT_STATE_DIR, *, binary: Path | str = BINARY,
                 client_factory=None, ready_timeout: float = 20.0, clock=time.time) -> None:
        self.state_dir = Path(state_dir)
        self.binary = Path(binary)
        self.client_factory = client_factory
        self.ready_timeout = ready_timeout
        self.clock = clock
        self.port: int | None = None
        self.how: str | None = None  # "binary" | "container"
        self.credentials: Credentials | None = None
        self.collected: dict | None = None  # what the last garbage collection did (or why it was skipped)
        self._process: subprocess.Popen | None = None
        self._container = None
        self._lock_file = None

    @property
    def auth_config(self) -> dict:
        return self.credentials.auth_config

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # an interrupted run (Ctrl-C, SIGTERM) stops at once; a finished or failed deploy collects garbage first
        from provision.interrupts import INTERRUPT

        self.stop(collect=(exc_type is None or issubclass(exc_type, Exception)) and not INTERRUPT.requested)

    # -- starting --------------------------------------------------------------------------
    def start(self) -> int:
        """Start the registry (once) and return its port once `GET /v2/` answers (with the login)."""
        if self.port is not None:
            return self.port
        try:
            self.credentials = Credentials.random()
            if self.binary.is_file():
                self._share_storage()
                self.port = self._start_binary()
            else:
                self.port = self._start_container()
        except BaseException:
            self.stop()
            raise
        return self.port

    def _share_storage(self) -> None:
        """A shared lock on the storage for as long as this registry serves: concurrent deploys from one
        folder share it, and garbage collection runs only when it can take the lock exclusively."""
        private_dir(self.state_dir)
        fd = os.open(self.state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        self._lock_file = os.fdopen(fd, "r+")
        fcntl.flock(self._lock_file, fcntl.LOCK_SH)

    def _start_binary(self) -> int:
        self.how = "binary"
        storage = private_dir(self.state_dir / "storage")
        write_private(self.state_dir / "htpasswd", self.credentials.htpasswd())
        for attempt in range(START_ATTEMPTS):  # a free port can be taken between probe and bind
            port = free_port()
            self._spawn(storage.resolve(), port)
            if self._wait_ready(port, last=attempt == START_ATTEMPTS - 1):
                return port
        raise AssertionError("unreachable")  # pragma: no cover - _wait_ready raises on the last try

    @property
    def _config(self) -> Path:
        return self.state_dir / "config.yml"

    def _spawn(self, storage: Path, port: int) -> None:
        write_private(self._config, registry_config(storage, port, htpasswd=(self.state_dir / "htpasswd").resolve())
                      .encode())
        env = _registry_env()
        log = os.open(self.state_dir / "registry.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(log, 0o600)
            # its own session: the terminal's Ctrl-C reaches provision only, which stops the registry
            # last, after every host has pulled; it still dies with provision if provision is killed
            self._process = subprocess.Popen([str(self.binary), "serve", str(self._config)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                             preexec_fn=_die_with_parent)
        finally:
            os.close(log)

    def _wait_ready(self, port: int, *, last: bool) -> bool:
        """True once the subprocess serves; False (process reaped) if it died and may be retried."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if answers(port, self.credentials):
                return True
            if self._process.poll() is not None:
                self._process = None
                if not last:
                    return False
                raise EnvironmentProblem(f"{self.binary} exited at start: {self._log_tail()}")
            time.sleep(0.05)
        raise EnvironmentProblem(f"{self.binary} did not answer on 127.0.0.1:{port} within "
                                 f"{self.ready_timeout:g}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            text = (self.state_dir / "registry.log").read_text(errors="replace").strip()
        except OSError:
            return "(no log)"
        return text[-600:] or "(empty log)"

    def _start_container(self) -> int:
        import docker.errors

        self.how = "container"
        client = self._client()
        try:
            client.images.get(FALLBACK_IMAGE)
        except docker.errors.ImageNotFound:
            raise EnvironmentProblem(
                f"shipping images needs a local registry: {self.binary} is missing and the local engine has no "
                f"{FALLBACK_IMAGE} image; `apt-get install docker-registry` (scripts/install-deps.sh does it)"
            ) from None
        self._container = client.containers.create(
            FALLBACK_IMAGE, labels={LABEL: "1"},
            environment={"REGISTRY_STORAGE_DELETE_ENABLED": "true", "REGISTRY_AUTH": "htpasswd",
                         "REGISTRY_AUTH_HTPASSWD_REALM": REALM, "REGISTRY_AUTH_HTPASSWD_PATH": FALLBACK_HTPASSWD},
            ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1",)},  # the engine picks a free loopback port
            volumes={FALLBACK_VOLUME: {"bind": FALLBACK_STORAGE, "mode": "rw"}},
        )
        # the hash travels in the API request (works with a remote engine too), never as a bind mount
        self._container.put_archive("/", _tar({FALLBACK_HTPASSWD.lstrip("/"): self.credentials.htpasswd()}))
        self._container.start()
        self._container.reload()
        port = _published_port(self._container.attrs)
        deadline = time.monotonic() + self.ready_timeout
        while not answers(port, self.credentials):
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"the {FALLBACK_IMAGE} container did not answer on 127.0.0.1:{port}")
            time.sleep(0.1)
        return port

    def _client(self):
        if self.client_factory is not None:
            return self.client_factory()
        from provision.deploy.images import local_client

        return local_client()

    # -- the keep policy ---------------------------------------------------------------------
    @property
    def _index_path(self) -> Path:
        return self.state_dir / "deploys.json"

    def _read_index(self) -> dict[str, dict[str, float]]:
        try:
            doc = json.loads(self._index_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict):
            return {}
        return {repo: {tag: float(when) for tag, when in tags.items() if isinstance(when, (int, float))}
                for repo, tags in doc.items() if isinstance(tags, dict)}

    def record(self, references: list[tuple[str, str]]) -> None:
        """Note that this deploy uses these (repository, tag) pairs (the keep policy's input)."""
        if self.how != "binary":
            return
        with _flocked(self.state_dir / "deploys.lock"):
            index = self._read_index()
            now = self.clock()
            for repository, tag in references:
                index.setdefault(repository, {})[tag] = now
            write_private(self._index_path, json.dumps(index, indent=1, sort_keys=True).encode())

    # -- stopping and garbage collection -----------------------------------------------------
    def stop(self, *, collect: bool = False) -> None:
        """Stop whatever was started; safe to call more than once. With `collect` (a deploy that ran to its
        end), first delete every manifest the keep policy drops, then, the registry stopped, run
        distribution's garbage collector (`garbage-collect --delete-untagged`) to reclaim their blobs.
        Skipped (and said so in `collected`) while another deploy's registry serves the same storage."""
        exclusive = False
        try:
            if collect and self.port is not None and self.how == "binary" and self._process is not None:
                exclusive = self._try_exclusive()
                if exclusive:
                    self.collected = {"deleted": self._delete_dropped()}
                else:
                    self.collected = {"skipped": "another deploy is using the registry storage"}
        finally:
            self._stop_serving()
        try:
            if exclusive:
                self.collected.update(self._garbage_collect())
        finally:
            self._unlock()

    def _stop_serving(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        container, self._container = self._container, None
        if container is not None:
            _remove_quietly(container)
        self.port = None

    def _try_exclusive(self) -> bool:
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (OSError, ValueError, TypeError):
            return False
        return True

    def _unlock(self) -> None:
        lock_file, self._lock_file = self._lock_file, None
        if lock_file is not None:
            lock_file.close()  # releases the flock

    def _delete_dropped(self) -> list[str]:
        """Delete (through the registry's API) the manifests of every tag the keep policy drops, unless a kept
        tag of the same repository points to the same manifest. Returns `repository:tag` of what was dropped."""
        with _flocked(self.state_dir / "deploys.lock"):
            index = self._read_index()
            keep = keep_policy(index, self.clock())
            write_private(self._index_path, json.dumps(
                {repo: {tag: when for tag, when in tags.items() if (repo, tag) in keep}
                 for repo, tags in index.items() if any((repo, tag) in keep for tag in tags)},
                indent=1, sort_keys=True).encode())
        api = RegistryAPI(self.port, self.credentials)
        try:
            digests = {(repo, tag): api.digest(repo, tag) for repo in api.repositories() for tag in api.tags(repo)}
            kept = {(repo, digest) for (repo, tag), digest in digests.items() if (repo, tag) in keep}
            dropped, deleted = [], set()
            for (repo, tag), digest in sorted(digests.items()):
                if (repo, tag) in keep or (repo, digest) in kept:
                    continue
                dropped.append(f"{repo}:{tag}")
                if digest and (repo, digest) not in deleted:
                    api.delete(repo, digest)
                    deleted.add((repo, digest))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return [f"(stopped: {exc})"]
        return dropped

    def _garbage_collect(self) -> dict:
        if not (self.state_dir / "storage" / "docker" / "registry" / "v2" / "repositories").is_dir():
            return {"gc": "ok", "blobs_deleted": 0}  # nothing was ever pushed
        try:
            proc = subprocess.run([str(self.binary), "garbage-collect", "--delete-untagged", str(self._config)],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_registry_env(),
                                  timeout=GC_TIMEOUT, start_new_session=True, preexec_fn=_die_with_parent)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"gc": f"failed: {exc}"}
        if proc.returncode != 0:
            return {"gc": f"failed ({proc.returncode}): {(proc.stdout + proc.stderr).strip()[-300:]}"}
        return {"gc": "ok", "blobs_deleted": proc.stdout.count("Deleting blob:") + proc.stderr.count("Deleting blob:")}


class RegistryAPI:
    """The few distribution API calls garbage collection needs, with the run's login."""

    def __init__(self, port: int, credentials: Credentials | None, timeout: float = 10.0) -> None:
        self.base = f"http://127.0.0.1:{port}/v2/"
        self.credentials = credentials
        self.timeout = timeout

    def _open(self, path: str, method: str = "GET", headers: dict | None = None):
        request = urllib.request.Request(self.base + path, method=method, headers=dict(headers or {}))
        if self.credentials is not None:
            request.add_header("Authorization", self.credentials.header())
        return urllib.request.urlopen(request, timeout=self.timeout)

    def repositories(self, page: int = 1000) -> list[str]:
        names: list[str] = []
        while True:  # the catalog is paged (distribution caps a page at 1000)
            after = f"&last={urllib.parse.quote(names[-1], safe='')}" if names else ""
            with self._open(f"_catalog?n={page}{after}") as response:
                batch = list(json.loads(response.read()).get("repositories") or [])
            names.extend(batch)
            if len(batch) < page:
                return names

    def tags(self, repository: str) -> list[str]:
        try:
            with self._open(f"{repository}/tags/list") as response:
                return list(json.loads(response.read()).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # a repository whose every tag is gone
                return []
            raise

    def digest(self, repository: str, tag: str) -> str | None:
        try:
            with self._open(f"{repository}/manifests/{tag}", "HEAD", {"Accept": MANIFEST_TYPES}) as response:
                return response.headers.get("Docker-Content-Digest")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def layer_sizes(self, repository: str, tag: str) -> list[int]:
        """The compressed sizes of an image manifest's layers, bottom first (the order of the image's
        RootFS diff ids); [] for a manifest list or an unknown tag."""
        accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
        try:
            with self._open(f"{repository}/manifests/{tag}", "GET", {"Accept": accept}) as response:
                manifest = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        return [int(layer.get("size") or 0) for layer in manifest.get("layers") or []]

    def delete(self, repository: str, digest: str) -> None:
        with self._open(f"{repository}/manifests/{digest}", "DELETE"):
            pass


@contextlib.contextmanager
def _flocked(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _registry_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}  # they override the config


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the registry when provision dies (kill -9 included), so none is left behind; files it
    creates are its owner's only."""
    os.umask(0o077)
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _published_port(attrs: dict) -> int:
    bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{CONTAINER_PORT}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
            return int(binding["HostPort"])
    raise EnvironmentProblem(f"the {FALLBACK_IMAGE} container publishes no loopback port")


def _remove_quietly(container) -> None:
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.APIError:
        pass
