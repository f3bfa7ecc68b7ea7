"""Shell snippets for the per-host bookkeeping of a deploy: the host lock, the audit log, bind-folder
syncs, and the command the docker SDK is piped into over SSH.

Pure: each function returns a command string; values are quoted with shlex. The lock is a
directory (mkdir is atomic) holding a `holder` file that says who took it and when; it is released
only by the token that took it, or broken deliberately (`provision unlock`) only while it still
holds the exact holder the operator was shown. The audit log is append-only JSON lines.
"""

from __future__ import annotations

import json
import shlex

from provision.commands.argv import args, join, quote

STATE_DIR = "/var/lib/provision"
LOCK_DIR = f"{STATE_DIR}/deploy.lock"
AUDIT_LOG = "/var/log/provision/audit.log"
LOCK_HELD_RC = 17  # exit status of acquire_lock when another run holds the lock
LOCK_CHANGED_RC = 18  # exit status of break_lock when the lock no longer holds what was shown
OUTSIDE_RC = 3  # exit status of sync_folder when the folder resolves outside remote_dir
DOCKER_DIAL = ["docker", "system", "dial-stdio"]


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


def read_lock() -> str:
    """`held` then the holder file's text when the lock is held (an empty holder when the run that
    took it died between mkdir and writing it); `free` when it is not."""
    lock = shlex.quote(LOCK_DIR)
    return f"if [ -d {lock} ]; then echo held; cat {lock}/holder 2>/dev/null || true; else echo free; fi"


def break_lock(holder_text: str) -> str:
    """Remove the lock only when its holder file still reads exactly `holder_text` (what the operator
    was shown); exit LOCK_CHANGED_RC when it changed (released, or taken again by a new run)."""
    lock = shlex.quote(LOCK_DIR)
    return (f"if [ -d {lock} ] && [ \"$(cat {lock}/holder 2>/dev/null)\" = {quote(holder_text, 'lock holder')} ]; "
            f"then rm -rf {lock}; else exit {LOCK_CHANGED_RC}; fi")


def append_audit(entry: dict) -> str:
    """Append one JSON line to the audit log (created 0600, owned by root)."""
    log = shlex.quote(AUDIT_LOG)
    line = shlex.quote(json.dumps(entry, sort_keys=True))
    return (f"mkdir -p {shlex.quote(AUDIT_LOG.rsplit('/', 1)[0])} && "
            f"( umask 077; printf '%s\\n' {line} >> {log} )")


def read_sync_marker(marker: str) -> str:
    """The digest last synced into a bind folder (empty when never synced)."""
    return f"cat {quote(marker, 'sync marker path')} 2>/dev/null || true"


def sync_folder(folder: str, archive: str, digest: str, marker: str, root: str) -> str:
    """Unpack an uploaded tar of a bind-mount folder when its digest (kept in `marker`) changed.

    Files the host added to the folder are kept; files in the archive overwrite theirs. Refused (exit
    OUTSIDE_RC) when the folder resolves outside `root` (remote_dir), through `..` or a symlink on the
    host. Owners and setuid/setgid bits are not kept (root's umask applies). Any failure (mkdir, tar,
    the marker) is the command's exit status; the uploaded archive is removed on every path."""
    d, a, m, h, r = (quote(x, "bind folder sync value") for x in (folder, archive, marker, digest, root))
    marker_dir = shlex.quote(marker.rsplit("/", 1)[0])
    inside = (f"mkdir -p {d} {marker_dir} && if [ \"$(cat {m} 2>/dev/null)\" = {h} ]; then echo unchanged; "
              f"else tar --no-unquote --no-same-owner --no-same-permissions -xf {a} -C {d} && printf '%s\\n' {h} > {m} "
              f"&& echo synced; fi")
    outside = quote(f"{folder} resolves outside {root} (through .. or a symlink): refusing to write there",
                    "bind folder sync value")
    return (f"rc=0; case \"$(realpath -m -- {d})/\" in \"$(realpath -m -- {r})\"/*) {{ {inside}; }} || rc=$? ;; "
            f"*) echo {outside} >&2; rc={OUTSIDE_RC} ;; esac; rm -f {a}; exit $rc")


def make_temp(prefix: str = "/tmp/provision-sync.") -> str:
    return join(["mktemp", prefix + "XXXXXXXXXX"], "temp file prefix")


def make_dirs(paths: list[str]) -> str:
    return "mkdir -p -- " + " ".join(quote(p, "folder path") for p in paths)


def folder_exists(path: str) -> list[str]:
    """Exit 0 when `path` is a directory on the host (--check of a bind folder with nothing to sync)."""
    return args(["test", "-d", path], "folder path")


def docker_dial_stdio(sudo: bool = False) -> str:
    """The remote command the docker SDK's HTTP requests are piped into (one per pooled connection);
    `sudo -n` when the login user is not the become user (passwordless sudo needed)."""
    return shlex.join(["sudo", "-n", *DOCKER_DIAL] if sudo else DOCKER_DIAL)


# -- Compose secrets: files on a tmpfs, never on the host's disk, never in argv ----------------------
SECRETS_STAGE_PARENT = "/dev/shm"  # a tmpfs the login user can write (the value arrives by SFTP)
NOT_TMPFS_RC = 5  # exit status when a secrets folder is not on a tmpfs


def _tmpfs_check(folder: str) -> str:
    q = shlex.quote(folder)
    return (f"[ \"$(stat -f -c %T {q})\" = tmpfs ] || "
            f"{{ echo {shlex.quote(folder + ' is not on a tmpfs: refusing to write secrets there')} >&2; "
            f"exit {NOT_TMPFS_RC}; }}")


def make_secrets_stage() -> str:
    """As the login user: a private (0700) staging folder on /dev/shm, printed; exit NOT_TMPFS_RC (folder
    removed) when /dev/shm is not a tmpfs."""
    parent = shlex.quote(SECRETS_STAGE_PARENT)
    return (f"d=$(mktemp -d {parent}/provision-secrets.XXXXXX) && "
            f"if [ \"$(stat -f -c %T \"$d\")\" = tmpfs ]; then echo \"$d\"; "
            f"else rmdir \"$d\"; echo '{SECRETS_STAGE_PARENT} is not a tmpfs: refusing to write secrets there' >&2; "
            f"exit {NOT_TMPFS_RC}; fi")


def remove_secrets_stage(stage: str) -> str:
    """As the login user: the staging folder and whatever is left in it."""
    return join(["rm", "-rf", "--", stage])


def make_secrets_folder(folder: str) -> str:
    """As root: the service's secrets folder (0700), refused (exit NOT_TMPFS_RC) unless it is on a tmpfs."""
    return f"{join(['mkdir', '-p', '-m', '0700', folder])} && {join(['chmod', '0700', folder])} && {_tmpfs_check(folder)}"


def install_secret(staged: str, final: str, uid: str, gid: str, mode: int) -> str:
    """As root: move the staged value into place unless the file there already holds the same bytes (then
    the staged copy is removed and the file kept), set owner and mode, print the file's inode-mtime (its
    version: changes when the value changed, says nothing about the value)."""
    s, f = shlex.quote(staged), shlex.quote(final)
    user, group = args([uid, gid], "owner")
    owner = shlex.quote(f"{user}:{group}")
    return (f"if cmp -s {s} {f}; then rm -f -- {s}; else mv -f -- {s} {f}; fi && "
            f"chown {owner} {f} && chmod {mode:04o} {f} && stat -c %i-%Y {f}")


def secret_versions(paths: list[str]) -> str:
    """As root: each secret file's inode-mtime (``-`` when missing), one a line, in order."""
    return "; ".join(f"stat -c %i-%Y {shlex.quote(p)} 2>/dev/null || echo -" for p in paths) or "true"


def remove_secrets_folder(folder: str) -> str:
    """As root: a service's secrets folder (its service is gone from the stack or this host)."""
    return join(["rm", "-rf", "--", folder])
