"""The inventory's ProxyCommand, started in a session of its own.

paramiko's own ProxyCommand starts a child in the terminal's process group:
the operator's first Ctrl-C would kill every host's transport at once, while provision means to let
hosts in flight finish their step (workflows/interrupt.py). Started in its own session, the proxy lives
until provision closes the connection (or exits), as the jump-host connections do.
"""

from __future__ import annotations

import shlex
import subprocess
from io import StringIO


def proxy_command(host: str, command_line: str):
    """A paramiko ProxyCommand for `host` (%h, %p expanded as ssh does), in its own session."""
    import paramiko

    class _OwnSessionProxyCommand(paramiko.ProxyCommand):
        def __init__(self, line: str) -> None:  # paramiko's, plus start_new_session
            self.cmd = shlex.split(line)
            self.process = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
            self.timeout = None

    config = paramiko.SSHConfig()
    config.parse(StringIO(f"Host {host}\n    ProxyCommand {command_line}"))
    return _OwnSessionProxyCommand(config.lookup(host)["proxycommand"])
