"""Run commands on the machine provision runs on (`ansible_connection=local`)."""

from __future__ import annotations

import subprocess

from provision.executor.base import SCRIPT_FROM_STDIN, Command, CommandResult, as_shell, sudo_wrap, timed_out


class LocalExecutor:
    def __init__(self, name: str = "localhost", become_user: str = "root", command_timeout: float = 600.0) -> None:
        self.name = name
        self.become_user = become_user
        self.command_timeout = command_timeout

    def run(self, command: Command, *, become: bool = False, timeout: float | None = None) -> CommandResult:
        """As SSHExecutor: the script on stdin (SCRIPT_FROM_STDIN), exit 124 past the timeout, and the whole
        process group ended then, so nothing it started lingers."""
        timeout = self.command_timeout if timeout is None else timeout
        script = as_shell(command)
        shell = sudo_wrap(SCRIPT_FROM_STDIN, self.become_user) if become and self.needs_sudo else SCRIPT_FROM_STDIN
        proc = subprocess.Popen(["/bin/sh", "-c", shell], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(script, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            return timed_out(script, stdout, stderr, timeout)
        except BaseException:  # an interrupt: leave nothing running behind us
            _kill_group(proc)
            raise
        return CommandResult(script, proc.returncode, stdout, stderr)

    @property
    def needs_sudo(self) -> bool:
        """Become goes through sudo unless provision already runs as the become user (as over SSH)."""
        import getpass

        return getpass.getuser() != self.become_user

    def open(self) -> None:
        pass

    def put(self, data: bytes, path: str, *, mode: int = 0o600) -> None:
        """Written beside `path` (created with `mode`), then renamed over it: never half a file."""
        import os

        tmp = f"{path}.provision-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def ssh_transport(self):
        return None

    def close(self) -> None:
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    import os
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue
