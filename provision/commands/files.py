"""Remote files written atomically: temp file + rename, with a timestamped backup when replacing."""

from __future__ import annotations

import base64
import shlex


def write_file(path: str, content: str, mode: str = "0644", backup: bool = True, stamp: str = "") -> str:
    """A snippet that writes `content` to `path` atomically (base64 on the wire: any bytes are safe).

    With backup, an existing file is first copied to PATH.provision-bak-STAMP."""
    q = shlex.quote(path)
    tmp = shlex.quote(path + ".provision-tmp")
    data = base64.b64encode(content.encode()).decode()
    parts = [f"install -d -m 0755 \"$(dirname {q})\""]
    if backup:
        bak = shlex.quote(f"{path}.provision-bak-{stamp}")
        parts.append(f"if [ -e {q} ]; then cp -p {q} {bak}; fi")
    parts.append(f"printf %s {shlex.quote(data)} | base64 -d > {tmp}")
    parts.append(f"chmod {mode} {tmp}")
    parts.append(f"mv -f {tmp} {q}")
    return " && ".join(parts)
