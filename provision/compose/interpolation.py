"""Compose variable interpolation: ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}`` and ``$$``; defaults may
themselves hold ``${...}`` (as compose-go allows). Applied to every value of a file, never to keys,
before anything else reads the file (as Compose does)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from provision.compose.reading import Override
from provision.config.positioned_yaml import YamlMapping, YamlSequence

__all__ = ["InterpolationError", "interpolate_text", "interpolate_tree"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A ``${VAR:?message}`` without a value, or a malformed ``${...}``; ``path`` says where."""

    def __init__(self, message: str, path: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def interpolate_text(text: str, lookup: Callable[[str], str | None],
                     unset: Callable[[str], None] = lambda name: None) -> str:
    """``text`` with its variables replaced; unset variables without a default become '' (and
    are reported to ``unset``: Compose warns about them)."""
    def plain(name: str) -> str:
        value = lookup(name)
        if value is None:
            unset(name)
        return value or ""

    out, pos = _expand(text, 0, lookup, stop=None, plain=plain)
    return out


def _expand(text: str, pos: int, lookup: Callable[[str], str | None], stop: str | None,
            plain: Callable[[str], str]) -> tuple[str, int]:
    """Expand from ``pos`` until the end (or an unmatched ``stop`` character); return (text, end)."""
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if stop is not None and char == stop:
            return "".join(out), pos
        if char != "$":
            out.append(char)
            pos += 1
            continue
        nxt = text[pos + 1: pos + 2]
        if nxt == "$":
            out.append("$")
            pos += 2
        elif nxt == "{":
            value, pos = _braced(text, pos + 2, lookup, plain)
            out.append(value)
        else:
            match = _NAME.match(text, pos + 1)
            if not match:
                raise InterpolationError(f"invalid interpolation format in {text!r}: a '$' must be followed by a "
                                         "name or '{' (write '$$' for a literal '$')")
            out.append(plain(match.group()))
            pos = match.end()
    if stop is not None:
        raise InterpolationError(f"invalid interpolation format in {text!r}: missing '}}'")
    return "".join(out), pos


def _braced(text: str, pos: int, lookup: Callable[[str], str | None],
            plain: Callable[[str], str]) -> tuple[str, int]:
    match = _NAME.match(text, pos)
    if not match:
        raise InterpolationError(f"invalid interpolation format in {text!r}: expected a variable name after '${{'")
    name = match.group()
    pos = match.end()
    rest = text[pos:]
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            break
    else:
        if rest.startswith("}"):
            return plain(name), pos + 1
        raise InterpolationError(f"invalid interpolation format in {text!r}: unexpected character after ${{{name}")
    value = lookup(name)
    colon = op.startswith(":")
    unset = value is None or (colon and value == "")
    argument, end = _expand(text, pos + len(op), lookup, stop="}", plain=plain)
    end += 1
    kind = op[-1]
    if kind == "-":
        return (argument if unset else value or ""), end
    if kind == "+":
        return ("" if unset else argument), end
    if unset:  # "?"
        detail = f": {argument}" if argument else ""
        raise InterpolationError(f"required variable {name} is missing a value{detail}")
    return value or "", end


def interpolate_tree(tree: Any, environ: Mapping[str, str], path: tuple[Any, ...] = (),
                     unset: Callable[[str], None] = lambda name: None) -> Any:
    """A copy of a loaded document with every string value interpolated (positions kept); the
    names of unset variables used without a default go to ``unset``."""
    def lookup(name: str) -> str | None:
        return environ.get(name)

    def walk(node: Any, where: tuple[Any, ...]) -> Any:
        if isinstance(node, dict):
            copy = YamlMapping()
            copy.line = getattr(node, "line", None)
            copy.key_lines = dict(getattr(node, "key_lines", {}))
            for key, value in node.items():
                copy[key] = walk(value, where + (key,))
            return copy
        if isinstance(node, list):
            seq = YamlSequence(walk(item, where + (index,)) for index, item in enumerate(node))
            seq.line = getattr(node, "line", None)
            seq.item_lines = list(getattr(node, "item_lines", []))
            return seq
        if isinstance(node, Override):
            return Override(walk(node.value, where), node.line)
        if isinstance(node, str):
            try:
                result = interpolate_text(node, lookup, unset)
            except InterpolationError as exc:
                raise InterpolationError(exc.message, where) from None
            return result
        return node

    return walk(tree, path)

