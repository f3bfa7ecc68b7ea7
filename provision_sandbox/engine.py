"""The local Docker engine the sandbox runs on (never a product code path)."""

from __future__ import annotations

import os

from provision.errors import EnvironmentProblem

HOW_TO_GET_ONE = (
    "install one and start it: `apt-get install docker.io` then `dockerd &` "
    "(or `systemctl start docker`); `make deps` (scripts/install-deps.sh) does both"
)


def local_docker():
    """A docker SDK client for the local engine, or a clear explanation of why there is none."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise EnvironmentProblem(f"the docker Python SDK is missing: {exc}") from None
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EnvironmentProblem(
            f"the sandbox needs a local Docker engine, and none answers at {where} ({_short(exc)}): {HOW_TO_GET_ONE}"
        ) from None
    return client


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
