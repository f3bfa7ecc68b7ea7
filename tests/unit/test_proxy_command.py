"""The inventory's ProxyCommand runs in a session of its own: the terminal's Ctrl-C does not reach it."""

import os

from provision.executor.proxy import proxy_command
from provision.executor.ssh import _Hop


def test_the_proxy_command_runs_in_its_own_session_with_ssh_expansions():
    proxy = proxy_command("db1", "cat %h")
    try:
        assert proxy.cmd == ["cat", "db1"]
        assert os.getsid(proxy.process.pid) == proxy.process.pid != os.getsid(0)
    finally:
        proxy.close()


def test_ssh_hops_open_string_gateways_through_it():
    hop = _Hop("db1", 22, "ops", "cat", 5, {})
    gateway = hop.open_gateway()
    try:
        assert os.getsid(gateway.process.pid) == gateway.process.pid
    finally:
        gateway.close()
