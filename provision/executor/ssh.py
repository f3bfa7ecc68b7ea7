"""Run commands over SSH with paramiko: one connection per host, opened lazily, reused for every step.

paramiko directly, not Fabric: Fabric (and invoke under it) cost ~0.1 s of imports per process and
read each command's output in threads polling every 10 ms; what provision used of it (a jump-host
chain, a ProxyCommand gateway, `sudo -S` answering the password prompt, a cached SFTP session) is the
few lines of `_Hop` and `_exec` below.

One SSHExecutor may serve several threads at once (workflows.fanout.SharedExecutors: a relay seed's
executor runs the relay's key commands from a peer's thread while the seed's own deploy runs): each
command is its own channel on the one transport (paramiko opens channels thread-safely), a command's
stdin is an argument of `_exec` (nothing shared), and SFTP use is serialised."""

from __future__ import annotations

import select
import socket
import threading
import time

from provision.config.connection import ConnectionSettings
from provision.errors import HostKeyChanged, HostUnreachable
from provision.executor.base import (CLIENT_GRACE_S, SCRIPT_FROM_STDIN, TIMED_OUT, Command, CommandResult, as_shell,
                                     sudo_wrap, timed_out, with_timeout)
from provision.executor.known_hosts import KnownHosts, fingerprint, key_name
from provision.secret import Secret
from provision.executor.watchdog import Watchdog

SUDO_PROMPT = "[provision:sudo] password: "


class SSHExecutor:
    """No I/O in the constructor: the SSH connection is opened by the first `run`."""

    def __init__(self, settings: ConnectionSettings, known_hosts: KnownHosts, *,
                 become_password: Secret | None = None, connect_retries: int = 2) -> None:
        self.name = settings.name
        self.settings = settings
        self.known_hosts = known_hosts
        self.become_password = become_password
        self.connect_retries = connect_retries
        self._connection = None
        self._lock = threading.Lock()
        self._sftp_lock = threading.Lock()  # one SFTP session per connection, used by one thread at a time
        self.round_trips = 0
        self.host_key_notes: list[str] = []
        self._watchdog: Watchdog | None = None
        self._hops: list[tuple[str, object]] = []

    # -- connecting -------------------------------------------------------------------------
    def _new_connection(self, host: str, port: int, user: str | None, gateway=None) -> "_Hop":
        """One hop. The operator's ~/.ssh/config and /etc/ssh/ssh_config are NOT read (paramiko reads
        none by itself): nothing there can redirect the host, add a ProxyCommand/ProxyJump that bypasses
        our known_hosts, forward the agent or run `Match exec`. Everything comes from the inventory."""
        s = self.settings
        connect_kwargs: dict = {"banner_timeout": s.timeout, "auth_timeout": s.timeout}
        if s.key_file:
            import os

            connect_kwargs["key_filename"] = [os.path.expanduser(s.key_file)]
        hop = _Hop(host, port, user, gateway, int(s.timeout), connect_kwargs)
        self.known_hosts.prepare(hop.client, self.host_key_notes.append)
        return hop

    def _build(self):
        """The target's connection, gatewayed through each jump host in order. `self._hops` keeps
        (known_hosts name, connection) of every hop, jump hosts first, to tell which one failed."""
        s = self.settings
        gateway = s.proxy_command
        hops = []
        for jump in s.jumps:
            gateway = self._new_connection(jump.host, jump.port, jump.user or s.user, gateway)
            hops.append((key_name(jump.host, jump.port), gateway))
        connection = self._new_connection(s.host, s.port, s.user, gateway)
        hops.append((key_name(s.host, s.port), connection))
        self._hops = hops
        return connection

    def _failed_hop(self):
        """(known_hosts name, connection) of the first hop that is not connected: where opening stopped."""
        for name, connection in self._hops:
            if not connection.is_connected:
                return name, connection
        return self._hops[-1]

    def connect(self):
        """Open (once) and return the connection (a `_Hop`); retries transient failures only."""
        with self._lock:
            if self._connection is not None and self._connection.is_connected:
                return self._connection
            attempt = 0
            rerecorded: set[str] = set()
            while True:
                connection = self._build()
                try:
                    connection.open()
                    self._connection = connection
                    self._start_watchdog(connection)
                    return connection
                except Exception as exc:  # classified below; the message says what happened
                    failed_hop, failed = self._failed_hop()
                    for _, hop in reversed(self._hops):  # gateways (and half-open transports
                        hop.client.close()                 # of a refused key) stay open otherwise
                    transient, message = self._classify(exc, failed_hop, failed)
                    if isinstance(exc, _bad_host_key_type()) and self.known_hosts.accept_changed \
                            and failed_hop not in rerecorded:
                        rerecorded.add(failed_hop)  # under the name of the hop that presented it
                        note = self.known_hosts.record(failed_hop, exc.key, replace=True)
                        if note:
                            self.host_key_notes.append(note)
                        continue
                    if isinstance(exc, _bad_host_key_type()):
                        raise HostKeyChanged(message) from None
                    if not transient or attempt >= self.connect_retries:
                        raise HostUnreachable(message) from None
                    attempt += 1
                    time.sleep(attempt)

    def open(self) -> None:
        self.connect()

    def ssh_transport(self):
        return self.connect().client.get_transport()

    def put(self, data: bytes, path: str, *, mode: int = 0o600) -> None:
        """Over SFTP as the login user: the file is created and chmod-ed before any byte is written."""
        connection = self.connect()
        self._count()
        try:
            with self._sftp_lock:
                sftp = connection.sftp()
                with sftp.open(path, "wb") as handle:
                    sftp.chmod(path, mode)
                    handle.write(data)
        except (EOFError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError)) \
                    and connection.is_connected:
                raise  # the host refused (no such folder, permission): the caller says what it means
            self._mark_dead(f"connection lost: {exc or type(exc).__name__}")
            self._raise_if_dead(f"put {path}")
            raise

    def _classify(self, exc: Exception, hop: str | None = None, hop_connection=None) -> tuple[bool, str]:
        """(transient?, one-line message) for a connect error. `hop` is the known_hosts name of the
        hop that failed and `hop_connection` its connection: when it is a jump host, the message
        names the jump host (its key, its address), not the target behind it."""
        transient, message = self._classify_hop(exc, hop, hop_connection)
        s = self.settings
        if hop is not None and hop != key_name(s.host, s.port):
            message = f"jump host {hop} (on the way to {s.host}:{s.port}): {message}"
        return transient, message

    def _classify_hop(self, exc: Exception, hop: str | None, hop_connection) -> tuple[bool, str]:
        import paramiko

        s = self.settings
        host, port, user = ((hop_connection.host, hop_connection.port, hop_connection.user)
                            if hop_connection is not None else (s.host, s.port, s.user))
        target = f"{user}@{host}:{port}"
        if isinstance(exc, paramiko.BadHostKeyException):
            name = hop or key_name(host, port)
            return False, (
                f"host key for {name} has CHANGED: {self.known_hosts.path} records "
                f"{self.known_hosts.recorded_fingerprint(name)}, the host presents "
                f"{exc.key.get_name()} {fingerprint(exc.key)}; refusing to connect. If the host was "
                "rebuilt, re-run with --accept-new-host-keys to record the new key"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            key = f" with key {s.key_file}" if s.key_file else ""
            return False, f"authentication failed for {target}{key}: {exc}"
        if isinstance(exc, socket.gaierror):
            return False, f"cannot resolve {host}: {exc.strerror}"
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) or isinstance(exc, ConnectionRefusedError):
            return True, f"connection refused by {host}:{port}"
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return True, f"connection to {host}:{port} timed out after {s.timeout:g}s"
        if isinstance(exc, (paramiko.SSHException, EOFError, OSError)):
            return True, f"ssh to {target} failed: {exc or type(exc).__name__}"
        return False, f"ssh to {target} failed: {type(exc).__name__}: {exc}"

    # -- running ----------------------------------------------------------------------------
    def run(self, command: Command, *, become: bool = False, timeout: float | None = None) -> CommandResult:
        """Run with a timeout (the host's provision_command_timeout unless given): a command that runs
        past it is ended on the host and returns exit 124, as LocalExecutor does; a host that stopped
        answering (keepalive watchdog, or no answer after the timeout) raises HostUnreachable. The
        command's text travels on stdin (SCRIPT_FROM_STDIN), never in the host's argv."""
        timeout = self.settings.timeouts.command if timeout is None else timeout
        connection = self.connect()
        self._count()
        s = self.settings
        script = as_shell(command)
        started = time.monotonic()
        try:
            if become and s.needs_sudo and self.become_password:
                return self._timed(self._sudo_with_password(connection, script, timeout), started, timeout)
            remote = with_timeout(SCRIPT_FROM_STDIN, timeout)
            shell = sudo_wrap(remote, s.become_user) if (become and s.needs_sudo) else remote
            result = _exec(connection, shell, script.encode(), timeout + CLIENT_GRACE_S, s.timeout)
        except Exception as exc:
            return self._after_failure(exc, command, timeout)
        self._raise_if_dead(command)
        stderr = result.stderr
        if become and "a password is required" in stderr:
            stderr += (f"\nsudo on {s.host} needs a password for {s.user}: set PROVISION_BECOME_PASSWORD "
                       "or pass --ask-become-pass")
        return self._timed(CommandResult(script, result.exit_code, result.stdout, stderr), started, timeout)

    def _count(self) -> None:
        with self._lock:
            self.round_trips += 1

    @staticmethod
    def _timed(result: CommandResult, started: float, timeout: float) -> CommandResult:
        """Say why when the host-side timeout ended the command."""
        if result.exit_code in (TIMED_OUT, 137) and time.monotonic() - started >= timeout * 0.98:
            return timed_out(result.command, result.stdout, result.stderr, timeout)
        return result

    def _after_failure(self, exc: Exception, command: Command, timeout: float) -> CommandResult:
        """A timed-out command is exit 124 if the host still answers; a dead connection is unreachable."""
        if isinstance(exc, _CommandTimedOut):  # the host did not end it itself: is the host still there?
            self._raise_if_dead(command, probe=True)
            return timed_out(as_shell(command), exc.stdout, exc.stderr, timeout)
        if isinstance(exc, (OSError, EOFError)) or type(exc).__module__.startswith("paramiko"):
            self._mark_dead(f"connection lost: {exc or type(exc).__name__}")
            self._raise_if_dead(command)
        raise exc

    def _raise_if_dead(self, command: Command, *, probe: bool = False) -> None:
        watchdog = self._watchdog
        dead = watchdog.dead if watchdog else None
        if dead is None and probe and watchdog is not None and not watchdog.alive_now():
            dead = watchdog.dead
        if dead is None and self._connection is not None and not self._connection.is_connected:
            dead = "connection closed"
        if dead is None:
            return
        self.close()
        first = as_shell(command).strip().splitlines()[0][:80] if as_shell(command).strip() else ""
        raise HostUnreachable(f"{self.settings.host}:{self.settings.port} stopped answering ({dead}) while "
                              f"running: {first}")

    def _mark_dead(self, reason: str) -> None:
        if self._watchdog is not None and self._watchdog.dead is None:
            self._watchdog.dead = reason

    def _sudo_with_password(self, connection, script: str, timeout: float) -> CommandResult:
        """sudo reads the password on stdin, so the script goes through a file instead: uploaded over SFTP
        to tmpfs (/dev/shm) as the login user, mode 0600, run by root with a timeout, then removed."""
        import secrets
        import shlex

        s = self.settings
        path = f"/dev/shm/provision-{secrets.token_hex(8)}"
        with self._sftp_lock:
            sftp = connection.sftp()
            with sftp.open(path, "wb") as handle:
                sftp.chmod(path, 0o600)
                handle.write(script.encode())
        runner = (f'timeout -k 10 {max(1, int(timeout + 0.999))} sh "$0" < /dev/null; rc=$?; '
                  'rm -f "$0"; exit $rc')
        shell = f"sudo -S -p '{SUDO_PROMPT}' -H -u {s.become_user} " + shlex.join(["sh", "-c", runner, path])
        try:
            result = _exec(connection, shell, None, timeout + CLIENT_GRACE_S, s.timeout,
                           password=self.become_password.reveal())
        except _SudoRejected:
            return CommandResult(script, 1, "", f"sudo rejected the become password for {s.user}")
        finally:
            try:
                with self._sftp_lock:
                    sftp.remove(path)
            except OSError:
                pass  # removed by the command already
        stdout = result.stdout.replace(SUDO_PROMPT, "")
        return CommandResult(script, result.exit_code, stdout, result.stderr.replace(SUDO_PROMPT, ""))

    def _start_watchdog(self, connection) -> None:
        t = self.settings.timeouts
        if self._watchdog is not None:
            self._watchdog.stop()
        self._watchdog = Watchdog(connection.transport, t.keepalive_interval, t.keepalive_count_max)
        self._watchdog.start()

    def close(self) -> None:
        with self._lock:
            if self._watchdog is not None:
                self._watchdog.stop()
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            for _, hop in reversed(self._hops):  # jump-host connections stay open otherwise
                try:
                    hop.client.close()
                except Exception:  # closing is best effort: the hop may be gone already
                    pass


class _Hop:
    """One SSH connection: a paramiko client reached directly, through a ProxyCommand (a string gateway)
    or through the previous hop's `direct-tcpip` channel (ProxyJump), as Fabric's Connection did."""

    def __init__(self, host: str, port: int, user: str | None, gateway, connect_timeout: int,
                 connect_kwargs: dict) -> None:
        import paramiko

        self.host, self.port, self.user = host, port, user
        self.gateway = gateway if gateway is not None else False  # False, a ProxyCommand line, a _Hop
        self.forward_agent = False
        self.connect_timeout = connect_timeout
        self.connect_kwargs = connect_kwargs
        self.client = paramiko.SSHClient()
        self.transport = None  # set once connect() returned: a hop whose key was refused is not connected
        self._sftp = None

    @property
    def is_connected(self) -> bool:
        transport = self.transport
        return transport.active if transport is not None else False

    def open_gateway(self):
        if isinstance(self.gateway, str):
            from provision.executor.proxy import proxy_command

            return proxy_command(self.host, self.gateway)
        self.gateway.open()
        return self.gateway.transport.open_channel("direct-tcpip", dest_addr=(self.host, int(self.port)),
                                                   src_addr=("", 0), timeout=self.connect_timeout)

    def open(self) -> None:
        if self.is_connected:
            return
        kwargs = dict(self.connect_kwargs, username=self.user, hostname=self.host, port=self.port,
                      timeout=self.connect_timeout)
        if self.gateway:
            kwargs["sock"] = self.open_gateway()
        self.client.connect(**kwargs)
        self.transport = self.client.get_transport()
        _no_delay(self.transport.sock)

    def sftp(self):
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self.is_connected:
            self.client.close()


def _no_delay(sock) -> None:
    """TCP_NODELAY on a hop's own TCP socket (a jump host's channel or a ProxyCommand has none). Without it,
    every command waited ~40 ms: its stdin data and EOF are two small packets, and Nagle holds the second
    until the host's delayed ACK (OpenSSH sets it on its side only for interactive sessions). Measured on
    the sandbox: a command's round trip 50-100 ms → 5-8 ms; paramiko leaves it unset."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # best effort: a socket that refuses it still works, only slower
            pass


class _CommandTimedOut(Exception):
    """The command ran past the client-side timeout (the host-side `timeout` should have ended it first)."""

    def __init__(self, stdout: str, stderr: str) -> None:
        super().__init__("command timed out")
        self.stdout, self.stderr = stdout, stderr


class _SudoRejected(Exception):
    """sudo asked for the password again after it was given: it was wrong."""


def _exec(hop: _Hop, command: str, stdin: bytes | None, timeout: float, open_timeout: float, *,
          password: str | None = None) -> CommandResult:
    """Run `command` in a new session channel: `stdin` sent whole then EOF; stdout and stderr read as they
    come (no polling: select on the channel's pipe) until the channel closes or `timeout` passes
    (_CommandTimedOut, the channel closed). With `password`, each sudo prompt (SUDO_PROMPT) on either
    stream is answered once; a "Sorry, try again." after it raises _SudoRejected."""
    transport = hop.transport
    if transport is None:
        raise EOFError("not connected")
    channel = transport.open_session(timeout=open_timeout)
    try:
        channel.exec_command(command)
        if stdin is not None:
            channel.sendall(stdin)
            channel.shutdown_write()
        out: list[bytes] = []
        err: list[bytes] = []
        answered = 0
        deadline = time.monotonic() + timeout
        while True:
            progressed = False
            while channel.recv_ready():
                out.append(channel.recv(65536))
                progressed = True
            while channel.recv_stderr_ready():
                err.append(channel.recv_stderr(65536))
                progressed = True
            if password is not None and progressed:
                seen = b"".join(out).count(SUDO_PROMPT.encode()) + b"".join(err).count(SUDO_PROMPT.encode())
                if answered and (b"Sorry, try again." in b"".join(err) or b"Sorry, try again." in b"".join(out)):
                    raise _SudoRejected()
                if seen > answered:
                    channel.sendall((password + "\n").encode())
                    answered = seen
            if progressed:
                continue
            if channel.closed or (channel.eof_received and channel.exit_status_ready()):
                while channel.recv_ready():  # what came with the close
                    out.append(channel.recv(65536))
                while channel.recv_stderr_ready():
                    err.append(channel.recv_stderr(65536))
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _CommandTimedOut(_text(out), _text(err))
            if channel.eof_received:  # no data comes after EOF (the closed buffers keep the pipe set): wait
                channel.status_event.wait(min(remaining, 1.0))  # for the exit status, or the close
            else:
                select.select([channel], [], [], min(remaining, 1.0))
        return CommandResult(command, channel.recv_exit_status(), _text(out), _text(err))
    finally:
        channel.close()


def _text(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode("utf-8", "replace")


def _bad_host_key_type():
    import paramiko

    return paramiko.BadHostKeyException
