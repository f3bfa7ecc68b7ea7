"""Host keys: trust on first use into a project-local known_hosts, refuse changed keys.

A first-seen key is recorded (and reported); a key that differs from the recorded one is refused
unless the operator explicitly asks to re-record (`--accept-new-host-keys`). Nothing is ever added
silently. The file is shared by every thread of a run and by the docker SDK side (OpenSSH format).
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

DEFAULT_PATH = Path(".provision/known_hosts")


def key_name(host: str, port: int) -> str:
    """The known_hosts name OpenSSH and paramiko use: `host` on 22, `[host]:port` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key) -> str:
    """OpenSSH's SHA256 fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass
class KnownHosts:
    path: Path = DEFAULT_PATH
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
        client.set_missing_host_key_policy(_TrustOnFirstUse(self, on_record))

    def record(self, name: str, key, *, replace: bool = False) -> str | None:
        """Add (or, with replace, re-record) a host key; atomic rewrite under a file lock."""
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


def _policy_base():
    import paramiko

    return paramiko.MissingHostKeyPolicy


class _TrustOnFirstUse(_policy_base()):
    """paramiko calls this only for hosts with no recorded key; changed keys raise BadHostKeyException."""

    def __init__(self, known_hosts: KnownHosts, on_record: Callable[[str], None] | None) -> None:
        self.known_hosts = known_hosts
        self.on_record = on_record

    def missing_host_key(self, client, hostname, key) -> None:
        note = self.known_hosts.record(hostname, key)
        if note and self.on_record:
            self.on_record(note)
        client.get_host_keys().add(hostname, key.get_name(), key)
