"""Tests for the facts script (provision.facts.script) and parse_facts (provision.facts.model).

The script itself is run here with ``sh`` (dash on Debian), with stub tools put first on PATH to
play hosts this machine is not (a GPU host, a broken driver, a hung nvidia-smi).
Fixtures: ``debian12-real-vm*.txt`` are real captures of FACTS_SCRIPT on a Debian 12 Firecracker
VM (no systemd, no GPU); ``gpu-*-documented.txt`` / ``*-synthetic.txt`` are composed by
tests/fixtures/facts/compose_documented.py from documented output formats.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from provision.facts.model import FACT_KEYS, parse_facts
from provision.facts.script import (
    FACTS_SCRIPT,
    RC_SKIPPED,
    SECTION_NAMES,
    Section,
    is_complete,
    split_sections,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "facts"
SH = shutil.which("sh") or "/bin/sh"


def fx(name: str) -> str:
    return (FIXTURES / name).read_text()


def run_script(*, path_prefix: Path | None = None, shell: str = SH, user: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run FACTS_SCRIPT fed on stdin (as over SSH: ``sh -s``)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    argv = [shell, "-s"]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, input=FACTS_SCRIPT, capture_output=True, text=True, env=env, timeout=120, check=False)


def stub(bin_dir: Path, name: str, body: str) -> None:
    """Write an executable sh stub BIN_DIR/NAME."""
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


# --------------------------------------------------------------------------- split_sections


def test_split_sections_basic() -> None:
    out = (
        "@@provision-facts-begin 1\n"
        "@@provision-fact a\nline 1\nline 2\n@@provision-rc a 0\n"
        "@@provision-fact b\n@@provision-rc b 127\n"
        "@@provision-facts-end\n"
    )
    assert split_sections(out) == {"a": Section("a", "line 1\nline 2", 0), "b": Section("b", "", 127)}


def test_split_sections_ignores_banner_and_handles_crlf() -> None:
    out = "Welcome!\r\n@@provision-fact a\r\nx\r\n@@provision-rc a 3\r\n"
    assert split_sections(out) == {"a": Section("a", "x", 3)}


def test_split_sections_keeps_blank_lines_inside_text() -> None:
    out = "@@provision-fact a\n\nerror\n@@provision-rc a 1\n"
    assert split_sections(out)["a"].text == "\nerror"


def test_split_sections_truncated_section_has_no_rc() -> None:
    out = "@@provision-fact a\nx\n@@provision-rc a 0\n@@provision-fact b\npartial\n\n"
    sections = split_sections(out)
    assert sections["b"] == Section("b", "partial", None)
    assert not is_complete(out)


def test_split_sections_rc_marker_of_another_name_is_text() -> None:
    out = "@@provision-fact a\n@@provision-rc b 0\n@@provision-rc a x\n@@provision-rc a 2\n"
    assert split_sections(out) == {"a": Section("a", "@@provision-rc b 0\n@@provision-rc a x", 2)}


def test_section_flags() -> None:
    assert Section("a", "", 0).ok and not Section("a", "", 1).ok
    assert Section("a", "", 127).missing
    assert Section("a", "", 124).timed_out and Section("a", "", 137).timed_out


# --------------------------------------------------------------------------- the script's text


def test_script_names_every_section_in_order() -> None:
    positions = []
    for name in SECTION_NAMES:
        marker = f" {name} "
        assert marker in FACTS_SCRIPT, name
        positions.append(FACTS_SCRIPT.index(marker))
    assert positions == sorted(positions)


def test_script_is_read_only_and_guarded() -> None:
    for word in ("apt", "set -u", "set -e", "rm ", "mkdir", "tee ", "sudo"):
        assert word not in FACTS_SCRIPT, word
    # Every nvidia-smi call goes through _pf_run with a timeout.
    for line in FACTS_SCRIPT.splitlines():
        if "nvidia-smi" in line and not line.strip().startswith("#"):
            assert line.strip().startswith("_pf_run nvidia_smi") and " 20 nvidia-smi" in line, line
    assert FACTS_SCRIPT.rstrip().endswith("exit 0")


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_script_syntax(shell: str) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} not installed")
    result = subprocess.run([exe, "-n"], input=FACTS_SCRIPT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- the script, run here


def assert_well_formed(stdout: str) -> dict[str, Section]:
    assert is_complete(stdout)
    sections = split_sections(stdout)
    assert list(sections) == list(SECTION_NAMES)
    assert all(s.rc is not None for s in sections.values())
    return sections


def test_script_runs_here_and_never_fails() -> None:
    started = time.monotonic()
    result = run_script()
    assert time.monotonic() - started < 30
    assert result.returncode == 0
    assert result.stderr == ""
    sections = assert_well_formed(result.stdout)
    for name in ("os_release", "uname_r", "nproc", "meminfo", "pci_devices", "nvswitch_dev"):
        assert sections[name].rc == 0, name
    # asked only when needed: uname -m without dpkg's answer, dockerd's processes without systemd
    assert sections["uname_m"].rc == (RC_SKIPPED if sections["arch_dpkg"].ok else 0)
    systemd = sections["systemd"].text == "yes"
    docker = bool(shutil.which("docker") or shutil.which("dockerd"))
    assert sections["dockerd_processes"].rc == (RC_SKIPPED if systemd or not docker else 0)
    assert sections["docker_active"].rc == RC_SKIPPED if not docker else sections["docker_active"].rc != RC_SKIPPED
    assert sections["uname_r"].text == os.uname().release
    for section in sections.values():
        assert (section.rc == RC_SKIPPED) == section.text.startswith("skipped: "), section
    assert sections["meminfo"].text.startswith("MemTotal:") and len(sections["meminfo"].text.splitlines()) == 1
    for name in ("systemd", "reboot_required", "efi"):
        assert sections[name].text in ("yes", "no"), name


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_script_under_each_shell(shell: str) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} not installed")
    result = run_script(shell=exe)
    assert result.returncode == 0
    assert_well_formed(result.stdout)


def test_script_facts_match_this_machine() -> None:
    facts = parse_facts(run_script().stdout)
    assert tuple(facts) == FACT_KEYS
    assert facts["kernel"] == os.uname().release
    assert facts["cpus"] is not None and 1 <= facts["cpus"] <= len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    assert facts["memory_mib"] == total_kb // 1024
    assert facts["systemd"] is os.path.isdir("/run/systemd/system")
    assert facts["reboot_required"] is os.path.exists("/var/run/reboot-required")
    json.dumps(facts)  # JSON-able


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to drop to nobody")
def test_script_works_as_non_root() -> None:
    result = run_script(user=65534)
    assert result.returncode == 0
    assert_well_formed(result.stdout)
    assert tuple(parse_facts(result.stdout)) == FACT_KEYS


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_commands_cannot_eat_the_script_from_stdin(tmp_path: Path, shell: str) -> None:
    # A tool that reads stdin must get /dev/null, not the rest of the script fed by `sh -s`
    # (bash reads a piped script line by line, so there a stray reader would swallow the rest).
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} not installed")
    stub(tmp_path, "cloud-init", "cat >/dev/null\necho 'status: done'\n")
    result = run_script(path_prefix=tmp_path, shell=exe)
    sections = assert_well_formed(result.stdout)
    assert sections["cloud_init"] == Section("cloud_init", "status: done", 0)


def test_sh_c_with_an_open_stdin_does_not_hang(tmp_path: Path) -> None:
    # The SSH executor runs `sh -c SCRIPT` with the channel as stdin, never closed by the far end.
    stub(tmp_path, "cloud-init", "cat >/dev/null\necho 'status: done'\n")
    env = {"PATH": f"{tmp_path}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": "/tmp"}
    read_end, write_end = os.pipe()
    try:
        result = subprocess.run(
            [SH, "-c", FACTS_SCRIPT], stdin=read_end, capture_output=True, text=True, env=env, timeout=60, check=False
        )
    finally:
        os.close(read_end)
        os.close(write_end)
    assert result.returncode == 0
    assert assert_well_formed(result.stdout)["cloud_init"].text == "status: done"


def gpu_host_stubs(bin_dir: Path) -> None:
    """Stub nvidia-smi answering with the documented single-H100 outputs, and mokutil."""
    query = FIXTURES / "nvidia-smi-query-h100-pcie-1gpu-documented.csv"
    table = FIXTURES / "nvidia-smi-h100-pcie-1gpu-documented.txt"
    stub(
        bin_dir,
        "nvidia-smi",
        f'case "$1" in\n--query-gpu=*) cat "{query}" ;;\n*) cat "{table}" ;;\nesac\n',
    )
    stub(bin_dir, "mokutil", 'echo "SecureBoot enabled"\n')
    stub(bin_dir, "cloud-init", 'echo "status: running"\n')


def test_script_with_stubbed_gpu_tools(tmp_path: Path) -> None:
    gpu_host_stubs(tmp_path)
    result = run_script(path_prefix=tmp_path)
    assert_well_formed(result.stdout)
    facts = parse_facts(result.stdout)
    assert facts["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 PCIe",
            "uuid": "GPU-9a3f6b2e-5c1d-4e8f-b7a2-0d4c6e8f1a23",
            "memory_mib": 81559,
            "pci_id": "10de:2331",
            "pci_bus_id": "0000:07:00.0",
        }
    ]
    assert facts["nvidia"] == {"driver": "535.129.03", "cuda": "12.2"}
    assert facts["nvidia_error"] is None
    # mokutil is asked on EFI machines only (elsewhere it can only say that EFI variables are not supported)
    assert facts["secure_boot"] is (True if Path("/sys/firmware/efi").is_dir() else None)
    assert facts["cloud_init"] == "running"


def test_script_with_failing_nvidia_smi(tmp_path: Path) -> None:
    stub(tmp_path, "nvidia-smi", 'echo "Failed to initialize NVML: Driver/library version mismatch"\necho "NVML library version: 550.90"\nexit 18\n')
    result = run_script(path_prefix=tmp_path)
    sections = assert_well_formed(result.stdout)
    assert sections["nvidia_smi_query"].rc == 18
    facts = parse_facts(result.stdout)
    assert facts["nvidia"] is None
    assert facts["nvidia_error"] == "Failed to initialize NVML: Driver/library version mismatch"


def test_script_skips_nvidia_smi_after_a_timeout(tmp_path: Path) -> None:
    # A `timeout` that reports every nvidia-smi call as timed out, and runs anything else.
    stub(tmp_path, "timeout", 'shift\n[ "$1" = nvidia-smi ] && exit 124\nexec "$@"\n')
    stub(tmp_path, "nvidia-smi", "echo should-not-run\n")
    result = run_script(path_prefix=tmp_path)
    sections = assert_well_formed(result.stdout)
    for name in ("nvidia_smi_query", "nvidia_smi"):
        assert sections[name] == Section(name, "", 124)
    assert parse_facts(result.stdout)["nvidia_error"] == "nvidia-smi timed out"


# --------------------------------------------------------------------------- real captures (Debian 12 VM)

REAL_COMMON: dict[str, Any] = {
    "os": {"id": "debian", "version_id": "12", "codename": "bookworm", "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
    "arch": "amd64",
    "kernel": "6.18.44-fc-v769",
    "cpus": 2,
    "memory_mib": 24105,
    "systemd": False,
    "cloud_init": None,
    "reboot_required": False,
    "secure_boot": None,
    "gpus": [],
    "nvswitch": False,
    "nvidia": None,
    "nvidia_error": None,
}


def test_real_capture_debian12_root_dockerd_running() -> None:
    text = fx("debian12-real-vm.txt")
    assert_well_formed(text)
    facts = parse_facts(text)
    assert list(facts) == list(FACT_KEYS)
    assert facts == REAL_COMMON | {
        "docker": {
            "version": "20.10.24+dfsg1",
            "running": True,
            "runtimes": ["io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"],
            "daemon_json": None,
        }
    }


def test_real_capture_debian12_non_root_daemon_socket_denied() -> None:
    text = fx("debian12-real-vm-nonroot.txt")
    sections = assert_well_formed(text)
    assert sections["docker_server_version"].rc == 1
    assert "permission denied" in sections["docker_server_version"].text
    assert parse_facts(text) == REAL_COMMON | {
        # Server unreachable: version from `dockerd --version`, runtimes from (absent) daemon.json.
        "docker": {"version": "20.10.24+dfsg1", "running": True, "runtimes": ["runc"], "daemon_json": None}
    }


def test_real_capture_debian12_dockerd_not_running() -> None:
    # Captured in a private PID+mount namespace (tmpfs over /run): no dockerd process, no socket.
    text = fx("debian12-real-vm-dockerd-not-running-ns.txt")
    sections = assert_well_formed(text)
    assert sections["docker_server_version"] == Section(
        "docker_server_version",
        "\nCannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        1,
    )
    assert sections["dockerd_processes"] == Section("dockerd_processes", "", 0)
    assert parse_facts(text) == REAL_COMMON | {
        "docker": {"version": "20.10.24+dfsg1", "running": False, "runtimes": ["runc"], "daemon_json": None}
    }


# --------------------------------------------------------------------------- composed documented outputs

H100_PCIE = {
    "index": 0,
    "name": "NVIDIA H100 PCIe",
    "uuid": "GPU-9a3f6b2e-5c1d-4e8f-b7a2-0d4c6e8f1a23",
    "memory_mib": 81559,
    "pci_id": "10de:2331",
    "pci_bus_id": "0000:07:00.0",
}
H100_PCIE_FROM_PCI = {
    "index": 0,
    "name": "NVIDIA Corporation GH100 [H100 PCIe]",
    "uuid": None,
    "memory_mib": None,
    "pci_id": "10de:2331",
    "pci_bus_id": "0000:07:00.0",
}
HGX_BUSES = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]
HGX_UUIDS = [
    "GPU-2f8b1c4e-7a3d-4b6e-9c1f-3e5a7b9d0c12",
    "GPU-4d0e3a6c-9b5f-4d8a-8e3b-5a7c9d1f2e34",
    "GPU-6f2a5c8e-1d7b-4f0c-a05d-7c9e1f3b4a56",
    "GPU-8b4c7e0a-3f9d-4b2e-b27f-9e1a3b5d6c78",
    "GPU-a06e9c2f-5b1f-4d4a-84a1-1b3c5d7f8e9a",
    "GPU-c28a1e4b-7d3b-4f6c-96c3-3d5e7f9b0a1b",
    "GPU-e4ac3a6d-9f5d-4b8e-a8e5-5f7a9b1d2c3d",
    "GPU-06ce5c8f-1b7f-4dab-bae7-7b9c1d3f4e5f",
]
UBUNTU_2204 = {"id": "ubuntu", "version_id": "22.04", "codename": "jammy", "pretty_name": "Ubuntu 22.04.4 LTS"}
UBUNTU_2404 = {"id": "ubuntu", "version_id": "24.04", "codename": "noble", "pretty_name": "Ubuntu 24.04.1 LTS"}
NVIDIA_DAEMON_JSON = {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
JAMMY_HOST = {"os": UBUNTU_2204, "arch": "amd64", "kernel": "5.15.0-91-generic", "cpus": 26, "memory_mib": 225651, "systemd": True}
NOBLE_HGX_HOST = {"os": UBUNTU_2404, "arch": "amd64", "kernel": "6.8.0-45-generic", "cpus": 224, "memory_mib": 2063879, "systemd": True}


def hgx_gpu(i: int, *, from_smi: bool) -> dict[str, Any]:
    return {
        "index": i,
        "name": "NVIDIA H100 80GB HBM3" if from_smi else "NVIDIA [10de:2330]",
        "uuid": HGX_UUIDS[i] if from_smi else None,
        "memory_mib": 81559 if from_smi else None,
        "pci_id": "10de:2330",
        "pci_bus_id": f"0000:{HGX_BUSES[i]}:00.0",
    }


def load_composer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_documented", FIXTURES / "compose_documented.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_composed_fixtures_are_up_to_date() -> None:
    rendered = load_composer().rendered()
    assert len(rendered) == 7
    for name, content in rendered.items():
        assert fx(name) == content, f"{name} is stale: run python tests/fixtures/facts/compose_documented.py"


def test_composed_fixtures_have_the_scripts_layout() -> None:
    for name in load_composer().rendered():
        assert_well_formed(fx(name))


def test_parse_facts_single_h100_pcie() -> None:
    assert parse_facts(fx("gpu-h100-pcie-1gpu-documented.txt")) == JAMMY_HOST | {
        "cloud_init": "done",
        "reboot_required": True,
        "secure_boot": False,  # from the EFI variable: mokutil is not installed
        "gpus": [H100_PCIE],
        "nvswitch": False,
        "nvidia": {"driver": "535.129.03", "cuda": "12.2"},
        "nvidia_error": None,
        "docker": {
            "version": "24.0.7",
            "running": True,
            "runtimes": ["io.containerd.runc.v2", "nvidia", "runc"],
            "daemon_json": NVIDIA_DAEMON_JSON,
        },
    }


def test_parse_facts_hgx_8_gpus_with_nvswitch() -> None:
    facts = parse_facts(fx("gpu-hgx8-documented.txt"))
    assert list(facts) == list(FACT_KEYS)
    assert facts == NOBLE_HGX_HOST | {
        "cloud_init": "done",
        "reboot_required": False,
        "secure_boot": True,
        "gpus": [hgx_gpu(i, from_smi=True) for i in range(8)],
        "nvswitch": True,
        "nvidia": {"driver": "550.54.15", "cuda": "12.4"},
        "nvidia_error": None,
        "docker": {
            "version": "27.3.1",
            "running": True,
            "runtimes": ["io.containerd.runc.v2", "nvidia", "runc"],
            "daemon_json": NVIDIA_DAEMON_JSON,
        },
    }


def test_parse_facts_mig_with_docker_stopped_and_login_banner() -> None:
    assert parse_facts(fx("gpu-mig-documented.txt")) == {
        "os": UBUNTU_2204,
        "arch": "amd64",
        "kernel": "5.15.0-119-generic",
        "cpus": 52,
        "memory_mib": 453074,
        "systemd": True,
        "cloud_init": "done",
        "reboot_required": False,
        "secure_boot": None,
        "gpus": [hgx_gpu(0, from_smi=True), hgx_gpu(1, from_smi=True)],
        "nvswitch": False,
        "nvidia": {"driver": "550.54.15", "cuda": "12.4"},
        "nvidia_error": None,
        # daemon unreachable: runtimes from daemon.json plus runc
        "docker": {"version": "27.3.1", "running": False, "runtimes": ["nvidia", "runc"], "daemon_json": NVIDIA_DAEMON_JSON},
    }


def test_parse_facts_driver_library_mismatch_falls_back_to_pci() -> None:
    assert parse_facts(fx("gpu-driver-mismatch-documented.txt")) == JAMMY_HOST | {
        "cloud_init": "running",
        "reboot_required": True,
        "secure_boot": None,
        "gpus": [H100_PCIE_FROM_PCI],
        "nvswitch": False,
        "nvidia": None,
        "nvidia_error": "Failed to initialize NVML: Driver/library version mismatch",
        "docker": None,
    }


def test_parse_facts_no_driver_hgx_without_lspci() -> None:
    assert parse_facts(fx("gpu-no-driver-documented.txt")) == NOBLE_HGX_HOST | {
        "cloud_init": "error",
        "reboot_required": False,
        "secure_boot": False,
        "gpus": [hgx_gpu(i, from_smi=False) for i in range(8)],
        "nvswitch": True,  # from the PCI bridges (class 0x0680), no /dev nodes without a driver
        "nvidia": None,
        "nvidia_error": (
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running."
        ),
        "docker": None,
    }


def test_parse_facts_no_devices_and_invalid_daemon_json() -> None:
    assert parse_facts(fx("gpu-no-devices-documented.txt")) == JAMMY_HOST | {
        "cloud_init": "done",
        "reboot_required": False,
        "secure_boot": None,  # mokutil: "EFI variables are not supported on this system"
        "gpus": [H100_PCIE_FROM_PCI],
        "nvswitch": False,
        "nvidia": None,
        "nvidia_error": "No devices were found",
        "docker": {
            "version": "24.0.7",
            "running": False,
            "runtimes": ["runc"],
            "daemon_json": {"_invalid": "Expecting ',' delimiter: line 5 column 13 (char 99)"},
        },
    }


def test_parse_facts_nvidia_smi_timeout() -> None:
    facts = parse_facts(fx("gpu-smi-timeout-synthetic.txt"))
    assert facts["gpus"] == [H100_PCIE_FROM_PCI]
    assert facts["nvidia"] is None
    assert facts["nvidia_error"] == "nvidia-smi timed out"


def test_parse_facts_empty_and_truncated_output() -> None:
    empty = parse_facts("")
    assert tuple(empty) == FACT_KEYS
    assert empty == {
        "os": {"id": None, "version_id": None, "codename": None, "pretty_name": None},
        "arch": None,
        "kernel": None,
        "cpus": None,
        "memory_mib": None,
        "systemd": False,
        "cloud_init": None,
        "reboot_required": False,
        "secure_boot": None,
        "gpus": [],
        "nvswitch": False,
        "nvidia": None,
        "nvidia_error": None,
        "docker": None,
    }
    full = fx("gpu-hgx8-documented.txt")
    cut = full[: full.index("@@provision-rc nvidia_smi_query")]
    facts = parse_facts(cut)
    assert facts["os"] == UBUNTU_2404
    assert facts["nvidia"] is None
    assert facts["nvidia_error"] == "nvidia-smi output was cut off"
    assert facts["gpus"] == []  # the PCI listing came after the cut
