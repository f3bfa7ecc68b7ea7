"""Remote files: written atomically (temp file + rename, with a timestamped backup when replacing),
backed up, restored, removed, and folders made. Paths must be absolute (no word of one is ever read as
an option); values are quoted with shlex. Pure: no I/O."""

from __future__ import annotations

import base64
import re
import shlex

from provision.commands.argv import UnsafeValue, combine, join, quote
from provision.commands.argv import absolute_path as absolute

_MODE = re.compile(r"[0-7]{3,4}")
BACKUP_INFIX = ".provision-bak-"


def backup_path(path: str, stamp: str) -> str:
    """Where `backup` copies PATH: PATH.provision-bak-STAMP."""
    return f"{path}{BACKUP_INFIX}{stamp}"


def backup(path: str, stamp: str) -> str:
    """`cp -p PATH PATH.provision-bak-STAMP` (mode, owner and times kept)."""
    return join(["cp", "-p", absolute(path), backup_path(path, stamp)], "backup path")


def backup_private(path: str, stamp: str) -> str:
    """A backup readable by root only, and the only one: older backups of PATH are removed (a file that may
    hold credentials, like daemon.json with a proxy password, must not pile up copies of them)."""
    bak = backup_path(absolute(path), stamp)
    pattern = quote(path + BACKUP_INFIX, "backup path") + "*"
    return combine(["cp", "-p", path, bak], ["chmod", "go-rwx", bak],
                   f"for b in {pattern}; do [ \"$b\" = {quote(bak)} ] || rm -f \"$b\"; done")


def restore(path: str, stamp: str) -> str:
    """Put the backup `backup` made back in place: `mv -f PATH.provision-bak-STAMP PATH`."""
    return join(["mv", "-f", backup_path(absolute(path), stamp), path], "backup path")


def remove(*paths: str) -> str:
    """`rm -f PATH...` (absent files are fine)."""
    return join(["rm", "-f", *(absolute(p) for p in paths)], "file path")


def remove_tree(*paths: str) -> str:
    """`rm -rf PATH...`: folders and everything in them."""
    return join(["rm", "-rf", *(absolute(p, "folder path") for p in paths)], "folder path")


def make_dir(path: str) -> str:
    """`mkdir -p PATH` (its parents too; an existing folder is fine)."""
    return join(["mkdir", "-p", absolute(path, "folder path")], "folder path")


def write_file(path: str, content: str, mode: str = "0644", backup: bool = True, stamp: str = "",
               keep_one_backup: bool = False) -> str:
    """A snippet that writes `content` to `path` atomically (base64 inside the script, which travels on
    stdin, never in argv: see executor.base.SCRIPT_FROM_STDIN; --check shows a digest, see
    redaction.describe_command).

    With backup, an existing file is first copied to PATH.provision-bak-STAMP, with the new file's mode.
    keep_one_backup: older backups of PATH are removed once the new file is in place, so files that hold
    credentials do not pile up copies of them. The path must be absolute (so no word of it is ever read
    as an option) and the mode octal digits."""
    absolute(path)
    if not _MODE.fullmatch(mode):
        raise UnsafeValue(f"file mode must be octal digits like 0644, not {mode!r}")
    q = quote(path, "file path")
    tmp = shlex.quote(path + ".provision-tmp")
    data = base64.b64encode(content.encode()).decode()
    parts = [f"install -d -m 0755 \"$(dirname {q})\""]
    if backup:
        bak = quote(backup_path(path, stamp), "backup stamp")
        parts.append(f"if [ -e {q} ]; then cp -p {q} {bak} && chmod {mode} {bak}; fi")
    parts.append(f"printf %s {shlex.quote(data)} | base64 -d > {tmp}")
    parts.append(f"chmod {mode} {tmp}")
    parts.append(f"mv -f {tmp} {q}")
    if backup and keep_one_backup:
        pattern = shlex.quote(path + BACKUP_INFIX) + "*"
        parts.append(f"for b in {pattern}; do [ \"$b\" = {bak} ] || rm -f \"$b\"; done")
    return " && ".join(parts)


def write_line(path: str, expansion: str, mode: str = "0644") -> str:
    """A snippet that writes one line, the double-quoted shell EXPANSION (e.g. `$sha $now $url`: values the
    host computed in the same script; never data from the operator's side, which goes through write_file),
    to PATH atomically (temp file + rename), making its folder."""
    absolute(path)
    if not _MODE.fullmatch(mode):
        raise UnsafeValue(f"file mode must be octal digits like 0644, not {mode!r}")
    if '"' in expansion or "\\" in expansion or "`" in expansion or "$(" in expansion or "\n" in expansion:
        raise UnsafeValue(f"write_line takes plain variable expansions, not {expansion!r}")
    q = quote(path, "file path")
    tmp = shlex.quote(path + ".provision-tmp")
    return (f"install -d -m 0755 \"$(dirname {q})\" && printf '%s\\n' \"{expansion}\" > {tmp} && chmod {mode} {tmp} "
            f"&& mv -f {tmp} {q}")
