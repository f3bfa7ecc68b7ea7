"""Is this host a GPU host? One decision (and one wording) for `provision nvidia`/`verify` and the
GPU node label of `provision swarm init`."""

from __future__ import annotations

NO_GPU = "no NVIDIA GPU (PCI vendor 10de) and `gpu` not set: GPU steps skipped"


def is_gpu_host(gpu: bool | None, facts: dict | None) -> tuple[bool, str]:
    """(GPU host?, why): the inventory's `gpu` var when set, else whether the facts found an NVIDIA GPU."""
    if gpu is not None:
        return gpu, "inventory sets gpu: " + ("true" if gpu else "false")
    gpus = (facts or {}).get("gpus") or []
    if gpus:
        return True, f"{len(gpus)} NVIDIA GPU(s) found"
    return False, NO_GPU
