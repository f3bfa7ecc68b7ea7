"""Run one per-host workflow on many hosts in parallel (bounded by --forks).

One failing or unreachable host never stops the others. Each host gets one executor (one SSH
connection, opened lazily and reused by every step), closed on every exit path.

Interrupts (Ctrl-C, SIGTERM). The CLI installs `INTERRUPT`'s handlers once (`INTERRUPT.install()`).
While a fan-out runs in the main thread, the first signal only *requests* a stop: no queued host
starts (each is reported "not started: interrupted"), hosts in flight stop at their next step
boundary (workflows ask `INTERRUPT.requested` / `INTERRUPT.check()`), so their `finally` blocks
release what they hold (host locks, `NAME.next` containers), and the CLI exits 128+signal (130 for
SIGINT, 143 for SIGTERM) after the partial report. A second signal raises KeyboardInterrupt in the
main thread: the fan-out releases what is still registered with `INTERRUPT.hold()` (best effort,
bounded by RELEASE_TIMEOUT_S) and the CLI exits at once. Outside a fan-out nothing on a host is
held, and a signal raises KeyboardInterrupt straight away.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Protocol

from provision.errors import HostError, HostUnreachable
from provision.executor.base import Executor
from provision.executor.known_hosts import DEFAULT_PATH, KnownHosts
from provision.executor.secret import Secret
from provision.report import HostResult, Report, StepResult
from provision.workflows.targets import Target

HostWork = Callable[[Target, Executor], HostResult]

NOT_STARTED = "not started: interrupted"
RELEASE_TIMEOUT_S = 10.0


class Interrupted(HostError):
    """Raised at a step boundary of a host in flight after the first Ctrl-C/SIGTERM."""


class Interrupt:
    """The process's interrupt state (signals are process-wide, so there is one: INTERRUPT)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.signum: int | None = None
        self.count = 0
        self._event = threading.Event()
        self._graceful = 0  # > 0 while a fan-out runs in the main thread
        self._held: dict[int, tuple[str, Callable[[], None]]] = {}
        self._next_key = 0

    # -- signals ---------------------------------------------------------------------------
    def install(self) -> None:
        """SIGINT and SIGTERM go through `handle` (call from the main thread, once, at the CLI boundary)."""
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)

    def handle(self, signum: int, frame=None) -> None:
        self.count += 1
        if self.count == 1 and self._graceful:
            self.request(signum)
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            sys.stderr.write(f"provision: {name}: starting no other host; hosts in flight stop at their next step "
                             "and release what they hold (press Ctrl-C again to exit at once)\n")
            sys.stderr.flush()
            return
        self.signum = self.signum or signum
        raise KeyboardInterrupt

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask every host in flight to stop at its next step boundary (what the first signal does)."""
        self.signum = self.signum or signum
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def check(self, where: str = "") -> None:
        """A step boundary: raise Interrupted when a stop was requested."""
        if self._event.is_set():
            raise Interrupted(f"interrupted{' before ' + where if where else ''}")

    @property
    def exit_code(self) -> int | None:
        """128 + the signal (130 SIGINT, 143 SIGTERM) once one arrived, else None."""
        return 128 + self.signum if self.signum else None

    # -- what hosts hold, for a second signal ----------------------------------------------------
    def hold(self, what: str, release: Callable[[], None]) -> int:
        """Register a release to run if the process must exit at once; returns a key for `drop`."""
        with self._lock:
            self._next_key += 1
            self._held[self._next_key] = (what, release)
            return self._next_key

    def drop(self, key: int) -> None:
        with self._lock:
            self._held.pop(key, None)

    def release_held(self, timeout: float = RELEASE_TIMEOUT_S) -> list[str]:
        """Run every registered release in parallel, waiting at most `timeout` seconds in all;
        returns what could not be released in time."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        threads = []
        for what, release in held:
            thread = threading.Thread(target=_quietly, args=(release,), name=f"release {what}", daemon=True)
            thread.start()
            threads.append((what, thread))
        deadline = time.monotonic() + timeout
        for _, thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [what for what, thread in threads if thread.is_alive()]

    class _Graceful:
        def __init__(self, owner: "Interrupt") -> None:
            self.owner = owner
            self.active = threading.current_thread() is threading.main_thread()

        def __enter__(self):
            if self.active:
                self.owner._graceful += 1

        def __exit__(self, *exc):
            if self.active:
                self.owner._graceful -= 1

    def graceful(self) -> "Interrupt._Graceful":
        """While inside (in the main thread), a first signal requests a stop instead of raising."""
        return Interrupt._Graceful(self)


def _quietly(release: Callable[[], None]) -> None:
    try:
        release()
    except Exception:  # best effort: the process is exiting at the operator's request
        pass


INTERRUPT = Interrupt()


class Progress(Protocol):
    def host_started(self, name: str) -> None: ...
    def host_finished(self, result: HostResult) -> None: ...


class _Silent:
    def host_started(self, name: str) -> None:
        pass

    def host_finished(self, result: HostResult) -> None:
        pass


@dataclass
class RunOptions:
    forks: int = 10
    check: bool = False
    known_hosts: KnownHosts = field(default_factory=lambda: KnownHosts(DEFAULT_PATH))
    become_password: Secret | None = None
    progress: Progress = field(default_factory=_Silent)


def make_executor(target: Target, options: RunOptions) -> Executor:
    if target.settings.connection == "local":
        from provision.executor.local import LocalExecutor

        return LocalExecutor(target.name, target.settings.become_user)
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
    try:
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


def timed_step(name: str, fn: Callable[[], tuple[str, str]]) -> StepResult:
    """Run fn() -> (status, message) and time it."""
    start = time.monotonic()
    status, message = fn()
    return StepResult(name, status, message, time.monotonic() - start)  # type: ignore[arg-type]
