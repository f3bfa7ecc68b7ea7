"""SIMULATION: CUDA images that declare what they need, as NVIDIA's do, served by the sandbox registry (issue 14).

There is no GPU and no CUDA here. These stand-ins are the sandbox's busybox-only image (gpu_image.py) with
the config ``Env`` NVIDIA's CUDA images carry (``CUDA_VERSION``, ``NVIDIA_REQUIRE_CUDA``), so that
`provision deploy` reads a real registry's manifest and config blob and compares them with the simulated
driver (550.54.15, CUDA 12.4: provision_sandbox/fake_gpu/nvidia-smi):

- ``nvidia/cuda:13.0.0-base-ubuntu24.04`` (SIMULATION): ``cuda>=13.0`` and nothing else: too new for the
  simulated driver, refused before deploy.
- ``nvidia/cuda:12.8.0-compat-sim`` (SIMULATION): ``cuda>=12.8`` or, through forward compatibility, the
  550 driver branch (``brand=B,driver>=550,driver<551`` for each brand NVIDIA's 12.x images list: tesla,
  unknown, nvidia, nvidiartx, geforce, geforcertx, quadro, quadrortx, titan, titanrtx), as NVIDIA's images
  list the branches their cuda-compat package supports. The toolkit lets a GeForce start it; CUDA's forward
  compatibility then fails (data center GPUs only), which provision refuses before deploy.
"""

from __future__ import annotations

from typing import Callable

from provision_sandbox.upstreams import containers, gpu_image
from provision_sandbox.upstreams.registry import cached_image, push_if_changed

REPOSITORY = "nvidia/cuda"
# the brands NVIDIA's CUDA 12.x images list in each forward-compatibility alternative of NVIDIA_REQUIRE_CUDA
IMAGE_BRANDS = ("tesla", "unknown", "nvidia", "nvidiartx", "geforce", "geforcertx", "quadro", "quadrortx", "titan",
                "titanrtx")
# tag → the Env lines of the stand-in
IMAGES: dict[str, tuple[str, ...]] = {
    "13.0.0-base-ubuntu24.04": ("CUDA_VERSION=13.0.0", "NVIDIA_REQUIRE_CUDA=cuda>=13.0"),
    "12.8.0-compat-sim": ("CUDA_VERSION=12.8.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.8 " + " ".join(
                              f"brand={b},driver>=550,driver<551" for b in IMAGE_BRANDS),
                          "LD_LIBRARY_PATH=/usr/local/cuda/compat"),
}
TOO_NEW = f"{REPOSITORY}:13.0.0-base-ubuntu24.04"
COMPAT = f"{REPOSITORY}:12.8.0-compat-sim"


def dockerfile(env: tuple[str, ...]) -> bytes:
    lines = [gpu_image.DOCKERFILE.decode().rstrip("\n")]
    lines += [f'ENV {line.split("=", 1)[0]}="{line.split("=", 1)[1]}"' for line in env]
    lines.append('LABEL io.provision.sandbox.simulation="SIMULATION: CUDA stand-in, no CUDA inside"')
    return ("\n".join(lines) + "\n").encode()


def ensure_cuda_images(client, port: int, log: Callable[[str], None]) -> None:
    binary = gpu_image.BUSYBOX.read_bytes() if gpu_image.BUSYBOX.exists() else None
    if binary is None:
        return  # gpu_image.ensure_gpu_image has said what is missing
    for tag, env in IMAGES.items():
        recipe = dockerfile(env)
        image = cached_image(client, f"provision-sandbox/cuda-sim:{tag}", containers.config_hash(recipe, binary),
                             lambda recipe=recipe: {"Dockerfile": (recipe, 0o644), "busybox": (binary, 0o755)},
                             log, f"SIMULATION: stand-in for {REPOSITORY}:{tag}")
        push_if_changed(client, port, image, REPOSITORY, tag, log)
