"""Shell snippets for the deploy's per-host bookkeeping: the deploy lock and the audit log.

Pure: each function returns a command string; values are quoted with shlex. The lock is a
directory (mkdir is atomic) holding a `holder` file that says who took it and when; it is released
only by the token that took it. The audit log is append-only JSON lines.
"""

from __future__ import annotations

import json
import shlex

from provision.commands.argv import quote

STATE_DIR = "/var/lib/provision"
LOCK_DIR = f"{STATE_DIR}/deploy.lock"
AUDIT_LOG = "/var/log/provision/audit.log"
LOCK_HELD_RC = 17  # exit status of acquire_lock when another deploy holds the lock


def acquire_lock(holder: dict) -> str:
    """Take the lock or exit LOCK_HELD_RC printing the current holder (one JSON line)."""
    lock, text = shlex.quote(LOCK_DIR), shlex.quote(json.dumps(holder, sort_keys=True))
    return (f"mkdir -p {shlex.quote(STATE_DIR)} && "
            f"if mkdir {lock} 2>/dev/null; then printf '%s\\n' {text} > {lock}/holder; "
            f"else cat {lock}/holder 2>/dev/null || echo '{{}}'; exit {LOCK_HELD_RC}; fi")


def release_lock(token: str) -> str:
    """Remove the lock only when it still carries our token (never someone else's)."""
    lock = shlex.quote(LOCK_DIR)
    return (f"if grep -qF {shlex.quote(token)} {lock}/holder 2>/dev/null; then rm -rf {lock}; fi")


def append_audit(entry: dict) -> str:
    """Append one JSON line to the audit log (created 0600, owned by root)."""
    log = shlex.quote(AUDIT_LOG)
    line = shlex.quote(json.dumps(entry, sort_keys=True))
    return (f"mkdir -p {shlex.quote(AUDIT_LOG.rsplit('/', 1)[0])} && "
            f"( umask 077; printf '%s\\n' {line} >> {log} )")


def sync_folder(folder: str, archive: str, digest: str, marker: str) -> str:
    """Unpack an uploaded tar of a bind-mount folder when its digest (kept in `marker`) changed.

    Files the host added to the folder are kept; files in the archive overwrite theirs."""
    d, a, m, h = (quote(x, "bind folder sync value") for x in (folder, archive, marker, digest))
    marker_dir = shlex.quote(marker.rsplit("/", 1)[0])
    return (f"mkdir -p {d} {marker_dir} && if [ \"$(cat {m} 2>/dev/null)\" = {h} ]; then echo unchanged; "
            f"else tar --no-unquote -xf {a} -C {d} && printf '%s\\n' {h} > {m} && echo synced; fi; rm -f {a}")


def make_dirs(paths: list[str]) -> str:
    return "mkdir -p -- " + " ".join(quote(p, "folder path") for p in paths)
