"""Issue 14, "before any GPU service is deployed", end to end on SIMULATED GPU hosts (there is NO GPU here).

Fleet `gpu-deploy`: sbx1 a CPU host, sbx2 a SIMULATED GPU host (fake nvidia-smi: one GPU, driver 550.54.15,
CUDA 12.4), both bootstrapped by provision (Docker; the simulated NVIDIA toolkit on sbx2). The sandbox
registry serves SIMULATED CUDA images that declare NVIDIA_REQUIRE_CUDA as NVIDIA's do
(provision_sandbox/upstreams/cuda_images.py). Each refusal is checked for its message and exit code, and
for having changed nothing on any host: no container, no image pulled or shipped, no audit-log line.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from provision_sandbox import fake_gpu
from provision_sandbox.upstreams import cuda_images
from tests.e2e.conftest import cli, cli_json, start_fleet

pytestmark = pytest.mark.e2e

CPU_HOST, GPU_HOST = "sbx1", "sbx2"
REGISTRY = "sandbox-registry:5000"
TOO_NEW = f"{REGISTRY}/{cuda_images.TOO_NEW}"  # cuda>=13.0 (SIMULATION)
COMPAT = f"{REGISTRY}/{cuda_images.COMPAT}"  # cuda>=12.8 or the 550 branch through cuda-compat (SIMULATION)
LOCAL_TOO_NEW = "provision-gd/cuda13-app:1"  # built here, would be shipped
AUDIT = "/var/log/provision/audit.log"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "gpu-deploy", 2, gpu_hosts=1)
    try:
        proc = cli_json("bootstrap", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                        env={"PROVISION_HOME": str(fleet.home)}, timeout=600)[0]
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield fleet
    finally:
        down()


@pytest.fixture(scope="module")
def local_image():
    """A CUDA 13 app image on this machine's engine only (SIMULATION: busybox, no CUDA inside)."""
    dockerfile = "FROM provision-sandbox/busybox:latest\nENV CUDA_VERSION=13.0.0 NVIDIA_REQUIRE_CUDA=cuda>=13.0\n"
    subprocess.run(["/usr/bin/docker", "build", "-q", "-t", LOCAL_TOO_NEW, "-"], input=dockerfile, text=True,
                   check=True, capture_output=True, timeout=120)
    yield LOCAL_TOO_NEW
    subprocess.run(["/usr/bin/docker", "rmi", "-f", LOCAL_TOO_NEW], capture_output=True, timeout=60)


def host(fleet, name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", "exec", fleet.container(name), *argv], capture_output=True, text=True, timeout=60)
    assert not check or proc.returncode == 0, proc.stderr
    return proc


def state(fleet) -> dict:
    """What a deploy could change on the hosts: containers, images, the audit log."""
    return {name: (host(fleet, name, "docker", "ps", "-a", "--format", "{{.Names}}").stdout,
                   host(fleet, name, "docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout,
                   host(fleet, name, "sh", "-c", f"cat {AUDIT} 2>/dev/null || true").stdout)
            for name in (CPU_HOST, GPU_HOST)}


def write(tmp_path: Path, services: dict) -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(json.dumps({"name": "gd", "services": services}))  # JSON is YAML
    return path


def deploy(fleet, path: Path, *args: str):
    return cli_json("deploy", str(path), "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                    *args, env={"PROVISION_HOME": str(fleet.home)}, timeout=300)


def steps(doc: dict, name: str) -> dict:
    return {s["name"]: s for s in doc["hosts"][name]["steps"]}


def gpu_service(image: str, hosts: str = "gpu", gpus=None, **extra) -> dict:
    return {"image": image, "command": ["sleep", "2147483647"], "gpus": gpus or "all",
            "x-provision": {"hosts": hosts}, **extra}


def test_driver_too_old_for_a_pulled_image_is_refused_without_pulling_it(fleet, tmp_path):
    before = state(fleet)
    path = write(tmp_path, {"train": gpu_service(TOO_NEW), "web": {"image": "provision-sandbox/busybox:latest",
                                                                   "command": ["sleep", "60"]}})
    proc, doc = deploy(fleet, path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    refusal = steps(doc, GPU_HOST)["gpu check train"]
    assert refusal["status"] == "failed"
    message = refusal["message"]
    for words in (f"on host {GPU_HOST}", f"image {TOO_NEW} (service train) needs CUDA 13.0",
                  "the host's driver 550.54.15 supports CUDA 12.4", "Remedy: install a driver >= 580.65.06",
                  "or use an image tag built for CUDA 12.4 or older"):
        assert words in message, message
    cpu = doc["hosts"][CPU_HOST]
    assert cpu["status"] == "skipped"
    assert f"not deployed: the GPU checks refused host {GPU_HOST}" in cpu["message"]
    assert state(fleet) == before  # nothing created, no image pulled (not even its layers), no lock taken
    assert host(fleet, GPU_HOST, "docker", "image", "inspect", TOO_NEW, check=False).returncode != 0


def test_too_many_gpus_and_a_gpu_service_on_a_cpu_host_are_both_refused(fleet, tmp_path):
    before = state(fleet)
    uuid = fake_gpu.gpu_uuid(GPU_HOST)
    path = write(tmp_path, {
        "big": {k: v for k, v in gpu_service(COMPAT).items() if k != "gpus"} | {
            "deploy": {"resources": {"reservations": {"devices": [
                {"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}]}}}},
        "pinned": gpu_service(COMPAT, gpus=[{"device_ids": ["3"], "capabilities": ["gpu"]}]),
        "misplaced": gpu_service(COMPAT, hosts=CPU_HOST),
    })
    proc, doc = deploy(fleet, path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    gpu = steps(doc, GPU_HOST)
    assert gpu["gpu check big"]["message"].startswith(
        f"service big asks for 2 GPUs, but host {GPU_HOST} has 1 GPU: 0 ({uuid})")
    assert gpu["gpu check pinned"]["message"] == (
        f"service pinned asks for GPU 3, but host {GPU_HOST} has no GPU 3; it has 1 GPU: 0 ({uuid})")
    cpu = steps(doc, CPU_HOST)
    assert cpu["gpu check misplaced"]["message"].startswith(
        f"service misplaced asks for all GPUs, but host {CPU_HOST} has no GPU (nvidia-smi is not installed)")
    assert doc["summary"]["failed"] == 2
    assert state(fleet) == before


def test_check_shows_the_refusals_and_touches_nothing(fleet, tmp_path, local_image):
    before = state(fleet)
    path = write(tmp_path, {"train": gpu_service(local_image), "misplaced": gpu_service(TOO_NEW, hosts=CPU_HOST)})
    proc, doc = deploy(fleet, path, "--check")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    train = steps(doc, GPU_HOST)["gpu check train"]
    assert train["status"] == "failed" and f"image {local_image} (service train) needs CUDA 13.0" in train["message"]
    assert "no GPU (nvidia-smi is not installed)" in steps(doc, CPU_HOST)["gpu check misplaced"]["message"]
    assert state(fleet) == before
    # and without --check: the same refusal, and the local image was never shipped
    proc, doc = deploy(fleet, path)
    assert proc.returncode == 2 and steps(doc, GPU_HOST)["gpu check train"]["status"] == "failed"
    assert state(fleet) == before


def test_a_compatible_gpu_service_deploys_with_its_check_in_the_result(fleet, tmp_path):
    path = write(tmp_path, {"infer": gpu_service(COMPAT)})
    try:
        proc, doc = deploy(fleet, path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        check = steps(doc, GPU_HOST)["gpu check infer"]
        assert check["status"] == "ok"
        assert "all GPUs of sbx2's 1" in check["message"] and "met through forward compatibility" in check["message"]
        assert "data center GPUs" in check["message"]  # the GPU's brand (NVIDIA) was read: not "assumed met"
        assert "assumed met" not in check["message"]
        assert doc["hosts"][GPU_HOST]["steps"][0]["name"] == "gpu check infer"  # before any change
        assert "gd-infer-1" in host(fleet, GPU_HOST, "docker", "ps", "--format", "{{.Names}}").stdout
    finally:
        cli("down", "-s", "gd", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
            env={"PROVISION_HOME": str(fleet.home)})


@pytest.fixture
def geforce(fleet):
    """SIMULATION: the GPU host's nvidia-smi reports its GPU as a GeForce (test-only state); removed afterwards."""
    host(fleet, GPU_HOST, "sh", "-c", f"printf '%s' '{fake_gpu.state_text(brand='GeForce')}' > {fake_gpu.STATE_FILE}")
    yield
    host(fleet, GPU_HOST, "rm", "-f", fake_gpu.STATE_FILE)


def test_forward_compatibility_on_a_geforce_is_refused_from_the_gpus_brand(fleet, tmp_path, geforce):
    """The image's brand=geforce alternative lets the toolkit start it, but CUDA forward compatibility works only
    on data center GPUs: the brand read from `nvidia-smi -q -x` decides it before deploy."""
    before = state(fleet)
    proc, doc = deploy(fleet, write(tmp_path, {"infer": gpu_service(COMPAT)}), "--check")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = steps(doc, GPU_HOST)["gpu check infer"]["message"]
    for words in ("forward compatibility works only on data center GPUs, not on geforce",
                  "Remedy: install a driver >= 570.26"):
        assert words in message, message
    assert state(fleet) == before


def test_swarm_deploy_runs_the_gpu_checks_on_the_nodes_before_anything(fleet, tmp_path):
    """`deploy --swarm` (sbx1 manager without GPU, sbx2 a GPU worker): a GPU service whose image is too new for
    the node's driver is refused on the GPU node, with --check and without, and nothing reaches the swarm."""
    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["all"]["children"]["swarm_managers"] = {"hosts": {CPU_HOST: None}}
    doc["all"]["children"]["swarm_workers"] = {"hosts": {GPU_HOST: None}}
    inventory = fleet.write_inventory(fleet.home / "swarm.yml", doc)
    common = ["-i", str(inventory), "--known-hosts", str(fleet.home / "known_hosts")]
    env = {"PROVISION_HOME": str(fleet.home)}
    proc = cli("swarm", "init", *common, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        before = state(fleet)
        path = write(tmp_path, {"train": {"image": TOO_NEW, "command": ["sleep", "60"], "gpus": "all"}})
        for extra in (("--check",), ()):
            proc, doc = cli_json("deploy", "--swarm", *extra, str(path), *common, env=env, timeout=300)
            assert proc.returncode == 2, proc.stdout + proc.stderr
            refusal = steps(doc, GPU_HOST)["gpu check train"]
            assert refusal["status"] == "failed", refusal
            assert f"on host {GPU_HOST}: image {TOO_NEW} (service train) needs CUDA 13.0" in refusal["message"]
            manager = doc["hosts"][CPU_HOST]  # no GPU: Swarm does not place it there, so not refused there
            assert manager["status"] == "skipped" and "not deployed: the GPU checks refused host" in manager["message"]
        assert state(fleet) == before
        assert host(fleet, CPU_HOST, "docker", "service", "ls", "-q").stdout.strip() == ""
    finally:
        for name in (GPU_HOST, CPU_HOST):
            host(fleet, name, "docker", "swarm", "leave", "--force", check=False)
