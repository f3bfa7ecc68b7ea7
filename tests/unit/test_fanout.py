import threading

from provision.config.connection import connection_settings
from provision.errors import HostUnreachable
from provision.executor.fake import RecordingExecutor
from provision.report import HostResult, StepResult
from provision.workflows.adhoc import run_command
from provision.workflows.fanout import RunOptions, fan_out
from provision.workflows.targets import Target


def _targets(*names):
    return [Target(n, connection_settings(n, {"ansible_user": "root"}), {}) for n in names]


def test_one_unreachable_or_crashing_host_never_stops_the_others():
    def work(target, executor):
        if target.name == "down":
            raise HostUnreachable("connection refused by down:22")
        if target.name == "buggy":
            raise KeyError("boom")
        executor.run("true")
        return HostResult(target.name, steps=[StepResult("s", "ok")])

    report = fan_out("t", _targets("a", "down", "buggy", "b"), work, RunOptions(),
                     executor_factory=lambda t, o: RecordingExecutor(t.name))
    assert list(report.hosts) == ["a", "down", "buggy", "b"]  # inventory order
    assert [r.status for r in report.hosts.values()] == ["ok", "unreachable", "failed", "ok"]
    assert report.hosts["buggy"].message == "error: KeyError: 'boom'"
    assert report.exit_code() == 2


def test_forks_bound_parallelism():
    running, peak, lock = 0, 0, threading.Lock()
    first_three = threading.Barrier(3, timeout=10)  # the first 3 hosts wait until all 3 run at once
    arrived = 0

    def work(target, executor):
        nonlocal running, peak, arrived
        with lock:
            running += 1
            peak = max(peak, running)
            arrived += 1
            wait = arrived <= 3
        if wait:
            first_three.wait()
        with lock:
            running -= 1
        return HostResult(target.name)

    fan_out("t", _targets(*[f"h{i}" for i in range(8)]), work, RunOptions(forks=3),
            executor_factory=lambda t, o: RecordingExecutor(t.name))
    assert peak == 3


def test_adhoc_run_reports_output_and_skips_in_check_mode():
    fake = RecordingExecutor("a")
    fake.respond("^hostname$", stdout="a\n")
    result = run_command("hostname", become=False, check=False)(_targets("a")[0], fake)
    assert (result.status, result.extra) == ("changed", {"rc": 0, "stdout": "a\n", "stderr": ""})
    fake = RecordingExecutor("a")
    result = run_command("rm -rf /srv", become=False, check=True)(_targets("a")[0], fake)
    assert result.status == "skipped" and fake.commands == []
