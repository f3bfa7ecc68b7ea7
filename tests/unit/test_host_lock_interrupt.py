"""The host lock (take/refuse/release/audit, unlock) and the fan-out's interrupt handling, with the
recording executor: the exact commands in order."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

from provision.commands import deploy_host
from provision.config.connection import connection_settings
from provision.executor.fake import RecordingExecutor
from provision.report import HostResult, StepResult
from provision.workflows import host_lock
from provision.workflows.fanout import RunOptions, fan_out
from provision.workflows.host_lock import Held, HostLock, HostLocked, break_lock, read_holder
from provision.interrupts import INTERRUPT, NOT_STARTED
from provision.workflows.targets import Target


@pytest.fixture(autouse=True)
def fresh_interrupt():
    INTERRUPT.reset()
    yield
    INTERRUPT.reset()


def _targets(*names):
    return [Target(n, connection_settings(n, {"ansible_user": "root"}), {}) for n in names]


def test_with_takes_then_audits_then_releases_only_its_own_lock():
    fake = RecordingExecutor("h1")
    result = HostResult("h1")
    with HostLock(fake, "docker install", run_id="tok1", result=result) as lock:
        lock.note(packages=["docker-ce"])
    commands = [c for c, _ in fake.commands]
    assert commands[0].startswith("mkdir -p /var/lib/provision && if mkdir /var/lib/provision/deploy.lock")
    assert '"action": "docker install"' in commands[0] and '"token": "tok1"' in commands[0]
    assert commands[1].startswith("mkdir -p /var/log/provision && ( umask 077; printf")
    audit = json.loads(commands[1].split("printf '%s\\n' '", 1)[1].rsplit("' >>", 1)[0])
    assert (audit["action"], audit["result"], audit["packages"], audit["run"]) == ("docker install", "ok", ["docker-ce"], "tok1")
    assert commands[2] == deploy_host.release_lock("tok1")
    assert all(become for _, become in fake.commands)
    assert [s.name for s in result.steps] == ["lock"]


def test_an_exception_inside_is_audited_as_failed_and_still_releases():
    fake = RecordingExecutor("h1")
    with pytest.raises(KeyError):
        with HostLock(fake, "prune", run_id="tok2"):
            raise KeyError("boom")
    assert '"result": "failed"' in fake.commands[1][0]
    assert fake.commands[2][0] == deploy_host.release_lock("tok2")


def test_a_held_lock_is_refused_naming_the_holder_and_how_to_break_it():
    fake = RecordingExecutor("h1")
    holder = {"by": "ana@laptop", "pid": 4242, "stack": "ml", "action": "deploy", "since": "2026-11-22T10:00:00+0000"}
    fake.respond("mkdir /var/lib/provision/deploy.lock", stdout=json.dumps(holder) + "\n",
                 exit_code=deploy_host.LOCK_HELD_RC)
    with pytest.raises(HostLocked) as raised:
        with HostLock(fake, "deploy", stack="ml"):
            pytest.fail("must not run")
    message = str(raised.value)
    assert "ana@laptop (deploy of stack ml, pid 4242) since 2026-11-22T10:00:00+0000" in message
    assert "provision unlock -l h1" in message and "no longer runs" not in message
    assert len(fake.commands) == 1  # nothing else: never broken silently


def test_a_refusal_says_when_the_holder_process_is_gone_from_this_machine():
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    holder = {"by": host_lock.operator(), "pid": dead, "stack": "ml", "action": "deploy", "since": "x"}
    assert "(that process no longer runs on this machine)" in host_lock.refusal(holder, "h1", host_lock.operator())
    alive = dict(holder, pid=os.getpid())
    assert "no longer runs" not in host_lock.refusal(alive, "h1", host_lock.operator())


def test_unlock_reads_then_breaks_only_what_was_shown_and_audits_it():
    fake = RecordingExecutor("h1")
    text = json.dumps({"by": "ana@laptop", "pid": 7, "stack": "ml", "action": "deploy", "since": "t", "token": "k"})
    fake.respond(r"^if \[ -d /var/lib/provision/deploy.lock \]; then echo held", stdout=f"held\n{text}\n")
    held = read_holder(fake)
    assert held.held and held.holder["pid"] == 7 and held.text == text
    assert held.describe() == "locked by ana@laptop (deploy of stack ml, pid 7) since t"
    step = break_lock(fake, held)
    assert step.status == "changed" and "ana@laptop" in step.message
    assert fake.commands[1][0] == deploy_host.break_lock(text)
    audit = fake.commands[2][0]
    assert '"action": "unlock"' in audit and '"broke": {' in audit and '"pid": 7' in audit


def test_unlock_refuses_when_the_lock_changed_since_it_was_shown():
    fake = RecordingExecutor("h1")
    fake.respond("rm -rf /var/lib/provision/deploy.lock", exit_code=deploy_host.LOCK_CHANGED_RC)
    step = break_lock(fake, Held(True, '{"pid": 1}', {"pid": 1}))
    assert step.status == "failed" and "changed since it was shown" in step.message
    assert len(fake.commands) == 1  # no audit line for a break that did not happen
    assert break_lock(RecordingExecutor("h2"), Held(False)).message == "not locked"


def test_after_an_interrupt_no_queued_host_starts_and_in_flight_hosts_finish():
    started: list[str] = []
    in_flight = threading.Event()
    release = threading.Event()

    def work(target, executor):
        started.append(target.name)
        if target.name == "a":
            in_flight.set()
            release.wait(5)
            INTERRUPT.check("next step")  # a step boundary
        return HostResult(target.name, steps=[StepResult("s", "ok")])

    def interrupt_when_a_runs():
        in_flight.wait(5)
        INTERRUPT.request(signal.SIGTERM)
        release.set()

    threading.Thread(target=interrupt_when_a_runs).start()
    report = fan_out("t", _targets("a", "b", "c"), work, RunOptions(forks=1),
                     executor_factory=lambda t, o: RecordingExecutor(t.name))
    assert started == ["a"]
    assert report.hosts["a"].status == "failed" and report.hosts["a"].message == "interrupted: interrupted before next step"
    assert [report.hosts[h].message for h in ("b", "c")] == [NOT_STARTED, NOT_STARTED]
    assert INTERRUPT.exit_code == 143


def test_first_signal_in_a_fan_out_requests_a_stop_the_second_raises():
    with INTERRUPT.graceful():
        INTERRUPT.handle(signal.SIGINT)
        assert INTERRUPT.requested and INTERRUPT.exit_code == 130
        with pytest.raises(KeyboardInterrupt):
            INTERRUPT.handle(signal.SIGINT)
    INTERRUPT.reset()
    with pytest.raises(KeyboardInterrupt):  # outside a fan-out nothing is held on a host: stop at once
        INTERRUPT.handle(signal.SIGTERM)
    assert INTERRUPT.exit_code is None and INTERRUPT.raised == signal.SIGTERM  # `logs -f` decides its own code


def test_a_second_signal_releases_what_hosts_hold_within_a_bound():
    released: list[str] = []
    INTERRUPT.hold("h1 lock", lambda: released.append("h1"))
    key = INTERRUPT.hold("h2 lock", lambda: released.append("h2"))
    INTERRUPT.drop(key)
    INTERRUPT.hold("stuck", lambda: threading.Event().wait(5))
    assert INTERRUPT.release_held(timeout=0.2) == ["stuck"]
    assert released == ["h1"]


def test_folder_archive_drops_special_bits_and_refuses_symlinks_out_of_the_folder(tmp_path):
    import io
    import tarfile

    from provision.errors import InputError
    from provision.deploy.folder_sync import folder_archive

    (tmp_path / "d").mkdir()
    tool = tmp_path / "d" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o6755)
    (tmp_path / "d" / "inside").symlink_to("tool")  # stays in the folder: fine
    data, _ = folder_archive(tmp_path / "d")
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(data)).getmembers()}
    assert members["tool"].mode == 0o755 and (members["tool"].uid, members["tool"].gid) == (0, 0)
    assert members["inside"].issym()
    (tmp_path / "d" / "escape").symlink_to("../../etc")
    with pytest.raises(InputError, match="escape is a symlink to ../../etc, outside"):
        folder_archive(tmp_path / "d")


def test_relative_bind_mounts_may_not_leave_the_playbook_folder_or_remote_dir(tmp_path):
    from provision.deploy.playbook import load_playbook
    from provision.errors import InputError
    from provision.workflows.deploy import check_bind_sources

    path = tmp_path / "p.yml"
    path.write_text("stack: s\nservices:\n  web:\n    image: x:1\n    volumes: ['./data:/data', './a/../b:/b']\n")
    check_bind_sources(load_playbook(path, environ={}))
    path.write_text("stack: s\nservices:\n  web:\n    image: x:1\n    volumes: ['./data/../../../etc:/etc-host']\n")
    with pytest.raises(InputError, match="relative bind mount must name a folder inside"):
        check_bind_sources(load_playbook(path, environ={}))
