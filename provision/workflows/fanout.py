"""Run one per-host workflow on many hosts in parallel (bounded by --forks).

One failing or unreachable host never stops the others. Each host gets one executor (one SSH
connection, opened lazily and reused by every step), closed on every exit path.

Interrupts: see provision.interrupts (no queued host starts after the first Ctrl-C).
"""

from __future__ import annotations

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
    """Say so in the report when this run recorded a host key for the first time (TOFU)."""
    for note in reversed(getattr(executor, "host_key_notes", [])):
        result.steps.insert(0, StepResult("host key", "ok", note))


def fan_out(command: str, targets: list[Target], work: HostWork, options: RunOptions,
            executor_factory: Callable[[Target, RunOptions], Executor] = make_executor) -> Report:
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
