"""A recording executor for unit tests: remembers every command, answers from canned responses.

`respond(pattern, ...)`: every command matching the regex gets that answer (the first matching pattern
wins). `respond_sequence(pattern, *answers)`: successive matching commands get successive answers, the
last one repeating (a probe that sees a fresh host, then a converged one); sequences are asked first."""

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
    sequences: list[tuple[str, list[CommandResult]]] = field(default_factory=list)  # (regex, answers left)

    def respond(self, pattern: str, stdout: str = "", exit_code: int = 0, stderr: str = "") -> None:
        self.responses.append((pattern, CommandResult(pattern, exit_code, stdout, stderr)))

    def respond_sequence(self, pattern: str, *answers: CommandResult | str) -> None:
        """Answer the n-th command matching `pattern` with answers[n] (a str is stdout with exit 0); the
        last answer repeats."""
        results = [CommandResult(pattern, 0, a) if isinstance(a, str) else a for a in answers]
        if not results:
            raise ValueError("respond_sequence needs at least one answer")
        self.sequences.append((pattern, results))

    @property
    def shells(self) -> list[str]:
        """The recorded commands' shell strings, in order (without become)."""
        return [shell for shell, _ in self.commands]

    def run(self, command: Command, *, become: bool = False, timeout: float | None = None) -> CommandResult:
        shell = as_shell(command)
        self.commands.append((shell, become))
        self.timeouts.append(timeout)
        for pattern, answers in self.sequences:
            if re.search(pattern, shell):
                result = answers.pop(0) if len(answers) > 1 else answers[0]
                return CommandResult(shell, result.exit_code, result.stdout, result.stderr)
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
