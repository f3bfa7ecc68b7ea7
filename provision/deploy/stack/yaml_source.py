"""Reading a stack file as YAML that remembers where every node was (for ``FILE:LINE`` messages).

The shared position-recording loader (:mod:`provision.config.positioned_yaml`) plus the line of every
sequence item, and a refusal of ansible-vault values. Returns plain dict/list subclasses the models
validate; :func:`line_at` maps a validation path back to its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from provision.config.input_file import check_text, decode_utf8, read_input
from provision.config.positioned_yaml import (PositionLoader, YamlLimitError, YamlMapping, YamlSequence,
                                              yaml_error_parts)
from provision.errors import InputError

__all__ = ["Loc", "StackLoader", "line_at", "raw_get", "read_stack_yaml"]

Loc = tuple[Any, ...]


class StackLoader(PositionLoader):
    """The inventory's position-recording loader; `!vault` values are refused (nothing can decrypt them)."""

    def construct_vault(self, node: yaml.Node):  # type: ignore[no-untyped-def]
        raise YamlLimitError(None, None, f"an ansible-vault encrypted value ({node.tag}): provision cannot decrypt it "
                             "(pass secrets through the service's secrets: from the environment)", node.start_mark)


StackLoader.add_constructor("!vault", StackLoader.construct_vault)
StackLoader.add_constructor("!vault-encrypted", StackLoader.construct_vault)


def read_stack_yaml(path: Path) -> Any:
    """The file's YAML with positions; an InputError at the offending line when it cannot be read."""
    data = read_input(path, "playbook")
    check_text(data, path, "playbook")
    text = decode_utf8(data, path, "playbook")
    try:
        return yaml.load(text, Loader=StackLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        message, line = yaml_error_parts(exc, text)
        raise InputError(message, file=path, line=line) from None


def line_at(raw: Any, loc: Loc) -> int | None:
    """The line of the deepest node of ``loc`` found in the loaded YAML."""
    line = getattr(raw, "line", None)
    node = raw
    for part in loc:
        if isinstance(node, YamlMapping) and part in node:
            line, node = node.line_of(part), node[part]
        elif isinstance(node, YamlSequence) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.item_lines[part], node[part]
        else:
            break
    return line


def raw_get(raw: Any, loc: Loc) -> Any:
    """The loaded YAML node at ``loc`` (None when the path does not exist)."""
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node
