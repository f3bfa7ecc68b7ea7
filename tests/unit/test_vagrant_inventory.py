"""`-i vagrant`: `vagrant ssh-config` output -> inventories/vagrant.yml (provision.config.vagrant_inventory).

The parser is pure; the CLI path runs a stand-in `vagrant` program (a shell script on PATH that prints
captured `vagrant ssh-config` output), so no Vagrant machine is needed here. tests/e2e/test_vagrant.py
runs the real thing."""

from __future__ import annotations

import os
import stat

import pytest
import yaml
from typer.testing import CliRunner

from provision.cli.app import app
from provision.config import vagrant_inventory as vi
from provision.errors import InputError

# Captured from `vagrant ssh-config` (Vagrant 2.3.4, docker provider, this project's Vagrantfile),
# with vg2's key path edited to show quoting and a second IdentityFile.
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


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with a Vagrantfile and a stand-in `vagrant` on PATH that prints $FAKE_SSH_CONFIG."""
    (tmp_path / "Vagrantfile").write_text("# test\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vagrant"
    fake.write_text('#!/bin/sh\n[ "$1" = ssh-config ] || exit 9\nprintf "%s" "$FAKE_SSH_CONFIG"\n'
                    'exit "${FAKE_EXIT:-0}"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_CONFIG", SSH_CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dash_i_vagrant_reads_the_running_machines(project):
    result = CliRunner().invoke(app, ["hosts", "-i", "vagrant", "--json"])
    assert result.exit_code == 0, result.output
    assert "vg1" in result.output and "2222" in result.output
    written = project / "inventories" / "vagrant.yml"
    assert written.read_text().startswith(vi.HEADER)
    assert sorted(yaml.safe_load(written.read_text())["all"]["children"]["vagrant"]["hosts"]) == ["vg1", "vg2"]


def test_it_is_rewritten_on_every_use(project, monkeypatch):
    assert CliRunner().invoke(app, ["hosts", "-i", "vagrant"]).exit_code == 0
    monkeypatch.setenv("FAKE_SSH_CONFIG", SSH_CONFIG.replace("Port 2222", "Port 2201"))
    result = CliRunner().invoke(app, ["hosts", "-i", "vagrant", "--json"])
    assert result.exit_code == 0 and "2201" in result.output and "2222" not in result.output


def test_group_vars_next_to_it_apply(project):
    (project / "inventories" / "group_vars" / "vagrant").mkdir(parents=True)
    (project / "inventories" / "group_vars" / "vagrant" / "project.yml").write_text("provision_stack_file: s.yml\n")
    result = CliRunner().invoke(app, ["hosts", "-i", "vagrant", "--list"])
    assert result.exit_code == 0, result.output
    assert '"provision_stack_file": "s.yml"' in result.output


def test_a_hand_written_inventory_wins(project):
    (project / "inventories").mkdir()
    (project / "inventories" / "vagrant.yml").write_text("all:\n  hosts:\n    mine: {ansible_port: 2999}\n")
    result = CliRunner().invoke(app, ["hosts", "-i", "vagrant", "--json"])
    assert result.exit_code == 0 and "mine" in result.output and "vg1" not in result.output
    assert "mine" in (project / "inventories" / "vagrant.yml").read_text()  # never overwritten


def test_no_running_machine_is_bad_input(project, monkeypatch):
    monkeypatch.setenv("FAKE_SSH_CONFIG", "")
    monkeypatch.setenv("FAKE_EXIT", "1")
    result = CliRunner().invoke(app, ["hosts", "-i", "vagrant"])
    error = result.exception  # main() turns it into one line and exit 4
    assert isinstance(error, InputError) and error.exit_code == 4
    assert "no running Vagrant machine here (`vagrant up` first)" in str(error)
    assert "Vagrantfile" in str(error)


def test_without_a_vagrantfile_vagrant_is_just_a_name(project):
    (project / "Vagrantfile").unlink()
    result = CliRunner().invoke(app, ["hosts", "-i", "vagrant"])
    error = result.exception
    assert isinstance(error, InputError) and error.exit_code == 4 and "inventory not found" in str(error)
    assert not (project / "inventories" / "vagrant.yml").exists()
