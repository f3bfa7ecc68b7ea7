"""The SSH executor ignores the operator's ssh/Fabric config files and names the hop whose key changed.

(The e2e twins, with real sshd hosts, are in tests/e2e/test_host_keys.py.)"""

from types import SimpleNamespace

import paramiko
import pytest

from provision.config.connection import connection_settings
from provision.executor.known_hosts import KnownHosts, _policy_class
from provision.executor.ssh import SSHExecutor


@pytest.fixture
def hostile_home(tmp_path, monkeypatch):
    """A HOME whose ~/.ssh/config and ~/.fabric.yaml would redirect the host and run local commands."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    marks = {n: tmp_path / f"pwned-{n}" for n in ("match", "proxy", "local", "fabric")}
    (home / ".ssh" / "config").write_text(
        f'Match exec "touch {marks["match"]}"\n'
        "  User matched\n"
        "Host *\n"
        "  HostName evil.invalid\n"
        "  Port 2200\n"
        "  User evil\n"
        f"  ProxyCommand touch {marks['proxy']}\n"
        "  ForwardAgent yes\n"
        "  IdentityFile ~/evil_key\n"
        "  ConnectTimeout 1\n"
        "  PermitLocalCommand yes\n"
        f"  LocalCommand touch {marks['local']}\n")
    (home / ".fabric.yaml").write_text(f"gateway: touch {marks['fabric']}\nconnect_kwargs:\n  key_filename: evil\n"
                                       "forward_agent: true\n")
    monkeypatch.setenv("HOME", str(home))
    return marks


def test_the_hostile_config_is_effective_with_fabric_defaults(hostile_home):
    """Control: what provision did with Fabric before it used paramiko directly. Fabric's default Config runs `Match exec` and takes the
    config's HostName/ProxyCommand/agent forwarding (so the tests below prove something)."""
    import os
    import subprocess
    import sys

    code = ("from fabric import Config, Connection\n"
            "c = Connection('10.0.0.9', user='ops', port=2222, config=Config())\n"
            "print(c.host, c.forward_agent, c.gateway, sep='|')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=dict(os.environ), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert hostile_home["match"].exists()
    assert proc.stdout.strip() == f"evil.invalid|True|touch {hostile_home['proxy']}"


def test_ssh_and_fabric_config_files_are_not_read(tmp_path, hostile_home):
    settings = connection_settings("web", {"ansible_host": "10.0.0.9", "ansible_port": 2222, "ansible_user": "ops",
                                           "ansible_ssh_private_key_file": str(tmp_path / "id")})
    executor = SSHExecutor(settings, KnownHosts(tmp_path / "known_hosts"))
    connection = executor._build()
    assert (connection.host, connection.port, connection.user) == ("10.0.0.9", 2222, "ops")
    assert connection.gateway is False and connection.forward_agent is False
    assert connection.connect_kwargs["key_filename"] == [str(tmp_path / "id")]
    assert isinstance(connection.client._policy, _policy_class())
    assert not any(mark.exists() for mark in hostile_home.values())


def test_every_jump_hop_is_checked_against_the_same_known_hosts(tmp_path, hostile_home):
    settings = connection_settings("web", {"ansible_host": "10.0.0.9", "ansible_user": "ops",
                                           "ansible_ssh_common_args": "-J a@b1,b2:2200"})
    executor = SSHExecutor(settings, KnownHosts(tmp_path / "known_hosts"))
    target = executor._build()
    assert [name for name, _ in executor._hops] == ["b1", "[b2]:2200", "10.0.0.9"]
    first, second = target.gateway.gateway, target.gateway
    assert first.gateway is False and (first.host, first.user) == ("b1", "a")
    assert (second.host, second.port, second.user) == ("b2", 2200, "ops")
    for _, hop in executor._hops:
        assert isinstance(hop.client._policy, _policy_class())
        assert hop.client._policy.known_hosts is executor.known_hosts
        assert hop.forward_agent is False
    assert not any(mark.exists() for mark in hostile_home.values())


def _changed(tmp_path, hops_connected: list[bool]):
    settings = connection_settings("web", {"ansible_host": "10.0.0.9", "ansible_user": "ops",
                                           "ansible_ssh_common_args": "-o ProxyJump=bastion:2200"})
    known = KnownHosts(tmp_path / "known_hosts")
    recorded, presented = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    known.trust_first_use("[bastion]:2200", recorded)
    executor = SSHExecutor(settings, known)
    executor._hops = [(name, SimpleNamespace(is_connected=up, host=host, port=port, user="ops"))
                      for (name, host, port), up in zip([("[bastion]:2200", "bastion", 2200), ("10.0.0.9", "10.0.0.9", 22)],
                                                        hops_connected)]
    hop, connection = executor._failed_hop()
    return executor._classify(paramiko.BadHostKeyException("bastion", presented, recorded), hop, connection)


def test_a_changed_jump_host_key_is_reported_under_the_jump_hosts_name(tmp_path):
    transient, message = _changed(tmp_path, [False, False])
    assert not transient
    assert message.startswith("jump host [bastion]:2200 (on the way to 10.0.0.9:22): host key for [bastion]:2200 "
                              "has CHANGED: ")
    assert " records ecdsa-sha2-nistp256 SHA256:" in message and "--accept-new-host-keys" in message


def test_a_changed_target_key_behind_a_jump_host_names_the_target(tmp_path):
    transient, message = _changed(tmp_path, [True, False])
    assert message.startswith("host key for 10.0.0.9 has CHANGED: ")


def test_the_docker_client_reads_no_ssh_config_and_runs_no_ssh(hostile_home, monkeypatch):
    import subprocess

    from docker.transport import sshconn

    from provision.deploy.remote_docker import docker_client

    def refuse(*args, **kwargs):
        raise AssertionError("must not be called")

    monkeypatch.setattr(sshconn.SSHHTTPAdapter, "_create_paramiko_client", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    opened = []
    client = docker_client(lambda: opened.append(1))
    adapter = client.api.get_adapter("http+docker://ssh/v1.41/version")
    assert type(adapter).__name__ == "ExecutorSSHAdapter" and adapter.open_transport is not None
    assert opened == [] and adapter.ssh_client is None  # no I/O until the first request, on the executor's client
    assert not any(mark.exists() for mark in hostile_home.values())


def test_an_unreachable_jump_host_is_named_as_such(tmp_path):
    settings = connection_settings("web", {"ansible_host": "10.0.0.9", "ansible_user": "ops",
                                           "ansible_ssh_common_args": "-o ProxyJump=bastion:2200"})
    executor = SSHExecutor(settings, KnownHosts(tmp_path / "known_hosts"))
    executor._build()
    hop, connection = executor._failed_hop()
    assert executor._classify(ConnectionRefusedError(), hop, connection) == (
        True, "jump host [bastion]:2200 (on the way to 10.0.0.9:22): connection refused by bastion:2200")
