"""apt's progress in a detached unit (issue 13): the start and poll commands (exact strings), the parser of
apt's status lines on real captures (tests/fixtures/facts/README.md says how they were made), and the
Applier's poll loop: progress reported per poll, the step's timeout, the log and exit status at the end."""

from __future__ import annotations

from pathlib import Path

from provision import progress
from provision.commands import detached
from provision.executor.base import CommandResult
from provision.executor.fake import RecordingExecutor
from provision.facts import apt_status
from provision.facts.apt_status import AptProgress
from provision.operations.base import Change
from provision.report import HostResult
from provision.workflows.applier import Applier

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "facts"
UNIT = "provision-apt-1-x"
RUN = "/var/lib/provision/runs/provision-apt-1-x"

POLL = (
    f"w=0; while [ ! -s {RUN}.rc ] && systemctl is-active -q {UNIT} && [ $w -lt 2 ]; do sleep 1; w=$((w+1)); done; "
    f"if [ ! -s {RUN}.rc ] && systemctl is-active -q {UNIT}; then echo @@provision-detached-running@@; "
    f"uniq {RUN}.status 2>/dev/null | tail -n 400; exit 0; fi; "
    f"rm -f {RUN}.sh {RUN}.aptconf {RUN}.status; cat {RUN}.log 2>/dev/null; "
    f"if [ -s {RUN}.rc ]; then exit \"$(cat {RUN}.rc)\"; fi; "
    f"echo 'E: {UNIT} ended without an exit status (killed?): re-run to repair' >&2; exit 1"
)


def test_poll_command_exact():
    assert detached.poll_detached(UNIT) == POLL


def test_start_command_exact():
    # base64 of the script and of `APT::Status-Fd "3";\n`
    assert detached.run_detached(UNIT, "set -e\napt-get install x\n", "provision: x") == (
        f"install -d -m 0700 /var/lib/provision/runs && rm -f {RUN}.rc {RUN}.log {RUN}.status && "
        f"(umask 077; printf %s c2V0IC1lCmFwdC1nZXQgaW5zdGFsbCB4Cg== | base64 -d > {RUN}.sh && "
        f"printf %s QVBUOjpTdGF0dXMtRmQgIjMiOwo= | base64 -d > {RUN}.aptconf) && "
        "systemd-run --quiet --collect --unit=provision-apt-1-x '--description=provision: x' "
        "--property=KillMode=process /bin/sh -c "
        f"'APT_CONFIG={RUN}.aptconf sh {RUN}.sh > {RUN}.log 2>&1 3>> {RUN}.status; "
        f"echo $? > {RUN}.rc.tmp && mv -f {RUN}.rc.tmp {RUN}.rc' && " + POLL)


def polls() -> list[tuple[int, str]]:
    """The captured polls: (exit status, stdout)."""
    text = (FIXTURES / "apt-polls-real-sandbox-host.txt").read_text()
    out = []
    for chunk in text.split("=== poll rc=")[1:]:
        rc, _, stdout = chunk.partition("\n")
        out.append((int(rc), stdout))
    return out


def test_real_polls_say_running_with_progress_then_the_log():
    captured = polls()
    assert [apt_status.is_running(stdout) for _, stdout in captured] == [True, True, False]
    first, second, last = (apt_status.parse(apt_status.status_text(stdout)) for _, stdout in captured)
    assert first == AptProgress(4, 4, "files", "downloading")  # apt-get update's indexes, done
    assert second == AptProgress(8, 17, "packages", "zstd")  # the install: 17 packages, dpkg unpacking
    assert last is None and captured[-1][0] == 0
    assert "Setting up jq (1.6-2.1+deb12u2) ..." in captured[-1][1]
    assert apt_status.status_text(captured[-1][1]) == ""


def test_real_status_file_update_remove_download_install():
    lines = (FIXTURES / "apt-status-real-sandbox-host.txt").read_text().splitlines()
    seen = [apt_status.parse("\n".join(lines[:k])) for k in range(1, len(lines) + 1)]
    assert seen[9] == AptProgress(4, 4, "files", "downloading")  # update: 4 index files
    assert seen[19] == AptProgress(2, 3, "packages", "tree")  # the removal of htop jq tree, last action
    assert seen[21] == AptProgress(0, 13, "files", "downloading")  # the install's 13 package files
    assert seen[53] == AptProgress(13, 13, "files", "downloading")
    assert seen[56] == AptProgress(0, 13, "packages", "libmpfr6")  # 13 known from apt's first step
    assert seen[-1] == AptProgress(13, 13, "packages", "vim-tiny")
    install = [p.done for p in seen[55:]]
    assert install == sorted(install)  # never goes back
    assert apt_status.parse("") is None and apt_status.parse("pmconffile:/etc/x:/etc/x.dpkg-new:1\n") is None


def test_a_foreign_architecture_package_keeps_its_name():
    # synthetic (no multiarch host was captured): the package field as apt prints a foreign-arch package
    text = ("pmstatus:dpkg-exec:0.0000:Running dpkg\n"
            "pmstatus:libc6:i386:0.0000:Preparing libc6:i386 (i386)\n"
            "pmstatus:libc6:i386:20.0000:Unpacking libc6:i386 (i386)\n")
    assert apt_status.parse(text) == AptProgress(0, 1, "packages", "libc6:i386")


def test_a_translated_locale_still_counts_from_the_percentage():
    text = (FIXTURES / "apt-polls-real-sandbox-host.txt").read_text()
    german = text.replace("Installed ", "Installiert ").replace("Installing ", "Installieren ")
    stdout = german.split("=== poll rc=0\n")[2]
    assert apt_status.parse(apt_status.status_text(stdout)) == AptProgress(8, 17, "packages", "zstd")


class Recorder:
    def __init__(self) -> None:
        self.updates: list[progress.Update] = []

    def step(self, host, name):
        pass

    def update(self, host, update):
        self.updates.append(update)


def change(timeout: float | None = 600) -> Change:
    return Change("demo packages", "install", ["apt-get install x"], timeout=timeout, detached=True)


def test_the_applier_polls_a_running_unit_and_reports_apt_progress():
    running = "@@provision-detached-running@@\n" + (FIXTURES / "apt-status-real-sandbox-host.txt").read_text()
    ex = RecordingExecutor("h1")
    unit = detached.unit_name("T", "demo packages")
    ex.respond_sequence(f"systemd-run .*--unit={unit}", running)
    ex.respond_sequence("^w=0; while", "@@provision-detached-running@@\n",
                        CommandResult("", 0, "Setting up x (1) ...\n"))
    recorder = Recorder()
    result = HostResult("h1")
    with progress.reporting(recorder, "h1"):
        assert Applier(ex, result, check=False, stamp="T").apply(change())
    script = "set -e\napt-get install x"
    assert ex.shells == [detached.run_detached(unit, script, "provision: demo packages"),
                         detached.poll_detached(unit), detached.poll_detached(unit)]
    assert [(u.done, u.total, u.unit, u.detail) for u in recorder.updates] == [(13, 13, "packages", "vim-tiny")]
    assert result.commands[-1]["output"] == "Setting up x (1) ..."
    assert all(t is not None and t <= 62 for t in ex.timeouts)  # a poll waits 2s on the host, 60s slack


def test_a_unit_still_running_past_the_steps_timeout_fails_as_a_timeout(monkeypatch):
    ex = RecordingExecutor("h1")
    ex.respond("systemd-run|^w=0; while", "@@provision-detached-running@@\n")
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr("provision.workflows.applier.time.monotonic", lambda: float(next(clock)))
    result = HostResult("h1")
    assert not Applier(ex, result, check=False, stamp="T").apply(change(timeout=25))
    assert result.steps[-1].status == "failed"
    assert "timed out after 25s" in result.steps[-1].message and "(exit 124)" in result.steps[-1].message
    assert len(ex.shells) == 2  # started, polled once, then past the deadline: the unit runs on


def test_a_failed_unit_fails_the_step_with_apts_words():
    ex = RecordingExecutor("h1")
    ex.respond("systemd-run", stdout="E: Unable to locate package x\n", exit_code=100)
    result = HostResult("h1")
    assert not Applier(ex, result, check=False, stamp="T").apply(change())
    assert result.steps[-1].message == "E: Unable to locate package x (exit 100)"
    assert len(ex.shells) == 1
