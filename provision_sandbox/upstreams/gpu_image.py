"""SIMULATION: a stand-in for NVIDIA's CUDA base image, served by the sandbox's Hub mirror.

`provision verify` runs `docker run --gpus all nvidia/cuda:12.4.1-base-ubuntu22.04 nvidia-smi ...` on GPU
hosts. There is no GPU and no registry access here, so the mirror serves, under that real name, a tiny
FROM-scratch image with a static busybox (a shell for the fake nvidia-smi that the simulated
nvidia-container-runtime-hook injects). It contains no CUDA at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from provision.errors import EnvironmentProblem
from provision_sandbox.upstreams import containers
from provision_sandbox.upstreams.registry import cached_image, push_if_changed

BUSYBOX = Path("/bin/busybox")
IMAGE = "provision-sandbox/cuda-sim:12.4.1"
REPOSITORY, TAG = "nvidia/cuda", "12.4.1-base-ubuntu22.04"
DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/tmp"]
RUN ["/bin/busybox", "--install", "-s", "/bin"]
LABEL org.opencontainers.image.description="SIMULATION: stand-in for nvidia/cuda base (busybox only, no CUDA)"
CMD ["/bin/sh"]
"""


def ensure_gpu_image(client, port: int, log: Callable[[str], None]) -> None:
    push_if_changed(client, port, _ensure_image(client, log), REPOSITORY, TAG, log)


def _ensure_image(client, log: Callable[[str], None]):
    if not BUSYBOX.exists():
        raise EnvironmentProblem("the sandbox's simulated CUDA image needs a static busybox: "
                                 "`apt-get install busybox-static` (scripts/install-deps.sh does it)")
    binary = BUSYBOX.read_bytes()
    return cached_image(client, IMAGE, containers.config_hash(DOCKERFILE, binary),
                        lambda: {"Dockerfile": (DOCKERFILE, 0o644), "busybox": (binary, 0o755)},
                        log, f"SIMULATION: stand-in for {REPOSITORY}:{TAG}")
