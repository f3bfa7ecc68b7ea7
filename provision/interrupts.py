"""Ctrl-C and SIGTERM during a multi-host command: stop cleanly, lose nothing, say what happened.

The CLI installs `INTERRUPT`'s handlers once (`INTERRUPT.install()`).
While a fan-out runs in the main thread, the first signal only *requests* a stop: no queued host
starts (each is reported "not started: interrupted"), hosts in flight stop at their next step
boundary (workflows ask `INTERRUPT.requested` / `INTERRUPT.check()`), so their `finally` blocks
release what they hold (host locks, `NAME.next` containers), and the CLI exits 128+signal (130 for
SIGINT, 143 for SIGTERM) after the partial report. A second signal raises KeyboardInterrupt in the
main thread: the fan-out releases what is still registered with `INTERRUPT.hold()` (host locks,
rollouts in flight: NAME.next removed, the old container back; best effort, in parallel, bounded by
RELEASE_TIMEOUT_S) and the CLI exits at once. Outside a fan-out nothing on a host is
held, and a signal raises KeyboardInterrupt straight away.

Light on imports on purpose: the CLI installs the handlers before any heavy module is loaded.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Callable

from provision.errors import HostError

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
        self.signum: int | None = None  # the signal that requested a graceful stop
        self.raised: int | None = None  # the last signal turned into KeyboardInterrupt
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
        self.raised = signum  # not a requested stop: whoever catches KeyboardInterrupt decides (logs -f: done)
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
