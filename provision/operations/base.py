"""What an operation yields: a Change (commands to run, with the reason) or a NoChange (why not)."""

from __future__ import annotations

from dataclasses import dataclass, field

from provision.redaction import redact_text


@dataclass
class Change:
    step: str
    reason: str
    commands: list[str]
    diff: str = ""
    undo: list[str] = field(default_factory=list)  # run when one of the commands fails
    notes: list[str] = field(default_factory=list)  # said in the report after success (re-login, restarts)
    timeout: float | None = None  # seconds for the whole step; None: the host's provision_command_timeout
    detached: bool = False  # apt/dpkg work: runs as a systemd unit that survives a dropped connection


@dataclass
class NoChange:
    step: str
    reason: str


@dataclass
class Refusal:
    """Something on the host makes the operation unsafe or impossible: fail before changing anything."""

    step: str
    reason: str


def redact(text: str) -> str:
    """Hide credentials wherever commands, reasons and diffs are shown (see provision.redaction)."""
    return redact_text(text)


def age(seconds: int) -> str:
    """`now`, `42s ago`, `5m ago`, `3h ago`, `2d ago` (whole units, rounded down): when a check was made."""
    if seconds < 1:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"
