"""Unit tests for provision.facts.parsers: one case per output variant, exact values.

Fixtures under tests/fixtures/facts: ``*-documented.*`` are written from published/documented
output formats (no GPU was available), ``debian12-real-vm*.txt`` are real captures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.facts import parsers as p

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "facts"


def fx(name: str) -> str:
    return (FIXTURES / name).read_text()


# --------------------------------------------------------------------------- os-release


def test_os_release_ubuntu_2204() -> None:
    assert p.parse_os_release(fx("ubuntu2204-os-release-documented.txt")) == {
        "id": "ubuntu",
        "version_id": "22.04",
        "codename": "jammy",
        "pretty_name": "Ubuntu 22.04.4 LTS",
    }


def test_os_release_ubuntu_2404() -> None:
    assert p.parse_os_release(fx("ubuntu2404-os-release-documented.txt")) == {
        "id": "ubuntu",
        "version_id": "24.04",
        "codename": "noble",
        "pretty_name": "Ubuntu 24.04.1 LTS",
    }


def test_os_release_debian_uses_version_codename() -> None:
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
    assert p.parse_os_release(text) == {
        "id": "debian",
        "version_id": "12",
        "codename": "bookworm",
        "pretty_name": "Debian GNU/Linux 12 (bookworm)",
    }


def test_os_release_ubuntu_codename_wins_over_version_codename() -> None:
    text = "ID=pop\nVERSION_CODENAME=other\nUBUNTU_CODENAME=jammy\n"
    assert p.parse_os_release(text)["codename"] == "jammy"


def test_os_release_missing_keys_are_none() -> None:
    # Debian testing/sid has no VERSION_ID.
    text = 'PRETTY_NAME="Debian GNU/Linux trixie/sid"\nID=debian\n'
    assert p.parse_os_release(text) == {
        "id": "debian",
        "version_id": None,
        "codename": None,
        "pretty_name": "Debian GNU/Linux trixie/sid",
    }


def test_env_file_quoting_comments_and_escapes() -> None:
    text = "# comment\n\nA='single quoted'\nB=\"with \\\"escape\\\"\"\nC=plain\nbad line\nD=\"unbalanced\n"
    assert p.parse_env_file(text) == {"A": "single quoted", "B": 'with "escape"', "C": "plain", "D": "unbalanced"}


# --------------------------------------------------------------------------- arch / kernel / cpus / memory


def test_arch_from_dpkg() -> None:
    assert p.parse_arch("arm64\n", "aarch64") == "arm64"


@pytest.mark.parametrize(("uname_m", "arch"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("ppc64le", "ppc64el")])
def test_arch_falls_back_to_uname_m(uname_m: str, arch: str) -> None:
    assert p.parse_arch(None, uname_m + "\n") == arch


def test_arch_unknown_uname_kept_and_nothing_is_none() -> None:
    assert p.parse_arch(None, "mips64") == "mips64"
    assert p.parse_arch(None, None) is None


def test_uname_r_and_nproc() -> None:
    assert p.parse_uname_r("5.15.0-91-generic\n") == "5.15.0-91-generic"
    assert p.parse_nproc("224\n") == 224
    assert p.parse_nproc("") is None


def test_meminfo() -> None:
    assert p.parse_meminfo("MemTotal:       24683656 kB\nMemFree:        23973360 kB\n") == 24105
    assert p.parse_meminfo("MemFree: 1 kB\n") is None


def test_flag() -> None:
    assert p.parse_flag("yes") is True
    assert p.parse_flag("no") is False
    assert p.parse_flag("") is False


# --------------------------------------------------------------------------- cloud-init


@pytest.mark.parametrize(
    ("fixture", "status"),
    [
        ("cloud-init-status-done-documented.txt", "done"),
        ("cloud-init-status-running-documented.txt", "running"),
        ("cloud-init-status-disabled-documented.txt", "disabled"),
        ("cloud-init-status-error-documented.txt", "error"),
        ("cloud-init-status-not-started-documented.txt", "not started"),
        ("cloud-init-status-not-run-old-documented.txt", "not run"),
        ("cloud-init-status-systemctl-warning-documented.txt", "running"),
    ],
)
def test_cloud_init_status(fixture: str, status: str) -> None:
    assert p.parse_cloud_init_status(fx(fixture)) == status


def test_cloud_init_status_wait_dots_and_garbage() -> None:
    assert p.parse_cloud_init_status("....\nstatus: done\n") == "done"
    assert p.parse_cloud_init_status("Traceback (most recent call last):\n") == "unknown"


# --------------------------------------------------------------------------- secure boot


def test_secure_boot_mokutil_enabled() -> None:
    assert p.parse_secure_boot("SecureBoot enabled\n", None) is True


def test_secure_boot_mokutil_disabled() -> None:
    assert p.parse_secure_boot("SecureBoot disabled\n", " 06 00 00 00 01") is False


def test_secure_boot_mokutil_enabled_with_shim_validation_line() -> None:
    assert p.parse_secure_boot("SecureBoot enabled\nSecureBoot validation is disabled in shim\n", None) is True


def test_secure_boot_efivar_enabled_and_disabled() -> None:
    assert p.parse_secure_boot(None, " 06 00 00 00 01\n") is True
    assert p.parse_secure_boot(None, " 06 00 00 00 00\n") is False


def test_secure_boot_mokutil_unsupported_falls_back_to_efivar() -> None:
    assert p.parse_secure_boot("EFI variables are not supported on this system\n", None) is None
    assert p.parse_secure_boot("This system doesn't support Secure Boot\n", " 06 00 00 00 01") is True


def test_secure_boot_unknown() -> None:
    assert p.parse_secure_boot(None, None) is None
    assert p.parse_secure_boot(None, " 06 00 00") is None
    assert p.parse_secure_boot(None, "od: cannot open") is None


def test_efivar_hex() -> None:
    assert p.parse_efivar_hex(" 06 00 00 00 01\n") == b"\x06\x00\x00\x00\x01"


# --------------------------------------------------------------------------- nvidia-smi


def test_nvidia_smi_query_single_h100_pcie() -> None:
    assert p.parse_nvidia_smi_query(fx("nvidia-smi-query-h100-pcie-1gpu-documented.csv")) == [
        {
            "index": 0,
            "name": "NVIDIA H100 PCIe",
            "uuid": "GPU-9a3f6b2e-5c1d-4e8f-b7a2-0d4c6e8f1a23",
            "memory_mib": 81559,
            "pci_id": "10de:2331",
            "pci_bus_id": "0000:07:00.0",
            "driver_version": "535.129.03",
        }
    ]


def test_nvidia_smi_query_hgx_8_gpus() -> None:
    gpus = p.parse_nvidia_smi_query(fx("nvidia-smi-query-hgx-h100-8gpu-documented.csv"))
    assert [g["index"] for g in gpus] == list(range(8))
    assert [g["pci_bus_id"] for g in gpus] == [
        "0000:18:00.0",
        "0000:2a:00.0",
        "0000:3a:00.0",
        "0000:5d:00.0",
        "0000:9a:00.0",
        "0000:ab:00.0",
        "0000:ba:00.0",
        "0000:db:00.0",
    ]
    assert {g["name"] for g in gpus} == {"NVIDIA H100 80GB HBM3"}
    assert {g["pci_id"] for g in gpus} == {"10de:2330"}
    assert {g["memory_mib"] for g in gpus} == {81559}
    assert {g["driver_version"] for g in gpus} == {"550.54.15"}
    assert gpus[7]["uuid"] == "GPU-06ce5c8f-1b7f-4dab-bae7-7b9c1d3f4e5f"


def test_nvidia_smi_query_not_available_values_and_error_lines() -> None:
    text = (
        "Unable to determine the device handle for GPU0000:1B:00.0: Unknown Error\n"
        "1, NVIDIA A10G, GPU-1a2b3c4d-0000-1111-2222-333344445555, [N/A], 00000000:00:1E.0, 0x223710DE, [N/A]\n"
    )
    assert p.parse_nvidia_smi_query(text) == [
        {
            "index": 1,
            "name": "NVIDIA A10G",
            "uuid": "GPU-1a2b3c4d-0000-1111-2222-333344445555",
            "memory_mib": None,
            "pci_id": "10de:2237",
            "pci_bus_id": "0000:00:1e.0",
            "driver_version": None,
        }
    ]


@pytest.mark.parametrize(
    "fixture",
    [
        "nvidia-smi-error-no-driver-documented.txt",
        "nvidia-smi-error-version-mismatch-documented.txt",
        "nvidia-smi-error-no-devices-documented.txt",
    ],
)
def test_nvidia_smi_query_on_error_output_is_empty(fixture: str) -> None:
    assert p.parse_nvidia_smi_query(fx(fixture)) == []


def test_nvidia_smi_header_535() -> None:
    text = fx("nvidia-smi-h100-pcie-1gpu-documented.txt")
    assert p.parse_nvidia_smi_header(text) == "12.2"
    assert p.parse_nvidia_smi_driver(text) == "535.129.03"


def test_nvidia_smi_header_550_hgx() -> None:
    text = fx("nvidia-smi-hgx-h100-8gpu-documented.txt")
    assert p.parse_nvidia_smi_header(text) == "12.4"
    assert p.parse_nvidia_smi_driver(text) == "550.54.15"


def test_nvidia_smi_header_mig_table() -> None:
    assert p.parse_nvidia_smi_header(fx("nvidia-smi-mig-h100-documented.txt")) == "12.4"


def test_nvidia_smi_header_absent() -> None:
    assert p.parse_nvidia_smi_header(fx("nvidia-smi-error-no-driver-documented.txt")) is None
    assert p.parse_nvidia_smi_driver("") is None


@pytest.mark.parametrize(
    ("fixture", "rc", "error"),
    [
        (
            "nvidia-smi-error-no-driver-documented.txt",
            9,
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.",
        ),
        ("nvidia-smi-error-version-mismatch-documented.txt", 18, "Failed to initialize NVML: Driver/library version mismatch"),
        ("nvidia-smi-error-no-devices-documented.txt", 6, "No devices were found"),
    ],
)
def test_nvidia_smi_error_first_line(fixture: str, rc: int, error: str) -> None:
    assert p.parse_nvidia_smi_error(fx(fixture), rc) == error


def test_nvidia_smi_error_without_output() -> None:
    assert p.parse_nvidia_smi_error("", 124) == "nvidia-smi timed out"
    assert p.parse_nvidia_smi_error("\n", 255) == "nvidia-smi exited with status 255"
    assert p.parse_nvidia_smi_error("0, NVIDIA H100 80GB HBM3, GPU-", None) == "nvidia-smi output was cut off"


@pytest.mark.parametrize(
    ("value", "pci_id"),
    [("0x233010DE", "10de:2330"), ("0x233110de", "10de:2331"), ("0x20B010DE", "10de:20b0"), ("[N/A]", None), ("0x1", "0001:0000")],
)
def test_pci_device_id(value: str, pci_id: str | None) -> None:
    assert p.parse_pci_device_id(value) == pci_id


@pytest.mark.parametrize(
    ("address", "normalized"),
    [
        ("00000000:1B:00.0", "0000:1b:00.0"),
        ("0000:1b:00.0", "0000:1b:00.0"),
        ("1b:00.0", "0000:1b:00.0"),
        ("00000001:C3:1F.7", "0001:c3:1f.7"),
        ("not-an-address", None),
    ],
)
def test_normalize_pci_address(address: str, normalized: str | None) -> None:
    assert p.normalize_pci_address(address) == normalized


# --------------------------------------------------------------------------- PCI


def test_pci_devices_real_vm() -> None:
    text = (
        "0000:00:00.0 0x8086 0x0d57 0x060000\n"
        "0000:00:01.0 0x1af4 0x1045 0xffff00\n"
        "0000:00:03.0 0x1af4 0x1041 0x020000\n"
    )
    assert p.parse_pci_devices(text) == [
        {"address": "0000:00:00.0", "vendor": "8086", "device": "0d57", "class": "060000"},
        {"address": "0000:00:01.0", "vendor": "1af4", "device": "1045", "class": "ffff00"},
        {"address": "0000:00:03.0", "vendor": "1af4", "device": "1041", "class": "020000"},
    ]


def test_pci_devices_hgx_gpus_and_nvswitches() -> None:
    devices = p.parse_pci_devices(fx("pci-devices-hgx-h100-8gpu-documented.txt"))
    assert len(devices) == 15
    assert [d["address"] for d in devices if p.is_nvswitch(d)] == [
        "0000:05:00.0",
        "0000:06:00.0",
        "0000:07:00.0",
        "0000:08:00.0",
    ]
    assert [d["address"] for d in devices if p.is_nvidia_gpu(d)] == [
        "0000:18:00.0",
        "0000:2a:00.0",
        "0000:3a:00.0",
        "0000:5d:00.0",
        "0000:9a:00.0",
        "0000:ab:00.0",
        "0000:ba:00.0",
        "0000:db:00.0",
    ]


def test_pci_devices_sorted_and_malformed_lines_skipped() -> None:
    text = "0000:db:00.0 0x10de 0x2330 0x030200\ngarbage\n0000:18:00.0 0x10de 0x2330\n0000:18:00.0 0x10de 0x2330 0x030200\n"
    assert [d["address"] for d in p.parse_pci_devices(text)] == ["0000:18:00.0", "0000:db:00.0"]


def test_gpu_and_nvswitch_classification() -> None:
    vga = {"vendor": "10de", "device": "2684", "class": "030000"}
    audio = {"vendor": "10de", "device": "22ba", "class": "040300"}
    bochs = {"vendor": "1234", "device": "1111", "class": "030000"}
    switch = {"vendor": "10de", "device": "22a3", "class": "068000"}
    assert [p.is_nvidia_gpu(d) for d in (vga, audio, bochs, switch)] == [True, False, False, False]
    assert [p.is_nvswitch(d) for d in (vga, audio, bochs, switch)] == [False, False, False, True]


def test_lspci_names() -> None:
    names = p.parse_lspci_names(fx("lspci-nvidia-hgx-h100-8gpu-documented.txt"))
    assert names["0000:18:00.0"] == "NVIDIA Corporation GH100 [H100 SXM5 80GB]"
    assert names["0000:05:00.0"] == "NVIDIA Corporation GH100 [H100 NVSwitch]"
    assert len(names) == 12


def test_lspci_names_without_domain_or_rev() -> None:
    text = "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD102 [GeForce RTX 4090] [10de:2684]\n"
    assert p.parse_lspci_names(text) == {"0000:01:00.0": "NVIDIA Corporation AD102 [GeForce RTX 4090]"}


def test_gpus_from_pci_with_and_without_lspci() -> None:
    devices = p.parse_pci_devices(
        "0000:2a:00.0 0x10de 0x2330 0x030200\n0000:18:00.0 0x10de 0x2330 0x030200\n0000:05:00.0 0x10de 0x22a3 0x068000\n"
    )
    names = {"0000:18:00.0": "NVIDIA Corporation GH100 [H100 SXM5 80GB]"}
    assert p.gpus_from_pci(devices, names) == [
        {
            "index": 0,
            "name": "NVIDIA Corporation GH100 [H100 SXM5 80GB]",
            "uuid": None,
            "memory_mib": None,
            "pci_id": "10de:2330",
            "pci_bus_id": "0000:18:00.0",
        },
        {
            "index": 1,
            "name": "NVIDIA [10de:2330]",
            "uuid": None,
            "memory_mib": None,
            "pci_id": "10de:2330",
            "pci_bus_id": "0000:2a:00.0",
        },
    ]


def test_nvswitch_dev_nodes() -> None:
    text = "/dev/nvidia-nvswitch0\n/dev/nvidia-nvswitch1\n/dev/nvidia-nvswitchctl\n"
    assert p.parse_nvswitch_dev(text) == ["/dev/nvidia-nvswitch0", "/dev/nvidia-nvswitch1"]
    assert p.parse_nvswitch_dev("/dev/nvidia-nvswitchctl\n") == []


def test_has_nvswitch() -> None:
    switch = {"address": "0000:05:00.0", "vendor": "10de", "device": "22a3", "class": "068000"}
    gpu = {"address": "0000:18:00.0", "vendor": "10de", "device": "2330", "class": "030200"}
    assert p.has_nvswitch([gpu, switch], []) is True
    assert p.has_nvswitch([gpu], ["/dev/nvidia-nvswitch0"]) is True
    assert p.has_nvswitch([gpu], []) is False


# --------------------------------------------------------------------------- docker


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("Docker version 20.10.24+dfsg1, build 297e128", "20.10.24+dfsg1"),
        ("Docker version 27.3.1, build ce12230\n", "27.3.1"),
        ("Docker version 24.0.7, build 24.0.7-0ubuntu2~22.04.1", "24.0.7"),
        ("podman version 4.3.1", "4.3.1"),
        ("", None),
    ],
)
def test_docker_version_line(text: str, version: str | None) -> None:
    assert p.parse_docker_version_line(text) == version


def test_docker_server_version() -> None:
    assert p.parse_docker_server_version("20.10.24+dfsg1\n") == "20.10.24+dfsg1"
    assert p.parse_docker_server_version("<no value>") is None
    assert p.parse_docker_server_version("\nCannot connect to the Docker daemon") is None


def test_docker_runtimes_real_docker_20_10() -> None:
    text = '{"io.containerd.runc.v2":{"path":"runc"},"io.containerd.runtime.v1.linux":{"path":"runc"},"runc":{"path":"runc"}}'
    assert p.parse_docker_runtimes(text) == ["io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"]


def test_docker_runtimes_with_nvidia_and_warning_line() -> None:
    text = 'WARNING: something\n{"runc":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"}}\n'
    assert p.parse_docker_runtimes(text) == ["nvidia", "runc"]


def test_docker_runtimes_unreachable() -> None:
    assert p.parse_docker_runtimes("null\nCannot connect to the Docker daemon at unix:///var/run/docker.sock.") is None


def test_daemon_json_valid_empty_and_invalid() -> None:
    assert p.parse_daemon_json('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}') == {
        "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}
    }
    assert p.parse_daemon_json("\n") == {}
    assert p.parse_daemon_json('\ufeff{"log-driver": "json-file"}') == {"log-driver": "json-file"}
    assert p.parse_daemon_json('{"a": 1 "b": 2}') == {"_invalid": "Expecting ',' delimiter: line 1 column 9 (char 8)"}
    # Python 3.13 words the trailing-comma error differently; only its presence is asserted.
    assert set(p.parse_daemon_json('{"a": 1,}')) == {"_invalid"}
    assert p.parse_daemon_json("[1]") == {"_invalid": "top-level value is a list, not an object"}


def test_runtimes_from_daemon_json() -> None:
    assert p.runtimes_from_daemon_json({"runtimes": {"nvidia": {}, "crun": {}}}) == ["crun", "nvidia", "runc"]
    assert p.runtimes_from_daemon_json({"runtimes": "bogus"}) == ["runc"]
    assert p.runtimes_from_daemon_json(None) == ["runc"]


def test_systemctl_is_active_and_pids() -> None:
    assert p.parse_systemctl_is_active("active\n") is True
    assert p.parse_systemctl_is_active("inactive\n") is False
    assert p.parse_systemctl_is_active("activating\n") is False
    assert p.parse_pids("4187\n12\n") == [4187, 12]
    assert p.parse_pids("") == []


DOCKER_ABSENT = dict(
    client_version=None,
    dockerd_version=None,
    server_version=None,
    runtimes_json=None,
    systemd=True,
    is_active=None,
    dockerd_pids="",
    daemon_json=None,
)


def test_docker_absent() -> None:
    assert p.parse_docker(**DOCKER_ABSENT) is None


def test_docker_reachable_under_systemd() -> None:
    args = DOCKER_ABSENT | dict(
        client_version="Docker version 27.3.1, build ce12230",
        dockerd_version="Docker version 27.3.1, build 41ca978",
        server_version="27.3.1",
        runtimes_json='{"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}',
        is_active="active",
        daemon_json='{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}',
    )
    assert p.parse_docker(**args) == {
        "version": "27.3.1",
        "running": True,
        "runtimes": ["nvidia", "runc"],
        "daemon_json": {"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}},
    }


def test_docker_unreachable_falls_back_to_dockerd_version_and_daemon_json() -> None:
    args = DOCKER_ABSENT | dict(
        client_version="Docker version 28.2.2, build e6534b4",
        dockerd_version="Docker version 20.10.24+dfsg1, build 297e128",
        is_active="inactive",
        daemon_json='{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}',
    )
    assert p.parse_docker(**args) == {
        "version": "20.10.24+dfsg1",
        "running": False,
        "runtimes": ["nvidia", "runc"],
        "daemon_json": {"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}},
    }


def test_docker_client_only_without_systemd_uses_process_list() -> None:
    args = DOCKER_ABSENT | dict(client_version="Docker version 27.3.1, build ce12230", systemd=False, dockerd_pids="812\n")
    assert p.parse_docker(**args) == {"version": "27.3.1", "running": True, "runtimes": ["runc"], "daemon_json": None}


def test_docker_invalid_and_unreadable_daemon_json() -> None:
    args = DOCKER_ABSENT | dict(dockerd_version="Docker version 24.0.7, build 311b9ff", is_active="failed", daemon_json="{")
    assert p.parse_docker(**args) == {
        "version": "24.0.7",
        "running": False,
        "runtimes": ["runc"],
        "daemon_json": {"_invalid": "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"},
    }
    args = DOCKER_ABSENT | dict(
        dockerd_version="Docker version 24.0.7, build 311b9ff",
        daemon_json_error="cat: /etc/docker/daemon.json: Permission denied",
    )
    result = p.parse_docker(**args)
    assert result is not None
    assert result["daemon_json"] == {"_unreadable": "cat: /etc/docker/daemon.json: Permission denied"}


def test_docker_installed_but_version_failing_is_not_absent() -> None:
    args = DOCKER_ABSENT | dict(client_version="")
    assert p.parse_docker(**args) == {"version": None, "running": False, "runtimes": ["runc"], "daemon_json": None}
