"""Reading one Compose file: YAML with line numbers, anchors and ``<<`` merge keys, and Compose's
``!reset`` / ``!override`` tags. Errors are ``FILE:LINE: YAML syntax error: ...`` (exit 4)."""

from __future__ import annotations

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
