"""YAML (and JSON) documents read the way Ansible's ``DataLoader`` reads them, with positions.

Mappings and sequences come back as :class:`YamlMapping` and :class:`YamlSequence`, which remember
their line numbers (and each key's line) for FILE:LINE error messages. Shared by the inventory
readers (``yaml_inventory``, ``group_vars``/``host_vars``) and the stack-file loader.

Stricter than PyYAML alone: duplicate keys in one mapping, nesting deeper than 100 levels, aliases
that expand to more than a million nodes, recursive aliases and integers too long to convert are
errors, each with its file and line.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from provision.errors import InventoryError

__all__ = [
    "PositionLoader",
    "UnsafeText",
    "VaultedText",
    "YamlLimitError",
    "YamlMapping",
    "YamlSequence",
    "load_yaml",
    "type_name",
    "yaml_error_parts",
]


class UnsafeText(str):
    """A string tagged ``!unsafe``: Ansible never templates it; ansible-inventory shows it as
    ``{"__ansible_unsafe": "..."}``."""


class VaultedText(str):
    """The ciphertext of a ``!vault`` value. It is not decrypted here; ansible-inventory shows
    it as ``{"__ansible_vault": "..."}``."""


class YamlMapping(dict):
    """A dict that remembers its own line and the line of each key (1-based, None if unknown)."""

    line: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int | None:
        return self.key_lines.get(key, self.line)


class YamlSequence(list):
    """A list that remembers its line (1-based, None if unknown) and the line of each item
    (``item_lines``, empty when unknown)."""

    line: int | None = None
    item_lines: "list[int] | tuple[()]" = ()


def type_name(value: Any) -> str:
    """The YAML-ish name of a value's type, for messages: mapping, list, str, int, ..."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


MAX_DEPTH = 100  # nesting of mappings and sequences; real inventories and playbooks use under 20
MAX_ALIAS_EXPANSION = 1_000_000  # nodes that aliases may add when the document is expanded


class YamlLimitError(yaml.MarkedYAMLError):
    """A document provision refuses to expand: too deep, an alias bomb, a recursive alias, a
    duplicate key, a number too big. Rendered as ``FILE:LINE: problem`` (no "syntax error")."""


def _merge_key(node: yaml.Node) -> bool:
    return node.tag == "tag:yaml.org,2002:merge"


class PositionLoader(yaml.SafeLoader):
    """SafeLoader building YamlMapping/YamlSequence, with ``!unsafe`` and ``!vault``.

    Hardened for untrusted files: nesting deeper than :data:`MAX_DEPTH`, aliases that would
    expand to more than :data:`MAX_ALIAS_EXPANSION` nodes (a "billion laughs"), recursive
    aliases, duplicate mapping keys and integers too long to convert are refused with their
    line (:class:`YamlLimitError`), never a RecursionError, MemoryError or silent overwrite."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._unsafe_depth = 0
        self._compose_depth = 0

    # -- composition: depth, alias expansion, recursion -----------------------------------

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        self._compose_depth += 1
        try:
            if self._compose_depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(None, None, f"the document is nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._compose_depth -= 1

    def get_single_node(self):  # type: ignore[no-untyped-def]
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    # -- construction -----------------------------------------------------------------------

    def construct_positioned_map(self, node: yaml.MappingNode):  # type: ignore[no-untyped-def]
        data = YamlMapping()
        data.line = node.start_mark.line + 1
        yield data
        self._refuse_duplicate_keys(node)
        data.update(self.construct_mapping(node))  # also resolves '<<' merge keys
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node)
            data.key_lines.setdefault(key, key_node.start_mark.line + 1)

    def construct_positioned_seq(self, node: yaml.SequenceNode):  # type: ignore[no-untyped-def]
        data = YamlSequence()
        data.line = node.start_mark.line + 1
        data.item_lines = [item.start_mark.line + 1 for item in node.value]
        yield data
        data.extend(self.construct_sequence(node))

    def _refuse_duplicate_keys(self, node: yaml.MappingNode) -> None:
        """Two equal keys in one mapping are an error (Ansible warns and keeps the last one).
        Keys brought in by a ``<<`` merge may be overridden: that is what merges are for."""
        seen: set = set()
        for key_node, _value in node.value:
            if _merge_key(key_node) or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable: construct_mapping reports it
            if duplicate:
                raise YamlLimitError(None, None, f"duplicate key {str(key)!r} (it is already set above in this mapping)",
                                     key_node.start_mark)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise YamlLimitError(None, None, f"integer too large ({len(node.value)} digits)",
                                 node.start_mark) from None

    def construct_text(self, node: yaml.ScalarNode) -> str:
        value = self.construct_scalar(node)
        return UnsafeText(value) if self._unsafe_depth else value

    def _construct_untagged(self, node: yaml.Node) -> Any:
        """Construct ``node`` as if it had no explicit tag (what ``!unsafe x`` wraps)."""
        plain = copy.copy(node)
        plain.tag = self.resolve(type(node), node.value, (True, False))
        return self.construct_object(plain, deep=True)

    def construct_unsafe(self, node: yaml.Node) -> Any:
        self._unsafe_depth += 1
        try:
            return self._construct_untagged(node)
        finally:
            self._unsafe_depth -= 1

    def construct_vault(self, node: yaml.Node) -> VaultedText:
        ciphertext = self._construct_untagged(node)
        if not isinstance(ciphertext, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"the {node.tag!r} tag requires a string value", node.start_mark
            )
        return VaultedText(ciphertext)


PositionLoader.add_constructor("tag:yaml.org,2002:map", PositionLoader.construct_positioned_map)
PositionLoader.add_constructor("tag:yaml.org,2002:seq", PositionLoader.construct_positioned_seq)
PositionLoader.add_constructor("tag:yaml.org,2002:str", PositionLoader.construct_text)
PositionLoader.add_constructor("tag:yaml.org,2002:int", PositionLoader.construct_yaml_int)
PositionLoader.add_constructor("!unsafe", PositionLoader.construct_unsafe)
PositionLoader.add_constructor("!vault", PositionLoader.construct_vault)
PositionLoader.add_constructor("!vault-encrypted", PositionLoader.construct_vault)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that aliases make recursive or too large once expanded.

    Aliases share nodes, so the graph stays small while its expansion (what any consumer walking
    the data sees) can be exponential. Sizes are computed once per node, without recursion."""
    sizes: dict[int, int] = {}
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            children = _children(node)
            size = 1 + sum(sizes[id(child)] for child in children)
            sizes[key] = size
            distinct += 1
            if size - distinct > MAX_ALIAS_EXPANSION:
                raise YamlLimitError(None, None, f"aliases expand this document to more than {MAX_ALIAS_EXPANSION} "
                                     "nodes (an alias bomb?)", node.start_mark)
            continue
        if key in sizes:
            continue
        if key in open_nodes:  # reached again while still inside it
            raise YamlLimitError(None, None, "recursive alias (a node that contains itself)", node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise YamlLimitError(None, None, "recursive alias (a node that contains itself)", child.start_mark)
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def yaml_error_parts(exc: yaml.YAMLError, text: str | None = None) -> tuple[str, int | None]:
    """(message, line) of a YAML error: limits as they are, other problems as syntax errors.
    A reader error (a character YAML does not allow, such as NUL) gets its line from ``text``."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1 if text is not None else None
        return f"YAML syntax error: character {exc.character!r} is not allowed in YAML", line
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    line = mark.line + 1 if mark else None
    if isinstance(exc, YamlLimitError):
        return problem, line
    return f"YAML syntax error: {problem}", line


def _yaml_error(exc: yaml.YAMLError, path: Path, text: str | None = None) -> InventoryError:
    """One line: the problem, at the line where the parser noticed it."""
    message, line = yaml_error_parts(exc, text)
    return InventoryError(message, file=path, line=line)


def _from_json(value: Any, positions: Any) -> Any:
    """JSON data as YamlMapping/YamlSequence, taking line numbers from the same document read
    as YAML where the shapes agree. ``{"__ansible_unsafe": s}`` and ``{"__ansible_vault": s}``
    (what ansible-inventory writes) are read back as UnsafeText and VaultedText."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("__ansible_unsafe"), str):
            return UnsafeText(value["__ansible_unsafe"])
        if len(value) == 1 and isinstance(value.get("__ansible_vault"), str):
            return VaultedText(value["__ansible_vault"])
        mapping = YamlMapping()
        known = positions if isinstance(positions, YamlMapping) else YamlMapping()
        mapping.line = known.line
        for key, item in value.items():
            mapping[key] = _from_json(item, known.get(key))
            if key in known.key_lines:
                mapping.key_lines[key] = known.key_lines[key]
        return mapping
    if isinstance(value, list):
        sequence = YamlSequence()
        known_items = positions if isinstance(positions, YamlSequence) else []
        sequence.line = getattr(positions, "line", None)
        sequence.extend(
            _from_json(item, known_items[index] if index < len(known_items) else None)
            for index, item in enumerate(value)
        )
        return sequence
    return value


def load_yaml(text: str, path: Path) -> Any:
    """Parse a YAML or JSON document like Ansible's ``DataLoader.load``: JSON when it is valid
    JSON, YAML otherwise. Raises :class:`InventoryError` (file:line: YAML syntax error: ...)."""
    try:
        data = json.loads(text, object_pairs_hook=_json_object)
    except _JsonDuplicateKey as exc:  # the YAML reading below names its line
        data, duplicate = None, exc
    except (ValueError, RecursionError):
        data, duplicate = None, None
    else:
        duplicate = None
        try:
            positions = yaml.load(text, Loader=PositionLoader)  # noqa: S506 - a SafeLoader subclass
        except YamlLimitError as exc:
            raise _yaml_error(exc, path, text) from None
        except yaml.YAMLError:
            positions = None
        return _from_json(data, positions)
    try:
        loaded = yaml.load(text, Loader=PositionLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path, text) from None
    if duplicate is not None:
        raise InventoryError(str(duplicate), file=path)
    return loaded


class _JsonDuplicateKey(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _JsonDuplicateKey(f"duplicate key {key!r} (it is already set above in this object)")
        result[key] = value
    return result
