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
from provision.executor.base import CommandResult, Executor, timed_out
from provision.operations.base import Change, NoChange, Refusal, redact
from provision.redaction import describe_command
from provision.report import HostResult, StepResult

DETACHED_DEFAULT_TIMEOUT_S = 1800.0  # a detached step without its own timeout (apt steps have apt_timeout)
POLL_SLACK_S = 60.0  # a poll's own timeout beyond its wait on the host (a slow link, a busy host)


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
        try:
            if item.detached:  # apt/dpkg: a dropped connection must not kill dpkg half-way
                outcome = self._run_detached(item, script)
            else:
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

    def _run_detached(self, item: Change, script: str) -> CommandResult:
        """Start the step's unit and poll it (each poll waits on the host up to POLL_WAIT_S) until it
        ends or the step's timeout passes (exit 124, as a blocking command's timeout; the unit runs on and
        the next run waits for it). Each poll of a running unit reports apt's progress to the live view."""
        from provision.facts import apt_status  # here: a run that changes nothing polls no apt (issue 12)

        unit = detached.unit_name(self.stamp, item.step)
        limit = item.timeout if item.timeout is not None else DETACHED_DEFAULT_TIMEOUT_S
        deadline = time.monotonic() + limit
        command = detached.run_detached(unit, script, f"provision: {item.step}")
        while True:
            per_call = max(1.0, min(deadline - time.monotonic(), detached.POLL_WAIT_S + POLL_SLACK_S))
            outcome = self.executor.run(command, become=True, timeout=per_call)
            if not apt_status.is_running(outcome.stdout):
                return outcome
            apt_progress = apt_status.parse(apt_status.status_text(outcome.stdout))
            if apt_progress is not None:
                progress.update(apt_progress.done, apt_progress.total, apt_progress.unit, apt_progress.detail)
            now = time.monotonic()
            if now >= deadline:
                return timed_out(command, "", "", limit)
            command = detached.poll_detached(unit)

    def ok(self, step: str, message: str, started: float) -> None:
        self.result.steps.append(StepResult(step, "ok", message, time.monotonic() - started))
