"""The inventory's ProxyCommand runs in a session of its own: the terminal's Ctrl-C does not reach it."""

import os

from provision.executor.proxy import connection_class, proxy_command


def test_the_proxy_command_runs_in_its_own_session_with_ssh_expansions():
    proxy = proxy_command("db1", "cat %h")
    try:
        assert proxy.cmd == ["cat", "db1"]
        assert os.getsid(proxy.process.pid) == proxy.process.pid != os.getsid(0)
    finally:
        proxy.close()


def test_fabric_connections_open_string_gateways_through_it():
    from fabric import Config

    connection = connection_class()("db1", gateway="cat", config=Config(lazy=True))
    gateway = connection.open_gateway()
    try:
        assert os.getsid(gateway.process.pid) == gateway.process.pid
    finally:
        gateway.close()
