"""The host lock's sequencing with the recording executor (exact commands, in order): take → work → audit →
release on every exit path; a held lock refused before anything else runs; a failed or interrupted run
audited as such; lazy locks that cost nothing until the first change; `provision unlock` (read, then break
only what was shown). Driven through HostLock and the unlock work functions the CLI fans out."""

from __future__ import annotations

import json
import re

import pytest

from provision.commands import deploy_host
from provision.errors import HostError
from provision.executor.fake import RecordingExecutor
from provision.report import HostResult, StepResult
from provision.workflows import ops
from provision.workflows.host_lock import HostLock, HostLocked
from provision.interrupts import Interrupted
from tests.unit.workflow_support import BY, NOW, TOKEN, audit, drive, freeze_lock, release, take

OTHER = {"token": "feedfacecafe", "by": "ana@laptop", "pid": 4242, "stack": "ml", "action": "deploy",
         "since": "2026-12-01T09:00:00+0000"}
WORK = "echo the work"


@pytest.fixture(autouse=True)
def _frozen_lock(monkeypatch):
    freeze_lock(monkeypatch)


def held_by(holder: dict) -> RecordingExecutor:
    executor = RecordingExecutor("h1")
    executor.respond(re.escape(take("deploy", "ml")), stdout=json.dumps(holder) + "\n",
                     exit_code=deploy_host.LOCK_HELD_RC)
    return executor


def test_take_work_audit_release_in_that_order():
    ex, result = RecordingExecutor("h1"), HostResult("h1")
    with HostLock(ex, "deploy", stack="ml", result=result) as lock:
        ex.run(WORK)
        lock.note(services=["web"])
    assert ex.shells == [take("deploy", "ml"), WORK, audit("deploy", "ok", "ml", services=["web"]), release()]
    assert all(become for shell, become in ex.commands if shell != WORK)
    assert [(s.name, s.status) for s in result.steps] == [("lock", "ok")]


def test_a_run_id_is_the_token_shared_by_the_runs_hosts():
    ex = RecordingExecutor("h1")
    with HostLock(ex, "deploy", stack="ml", run_id="run42"):
        pass
    assert ex.shells == [take("deploy", "ml", token="run42"), audit("deploy", "ok", "ml", token="run42"),
                         release("run42")]


def test_a_held_lock_is_refused_naming_the_holder_and_nothing_else_runs():
    ex = held_by(OTHER)
    with pytest.raises(HostLocked) as refused:
        with HostLock(ex, "deploy", stack="ml"):
            ex.run(WORK)
    assert ex.shells == [take("deploy", "ml")]  # no work, no audit line, and never a release of theirs
    assert refused.value.holder == OTHER
    assert "ana@laptop (deploy of stack ml, pid 4242) since 2026-12-01T09:00:00+0000" in str(refused.value)
    assert "provision unlock -l h1" in str(refused.value)


def test_a_lock_that_cannot_be_taken_for_another_reason_is_a_host_error():
    ex = RecordingExecutor("h1")
    ex.respond(re.escape(take("deploy", "ml")), exit_code=1, stderr="mkdir: cannot create directory: Read-only file system")
    with pytest.raises(HostError, match="cannot take the host lock .*Read-only file system"):
        with HostLock(ex, "deploy", stack="ml"):
            ex.run(WORK)
    assert ex.shells == [take("deploy", "ml")]


def test_an_exception_midway_is_audited_as_failed_and_the_lock_is_released():
    ex = RecordingExecutor("h1")
    with pytest.raises(RuntimeError):
        with HostLock(ex, "deploy", stack="ml"):
            ex.run(WORK)
            raise RuntimeError("boom")
    assert ex.shells == [take("deploy", "ml"), WORK, audit("deploy", "failed", "ml"), release()]


def test_a_failed_step_in_the_report_makes_the_audit_result_failed():
    ex, result = RecordingExecutor("h1"), HostResult("h1")
    with HostLock(ex, "deploy", stack="ml", result=result):
        result.steps.append(StepResult("web", "failed", "unhealthy"))
    assert ex.shells == [take("deploy", "ml"), audit("deploy", "failed", "ml"), release()]


def test_an_interrupt_is_audited_as_interrupted_and_the_lock_is_released():
    ex = RecordingExecutor("h1")
    with pytest.raises(Interrupted):
        with HostLock(ex, "deploy", stack="ml"):
            raise Interrupted("interrupted by the operator")
    assert ex.shells == [take("deploy", "ml"), audit("deploy", "interrupted", "ml"), release()]


def test_a_lazy_lock_costs_nothing_until_the_first_change_and_is_taken_once():
    ex = RecordingExecutor("h1")
    with HostLock(ex, "docker install", lazy=True):
        pass
    assert ex.shells == []
    with HostLock(ex, "docker install", lazy=True) as lock:
        lock.ensure()
        ex.run(WORK)
        lock.ensure()
    assert ex.shells == [take("docker install"), WORK, audit("docker install"), release()]


def test_released_midway_and_taken_again_as_around_a_reboot():
    ex = RecordingExecutor("h1")
    with HostLock(ex, "nvidia install", lazy=True) as lock:
        lock.ensure()
        lock.release()
        ex.run(WORK)
        lock.ensure()
    assert ex.shells == [take("nvidia install"), audit("nvidia install"), release(), WORK,
                         take("nvidia install"), audit("nvidia install"), release()]


def test_a_refused_lock_through_fan_out_fails_that_host_with_the_refusal():
    ex = held_by(OTHER)

    def work(target, executor):
        with HostLock(executor, "deploy", stack="ml"):
            executor.run(WORK)
        return HostResult(target.name)

    result = drive("deploy", work, ex)
    assert result.status == "failed" and "another run holds the host lock" in result.steps[-1].message
    assert ex.shells == [take("deploy", "ml")]


# -- provision unlock ---------------------------------------------------------------------------
def test_unlock_reads_the_holder_then_breaks_exactly_what_was_shown_and_audits_it():
    text = json.dumps(OTHER, sort_keys=True)
    reader = RecordingExecutor("h1")
    reader.respond(re.escape(deploy_host.read_lock()), stdout=f"held\n{text}\n")
    seen = drive("unlock", ops.lock_holder_work, reader)
    assert reader.shells == [deploy_host.read_lock()]
    assert seen.extra["lock"] == {"held": True, "holder": OTHER, "text": text}

    breaker = RecordingExecutor("h1")
    result = drive("unlock", ops.unlock_work({"h1": seen.extra["lock"]}), breaker)
    assert breaker.shells == [deploy_host.break_lock(text), deploy_host.append_audit(
        {"time": NOW, "action": "unlock", "by": BY, "reason": "provision unlock", "broke": OTHER})]
    assert result.steps[-1].status == "changed" and "broke the lock of ana@laptop" in result.steps[-1].message


def test_unlock_of_a_lock_that_changed_since_it_was_shown_breaks_nothing_and_audits_nothing():
    text = json.dumps(OTHER, sort_keys=True)
    ex = RecordingExecutor("h1")
    ex.respond(re.escape(deploy_host.break_lock(text)), exit_code=deploy_host.LOCK_CHANGED_RC)
    result = drive("unlock", ops.unlock_work({"h1": {"held": True, "holder": OTHER, "text": text}}), ex)
    assert ex.shells == [deploy_host.break_lock(text)]
    assert result.status == "failed" and "the lock changed since it was shown" in result.steps[-1].message


def test_unlock_of_a_free_lock_runs_nothing():
    ex = RecordingExecutor("h1")
    reader = RecordingExecutor("h1")
    reader.respond(re.escape(deploy_host.read_lock()), stdout="free\n")
    seen = drive("unlock", ops.lock_holder_work, reader)
    result = drive("unlock", ops.unlock_work({"h1": seen.extra["lock"]}), ex)
    assert ex.shells == [] and result.steps[-1].message == "not locked"


def test_the_frozen_token_is_the_one_the_lock_uses():
    ex = RecordingExecutor("h1")
    assert HostLock(ex, "x").token == TOKEN
