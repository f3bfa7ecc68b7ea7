"""Host keys: trust on first use into provision's own known_hosts, refuse changed keys.

A first-seen key is recorded (and reported); a key that differs from the recorded one is refused
unless the operator explicitly asks to re-record (`--accept-new-host-keys`). Nothing is ever added
silently. The file is shared by every thread of a run, by concurrent runs (a file lock) and by the
docker SDK side (OpenSSH format).

First use is decided under the file lock, against the file as it is then: when another thread or
process recorded a key for the same name after this connection loaded the file (two inventory
aliases of one address:port, two runs at once), the key presented here must equal the recorded
one, else it is refused exactly like a changed key. Whoever records first wins; nobody's key is
accepted unverified.

Where the file is by default (`default_path`): $PROVISION_KNOWN_HOSTS, else
$PROVISION_HOME/known_hosts, else ~/.provision/known_hosts: never relative to the current folder.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable



def default_path() -> Path:
    """$PROVISION_KNOWN_HOSTS, else $PROVISION_HOME/known_hosts, else ~/.provision/known_hosts; absolute
    (a relative variable is taken from the current folder once, here), so it never moves with `cd`."""
    explicit = os.environ.get("PROVISION_KNOWN_HOSTS")
    if explicit:
        return Path(explicit).expanduser().absolute()
    home = os.environ.get("PROVISION_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".provision"
    return base.absolute() / "known_hosts"


DEFAULT_PATH = default_path()  # kept for importers; KnownHosts() resolves default_path() when created


def key_name(host: str, port: int) -> str:
    """The known_hosts name OpenSSH and paramiko use: `host` on 22, `[host]:port` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key) -> str:
    """OpenSSH's SHA256 fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass
class KnownHosts:
    path: Path = field(default_factory=default_path)
    accept_changed: bool = False
    recorded: list[tuple[str, str, str]] = field(default_factory=list)  # (name, key type, fingerprint)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self):
        """The recorded keys, read fresh from disk."""
        import paramiko

        keys = paramiko.HostKeys()
        if self.path.exists():
            keys.load(str(self.path))
        return keys

    def prepare(self, client, on_record: Callable[[str], None] | None = None) -> None:
        """Make a paramiko SSHClient check against this file and record unknown keys (TOFU).

        on_record receives a one-line note for the report each time a key is recorded."""
        client.get_host_keys().update(self.load())
        client.set_missing_host_key_policy(_policy_class()(self, on_record))

    def trust_first_use(self, name: str, key) -> str | None:
        """A key presented by a host this connection had no record of: recorded when the file still
        has none for `name` (returns the note for the report). When another thread or run recorded
        one meanwhile, the same key is accepted (None) and a different one raises paramiko's
        BadHostKeyException, as for any changed key: no race lets an unverified key in."""
        import paramiko

        with self._lock, self._file_lock():
            keys = paramiko.HostKeys()
            if self.path.exists():
                keys.load(str(self.path))
            existing = keys.lookup(name)
            if existing is not None:
                same_type = existing.get(key.get_name())
                if same_type is not None and same_type == key:
                    return None
                expected = same_type if same_type is not None else list(existing.values())[0]
                raise paramiko.BadHostKeyException(name, key, expected)
            keys.add(name, key.get_name(), key)
            self._write(keys)
            self.recorded.append((name, key.get_name(), fingerprint(key)))
        return f"recorded new host key {name} {key.get_name()} {fingerprint(key)} in {self.path}"

    def record(self, name: str, key, *, replace: bool = False) -> str | None:
        """Add (or, with replace, re-record) a host key; atomic rewrite under a file lock.
        Without replace, an existing entry is left as it is (None): use trust_first_use to compare."""
        import paramiko

        with self._lock, self._file_lock():
            keys = paramiko.HostKeys()
            if self.path.exists():
                keys.load(str(self.path))
            existing = keys.lookup(name)
            if existing is not None and not replace:
                return None
            if replace and existing is not None:
                keys.pop(name, None)
            keys.add(name, key.get_name(), key)
            self._write(keys)
            self.recorded.append((name, key.get_name(), fingerprint(key)))
        verb = "re-recorded changed" if replace else "recorded new"
        return f"{verb} host key {name} {key.get_name()} {fingerprint(key)} in {self.path}"

    def forget(self, name: str) -> bool:
        """Drop the recorded keys of one host name (used when the sandbox destroys a host)."""
        import paramiko

        with self._lock, self._file_lock():
            if not self.path.exists():
                return False
            keys = paramiko.HostKeys(str(self.path))
            if keys.lookup(name) is None:
                return False
            keys.pop(name, None)
            self._write(keys)
            return True

    def recorded_fingerprint(self, name: str) -> str | None:
        entry = self.load().lookup(name)
        if not entry:
            return None
        return ", ".join(f"{kind} {fingerprint(k)}" for kind, k in entry.items())

    def _write(self, keys) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=self.path.parent)
        os.close(fd)
        try:
            keys.save(tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def _file_lock(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return _Flock(self.path.with_name(self.path.name + ".lock"))


class _Flock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        self.handle = open(self.path, "a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


_POLICY = None
_POLICY_LOCK = threading.Lock()


def _policy_class():
    """Built on first use, so that importing this module (the CLI's defaults do) imports no paramiko."""
    global _POLICY
    with _POLICY_LOCK:
        if _POLICY is None:
            _POLICY = _define_policy()
    return _POLICY


def _define_policy():
    import paramiko

    class TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
        """paramiko calls this for a name the client had no key for when it loaded the file (changed
        keys of known names raise BadHostKeyException in paramiko itself). The file may have gained
        an entry since (a concurrent first connection): trust_first_use compares with it and raises
        BadHostKeyException when it differs, so paramiko refuses the connection."""

        def __init__(self, known_hosts: KnownHosts, on_record: Callable[[str], None] | None) -> None:
            self.known_hosts = known_hosts
            self.on_record = on_record

        def missing_host_key(self, client, hostname, key) -> None:
            note = self.known_hosts.trust_first_use(hostname, key)
            if note and self.on_record:
                self.on_record(note)
            client.get_host_keys().add(hostname, key.get_name(), key)

    return TrustOnFirstUse
