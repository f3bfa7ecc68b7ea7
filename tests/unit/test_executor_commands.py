from provision.executor.base import CommandResult, as_shell, sudo_wrap
from provision.executor.fake import RecordingExecutor
from provision.secret import Secret


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
    docker = ("Unable to find image 'no-such:1' locally\ndocker: Error response from daemon: manifest for no-such:1 not found.\n"
              "See 'docker run --help'.\n")
    assert CommandResult("x", 125, "", docker).error_line() == (
        "docker: Error response from daemon: manifest for no-such:1 not found.")


def test_apt_errors_summarised_with_their_warnings():
    stderr = ("W: GPG error: https://download.docker.com/linux/debian bookworm InRelease: The following signatures "
              "couldn't be verified because the public key is not available: NO_PUBKEY 1234\n"
              "E: The repository 'https://download.docker.com/linux/debian bookworm InRelease' is not signed.\n")
    summary = CommandResult("x", 100, "", stderr).error_summary()
    assert summary.startswith("W: GPG error") and "NO_PUBKEY 1234" in summary and "| E: The repository" in summary


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
