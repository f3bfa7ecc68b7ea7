"""Values on a remote command line: quoted with shlex, and refused when they cannot be passed at all.

Every builder in commands/ puts the values it is given (paths, package names, URLs, images, ...)
into its command through these helpers, never through a hand-quoted f-string. A NUL byte cannot
travel in argv (the kernel ends the argument there), so it is refused with a clear error instead of
being silently cut. The error says which value and where, never the value (it may be a secret).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from provision.errors import InputError


class UnsafeValue(InputError, ValueError):
    """A value that cannot be put on a remote command line (or into the file a builder writes)."""


def checked(value: str, what: str = "value") -> str:
    """The value itself; raises UnsafeValue when it holds a NUL byte."""
    if not isinstance(value, str):
        raise UnsafeValue(f"{what} must be a string, not {type(value).__name__}")
    if "\0" in value:
        raise UnsafeValue(f"{what} contains a NUL byte (at offset {value.index(chr(0))}): "
                          "it cannot be passed to a remote command")
    return value


def one_line(value: str, what: str = "value") -> str:
    """The value itself; refused when it holds a control character (newline, CR, tab, NUL, ...):
    for values written into line-oriented files (apt sources) where a newline would add a field."""
    checked(value, what)
    bad = next((c for c in value if ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise UnsafeValue(f"{what} contains the control character {bad!r} (at offset {value.index(bad)}): "
                          "it must be one line")
    return value


def url(value: str, what: str = "URL") -> str:
    """A URL given to a program as a positional argument (curl): one line, and never mistaken for an
    option (`-K FILE` would make curl read a config file)."""
    one_line(value, what)
    if value.startswith("-"):
        raise UnsafeValue(f"{what} starts with '-': it would be read as an option, not a URL")
    return value


def absolute_path(path: str, what: str = "file path") -> str:
    """The path itself; refused unless it is absolute (starts with `/`: never read as an option)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise UnsafeValue(f"{what} must be absolute, not {path!r}")
    return path


def quote(value: str, what: str = "value") -> str:
    """shlex.quote of a checked value."""
    return shlex.quote(checked(value, what))


def join(argv: Iterable[str], what: str = "argument") -> str:
    """shlex.join of checked values."""
    return shlex.join(checked(arg, what) for arg in argv)


def args(items: Iterable[str], what: str = "argument") -> list[str]:
    """An argv list of checked values (for builders that return lists)."""
    return [checked(arg, what) for arg in items]


# -- combining commands (as Kamal's `combine`/`pipe`) ----------------------------------------------
# A command given to these is either an argv list (each element checked and quoted here) or a shell
# string another builder of provision/commands/ returned (kept as it is: it is quoted already).
Command = str | list[str] | tuple[str, ...]
OPERATORS = ("&&", "||", "|", ";")


def shell(command: Command, what: str = "argument") -> str:
    """One command as shell text: an argv list quoted element by element, a built string as it is."""
    if isinstance(command, str):
        return checked(command, what)
    if not command:
        raise UnsafeValue(f"{what}: an empty command")
    return join(command, what)


def combine(*commands: Command, by: str = "&&") -> str:
    """The commands joined by a shell operator (`&&` unless told): `combine(["a", "x y"], ["b"])` is
    `a 'x y' && b`."""
    if by not in OPERATORS:
        raise ValueError(f"operator must be one of {OPERATORS}, not {by!r}")
    separator = "; " if by == ";" else f" {by} "
    return separator.join(shell(c) for c in commands)


def pipe(*commands: Command) -> str:
    """`a | b | c`."""
    return combine(*commands, by="|")


def chain(*commands: Command) -> str:
    """`a; b; c`: each runs whatever the one before did."""
    return combine(*commands, by=";")


def any_of(*commands: Command) -> str:
    """`a || b`: the first that succeeds."""
    return combine(*commands, by="||")


def script(commands: Iterable[Command], *, errexit: bool = True) -> str:
    """Commands one a line, as the Applier sends a step (`set -e` first: the first failure ends it)."""
    lines = [shell(c) for c in commands]
    return "\n".join(["set -e", *lines] if errexit else lines)
