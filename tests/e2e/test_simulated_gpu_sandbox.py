"""SIMULATED GPU sandbox end to end (there is NO GPU on this machine): fleet `e2e-gpu`, sbx2 is a
simulated GPU host (fake nvidia-smi), and the offline nvidia.github.io serves a signed repository of
SIMULATED NVIDIA Container Toolkit packages. These tests check the sandbox itself, through the
product's `facts` and NVIDIA's documented install flow run on the host."""

from __future__ import annotations

import json

import pytest

from provision_sandbox import fake_gpu
from provision_sandbox.upstreams import nvidia_repo
from tests.e2e.conftest import cli_json

GPU_HOST, CPU_HOST = "sbx2", "sbx1"
KEYRING = nvidia_repo.KEYRING
LIST_FILE = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
BASE = "https://nvidia.github.io/libnvidia-container"
OLD, NEW = "1.17.8-1", "1.19.0-1"
# apt-get update of this one source only: the official flow updates every source, which here adds
# nothing but time (Debian's indexes are not what is tested)
UPDATE_NVIDIA_ONLY = (f"apt-get update -o Dir::Etc::sourcelist={LIST_FILE} -o Dir::Etc::sourceparts=- "
                      "-o APT::Get::List-Cleanup=0")


def test_simulated_gpu_host_facts_show_the_fake_gpu_and_cpu_host_none(gpu_fleet, tmp_path):
    proc, doc = cli_json("facts", "-i", str(gpu_fleet.inventory), "--known-hosts", str(tmp_path / "kh"))
    assert proc.returncode == 0, proc.stderr
    gpu = doc["hosts"][GPU_HOST]["facts"]
    assert gpu["gpus"] == [{"index": 0, "name": fake_gpu.DEFAULT_GPU_NAME, "uuid": fake_gpu.gpu_uuid(GPU_HOST),
                            "memory_mib": fake_gpu.DEFAULT_MEMORY_MIB, "pci_id": "10de:2330",
                            "pci_bus_id": "0000:18:00.0"}]
    assert gpu["nvidia"] == {"driver": "550.54.15", "cuda": "12.4"}
    assert gpu["nvidia_error"] is None
    cpu = doc["hosts"][CPU_HOST]["facts"]
    assert cpu["gpus"] == [] and cpu["nvidia"] is None


@pytest.fixture
def nvidia_apt_source(gpu_fleet):
    """NVIDIA's documented repository setup on the simulated GPU host; undone afterwards."""
    host = gpu_fleet.testinfra(GPU_HOST)
    yield host
    host.run(f"apt-get purge -y {' '.join(nvidia_repo.PACKAGES)}; rm -f {LIST_FILE} {KEYRING} "
             "/var/lib/apt/lists/nvidia.github.io_* /tmp/sim-daemon.json /tmp/x.yaml /var/run/cdi/nvidia.yaml")


def test_simulated_nvidia_repo_follows_the_official_install_flow(nvidia_apt_source):
    host = nvidia_apt_source
    host.check_output(f"curl -fsSL {BASE}/gpgkey | gpg --batch --yes --dearmor -o {KEYRING}")
    listed = host.check_output(f"curl -fsSL {BASE}/stable/deb/nvidia-container-toolkit.list")
    assert listed == nvidia_repo.LIST_TEXT.strip()  # upstream's form: no signed-by
    host.check_output(f"curl -fsSL {BASE}/stable/deb/nvidia-container-toolkit.list | "
                      f"sed 's#deb https://#deb [signed-by={KEYRING}] https://#g' > {LIST_FILE}")
    assert host.file(LIST_FILE).content_string == nvidia_repo.signed_list_text()
    update = host.run(UPDATE_NVIDIA_ONLY)
    assert update.rc == 0 and "NO_PUBKEY" not in update.stderr, update.stderr
    madison = host.check_output("apt-cache madison nvidia-container-toolkit")
    assert OLD in madison and NEW in madison and f"{BASE}/stable/deb/amd64" in madison
    assert "SIMULATION:" in host.check_output("apt-cache show nvidia-container-toolkit")

    # the four packages pinned together, to the older version
    pinned = " ".join(f"{p}={OLD}" for p in nvidia_repo.PACKAGES)
    install = host.run(f"DEBIAN_FRONTEND=noninteractive apt-get install -y {pinned}")
    assert install.rc == 0, install.stdout + install.stderr
    for package in nvidia_repo.PACKAGES:
        assert host.package(package).version == OLD
    assert "version 1.17.8" in host.check_output("nvidia-ctk --version")
    for tool in ("nvidia-container-runtime-hook", "nvidia-container-runtime", "nvidia-container-cli"):
        assert host.exists(tool)

    # runtime configure merges into daemon.json and keeps other keys (a scratch copy: /etc/docker stays untouched)
    host.check_output("""echo '{"log-driver":"json-file"}' > /tmp/sim-daemon.json""")
    host.check_output("nvidia-ctk runtime configure --runtime=docker --config=/tmp/sim-daemon.json")
    config = json.loads(host.file("/tmp/sim-daemon.json").content_string)
    assert config == {"log-driver": "json-file",
                      "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
    host.check_output("nvidia-ctk runtime configure --runtime=docker --set-as-default --config=/tmp/sim-daemon.json")
    assert json.loads(host.file("/tmp/sim-daemon.json").content_string)["default-runtime"] == "nvidia"

    # CDI
    uuid = fake_gpu.gpu_uuid("sbx2")
    host.check_output("nvidia-ctk cdi generate --output=/tmp/x.yaml")
    spec = host.file("/tmp/x.yaml").content_string
    assert "kind: nvidia.com/gpu" in spec and uuid in spec and '"all"' in spec
    host.check_output("nvidia-ctk cdi generate --output=/var/run/cdi/nvidia.yaml")
    assert host.check_output("nvidia-ctk cdi list").split() == ["nvidia.com/gpu=0", f"nvidia.com/gpu={uuid}", "nvidia.com/gpu=all"]


def test_simulated_hook_injects_the_container_nvidia_smi(gpu_fleet):
    """The fake OCI prestart hook, run as dockerd would (no Docker needed on the host): it copies the
    override nvidia-smi and the GPU list into the container's root."""
    host = gpu_fleet.testinfra(GPU_HOST)
    override = fake_gpu.CONTAINER_SMI_OVERRIDE
    script = fake_gpu.HERE / "nvidia-container-runtime-hook"
    try:
        host.check_output("mkdir -p /tmp/sim-bundle/rootfs && printf %s '{\"root\":{\"path\":\"/tmp/sim-bundle/rootfs\"}}' > /tmp/sim-bundle/config.json")
        host.check_output(f"printf '#!/bin/sh\\necho GPU 0: other simulated GPU\\n' > {override} && chmod 755 {override}")
        with open(script) as handle:
            host.check_output(f"cat > /tmp/sim-hook <<'EOF'\n{handle.read()}EOF\nchmod 755 /tmp/sim-hook")
        host.check_output("""echo '{"bundle":"/tmp/sim-bundle","pid":1}' | /tmp/sim-hook prestart""")
        assert host.check_output("/tmp/sim-bundle/rootfs/usr/bin/nvidia-smi -L") == "GPU 0: other simulated GPU"
        assert host.file(f"/tmp/sim-bundle/rootfs{fake_gpu.GPUS_FILE}").exists
    finally:
        host.run(f"rm -rf /tmp/sim-bundle /tmp/sim-hook {override} /var/log/fake-nvidia-hook.log")
