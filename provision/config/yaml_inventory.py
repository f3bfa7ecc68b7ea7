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
than hosts/children/vars in a group, and host vars that are not a mapping are errors. So
are (Ansible warns and keeps the last) duplicate keys in one mapping, and (Ansible has no
limit) nesting deeper than 100 levels, aliases that expand to more than a million nodes,
recursive aliases and integers too long to convert: each with its file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.config.patterns import HostRangeError, expand_host_pattern
from provision.config.positioned_yaml import (UnsafeText, VaultedText, YamlMapping, YamlSequence, load_yaml,
                                              type_name)
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
                self.builder.set_host_var(name, key, value, line=_line_of(host_vars, key, line))


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
