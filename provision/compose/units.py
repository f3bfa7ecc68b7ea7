"""Durations and byte sizes, read and printed the way Compose (Go) prints them."""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["format_duration", "parse_bytes", "parse_duration"]

_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(value: object) -> int:
    """Nanoseconds of a Go duration (``1m30s``, ``500ms``, ``1.5h``); a bare number is seconds
    (Compose accepts integers as seconds). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return int(Decimal(str(value)) * 1_000_000_000)
    text = str(value)
    sign = 1
    if text and text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(f"invalid duration {value!r}")
    total = Decimal(0)
    pos = 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            raise ValueError(f"invalid duration {value!r}")
        total += Decimal(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {value!r}")
    return sign * int(total)


def _frac(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def format_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``1m30s``, ``1h0m0s``, ``500ms``, ``1.5s``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        if ns < 1_000:
            return f"{sign}{ns}ns"
        if ns < 1_000_000:
            return f"{sign}{_frac(ns, 1_000)}µs"
        return f"{sign}{_frac(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _frac(rest, 1_000_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


_FLOAT = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")  # Go's ParseFloat, decimal
_BYTE_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_bytes(value: object) -> int:
    """Bytes of ``512m``, ``1gb``, ``1.5KiB``, ``2 G``, ``1024`` (binary units), as Compose reads
    them (docker/go-units ``RAMInBytes``: a number, one optional space, a suffix)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep < 0:
        raise ValueError(f"invalid size {value!r}")
    number, suffix = (text[: sep + 1], text[sep + 1:]) if text[sep] != " " else (text[:sep], text[sep + 1:])
    if not _FLOAT.match(number):
        raise ValueError(f"invalid size {value!r}")
    size = float(number)
    if size < 0:
        raise ValueError(f"invalid size {value!r}")
    suffix = suffix.lower()
    if not suffix or suffix == "b":
        return int(size)
    if len(suffix) > 3 or suffix[0] not in _BYTE_UNITS or (len(suffix) == 2 and suffix[1] != "b") or \
            (len(suffix) == 3 and suffix[1:] != "ib"):
        raise ValueError(f"invalid size {value!r}")
    return int(size * _BYTE_UNITS[suffix[0]])
