"""Reading values of a Compose file with their place: the file context (for FILE:LINE errors and
relative paths) and the small converters every key uses (text, booleans and integers as Compose
casts them, lists, mappings, durations, byte sizes, ``KEY=VALUE`` lists)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.compose.errors import ComposeError, error_at
from provision.compose.reading import Override
from provision.compose.units import format_duration, parse_bytes, parse_duration

__all__ = ["FileContext", "as_bool", "as_bytes", "as_duration", "as_int", "as_list", "as_mapping", "as_text",
           "key_values", "resolve_path", "unique_items", "unwrap"]


@dataclass
class FileContext:
    """Where a file's values come from: its path, its positioned tree (for lines), its folder."""

    file: Path
    tree: Any
    base_dir: Path
    home: str | None = None  # the operator's HOME, for ``~`` (None: this process's)

    def path(self, value: str) -> str:
        return resolve_path(value, self.base_dir, self.home)

    def fail(self, path: tuple[Any, ...], message: str) -> ComposeError:
        return error_at(self.file, self.tree, path, message)


def resolve_path(value: str, base_dir: Path, home: str | None = None) -> str:
    """A path as Compose resolves it: ``~`` is the home, relative is against ``base_dir``."""
    if value == "~" or value.startswith("~/"):
        value = (home or os.path.expanduser("~")) + value[1:]
    elif value.startswith("~"):
        value = os.path.expanduser(value)
    if os.path.isabs(value):
        return os.path.normpath(value)
    if re.match(r"^[A-Za-z]:[\\/]|^\\\\", value):  # a Windows path: absolute, kept as written
        return value
    return os.path.normpath(os.path.join(str(base_dir), value))


def unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Override) else value


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def as_bool(ctx: FileContext, path: tuple[Any, ...], value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "y", "on"):  # as Compose casts them
        return True
    if isinstance(value, str) and value.lower() in ("false", "no", "n", "off"):
        return False
    raise ctx.fail(path, f"expected a boolean, got {value!r}")


def as_int(ctx: FileContext, path: tuple[Any, ...], value: Any) -> int:
    if isinstance(value, bool):
        raise ctx.fail(path, f"expected an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ctx.fail(path, f"expected an integer, got {value!r}") from None


def as_list(ctx: FileContext, path: tuple[Any, ...], value: Any, what: str = "a list") -> list:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ctx.fail(path, f"expected {what}, got {type(value).__name__}")
    return list(value)


def as_mapping(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    if not isinstance(value, dict):
        raise ctx.fail(path, f"expected a mapping, got {type(value).__name__}")
    return value


def as_duration(ctx: FileContext, path: tuple[Any, ...], value: Any) -> str:
    if not isinstance(value, str):  # Compose's schema: a duration is a string
        raise ctx.fail(path, f"must be a string (a duration such as 30s or 1m30s), got {value!r}")
    try:
        return format_duration(parse_duration(value))
    except ValueError:
        raise ctx.fail(path, f"invalid duration {value!r} (expected e.g. 30s, 1m30s, 500ms)") from None


def as_bytes(ctx: FileContext, path: tuple[Any, ...], value: Any) -> str:
    try:
        return str(parse_bytes(value))
    except ValueError:
        raise ctx.fail(path, f"invalid size {value!r} (expected e.g. 512m, 1gb, 1024)") from None


def key_values(ctx: FileContext, path: tuple[Any, ...], value: Any, *, bare: Any) -> dict[str, Any]:
    """A map or a ``KEY=VALUE`` list as a map of strings; a bare list ``KEY`` gets ``bare``."""
    result: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            result[str(key)] = bare if item is None else as_text(item)
        return result
    for index, item in enumerate(as_list(ctx, path, value, "a mapping or a list")):
        if not isinstance(item, str):
            raise ctx.fail(path + (index,), f"expected KEY=VALUE, got {item!r}")
        key, sep, text = item.partition("=")
        if key != key.rstrip() and path[-1] == "environment":
            raise ctx.fail(path + (index,), f"environment variable {key!r} is declared with a trailing space")
        result[key] = text if sep else bare
    return result


def unique_items(ctx: FileContext, path: tuple[Any, ...], items: list) -> None:
    """Compose's schema: the items of this list must be unique."""
    for index, item in enumerate(items):
        if item in items[:index]:
            raise ctx.fail(path + (index,), f"items at {items.index(item)} and {index} are equal")
