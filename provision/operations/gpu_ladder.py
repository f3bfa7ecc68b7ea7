"""The decisions of the GPU verify ladder (issue 14), pure: what a CUDA sample's output, the nvidia-smi health
report, DCGM's level-1 diagnostics, nvbandwidth and the daemon-reload check say, as a Verdict (ok / failed /
skipped + the message), with the known causes of a failed CUDA workload classified and their fix; and the
planner of NVIDIA's documented remedy for the systemd-cgroup GPU-loss trap.

The ladder: (1) facts, (2) a `--gpus all` container sees the host's GPUs, (3) a CUDA workload on every GPU,
(4, `--deep`) DCGM diagnostics level 1 and nvbandwidth. "Not available on this host" is a skip with the
reason, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provision.commands import gpu_verify
from provision.commands.gpu_verify import SampleRun
from provision.facts import gpu_health
from provision.operations.base import Change, NoChange

# The known failures of a CUDA workload (cudaGetErrorString texts, and what nvidia-container-cli says
# before the container starts), most specific first: (needle, cause, fix).
CUDA_FAILURES: list[tuple[str, str, str]] = [
    ("system not yet initialized",
     "Fabric Manager is not running (cudaErrorSystemNotReady: the NVSwitch fabric is not initialised)",
     "start it and keep it on: `systemctl enable --now nvidia-fabricmanager` (its version must equal the "
     "driver's: nvidia-fabricmanager-<branch> of the same release); check /var/log/fabricmanager.log"),
    ("CUDA driver version is insufficient for CUDA runtime version",
     "the host driver is older than the image's CUDA runtime (cudaErrorInsufficientDriver)",
     "a newer driver branch (nvidia_driver_branch), or an image built for the driver's CUDA version "
     "(or older); forward-compatibility packages (cuda-compat) in the image work on datacenter GPUs only"),
    ("unsatisfied condition: cuda>=",
     "the host driver is older than the image requires (NVIDIA_REQUIRE_CUDA, checked by nvidia-container-cli)",
     "a newer driver branch (nvidia_driver_branch), or an image built for the driver's CUDA version"),
    ("uncorrectable ECC error encountered",
     "the GPU hit an uncorrectable ECC error (cudaErrorECCUncorrectable)",
     "drain the GPU, reset it (`nvidia-smi -r`) or reboot, check `nvidia-smi -q -d ECC,ROW_REMAPPER`; replace "
     "the GPU if the errors come back"),
    ("Failed to initialize NVML: Unknown Error",
     "the container lost access to its GPU device nodes (the systemd-cgroup trap, or a driver reload)",
     "run `provision nvidia install` (it applies NVIDIA's /dev/char symlink remedy on systemd-cgroup hosts) "
     "and recreate the container"),
    ("no CUDA-capable device is detected",
     "the container sees no GPU (cudaErrorNoDevice)",
     "check the GPU is attached and the driver loaded on the host (`nvidia-smi`), and that the container got it "
     "(`--gpus`)"),
    ("all CUDA-capable devices are busy or unavailable",
     "the GPU is in an exclusive compute mode and busy, or unavailable (cudaErrorDevicesUnavailable)",
     "check `nvidia-smi -q -d COMPUTE` and the processes on the GPU; `nvidia-smi -c DEFAULT` restores the shared mode"),
    ("initialization error",
     "CUDA could not initialise the GPU (cudaErrorInitializationError): often persistence mode off with a "
     "GPU in a bad state, or Xid errors",
     "enable persistence (`systemctl enable --now nvidia-persistenced`), look for Xid errors in `dmesg`, reset "
     "the GPU (`nvidia-smi -r`) or reboot"),
    ("Driver/library version mismatch",
     "the loaded kernel module and the user-space driver differ (a driver upgrade without a reboot)",
     "reboot the host (`provision nvidia install --reboot`)"),
]


@dataclass(frozen=True)
class Verdict:
    status: Literal["ok", "failed", "skipped"]
    message: str


def classify_cuda_failure(output: str) -> tuple[str, str] | None:
    """(cause, fix) of a failed CUDA workload from its output; None when the failure is not a known one."""
    for needle, cause, fix in CUDA_FAILURES:
        if needle.lower() in output.lower():
            return cause, fix
    return None


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def cuda_sample(runs: list[SampleRun], uuids: list[str], image: str) -> Verdict:
    """Step 3: the CUDA sample passed on every GPU (`Test PASSED`, exit 0); the message has each GPU's
    timing. A failure names the GPU, the sample's error line, the cause and the fix when known."""
    by_uuid = {r.uuid: r for r in runs}
    missing = [u for u in uuids if u not in by_uuid]
    timings = ", ".join(f"{r.uuid}: {'PASSED' if r.passed else 'FAILED'} in {r.milliseconds / 1000:.2f}s" for r in runs)
    failed = [r for r in runs if not r.passed]
    if not failed and not missing and runs:
        return Verdict("ok", f"{image}: Test PASSED on {len(runs)} GPU(s) ({timings})")
    parts = []
    for run in failed:
        known = classify_cuda_failure(run.output)
        line = f"{run.uuid}: exit {run.exit_code}: {_last_line(run.output)}"
        if known:
            line += f" — {known[0]}: {known[1]}"
        parts.append(line)
    if missing:
        parts.append("no result for " + ", ".join(missing))
    if not runs and not missing:
        parts.append("no GPU to run it on")
    return Verdict("failed", f"{image}: the CUDA workload failed on {len(failed) + len(missing)} of {len(uuids)} "
                             f"GPU(s): " + "; ".join(parts) + (f" (timings: {timings})" if runs else ""))


def health(report: gpu_health.HostGpuHealth) -> Verdict:
    """Health facts from `nvidia-smi -q -x`: what an operator must act on fails the step (uncorrectable ECC,
    remapping/retirement pending or failed, a busy link below its capability, Fabric Manager down);
    warnings (persistence off, an idle link below its width, hardware slowdowns) are said, the step passes."""
    problems, warnings = gpu_health.problems(report), gpu_health.warnings(report)
    summary = _summary(report)
    if problems:
        text = f"{len(problems)} problem(s) to act on: " + "; ".join(problems)
        if warnings:
            text += "; warnings: " + "; ".join(warnings)
        return Verdict("failed", text)
    if warnings:
        return Verdict("ok", summary + "; warnings: " + "; ".join(warnings))
    return Verdict("ok", summary)


def _summary(report: gpu_health.HostGpuHealth) -> str:
    gpus = report.gpus
    ecc = sum(1 for g in gpus if g.ecc_enabled)
    persistence = sum(1 for g in gpus if g.persistence_mode)
    links = [f"gen{g.pcie.current_gen}x{g.pcie.current_width}/gen{g.pcie.max_gen}x{g.pcie.max_width}"
             for g in gpus if g.pcie.max_gen is not None]
    fabric = sorted({g.fabric_state for g in gpus if g.fabric_state})
    text = (f"{len(gpus)} GPU(s) healthy: ECC on {ecc}/{len(gpus)}, no uncorrectable errors, no pending "
            f"remapping/retirement, persistence on {persistence}/{len(gpus)}")
    if links:
        text += ", PCIe " + ", ".join(links)
    if fabric:
        text += ", fabric " + "/".join(fabric)
    return text


def health_unreadable(error: str) -> Verdict:
    return Verdict("failed", f"cannot read `nvidia-smi -q -x`: {error}")


def dcgm(exit_code: int, output: str, image: str | None, gpus: int | None = None) -> Verdict:
    """Step 4a: `dcgmi diag -r 1` (on the host: after `dcgmi discovery -l`). Exit 127 (dcgmi absent, no DCGM image
    configured) → skipped with why. GPUS: how many GPUs nvidia-smi lists; DCGM's host engine seeing fewer (its
    discovery listing) is a failure: its diagnostics then leave GPUs out."""
    if exit_code == 127 and not output.strip():
        return Verdict("skipped", "not available on this host: dcgmi is not installed (install datacenter-gpu-manager "
                                  "from NVIDIA's CUDA repository, or set verify_dcgm_image to run NVIDIA's DCGM container)")
    listing, diag = gpu_verify.split_dcgm(output)
    rows = gpu_verify.parse_dcgm_diag(diag)
    ran = rows["Pass"] + rows["Fail"] + rows["Warn"]
    where = f"DCGM container {image}" if image else "DCGM level 1 (dcgmi diag)"
    seen = gpu_verify.parse_dcgm_discovery(listing) if listing is not None else None
    if exit_code != 0 or rows["Fail"]:
        failed = ", ".join(rows["Fail"]) or f"exit {exit_code}: {_last_line(diag)}"
        details = ("; " + "; ".join(rows["details"][:5])) if rows["details"] else ""
        return Verdict("failed", f"{where}: failed: {failed}{details}")
    if not ran:
        return Verdict("failed", f"{where}: printed no test results: {_last_line(diag)}")
    if seen is not None and gpus is not None and len(seen.gpus) < gpus:
        return Verdict("failed", f"{where}: DCGM's host engine sees {len(seen.gpus)} of the {gpus} GPU(s) nvidia-smi "
                                 "lists (`dcgmi discovery -l`): its diagnostics leave the others out; restart it "
                                 "(systemctl restart nvidia-dcgm) and check its log")
    text = f"{where}: {len(rows['Pass'])} passed"
    if seen is not None:
        text += f" on {len(seen.gpus)} GPU(s) DCGM sees"
        if seen.nvswitches:
            text += f" and {seen.nvswitches} NVSwitch(es)"
    if rows["Skip"]:
        text += f", {len(rows['Skip'])} skipped ({', '.join(rows['Skip'])})"
    if rows["Warn"]:
        text += f", warnings: {', '.join(rows['Warn'])}"
    return Verdict("ok", text)


def bandwidth(exit_code: int, output: str) -> Verdict:
    """Step 4b: nvbandwidth. Exit 127 with no output (not installed) → skipped with why."""
    if exit_code == 127 and not output.strip():
        return Verdict("skipped", "not available on this host: nvbandwidth is not on PATH (build it from "
                                  "github.com/NVIDIA/nvbandwidth)")
    sums = gpu_verify.parse_nvbandwidth(output)
    if exit_code != 0:
        return Verdict("failed", f"nvbandwidth exit {exit_code}: {_last_line(output)}")
    if not sums:
        return Verdict("failed", f"nvbandwidth printed no SUM lines: {_last_line(output)}")
    return Verdict("ok", "; ".join(s.removeprefix("SUM ") + " GB/s" for s in sums))


def reload_check(exit_code: int, output: str, driver: str | None, image: str) -> Verdict:
    """The systemd-cgroup trap, tested: a running GPU container still lists its GPUs after
    `systemctl daemon-reload`."""
    if exit_code == 3:
        return Verdict("failed", f"could not start a GPU container ({image}) for the daemon-reload check: "
                                 f"{_last_line(output)}")
    listings = gpu_verify.parse_reload_check(output)
    if "before" not in listings or "after" not in listings:
        return Verdict("failed", f"the daemon-reload check did not finish (exit {exit_code}): {_last_line(output)}")
    (rc_before, before), (rc_after, after) = listings["before"], listings["after"]
    cgroup = f" (docker's cgroup driver: {driver})" if driver else ""
    if rc_before != 0:
        return Verdict("failed", f"the GPU container could not list its GPUs even before the reload: {_last_line(before)}")
    if rc_after != 0 or before.splitlines() != after.splitlines():
        return Verdict("failed", f"a running GPU container lost its GPUs after `systemctl daemon-reload`{cgroup}: "
                                 f"{_last_line(after)} — the systemd-cgroup trap (NVIDIA: 'Containers losing access to "
                                 "GPUs'): run `provision nvidia install` to apply NVIDIA's remedy (/dev/char symlinks "
                                 "+ udev rule), or use the cgroupfs driver or CDI; recreate the affected containers")
    count = len([line for line in before.splitlines() if line.startswith("GPU ")])
    return Verdict("ok", f"a running GPU container still sees its {count} GPU(s) after `systemctl daemon-reload`{cgroup}")


# -- the systemd-cgroup GPU-loss trap: NVIDIA's documented remedy, as a planner step ------------------
def dev_char_symlinks(state: dict[str, str]) -> Change | NoChange:
    """On hosts where docker uses the systemd cgroup driver, containers lose their GPUs on the next
    `systemctl daemon-reload` unless /dev/char has symlinks to the NVIDIA device nodes (NVIDIA's notice,
    https://github.com/NVIDIA/nvidia-docker/issues/1730; NVIDIA Container Toolkit troubleshooting guide,
    https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/troubleshooting.html).
    The remedy: `nvidia-ctk system create-dev-char-symlinks --create-all` now, and the udev rule that runs it
    when the driver binds. `state` is gpu_verify.parse_cgroup_state's."""
    step = "gpu dev-char symlinks"
    driver = state.get("cgroup_driver") or ""
    if driver != "systemd":
        why = f"Docker uses the {driver} cgroup driver" if driver else "Docker's cgroup driver is unknown"
        return NoChange(step, f"{why}: not subject to the systemd-cgroup GPU-loss trap")
    rule = state.get("udev_rule") == "yes"
    links = state.get("dev_char_links", "0")
    has_links = links.isdigit() and int(links) > 0
    if rule and has_links:
        return NoChange(step, f"systemd cgroup driver: {gpu_verify.DEV_CHAR_RULE} and {links} /dev/char symlink(s) "
                              "to NVIDIA devices in place")
    commands = []
    if not rule:
        commands.append(gpu_verify.install_dev_char_rule())
    commands.append(gpu_verify.create_dev_char_symlinks())
    return Change(step, "Docker uses the systemd cgroup driver: containers would lose their GPUs on the next "
                        "`systemctl daemon-reload`; creating the /dev/char symlinks (nvidia-ctk) "
                        + ("and " + gpu_verify.DEV_CHAR_RULE if not rule else "again"), commands)
