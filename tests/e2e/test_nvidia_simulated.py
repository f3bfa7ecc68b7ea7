"""Issue 4's GPU stage end to end on a SIMULATED GPU host (fake nvidia-smi, stand-in toolkit packages from
the sandbox's nvidia.github.io; there is no GPU on these machines). Tests run in file order."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import cli_json

pytestmark = pytest.mark.e2e

OVERRIDE = "/etc/provision-sandbox/fake-gpu/container-nvidia-smi"


def run(fleet, *args):
    return cli_json(*args, "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"))


def started(fleet, host):
    return fleet.testinfra(host).check_output("systemctl show docker -p ActiveEnterTimestampMonotonic --value")


def test_simulated_bootstrap_cpu_host_skipped_gpu_host_verified(nvidia_fleet):
    proc, doc = run(nvidia_fleet, "bootstrap")
    assert proc.returncode == 0, proc.stderr
    cpu = {s["name"]: s for s in doc["hosts"]["sbx1"]["steps"]}
    assert cpu["gpu"]["status"] == "skipped" and "no NVIDIA GPU" in cpu["gpu"]["message"]
    gpu = {s["name"]: s for s in doc["hosts"]["sbx2"]["steps"]}
    for step in ("gpu toolkit repository", "gpu toolkit packages", "gpu nvidia runtime", "gpu cdi", "gpu docker restart"):
        assert gpu[step]["status"] == "changed", step
    assert gpu["gpu container"]["status"] == "ok"
    uuid = doc["hosts"]["sbx2"]["facts"]["gpus"][0]["uuid"]
    assert uuid in gpu["gpu container"]["message"]
    host = nvidia_fleet.testinfra("sbx2")
    for package in ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
                    "libnvidia-container1"):
        assert host.package(package).is_installed
    assert "signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg" in host.file(
        "/etc/apt/sources.list.d/nvidia-container-toolkit.list").content_string
    assert '"nvidia"' in host.file("/etc/docker/daemon.json").content_string
    assert host.file("/var/run/cdi/nvidia.yaml").exists


def test_simulated_second_run_changes_nothing_and_keeps_docker_running(nvidia_fleet):
    before = started(nvidia_fleet, "sbx2")
    proc, doc = run(nvidia_fleet, "nvidia", "install", "--check")
    assert proc.returncode == 0 and doc["hosts"]["sbx2"]["plan"] == [] and doc["hosts"]["sbx2"]["changed"] == 0
    proc, doc = run(nvidia_fleet, "nvidia", "install")
    assert proc.returncode == 0, proc.stderr
    assert doc["hosts"]["sbx2"]["changed"] == 0 and doc["hosts"]["sbx1"]["status"] == "skipped"
    assert started(nvidia_fleet, "sbx2") == before


def test_simulated_gpu_mismatch_fails_verify_saying_what_differs(nvidia_fleet):
    host = nvidia_fleet.testinfra("sbx2")
    host.run_expect([0], f"printf '#!/bin/sh\\necho \"0, GPU-00000000-aaaa-bbbb-cccc-000000000000, "
                         f"NVIDIA H100 80GB HBM3 (simulated), 81559 MiB\"\\n' > {OVERRIDE} && chmod 755 {OVERRIDE}")
    try:
        proc, doc = run(nvidia_fleet, "verify", "-l", "sbx2")
    finally:
        host.run(f"rm -f {OVERRIDE}")
    assert proc.returncode == 2
    failed = doc["hosts"]["sbx2"]["steps"][-1]
    assert failed["name"] == "gpu container" and failed["status"] == "failed"
    assert "missing in the container: GPU-" in failed["message"]
    assert "not on the host: GPU-00000000-aaaa-bbbb-cccc-000000000000" in failed["message"]


def test_simulated_reboot_required_then_reboot_wait_resume(nvidia_fleet):
    host = nvidia_fleet.testinfra("sbx2")
    host.run_expect([0], "touch /var/run/reboot-required")  # SIMULATION of a driver stage that needs a reboot
    proc, doc = run(nvidia_fleet, "nvidia", "install", "-l", "sbx2")
    assert proc.returncode == 0
    steps = {s["name"]: s for s in doc["hosts"]["sbx2"]["steps"]}
    assert steps["reboot"]["status"] == "skipped" and steps["reboot"]["message"].startswith("reboot required")
    assert doc["hosts"]["sbx2"]["reboot_required"] is True
    proc, doc = run(nvidia_fleet, "bootstrap", "--reboot", "-l", "sbx2")
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx2"]["steps"]}
    assert steps["reboot"]["status"] == "changed" and steps["reboot"]["message"].startswith("rebooted; back after")
    assert steps["gpu container"]["status"] == "ok"  # resumed and re-verified after the reboot
    assert not host.file("/var/run/reboot-required").exists


def test_simulated_gpu_without_driver_found_by_pci_and_driver_not_automated_on_debian(nvidia_fleet):
    host = nvidia_fleet.testinfra("sbx2")
    host.run_expect([0], "mv /usr/bin/nvidia-smi /usr/bin/nvidia-smi.sim-off")  # SIMULATION: no driver
    try:
        proc, doc = run(nvidia_fleet, "facts", "-l", "sbx2")
        facts = doc["hosts"]["sbx2"]["facts"]
        assert facts["nvidia"] is None
        assert [(g["pci_id"], g["uuid"]) for g in facts["gpus"]] == [("10de:2330", None)]  # seen on the PCI bus
        proc, doc = run(nvidia_fleet, "nvidia", "install", "-l", "sbx2")
    finally:
        host.run("mv /usr/bin/nvidia-smi.sim-off /usr/bin/nvidia-smi")
    assert proc.returncode == 2
    failed = doc["hosts"]["sbx2"]["steps"][-1]
    assert failed["name"] == "gpu driver"
    assert "installing the driver is not automated on debian" in failed["message"]


def test_simulated_ml_stack_gpu_service_runs_on_the_gpu_host_only(nvidia_fleet):
    """playbooks/ml-stack.yml as shipped (a Compose file): the GPU worker (`gpus: all` and
    `x-provision: {hosts: gpu}`) lands on the SIMULATED GPU host only, and sees the host's (fake) GPU
    through the toolkit's hook."""
    import subprocess
    from pathlib import Path

    playbook = Path(__file__).resolve().parents[2] / "playbooks" / "ml-stack.yml"
    proc, doc = cli_json("deploy", str(playbook), "-i", str(nvidia_fleet.inventory), "--known-hosts",
                         str(nvidia_fleet.home / "known_hosts"), env={"HF_TOKEN": "sim-token"}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gpu-worker" in doc["hosts"]["sbx2"]["services"]
    assert "gpu-worker" not in doc["hosts"]["sbx1"]["services"]
    logs = subprocess.run(["docker", "exec", nvidia_fleet.container("sbx2"), "docker", "logs", "ml-gpu-worker-1"],
                          capture_output=True, text=True, timeout=60)
    gpus = nvidia_fleet.testinfra("sbx2").check_output("nvidia-smi -L")
    assert logs.stdout.strip() == gpus.strip()
    requests = subprocess.run(["docker", "exec", nvidia_fleet.container("sbx2"), "docker", "inspect", "-f",
                               "{{json .HostConfig.DeviceRequests}}", "ml-gpu-worker-1"],
                              capture_output=True, text=True, timeout=60)
    [request] = json.loads(requests.stdout)
    assert (request["Count"], request["Capabilities"]) == (-1, [["gpu"]]), request
