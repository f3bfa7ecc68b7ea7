"""A recording executor for unit tests: remembers every command, answers from canned responses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from provision.executor.base import Command, CommandResult, as_shell


@dataclass
class RecordingExecutor:
    name: str = "fake"
    responses: list[tuple[str, CommandResult]] = field(default_factory=list)  # (regex, result)
    commands: list[tuple[str, bool]] = field(default_factory=list)  # (shell string, become)
    timeouts: list[float | None] = field(default_factory=list)
    puts: list[tuple[str, bytes, int]] = field(default_factory=list)  # (path, data, mode)

    def respond(self, pattern: str, stdout: str = "", exit_code: int = 0, stderr: str = "") -> None:
        self.responses.append((pattern, CommandResult(pattern, exit_code, stdout, stderr)))

    def run(self, command: Command, *, become: bool = False, timeout: float | None = None) -> CommandResult:
        shell = as_shell(command)
        self.commands.append((shell, become))
        self.timeouts.append(timeout)
        for pattern, result in self.responses:
            if re.search(pattern, shell):
                return CommandResult(shell, result.exit_code, result.stdout, result.stderr)
        return CommandResult(shell, 0)

    def open(self) -> None:
        pass

    def put(self, data: bytes, path: str, *, mode: int = 0o600) -> None:
        self.puts.append((path, bytes(data), mode))

    def ssh_transport(self):
        return None

    def close(self) -> None:
        pass
