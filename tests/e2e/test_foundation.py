"""Issue 2 end to end: facts, fan-out with an unreachable host, host keys, become, ad-hoc run, bad input."""

from __future__ import annotations

import os
import platform
import socket

import pytest

from tests.e2e.conftest import HOSTS, cli, cli_json

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_facts_from_every_host(fleet, tmp_path):
    kh = tmp_path / "known_hosts"
    proc, doc = cli_json("facts", "-i", str(fleet.inventory), "--known-hosts", str(kh))
    assert proc.returncode == 0, proc.stderr
    assert doc["command"] == "facts"
    assert doc["summary"] == {"ok": HOSTS, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
    assert "recap" in proc.stderr  # human output went to stderr
    for name in fleet.ports:
        host = doc["hosts"][name]
        assert host["status"] == "ok"
        facts = host["facts"]
        assert facts["os"] == {"id": "debian", "version_id": "12", "codename": "bookworm",
                               "pretty_name": "Debian GNU/Linux 12 (bookworm)"}
        assert facts["arch"] == "amd64"
        assert facts["kernel"] == platform.release()  # a container shares this machine's kernel
        assert facts["cpus"] == os.cpu_count()
        assert facts["memory_mib"] > 512
        assert facts["systemd"] is True
        assert facts["cloud_init"] is None and facts["reboot_required"] is False
        assert facts["gpus"] == [] and facts["nvswitch"] is False and facts["nvidia"] is None
        assert facts["docker"] is None  # a fresh host
        # the host key was recorded on first contact, and the report says so
        assert host["steps"][0]["name"] == "host key"
        assert f"[127.0.0.1]:{fleet.ports[name]}" in host["steps"][0]["message"]
        # the same truth seen from outside our SSH path
        assert fleet.testinfra(name).system_info.distribution == "debian"
        assert fleet.testinfra(name).service("ssh").is_running
    assert len(kh.read_text().splitlines()) == HOSTS
    # every host is a fresh machine of its own: machine-id and host keys made at its first boot
    machine_ids = {fleet.testinfra(n).file("/etc/machine-id").content_string.strip() for n in fleet.ports}
    assert len(machine_ids) == HOSTS and "" not in machine_ids
    assert len({line.split()[2] for line in kh.read_text().splitlines()}) == HOSTS
    # second run: keys known, nothing recorded, one step per host
    proc, doc = cli_json("facts", "-i", str(fleet.inventory), "--known-hosts", str(kh))
    assert proc.returncode == 0
    assert all([s["name"] for s in h["steps"]] == ["gather facts"] for h in doc["hosts"].values())


def test_unreachable_host_reported_while_others_succeed(fleet, tmp_path):
    inv = fleet.write_inventory(tmp_path / "inv.yml", {"all": {
        "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(fleet.key), "ansible_host": "127.0.0.1",
                 "ansible_timeout": 3},
        "hosts": {**{n: {"ansible_port": p} for n, p in fleet.ports.items()}, "ghost": {"ansible_port": _free_port()}},
    }})
    proc, doc = cli_json("facts", "-i", str(inv), "--known-hosts", str(tmp_path / "kh"))
    assert proc.returncode == 3, proc.stderr
    assert doc["hosts"]["ghost"]["status"] == "unreachable"
    assert "connection refused" in doc["hosts"]["ghost"]["message"]
    assert doc["summary"]["unreachable"] == 1 and doc["summary"]["ok"] == HOSTS
    assert "unreachable" in proc.stderr and "ghost" in proc.stderr


def test_changed_host_key_is_refused_until_accepted(fleet, tmp_path):
    kh = tmp_path / "kh"
    args = ("facts", "-i", str(fleet.inventory), "-l", "sbx1", "--known-hosts", str(kh))
    assert cli_json(*args)[0].returncode == 0
    recorded = kh.read_text()
    sbx1 = fleet.testinfra("sbx1")
    sbx1.run_expect([0], "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh")
    proc, doc = cli_json(*args)
    assert proc.returncode == 3
    message = doc["hosts"]["sbx1"]["message"]
    assert "has CHANGED" in message and "--accept-new-host-keys" in message
    assert kh.read_text() == recorded  # nothing was re-recorded silently
    proc, doc = cli_json(*args, "--accept-new-host-keys")
    assert proc.returncode == 0, proc.stderr
    assert doc["hosts"]["sbx1"]["steps"][0]["message"].startswith("re-recorded changed host key")
    assert kh.read_text() != recorded
    assert cli_json(*args)[0].returncode == 0


def test_become_with_non_root_sudo_user(fleet, tmp_path):
    inv = fleet.write_inventory(tmp_path / "inv.yml", {"all": {
        "vars": {"ansible_user": "sandbox", "ansible_become": True,
                 "ansible_ssh_private_key_file": str(fleet.key), "ansible_host": "127.0.0.1"},
        "hosts": {n: {"ansible_port": p} for n, p in fleet.ports.items()},
    }})
    kh = str(tmp_path / "kh")
    proc, doc = cli_json("run", "id -un; touch /root/became", "-i", str(inv), "--known-hosts", kh,
                         env={"PROVISION_BECOME_PASSWORD": fleet.become_password})
    assert proc.returncode == 0, proc.stderr
    assert {h["stdout"] for h in doc["hosts"].values()} == {"root\n"}
    assert fleet.become_password not in proc.stdout + proc.stderr
    for name in fleet.ports:
        assert fleet.testinfra(name).file("/root/became").exists
    # without the password sudo refuses, and the message says how to give it
    proc, doc = cli_json("run", "id -un", "-i", str(inv), "--known-hosts", kh)
    assert proc.returncode == 2
    assert "PROVISION_BECOME_PASSWORD" in doc["hosts"]["sbx1"]["stderr"]
    # as the user itself, without become
    proc, doc = cli_json("run", "id -un", "-i", str(inv), "--known-hosts", kh, "-l", "sbx1",
                         env={"PROVISION_BECOME_PASSWORD": fleet.become_password})
    assert doc["hosts"]["sbx1"]["stdout"] == "root\n"  # ansible_become: true applies to run as in Ansible


def test_run_shows_output_and_exit_code_per_host(fleet, tmp_path):
    kh = str(tmp_path / "kh")
    proc = cli("run", "echo out-$(hostname); echo err >&2; [ $(hostname) != sbx2 ] || exit 3",
               "-i", str(fleet.inventory), "--known-hosts", kh)
    assert proc.returncode == 2  # sbx2 failed
    assert "sbx1 | rc=0 >>" in proc.stdout and "out-sbx1" in proc.stdout
    assert "sbx2 | rc=3 >>" in proc.stdout and "err" in proc.stdout
    proc, doc = cli_json("run", "hostname", "-i", str(fleet.inventory), "--known-hosts", kh, "-l", "sandbox:!sbx2")
    assert proc.returncode == 0
    assert sorted(doc["hosts"]) == ["sbx1", "sbx3"]
    assert doc["hosts"]["sbx3"] | {"steps": None} == {"status": "changed", "changed": 1, "steps": None,
                                                      "rc": 0, "stdout": "sbx3\n", "stderr": ""}


def test_check_mode_runs_nothing(fleet, tmp_path):
    proc, doc = cli_json("run", "touch /tmp/should-not-exist", "--check", "-i", str(fleet.inventory),
                         "--known-hosts", str(tmp_path / "kh"))
    assert proc.returncode == 0
    assert doc["summary"]["skipped"] == HOSTS
    assert not fleet.testinfra("sbx1").file("/tmp/should-not-exist").exists


def test_bad_inventory_fails_before_any_connection(fleet, tmp_path):
    inv = tmp_path / "bad.ini"
    inv.write_text(f"[web]\nsbx1 ansible_host=127.0.0.1 ansible_port={fleet.ports['sbx1']}\nweb[01:x]\n")
    kh = tmp_path / "kh"
    proc = cli("facts", "-i", str(inv), "--known-hosts", str(kh))
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{inv}:3:" in lines[0], proc.stderr
    assert not kh.exists()  # no connection was attempted
