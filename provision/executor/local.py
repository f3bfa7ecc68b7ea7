"""Run commands on the machine provision runs on (`ansible_connection=local`)."""

from __future__ import annotations

import subprocess

from provision.executor.base import Command, CommandResult, as_shell, sudo_wrap


class LocalExecutor:
    def __init__(self, name: str = "localhost", become_user: str = "root", command_timeout: float = 600.0) -> None:
        self.name = name
        self.become_user = become_user
        self.command_timeout = command_timeout

    def run(self, command: Command, *, become: bool = False, timeout: float | None = None) -> CommandResult:
        timeout = self.command_timeout if timeout is None else timeout
        shell = sudo_wrap(command, self.become_user) if become else as_shell(command)
        try:
            proc = subprocess.run(["/bin/sh", "-c", shell], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return CommandResult(shell, 124, exc.stdout or "", f"timed out after {timeout:g}s (provision_command_timeout)")
        return CommandResult(shell, proc.returncode, proc.stdout, proc.stderr)

    def close(self) -> None:
        pass
