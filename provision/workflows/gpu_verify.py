"""The GPU verify ladder past "a container sees the GPUs" (issue 14), run by `provision verify` and the gate
at the end of `bootstrap` on GPU hosts, after workflows.nvidia's first checks (facts, runtime, GPU list):

- `gpu health`: the nvidia-smi -q -x report (ECC, remapping/retirement, PCIe link, persistence, fabric,
  clock slowdowns): problems fail, warnings are said;
- `gpu cuda workload`: the CUDA sample image (`verify_cuda_image`) once per GPU, timed;
- `gpu daemon-reload`: a running GPU container still sees its GPUs after `systemctl daemon-reload` (the
  systemd-cgroup trap), on hosts run by systemd;
- with `--deep`: `gpu dcgm diag` (`dcgmi discovery -l` then `dcgmi diag -r 1`: fails when a check fails or
  DCGM sees fewer GPUs than nvidia-smi; or `dcgmi diag -r 1` in `verify_dcgm_image`) and `gpu nvbandwidth`,
  each skipped with the reason where not available.

With --check only the read-only health report is read here; the steps that start containers or reload
systemd are reported as skipped with what they would do.
"""

from __future__ import annotations

import time

from provision.commands import gpu_health as health_cmd
from provision.commands import gpu_verify
from provision.config.host_settings import NvidiaSettings
from provision.executor.base import Executor, as_shell
from provision.facts import gpu_health
from provision.operations import gpu_ladder
from provision.operations.gpu_ladder import Verdict
from provision.report import HostResult, StepResult


def _step(result: HostResult, name: str, verdict: Verdict, duration: float = 0.0) -> None:
    result.steps.append(StepResult(name, verdict.status, verdict.message, duration))


def ladder(executor: Executor, result: HostResult, settings: NvidiaSettings, facts: dict, *, check: bool = False,
           deep: bool = False) -> None:
    """Steps 3 and 4 of the ladder (and the health report), appended to result."""
    start = time.monotonic()
    out = executor.run(as_shell(health_cmd.query_xml()), become=True, timeout=60)
    if not out.ok:
        verdict = gpu_ladder.health_unreadable(f"{out.error_line()} (exit {out.exit_code})")
    else:
        try:
            verdict = gpu_ladder.health(gpu_health.parse(out.stdout))
        except gpu_health.GpuHealthParseError as exc:
            verdict = gpu_ladder.health_unreadable(str(exc))
    _step(result, "gpu health", verdict, time.monotonic() - start)

    uuids = [g["uuid"] for g in facts.get("gpus") or [] if g.get("uuid")]
    systemd = bool(facts.get("systemd"))
    planned = [("gpu cuda workload", f"would run {settings.verify_cuda_image} once on each of {len(uuids)} GPU(s)")]
    if systemd:
        planned.append(("gpu daemon-reload", f"would start a GPU container ({settings.verify_gpu_image}), run "
                                             "`systemctl daemon-reload` and check it still sees its GPUs"))
    if deep:
        planned += [("gpu dcgm diag", "would run DCGM diagnostics level 1"), ("gpu nvbandwidth", "would run nvbandwidth")]
    if check:
        for name, what in planned:
            result.steps.append(StepResult(name, "skipped", f"--check: {what}"))
        return

    start = time.monotonic()
    out = executor.run(gpu_verify.cuda_sample(settings.verify_cuda_image, uuids), become=True,
                       timeout=gpu_verify.SAMPLE_TIMEOUT_S * max(1, len(uuids)) + 60)
    verdict = gpu_ladder.cuda_sample(gpu_verify.parse_cuda_sample(out.stdout), uuids, settings.verify_cuda_image)
    _step(result, "gpu cuda workload", verdict, time.monotonic() - start)

    if systemd:
        start = time.monotonic()
        state = gpu_verify.parse_cgroup_state(executor.run(gpu_verify.cgroup_state(), become=True, timeout=60).stdout)
        out = executor.run(gpu_verify.reload_check(settings.verify_gpu_image), become=True, timeout=300)
        _step(result, "gpu daemon-reload",
              gpu_ladder.reload_check(out.exit_code, out.stdout, state.get("cgroup_driver"), settings.verify_gpu_image),
              time.monotonic() - start)
    else:
        result.steps.append(StepResult("gpu daemon-reload", "skipped", "the host does not run systemd: no daemon-reload "
                                                                       "to test"))

    if not deep:
        return
    start = time.monotonic()
    if settings.verify_dcgm_image:
        out = executor.run(gpu_verify.dcgm_diag_container(settings.verify_dcgm_image), become=True,
                           timeout=gpu_verify.DEEP_TIMEOUT_S)
    else:
        out = executor.run(gpu_verify.dcgm_diag_level1(), become=True, timeout=gpu_verify.DEEP_TIMEOUT_S)
    _step(result, "gpu dcgm diag", gpu_ladder.dcgm(out.exit_code, out.stdout + out.stderr, settings.verify_dcgm_image,
                                                   None if settings.verify_dcgm_image else len(uuids)),
          time.monotonic() - start)
    start = time.monotonic()
    out = executor.run(gpu_verify.nvbandwidth(), become=True, timeout=gpu_verify.DEEP_TIMEOUT_S)
    _step(result, "gpu nvbandwidth", gpu_ladder.bandwidth(out.exit_code, out.stdout + out.stderr),
          time.monotonic() - start)
