"""The executor interface: the one way provision touches a host.

Commands arrive as data: a shell snippet (str) or an argv list, quoted with shlex.join.
`become=True` runs the command as the host's become user (root by default) through sudo.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Protocol, Sequence

Command = str | Sequence[str]

# CLI boilerplate after the real error: "See 'docker run --help'.", "Run 'docker COMMAND --help' ..."
_HELP_HINT = re.compile(r"^(See|Run) '[^']*--help'")


def as_shell(command: Command) -> str:
    """A command as one shell string: argv lists are quoted element by element."""
    return command if isinstance(command, str) else shlex.join(command)


def sudo_wrap(command: Command, user: str = "root", *, non_interactive: bool = True) -> str:
    """`sudo [-n] -H -u USER -- sh -c CMD`: run a snippet as another user through sudo."""
    flags = ["-n"] if non_interactive else []
    return shlex.join(["sudo", *flags, "-H", "-u", user, "--", "sh", "-c", as_shell(command)])


def with_timeout(command: Command, seconds: float, *, kill_after: int = 10) -> str:
    """`timeout -k K N sh -c CMD`: the host itself ends a command that runs past its timeout (exit 124,
    137 when it ignores SIGTERM), so nothing provision started lingers after provision gave up on it."""
    return shlex.join(["timeout", "-k", str(kill_after), str(max(1, int(seconds + 0.999))), "sh", "-c",
                       as_shell(command)])


# How every remote command starts on a host: the script itself comes on stdin and is held in the wrapper
# shell's memory (an unexported variable, unset before the script's first command), then evaluated in a
# subshell whose stdin is /dev/null. So a command's text (which can hold a proxy password, file contents, a
# URL with a token) never appears in argv, where any user of the host can read it with ps, nor in the
# environment, nor in any file; and the script's own commands get /dev/null as stdin. The wrapper turns
# TERM/INT/HUP into exit 143/130/129 (after the subshell, which keeps the default dispositions, has ended);
# otherwise the exit status is the script's. Issue 12: one fork+exec (`cat`) and one fork (the subshell),
# where a tmpfs file cost four (mktemp, cat, sh, rm). As in any subshell, `$$` is the wrapper's PID and
# `$0` is `sh`. The newline after the script ends a final line that had none (`$(cat)` strips newlines).
SCRIPT_FROM_STDIN = (
    "trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP; "
    's=$(cat) && (eval "unset s\n$s\n") < /dev/null'
)


# The client waits this much longer than the host-side timeout before it gives up on the host itself.
CLIENT_GRACE_S = 15

TIMED_OUT = 124  # the exit status of a command that ran past its timeout, on every executor (as `timeout`)


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def error_summary(self) -> str:
        """apt's own error and warning lines (E:, W:, Err:) when there are any, else error_line()."""
        import re

        lines = [l.strip() for l in (self.stderr + "\n" + self.stdout).splitlines()]
        apt_lines = [l for l in lines if re.match(r"^(E|W|Err:\d+)[: ]", l)]
        if apt_lines:
            return " | ".join(dict.fromkeys(apt_lines))[:1500]
        return self.error_line()

    def error_line(self) -> str:
        """The most telling line of a failed command's output, for one-line messages."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.strip().splitlines()
                     if line.strip() and not _HELP_HINT.match(line.strip())]
            if lines:
                return lines[-1]
        return f"exit code {self.exit_code}"


def timed_out(command: str, stdout: str, stderr: str, timeout: float) -> CommandResult:
    """What every executor returns for a command that ran past its timeout: exit TIMED_OUT (124), the
    output it gave so far, and why on stderr. Never an exception (a host that stopped answering is one:
    HostUnreachable)."""
    return CommandResult(command, TIMED_OUT, stdout or "",
                         (stderr or "") + f"\ntimed out after {timeout:g}s (provision_command_timeout)")


class Executor(Protocol):
    name: str

    def run(self, command: Command, *, become: bool = False, timeout: float | None = None) -> CommandResult:
        """Run a command; never raises for a non-zero exit (see CommandResult), raises HostUnreachable.

        timeout: seconds (None: the host's provision_command_timeout); past it the result is exit 124 on
        every executor. The command's text travels on stdin, never in argv (see SCRIPT_FROM_STDIN)."""
        ...

    def open(self) -> None:
        """Connect now (once): raises HostUnreachable / HostKeyChanged before any work starts. Executors
        without a connection (local, recording) do nothing."""
        ...

    def put(self, data: bytes, path: str, *, mode: int = 0o600) -> None:
        """Write `data` to `path` on the host as the login user (not become), created with `mode` before
        any byte is written. Raises HostUnreachable when the host is gone, OSError when it refuses."""
        ...

    def ssh_transport(self):
        """The host's live paramiko Transport (opening the connection if needed), or None for an executor
        that does not reach its host over SSH: the capability the Docker SSH transport and image shipping's
        reverse tunnel need. Callers decide what None means for them (the local engine, nothing to ship)."""
        ...

    def close(self) -> None: ...
