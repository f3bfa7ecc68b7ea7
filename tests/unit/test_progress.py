"""Progress events (provision.progress): fan_out binds each host's thread to the run's reporter; without
one, events go nowhere; a handle carries a host's progress into another thread (the shipping tunnel)."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from provision import progress
from provision.cli.render import LiveProgress
from provision.config.connection import connection_settings
from provision.executor.fake import RecordingExecutor
from provision.progress import Update
from provision.report import HostResult, StepResult
from provision.workflows.fanout import RunOptions, fan_out
from provision.workflows.targets import Target


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.lock = threading.Lock()

    def host_started(self, name):
        with self.lock:
            self.events.append(("started", name))

    def host_finished(self, result):
        with self.lock:
            self.events.append(("finished", result.name))

    def step(self, host, name):
        with self.lock:
            self.events.append(("step", host, name))

    def update(self, host, update):
        with self.lock:
            self.events.append(("update", host, update))


def _targets(*names):
    return [Target(n, connection_settings(n, {"ansible_user": "root"}), {}) for n in names]


def test_fan_out_sends_each_hosts_events_to_the_runs_reporter():
    def work(target, executor):
        progress.step("copy")
        progress.update(10, 20, "B", "shipping")
        handle = progress.current()
        other = threading.Thread(target=lambda: handle.update(20, 20, "B", "shipping"))  # another thread
        other.start()
        other.join()
        return HostResult(target.name, steps=[StepResult("copy", "changed")])

    recorder = Recorder()
    fan_out("t", _targets("a", "b", "c"), work, RunOptions(forks=3, progress=recorder),
            executor_factory=lambda t, o: RecordingExecutor(t.name))
    for host in ("a", "b", "c"):
        mine = [e for e in recorder.events if e[1] == host]
        assert mine == [("started", host), ("step", host, "connecting"), ("step", host, "copy"),
                        ("update", host, Update(10, 20, "B", "shipping")),
                        ("update", host, Update(20, 20, "B", "shipping")), ("finished", host)]


def test_without_a_reporter_events_go_nowhere():
    progress.step("anything")  # no error, nothing bound
    progress.update(1, 2)
    assert progress.current().host == ""

    class Minimal:  # a caller's own Progress without step/update
        def host_started(self, name):
            pass

        def host_finished(self, result):
            pass

    report = fan_out("t", _targets("a"), lambda t, e: (progress.step("x"), HostResult(t.name))[1],
                     RunOptions(progress=Minimal()), executor_factory=lambda t, o: RecordingExecutor(t.name))
    assert report.hosts["a"].status == "ok"


def test_live_progress_frame_shows_the_running_step_bytes_and_rate():
    now = [0.0]
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    live = LiveProgress(console, "deploy", 2, names=["web1", "web2"], clock=lambda: now[0])
    live.host_started("web1")
    live.step("web1", "image app:1")
    live.update("web1", Update(0, None, "B", "shipping"))
    now[0] = 2.0
    live.update("web1", Update(4 * 1024 * 1024, None, "B", "shipping"))
    console.print(live.frame())
    shown = console.file.getvalue()
    assert "web1 image app:1" in shown and "shipping, 4.0 MiB, 2.0 MiB/s" in shown and "2.0s" in shown
    assert "web2 waiting" in shown
    assert console.file.getvalue().count("\n") == 2  # a line per host
