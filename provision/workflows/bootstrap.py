"""Fresh host to working container host: facts → docker install → NVIDIA stage (GPU hosts) → verify.

One SSH connection per host serves every stage. `verify` alone runs the Docker checks, then the GPU
checks on GPU hosts.
"""

from __future__ import annotations

from provision.executor.base import Executor
from provision.report import HostResult
from provision.workflows import docker, facts, nvidia
from provision.workflows.targets import Target


def verify_all(target: Target, executor: Executor, *, check: bool = False, deep: bool = False) -> HostResult:
    result = docker.verify_work(target, executor)
    if result.status != "failed":
        nvidia.verify_steps(target, executor, result, check=check, deep=deep)
    return result


def verify_work(check: bool = False, deep: bool = False):
    """`provision verify`: the Docker checks, then the GPU ladder on GPU hosts (--deep: DCGM, nvbandwidth;
    --check: nothing that starts a container for the GPU ladder)."""
    def work(target: Target, executor: Executor) -> HostResult:
        return verify_all(target, executor, check=check, deep=deep)

    return work


def bootstrap_work(check: bool, stamp: str, reboot: bool, refresh: bool = False):
    install = docker.install_work(check, stamp, refresh)

    def work(target: Target, executor: Executor) -> HostResult:
        gathered = facts.gather(target, executor)
        result = HostResult(target.name, steps=list(gathered.steps), extra=dict(gathered.extra))
        if result.status == "failed":
            return result
        installed = install(target, executor)
        result.steps.extend(installed.steps)
        result.commands.extend(installed.commands)
        for key, value in installed.extra.items():  # notes and plans accumulate across stages
            if isinstance(value, list):
                result.extra.setdefault(key, []).extend(value)
            else:
                result.extra[key] = value
        if installed.status == "failed" or check:
            return result
        nvidia.stage(target, executor, result, check, stamp, reboot, refresh=refresh)
        if result.status == "failed" or result.extra.get("reboot_required"):
            return result
        gpu_skipped = result.steps[-1].name == "gpu" and result.steps[-1].status == "skipped"
        verified = docker.verify_work(target, executor) if gpu_skipped else verify_all(target, executor)
        result.steps.extend(verified.steps)
        result.commands.extend(verified.commands)
        return result

    return work
