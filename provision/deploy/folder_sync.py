"""Bind-mount folders sent to a host: the folder as a reproducible tar (read here) and where the host
keeps the digest of what it last received (see commands.deploy_host.sync_folder for the host side)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

from provision.errors import InputError


def folder_archive(folder: Path) -> tuple[bytes, str]:
    """A reproducible tar of a folder (sorted, mtimes and owners zeroed, setuid/setgid/sticky bits
    dropped) and its sha256. A symlink that leads outside the folder is refused (InputError): what it
    points to on the host is not what it points to here."""
    buffer = io.BytesIO()
    root = folder.resolve()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                target = (path.parent / os.readlink(path)).resolve()
                if os.path.isabs(os.readlink(path)) or not target.is_relative_to(root):
                    raise InputError(f"{path} is a symlink to {os.readlink(path)}, outside {folder}: "
                                     "refusing to sync it (copy the file in instead)")
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            info.mode &= 0o777
            if info.isreg():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def sync_marker(remote_dir: str, target: str) -> str:
    """Where the digest of a synced folder is kept: beside the folders, never inside a mount."""
    return f"{remote_dir.rstrip('/')}/.provision-sync/{hashlib.sha256(target.encode()).hexdigest()[:16]}"
