"""Env files of a stack (``env_file:``): ``KEY=VALUE`` lines, read for the services' environment."""

from __future__ import annotations

from pathlib import Path

from provision.config.input_file import check_text, decode_utf8, read_input
from provision.errors import InputError

__all__ = ["read_env_file", "unquote"]


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` allowed, ``#`` comments and blank lines skipped, quotes stripped)."""
    data = read_input(path, "env file")
    check_text(data, path, "env file")
    lines = decode_utf8(data, path, "env file").splitlines()
    result: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not key or any(c.isspace() for c in key):
            raise InputError("invalid line (expected KEY=VALUE)", file=path, line=number)
        result[key] = unquote(value.strip())
    return result


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
