"""Scalar values of a stack file: durations, sizes, ports, volumes, text, host patterns.

Pure parsers (``ValueError`` on bad input, pydantic turns that into the located message) and the
``Annotated`` types the models use them through. No YAML and no models here.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = [
    "Duration", "EnvValue", "HostPattern", "Size", "Text", "TextMap", "VolumeEntry", "as_list", "as_text",
    "env_as_text", "host_pattern", "is_number", "is_relative_path", "key_values", "none_as_empty",
    "parse_duration", "parse_ip", "parse_port_number", "parse_short_port", "parse_size", "split_command",
    "split_volume", "volume_entry",
]

_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_duration(value: Any) -> float:
    """Seconds from ``"5s"``, ``"1m30s"``, ``"500ms"``, ``"2h"`` or a number of seconds."""
    if is_number(value) and value >= 0:
        return float(value)
    text = value.strip() if isinstance(value, str) else ""
    if text and _DURATION_PART.sub("", text) == "":
        return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    raise ValueError(f"invalid duration {value!r} (e.g. 5s, 1m30s, 500ms, or seconds)")


def parse_size(value: Any) -> int:
    """Bytes from ``"512m"``, ``"2g"``, ``"1024k"``, ``"100b"`` or an int."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"invalid size {value!r} (e.g. 512m, 2g, 1024k, 100b, or bytes)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def as_text(value: Any) -> Any:
    """YAML scalars as strings (``true`` → ``"true"``, ``8`` → ``"8"``); other types left to pydantic."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return str(value)
    return value


def env_as_text(value: Any) -> Any:
    return "" if value is None else as_text(value)


def parse_port_number(text: str) -> int | None:
    number = int(text) if text.isdigit() else 0
    return number if 1 <= number <= 65535 else None


def parse_short_port(value: str | int) -> dict[str, Any]:
    """``"8000"``, ``"8000:80"``, ``"127.0.0.1:8000:80"``, ``"127.0.0.1::80"``, ``".../udp"``."""
    spec, _, protocol = str(value).strip().partition("/")
    parts = spec.rsplit(":", 2)
    host_ip = parse_ip(parts[0]) if len(parts) == 3 else None
    published = parts[-2] if len(parts) >= 2 else None
    target = parse_port_number(parts[-1])
    published_port = parse_port_number(published) if published else None
    valid_ip = len(parts) < 3 or host_ip is not None
    valid_published = published is None or published_port is not None or (published == "" and len(parts) == 3)
    if target is None or protocol not in ("", "tcp", "udp") or not valid_ip or not valid_published:
        raise ValueError(f"invalid port {value!r}")
    return {"target": target, "published": published_port, "protocol": protocol or "tcp", "host_ip": host_ip}


def parse_ip(text: str) -> str | None:
    """An IPv4/IPv6 address (brackets stripped), or None."""
    try:
        return str(ipaddress.ip_address(text.removeprefix("[").removesuffix("]")))
    except ValueError:
        return None


def is_relative_path(source: str) -> bool:
    return source in (".", "..") or source.startswith(("./", "../"))


def split_volume(text: str) -> tuple[str, str, bool]:
    """(source, target, read_only) of ``SOURCE:TARGET[:ro|rw]``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/") \
            or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise ValueError(f"invalid volume {text!r} (expected SOURCE:TARGET[:ro|rw] with an absolute TARGET)")
    return parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"


def volume_entry(value: Any) -> Any:
    if isinstance(value, str):
        split_volume(value)
    return value


def key_values(value: Any, what: str) -> Any:
    """A ``["K=V", "K"]`` list as a dict (``K`` alone → empty value); dicts pass through."""
    if not isinstance(value, list):
        return {} if value is None else value
    result: dict[str, str] = {}
    for item in value:
        if not isinstance(item, str) or not item or item.startswith("="):
            raise ValueError(f"invalid {what} entry {item!r} (expected KEY=VALUE)")
        key, _, val = item.partition("=")
        result[key] = val
    return result


def as_list(value: Any) -> Any:
    """``None`` → ``[]``; a single string → ``[string]``."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def split_command(value: Any) -> Any:
    """A string command split like a shell; lists as they are."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command {value!r}: {exc}") from None
    if isinstance(value, list):
        return [as_text(item) for item in value]
    return value


def host_pattern(value: Any) -> Any:
    """An Ansible host pattern: not empty (that would not mean "all"), brackets closed."""
    if value is None or not isinstance(value, str):
        return value
    from provision.config.patterns import split_host_pattern
    from provision.errors import PatternError

    try:
        parts = split_host_pattern(value)
    except PatternError as exc:
        raise ValueError(str(exc)) from None
    if not parts or any(part in ("&", "!") for part in parts):
        raise ValueError(f"empty host pattern {value!r} (use 'all' to mean every host)")
    return value


HostPattern = Annotated[str, BeforeValidator(host_pattern)]


def none_as_empty(value: Any) -> Any:
    return {} if value is None else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Text = Annotated[str, BeforeValidator(as_text)]
EnvValue = Annotated[str, BeforeValidator(env_as_text)]
VolumeEntry = Annotated[str, BeforeValidator(volume_entry)]
TextMap = Annotated[dict[str, Text], BeforeValidator(lambda v: key_values(v, "label"))]
