"""SSH keepalive that notices a dead peer: OpenSSH's ServerAliveInterval/ServerAliveCountMax for paramiko.

paramiko's own `set_keepalive` only sends packets and never expects an answer, and a host that vanished
without a TCP reset (a cut network, a paused VM or container: the kernel may even keep ACKing) leaves a
channel waiting for ever. The watchdog asks the server for an answer every `interval` seconds (it opens a
session channel and closes it again: any answer, even a refusal such as MaxSessions, proves the sshd is
alive) and, when none comes within `interval × count_max` seconds, records why and closes the transport,
which ends every command and docker API call riding on it at once.
"""

from __future__ import annotations

import threading


class Watchdog:
    def __init__(self, transport, interval: float, count_max: int) -> None:
        self.transport = transport
        self.interval = interval
        self.count_max = count_max
        self.dead: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self.transport is None:
            return
        self._thread = threading.Thread(target=self._loop, name="provision-ssh-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def alive_now(self, timeout: float | None = None) -> bool:
        """One probe: True when the server answered within the timeout (default interval × count_max)."""
        if self.dead is not None:
            return False
        wait = timeout if timeout is not None else max(self.interval * self.count_max, 1.0)
        import paramiko

        transport = self.transport
        if transport is None or not transport.is_active():
            self.dead = self.dead or "connection closed"
            return False
        try:
            channel = transport.open_session(timeout=wait)
        except paramiko.ChannelException:
            return True  # the server answered (e.g. "administratively prohibited"): alive
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if self._stop.is_set():
                return True
            self.dead = self.dead or f"no answer to keepalive within {wait:g}s ({exc or type(exc).__name__})"
            transport.close()
            return False
        channel.close()
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.alive_now():
                return
