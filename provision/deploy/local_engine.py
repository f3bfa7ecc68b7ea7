"""The operator's Docker engine, asked a question without the docker SDK: which image id a name points to, over
the engine's unix socket with the standard library (a few milliseconds, where importing the SDK costs ~0.4 s).

`image_id(name)` answers `(True, id)`, `(True, None)` when the engine has no such image, or `(False, None)` when
this way cannot answer (DOCKER_HOST names something other than a unix socket, TLS settings are set, the socket
does not answer as expected): the caller then asks through the SDK, as before (deploy.images.local_client).

`build_fingerprint` and `BuildCache` let a deploy skip `docker build` of an image whose inputs did not change:
the fingerprint covers the build context's files (names, modes, bytes, symlink targets), the Dockerfile's
name, the build args, the target, the tag and the id of every `FROM` image as the engine has it now; the cache
remembers fingerprint → image id, and is used only while the tag still points to that id. A context it cannot
fingerprint with certainty (a `FROM` with a variable, a base image the engine lacks, over 256 MiB of files)
is simply built.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import tempfile
import urllib.parse
from pathlib import Path
from typing import Mapping

API = "/v1.41"
DEFAULT_SOCKET = "/var/run/docker.sock"
MAX_CONTEXT_BYTES = 256 * 1024 * 1024
CACHE_FILE = Path(".provision/builds.json")  # beside the shipping registry's state (deploy.local_registry)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def socket_path(environ: Mapping[str, str] | None = None) -> str | None:
    """The engine's unix socket as docker.from_env would use it, or None when it would use something else."""
    environ = os.environ if environ is None else environ
    if environ.get("DOCKER_TLS_VERIFY") or environ.get("DOCKER_CERT_PATH"):
        return None
    host = environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    if not host.startswith("unix://"):
        return None
    return host[len("unix://"):] or DEFAULT_SOCKET


def image_id(name: str, environ: Mapping[str, str] | None = None, timeout: float = 10.0) -> tuple[bool, str | None]:
    """(answered, the id `name` points to or None); answered False: ask through the SDK instead."""
    path = socket_path(environ)
    if path is None or not os.path.exists(path):
        return False, None
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", f"{API}/images/{urllib.parse.quote(name, safe='/:@')}/json")
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return False, None
    finally:
        connection.close()
    if response.status == 404:
        return True, None
    if response.status != 200:
        return False, None
    try:
        found = json.loads(body).get("Id")
    except (ValueError, AttributeError):
        return False, None
    return (True, found) if isinstance(found, str) and found.startswith("sha256:") else (False, None)


# -- skipping a build whose inputs did not change ------------------------------------------------------
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)


def base_images(dockerfile: str) -> list[str] | None:
    """The images the Dockerfile's stages start FROM (not earlier stages, not scratch); None when one is
    written with a variable (its value depends on build args: not fingerprinted)."""
    stages: set[str] = set()
    images: list[str] = []
    for line in dockerfile.splitlines():
        match = _FROM.match(line)
        if not match:
            continue
        image, alias = match.group(1), match.group(2)
        if "$" in image:
            return None
        if image.lower() != "scratch" and image.lower() not in stages:
            images.append(image)
        if alias:
            stages.add(alias.lower())
    return images


def build_fingerprint(context: Path, dockerfile: str | None, args: Mapping[str, str], target: str | None,
                      tag: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A digest of everything a cached `docker build` depends on, or None when it cannot be told for sure."""
    context = Path(context)
    digest = hashlib.sha256()
    digest.update(json.dumps({"dockerfile": dockerfile, "args": dict(args), "target": target, "tag": tag},
                             sort_keys=True).encode())
    total = 0
    for path in sorted(context.rglob("*")):
        relative = str(path.relative_to(context))
        stat = path.lstat()
        if path.is_symlink():
            entry = f"L {relative} {os.readlink(path)}"
        elif path.is_dir():
            entry = f"D {relative} {stat.st_mode:o}"
        elif path.is_file():
            total += stat.st_size
            if total > MAX_CONTEXT_BYTES:
                return None
            entry = f"F {relative} {stat.st_mode:o} {hashlib.sha256(path.read_bytes()).hexdigest()}"
        else:
            return None
        digest.update(entry.encode("utf-8", "surrogateescape") + b"\0")
    try:
        text = (context / (dockerfile or "Dockerfile")).read_text(errors="replace")
    except OSError:
        return None
    bases = base_images(text)
    if bases is None:
        return None
    for base in bases:
        answered, found = image_id(base, environ)
        if not answered or found is None:
            return None
        digest.update(f"FROM {base} {found}\0".encode())
    return digest.hexdigest()


class BuildCache:
    """fingerprint → image id, in a small JSON file (written atomically; a damaged file is an empty cache)."""

    def __init__(self, path: Path = CACHE_FILE) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}

    def get(self, fingerprint: str) -> str | None:
        return self._read().get(fingerprint)

    def put(self, fingerprint: str, image: str) -> None:
        data = self._read()
        data[fingerprint] = image
        if len(data) > 200:  # the most recent ones (dicts keep insertion order)
            data = dict(list(data.items())[-200:])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".builds.")
            with os.fdopen(handle, "w") as out:
                json.dump(data, out)
            os.replace(temp, self.path)
        except OSError:  # a cache that cannot be written only costs a build next time
            pass
