"""Apply an operation's plan on one host: run each Change (or record it as planned in --check), report
NoChanges as ok and Refusals as failed, stop at the first failure, undo a failed Change's partial work.
Shared by every install workflow (Docker, NVIDIA)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from provision import progress
from provision.commands import argv, detached
from provision.errors import HostUnreachable
from provision.executor.base import Executor
from provision.operations.base import Change, NoChange, Refusal, redact
from provision.redaction import describe_command
from provision.report import HostResult, StepResult


@dataclass
class Applier:
    """Runs Changes (or, in check mode, records them as planned); stops the host at the first failure."""

    executor: Executor
    result: HostResult
    check: bool
    failed: bool = False
    notes: list[str] = field(default_factory=list)
    plan: list[dict] = field(default_factory=list)
    stamp: str = "run"  # names this run's detached units (provision-apt-STAMP-STEP)
    before_change: Callable[[], None] | None = None  # before each real change (not in --check): the host
    # lock's ensure(), which takes the lock the first time (and again after a reboot released it)

    def refuse_before_changes(self, items: list[Change | NoChange | Refusal]) -> bool:
        """A refusal known before the first change changes nothing: when any planned item refuses,
        report every refusal (and that nothing was changed) and stop this host. True when refused."""
        refusals = [item for item in items if isinstance(item, Refusal)]
        if not refusals or self.failed:
            return bool(refusals)
        for item in refusals:
            reason = item.reason if "nothing was changed" in item.reason else f"{item.reason}; nothing was changed"
            self.result.steps.append(StepResult(item.step, "failed", redact(reason)))
        self.failed = True
        return True

    def apply(self, item: Change | NoChange | Refusal) -> bool:
        """True when the item changed (or would change) the host."""
        if self.failed:
            return False
        if isinstance(item, NoChange):
            self.result.steps.append(StepResult(item.step, "ok", redact(item.reason)))
            return False
        if isinstance(item, Refusal):
            self.result.steps.append(StepResult(item.step, "failed", redact(item.reason)))
            self.failed = True
            return False
        if self.check:
            self.plan.append({"step": item.step, "reason": redact(item.reason),
                              "commands": [describe_command(c) for c in item.commands], "diff": redact(item.diff)})
            self.result.steps.append(StepResult(item.step, "changed", f"would: {redact(item.reason)}"))
            return True
        if self.before_change is not None:  # raises (HostLocked) before anything changes
            self.before_change()
        progress.step(item.step)
        start = time.monotonic()
        script = argv.script(item.commands)
        if item.detached:  # apt/dpkg: a dropped connection must not kill dpkg half-way
            script = detached.run_detached(detached.unit_name(self.stamp, item.step), script,
                                           f"provision: {item.step}")
        try:
            outcome = self.executor.run(script, become=True, timeout=item.timeout)
        except HostUnreachable as exc:  # say which step the host vanished in
            raise HostUnreachable(f"{exc} (step '{item.step}')") from None
        duration = time.monotonic() - start
        self.result.commands.append({"step": item.step, "commands": [describe_command(c) for c in item.commands],
                                     "output": redact((outcome.stdout + outcome.stderr).strip())})
        if not outcome.ok:
            message = f"{outcome.error_summary()} (exit {outcome.exit_code})"
            if item.undo:
                undo = self.executor.run(argv.script(item.undo, errexit=False), become=True)
                message += "; partial changes undone" if undo.ok else f"; undo failed: {undo.error_line()}"
            self.result.steps.append(StepResult(item.step, "failed", redact(message), duration))
            self.failed = True
            return False
        self.result.steps.append(StepResult(item.step, "changed", redact(item.reason), duration))
        self.notes.extend(item.notes)
        return True

    def ok(self, step: str, message: str, started: float) -> None:
        self.result.steps.append(StepResult(step, "ok", message, time.monotonic() - started))
