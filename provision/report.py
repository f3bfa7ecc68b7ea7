"""Per-host results → recap table, the `--json` document, and the exit code. The only place that decides them.

JSON contract (every host-acting command):
  {"command": str,
   "hosts": {NAME: {"status": "ok"|"changed"|"failed"|"unreachable"|"skipped", "changed": int,
                    "steps": [{"name", "status", "changed", "message", "duration_s"}], ...extra}},
   "summary": {"ok", "changed", "failed", "unreachable", "skipped"}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from provision.errors import EXIT_HOST_FAILED, EXIT_HOST_UNREACHABLE, EXIT_OK

StepStatus = Literal["ok", "changed", "failed", "skipped"]
HostStatus = Literal["ok", "changed", "failed", "unreachable", "skipped"]
HOST_STATUSES: tuple[HostStatus, ...] = ("ok", "changed", "failed", "unreachable", "skipped")


@dataclass
class StepResult:
    name: str
    status: StepStatus
    message: str = ""
    duration_s: float = 0.0

    @property
    def changed(self) -> bool:
        return self.status == "changed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "changed": self.changed,
            "message": self.message,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class HostResult:
    name: str
    steps: list[StepResult] = field(default_factory=list)
    unreachable: str | None = None  # the reason, when the host could not be reached
    skipped: str | None = None  # the reason, when the whole host was skipped
    extra: dict[str, Any] = field(default_factory=dict)  # command-specific data (facts, output, ...)
    # what ran on the host, for `-v` (the commands) and `-vv` (their output): [{"step", "commands", "output"}],
    # redacted; never in --json (the contract above is unchanged)
    commands: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)

    @property
    def status(self) -> HostStatus:
        if self.unreachable is not None:
            return "unreachable"
        if any(s.status == "failed" for s in self.steps):
            return "failed"
        if any(s.changed for s in self.steps):
            return "changed"
        if self.skipped is not None or (self.steps and all(s.status == "skipped" for s in self.steps)):
            return "skipped"
        return "ok"

    @property
    def changed(self) -> int:
        return sum(1 for s in self.steps if s.changed)

    @property
    def message(self) -> str:
        """One line for the recap: the reason of an unreachable/skipped host, else the first failure."""
        if self.unreachable is not None:
            return self.unreachable
        for step in self.steps:
            if step.status == "failed":
                return f"{step.name}: {step.message}"
        return self.skipped or ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "changed": self.changed,
                                "steps": [s.to_dict() for s in self.steps]}
        if self.unreachable is not None or self.skipped is not None:
            data["message"] = self.message
        data.update(self.extra)
        return data


@dataclass
class Report:
    command: str
    hosts: dict[str, HostResult] = field(default_factory=dict)

    def add(self, result: HostResult) -> None:
        self.hosts[result.name] = result

    def summary(self) -> dict[str, int]:
        counts = {status: 0 for status in HOST_STATUSES}
        for result in self.hosts.values():
            counts[result.status] += 1
        return counts

    def exit_code(self) -> int:
        """0 all ok/changed/skipped, 2 any host failed, 3 any host unreachable (and none failed)."""
        summary = self.summary()
        if summary["failed"]:
            return EXIT_HOST_FAILED
        if summary["unreachable"]:
            return EXIT_HOST_UNREACHABLE
        return EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "hosts": {name: result.to_dict() for name, result in self.hosts.items()},
            "summary": self.summary(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)
