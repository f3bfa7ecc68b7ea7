"""The wrapper every remote command runs under (executor.base.SCRIPT_FROM_STDIN), run here by /bin/sh as a host
runs it: the script's text on stdin, never in argv, the environment or a file; its commands read /dev/null; the
exit status is the script's; TERM/INT/HUP end it with 143/130/129. Issue 12: no mktemp/rm, no tmpfs file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from provision.commands import files
from provision.executor.base import SCRIPT_FROM_STDIN, with_timeout
from provision.executor.local import LocalExecutor


def run(script: str, wrapper: str = SCRIPT_FROM_STDIN) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", wrapper], input=script, capture_output=True, text=True, timeout=60)


def test_the_wrapper_is_fixed_text_and_forks_only_cat():
    assert SCRIPT_FROM_STDIN == ("trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP; "
                                 's=$(cat) && (eval "unset s\n$s\n") < /dev/null')
    assert "mktemp" not in SCRIPT_FROM_STDIN and "/dev/shm" not in SCRIPT_FROM_STDIN


def test_exit_status_output_and_stdin_are_the_scripts():
    assert (run("echo out; echo err >&2; exit 7").returncode, run("echo out; exit 7").stdout) == (7, "out\n")
    assert run("echo err >&2").stderr == "err\n"
    r = run("read line; echo \"rc=$? [$line]\"; cat; echo end")  # /dev/null, not the rest of the script
    assert (r.stdout, r.returncode) == ("rc=1 []\nend\n", 0)
    assert run("false").returncode == 1 and run("").returncode == 0
    assert run("exit 3; echo never").stdout == ""


def test_the_script_does_not_see_the_wrapper_variable_and_keeps_its_own_traps():
    assert run('echo "[${s-unset}] $#"').stdout == "[unset] 0\n"
    assert run("trap 'echo bye' EXIT; echo hi").stdout == "hi\nbye\n"
    assert run("s=1; echo $s").stdout == "1\n"


def test_a_last_line_without_newline_and_a_here_document_at_the_end():
    assert run("echo no-newline").stdout == "no-newline\n"
    assert run("cat <<'EOF'\nline 1\n\nline 3\nEOF").stdout == "line 1\n\nline 3\n"
    assert run("printf '%s|' a\n\n\n").stdout == "a|"


def test_a_large_script_of_file_contents_travels_whole(tmp_path: Path):
    data = os.urandom(1_500_000).hex() + "\n'\"$x`\\\n"  # ~3 MB, with every quoting hazard
    r = run(files.write_file(str(tmp_path / "out"), data, backup=False))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_text() == data


def test_the_script_never_reaches_argv_or_a_file():
    before = set(os.listdir("/dev/shm"))
    marker = "secret-marker-7f3a"
    r = run(f": {marker}; ps -eo args; ls /dev/shm; cat /proc/$$/environ | tr '\\0' '\\n'")
    assert r.returncode == 0
    assert r.stdout.count(marker) == 0  # not in any process's argv, /dev/shm or the environment
    assert set(os.listdir("/dev/shm")) - before == set()


def test_term_int_hup_end_it_with_their_exit_status():
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)):
        proc = subprocess.Popen(["/bin/sh", "-c", SCRIPT_FROM_STDIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, start_new_session=True)
        proc.stdin.write("echo started; exec sleep 30\n")
        proc.stdin.close()
        assert proc.stdout.readline() == "started\n"
        os.killpg(proc.pid, sig)  # as `timeout` signals its process group
        assert proc.wait(timeout=10) == code, sig


def test_under_timeout_and_through_the_local_executor():
    start = time.monotonic()
    r = subprocess.run(["/bin/sh", "-c", with_timeout(SCRIPT_FROM_STDIN, 1)], input="sleep 30", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 124 and time.monotonic() - start < 10
    result = LocalExecutor().run("echo $((6 * 7)); exit 5")
    assert (result.stdout, result.exit_code) == ("42\n", 5)
