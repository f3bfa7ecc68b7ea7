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
