"""scripts/vagrant-inventory.py: `vagrant ssh-config` output -> an inventory (pure parsing, no vagrant)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "vagrant-inventory.py"
spec = importlib.util.spec_from_file_location("vagrant_inventory", SCRIPT)
vi = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vi)

SSH_CONFIG = """Host vg1
  HostName 127.0.0.1
  User root
  Port 2200
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /work/main/.provision/vagrant/id_ed25519
  IdentitiesOnly yes
  LogLevel FATAL

Host vg2
  HostName 127.0.0.1
  User root
  Port 2222
  IdentityFile "/home/a b/.provision/vagrant/id_ed25519"
  IdentityFile /second/key
  IdentitiesOnly yes
"""


def test_parses_each_host():
    hosts = vi.parse_ssh_config(SSH_CONFIG)
    assert hosts == {
        "vg1": {"ansible_host": "127.0.0.1", "ansible_user": "root", "ansible_port": 2200,
                "ansible_ssh_private_key_file": "/work/main/.provision/vagrant/id_ed25519"},
        "vg2": {"ansible_host": "127.0.0.1", "ansible_user": "root", "ansible_port": 2222,
                "ansible_ssh_private_key_file": "/home/a b/.provision/vagrant/id_ed25519"},
    }


def test_libvirt_style_host_and_key_value_form():
    hosts = vi.parse_ssh_config("Host vg1\n  HostName 192.168.121.5\n  User vagrant\n  Port=22\n")
    assert hosts == {"vg1": {"ansible_host": "192.168.121.5", "ansible_user": "vagrant", "ansible_port": 22}}


def test_empty_output_is_no_hosts():
    assert vi.parse_ssh_config("") == {}


def test_host_without_port_is_an_error():
    with pytest.raises(ValueError, match="vg1"):
        vi.parse_ssh_config("Host vg1\n  HostName 127.0.0.1\n")


def test_written_inventory_loads_as_group_vagrant(tmp_path):
    out = tmp_path / "inv" / "vagrant.yml"
    vi.write_inventory(out, vi.parse_ssh_config(SSH_CONFIG))
    doc = yaml.safe_load(out.read_text())
    assert sorted(doc["all"]["children"]["vagrant"]["hosts"]) == ["vg1", "vg2"]
    assert out.read_text().startswith("# Written by scripts/vagrant-inventory.py")


def test_inventory_is_read_by_provision(tmp_path):
    from provision.cli.app import app
    from typer.testing import CliRunner

    out = tmp_path / "vagrant.yml"
    vi.write_inventory(out, vi.parse_ssh_config(SSH_CONFIG))
    result = CliRunner().invoke(app, ["hosts", "-i", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert "vg1" in result.output and "2222" in result.output
