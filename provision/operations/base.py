"""What an operation yields: a Change (commands to run, with the reason) or a NoChange (why not)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


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


_CREDENTIALS = re.compile(r"(://)[^/@\s:]+:[^/@\s]+@")


def redact(text: str) -> str:
    """Hide user:password in URLs (proxies, mirrors) wherever commands are shown."""
    return _CREDENTIALS.sub(r"\1***:***@", text)
