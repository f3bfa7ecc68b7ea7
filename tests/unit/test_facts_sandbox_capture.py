"""The facts script's raw output captured over SSH from a real sandbox host (Debian 12, systemd, sshd)."""

from pathlib import Path

from provision.facts.model import parse_facts

CAPTURE = Path(__file__).parent.parent / "fixtures" / "facts" / "debian12-sandbox-host-real.txt"


def test_parse_real_sandbox_host_capture():
    facts = parse_facts(CAPTURE.read_text())
    assert facts == {
        "os": {"id": "debian", "version_id": "12", "codename": "bookworm", "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
        "arch": "amd64", "kernel": "6.18.44-fc-v769", "cpus": 2, "memory_mib": 24105, "systemd": True,
        "cloud_init": None, "reboot_required": False, "secure_boot": None, "gpus": [], "nvswitch": False,
        "nvidia": None, "nvidia_error": None, "docker": None,
    }


def test_parse_real_sandbox_host_capture_of_the_issue_12_script():
    """Sections whose answer was not needed are skipped (rc -1): docker/dockerd --version once the daemon answered,
    dockerd's processes under systemd, uname -m after dpkg, mokutil without EFI, lspci without an NVIDIA device."""
    from provision.facts.script import RC_SKIPPED, split_sections

    text = (CAPTURE.parent / "debian12-sandbox-host-docker-real-v2.txt").read_text()
    sections = split_sections(text)
    assert {n for n, s in sections.items() if s.rc == RC_SKIPPED} == {
        "uname_m", "mokutil", "lspci_nvidia", "docker_client_version", "dockerd_version", "dockerd_processes"}
    facts = parse_facts(text)
    assert facts["docker"]["version"] == "20.10.24+dfsg1" and facts["docker"]["running"] is True
    assert facts["docker"]["runtimes"] == ["io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"]
    assert (facts["arch"], facts["memory_mib"], facts["secure_boot"], facts["gpus"]) == ("amd64", 24105, None, [])
