"""Exact NVIDIA command strings (groundwork for issue 4), one case per variant."""

import pytest

from provision.commands import nvidia

ENV = "env DEBIAN_FRONTEND=noninteractive"


def test_toolkit_key_dearmored_atomically():
    assert nvidia.fetch_toolkit_key(ENV) == (
        "env DEBIAN_FRONTEND=noninteractive curl -fsSL --retry 3 https://nvidia.github.io/libnvidia-container/gpgkey | "
        "gpg --batch --yes --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg.provision-new && "
        "chmod a+r /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg.provision-new && "
        "mv -f /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg.provision-new "
        "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg")


def test_toolkit_list_gets_signed_by_from_a_mirror():
    assert nvidia.fetch_toolkit_list(ENV, "https://mirror.example/nvidia/") == (
        "env DEBIAN_FRONTEND=noninteractive curl -fsSL --retry 3 "
        "https://mirror.example/nvidia/stable/deb/nvidia-container-toolkit.list | "
        "sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' > "
        "/etc/apt/sources.list.d/nvidia-container-toolkit.list.provision-new && "
        "grep -q '^deb ' /etc/apt/sources.list.d/nvidia-container-toolkit.list.provision-new && "
        "mv -f /etc/apt/sources.list.d/nvidia-container-toolkit.list.provision-new "
        "/etc/apt/sources.list.d/nvidia-container-toolkit.list")


@pytest.mark.parametrize("version, specs", [
    (None, ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools", "libnvidia-container1"]),
    ("1.19.0-1", ["nvidia-container-toolkit=1.19.0-1", "nvidia-container-toolkit-base=1.19.0-1",
                  "libnvidia-container-tools=1.19.0-1", "libnvidia-container1=1.19.0-1"]),
])
def test_toolkit_packages_pinned_together(version, specs):
    assert nvidia.toolkit_package_specs(version) == specs


def test_runtime_configure_and_cdi():
    assert nvidia.runtime_configure() == "nvidia-ctk runtime configure --runtime=docker"
    assert nvidia.runtime_configure(default_runtime=True) == "nvidia-ctk runtime configure --runtime=docker --set-as-default"
    assert nvidia.cdi_generate() == "nvidia-ctk cdi generate --output=/var/run/cdi/nvidia.yaml"


@pytest.mark.parametrize("nvswitch, extra", [
    (False, ["nvidia-utils-570-server", "nvidia-compute-utils-570-server"]),
    (True, ["nvidia-utils-570-server", "nvidia-compute-utils-570-server", "nvidia-fabricmanager-570", "libnvidia-nscq-570"]),
])
def test_ubuntu_driver_packages(nvswitch, extra):
    assert nvidia.driver_packages("570", nvswitch=nvswitch) == ("ubuntu-drivers install --gpgpu nvidia:570-server", extra)


def test_gpu_test_container_and_comparison():
    assert nvidia.gpu_test_command("nvidia/cuda:12.4.1-base-ubuntu22.04") == (
        "docker run --rm --gpus all -- nvidia/cuda:12.4.1-base-ubuntu22.04 nvidia-smi "
        "--query-gpu=index,uuid,name,memory.total --format=csv,noheader")
    rows = nvidia.parse_gpu_test_output("0, GPU-aaa, NVIDIA H100 80GB HBM3, 81559 MiB\n1, GPU-bbb, NVIDIA H100 80GB HBM3, 81559 MiB\n")
    assert [r["uuid"] for r in rows] == ["GPU-aaa", "GPU-bbb"] and rows[0]["name"] == "NVIDIA H100 80GB HBM3"
    assert nvidia.compare_gpus(["GPU-aaa", "GPU-bbb"], ["GPU-bbb", "GPU-aaa"]) is None
    assert nvidia.compare_gpus(["GPU-aaa", "GPU-bbb"], ["GPU-aaa", "GPU-ccc"]) == (
        "host has 2 GPU(s), the container sees 2; missing in the container: GPU-bbb; not on the host: GPU-ccc")


@pytest.mark.parametrize("error, fix_start", [
    ('docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].',
     "docker has no GPU support"),
    ("Failed to initialize NVML: Driver/library version mismatch", "the loaded NVIDIA kernel module"),
    ("No devices were found", "the driver sees no GPU"),
    ("exec: \"/snap/bin/docker\": permission denied", "Docker from snap"),
    ("something else entirely", None),
])
def test_known_failures_get_a_fix(error, fix_start):
    advice = nvidia.advice_for(error)
    if fix_start is None:
        assert advice is None
    else:
        assert advice.startswith(fix_start)


# -- hostile values (tests/e2e/test_command_quoting.py drives them on a sandbox host) -------------
def test_an_image_is_never_read_as_an_option():
    assert nvidia.gpu_test_command("--privileged") == (
        "docker run --rm --gpus all -- --privileged nvidia-smi --query-gpu=index,uuid,name,memory.total "
        "--format=csv,noheader")


def test_hostile_branch_and_version_stay_one_argument():
    install, extra = nvidia.driver_packages("580 $(id)", nvswitch=False)
    assert install == "ubuntu-drivers install --gpgpu 'nvidia:580 $(id)-server'"
    assert extra == ["nvidia-utils-580 $(id)-server", "nvidia-compute-utils-580 $(id)-server"]
    with pytest.raises(ValueError, match="^nvidia_toolkit_version contains a NUL byte"):
        nvidia.toolkit_package_specs("1.0\0")


def test_a_repo_url_curl_would_read_as_an_option_is_refused():
    with pytest.raises(ValueError, match="^nvidia_repo_url starts with '-'"):
        nvidia.fetch_toolkit_key(ENV, "--config=/etc/shadow")
    with pytest.raises(ValueError, match="^nvidia_repo_url contains the control character"):
        nvidia.fetch_toolkit_list(ENV, "https://mirror/\nx")
