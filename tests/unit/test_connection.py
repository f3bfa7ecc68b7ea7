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


META = "shell metacharacters, whitespace and control characters are refused"


@pytest.mark.parametrize("name, hostvars, message", [
    ("h", {"ansible_host": "10.0.0.1;touch /tmp/x"}, f"ansible_host '10.0.0.1;touch /tmp/x': ';' is not allowed in a host name or address ({META})"),
    ("h", {"ansible_host": "$(id)"}, f"ansible_host '$(id)': '$' is not allowed in a host name or address ({META})"),
    ("h", {"ansible_ssh_host": "`id`"}, f"ansible_ssh_host '`id`': '`' is not allowed in a host name or address ({META})"),
    ("h", {"ansible_host": "web 1"}, f"ansible_host 'web 1': whitespace is not allowed in a host name or address ({META})"),
    ("h", {"ansible_host": "web1\n"}, f"ansible_host 'web1\\n': a control character is not allowed in a host name or address ({META})"),
    ("h", {"ansible_host": "a\x1b[31m"}, f"ansible_host 'a\\x1b[31m': a control character is not allowed in a host name or address ({META})"),
    ("h", {"ansible_host": "-oProxyCommand=touch"}, "ansible_host '-oProxyCommand=touch': a host name or address may not start with '-'"),
    ("h", {"ansible_host": "root@web"}, f"ansible_host 'root@web': '@' is not allowed in a host name or address ({META})"),
    ("h", {"ansible_host": "web|nc"}, f"ansible_host 'web|nc': '|' is not allowed in a host name or address ({META})"),
    ("web&", {}, f"inventory_hostname 'web&': '&' is not allowed in a host name or address ({META})"),
    ("h", {"ansible_user": "root;id"}, f"ansible_user 'root;id': ';' is not allowed in a user name ({META})"),
    ("h", {"ansible_ssh_user": "ro ot"}, f"ansible_ssh_user 'ro ot': whitespace is not allowed in a user name ({META})"),
    ("h", {"ansible_user": "-lroot"}, "ansible_user '-lroot': a user name may not start with '-'"),
    ("h", {"ansible_become_user": "root'x"}, f"ansible_become_user \"root'x\": \"'\" is not allowed in a user name ({META})"),
    ("h", {"ansible_ssh_common_args": "-J 'b1;id'"}, f"ProxyJump host 'b1;id': ';' is not allowed in a host name or address ({META})"),
    ("h", {"ansible_ssh_common_args": "-o ProxyJump=o$x@b1"}, f"ProxyJump user 'o$x': '$' is not allowed in a user name ({META})"),
    ("h", {"ansible_ssh_extra_args": "-o 'ProxyJump=b1 b2'"}, f"ProxyJump host 'b1 b2': whitespace is not allowed in a host name or address ({META})"),
])
def test_host_and_user_values_that_could_reach_a_shell_are_bad_input(name, hostvars, message):
    with pytest.raises(InventoryError) as err:
        connection_settings(name, hostvars)
    assert str(err.value) == f"host '{name}': {message}"
    assert err.value.exit_code == 4 and "\n" not in str(err.value)


@pytest.mark.parametrize("hostvars, host, user", [
    ({"ansible_host": "fe80::1%eth0", "ansible_user": "svc.deploy"}, "fe80::1%eth0", "svc.deploy"),
    ({"ansible_host": "gpu_01.dc-1.example.com", "ansible_user": "ops@corp.example"}, "gpu_01.dc-1.example.com", "ops@corp.example"),
    ({"ansible_host": "10.0.0.5", "ansible_user": "_svc-1"}, "10.0.0.5", "_svc-1"),
    ({"ansible_host": "", "ansible_user": ""}, "h", None),  # empty means unset, as before
])
def test_ordinary_host_and_user_values_pass(hostvars, host, user):
    s = connection_settings("h", hostvars)
    assert s.host == host and (user is None or s.user == user)


def test_locate_gives_the_error_its_file_and_line():
    where = {"ansible_user": ("inv.yml", 7), "ansible_ssh_common_args": ("group_vars/all.yml", 3)}
    with pytest.raises(InventoryError) as err:
        connection_settings("h", {"ansible_user": "a b"}, locate=where.get)
    assert str(err.value).startswith("inv.yml:7: host 'h': ansible_user 'a b': whitespace")
    with pytest.raises(InventoryError) as err:
        connection_settings("h", {"ansible_ssh_common_args": "-J x;y"}, locate=where.get)
    assert str(err.value).startswith("group_vars/all.yml:3: host 'h': ProxyJump host 'x;y': ';'")
