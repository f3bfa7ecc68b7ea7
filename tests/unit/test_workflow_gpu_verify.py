"""`provision verify` on a GPU host, the ladder (issue 14), driven through fan_out as the CLI does, with a
RecordingExecutor: facts (a documented HGX H100 capture), the runtime's GPU list, then the health report,
the CUDA workload on every GPU, the daemon-reload check, and with --deep DCGM and nvbandwidth. The exact
commands, in order, and the steps they give; --check starts nothing."""

from __future__ import annotations

import re
from pathlib import Path

from provision.commands import gpu_health as health_cmd
from provision.commands import gpu_verify, nvidia
from provision.config.host_settings import NvidiaSettings
from provision.executor.base import CommandResult, as_shell
from provision.facts.model import parse_facts
from provision.facts.script import FACTS_SCRIPT
from provision.workflows import bootstrap
from tests.unit.test_workflow_bootstrap import VERIFY, host
from tests.unit.workflow_support import drive

FACTS = Path(__file__).resolve().parents[1] / "fixtures" / "facts"
GPU_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"
GPU_HOST = "gpu-hgx8-documented.txt"
N = NvidiaSettings()
GPUS = parse_facts((FACTS / GPU_HOST).read_text())["gpus"]
UUIDS = [g["uuid"] for g in GPUS]
GPU_TEST = nvidia.gpu_test_command(N.verify_gpu_image)
XML = as_shell(health_cmd.query_xml())
SAMPLE = gpu_verify.cuda_sample(N.verify_cuda_image, UUIDS)
CGROUP = gpu_verify.cgroup_state()
RELOAD = gpu_verify.reload_check(N.verify_gpu_image)
PASSED = "[Vector addition of 50000 elements]\nTest PASSED\nDone"
LISTING = "\n".join(f"GPU {g['index']}: {g['name']} (UUID: {g['uuid']})" for g in GPUS)


def sample_output(fail: dict[str, str] | None = None) -> str:
    fail = fail or {}
    return "".join(f"{fail.get(u, PASSED)}\n\n{gpu_verify.RUN_MARKER}{u} {1 if u in fail else 0} 1200\n" for u in UUIDS)


def gpu_host(xml: str = "synthetic-hgx-h100-r535-healthy.xml", sample: str | None = None, after: str = LISTING,
             after_rc: int = 0):
    ex = host(GPU_HOST)
    ex.respond(re.escape(GPU_TEST), stdout="".join(f"{g['index']}, {g['uuid']}, {g['name']}, 81559 MiB\n" for g in GPUS))
    ex.respond(re.escape(XML), stdout=(GPU_FIXTURES / xml).read_text())
    ex.respond(re.escape(SAMPLE), stdout=sample if sample is not None else sample_output())
    ex.respond(re.escape(CGROUP), stdout="cgroup_driver=systemd\nudev_rule=yes\ndev_char_links=12\n")
    ex.respond(re.escape(RELOAD), stdout=f"{LISTING}\n{gpu_verify.RELOAD_MARKER}before 0\n{after}\n"
                                         f"{gpu_verify.RELOAD_MARKER}after {after_rc}\n")
    return ex


def verify(ex, check=False, deep=False):
    return drive("verify", bootstrap.verify_work(check, deep), ex)


def steps(result):
    return [(s.name, s.status) for s in result.steps]


BASE = [("docker version", "ok"), ("docker info", "ok"), ("hello-world", "ok"), ("gpu host nvidia-smi", "ok"),
        ("gpu docker runtime", "ok"), ("gpu container", "ok")]


def test_the_ladder_on_a_healthy_gpu_host_runs_health_workload_and_reload_in_order():
    ex = gpu_host()
    result = verify(ex)
    assert ex.shells == [*VERIFY, FACTS_SCRIPT, GPU_TEST, XML, SAMPLE, CGROUP, RELOAD]
    assert steps(result) == [*BASE, ("gpu health", "ok"), ("gpu cuda workload", "ok"), ("gpu daemon-reload", "ok")]
    assert result.status == "ok"
    workload = result.steps[-2].message
    assert workload.startswith(f"{N.verify_cuda_image}: Test PASSED on 8 GPU(s) ({UUIDS[0]}: PASSED in 1.20s")
    assert "(docker's cgroup driver: systemd)" in result.steps[-1].message


def test_check_reads_the_health_report_only_and_starts_no_container_for_the_ladder():
    ex = gpu_host()
    result = verify(ex, check=True, deep=True)
    assert ex.shells == [*VERIFY, FACTS_SCRIPT, GPU_TEST, XML]
    ladder = result.steps[len(BASE) + 1:]
    assert [(s.name, s.status) for s in ladder] == [("gpu cuda workload", "skipped"), ("gpu daemon-reload", "skipped"),
                                                     ("gpu dcgm diag", "skipped"), ("gpu nvbandwidth", "skipped")]
    assert all(s.message.startswith("--check: would run") or s.message.startswith("--check: would start") for s in ladder)


def test_deep_without_dcgmi_or_nvbandwidth_skips_both_with_the_reason_never_a_pass():
    ex = gpu_host()
    ex.respond(re.escape(gpu_verify.dcgm_diag_level1()), exit_code=127)
    ex.respond(re.escape(gpu_verify.nvbandwidth()), exit_code=127)
    result = verify(ex, deep=True)
    assert ex.shells[-2:] == [gpu_verify.dcgm_diag_level1(), gpu_verify.nvbandwidth()]
    assert steps(result)[-2:] == [("gpu dcgm diag", "skipped"), ("gpu nvbandwidth", "skipped")]
    assert "not available on this host" in result.steps[-2].message
    assert "not available on this host" in result.steps[-1].message
    assert result.status == "ok"


def test_deep_with_the_dcgm_image_runs_the_container():
    ex = gpu_host()
    run = gpu_verify.dcgm_diag_container("nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04")
    ex.respond(re.escape(run), stdout="| Deployment | Pass |\n| NVML Library | Pass |\n")
    ex.respond(re.escape(gpu_verify.nvbandwidth()), stdout="SUM host_to_device_memcpy_ce 55.18\n")
    result = drive("verify", bootstrap.verify_work(False, True), ex,
                   verify_dcgm_image="nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04")
    assert ex.shells[-2:] == [run, gpu_verify.nvbandwidth()]
    assert steps(result)[-2:] == [("gpu dcgm diag", "ok"), ("gpu nvbandwidth", "ok")]


def test_fabric_manager_down_fails_the_workload_with_the_cause_and_the_fix():
    error = "[Vector addition of 50000 elements]\nFailed to allocate device vector A (error code system not yet initialized)!"
    ex = gpu_host(sample=sample_output({u: error for u in UUIDS}))
    result = verify(ex)
    assert result.status == "failed"
    step = result.steps[len(BASE) + 1]
    assert (step.name, step.status) == ("gpu cuda workload", "failed")
    assert "failed on 8 of 8 GPU(s)" in step.message and "Fabric Manager is not running" in step.message
    assert "systemctl enable --now nvidia-fabricmanager" in step.message


def test_health_problems_fail_the_host_and_the_rest_of_the_ladder_still_runs():
    ex = gpu_host(xml="synthetic-hgx-h100-r570-faults.xml")
    result = verify(ex)
    assert ex.shells[-4:] == [XML, SAMPLE, CGROUP, RELOAD]
    assert steps(result)[len(BASE)] == ("gpu health", "failed")
    assert "uncorrectable ECC error" in result.steps[len(BASE)].message
    assert result.status == "failed"


def test_gpu_loss_after_daemon_reload_fails_with_the_remedy():
    ex = gpu_host(after="Failed to initialize NVML: Unknown Error", after_rc=255)
    result = verify(ex)
    assert steps(result)[-1] == ("gpu daemon-reload", "failed")
    assert "Failed to initialize NVML: Unknown Error" in result.steps[-1].message
    assert "provision nvidia install" in result.steps[-1].message


def test_a_failed_runtime_check_stops_before_the_ladder():
    ex = gpu_host()
    ex.respond_sequence(re.escape(GPU_TEST), CommandResult("", 125, "", "could not select device driver"))
    result = verify(ex)
    assert ex.shells == [*VERIFY, FACTS_SCRIPT, GPU_TEST]
    assert steps(result)[-1] == ("gpu container", "failed")
