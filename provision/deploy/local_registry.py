"""A real image registry on the operator's machine, on 127.0.0.1 only, for the length of a deploy.

Images are pushed here by the local engine (only layers the registry lacks travel) and pulled by
each host through a reverse SSH tunnel (see provision.deploy.shipping). No external registry.

Preferred: Debian's `docker-registry` binary (distribution 2.8) run as a subprocess (in its own
session, so a Ctrl-C in the terminal does not kill it while hosts still pull; it dies with
provision, even a killed one, through PR_SET_PDEATHSIG) with a minimal generated config; storage lives under a persistent state dir so unchanged layers are never pushed
twice. Fallback: the `registry:2` image, if the local engine already has it. Docker engines allow
plain-HTTP registries on 127.0.0.0/8 without any configuration, on both ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from provision.errors import EnvironmentProblem

BINARY = Path("/usr/bin/docker-registry")
DEFAULT_STATE_DIR = Path(".provision/registry")
FALLBACK_IMAGE = "registry:2"
FALLBACK_VOLUME = "provision-registry"
FALLBACK_STORAGE = "/var/lib/registry"
CONTAINER_PORT = 5000
LABEL = "io.provision.local-registry"
START_ATTEMPTS = 3


def registry_config(storage: Path | str, port: int, *, address: str = "127.0.0.1") -> str:
    """The registry's config: no auth, filesystem storage, deletes allowed, loopback only."""
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
"""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    """True when `GET /v2/` on 127.0.0.1:port answers 200 (a registry is serving)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class LocalRegistry:
    """A registry on 127.0.0.1:<free port>. No I/O until `start()`; `with` starts and always stops it."""

    def __init__(self, state_dir: Path | str = DEFAULT_STATE_DIR, *, binary: Path | str = BINARY,
                 client_factory=None, ready_timeout: float = 20.0) -> None:
        self.state_dir = Path(state_dir)
        self.binary = Path(binary)
        self.client_factory = client_factory
        self.ready_timeout = ready_timeout
        self.port: int | None = None
        self.how: str | None = None  # "binary" | "container"
        self._process: subprocess.Popen | None = None
        self._container = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- starting --------------------------------------------------------------------------
    def start(self) -> int:
        """Start the registry (once) and return its port once `GET /v2/` answers."""
        if self.port is not None:
            return self.port
        try:
            self.port = self._start_binary() if self.binary.is_file() else self._start_container()
        except BaseException:
            self.stop()
            raise
        return self.port

    def _start_binary(self) -> int:
        self.how = "binary"
        storage = self.state_dir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        for attempt in range(START_ATTEMPTS):  # a free port can be taken between probe and bind
            port = free_port()
            self._spawn(storage.resolve(), port)
            if self._wait_ready(port, last=attempt == START_ATTEMPTS - 1):
                return port
        raise AssertionError("unreachable")  # pragma: no cover - _wait_ready raises on the last try

    def _spawn(self, storage: Path, port: int) -> None:
        config = self.state_dir / "config.yml"
        config.write_text(registry_config(storage, port))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}  # they override the config
        with open(self.state_dir / "registry.log", "wb") as log:
            # its own session: the terminal's Ctrl-C reaches provision only, which stops the registry
            # last, after every host has pulled; it still dies with provision if provision is killed
            self._process = subprocess.Popen([str(self.binary), "serve", str(config)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                             preexec_fn=_die_with_parent)

    def _wait_ready(self, port: int, *, last: bool) -> bool:
        """True once the subprocess serves; False (process reaped) if it died and may be retried."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if answers(port):
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
        self._container = client.containers.run(
            FALLBACK_IMAGE, detach=True, labels={LABEL: "1"},
            environment={"REGISTRY_STORAGE_DELETE_ENABLED": "true"},
            ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1",)},  # the engine picks a free loopback port
            volumes={FALLBACK_VOLUME: {"bind": FALLBACK_STORAGE, "mode": "rw"}},
        )
        self._container.reload()
        port = _published_port(self._container.attrs)
        deadline = time.monotonic() + self.ready_timeout
        while not answers(port):
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"the {FALLBACK_IMAGE} container did not answer on 127.0.0.1:{port}")
            time.sleep(0.1)
        return port

    def _client(self):
        if self.client_factory is not None:
            return self.client_factory()
        from provision.deploy.images import local_client

        return local_client()

    # -- stopping --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop whatever was started; safe to call more than once."""
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


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the registry when provision dies (kill -9 included), so none is left behind."""
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
