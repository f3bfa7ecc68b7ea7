"""The fleet's image registry, a Docker Hub mirror for the hosts' engines (`docker run hello-world`).

`provision-<fleet>-upstream-registry` runs Debian's real `docker-registry` binary (distribution 2.8,
bind-mounted read-only from this machine) in a container of the host image, with a minimal config:
no auth, storage in a labelled volume. On the fleet network it is `sandbox-registry:5000`; it is
also published on 127.0.0.1 (an engine-chosen free port) so this machine can push to it.
A tiny FROM-scratch hello-world (provision_sandbox/hello/) is built here and pushed as
library/hello-world:latest, the path a Hub mirror serves `hello-world` from.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from provision.errors import EnvironmentProblem
from provision_sandbox import image as host_image
from provision_sandbox.names import RECIPE_LABEL, Paths
from provision_sandbox.upstreams import containers

ROLE = "upstream-registry"
ALIAS = "sandbox-registry"
PORT = 5000
BINARY = Path("/usr/bin/docker-registry")
CONFIG_PATH = "/etc/docker/registry/config.yml"
STORAGE = "/var/lib/docker-registry"

# The packaged config turns on htpasswd auth with a path that does not exist: use a minimal one.
CONFIG = f"""version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {STORAGE}
  delete:
    enabled: true
http:
  addr: :{PORT}
  headers:
    X-Content-Type-Options: [nosniff]
"""

HELLO_DIR = Path(__file__).resolve().parent.parent / "hello"
HELLO_IMAGE = "provision-sandbox/hello-world:latest"
HELLO_REPOSITORY = "library/hello-world"
HELLO_TAG = "latest"
HELLO_CFLAGS = ["-Os", "-static", "-nostdlib", "-fno-asynchronous-unwind-tables", "-fno-stack-protector",
                "-Wl,--build-id=none", "-s"]
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def container_name(paths: Paths) -> str:
    return paths.container(ROLE)


def volume_name(paths: Paths) -> str:
    return f"{container_name(paths)}-data"


# -- the registry ----------------------------------------------------------------------------
def ensure_registry(client, paths: Paths, log: Callable[[str], None]) -> int:
    """Start the registry if needed; returns its loopback port on this machine."""
    if not BINARY.is_file():
        raise EnvironmentProblem(f"{BINARY} is missing: `apt-get install docker-registry` (scripts/install-deps.sh does it)")
    config = containers.config_hash(CONFIG, str(BINARY), str(PORT), ALIAS)
    name = container_name(paths)

    def create():
        _ensure_volume(client, paths)
        container = client.containers.create(
            host_image.IMAGE, command=[str(BINARY), "serve", CONFIG_PATH], name=name, hostname=ROLE, detach=True,
            labels=containers.labels(paths, ROLE, config), network=paths.network,
            networking_config=containers.endpoint(client, paths.network, [ALIAS]),
            ports={f"{PORT}/tcp": ("127.0.0.1",)},
            volumes={str(BINARY): {"bind": str(BINARY), "mode": "ro"},
                     volume_name(paths): {"bind": STORAGE, "mode": "rw"}},
        )
        container.put_archive("/", containers.files_tar([containers.File(CONFIG_PATH, CONFIG.encode())]))
        return container

    container = containers.ensure_container(client, name, config, create, log)
    port = published_port(container.attrs)
    containers.wait_for(lambda: _get(port, "/v2/")[0] == 200, container, "the sandbox registry")
    return port


def published_port(attrs: dict) -> int:
    """The loopback port the engine chose for the registry (from the container's inspect data)."""
    bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{PORT}/tcp") or []
    for binding in bindings:
        if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
            return int(binding["HostPort"])
    raise EnvironmentProblem(f"the sandbox registry publishes no loopback port for {PORT}/tcp")


def _ensure_volume(client, paths: Paths) -> None:
    import docker.errors

    try:
        client.volumes.get(volume_name(paths))
    except docker.errors.NotFound:
        client.volumes.create(volume_name(paths), labels=containers.labels(paths, ROLE))


def _get(port: int, path: str, accept: str | None = None) -> tuple[int, bytes]:
    """GET on the registry's loopback port; (status, body), status 0 when nothing answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


# -- hello-world -----------------------------------------------------------------------------
def hello_recipe_hash() -> str:
    return containers.config_hash((HELLO_DIR / "hello.c").read_bytes(), (HELLO_DIR / "Dockerfile").read_bytes(),
                                  " ".join(HELLO_CFLAGS))


def ensure_hello_world(client, port: int, log: Callable[[str], None]) -> None:
    """library/hello-world:latest in the registry is the current hello-world image (pushed if not)."""
    push_if_changed(client, port, _ensure_hello_image(client, log), HELLO_REPOSITORY, HELLO_TAG, log)


def push_if_changed(client, port: int, image, repository: str, tag: str, log: Callable[[str], None]) -> None:
    """Push a local image to the sandbox registry as repository:tag unless it is there already."""
    if registry_config_digest(port, repository, tag) == image.id:
        return
    target = f"127.0.0.1:{port}/{repository}"
    image.tag(target, tag)
    try:
        for event in client.images.push(target, tag, stream=True, decode=True):
            if "error" in event:
                raise EnvironmentProblem(f"pushing {repository}:{tag} to the sandbox registry failed: {event['error']}")
    finally:
        client.images.remove(f"{target}:{tag}", noprune=True)
    log(f"pushed {repository}:{tag} to the sandbox registry")


def registry_config_digest(port: int, repository: str, tag: str) -> str | None:
    """The config digest (= local image id) of repository:tag in the registry, None if absent."""
    status, body = _get(port, f"/v2/{repository}/manifests/{tag}", accept=MANIFEST_V2)
    if status != 200:
        return None
    try:
        return json.loads(body)["config"]["digest"]
    except (ValueError, KeyError, TypeError):
        return None


def _ensure_hello_image(client, log: Callable[[str], None]):
    return cached_image(client, HELLO_IMAGE, hello_recipe_hash(), lambda: {
        "Dockerfile": ((HELLO_DIR / "Dockerfile").read_bytes(), 0o644), "hello": (_compile_hello(), 0o755),
    }, log, "a FROM-scratch stand-in for hello-world")


def cached_image(client, tag: str, recipe: str, files: Callable[[], dict[str, tuple[bytes, int]]],
                 log: Callable[[str], None], what: str):
    """The local image `tag` built from a context of files (name → (data, mode)); rebuilt only when
    the recipe (a hash the caller computes) changed."""
    import docker.errors

    try:
        image = client.images.get(tag)
        if (image.labels or {}).get(RECIPE_LABEL) == recipe:
            return image
    except docker.errors.ImageNotFound:
        pass
    log(f"building {tag} ({what})")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, (data, mode) in files().items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    image, _ = client.images.build(fileobj=io.BytesIO(buffer.getvalue()), custom_context=True, tag=tag,
                                   labels={RECIPE_LABEL: recipe}, rm=True, forcerm=True)
    return image


def _compile_hello() -> bytes:
    """The static hello binary, built with this machine's gcc."""
    if shutil.which("gcc") is None:
        raise EnvironmentProblem("building the sandbox's hello-world needs gcc: `apt-get install gcc` "
                                 "(scripts/install-deps.sh does it)")
    with tempfile.TemporaryDirectory(prefix="provision-hello-") as tmp:
        binary = Path(tmp) / "hello"
        proc = subprocess.run(["gcc", *HELLO_CFLAGS, "-o", str(binary), str(HELLO_DIR / "hello.c")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise EnvironmentProblem(f"compiling hello.c failed:\n{proc.stderr.strip()[-1500:]}")
        return binary.read_bytes()
