"""The host lock and audit log: one run at a time changes a host's containers or its Docker engine.

Every command that changes what runs on a host takes the host's lock first (deploy, rollback,
down, prune, swarm deploy; docker install/uninstall and the NVIDIA stage restart docker, so they
take it too), and leaves one JSON line in the host's audit log when it lets go.

Use it as a context manager around the work:

    from provision.workflows.host_lock import HostLock

    with HostLock(executor, "docker install") as lock:   # raises HostLocked if another run holds it
        ...                                             # the work; lock.note(key=value) adds to the audit line
    # released on every exit path, after appending the audit line (result "ok", "failed" or "interrupted")

Arguments: `executor` (the host's), `action` (what the audit line and a refused run will name),
and optionally `stack` (default "*"), `run_id` (one id shared by a run's hosts), `result` (a
HostResult: the lock is reported as a step, and a failed step makes the audit result "failed").
`take()`/`release()` exist for callers that cannot use `with`. With `lazy=True` entering takes
nothing: the first `ensure()` takes the lock (install workflows call it right before their first
change, so a no-op run or --check costs no lock round trips), and leaving releases it if taken.

A held lock is never broken silently, not even when its holder is clearly gone (a run killed with
-9, a laptop that lost power): the refusal names the holder and since when and says how to break it
deliberately, `provision unlock -i INV -l HOST`, which shows the holder first, asks, and records
the break in the audit log (`read_holder`/`break_lock` below). While a fan-out runs, a taken lock
is registered with the fan-out's interrupt state, so a second Ctrl-C still releases it (bounded).

The shell commands are built in provision.commands.deploy_host.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from provision.commands import deploy_host
from provision.errors import HostError
from provision.executor.base import Executor
from provision.report import HostResult, StepResult
from provision.interrupts import INTERRUPT, Interrupted

LOCK_PATH = deploy_host.LOCK_DIR
AUDIT_LOG = deploy_host.AUDIT_LOG


class HostLocked(HostError):
    """Another run holds the host's lock."""

    def __init__(self, message: str, holder: dict) -> None:
        super().__init__(message)
        self.holder = holder


def operator() -> str:
    """Who is acting: user@machine."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class HostLock:
    def __init__(self, executor: Executor, action: str, *, stack: str = "*", run_id: str | None = None,
                 result: HostResult | None = None, lazy: bool = False) -> None:
        self.executor, self.action, self.stack, self.result = executor, action, stack, result
        self.lazy = lazy
        self.token = run_id or uuid.uuid4().hex[:12]
        self.by = operator()
        self.taken = False
        self.details: dict[str, Any] = {}
        self._hold_key: int | None = None

    # -- with ---------------------------------------------------------------------------------
    def __enter__(self) -> HostLock:
        if not self.lazy:
            self.take()
        return self

    def ensure(self) -> None:
        """Take the lock unless this run holds it already."""
        if not self.taken:
            self.take()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            outcome = None
        elif issubclass(exc_type, (Interrupted, KeyboardInterrupt)):
            outcome = "interrupted"
        else:
            outcome = "failed"
        try:
            self.release(outcome=outcome)
        except HostError as error:  # the host went away (a reboot that never returned, a cut network)
            if self.result is None and exc_type is None:
                raise
            if self.result is not None:  # keep the report: say the lock stays, and how to break it
                self.result.steps.append(StepResult(
                    "lock", "failed", f"could not release the host lock {LOCK_PATH} ({error}); it stays until "
                                      f"`provision unlock -l {self.executor.name}` once the host answers"))

    # -- take / release ---------------------------------------------------------------------
    def holder(self) -> dict[str, Any]:
        return {"token": self.token, "by": self.by, "pid": os.getpid(), "stack": self.stack,
                "action": self.action, "since": now()}

    def take(self) -> None:
        outcome = self.executor.run(deploy_host.acquire_lock(self.holder()), become=True)
        if outcome.exit_code == deploy_host.LOCK_HELD_RC:
            held = _parse_holder(outcome.stdout.strip().splitlines()[-1] if outcome.stdout.strip() else "")
            raise HostLocked(refusal(held, self.executor.name, self.by), held)
        if not outcome.ok:
            raise HostError(f"cannot take the host lock {LOCK_PATH}: {outcome.error_line()}")
        self.taken = True
        self._hold_key = INTERRUPT.hold(f"{self.executor.name} lock", self._release_quietly)
        if self.result is not None:
            self.result.steps.append(StepResult("lock", "ok", f"host lock taken ({LOCK_PATH})"))

    def note(self, **details: Any) -> None:
        """Add fields to the audit line written on release (never secret values)."""
        self.details.update(details)

    def release(self, outcome: str | None = None) -> None:
        """Append the audit line, then release the lock (only ours). Safe to call more than once."""
        if not self.taken:
            return
        if outcome is None:
            failed = self.result is not None and any(s.status == "failed" for s in self.result.steps)
            outcome = "failed" if failed else "ok"
        entry = {"time": now(), "action": self.action, "stack": self.stack, "by": self.by, "run": self.token,
                 "result": outcome, **self.details}
        try:
            self.executor.run(deploy_host.append_audit(entry), become=True)
        finally:
            self._release_quietly()

    def _release_quietly(self) -> None:
        if not self.taken:
            return
        self.taken = False
        if self._hold_key is not None:
            INTERRUPT.drop(self._hold_key)
        self.executor.run(deploy_host.release_lock(self.token), become=True)


def _parse_holder(text: str) -> dict:
    try:
        held = json.loads(text)
    except ValueError:
        return {}
    return held if isinstance(held, dict) else {}


def refusal(held: dict, host: str, me: str | None = None) -> str:
    """The message of a refused run: who holds the lock, since when, and how to break it deliberately."""
    pid = held.get("pid", "?")
    gone = ""
    if me is not None and held.get("by") == me and isinstance(pid, int) and not _pid_alive(pid):
        gone = " (that process no longer runs on this machine)"
    return (f"another run holds the host lock {LOCK_PATH}: {held.get('by', '?')} ({held.get('action', 'deploy')} of "
            f"stack {held.get('stack', '?')}, pid {pid}){gone} since {held.get('since', '?')}; if that run is gone "
            f"(killed), break the lock deliberately: provision unlock -l {host} (with your -i)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- provision unlock ----------------------------------------------------------------------------
@dataclass
class Held:
    """What `read_holder` found: held or not, the holder file's exact text and its parsed fields."""

    held: bool
    text: str = ""
    holder: dict | None = None

    def describe(self) -> str:
        if not self.held:
            return "not locked"
        h = self.holder or {}
        if not h:
            return f"locked, holder unknown (holder file: {self.text[:200]!r})"
        return (f"locked by {h.get('by', '?')} ({h.get('action', 'deploy')} of stack {h.get('stack', '?')}, "
                f"pid {h.get('pid', '?')}) since {h.get('since', '?')}")


def read_holder(executor: Executor) -> Held:
    outcome = executor.run(deploy_host.read_lock(), become=True)
    if not outcome.ok:
        raise HostError(f"cannot read the host lock {LOCK_PATH}: {outcome.error_line()}")
    first, _, rest = outcome.stdout.partition("\n")
    if first.strip() != "held":
        return Held(False)
    text = rest.rstrip("\n")
    return Held(True, text, _parse_holder(text.strip().splitlines()[-1] if text.strip() else ""))


def break_lock(executor: Executor, seen: Held, *, reason: str = "provision unlock") -> StepResult:
    """Break the lock if it still holds exactly what the operator was shown; one audit line."""
    started = time.monotonic()
    if not seen.held:
        return StepResult("unlock", "ok", "not locked")
    outcome = executor.run(deploy_host.break_lock(seen.text), become=True)
    if outcome.exit_code == deploy_host.LOCK_CHANGED_RC:
        return StepResult("unlock", "failed", "the lock changed since it was shown (released, or taken by a new "
                          "run): nothing broken; run provision unlock again", time.monotonic() - started)
    if not outcome.ok:
        return StepResult("unlock", "failed", f"cannot break the lock: {outcome.error_line()}")
    entry = {"time": now(), "action": "unlock", "by": operator(), "reason": reason, "broke": seen.holder or seen.text}
    audit = executor.run(deploy_host.append_audit(entry), become=True)
    message = f"broke the lock of {seen.describe().removeprefix('locked by ')}"
    if not audit.ok:
        return StepResult("unlock", "failed", f"{message}, but the audit line failed: {audit.error_line()}")
    return StepResult("unlock", "changed", f"{message}; recorded in {AUDIT_LOG}", time.monotonic() - started)
