"""Where a Compose problem is: ``FILE:LINE: services.x.key: message`` as an InputError (exit 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provision.config.positioned_yaml import YamlMapping, YamlSequence
from provision.errors import InputError

__all__ = ["ComposeError", "dotted", "line_at"]


class ComposeError(InputError):
    """A Compose file provision cannot read, or reads but refuses."""


def dotted(path: tuple[Any, ...]) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def line_at(tree: Any, path: tuple[Any, ...]) -> int | None:
    """The line of the deepest node of ``path`` that the positioned tree still knows."""
    line = getattr(tree, "line", None)
    node = tree
    for part in path:
        if isinstance(node, YamlMapping) and part in node:
            line = node.line_of(part) or line
            node = node[part]
        elif isinstance(node, YamlSequence) and isinstance(part, int) and part < len(node):
            item = node[part]
            item_lines = getattr(node, "item_lines", [])
            line = (item_lines[part] if part < len(item_lines) else None) or getattr(item, "line", None) or line
            node = item
        else:
            break
    return line


def error_at(file: Path | str | None, tree: Any, path: tuple[Any, ...], message: str) -> ComposeError:
    """``FILE:LINE: a.b.c: message``."""
    return ComposeError(f"{dotted(path)}: {message}" if path else message, file=file, line=line_at(tree, path))
