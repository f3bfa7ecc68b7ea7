"""The NVIDIA stage decides from facts and probed state: one case per host variant (Ubuntu driver paths
are unit-tested only: sandbox hosts are Debian)."""

from provision.commands import nvidia
from provision.config.host_settings import NvidiaSettings
from provision.facts.nvidia_host import NvidiaHostState
from provision.operations import nvidia_install as op
from provision.operations.base import Change, NoChange, Refusal

H100 = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-a", "memory_mib": 81559, "pci_id": "10de:2330"}
V100 = {"index": 0, "name": "Tesla V100-SXM2-16GB", "uuid": "GPU-v", "memory_mib": 16384, "pci_id": "10de:1db1"}
S = NvidiaSettings()


def facts(**kw):
    base = {"os": {"id": "ubuntu"}, "gpus": [H100], "nvswitch": False, "nvidia": None, "nvidia_error": None}
    base.update(kw)
    return base


def test_gpu_hosts_by_facts_or_inventory():
    assert op.is_gpu_host(facts(), S) == (True, "1 NVIDIA GPU(s) found")
    assert op.is_gpu_host(facts(gpus=[]), S)[0] is False
    assert op.is_gpu_host(facts(gpus=[]), NvidiaSettings(gpu=True)) == (True, "inventory sets gpu: true")


def test_working_driver_left_alone():
    assert isinstance(op.driver(facts(nvidia={"driver": "580.95.05", "cuda": "13.0"}), S), NoChange)


def test_ubuntu_driver_open_modules_for_turing_and_newer():
    change = op.driver(facts(), S)
    assert change.commands[1] == "ubuntu-drivers install --gpgpu nvidia:580-server-open"
    assert "open kernel modules" in change.reason and change.notes == ["a reboot is needed to load the new driver"]
    assert "systemctl enable nvidia-persistenced" in change.commands
    assert change.commands[0] == nvidia.blacklist_nouveau_if_loaded()


def test_ubuntu_driver_proprietary_for_volta_or_when_asked():
    assert op.driver(facts(gpus=[V100]), S).commands[1] == "ubuntu-drivers install --gpgpu nvidia:580-server"
    forced = op.driver(facts(), NvidiaSettings(nvidia_open_modules=False, nvidia_driver_branch="570"))
    assert forced.commands[1] == "ubuntu-drivers install --gpgpu nvidia:570-server"


def test_fabric_manager_only_with_nvswitch():
    assert "systemctl enable nvidia-fabricmanager" in op.driver(facts(nvswitch=True), S).commands
    assert "systemctl enable nvidia-fabricmanager" not in op.driver(facts(), S).commands


def test_debian_driver_not_automated():
    refusal = op.driver(facts(os={"id": "debian"}, nvidia_error="Failed to initialize NVML: Driver/library version mismatch"), S)
    assert isinstance(refusal, Refusal)
    assert refusal.reason.startswith("no working NVIDIA driver (Failed to initialize NVML: Driver/library version mismatch); "
                                     "installing the driver is not automated on debian")


def test_toolkit_repo_packages_runtime_cdi_on_a_fresh_gpu_host():
    state = NvidiaHostState(remote_key_sha="k", remote_list_sha="l", daemon_json='{"log-driver": "json-file"}')
    repo = op.toolkit_repository(state, S)
    assert repo.reason == ("key → /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg; "
                           "/etc/apt/sources.list.d/nvidia-container-toolkit.list (signed-by)")
    pkgs = op.toolkit_packages(state, NvidiaSettings(nvidia_toolkit_version="1.19.0-1"))
    assert pkgs.reason == ("installing nvidia-container-toolkit=1.19.0-1, nvidia-container-toolkit-base=1.19.0-1, "
                           "libnvidia-container-tools=1.19.0-1, libnvidia-container1=1.19.0-1")
    runtime = op.docker_runtime(state, NvidiaSettings(nvidia_default_runtime=True), "T")
    assert runtime.commands[-1] == "nvidia-ctk runtime configure --runtime=docker --set-as-default"
    assert isinstance(op.cdi_spec(state, toolkit_installed=True), Change)
    from provision.commands import daemon_json

    assert op.docker_restart(runtime_changed=True, toolkit_installed=True).commands == [
        daemon_json.restart_or_restore(None)]
    assert op.docker_restart(runtime_changed=False, toolkit_installed=True).commands == ["systemctl restart docker"]


def test_configured_gpu_host_needs_nothing():
    state = NvidiaHostState(keyring_sha="k", remote_key_sha="k", list_sha="l", remote_list_sha="l", cdi_spec=True,
                            daemon_json='{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}',
                            packages={p: "1.19.0-1" for p in nvidia.TOOLKIT_PACKAGES})
    plan = [op.toolkit_repository(state, S), op.toolkit_packages(state, S), op.docker_runtime(state, S, "T"),
            op.cdi_spec(state, False), op.docker_restart(False, False)]
    assert all(isinstance(p, NoChange) for p in plan), plan
    assert isinstance(op.docker_runtime(state, NvidiaSettings(nvidia_default_runtime=True), "T"), Change)


def test_pending_kernel_upgraded_before_the_driver():
    listing = ("Inst linux-image-6.8.0-51-generic (6.8.0-51.52 Ubuntu:24.04/noble-updates [amd64])\n"
               "Inst linux-headers-6.8.0-51 (6.8.0-51.52 Ubuntu:24.04/noble-updates [all])\n")
    pending = nvidia.parse_pending_kernels(listing)
    assert pending == ["linux-image-6.8.0-51-generic"]
    change = op.kernel_upgrade(pending, S)
    assert change.reason == "upgrading first: a newer kernel is pending (linux-image-6.8.0-51-generic)"
    assert change.commands[0].endswith(" dist-upgrade")
    assert isinstance(op.kernel_upgrade([], S), NoChange)
