"""SIMULATION: stand-ins for NVIDIA's CUDA base image and CUDA vectorAdd sample image, served by the
sandbox's Hub mirror.

`provision verify` runs `docker run --gpus all nvidia/cuda:12.4.1-base-ubuntu22.04 nvidia-smi ...` on GPU
hosts. There is no GPU and no registry access here, so the mirror serves, under that real name, a tiny
FROM-scratch image with a static busybox (a shell for the fake nvidia-smi that the simulated
nvidia-container-runtime-hook injects). It contains no CUDA at all.

The CUDA workload of `provision verify` (`verify_cuda_image`, by default NVIDIA's
nvcr.io/nvidia/k8s/cuda-sample vectorAdd image) has a stand-in too, SAMPLE_REPOSITORY:SAMPLE_TAG (the
sandbox inventory sets verify_cuda_image to it on simulated GPU hosts: the Hub mirror serves Docker Hub
names only): the same busybox, and fake_gpu/vectorAdd as its command, with the image's
NVIDIA_REQUIRE_CUDA as NVIDIA's CUDA 12.4 images declare it (the "cuda>=12.4" part).
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


SAMPLE_IMAGE = "provision-sandbox/cuda-sample-sim:vectoradd-cuda12.4.1"
SAMPLE_REPOSITORY, SAMPLE_TAG = "provision-sandbox/cuda-sample", "vectoradd-cuda12.4.1-sim"
SAMPLE_REFERENCE = f"{SAMPLE_REPOSITORY}:{SAMPLE_TAG}"
SAMPLE_REQUIRE_CUDA = "cuda>=12.4"
SAMPLE_DOCKERFILE = f"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/tmp", "/cuda-samples"]
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY vectorAdd /cuda-samples/vectorAdd
ENV NVIDIA_REQUIRE_CUDA="{SAMPLE_REQUIRE_CUDA}" NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
LABEL org.opencontainers.image.description="SIMULATION: stand-in for NVIDIA's cuda-sample vectorAdd (busybox, no CUDA)"
CMD ["/cuda-samples/vectorAdd"]
""".encode()


def ensure_gpu_image(client, port: int, log: Callable[[str], None]) -> None:
    push_if_changed(client, port, _ensure_image(client, log), REPOSITORY, TAG, log)
    push_if_changed(client, port, _ensure_sample_image(client, log), SAMPLE_REPOSITORY, SAMPLE_TAG, log)


def _ensure_sample_image(client, log: Callable[[str], None]):
    from provision_sandbox import fake_gpu

    binary, script = BUSYBOX.read_bytes(), fake_gpu.source("vectorAdd").encode()
    return cached_image(client, SAMPLE_IMAGE, containers.config_hash(SAMPLE_DOCKERFILE, binary, script),
                        lambda: {"Dockerfile": (SAMPLE_DOCKERFILE, 0o644), "busybox": (binary, 0o755),
                                 "vectorAdd": (script, 0o755)},
                        log, f"SIMULATION: stand-in for NVIDIA's cuda-sample vectorAdd ({SAMPLE_REFERENCE})")


def _ensure_image(client, log: Callable[[str], None]):
    if not BUSYBOX.exists():
        raise EnvironmentProblem("the sandbox's simulated CUDA image needs a static busybox: "
                                 "`apt-get install busybox-static` (scripts/install-deps.sh does it)")
    binary = BUSYBOX.read_bytes()
    return cached_image(client, IMAGE, containers.config_hash(DOCKERFILE, binary),
                        lambda: {"Dockerfile": (DOCKERFILE, 0o644), "busybox": (binary, 0o755)},
                        log, f"SIMULATION: stand-in for {REPOSITORY}:{TAG}")
