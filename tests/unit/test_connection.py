import pytest

from provision.config.connection import Jump, connection_settings, parse_ssh_args
from provision.errors import InventoryError


def test_defaults_follow_ansible():
    s = connection_settings("web1", {"ansible_user": "ubuntu"})
    assert (s.host, s.port, s.user, s.become, s.become_user, s.connection) == ("web1", 22, "ubuntu", False, "root", "ssh")


def test_connection_vars_and_legacy_aliases():
    s = connection_settings("gpu1", {"ansible_ssh_host": "10.0.0.5", "ansible_ssh_port": "2222", "ansible_ssh_user": "u",
                                     "ansible_private_key_file": "~/.ssh/k", "ansible_become": "yes",
                                     "ansible_become_user": "svc"})
    assert (s.host, s.port, s.user, s.key_file, s.become, s.become_user) == ("10.0.0.5", 2222, "u", "~/.ssh/k", True, "svc")
    assert s.needs_sudo


@pytest.mark.parametrize("args, jumps, proxy", [
    ("-o ProxyJump=bastion", (Jump("bastion"),), None),
    ("-o ProxyJump=ops@bastion:2200", (Jump("bastion", 2200, "ops"),), None),
    ("-J a@b1,b2:23", (Jump("b1", 22, "a"), Jump("b2", 23)), None),
    ("-o StrictHostKeyChecking=no -o 'ProxyCommand=ssh -W %h:%p -q ops@bastion'", (), "ssh -W %h:%p -q ops@bastion"),
    ("-o ProxyJump=none", (), None),
])
def test_proxy_settings_from_ssh_common_args(args, jumps, proxy):
    assert parse_ssh_args(args, name="h") == (jumps, proxy)


def test_describe_shows_the_route():
    s = connection_settings("h", {"ansible_host": "10.1.1.1", "ansible_user": "root",
                                  "ansible_ssh_common_args": "-o ProxyJump=ops@bastion:2200"})
    assert s.describe() == "ssh://root@10.1.1.1:22 via ops@bastion:2200"


@pytest.mark.parametrize("hostvars, message", [
    ({"ansible_port": "ssh"}, "host 'h': ansible_port must be a port number, got 'ssh'"),
    ({"ansible_port": 70000}, "host 'h': ansible_port must be a port number, got 70000"),
    ({"ansible_become": "maybe"}, "host 'h': ansible_become must be a boolean, got 'maybe'"),
    ({"ansible_connection": "winrm"}, "host 'h': ansible_connection 'winrm' is not supported (ssh or local)"),
    ({"ansible_ssh_common_args": "-o 'ProxyJump=x"}, "host 'h': ansible_ssh_common_args: No closing quotation"),
])
def test_bad_connection_vars(hostvars, message):
    with pytest.raises(InventoryError) as err:
        connection_settings("h", hostvars)
    assert str(err.value) == message
