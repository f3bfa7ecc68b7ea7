"""YAML inventories, parsed like ansible-core's ``yaml`` inventory plugin, and the YAML
loader shared with ``group_vars``/``host_vars`` files.

    all:                        # top-level keys are groups ('all' is just the usual one)
      vars: {ntp: pool.ntp.org}
      hosts:
        bastion:                # a host: null or a mapping of its vars
      children:
        gpu:
          hosts:
            gpu-a[01:04]:       # ranges and host:port work as in INI
              ansible_user: ubuntu

The loader reads documents like Ansible's ``DataLoader``: JSON first (so a ``.json`` file
keeps JSON's types), then YAML 1.1 with the safe constructors plus Ansible's ``!unsafe``
and ``!vault`` tags. Mappings and sequences come back as :class:`YamlMapping` and
:class:`YamlSequence`, which remember their line numbers for error messages.

Stricter than Ansible (which warns and skips): a group that is not a mapping, a key other
than hosts/children/vars in a group, and host vars that are not a mapping are errors.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from provision.config.patterns import HostRangeError, expand_host_pattern
from provision.errors import InventoryError

if TYPE_CHECKING:
    from provision.config.inventory import InventoryBuilder

__all__ = [
    "UnsafeText",
    "VaultedText",
    "YamlMapping",
    "YamlSequence",
    "load_yaml",
    "parse_yaml_inventory",
    "type_name",
]

_GROUP_KEYS = ("vars", "children", "hosts")


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
    """A list that remembers its line (1-based, None if unknown)."""

    line: int | None = None


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


class _PositionLoader(yaml.SafeLoader):
    """SafeLoader building YamlMapping/YamlSequence, with ``!unsafe`` and ``!vault``."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._unsafe_depth = 0

    def construct_positioned_map(self, node: yaml.MappingNode):  # type: ignore[no-untyped-def]
        data = YamlMapping()
        data.line = node.start_mark.line + 1
        yield data
        data.update(self.construct_mapping(node))  # also resolves '<<' merge keys
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node)
            data.key_lines.setdefault(key, key_node.start_mark.line + 1)

    def construct_positioned_seq(self, node: yaml.SequenceNode):  # type: ignore[no-untyped-def]
        data = YamlSequence()
        data.line = node.start_mark.line + 1
        yield data
        data.extend(self.construct_sequence(node))

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


_PositionLoader.add_constructor("tag:yaml.org,2002:map", _PositionLoader.construct_positioned_map)
_PositionLoader.add_constructor("tag:yaml.org,2002:seq", _PositionLoader.construct_positioned_seq)
_PositionLoader.add_constructor("tag:yaml.org,2002:str", _PositionLoader.construct_text)
_PositionLoader.add_constructor("!unsafe", _PositionLoader.construct_unsafe)
_PositionLoader.add_constructor("!vault", _PositionLoader.construct_vault)
_PositionLoader.add_constructor("!vault-encrypted", _PositionLoader.construct_vault)


def _yaml_error(exc: yaml.YAMLError, path: Path) -> InventoryError:
    """One line: the problem, at the line where the parser noticed it."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    return InventoryError(f"YAML syntax error: {problem}", file=path, line=mark.line + 1 if mark else None)


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
        data = json.loads(text)
    except ValueError:
        pass
    else:
        try:
            positions = yaml.load(text, Loader=_PositionLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError:
            positions = None
        return _from_json(data, positions)
    try:
        return yaml.load(text, Loader=_PositionLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path) from None


# ---------------------------------------------------------------------------
# The inventory structure
# ---------------------------------------------------------------------------


class _YamlInventoryParser:
    """Walks the loaded document and feeds the builder, in document order."""

    def __init__(self, builder: InventoryBuilder, path: Path) -> None:
        self.builder = builder
        self.path = path

    def error(self, message: str, line: int | None) -> InventoryError:
        return InventoryError(message, file=self.path, line=line)

    def parse(self, data: YamlMapping) -> None:
        for name, group_data in data.items():
            self._group(name, group_data, data.line_of(name))

    def _group(self, name: Any, data: Any, line: int | None) -> str:
        """One group: ``null`` or a mapping of vars/children/hosts (processed in the order written)."""
        if not isinstance(name, str) or not name:
            raise self.error(f"group name must be a non-empty string, got {type_name(name)} {name!r}", line)
        if data is not None and not isinstance(data, dict):
            raise self.error(f"group '{name}' must be a mapping, got {type_name(data)}", line)
        self.builder.add_group(name, line=line)
        if data is None:
            return name
        sections = self._sections(name, data)
        for key, value in sections.items():
            key_line = data.line_of(key)
            if value is None:
                continue
            if key == "vars":
                for var, var_value in value.items():
                    self.builder.set_group_var(name, var, var_value, line=_line_of(value, var, key_line))
            elif key == "children":
                for child, child_data in value.items():
                    child_line = _line_of(value, child, key_line)
                    self.builder.add_child(name, self._group(child, child_data, child_line), line=child_line)
            else:
                for pattern, host_vars in value.items():
                    self._hosts(name, pattern, host_vars, _line_of(value, pattern, key_line))
        return name

    def _sections(self, group: str, data: YamlMapping) -> dict[str, Any]:
        """vars/children/hosts of a group; like Ansible a plain string ``s`` means ``{s: null}``."""
        sections: dict[str, Any] = {}
        for key, value in data.items():
            line = data.line_of(key)
            if key not in _GROUP_KEYS:
                raise self.error(f"unknown key '{key}' in group '{group}' (expected hosts, children or vars)", line)
            if isinstance(value, str):
                value = YamlMapping({value: None})
                value.line = line
            if value is not None and not isinstance(value, dict):
                raise self.error(f"'{key}' of group '{group}' must be a mapping, got {type_name(value)}", line)
            sections[key] = value
        return sections

    def _hosts(self, group: str, pattern: Any, host_vars: Any, line: int | None) -> None:
        """One entry under ``hosts:``: a host pattern and null or a mapping of its vars."""
        if not isinstance(pattern, str):
            raise self.error(f"host pattern {pattern!r} must be a string (quote numbers)", line)
        try:
            names, port = expand_host_pattern(pattern)
        except HostRangeError as exc:
            raise self.error(str(exc), line) from None
        if any(not name for name in names):
            raise self.error("empty host name", line)
        host_vars = host_vars or {}  # Ansible accepts any empty value here
        if not isinstance(host_vars, dict):
            kind = type_name(host_vars)
            raise self.error(f"vars of host '{pattern}' in group '{group}' must be a mapping, got {kind}", line)
        for name in names:
            self.builder.add_host(name, group, port, line=line)
            for key, value in host_vars.items():
                self.builder.set_host_var(name, key, value)


def _line_of(mapping: Any, key: Any, default: int | None) -> int | None:
    return mapping.line_of(key) if isinstance(mapping, YamlMapping) else default


def parse_yaml_inventory(data: Any, path: Path, builder: InventoryBuilder) -> None:
    """Add the groups, hosts and variables of the loaded YAML inventory ``data`` to ``builder``.
    ``None`` (an empty document) adds nothing."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise InventoryError(
            f"YAML inventory must be a mapping of groups, got {type_name(data)}",
            file=path,
            line=getattr(data, "line", None) or 1,
        )
    if data.get("plugin"):  # a dynamic inventory plugin's config (a null 'plugin:' is just a group)
        raise InventoryError(
            f"inventory plugin configuration (plugin: {data['plugin']}) is not supported; "
            "only static INI and YAML inventories are",
            file=path,
            line=data.line_of("plugin"),
        )
    _YamlInventoryParser(builder, path).parse(data)
