"""Run commands over SSH with Fabric: one connection per host, opened lazily, reused for every step.

One SSHExecutor may serve several threads at once (workflows.fanout.SharedExecutors: a relay seed's
executor runs the relay's key commands from a peer's thread while the seed's own deploy runs): each
command is its own channel on the one transport (paramiko opens channels thread-safely), the script a
command sends on stdin is per thread, and SFTP use is serialised."""

from __future__ import annotations

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
_STDIN = threading.local()  # .data: the script the current thread's command sends on stdin (_remote_runner_class)


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
    def _new_connection(self, host: str, port: int, user: str | None, gateway=None):
        """One hop. The operator's ~/.ssh/config, /etc/ssh/ssh_config and Fabric's config files are
        NOT read (an empty SSHConfig, a lazy Config): nothing there can redirect the host, add a
        ProxyCommand/ProxyJump that bypasses our known_hosts, forward the agent or run `Match exec`.
        Everything comes from the inventory."""
        from fabric import Config
        from paramiko import SSHConfig

        from provision.executor.proxy import connection_class

        Connection = connection_class()
        s = self.settings
        connect_kwargs: dict = {"banner_timeout": s.timeout, "auth_timeout": s.timeout}
        if s.key_file:
            import os

            connect_kwargs["key_filename"] = os.path.expanduser(s.key_file)
        config = Config(overrides={"run": {"in_stream": False, "hide": True, "warn": True},
                                   "sudo": {"prompt": SUDO_PROMPT}, "load_ssh_configs": False,
                                   "runners": {"remote": _remote_runner_class()}},
                        ssh_config=SSHConfig(), lazy=True)
        connection = Connection(host, user=user, port=port, config=config,
                                gateway=gateway if gateway is not None else False, forward_agent=False,
                                connect_timeout=int(s.timeout), connect_kwargs=connect_kwargs)
        self.known_hosts.prepare(connection.client, self.host_key_notes.append)
        return connection

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
        """Open (once) and return the Fabric connection; retries transient failures only."""
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
                    for _, hop in reversed(self._hops):  # Fabric leaves gateways (and half-open
                        hop.client.close()                 # transports of a refused key) open
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
            _STDIN.data = script.encode()  # sent whole by _remote_runner_class, in this thread
            try:
                result = connection.run(shell, timeout=timeout + CLIENT_GRACE_S)
            finally:
                _STDIN.data = None
        except Exception as exc:
            return self._after_failure(exc, command, timeout)
        self._raise_if_dead(command)
        stderr = result.stderr
        if become and "a password is required" in stderr:
            stderr += (f"\nsudo on {s.host} needs a password for {s.user}: set PROVISION_BECOME_PASSWORD "
                       "or pass --ask-become-pass")
        return self._timed(CommandResult(script, result.exited, result.stdout, stderr), started, timeout)

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
        from invoke.exceptions import CommandTimedOut

        if isinstance(exc, CommandTimedOut):  # the host did not end it itself: is the host still there?
            self._raise_if_dead(command, probe=True)
            r = exc.result
            return timed_out(as_shell(command), r.stdout, r.stderr, timeout)
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

        from invoke.exceptions import AuthFailure

        s = self.settings
        path = f"/dev/shm/provision-{secrets.token_hex(8)}"
        with self._sftp_lock:
            sftp = connection.sftp()
            with sftp.open(path, "wb") as handle:
                sftp.chmod(path, 0o600)
                handle.write(script.encode())
        runner = (f'timeout -k 10 {max(1, int(timeout + 0.999))} sh "$0" < /dev/null; rc=$?; '
                  'rm -f "$0"; exit $rc')
        shell = shlex.join(["sh", "-c", runner, path])
        try:
            result = connection.sudo(shell, user=s.become_user, password=self.become_password.reveal(),
                                     timeout=timeout + CLIENT_GRACE_S)
        except AuthFailure:
            return CommandResult(script, 1, "", f"sudo rejected the become password for {s.user}")
        finally:
            try:
                with self._sftp_lock:
                    sftp.remove(path)
            except OSError:
                pass  # removed by the command already
        stdout = result.stdout.replace(SUDO_PROMPT, "")
        return CommandResult(script, result.exited, stdout, result.stderr.replace(SUDO_PROMPT, ""))

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
            for _, hop in reversed(self._hops):  # Fabric leaves jump-host connections open
                try:
                    hop.client.close()
                except Exception:  # closing is best effort: the hop may be gone already
                    pass


def _remote_runner_class():
    """Fabric's Remote runner, sending the calling thread's script (_STDIN.data) whole right after the command
    starts, then EOF (invoke's own in_stream copies a non-terminal stream one byte per 10 ms: a 30 kB script
    would take five minutes), and waking when the command exits rather than polling."""
    from fabric.runners import Remote

    class _Remote(Remote):
        def send_start_message(self, command):
            super().send_start_message(command)
            data = getattr(_STDIN, "data", None)
            if data is not None:
                self.channel.sendall(data)
                self.channel.shutdown_write()

        def wait(self):
            """Until the command exits: woken by the exit status itself (invoke polls every 10 ms, which
            delays every command and wakes each host's thread 100 times a second)."""
            while not (self.process_is_finished or self.has_dead_threads):
                self.channel.status_event.wait(0.05)

    return _Remote


def _bad_host_key_type():
    import paramiko

    return paramiko.BadHostKeyException
