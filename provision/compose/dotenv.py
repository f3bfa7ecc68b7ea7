"""``.env`` and ``env_file`` files read the way Compose reads them (compose-go's dotenv rules):
``KEY=VALUE`` and ``export KEY=VALUE``; ``#`` comments (inline only after a blank in unquoted
values); single quotes literal; double quotes with ``\\n``/``\\t``/``\\"``/``\\\\`` escapes, may span
lines; ``${VAR}`` expanded in unquoted and double-quoted values, from the file's earlier keys and
then the given lookup; a bare ``KEY`` takes the lookup's value (skipped if it has none)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from provision.compose.errors import ComposeError
from provision.compose.interpolation import InterpolationError, interpolate_text

__all__ = ["parse_env_text", "read_env_file"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "\\$"}


def read_env_file(path: Path, lookup: Callable[[str], str | None] = lambda name: None) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ComposeError(f"cannot read the env file: {exc.strerror or exc}", file=path) from None
    except UnicodeDecodeError:
        raise ComposeError("the env file is not valid UTF-8", file=path) from None
    return parse_env_text(text, path, lookup)


def parse_env_text(text: str, path: Path | str, lookup: Callable[[str], str | None]) -> dict[str, str]:
    result: dict[str, str] = {}

    def expand(value: str, line: int) -> str:
        def find(name: str) -> str | None:
            return result[name] if name in result else lookup(name)
        try:
            return interpolate_text(value, find)
        except InterpolationError as exc:
            raise ComposeError(exc.message, file=path, line=line) from None

    pos, line = 0, 1
    length = len(text)
    while pos < length:
        end = text.find("\n", pos)
        end = length if end < 0 else end
        raw = text[pos:end]
        start_line = line
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            pos, line = end + 1, line + 1
            continue
        body = stripped[len("export "):].lstrip() if stripped.startswith("export ") else stripped
        match = _KEY.match(body)
        if not match:
            raise ComposeError(f"invalid line {stripped!r} (expected KEY=VALUE)", file=path, line=line)
        key = match.group()
        rest = body[match.end():].lstrip()
        if not rest or rest.startswith("#"):
            value = lookup(key)
            if value is not None:
                result[key] = value
            pos, line = end + 1, line + 1
            continue
        if rest[0] not in "=:":
            raise ComposeError(f"invalid line {stripped!r} (expected KEY=VALUE)", file=path, line=line)
        rest = rest[1:].lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            # the value may run over several lines: search from the quote in the whole text
            offset = pos + raw.index(rest[0], raw.index(key) + len(key))
            close = offset + 1
            while True:
                close = text.find(quote, close)
                if close < 0:
                    raise ComposeError(f"unterminated quoted value for {key}", file=path, line=line)
                if quote == '"' and _escaped(text, close):
                    close += 1
                    continue
                break
            inner = text[offset + 1: close]
            if quote == "'":
                value = inner
            else:
                value = expand(re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), inner),
                               start_line)
            line += text.count("\n", pos, close)
            end = text.find("\n", close)
            end = length if end < 0 else end
        else:
            comment = re.search(r"\s#", rest)
            if comment:
                rest = rest[: comment.start()]
            value = expand(rest.strip(), start_line)
        result[key] = value
        pos, line = end + 1, line + 1
    return result


def _escaped(text: str, index: int) -> bool:
    count = 0
    while index > 0 and text[index - 1] == "\\":
        count += 1
        index -= 1
    return count % 2 == 1
