"""Reading one Compose file: YAML with line numbers, anchors and ``<<`` merge keys, and Compose's
``!reset`` / ``!override`` tags. Errors are ``FILE:LINE: YAML syntax error: ...`` (exit 4).

Plain scalars resolve as Compose's YAML library (go-yaml v3, YAML 1.2 core schema) resolves them,
not as YAML 1.1: ``yes``/``no``/``on``/``off`` stay strings, ``80:80`` is a string (never a
base-60 number), ``0o755`` and ``0755`` are octal, ``1e3`` is a float, dates stay strings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provision.compose.errors import ComposeError
from provision.config.positioned_yaml import PositionLoader, yaml_error_parts

__all__ = ["ComposeLoader", "Override", "Reset", "read_compose_file"]


@dataclass
class Reset:
    """A value tagged ``!reset``: the merged result drops what earlier files set for this key."""

    line: int | None = None


@dataclass
class Override:
    """A value tagged ``!override``: it replaces what earlier files set, without merging."""

    value: Any
    line: int | None = None


class ComposeLoader(PositionLoader):
    """PositionLoader plus Compose's ``!reset`` and ``!override`` tags."""

    def construct_reset(self, node: yaml.Node) -> Reset:
        return Reset(node.start_mark.line + 1)

    def construct_override(self, node: yaml.Node) -> Override:
        return Override(self._construct_untagged(node), node.start_mark.line + 1)


    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(node.value).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if len(digits) > 1 and digits.startswith("0") and digits.isdigit():
            return sign * int(digits, 8)
        return super().construct_yaml_int(node)


# go-yaml v3's implicit types: the YAML 1.2 core schema (plus 0-prefixed octal, as Go reads it)
_DROPPED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value", "tag:yaml.org,2002:null"}
ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
    for first, resolvers in PositionLoader.yaml_implicit_resolvers.items()
}
ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                                    ["~", "n", "N", ""])
ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:int",
                                    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                    list("-+0123456789"))
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))
ComposeLoader.add_constructor("tag:yaml.org,2002:int", ComposeLoader.construct_yaml_int)
ComposeLoader.add_constructor("!reset", ComposeLoader.construct_reset)
ComposeLoader.add_constructor("!override", ComposeLoader.construct_override)


def read_compose_file(path: Path) -> Any:
    """The document of ``path`` (None when empty). Raises ComposeError with FILE:LINE."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ComposeError(f"cannot read the Compose file: {exc.strerror or exc}", file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ComposeError("the Compose file is not valid UTF-8", file=path, line=line) from None
    try:
        return yaml.load(text, Loader=ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        message, line = yaml_error_parts(exc, text)
        raise ComposeError(message, file=path, line=line) from None
