from provision.executor.base import CommandResult, as_shell, sudo_wrap
from provision.executor.fake import RecordingExecutor
from provision.executor.secret import Secret


def test_argv_is_quoted_element_by_element():
    assert as_shell(["echo", "a b", "$(rm -rf /)", "it's"]) == "echo 'a b' '$(rm -rf /)' 'it'\"'\"'s'"


def test_shell_snippets_pass_unchanged():
    assert as_shell("ls -l | wc -l") == "ls -l | wc -l"


def test_sudo_wraps_the_whole_snippet_non_interactively():
    assert sudo_wrap("id -un && touch /x", "root") == "sudo -n -H -u root -- sh -c 'id -un && touch /x'"
    assert sudo_wrap(["apt-get", "install", "-y", "docker ce"], "svc") == (
        "sudo -n -H -u svc -- sh -c 'apt-get install -y '\"'\"'docker ce'\"'\"''")


def test_error_line_prefers_stderr_then_stdout():
    assert CommandResult("x", 100, "out\n", "E: Unable to locate package foo\n").error_line() == "E: Unable to locate package foo"
    assert CommandResult("x", 1, "only stdout\n", "").error_line() == "only stdout"
    assert CommandResult("x", 7).error_line() == "exit code 7"


def test_recording_executor_records_and_answers():
    fake = RecordingExecutor()
    fake.respond(r"^nvidia-smi", stdout="GPU 0: X\n")
    assert fake.run(["nvidia-smi", "-L"]).stdout == "GPU 0: X\n"
    assert fake.run("true", become=True).ok
    assert fake.commands == [("nvidia-smi -L", False), ("true", True)]


def test_secret_never_prints():
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}" + "%s" % secret
    assert secret.reveal() == "hunter2"
