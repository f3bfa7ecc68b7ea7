"""Run one per-host workflow on many hosts in parallel (bounded by --forks).

One failing or unreachable host never stops the others. Each host gets one executor (one SSH
connection, opened lazily and reused by every step), closed on every exit path. A command with
several phases (a deploy: the GPU precheck, then the deploy itself, the relay's commands on a seed
host from another host's thread) shares one executor per host across them all (`SharedExecutors`),
so each host sees one SSH connection per run.

Interrupts: see provision.interrupts (no queued host starts after the first Ctrl-C).
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Protocol

from provision import progress as progress_events
from provision.errors import HostError, HostUnreachable
from provision.executor.base import Executor
from provision.executor.known_hosts import KnownHosts
from provision.secret import Secret
from provision.report import HostResult, Report, StepResult
from provision.interrupts import INTERRUPT, NOT_STARTED, Interrupted
from provision.workflows.targets import Target

HostWork = Callable[[Target, Executor], HostResult]


class Progress(Protocol):
    def host_started(self, name: str) -> None: ...
    def host_finished(self, result: HostResult) -> None: ...


class SilentProgress:
    """A Progress that shows nothing (a phase inside a command that has its own progress)."""

    def host_started(self, name: str) -> None:
        pass

    def step(self, host: str, name: str) -> None:
        pass

    def update(self, host: str, update) -> None:
        pass

    def host_finished(self, result: HostResult) -> None:
        pass


@dataclass
class RunOptions:
    forks: int = 10
    check: bool = False
    known_hosts: KnownHosts = field(default_factory=KnownHosts)
    become_password: Secret | None = None
    progress: Progress = field(default_factory=SilentProgress)


def make_executor(target: Target, options: RunOptions) -> Executor:
    if target.settings.connection == "local":
        from provision.executor.local import LocalExecutor

        return LocalExecutor(target.name, target.settings.become_user, target.settings.timeouts.command)
    from provision.executor.ssh import SSHExecutor

    return SSHExecutor(target.settings, options.known_hosts, become_password=options.become_password)


def run_on_host(target: Target, work: HostWork, options: RunOptions,
                executor_factory: Callable[[Target, RunOptions], Executor] = make_executor) -> HostResult:
    if INTERRUPT.requested:  # queued when the operator interrupted: never started
        result = HostResult(target.name, skipped=NOT_STARTED)
        options.progress.host_finished(result)
        return result
    options.progress.host_started(target.name)
    executor = executor_factory(target, options)
    try:  # the workflow's progress events (provision.progress) go to this run's progress display
        with progress_events.reporting(options.progress, target.name) as host_progress:
            host_progress.step("connecting")
            result = work(target, executor)
    except Interrupted as exc:
        result = HostResult(target.name, steps=[StepResult("interrupted", "failed", str(exc))])
    except HostUnreachable as exc:
        result = HostResult(target.name, unreachable=str(exc))
    except HostError as exc:
        result = HostResult(target.name, steps=[StepResult("error", "failed", str(exc))])
    except Exception as exc:  # a bug or an unexpected remote condition: fail this host, keep going
        result = HostResult(target.name, steps=[StepResult("error", "failed", f"{type(exc).__name__}: {exc}")])
    finally:
        executor.close()
    _note_recorded_keys(result, executor)
    options.progress.host_finished(result)
    return result


def _note_recorded_keys(result: HostResult, executor: Executor) -> None:
    """Say so in the report when this run recorded a host key for the first time (TOFU); each note once,
    in the first result after it was recorded (an executor shared by several phases keeps its list)."""
    notes = getattr(executor, "host_key_notes", None) or []
    for note in reversed(notes):
        result.steps.insert(0, StepResult("host key", "ok", note))
    del notes[:]


class SharedExecutors:
    """One executor per host for a whole command, shared by its fan-outs and threads.

    `factory` is a fan_out executor_factory: it hands out a lease on the host's one executor (made on the
    first lease; no I/O until it is used), and the lease's close() releases it. The executor is closed when
    its last lease is released, unless more leases are announced (`expect`: the GPU precheck's and
    the deploy's) or the host is pinned (`pin`: a relay seed, whose executor other hosts' threads use to
    add and remove their temporary keys); `close()` closes whatever is left. Executors are used from
    several threads at once: SSHExecutor opens a channel per command on its one transport (paramiko
    opens channels thread-safely); LocalExecutor and the recording fake keep no per-command state.
    `made` counts the executors made per host: 1 each when sharing works (tests read it)."""

    def __init__(self, targets: list[Target], options: RunOptions,
                 make: Callable[[Target, RunOptions], Executor] = make_executor) -> None:
        self.targets = {t.name: t for t in targets}
        self.options = options
        self.make = make
        self.made: Counter = Counter()
        self._lock = threading.Lock()
        self._executors: dict[str, Executor] = {}
        self._users: Counter = Counter()
        self._expected: Counter = Counter()
        self._pinned: set[str] = set()

    def factory(self, target: Target, options: RunOptions) -> Executor:
        with self._lock:
            self.targets.setdefault(target.name, target)
        return self.lease(target.name)

    def lease(self, name: str) -> Executor:
        """A lease on host NAME's executor (KeyError for a host this command does not touch)."""
        with self._lock:
            executor = self._executors.get(name)
            if executor is None:
                executor = self._executors[name] = self.make(self.targets[name], self.options)
                self.made[name] += 1
            self._users[name] += 1
            if self._expected[name]:
                self._expected[name] -= 1
        return _Lease(self, name, executor)

    def expect(self, name: str, leases: int = 1) -> None:
        """NAME's executor stays open until `leases` more leases have been taken (then closes when the last is
        released): a command with two phases on a host expects 2."""
        with self._lock:
            self._expected[name] += leases

    def pin(self, name: str) -> None:
        """NAME's executor stays open until close()."""
        with self._lock:
            self._pinned.add(name)

    def release(self, name: str) -> None:
        with self._lock:
            self._users[name] -= 1
            if self._users[name] > 0 or self._expected[name] > 0 or name in self._pinned:
                return
            executor = self._executors.pop(name, None)
        if executor is not None:
            executor.close()

    def close(self) -> None:
        with self._lock:
            executors = list(self._executors.values())
            self._executors.clear()
            self._pinned.clear()
            self._expected.clear()
        for executor in executors:
            executor.close()

    def __enter__(self) -> SharedExecutors:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Lease:
    """A host's shared executor as one user sees it: close() gives it back (once)."""

    def __init__(self, owner: SharedExecutors, name: str, executor: Executor) -> None:
        self._owner, self.name, self.executor = owner, name, executor
        self._released = False

    def run(self, command, *, become: bool = False, timeout: float | None = None):
        return self.executor.run(command, become=become, timeout=timeout)

    def open(self) -> None:
        self.executor.open()

    def put(self, data: bytes, path: str, *, mode: int = 0o600) -> None:
        self.executor.put(data, path, mode=mode)

    def ssh_transport(self):
        return self.executor.ssh_transport()

    def __getattr__(self, attr: str):  # settings, host_key_notes, round_trips...: the executor's
        return getattr(self.executor, attr)

    def close(self) -> None:
        if not self._released:
            self._released = True
            self._owner.release(self.name)


def fan_out(command: str, targets: list[Target], work: HostWork, options: RunOptions,
            executor_factory: Callable[[Target, RunOptions], Executor] = make_executor, *,
            executors: SharedExecutors | None = None) -> Report:
    """Every target's `work` in parallel; with `executors`, each host's executor comes from it (and stays
    open when it is shared beyond this fan-out)."""
    if executors is not None:
        executor_factory = executors.factory
    report = Report(command)
    if not targets:
        return report
    results: dict[str, HostResult] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(options.forks, len(targets))))
    with INTERRUPT.graceful():
        try:
            futures = {pool.submit(run_on_host, t, work, options, executor_factory): t for t in targets}
            for future in as_completed(futures):
                result = future.result()
                results[result.name] = result
        except KeyboardInterrupt:  # the second signal: release what hosts hold (bounded), exit at once
            pool.shutdown(wait=False, cancel_futures=True)
            INTERRUPT.release_held()
            raise
    pool.shutdown(wait=True)
    for target in targets:  # inventory order, whatever order they finished in
        report.add(results[target.name])
    return report
