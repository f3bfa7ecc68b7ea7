"""The one exception hierarchy. ``provision.cli.app`` turns these into messages and exit codes."""

from __future__ import annotations

from pathlib import Path

# Exit codes, decided in one place (see provision.report for per-host outcomes).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_HOST_FAILED = 2
EXIT_HOST_UNREACHABLE = 3
EXIT_BAD_INPUT = 4


class ProvisionError(Exception):
    """Base of every error provision raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(ProvisionError):
    """Bad input (inventory, playbook, option): reported before anything touches a host.

    Rendered as one line: ``FILE:LINE: MESSAGE`` (LINE omitted when unknown).
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file = str(file) if file is not None else None
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{self.message}"


class InventoryError(InputError):
    """The inventory cannot be parsed or is inconsistent."""


class PatternError(InputError):
    """A host pattern (--limit) is malformed."""


class EnvironmentProblem(ProvisionError):
    """Something on the operator's machine is missing (a Docker engine, debootstrap, ...)."""


class HostError(ProvisionError):
    """A step failed on a host; caught per host by the fan-out and turned into a failed result."""


class HostUnreachable(HostError):
    """The host could not be connected to (refused, timeout, auth, host key)."""


class HostKeyChanged(HostUnreachable):
    """The host presented a key different from the one recorded in known_hosts."""
