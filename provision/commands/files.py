"""Remote files written atomically: temp file + rename, with a timestamped backup when replacing."""

from __future__ import annotations

import base64
import re
import shlex

from provision.commands.argv import UnsafeValue, quote

_MODE = re.compile(r"[0-7]{3,4}")


def write_file(path: str, content: str, mode: str = "0644", backup: bool = True, stamp: str = "",
               keep_one_backup: bool = False) -> str:
    """A snippet that writes `content` to `path` atomically (base64 inside the script, which travels on
    stdin, never in argv: see executor.base.SCRIPT_FROM_STDIN; --check shows a digest, see
    redaction.describe_command).

    With backup, an existing file is first copied to PATH.provision-bak-STAMP, with the new file's mode.
    keep_one_backup: older backups of PATH are removed once the new file is in place, so files that hold
    credentials do not pile up copies of them. The path must be absolute (so no word of it is ever read
    as an option) and the mode octal digits."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise UnsafeValue(f"file path must be absolute, not {path!r}")
    if not _MODE.fullmatch(mode):
        raise UnsafeValue(f"file mode must be octal digits like 0644, not {mode!r}")
    q = quote(path, "file path")
    tmp = shlex.quote(path + ".provision-tmp")
    data = base64.b64encode(content.encode()).decode()
    parts = [f"install -d -m 0755 \"$(dirname {q})\""]
    if backup:
        bak = quote(f"{path}.provision-bak-{stamp}", "backup stamp")
        parts.append(f"if [ -e {q} ]; then cp -p {q} {bak} && chmod {mode} {bak}; fi")
    parts.append(f"printf %s {shlex.quote(data)} | base64 -d > {tmp}")
    parts.append(f"chmod {mode} {tmp}")
    parts.append(f"mv -f {tmp} {q}")
    if backup and keep_one_backup:
        pattern = shlex.quote(f"{path}.provision-bak-") + "*"
        parts.append(f"for b in {pattern}; do [ \"$b\" = {bak} ] || rm -f \"$b\"; done")
    return " && ".join(parts)
