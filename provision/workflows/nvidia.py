"""GPU hosts: the NVIDIA stage (driver where missing, Container Toolkit, runtime, CDI) and GPU verify.

Hosts without NVIDIA GPUs are skipped with the reason. Reboots only with --reboot, never the machine
provision runs on; the host is waited for, and the stage resumes and re-verifies.
"""

from __future__ import annotations

import time
from pathlib import Path

from provision import progress
from provision.commands import apt, daemon_json, nvidia, system
from provision.config.host_settings import NvidiaSettings, nvidia_settings
from provision.errors import HostKeyChanged, HostUnreachable
from provision.executor.base import Executor
from provision.facts import nvidia_host
from provision.operations import dpkg, gpu_ladder
from provision.operations import nvidia_install as op
from provision.operations.base import Change, Refusal
from provision.report import HostResult, StepResult
from provision.workflows import gpu_verify
from provision.workflows.applier import Applier
from provision.workflows.host_lock import HostLock
from provision.workflows.targets import Target


def validate_settings(targets: list[Target]) -> None:
    for target in targets:
        nvidia_settings(target.name, target.hostvars)


def _facts(executor: Executor, target: Target) -> dict:
    from provision.facts.model import parse_facts
    from provision.facts.script import FACTS_SCRIPT

    return parse_facts(executor.run(FACTS_SCRIPT, become=target.settings.become).stdout)


def _state(executor: Executor, settings: NvidiaSettings, refresh: bool = False,
           record: bool = False) -> nvidia_host.NvidiaHostState:
    """The toolkit's key and list are downloaded (to compare digests) only when their last recorded check is
    older than nvidia_repo_key_max_age, or does not match the files, or with REFRESH; RECORD: not under --check."""
    max_age = 0 if refresh else settings.nvidia_repo_key_max_age
    script = nvidia_host.probe(settings.nvidia_repo_url, apt.env_prefix(settings.proxy), max_age, record)
    return nvidia_host.parse(executor.run(script, become=True).stdout)


def install_work(check: bool, stamp: str, reboot: bool, refresh: bool = False):
    def work(target: Target, executor: Executor) -> HostResult:
        result = HostResult(target.name)
        stage(target, executor, result, check, stamp, reboot, refresh=refresh)
        return result

    return work


def stage(target: Target, executor: Executor, result: HostResult, check: bool, stamp: str, reboot: bool,
          facts: dict | None = None, refresh: bool = False) -> None:
    """The NVIDIA stage, appended to result (also used by bootstrap), under the host lock from its first
    change on (it restarts docker)."""
    with HostLock(executor, "nvidia install", result=result, lazy=True) as lock:
        _stage(target, executor, result, check, stamp, reboot, facts, lock, refresh)


def _stage(target: Target, executor: Executor, result: HostResult, check: bool, stamp: str, reboot: bool,
           facts: dict | None, lock: HostLock, refresh: bool = False) -> None:
    settings = nvidia_settings(target.name, target.hostvars)
    progress.step("nvidia probe")
    facts = facts if facts is not None else _facts(executor, target)
    gpu, why = op.is_gpu_host(facts, settings)
    if not gpu:
        result.steps.append(StepResult("gpu", "skipped", why))
        return
    if not facts.get("docker"):
        result.steps.append(StepResult("gpu", "failed", "Docker is not installed: run `provision docker install` "
                                                         "first (`provision bootstrap` does both)"))
        return
    applier = Applier(executor, result, check, stamp=stamp, before_change=lock.ensure)
    driver_plan = op.driver(facts, settings)
    if isinstance(driver_plan, Change) and (facts.get("os") or {}).get("id") == "ubuntu":
        listing = executor.run(nvidia.pending_kernels_command(apt.env_prefix(settings.proxy)), become=True)
        if not listing.ok:
            applier.apply(Refusal("gpu kernel", f"cannot check for a newer kernel: {listing.error_summary()}"))
            return
        if applier.apply(op.kernel_upgrade(nvidia.parse_pending_kernels(listing.stdout), settings)):
            facts = dict(facts, reboot_required=True)
        if applier.failed:
            return
    if isinstance(driver_plan, Change) and facts.get("reboot_required"):
        # a pending reboot (a newer kernel, say) comes first: the driver's modules build for the kernel that runs
        if not _reboot(target, executor, result, settings, check, reboot, lock):
            return
        facts = _facts(executor, target)
        driver_plan = op.driver(facts, settings)
    driver_changed = applier.apply(driver_plan)
    if applier.failed:
        return
    if driver_changed or facts.get("reboot_required"):
        if not _reboot(target, executor, result, settings, check, reboot, lock):
            return
        facts = _facts(executor, target)
    state = _state(executor, settings, refresh, record=not check)
    if state.dpkg.needs_repair and not check:  # a run cut mid-apt: finish and repair it first, then look again
        if not applier.apply(dpkg.repair(state.dpkg, lock_timeout=settings.apt_lock_timeout,
                                         apt_timeout=settings.apt_timeout, proxy=settings.proxy)) or applier.failed:
            return
        state = _state(executor, settings, refresh, record=True)
    repository, packages = op.toolkit_repository(state, settings), op.toolkit_packages(state, settings)
    runtime = op.docker_runtime(state, settings, stamp)
    if applier.refuse_before_changes([repository, packages, runtime]):
        return
    applier.apply(repository)
    toolkit_installed = applier.apply(packages)
    runtime_changed = applier.apply(runtime)
    applier.apply(op.cdi_spec(state, toolkit_installed))
    applier.apply(gpu_ladder.dev_char_symlinks(state.gpu_cgroup))  # the systemd-cgroup GPU-loss trap
    backup = daemon_json.backup_path(stamp) if state.daemon_json is not None else None
    applier.apply(op.docker_restart(runtime_changed, toolkit_installed, backup))
    if applier.notes:
        result.extra.setdefault("notes", []).extend(applier.notes)
    if check:
        result.extra.setdefault("plan", []).extend(applier.plan)


def _reboot(target: Target, executor: Executor, result: HostResult, settings: NvidiaSettings,
            check: bool, reboot: bool, lock: HostLock | None = None) -> bool:
    """True when the stage may go on (rebooted and back); False when the host ends with 'reboot required'."""
    if check:
        result.steps.append(StepResult("reboot", "changed", "would reboot (reboot required)" if reboot
                                       else "reboot required: re-run with --reboot"))
        return False
    if not reboot:
        result.steps.append(StepResult("reboot", "skipped", "reboot required: re-run with --reboot to reboot, wait and resume"))
        result.extra["reboot_required"] = True
        return False
    if _is_this_machine(target, executor):
        result.steps.append(StepResult("reboot", "failed", "reboot required, but this host is the machine provision runs on: "
                                                           "reboot it yourself, then re-run"))
        return False
    if lock is not None:  # no other run may be changing the host when it reboots; but a host that never
        lock.ensure()     # comes back must not keep a lock: released here, taken again by the next change
        lock.release()
    progress.step("reboot")
    start = time.monotonic()
    before = system.parse_boot_marker(executor.run(system.boot_marker()).stdout)
    executor.run(system.reboot_soon(), become=True)
    executor.close()
    deadline = start + settings.reboot_timeout
    waiting = "waiting for SSH"
    while time.monotonic() < deadline:
        progress.update(time.monotonic() - start, settings.reboot_timeout, "s", waiting)
        time.sleep(2)
        try:
            marker = system.parse_boot_marker(executor.run(system.boot_marker()).stdout)
            waiting = "waiting for a new boot"
        except HostKeyChanged as exc:  # back, but not as the host it was: never "did not come back"
            result.steps.append(StepResult("reboot", "failed", f"the host came back with a different host key: {exc}",
                                           time.monotonic() - start))
            return False
        except HostUnreachable:
            executor.close()
            continue
        if marker and marker != before:
            result.steps.append(StepResult("reboot", "changed", f"rebooted; back after {time.monotonic() - start:.0f}s",
                                           time.monotonic() - start))
            return True
    result.steps.append(StepResult("reboot", "failed", f"the host did not come back within {settings.reboot_timeout}s"))
    return False


def _is_this_machine(target: Target, executor: Executor) -> bool:
    if target.settings.connection == "local":
        return True
    try:
        local = system.parse_machine_id(Path(system.MACHINE_ID).read_text())
    except OSError:
        return False
    return bool(local) and system.parse_machine_id(executor.run(system.machine_id()).stdout) == local


# -- verify -----------------------------------------------------------------------------------
def verify_steps(target: Target, executor: Executor, result: HostResult, facts: dict | None = None, *,
                 check: bool = False, deep: bool = False) -> None:
    """GPU checks on GPU hosts (a `gpu ...` step each); a skipped step elsewhere. After the runtime's GPU list,
    the rest of the ladder (health, CUDA workload, daemon-reload, --deep): workflows.gpu_verify."""
    settings = nvidia_settings(target.name, target.hostvars)
    facts = facts if facts is not None else _facts(executor, target)
    gpu, why = op.is_gpu_host(facts, settings)
    if not gpu:
        result.steps.append(StepResult("gpu", "skipped", why))
        return
    host_gpus, nv = facts.get("gpus") or [], facts.get("nvidia")
    if not nv or not host_gpus:
        error = facts.get("nvidia_error") or "nvidia-smi not found"
        result.steps.append(StepResult("gpu host nvidia-smi", "failed", _with_advice(error)))
        return
    names = "; ".join(f"{g['index']}: {g['name']} {g.get('memory_mib')} MiB" for g in host_gpus)
    result.steps.append(StepResult("gpu host nvidia-smi", "ok",
                                   f"{len(host_gpus)} GPU(s) ({names}), driver {nv['driver']}, CUDA {nv['cuda']}"))
    runtimes = (facts.get("docker") or {}).get("runtimes") or []
    if "nvidia" not in runtimes:
        result.steps.append(StepResult("gpu docker runtime", "failed",
                                       f"docker info lists runtimes {', '.join(runtimes) or 'none'}, not nvidia: "
                                       "run `provision nvidia install`"))
        return
    result.steps.append(StepResult("gpu docker runtime", "ok", "docker info lists the nvidia runtime"))
    progress.step("gpu container")
    start = time.monotonic()
    out = executor.run(nvidia.gpu_test_command(settings.verify_gpu_image), become=True, timeout=600)
    duration = time.monotonic() - start
    result.commands.append({"step": "gpu container", "commands": [nvidia.gpu_test_command(settings.verify_gpu_image)],
                            "output": (out.stdout + out.stderr).strip()})
    if not out.ok:
        result.steps.append(StepResult("gpu container", "failed", _with_advice(out.error_line()) + f" (exit {out.exit_code})",
                                       duration))
        return
    seen = nvidia.parse_gpu_test_output(out.stdout)
    difference = nvidia.compare_gpus([g["uuid"] for g in host_gpus], [g["uuid"] for g in seen])
    if difference:
        result.steps.append(StepResult("gpu container", "failed", f"the GPU container does not see the host's GPUs: {difference}",
                                       duration))
        return
    result.steps.append(StepResult("gpu container", "ok", f"{len(seen)} GPU(s), UUIDs match the host ("
                                   + ", ".join(g["uuid"] for g in seen) + f") in {settings.verify_gpu_image}", duration))
    gpu_verify.ladder(executor, result, settings, facts, check=check, deep=deep)


def _with_advice(error: str) -> str:
    advice = nvidia.advice_for(error)
    return f"{error} — {advice}" if advice else error


def verify_work(target: Target, executor: Executor) -> HostResult:
    result = HostResult(target.name)
    verify_steps(target, executor, result)
    return result
