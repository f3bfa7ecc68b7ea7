"""A command past its timeout answers the same on every executor: exit 124 with the output so far and
`timed out after Ns (provision_command_timeout)` on stderr; none of them raises for it."""

from __future__ import annotations

import time

from provision.executor.base import TIMED_OUT, CommandResult, timed_out
from provision.executor.fake import RecordingExecutor
from provision.executor.local import LocalExecutor
from provision.executor.ssh import SSHExecutor

MESSAGE = "timed out after 1s (provision_command_timeout)"


def test_local_executor_ends_a_command_past_its_timeout_with_124():
    start = time.monotonic()
    result = LocalExecutor().run("echo started; sleep 30; echo never", timeout=1)
    assert time.monotonic() - start < 15  # ended, not waited for
    assert result.exit_code == TIMED_OUT == 124
    assert result.stdout == "started\n"
    assert result.stderr.strip().endswith(MESSAGE)
    assert not result.ok


def test_local_executor_default_timeout_is_the_command_timeout():
    result = LocalExecutor(command_timeout=1).run(["sleep", "30"])
    assert result.exit_code == 124 and result.stderr.endswith("\n" + MESSAGE)


def test_a_command_within_its_timeout_is_untouched():
    result = LocalExecutor().run("echo ok; exit 3", timeout=10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "ok\n", "")


def test_recording_executor_simulates_the_same_timeout():
    fake = RecordingExecutor()
    fake.respond_timeout(r"cloud-init status --wait", stdout="status: running\n")
    result = fake.run("timeout 900 cloud-init status --wait", become=True, timeout=1)
    assert (result.exit_code, result.stdout, result.stderr.strip()) == (124, "status: running\n", MESSAGE)
    default = RecordingExecutor(command_timeout=7)
    default.respond("sleep", exit_code=124)  # a canned 124 answers as a timeout too
    assert default.run("sleep 9").stderr.strip() == "timed out after 7s (provision_command_timeout)"


def test_the_three_executors_shape_a_timeout_alike():
    local = LocalExecutor().run("sleep 30", timeout=1)
    fake = RecordingExecutor()
    fake.respond_timeout("sleep")
    recorded = fake.run("sleep 30", timeout=1)
    started = time.monotonic() - 2  # the host's `timeout` ended the command after the full second
    ssh = SSHExecutor._timed(CommandResult("sleep 30", 137, "", ""), started, 1)  # killed after ignoring TERM
    for result in (local, recorded, ssh):  # (the local shell may say `Terminated` first)
        assert result.exit_code == 124 and result.stderr.endswith("\n" + MESSAGE), result
    assert timed_out("x", None, None, 1.5).stderr == "\ntimed out after 1.5s (provision_command_timeout)"  # type: ignore[arg-type]


def test_ssh_keeps_a_quick_124_of_the_command_itself():
    result = SSHExecutor._timed(CommandResult("timeout 1 x", 124, "", "own"), time.monotonic(), 60)
    assert (result.exit_code, result.stderr) == (124, "own")
