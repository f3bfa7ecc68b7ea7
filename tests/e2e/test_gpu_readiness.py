"""Issue 14's GPU verify ladder end to end on a SIMULATED GPU host (fake nvidia-smi with a -q -x report, fake
toolkit, the sandbox's stand-in CUDA vectorAdd image; there is NO GPU on these machines). Failures are
injected through the simulation's test-only state file (provision_sandbox.fake_gpu.STATE_FILE) and each
must be caught by `provision verify` with its message and exit 2; `--check` starts no GPU container and
does not reload systemd."""

from __future__ import annotations

import pytest
import yaml

from provision_sandbox import fake_gpu
from tests.e2e.conftest import cli_json, start_fleet

pytestmark = pytest.mark.e2e

HOST = "sbx1"
HOOK_LOG = "/var/log/fake-nvidia-hook.log"
DEV_CHAR_RULE = "/lib/udev/rules.d/71-nvidia-dev-char.rules"


@pytest.fixture(scope="module")
def gpu_host(tmp_path_factory):
    """One SIMULATED GPU host, bootstrapped with docker on the systemd cgroup driver (`exec-opts` in
    docker_daemon: the sandbox's dockerd really runs so), so the NVIDIA stage applies the /dev/char remedy."""
    fleet, down = start_fleet(tmp_path_factory, "e2e-gpuready", 1, gpu_hosts=1)
    try:
        doc = yaml.safe_load(fleet.inventory.read_text())
        doc["all"]["vars"]["docker_daemon"]["exec-opts"] = ["native.cgroupdriver=systemd"]
        fleet.inventory = fleet.write_inventory(fleet.home / "systemd-cgroup.yml", doc)
        proc, doc = run(fleet, "bootstrap")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        fleet.bootstrap_doc = doc
        yield fleet
    finally:
        down()


def run(fleet, *args):
    return cli_json(*args, "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"), timeout=600)


def steps(doc):
    return {s["name"]: s for s in doc["hosts"][HOST]["steps"]}


@pytest.fixture
def inject(gpu_host):
    """Write the simulation state (test-only failure injection) on the host; removed afterwards."""
    host = gpu_host.testinfra(HOST)

    def write(**values):
        text = fake_gpu.state_text(**values)
        host.run_expect([0], f"printf '%s' '{text}' > {fake_gpu.STATE_FILE}")

    yield write
    host.run(f"rm -f {fake_gpu.STATE_FILE}")


def test_bootstrap_gate_runs_the_ladder_and_passes_on_a_healthy_host(gpu_host):
    gpu = steps(gpu_host.bootstrap_doc)
    for name in ("gpu host nvidia-smi", "gpu docker runtime", "gpu container", "gpu health", "gpu cuda workload",
                 "gpu daemon-reload"):
        assert gpu[name]["status"] == "ok", (name, gpu[name])
    uuid = fake_gpu.gpu_uuid(HOST)
    assert gpu["gpu cuda workload"]["message"].startswith(
        "provision-sandbox/cuda-sample:vectoradd-cuda12.4.1-sim: Test PASSED on 1 GPU(s) (" + uuid + ": PASSED in ")
    assert "1 GPU(s) healthy: ECC on 1/1" in gpu["gpu health"]["message"]
    assert ("still sees its 1 GPU(s) after `systemctl daemon-reload` (docker's cgroup driver: systemd)"
            in gpu["gpu daemon-reload"]["message"])
    # the systemd-cgroup trap: NVIDIA's remedy applied by the NVIDIA stage
    assert gpu["gpu dev-char symlinks"]["status"] == "changed", gpu["gpu dev-char symlinks"]
    host = gpu_host.testinfra(HOST)
    assert host.file(DEV_CHAR_RULE).exists
    assert "nvidia-ctk system create-dev-char-symlinks --create-all" in host.file(DEV_CHAR_RULE).content_string
    assert host.file("/dev/char/195:255").linked_to == "/dev/nvidiactl"


def test_without_the_remedy_a_daemon_reload_loses_the_gpus_and_nvidia_install_puts_it_back(gpu_host):
    host = gpu_host.testinfra(HOST)
    host.run_expect([0], "rm -f /dev/char/195:*")  # SIMULATION: the symlinks gone (as after a reboot without udev)
    try:
        proc, doc = run(gpu_host, "verify")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        found = steps(doc)["gpu daemon-reload"]
        assert found["status"] == "failed"
        for needle in ("lost its GPUs after `systemctl daemon-reload` (docker's cgroup driver: systemd)",
                       "Failed to initialize NVML: Unknown Error", "provision nvidia install"):
            assert needle in found["message"], found["message"]
        proc, doc = run(gpu_host, "nvidia", "install")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        remedy = steps(doc)["gpu dev-char symlinks"]
        assert remedy["status"] == "changed" and "creating the /dev/char symlinks (nvidia-ctk) again" in remedy["message"]
        proc, doc = run(gpu_host, "verify")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert steps(doc)["gpu daemon-reload"]["status"] == "ok"
    finally:
        host.run("nvidia-ctk system create-dev-char-symlinks --create-all")


def test_deep_skips_dcgm_and_nvbandwidth_where_not_installed_never_passing_them(gpu_host):
    proc, doc = run(gpu_host, "verify", "--deep")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    gpu = steps(doc)
    for name in ("gpu dcgm diag", "gpu nvbandwidth"):
        assert gpu[name]["status"] == "skipped" and gpu[name]["message"].startswith("not available on this host"), gpu[name]


@pytest.fixture
def dcgm_installed(gpu_host):
    """SIMULATION: DCGM "installed" on the host (the fake dcgmi on PATH); removed afterwards."""
    host = gpu_host.testinfra(HOST)
    host.run_expect([0], fake_gpu.install_dcgmi_command())
    yield
    host.run(f"rm -f {fake_gpu.HOST_DCGMI}")


def test_deep_runs_dcgm_level_1_where_installed_and_it_passes_on_a_healthy_host(gpu_host, dcgm_installed):
    proc, doc = run(gpu_host, "verify", "--deep")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    gpu = steps(doc)
    assert gpu["gpu dcgm diag"]["status"] == "ok", gpu["gpu dcgm diag"]
    assert gpu["gpu dcgm diag"]["message"].startswith("DCGM level 1 (dcgmi diag): 9 passed on 1 GPU(s) DCGM sees")
    assert gpu["gpu nvbandwidth"]["status"] == "skipped"  # not simulated: still a skip with its reason
    assert gpu["gpu nvbandwidth"]["message"].startswith("not available on this host")


def test_deep_dcgm_level_1_fails_on_uncorrectable_ecc_errors(gpu_host, dcgm_installed, inject):
    inject(ecc_uncorrectable="0")
    proc, doc = run(gpu_host, "verify", "--deep")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    found = steps(doc)["gpu dcgm diag"]
    assert found["status"] == "failed", found
    assert ("DCGM level 1 (dcgmi diag): failed: Page Retirement/Row Remap; GPU 0 had uncorrectable memory errors "
            "and 2 rows were remapped") in found["message"], found["message"]


@pytest.mark.parametrize("state, step, needles", [
    ({"fabric": "down"}, "gpu cuda workload",
     ["Failed to allocate device vector A (error code system not yet initialized)!", "Fabric Manager is not running",
      "systemctl enable --now nvidia-fabricmanager"]),
    ({"cuda": "12.2"}, "gpu cuda workload",
     ["CUDA driver version is insufficient for CUDA runtime version", "older than the image's CUDA runtime"]),
    ({"ecc_uncorrectable": "0"}, "gpu cuda workload", ["uncorrectable ECC error encountered", "nvidia-smi -r"]),
    ({"ecc_uncorrectable": "0"}, "gpu health", ["2 uncorrectable ECC error(s) since the driver was loaded"]),
    ({"fabric": "down"}, "gpu health", ["NVSwitch fabric state is 'Not Started'"]),
    ({"pcie_degraded": "0"}, "gpu health", ["PCIe link runs at x8 while the GPU is busy, below its x16 maximum"]),
    ({"remap_pending": "0"}, "gpu health", ["a row remapping is pending"]),
])
def test_each_injected_failure_is_caught_with_its_message_and_exit_2(gpu_host, inject, state, step, needles):
    inject(**state)
    proc, doc = run(gpu_host, "verify")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    found = steps(doc)[step]
    assert found["status"] == "failed", found
    for needle in needles:
        assert needle in found["message"], (needle, found["message"])
    assert doc["hosts"][HOST]["status"] == "failed"


def test_check_starts_no_ladder_container_and_does_not_reload_systemd(gpu_host):
    host = gpu_host.testinfra(HOST)
    host.run_expect([0], "rm -f /dev/char/195:*")  # a daemon-reload would now lose the GPUs: --check must not do one
    try:
        before = int(host.check_output(f"wc -l < {HOOK_LOG}"))
        proc, doc = run(gpu_host, "verify", "--check", "--deep")
        assert proc.returncode == 0, proc.stdout + proc.stderr  # without the reload, nothing is lost
        gpu = steps(doc)
        for name in ("gpu cuda workload", "gpu daemon-reload", "gpu dcgm diag", "gpu nvbandwidth"):
            assert gpu[name]["status"] == "skipped" and gpu[name]["message"].startswith("--check: would"), gpu[name]
        assert gpu["gpu health"]["status"] == "ok"
        # one GPU container only: the runtime's GPU list (step 2 of the ladder); no sample, no reload container
        assert int(host.check_output(f"wc -l < {HOOK_LOG}")) == before + 1
    finally:
        host.run("nvidia-ctk system create-dev-char-symlinks --create-all")
