"""Reading the operator's input files (inventories, vars files, playbooks) defensively.

Every refusal is an :class:`InputError` naming the file (and the line where there is one), raised
before anything is parsed or contacted:

* not a regular file (a directory, a FIFO that would block forever, ``/dev/zero`` that never ends);
* larger than :data:`MAX_INPUT_BYTES` (bounded memory);
* unreadable (permissions, I/O errors);
* encrypted with ansible-vault (``$ANSIBLE_VAULT;1.1;AES256`` header): provision cannot decrypt it;
* NUL bytes (a binary file) and text that is not UTF-8, at the line where they occur.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provision.errors import InputError

__all__ = ["MAX_INPUT_BYTES", "VAULT_HEADER", "decode_utf8", "check_text", "is_vault", "read_input"]

MAX_INPUT_BYTES = 32 << 20  # 32 MiB: far above any real inventory or playbook
VAULT_HEADER = b"$ANSIBLE_VAULT;"
VAULT_HINT = "provision cannot decrypt it (decrypt it first: ansible-vault decrypt, or ansible-vault view into a private file)"


def read_input(path: str | Path, what: str, *, error: type[InputError] = InputError) -> bytes:
    """The bytes of a regular file no larger than :data:`MAX_INPUT_BYTES`, else ``error``."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} not found", file=path) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", file=path) from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"the {what} is a directory, not a file", file=path)
    if not stat.S_ISREG(info.st_mode):
        raise error(f"the {what} is not a regular file (a pipe, socket or device)", file=path)
    if info.st_size > MAX_INPUT_BYTES:
        raise error(f"the {what} is too large ({info.st_size} bytes; at most {MAX_INPUT_BYTES})", file=path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", file=path) from None
    if len(data) > MAX_INPUT_BYTES:
        raise error(f"the {what} is too large (more than {MAX_INPUT_BYTES} bytes)", file=path)
    return data


def is_vault(data: bytes | str) -> bool:
    """Whether the whole file is ansible-vault ciphertext."""
    head = data[:64].lstrip() if isinstance(data, bytes) else data[:64].lstrip().encode("utf-8", "replace")
    return head.startswith(VAULT_HEADER)


def check_text(data: bytes, path: str | Path, what: str, *, error: type[InputError] = InputError) -> None:
    """Refuse vault ciphertext and NUL bytes (binary files), at their line."""
    if is_vault(data):
        raise error(f"the {what} is encrypted with ansible-vault; {VAULT_HINT}", file=path, line=1)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise error(f"NUL byte in the {what} (a binary file?)", file=path, line=data.count(b"\n", 0, nul) + 1)


def decode_utf8(data: bytes, path: str | Path, what: str, *, error: type[InputError] = InputError) -> str:
    """The text, or ``error`` at the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"the {what} is not valid UTF-8 (byte 0x{data[exc.start]:02x})", file=path, line=line) from None
