"""The GPU verify ladder (issue 14): exact command strings of provision/commands/gpu_verify.py, its parsers,
and the verdicts of provision/operations/gpu_ladder.py, table-driven. The sample outputs are vectorAdd's as
NVIDIA's cuda-samples print them (`Test PASSED`, `Failed to allocate device vector A (error code %s)!` with
cudaGetErrorString's text); dcgmi's table and nvbandwidth's SUM lines follow their documented output. All
SYNTHETIC (no GPU here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.commands import gpu_verify
from provision.commands.argv import UnsafeValue
from provision.commands.gpu_verify import SampleRun
from provision.facts import gpu_health
from provision.operations import gpu_ladder
from provision.operations.base import Change, NoChange

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"
PASSED = ("[Vector addition of 50000 elements]\nCopy input data from the host memory to the CUDA device\n"
          "CUDA kernel launch with 196 blocks of 256 threads\nCopy output data from the CUDA device to the host memory\n"
          "Test PASSED\nDone")


def failed(error: str) -> str:
    return f"[Vector addition of 50000 elements]\nFailed to allocate device vector A (error code {error})!"


# -- commands -----------------------------------------------------------------------------------------
def test_cuda_sample_runs_the_image_once_per_gpu_timed():
    assert gpu_verify.cuda_sample("img:1", ["GPU-a", "GPU-b"]) == (
        "s=$(date +%s%N); timeout 300 docker run --rm --gpus device=GPU-a -- img:1 2>&1; rc=$?; e=$(date +%s%N); "
        "printf '\\n@@provision-gpu-run %s %s %s\\n' GPU-a \"$rc\" \"$(( (e - s) / 1000000 ))\"\n"
        "s=$(date +%s%N); timeout 300 docker run --rm --gpus device=GPU-b -- img:1 2>&1; rc=$?; e=$(date +%s%N); "
        "printf '\\n@@provision-gpu-run %s %s %s\\n' GPU-b \"$rc\" \"$(( (e - s) / 1000000 ))\"")


@pytest.mark.parametrize("uuid", ["GPU-a,b", "GPU-a b", "-x", "GPU-$(id)", "all"])
def test_cuda_sample_refuses_what_is_not_a_gpu_uuid(uuid):
    with pytest.raises(UnsafeValue):
        gpu_verify.cuda_sample("img", [uuid])


def test_deep_commands_and_cgroup_probe():
    assert gpu_verify.dcgm_diag_level1() == ("command -v dcgmi >/dev/null 2>&1 || exit 127; timeout 60 dcgmi discovery -l; "
                                             "echo @@provision-dcgm-diag; timeout 600 dcgmi diag -r 1")
    assert gpu_verify.nvbandwidth() == "command -v nvbandwidth >/dev/null 2>&1 || exit 127; timeout 600 nvbandwidth"
    assert gpu_verify.dcgm_diag_container("nvcr.io/nvidia/cloud-native/dcgm:4") == (
        "timeout 600 docker run --rm --gpus all --cap-add SYS_ADMIN -- nvcr.io/nvidia/cloud-native/dcgm:4 dcgmi diag -r 1")
    assert gpu_verify.cgroup_state() == (
        "printf 'cgroup_driver=%s\\n' \"$(timeout 30 docker info --format '{{.CgroupDriver}}' 2>/dev/null)\"; "
        "[ -f /lib/udev/rules.d/71-nvidia-dev-char.rules ] && echo udev_rule=yes || echo udev_rule=no; "
        "printf 'dev_char_links=%s\\n' \"$(find /dev/char -maxdepth 1 -lname '*nvidia*' 2>/dev/null | wc -l)\"")
    assert gpu_verify.create_dev_char_symlinks() == "nvidia-ctk system create-dev-char-symlinks --create-all"
    assert "/lib/udev/rules.d/71-nvidia-dev-char.rules" in gpu_verify.install_dev_char_rule()


def test_reload_check_script():
    assert gpu_verify.reload_check("nvidia/cuda:12.4.1-base-ubuntu22.04") == (
        "docker rm -f provision-gpu-reload-check >/dev/null 2>&1; docker run -d --gpus all --name "
        "provision-gpu-reload-check -- nvidia/cuda:12.4.1-base-ubuntu22.04 sleep 300 >/dev/null || exit 3\n"
        "docker exec provision-gpu-reload-check nvidia-smi -L 2>&1; printf '@@provision-gpu-reload before %s\\n' \"$?\"\n"
        "timeout 120 systemctl daemon-reload\n"
        "docker exec provision-gpu-reload-check nvidia-smi -L 2>&1; printf '@@provision-gpu-reload after %s\\n' \"$?\"\n"
        "docker rm -f provision-gpu-reload-check >/dev/null 2>&1; exit 0")


# -- parsers ------------------------------------------------------------------------------------------
def test_parse_cuda_sample_splits_the_runs():
    text = f"{PASSED}\n\n@@provision-gpu-run GPU-a 0 1234\n{failed('system not yet initialized')}\n\n@@provision-gpu-run GPU-b 1 87\n"
    a, b = gpu_verify.parse_cuda_sample(text)
    assert (a.uuid, a.exit_code, a.milliseconds, a.passed) == ("GPU-a", 0, 1234, True)
    assert (b.uuid, b.exit_code, b.milliseconds, b.passed) == ("GPU-b", 1, 87, False)
    assert "system not yet initialized" in b.output and "Test PASSED" not in b.output


def test_exit_0_without_test_passed_is_not_a_pass():
    assert not SampleRun("GPU-a", 0, 5, "something else").passed


DCGM_OK = """\
Successfully ran diagnostic for group.
+---------------------------+------------------------------------------------+
| Diagnostic                | Result                                         |
+===========================+================================================+
|-----  Metadata  ----------+------------------------------------------------|
| DCGM Version              | 3.3.5                                          |
|-----  Deployment  --------+------------------------------------------------|
| Denylist                  | Pass                                           |
| NVML Library              | Pass                                           |
| CUDA Main Library         | Pass                                           |
| Permissions and OS Blocks | Pass                                           |
| Persistence Mode          | Pass                                           |
| Environment Variables     | Pass                                           |
| Page Retirement/Row Remap | Pass                                           |
| Graphics Processes        | Pass                                           |
| Inforom                   | Skip                                           |
+---------------------------+------------------------------------------------+
"""
DCGM_FAIL = DCGM_OK.replace("| Persistence Mode          | Pass", "| Persistence Mode          | Fail").replace(
    "| Environment Variables", "| Warning                   | Persistence mode for GPU 0 is disabled.        |\n"
                               "| Environment Variables")


@pytest.mark.parametrize("code, output, image, status, needle", [
    (127, "", None, "skipped", "not available on this host: dcgmi is not installed"),
    (0, DCGM_OK, None, "ok", "8 passed, 1 skipped (Inforom)"),
    (226, DCGM_FAIL, None, "failed", "failed: Persistence Mode; Persistence mode for GPU 0 is disabled."),
    (0, DCGM_OK, "dcgm:4", "ok", "DCGM container dcgm:4: 8 passed"),
    (1, "Error: unable to connect to host engine", None, "failed", "exit 1: Error: unable to connect to host engine"),
    (0, "nothing useful", None, "failed", "printed no test results"),
])
def test_dcgm_verdicts(code, output, image, status, needle):
    verdict = gpu_ladder.dcgm(code, output, image)
    assert verdict.status == status and needle in verdict.message, verdict


# Written by hand in the layout of published DCGM 3.x outputs (DCGM's "Getting Started" `dcgmi discovery -l`
# listing and `dcgmi diag -r 1` runs quoted in public repositories; the structure only, no text copied): a
# 46-column result cell whose detail text is cut every 45 characters, mid-word, on rows with an empty first cell.
DCGM_WRAPPED = """\
Successfully ran diagnostic for group.
+---------------------------+------------------------------------------------+
| Diagnostic                | Result                                         |
+===========================+================================================+
|-----  Metadata  ----------+------------------------------------------------|
| DCGM Version              | 3.3.9                                          |
| Driver Version Detected   | 570.133.20                                     |
| GPU Device IDs Detected   | 2330,2330                                      |
|-----  Deployment  --------+------------------------------------------------|
| Denylist                  | Pass                                           |
| Page Retirement/Row Remap | Fail                                           |
| Error                     | GPU 1 had uncorrectable memory errors and 2 r  |
|                           | ows were remapped, GPU 1 had memory errors an  |
|                           | d row remappings are pending                   |
| Graphics Processes        | Pass                                           |
+-----  Integration  -------+------------------------------------------------+
| PCIe                      | Pass - All                                     |
+---------------------------+------------------------------------------------+
"""
DISCOVERY_2 = """\
2 GPUs found.
+--------+----------------------------------------------------------------------+
| GPU ID | Device Information                                                   |
+--------+----------------------------------------------------------------------+
| 0      | Name: NVIDIA H100 80GB HBM3                                          |
|        | PCI Bus ID: 00000000:18:00.0                                         |
|        | Device UUID: GPU-00000000-aaaa-bbbb-cccc-000000000000                |
+--------+----------------------------------------------------------------------+
| 1      | Name: <<<NULL>>>                                                     |
|        | PCI Bus ID: 00000000:2A:00.0                                         |
+--------+----------------------------------------------------------------------+
6 NvSwitches found.
+-----------+
| Switch ID |
+-----------+
| 11        |
| 8         |
+-----------+
"""


def test_dcgm_diag_parser_joins_the_cut_detail_text():
    rows = gpu_verify.parse_dcgm_diag(DCGM_WRAPPED)
    assert rows["Fail"] == ["Page Retirement/Row Remap"] and rows["Pass"] == ["Denylist", "Graphics Processes", "PCIe"]
    assert rows["details"] == ["GPU 1 had uncorrectable memory errors and 2 rows were remapped, GPU 1 had memory "
                               "errors and row remappings are pending"]


def test_dcgm_discovery_parser():
    found = gpu_verify.parse_dcgm_discovery(DISCOVERY_2)
    assert found.nvswitches == 6
    assert found.gpus == (gpu_verify.DcgmGpu(0, "NVIDIA H100 80GB HBM3", "00000000:18:00.0",
                                             "GPU-00000000-aaaa-bbbb-cccc-000000000000"),
                          gpu_verify.DcgmGpu(1, None, "00000000:2A:00.0", None))  # NULL name, no UUID row
    one = gpu_verify.parse_dcgm_discovery(DISCOVERY_2.replace("2 GPUs found.", "1 GPU found.").split("| 1   ")[0])
    assert len(one.gpus) == 1 and one.nvswitches is None
    assert gpu_verify.parse_dcgm_discovery("Error: unable to establish a connection to the specified host") == \
        gpu_verify.DcgmDiscovery((), None)


def _host_run(listing: str, diag: str) -> str:
    return f"{listing}{gpu_verify.DCGM_DIAG_MARKER}\n{diag}"


@pytest.mark.parametrize("code, output, gpus, status, needle", [
    (0, _host_run(DISCOVERY_2, DCGM_OK), 2, "ok", "8 passed on 2 GPU(s) DCGM sees and 6 NVSwitch(es), 1 skipped"),
    (0, _host_run(DISCOVERY_2, DCGM_OK), 3, "failed", "DCGM's host engine sees 2 of the 3 GPU(s) nvidia-smi lists"),
    (226, _host_run(DISCOVERY_2, DCGM_WRAPPED), 2, "failed",
     "failed: Page Retirement/Row Remap; GPU 1 had uncorrectable memory errors and 2 rows were remapped, GPU 1"),
    (0, DCGM_OK, 5, "ok", "8 passed, 1 skipped"),  # no listing (the DCGM container): the count is not compared
])
def test_dcgm_verdicts_with_the_discovery_listing(code, output, gpus, status, needle):
    verdict = gpu_ladder.dcgm(code, output, None, gpus)
    assert verdict.status == status and needle in verdict.message, verdict


@pytest.mark.parametrize("code, output, status, needle", [
    (127, "", "skipped", "not available on this host: nvbandwidth is not on PATH"),
    (0, "Running host_to_device_memcpy_ce.\nSUM host_to_device_memcpy_ce 55.18\n", "ok", "host_to_device_memcpy_ce 55.18 GB/s"),
    (1, "CUDA error: no CUDA-capable device is detected", "failed", "nvbandwidth exit 1"),
    (0, "no sums", "failed", "no SUM lines"),
])
def test_nvbandwidth_verdicts(code, output, status, needle):
    verdict = gpu_ladder.bandwidth(code, output)
    assert verdict.status == status and needle in verdict.message, verdict


# -- the CUDA workload's failures, classified ---------------------------------------------------------
@pytest.mark.parametrize("output, cause", [
    (failed("system not yet initialized"), "Fabric Manager is not running"),
    (failed("CUDA driver version is insufficient for CUDA runtime version"), "older than the image's CUDA runtime"),
    ("docker: Error response from daemon: failed to create task for container: ... nvidia-container-cli: requirement "
     "error: unsatisfied condition: cuda>=12.5, please update your driver to a newer version, or use an earlier cuda "
     "container: unknown.", "older than the image requires"),
    (failed("uncorrectable ECC error encountered"), "uncorrectable ECC error"),
    ("Failed to initialize NVML: Unknown Error", "lost access to its GPU device nodes"),
    (failed("no CUDA-capable device is detected"), "sees no GPU"),
    (failed("all CUDA-capable devices are busy or unavailable"), "exclusive compute mode"),
    (failed("initialization error"), "persistence mode off"),
    ("Failed to initialize NVML: Driver/library version mismatch", "differ"),
    ("Segmentation fault", None),
])
def test_known_cuda_failures_are_classified(output, cause):
    found = gpu_ladder.classify_cuda_failure(output)
    if cause is None:
        assert found is None
    else:
        assert found is not None and cause in found[0], found


def test_cuda_sample_verdict_ok_has_per_gpu_timing():
    runs = [SampleRun("GPU-a", 0, 1500, PASSED), SampleRun("GPU-b", 0, 1250, PASSED)]
    verdict = gpu_ladder.cuda_sample(runs, ["GPU-a", "GPU-b"], "img")
    assert verdict.status == "ok"
    assert verdict.message == "img: Test PASSED on 2 GPU(s) (GPU-a: PASSED in 1.50s, GPU-b: PASSED in 1.25s)"


def test_cuda_sample_verdict_failure_names_the_gpu_the_error_the_cause_and_the_fix():
    runs = [SampleRun("GPU-a", 0, 1500, PASSED), SampleRun("GPU-b", 1, 90, failed("system not yet initialized"))]
    verdict = gpu_ladder.cuda_sample(runs, ["GPU-a", "GPU-b", "GPU-c"], "img")
    assert verdict.status == "failed"
    assert "failed on 2 of 3 GPU(s)" in verdict.message
    assert "GPU-b: exit 1: Failed to allocate device vector A (error code system not yet initialized)!" in verdict.message
    assert "Fabric Manager is not running" in verdict.message and "systemctl enable --now nvidia-fabricmanager" in verdict.message
    assert "no result for GPU-c" in verdict.message


# -- health --------------------------------------------------------------------------------------------
def test_health_verdict_on_the_healthy_and_the_faulty_synthetic_reports():
    healthy = gpu_ladder.health(gpu_health.parse((FIXTURES / "synthetic-hgx-h100-r535-healthy.xml").read_text()))
    assert healthy.status == "ok" and healthy.message.startswith("2 GPU(s) healthy: ECC on 2/2"), healthy
    assert "fabric Completed" in healthy.message
    faulty = gpu_ladder.health(gpu_health.parse((FIXTURES / "synthetic-hgx-h100-r570-faults.xml").read_text()))
    assert faulty.status == "failed" and "problem(s) to act on" in faulty.message, faulty
    old = gpu_ladder.health(gpu_health.parse((FIXTURES / "synthetic-p100-r510-v11.xml").read_text()))
    assert "persistence mode is off" in old.message


# -- reload check ---------------------------------------------------------------------------------------
LISTING = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a)"


@pytest.mark.parametrize("code, output, status, needle", [
    (0, f"{LISTING}\n@@provision-gpu-reload before 0\n{LISTING}\n@@provision-gpu-reload after 0\n", "ok",
     "still sees its 1 GPU(s) after `systemctl daemon-reload` (docker's cgroup driver: systemd)"),
    (0, f"{LISTING}\n@@provision-gpu-reload before 0\nFailed to initialize NVML: Unknown Error\n"
        "@@provision-gpu-reload after 255\n", "failed", "lost its GPUs after `systemctl daemon-reload`"),
    (0, "Failed to initialize NVML: Unknown Error\n@@provision-gpu-reload before 255\n\n@@provision-gpu-reload after 255\n",
     "failed", "even before the reload"),
    (3, "docker: Error response from daemon: could not select device driver", "failed", "could not start a GPU container"),
    (124, f"{LISTING}\n@@provision-gpu-reload before 0\n", "failed", "did not finish"),
])
def test_reload_check_verdicts(code, output, status, needle):
    verdict = gpu_ladder.reload_check(code, output, "systemd", "img")
    assert verdict.status == status and needle in verdict.message, verdict


# -- the systemd-cgroup remedy ----------------------------------------------------------------------------
@pytest.mark.parametrize("state, planned", [
    ({}, None),
    ({"cgroup_driver": "cgroupfs", "udev_rule": "no", "dev_char_links": "0"}, None),
    ({"cgroup_driver": "systemd", "udev_rule": "yes", "dev_char_links": "9"}, None),
    ({"cgroup_driver": "systemd", "udev_rule": "no", "dev_char_links": "0"},
     [gpu_verify.install_dev_char_rule(), gpu_verify.create_dev_char_symlinks()]),
    ({"cgroup_driver": "systemd", "udev_rule": "yes", "dev_char_links": "0"}, [gpu_verify.create_dev_char_symlinks()]),
    ({"cgroup_driver": "systemd", "udev_rule": "no", "dev_char_links": "4"},
     [gpu_verify.install_dev_char_rule(), gpu_verify.create_dev_char_symlinks()]),
])
def test_dev_char_remedy_only_where_the_systemd_driver_lacks_it(state, planned):
    plan = gpu_ladder.dev_char_symlinks(state)
    if planned is None:
        assert isinstance(plan, NoChange), plan
    else:
        assert isinstance(plan, Change) and plan.commands == planned, plan
        assert "systemd cgroup driver" in plan.reason


def test_parse_cgroup_state():
    assert gpu_verify.parse_cgroup_state("cgroup_driver=systemd\nudev_rule=no\ndev_char_links=0\n") == {
        "cgroup_driver": "systemd", "udev_rule": "no", "dev_char_links": "0"}
