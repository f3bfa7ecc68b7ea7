"""The docker SDK over the Docker SSH transport, on the host's one SSH connection.

`docker.DockerClient(base_url="ssh://user@host:port")` in paramiko mode opens its own SSH
connection, trusts only `~/.ssh/known_hosts` and knows nothing of jump hosts or our keys. Here
the SDK's own SSH adapter classes are given the paramiko transport of the host's executor instead:
the same connection (so the same known_hosts file, TOFU policy, key, ProxyJump and retries as
every other step) carries one `docker system dial-stdio` channel per pooled HTTP connection.
That is exactly what the SDK's ssh:// transport does, minus the second trust step.

Neither the `ssh` binary nor the operator's `~/.ssh/config` is involved: the SDK is built in its
shell-out mode only because that mode constructs without I/O (its paramiko mode parses
~/.ssh/config, HostName/ProxyCommand included), and its adapter is replaced before any request.

No I/O happens until the first API call (the executor connects lazily).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from provision.commands.deploy_host import docker_dial_stdio

API_VERSION = "1.41"  # Docker 20.10; every newer engine serves it
# A pooled connection idle longer than this is closed and replaced before the next request. A Docker 20.10
# engine closes an API connection after 5 idle minutes (measured on the sandbox's 20.10.24: the channel's
# `docker system dial-stdio` exits 0 at 300 s; likely the API server's 5-minute ReadHeaderTimeout, which Go
# before 1.20 also applied to idle keep-alive connections), and sshd then closes the channel. Replacing a
# connection well before that leaves no race with the engine's close.
MAX_IDLE_S = 60.0
_now = time.monotonic  # the pool's clock (tests move it)


def docker_client(open_transport: Callable[[], object], *, sudo: bool = False, timeout: int = 300,
                  max_pool_size: int = 4):
    """A `docker.DockerClient` whose requests ride the paramiko Transport `open_transport()` returns."""
    import docker

    client = docker.DockerClient(base_url="ssh://provision", version=API_VERSION, use_ssh_client=True,
                                 timeout=timeout)  # shell-out mode: constructs without any I/O
    adapter = _adapter_class()(open_transport, docker_dial_stdio(sudo), timeout, max_pool_size)
    client.api._custom_adapter = adapter
    client.api.mount("http+docker://ssh", adapter)
    return client


def client_for(executor, settings, *, timeout: int = 300):
    """The Docker client of a host: over its executor's SSH connection (the Docker SSH transport), or the
    machine's own engine for an executor that has no SSH transport (`ansible_connection=local`).

    Connects first, so an unreachable host raises HostUnreachable before any docker call. With `become`
    and a login user other than the become user, `sudo -n` runs dial-stdio (passwordless sudo needed);
    otherwise the login user needs the Docker socket (root, or the `docker` group: see `docker_users`)."""
    executor.open()
    if executor.ssh_transport() is None:
        import docker

        return docker.from_env(version=API_VERSION, timeout=timeout)
    sudo = bool(settings.become) and settings.needs_sudo
    return docker_client(executor.ssh_transport, sudo=sudo, timeout=timeout)


_ADAPTER = None
_LOCK = threading.Lock()


def _adapter_class():
    """Built on first use so importing this module does not import paramiko/docker."""
    global _ADAPTER
    with _LOCK:
        if _ADAPTER is None:
            _ADAPTER = _define_adapter()
    return _ADAPTER


def _define_adapter():
    import requests.adapters
    from docker import constants
    from docker.transport import sshconn

    class DialConnection(sshconn.SSHConnection):
        def __init__(self, transport, dial: str, timeout: int) -> None:
            super().__init__(ssh_transport=transport, timeout=timeout)
            self.dial = dial

        def connect(self):
            channel = self.ssh_transport.open_session()
            channel.settimeout(self.timeout)
            channel.exec_command(self.dial)
            self.sock = channel

    class DialPool(sshconn.SSHConnectionPool):
        def __init__(self, transport, dial: str, timeout: int, maxsize: int) -> None:
            super().__init__(ssh_client=None, timeout=timeout, maxsize=maxsize)
            self.ssh_transport = transport
            self.dial = dial

        def _new_conn(self):
            return DialConnection(self.ssh_transport, self.dial, self.timeout)

        def _get_conn(self, timeout=None):
            # The SDK's pool hands out pooled connections unchecked (urllib3's own check, a select() on the
            # socket, would make paramiko create a pipe per channel). A channel the host closed (its
            # dial-stdio ended: the engine closed an idle connection, or the transport went down) would fail
            # the next request with OSError('Socket is closed'); one idle for long is about to be closed.
            # Both are closed here and replaced by a new channel.
            conn = super()._get_conn(timeout)
            idle = _now() - getattr(conn, "idle_since", _now())
            if conn.sock is not None and (_dropped(conn.sock) or idle > MAX_IDLE_S):
                conn.close()
                conn = self._new_conn()
            return conn

        def _put_conn(self, conn):
            if conn is not None:
                conn.idle_since = _now()
            super()._put_conn(conn)

    class ExecutorSSHAdapter(sshconn.SSHHTTPAdapter):
        """The SDK's SSH adapter on a borrowed, already-trusted paramiko transport."""

        def __init__(self, open_transport, dial: str, timeout: int, max_pool_size: int) -> None:
            self.open_transport = open_transport
            self.dial = dial
            self.ssh_client = None
            self.ssh_params = {}
            self.ssh_host = "provision"
            self.timeout = timeout
            self.max_pool_size = max_pool_size
            self.pools = sshconn.RecentlyUsedContainer(constants.DEFAULT_NUM_POOLS,
                                                       dispose_func=lambda p: p.close())
            requests.adapters.HTTPAdapter.__init__(self)

        def get_connection(self, url, proxies=None):
            # ONE pool for every URL (the SDK keys pools by URL, and each pooled connection is an
            # SSH session: sshd's MaxSessions, 10 by default, would soon refuse more)
            with self.pools.lock:
                pool = self.pools.get("ssh")
                transport = pool.ssh_transport if pool else None
                if pool and transport is not None and transport.is_active():
                    return pool
                transport = self.open_transport()  # the executor reconnects if it has to
                pool = DialPool(transport, self.dial, self.timeout, self.max_pool_size)
                self.pools["ssh"] = pool
            return pool

        def close(self):
            # the SSH connection belongs to the executor, which closes it
            requests.adapters.HTTPAdapter.close(self)
            self.pools.clear()

    return ExecutorSSHAdapter


def _dropped(channel) -> bool:
    """Has the host ended this dial-stdio channel (closed, or sent EOF / an exit status)? No I/O, no file
    descriptor (paramiko's Channel.fileno() would make a pipe)."""
    try:
        return bool(channel.closed or channel.eof_received or channel.exit_status_ready())
    except AttributeError:  # not a paramiko channel: nothing to tell
        return False
