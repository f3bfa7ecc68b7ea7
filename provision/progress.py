"""Progress events: what a host is doing now, for the live display. No rendering here (no rich).

A workflow says "this host is now at step S" (`step`) and, for long steps, how far it is (`update`:
done/total in a unit — bytes, seconds, attempts — and a short detail). The events go to the reporter
bound to the current thread by `reporting` (fan_out binds one per host); without one they go nowhere,
so workflows call these functions unconditionally and unit tests need no set-up.

`current()` returns a `Handle` (reporter + host) for code that reports from another thread (the
shipping tunnel's byte counter): contextvars do not cross threads, the handle does.

Reporters are called from many host threads at once: they must be thread-safe (render.LiveProgress is).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Iterator, Protocol


@dataclass(frozen=True)
class Update:
    """How far a long step is. `done`/`total` in `unit` ("B" bytes, "s" seconds, "" a count such as
    attempts or packages); any of them may be None (unknown). `detail`: a few words (what is awaited)."""

    done: float | None = None
    total: float | None = None
    unit: str = ""
    detail: str = ""


class Reporter(Protocol):
    def step(self, host: str, name: str) -> None: ...
    def update(self, host: str, update: Update) -> None: ...


class NullReporter:
    def step(self, host: str, name: str) -> None:
        pass

    def update(self, host: str, update: Update) -> None:
        pass


NULL = NullReporter()


@dataclass(frozen=True)
class Handle:
    """Progress of one host, usable from any thread."""

    reporter: Reporter
    host: str

    def step(self, name: str) -> None:
        self.reporter.step(self.host, name)

    def update(self, done: float | None = None, total: float | None = None, unit: str = "", detail: str = "") -> None:
        self.reporter.update(self.host, Update(done, total, unit, detail))


_current: contextvars.ContextVar[Handle] = contextvars.ContextVar("provision_progress", default=Handle(NULL, ""))


@contextlib.contextmanager
def reporting(reporter: object, host: str) -> Iterator[Handle]:
    """Within the block (in this thread), `step`/`update` report `host`'s progress to `reporter`. An
    object without step/update methods (a caller's own minimal progress) reports nowhere."""
    if not (callable(getattr(reporter, "step", None)) and callable(getattr(reporter, "update", None))):
        reporter = NULL
    handle = Handle(reporter, host)  # type: ignore[arg-type]
    token = _current.set(handle)
    try:
        yield handle
    finally:
        _current.reset(token)


def current() -> Handle:
    return _current.get()


def step(name: str) -> None:
    """The current host is now at step `name`."""
    current().step(name)


def update(done: float | None = None, total: float | None = None, unit: str = "", detail: str = "") -> None:
    """How far the current host's step is (see Update)."""
    current().update(done, total, unit, detail)
