"""Offline upstreams for the sandbox fleet: the REAL upstream URLs, answered on the fleet network.

There is no internet in the sandbox, yet the product installs Docker exactly as docs.docker.com says
(https://download.docker.com/linux/debian, `docker run hello-world`). Per fleet, the sandbox runs:

* `provision-<fleet>-upstream-web`: a signed apt repository laid out like download.docker.com
  (docker_repo.py) and a SIMULATED nvidia.github.io/libnvidia-container repository (nvidia_repo.py:
  stand-in NVIDIA Container Toolkit packages, no GPU exists here), served over http and https under
  the network aliases download.docker.com and nvidia.github.io, with a certificate from the sandbox
  CA (ca.py, web.py);
* `provision-<fleet>-upstream-registry`: Debian's docker-registry as `sandbox-registry:5000`, a Docker
  Hub mirror holding library/hello-world (registry.py).

Hosts trust the sandbox CA (`trust_ca`, as a cloud image with a corporate CA would), and the written
inventory tells the product's daemon.json to use the mirror (`inventory_vars`). The product never
knows it is in a sandbox. Built artefacts are cached under `<PROVISION_HOME>/cache/` (or
$PROVISION_CACHE), shared by all fleets: docker-repo/<recipe-hash>/ (the web root of
download.docker.com), docker-repo/gnupg/ and gnupg-decoy/ (keys), nvidia-repo/<recipe-hash>/ and
nvidia-repo/gnupg/ (the simulated nvidia.github.io and its own key), sandbox-ca/ (CA and server cert).
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from provision.errors import EnvironmentProblem
from provision_sandbox.names import Paths
from provision_sandbox.upstreams import gpu_image, registry, web
from provision_sandbox.upstreams.ca import SERVER_NAMES, ensure_certificates
from provision_sandbox.upstreams.docker_repo import ensure_docker_repo
from provision_sandbox.upstreams.nvidia_repo import ensure_nvidia_repo
from provision_sandbox.upstreams.packages import DOCKER_CE_VERSIONS

CA_FILE = "provision-sandbox-ca.crt"
CA_DIR = "/usr/local/share/ca-certificates"

__all__ = ["Upstreams", "ensure_upstreams", "trust_ca", "inventory_vars", "cache_dir", "DOCKER_CE_VERSIONS"]


@dataclass(frozen=True)
class Upstreams:
    """What the fleet's hosts and inventory need to know about the offline upstreams."""

    ca_pem: str
    registry_alias: str
    registry_port: int  # on the fleet network
    registry_local_port: int  # on 127.0.0.1 of this machine (for pushes)
    site_names: tuple[str, ...]
    repo_dir: Path
    web_container: str
    registry_container: str
    nvidia_repo_dir: Path | None = None  # web root of the SIMULATED nvidia.github.io

    @property
    def registry_address(self) -> str:
        return f"{self.registry_alias}:{self.registry_port}"

    @property
    def registry_mirror(self) -> str:
        return f"http://{self.registry_address}"


def cache_dir(paths: Paths) -> Path:
    """Where built artefacts are kept: $PROVISION_CACHE, else <PROVISION_HOME>/cache (shared by fleets)."""
    override = os.environ.get("PROVISION_CACHE")
    return Path(override).absolute() if override else paths.home / "cache"


def ensure_upstreams(client, paths: Paths, log: Callable[[str], None] = print) -> Upstreams:
    """Build (once, cached) and start (when missing) the fleet's offline upstreams. Idempotent.

    The fleet network `paths.network` must exist already (fleet.up creates it first)."""
    _require_network(client, paths)
    cache = cache_dir(paths)
    repo = ensure_docker_repo(cache, log)
    nvidia = ensure_nvidia_repo(cache, log)
    certs = ensure_certificates(cache)
    web.ensure_web(client, paths, repo, certs, log, nvidia=nvidia)
    local_port = registry.ensure_registry(client, paths, log)
    registry.ensure_hello_world(client, local_port, log)
    gpu_image.ensure_gpu_image(client, local_port, log)  # SIMULATION: nvidia/cuda stand-in
    from provision_sandbox.upstreams.cuda_images import ensure_cuda_images

    ensure_cuda_images(client, local_port, log)  # SIMULATION: CUDA images with NVIDIA_REQUIRE_CUDA (issue 14)
    from provision_sandbox.base_image import ensure_busybox_image

    ensure_busybox_image(client, log)  # the base of the sample playbooks' locally built images
    return Upstreams(
        ca_pem=certs.ca_pem, registry_alias=registry.ALIAS, registry_port=registry.PORT,
        registry_local_port=local_port, site_names=SERVER_NAMES, repo_dir=repo.root,
        web_container=web.container_name(paths), registry_container=registry.container_name(paths),
        nvidia_repo_dir=nvidia.root,
    )


def trust_ca(container, upstreams: Upstreams) -> None:
    """Install the sandbox CA into a running host's trust store (update-ca-certificates)."""
    data = upstreams.ca_pem.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(CA_FILE)
        info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    container.exec_run(["install", "-d", "-m", "0755", CA_DIR])
    container.put_archive(CA_DIR, buffer.getvalue())
    code, out = container.exec_run(["update-ca-certificates"])
    if code != 0:
        detail = out.decode(errors="replace").strip()[-500:]
        raise EnvironmentProblem(f"update-ca-certificates failed in {container.name}: {detail}")


def inventory_vars(upstreams: Upstreams) -> dict:
    """Inventory vars (all.vars) that point the product's daemon.json at the registry mirror."""
    return {
        "docker_daemon": {
            "registry-mirrors": [upstreams.registry_mirror],
            "insecure-registries": [upstreams.registry_address],
        }
    }


def _require_network(client, paths: Paths) -> None:
    if not any(n.name == paths.network for n in client.networks.list(names=[paths.network])):
        raise EnvironmentProblem(f"the fleet network {paths.network} does not exist (fleet.up creates it)")
