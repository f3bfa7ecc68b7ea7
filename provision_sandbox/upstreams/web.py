"""The mirror container: answers as download.docker.com and nvidia.github.io on the fleet network.

`provision-<fleet>-upstream-web`, from the host image, runs static_server.py (python3 of the image)
on :80 and :443 with the sandbox CA's certificate. The docker repository and (when given) the
SIMULATED NVIDIA repository (nvidia_repo.py) are bind-mounted read-only from the cache; without the
latter nvidia.github.io is an empty site. Nothing is published on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from provision_sandbox import image as host_image
from provision_sandbox.names import Paths
from provision_sandbox.upstreams import containers
from provision_sandbox.upstreams.ca import SERVER_NAMES, Certificates
from provision_sandbox.upstreams.docker_repo import DockerRepo
from provision_sandbox.upstreams.nvidia_repo import NvidiaRepo

ROLE = "upstream-web"
SERVER_SCRIPT = Path(__file__).with_name("static_server.py")
APP_DIR = "/opt/provision-mirror"
WEB_ROOT = "/srv/www"
DOCKER_SITE = "download.docker.com"
NVIDIA_SITE = "nvidia.github.io"


def container_name(paths: Paths) -> str:
    return paths.container(ROLE)


def server_command() -> list[str]:
    return ["python3", f"{APP_DIR}/static_server.py", "--root", WEB_ROOT, "--http", "80", "--https", "443",
            "--cert", f"{APP_DIR}/server.pem", "--key", f"{APP_DIR}/server.key"]


def ensure_web(client, paths: Paths, repo: DockerRepo, certs: Certificates, log: Callable[[str], None],
               nvidia: NvidiaRepo | None = None):
    """The running mirror container for these repository builds and certificate."""
    script = SERVER_SCRIPT.read_bytes()
    nvidia_parts = (nvidia.recipe_hash, str(nvidia.root)) if nvidia is not None else ()
    config = containers.config_hash(repo.recipe_hash, str(repo.root), certs.fingerprint, script, *SERVER_NAMES,
                                    *nvidia_parts)
    volumes = {str(repo.root): {"bind": f"{WEB_ROOT}/{DOCKER_SITE}", "mode": "ro"}}
    if nvidia is not None:
        volumes[str(nvidia.root)] = {"bind": f"{WEB_ROOT}/{NVIDIA_SITE}", "mode": "ro"}
    name = container_name(paths)

    def create():
        container = client.containers.create(
            host_image.IMAGE, command=server_command(), name=name, hostname=ROLE, detach=True,
            labels=containers.labels(paths, ROLE, config), network=paths.network,
            networking_config=containers.endpoint(client, paths.network, list(SERVER_NAMES)),
            volumes=volumes,
        )
        container.put_archive("/", _files_tar(script, certs, served=tuple(volumes_sites(volumes))))
        return container

    container = containers.ensure_container(client, name, config, create, log)
    containers.wait_for(lambda: b"serving " in container.logs(), container, "the offline upstream mirror")
    return container


def volumes_sites(volumes: dict) -> list[str]:
    """Sites whose web root is a bind mount."""
    return [v["bind"].rsplit("/", 1)[-1] for v in volumes.values()]


def _files_tar(script: bytes, certs: Certificates, served: tuple[str, ...] = (DOCKER_SITE,)) -> bytes:
    """The server, its certificate chain and key, and empty web roots for the sites not `served`
    from a bind mount."""
    files = [
        containers.File(f"{APP_DIR}/static_server.py", script),
        containers.File(f"{APP_DIR}/server.pem", certs.server_chain_pem.encode()),
        containers.File(f"{APP_DIR}/server.key", certs.server_key_path.read_bytes(), 0o600),
    ]
    empty_sites = tuple(f"{WEB_ROOT}/{site}" for site in SERVER_NAMES if site not in served)
    return containers.files_tar(files, folders=(WEB_ROOT, *empty_sites))
