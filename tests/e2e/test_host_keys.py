"""Issue 9, host keys: the operator's ~/.ssh/config cannot bypass trust on first use, first use has no
races, a changed jump-host key is named as the jump host's, and hostile host values are bad input.

A 2-host fleet of its own: these tests regenerate host keys, which would disturb other modules."""

from __future__ import annotations

import base64
import os
import socket
import threading
import uuid

import paramiko
import pytest
import yaml

from provision.executor.known_hosts import fingerprint, key_name
from tests.e2e.conftest import cli, cli_json, start_fleet

pytestmark = pytest.mark.e2e

REGENERATE = "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh"


@pytest.fixture(scope="module")
def kfleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "hostkeys", 2)
    yield fleet
    down()


def _inventory(fleet, path, hosts: dict, **extra) -> str:
    return str(fleet.write_inventory(path, {"all": {
        "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(fleet.key), "ansible_timeout": 5,
                 **extra},
        "hosts": hosts}}))


def _direct(fleet, name: str) -> dict:
    return {"ansible_host": "127.0.0.1", "ansible_port": fleet.ports[name]}


def _via(fleet, jump: str, host: str = "127.0.0.1", port: int = 22) -> dict:
    """`host:port` as seen from the jump host `jump` (ProxyJump in ansible_ssh_common_args)."""
    return {"ansible_host": host, "ansible_port": port,
            "ansible_ssh_common_args": f"-o ProxyJump=root@127.0.0.1:{fleet.ports[jump]}"}


def _recorded(kh) -> dict[str, str]:
    keys = paramiko.HostKeys(str(kh))
    return {name: fingerprint(key) for name in keys.keys() for key in keys.lookup(name).values()}


def _host_fingerprints(fleet, name: str) -> set[str]:
    """The fingerprints of every host key `name` has now, read inside the container (not over our SSH)."""
    out = fleet.testinfra(name).check_output("cat /etc/ssh/ssh_host_*_key.pub")
    return {fingerprint(paramiko.PKey.from_type_string(kind, base64.b64decode(data)))
            for kind, data, *_ in (line.split() for line in out.splitlines())}


def test_a_hostile_ssh_config_is_not_run_and_known_hosts_still_decides(kfleet, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    mark = f"/tmp/pwned-{uuid.uuid4().hex}"
    (home / ".ssh" / "config").write_text(
        f'Match exec "touch {mark}-match"\n'
        "  StrictHostKeyChecking no\n"
        "Host *\n"
        f"  ProxyCommand touch {mark}-proxy; nc %h %p\n"
        f"  LocalCommand touch {mark}-local\n"
        "  PermitLocalCommand yes\n"
        "  HostName 192.0.2.1\n"
        "  User nobody\n"
        "  ForwardAgent yes\n"
        "  UserKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking no\n")
    (home / ".fabric.yaml").write_text(f"gateway: touch {mark}-fabric\n")
    kh = tmp_path / "kh"
    kh.write_text(f"{key_name('127.0.0.1', kfleet.ports['sbx1'])} {paramiko.ECDSAKey.generate().get_name()} "
                  f"{paramiko.ECDSAKey.generate().get_base64()}\n")  # not sbx1's key
    inv = _inventory(kfleet, tmp_path / "inv.yml", {n: _direct(kfleet, n) for n in ("sbx1", "sbx2")})
    proc, doc = cli_json("run", "id -un; hostname", "-i", inv, "--known-hosts", str(kh), env={"HOME": str(home)})
    assert proc.returncode == 3, proc.stderr  # sbx1 unreachable: its recorded key differs
    assert "has CHANGED" in doc["hosts"]["sbx1"]["message"]
    assert doc["hosts"]["sbx2"]["status"] == "changed" and doc["hosts"]["sbx2"]["stdout"] == "root\nsbx2\n"
    assert doc["hosts"]["sbx2"]["steps"][0]["message"].startswith(
        f"recorded new host key {key_name('127.0.0.1', kfleet.ports['sbx2'])} ")
    assert _recorded(kh)[key_name("127.0.0.1", kfleet.ports["sbx2"])] in _host_fingerprints(kfleet, "sbx2")
    assert [p for p in os.listdir("/tmp") if p.startswith(os.path.basename(mark))] == []  # nothing ran


def test_aliases_of_one_address_share_one_recorded_key_and_are_refused_together_when_it_changes(kfleet, tmp_path):
    kh = tmp_path / "kh"
    inv = _inventory(kfleet, tmp_path / "inv.yml", {alias: _direct(kfleet, "sbx1") for alias in ("a1", "a2", "a3")})
    proc, doc = cli_json("run", "hostname", "-i", inv, "--known-hosts", str(kh), "-f", "3")
    assert proc.returncode == 0, proc.stderr
    notes = [s["message"] for h in doc["hosts"].values() for s in h["steps"] if s["name"] == "host key"]
    assert len(notes) == 1 and notes[0].startswith("recorded new host key")  # recorded once, not thrice
    recorded = kh.read_text()
    kfleet.testinfra("sbx1").run_expect([0], REGENERATE)
    proc, doc = cli_json("run", "hostname", "-i", inv, "--known-hosts", str(kh), "-f", "3")
    assert proc.returncode == 3
    for alias in ("a1", "a2", "a3"):
        message = doc["hosts"][alias]["message"]
        assert message.startswith(f"host key for {key_name('127.0.0.1', kfleet.ports['sbx1'])} has CHANGED"), message
    assert kh.read_text() == recorded


def test_two_hosts_at_one_address_behind_two_bastions_record_one_key_and_refuse_the_other(kfleet, tmp_path):
    """`127.0.0.1:22` behind sbx1 and behind sbx2 is one known_hosts name with two keys: whichever first
    connection records first wins, the other is refused as CHANGED, never accepted unverified."""
    kh = tmp_path / "kh"
    inv = _inventory(kfleet, tmp_path / "inv.yml", {"behind1": _via(kfleet, "sbx1"), "behind2": _via(kfleet, "sbx2")})
    for attempt in range(2):
        proc, doc = cli_json("run", "hostname", "-i", inv, "--known-hosts", str(kh), "-f", "2")
        assert proc.returncode == 3, proc.stderr
        statuses = {alias: doc["hosts"][alias]["status"] for alias in ("behind1", "behind2")}
        assert sorted(statuses.values()) == ["changed", "unreachable"], doc
        winner = next(a for a, s in statuses.items() if s == "changed")
        loser = next(a for a, s in statuses.items() if s == "unreachable")
        if attempt == 0:
            first_winner = winner
        assert winner == first_winner  # the recorded key decides from then on
        assert doc["hosts"][winner]["stdout"] == f"sbx{winner[-1]}\n"
        assert doc["hosts"][loser]["message"].startswith("host key for 127.0.0.1 has CHANGED")
        recorded = _recorded(kh)
        assert recorded["127.0.0.1"] in _host_fingerprints(kfleet, f"sbx{winner[-1]}")
        assert recorded["127.0.0.1"] not in _host_fingerprints(kfleet, f"sbx{loser[-1]}")
        assert sorted(recorded) == sorted(["127.0.0.1", *(key_name("127.0.0.1", p) for p in kfleet.ports.values())])


def test_a_changed_jump_host_key_is_reported_and_re_recorded_under_the_jump_hosts_name(kfleet, tmp_path):
    kh = tmp_path / "kh"
    jump_name = key_name("127.0.0.1", kfleet.ports["sbx1"])
    sbx2 = kfleet.container("sbx2")  # the fleet network's name for sbx2, as seen from sbx1
    inv = _inventory(kfleet, tmp_path / "inv.yml", {"behind": _via(kfleet, "sbx1", host=sbx2)})
    args = ("run", "hostname", "-i", inv, "--known-hosts", str(kh))
    proc, doc = cli_json(*args)
    assert proc.returncode == 0, proc.stderr
    assert doc["hosts"]["behind"]["stdout"] == "sbx2\n"
    before = _recorded(kh)
    assert sorted(before) == sorted([jump_name, sbx2])
    kfleet.testinfra("sbx1").run_expect([0], REGENERATE)
    proc, doc = cli_json(*args)
    assert proc.returncode == 3
    message = doc["hosts"]["behind"]["message"]
    assert message.startswith(f"jump host {jump_name} (on the way to {sbx2}:22): host key for {jump_name} has CHANGED"), message
    assert _recorded(kh) == before
    proc, doc = cli_json(*args, "--accept-new-host-keys")
    assert proc.returncode == 0, proc.stderr
    notes = [s["message"] for s in doc["hosts"]["behind"]["steps"] if s["name"] == "host key"]
    assert len(notes) == 1 and notes[0].startswith(f"re-recorded changed host key {jump_name} "), notes
    after = _recorded(kh)
    assert after[sbx2] == before[sbx2] and after[jump_name] != before[jump_name]
    assert after[jump_name] in _host_fingerprints(kfleet, "sbx1") and sorted(after) == sorted(before)
    assert cli_json(*args)[0].returncode == 0


def test_a_newly_recorded_key_is_shown_at_default_verbosity(kfleet, tmp_path):
    kh = tmp_path / "kh"
    inv = _inventory(kfleet, tmp_path / "inv.yml", {"sbx2": _direct(kfleet, "sbx2")})
    proc = cli("run", "true", "-i", inv, "--known-hosts", str(kh))
    assert proc.returncode == 0, proc.stderr
    assert f"recorded new host key {key_name('127.0.0.1', kfleet.ports['sbx2'])}" in proc.stdout + proc.stderr


class _Counter:
    """A local listener that counts TCP connections (nothing may connect to it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    def close(self) -> int:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        return self.count


@pytest.mark.parametrize("hostvars, shown", [
    ({"ansible_host": "127.0.0.1;touch /tmp/pwned-hk-host"}, "ansible_host '127.0.0.1;touch /tmp/pwned-hk-host': ';'"),
    ({"ansible_host": "$(touch /tmp/pwned-hk-sub)"}, "ansible_host '$(touch /tmp/pwned-hk-sub)': '$'"),
    ({"ansible_host": "127.0.0.1\nProxyCommand touch /tmp/pwned-hk-nl"}, "a control character"),
    ({"ansible_host": "127.0.0.1", "ansible_user": "root `id`"}, "ansible_user 'root `id`': whitespace"),
    ({"ansible_host": "127.0.0.1", "ansible_ssh_common_args": "-o ProxyJump='b1|nc x'"}, "ProxyJump host 'b1|nc x': '|'"),
    ({"ansible_host": "-oProxyCommand=touch /tmp/pwned-hk-opt"}, "may not start with '-'"),
])
def test_host_values_with_shell_metacharacters_exit_4_and_contact_nothing(tmp_path, hostvars, shown):
    counter = _Counter()
    try:
        inv = tmp_path / "inv.yml"
        inv.write_text(yaml.safe_dump({"all": {"vars": {"ansible_port": counter.port, "ansible_timeout": 2},
                                               "hosts": {"good": {"ansible_host": "127.0.0.1"}, "bad": hostvars}}}))
        kh = tmp_path / "kh"
        proc = cli("run", "true", "-i", str(inv), "--known-hosts", str(kh), timeout=60)
        assert not any(p.startswith("pwned-hk-") for p in os.listdir("/tmp"))
    finally:
        connections = counter.close()
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "host 'bad': " in lines[0] and shown in lines[0], lines[0]
    assert connections == 0 and not kh.exists()
