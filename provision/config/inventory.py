"""Ansible inventories, read with ansible-core's exact semantics (checked against 2.19).

``load_inventory(path)`` accepts what ``ansible-inventory -i PATH`` accepts for static
inventories: an INI or YAML file, a directory of them, or a ``host1,host2`` list, plus the
``group_vars/`` and ``host_vars/`` next to it. The resulting :class:`Inventory` answers
like Ansible does:

* ``inventory.to_ansible_list()`` equals ``json.loads(ansible-inventory -i PATH --list)``;
* ``inventory.graph(group, with_vars)`` equals ``ansible-inventory -i PATH --graph [--vars] [group]``
  (without the trailing newline);
* ``inventory.select(pattern)`` equals ``ansible -i PATH PATTERN --list-hosts``;
* ``inventory.host_vars(name)`` is ``_meta.hostvars[name]`` of the list output.

Where Ansible only warns and goes on without the source (a file it cannot parse, an
undefined child group, ...) this raises :class:`InventoryError` with the file and line.
Dynamic inventories (scripts, ``plugin:`` configs, TOML) are refused.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.config.ini_inventory import parse_ini_inventory
from provision.config.input_file import check_text, decode_utf8, read_input
from provision.config.patterns import parse_address, select_hosts
from provision.config.yaml_inventory import (
    UnsafeText,
    VaultedText,
    load_yaml,
    parse_yaml_inventory,
    type_name,
)
from provision.errors import InventoryError, PatternError

__all__ = ["Host", "Group", "Inventory", "InventoryBuilder", "Vars", "load_inventory"]

# Extensions Ansible reads as YAML (C.YAML_FILENAME_EXTENSIONS); '' is tried first for vars files.
YAML_EXTENSIONS = (".yml", ".yaml", ".json")
# Names skipped in a directory inventory (ansible.inventory.manager.IGNORED with default settings).
IGNORED_NAMES = frozenset({"host_vars", "group_vars", "vars_plugins"})
IGNORED_EXTENSIONS = (
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst",  # C.REJECT_EXTS
    ".orig", ".cfg", ".retry",
)
# Variables ansible-inventory never prints (C.INTERNAL_STATIC_VARS).
INTERNAL_VARS = frozenset({
    "ansible_async_path", "ansible_collection_name", "ansible_config_file",
    "ansible_dependent_role_names", "ansible_diff_mode", "ansible_facts", "ansible_forks",
    "ansible_inventory_sources", "ansible_limit", "ansible_play_batch", "ansible_play_hosts",
    "ansible_play_hosts_all", "ansible_play_role_names", "ansible_playbook_python",
    "ansible_role_name", "ansible_role_names", "ansible_run_tags", "ansible_skip_tags",
    "ansible_verbosity", "ansible_version", "inventory_dir", "inventory_file",
    "inventory_hostname", "inventory_hostname_short", "groups", "group_names", "hostvars",
    "playbook_dir", "play_hosts", "role_name", "role_names", "role_path", "role_uuid",
})
PRIORITY_VAR = "ansible_group_priority"
MAX_HOSTS = 100_000  # bounded memory: far beyond any fleet provision drives from one inventory


class Vars(dict):
    """Variables that remember where each was set: ``origins[key] = (file, line)`` (line may be
    None). Per-host setting errors use it to name the file and line of a bad value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origins: dict[Any, tuple[str, int | None]] = {}

    def set(self, key: Any, value: Any, file: Path | str | None, line: int | None) -> None:
        self[key] = value
        if file is not None:
            self.origins[key] = (str(file), line)
        else:
            self.origins.pop(key, None)

    def layer(self, other: dict) -> None:
        """``self |= other``, taking the origins of ``other``'s keys along."""
        origins = getattr(other, "origins", {})
        for key, value in other.items():
            self[key] = value
            if key in origins:
                self.origins[key] = origins[key]
            else:
                self.origins.pop(key, None)

    def origin(self, key: Any) -> tuple[str | None, int | None]:
        return self.origins.get(key, (None, None))


@dataclass
class Host:
    """A host as declared in the inventory sources."""

    name: str
    vars: dict = field(default_factory=Vars)  # set on the host itself (inline/YAML, host:port), not merged
    groups: list[str] = field(default_factory=list)  # direct memberships, no 'all', in order of appearance


@dataclass
class Group:
    """A group as declared in the inventory sources."""

    name: str
    vars: dict = field(default_factory=Vars)  # set in the inventory source (not group_vars/ files)
    hosts: list[str] = field(default_factory=list)  # direct hosts, in order of appearance
    children: list[str] = field(default_factory=list)  # direct child groups, in order of appearance
    parents: list[str] = field(default_factory=list)  # direct parent groups, in order of appearance
    priority: int = 1  # ansible_group_priority (taken out of vars, as Ansible does)


# ---------------------------------------------------------------------------
# Building: what ansible.inventory.data.InventoryData does while plugins parse
# ---------------------------------------------------------------------------


class InventoryBuilder:
    """Collects groups, hosts and variables from the parsers, with Ansible's rules:
    'all' and 'ungrouped' always exist, a host keeps the port of its first declaration,
    later variable assignments replace earlier ones, and no group may become its own ancestor."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.hosts: dict[str, Host] = {}
        self.file: Path | None = None  # the source being parsed, for error messages
        self._members: dict[str, set[str]] = {}  # group -> its direct hosts, for fast lookups
        self.add_group("all")
        self.add_group("ungrouped")
        self.add_child("all", "ungrouped")

    def _error(self, message: str, line: int | None) -> InventoryError:
        return InventoryError(message, file=self.file, line=line)

    def has_group(self, name: str) -> bool:
        return name in self.groups

    def add_group(self, name: str, *, line: int | None = None) -> str:
        if not name:
            raise self._error("empty group name", line)
        if name not in self.groups:
            self.groups[name] = Group(name)
            self._members[name] = set()
        return name

    def add_host(self, name: str, group: str | None, port: int | None = None, *, line: int | None = None) -> None:
        """Declare ``name`` (port -> ``ansible_port`` only when new) and add it to ``group``."""
        if not name:
            raise self._error("empty host name", line)
        host = self.hosts.get(name)
        if host is None:
            if len(self.hosts) >= MAX_HOSTS:
                raise self._error(f"too many hosts (more than {MAX_HOSTS} in the inventory)", line)
            host = self.hosts[name] = Host(name)
            if port:
                host.vars.set("ansible_port", int(port), self.file, line)
        if group is not None and name not in self._members[group]:
            self._members[group].add(name)
            self.groups[group].hosts.append(name)
            if group != "all":
                host.groups.append(group)

    def add_child(self, parent: str, child: str, *, line: int | None = None) -> None:
        """Make ``child`` a child group of ``parent``, refusing cycles."""
        if child == "all":
            raise self._error(f"group 'all' cannot be a child of group '{parent}'", line)
        if child in self.groups[parent].children:
            return
        path = self._path_down(child, parent)
        if path is not None:
            cycle = " -> ".join([*path, child])
            raise self._error(f"group '{child}' is its own ancestor ({cycle})", line)
        self.groups[parent].children.append(child)
        self.groups[child].parents.append(parent)

    def _path_down(self, start: str, goal: str) -> list[str] | None:
        """Group names from ``start`` down to ``goal`` through child links, if connected
        (breadth first, so the shortest such path)."""
        came_from: dict[str, str | None] = {start: None}
        queue = [start]
        for name in queue:
            if name == goal:
                path = [name]
                while (previous := came_from[path[-1]]) is not None:
                    path.append(previous)
                return path[::-1]
            for child in self.groups[name].children:
                if child not in came_from:
                    came_from[child] = name
                    queue.append(child)
        return None

    def set_group_var(self, group: str, key: str, value: Any, *, line: int | None = None) -> None:
        """``ansible_group_priority`` sets the priority (an int) and is not kept as a var."""
        if key == PRIORITY_VAR:
            try:
                self.groups[group].priority = int(value)
            except (TypeError, ValueError):
                message = f"{PRIORITY_VAR} of group '{group}' must be an integer, got {value!r}"
                raise self._error(message, line) from None
            return
        self.groups[group].vars.set(key, value, self.file, line)

    def set_host_var(self, host: str, key: str, value: Any, *, line: int | None = None) -> None:
        self.hosts[host].vars.set(key, value, self.file, line)

    def reconcile(self) -> None:
        """Ansible's ``reconcile_inventory``: parentless groups become children of 'all';
        'ungrouped' holds exactly the hosts that are in no other group."""
        for name, group in list(self.groups.items()):
            if name != "all" and not group.parents:
                self.add_child("all", name)
        grouped_elsewhere: set[str] = set()
        for host in self.hosts.values():
            member_of = self._memberships(host.name)
            if "ungrouped" in member_of:
                if member_of - {"all", "ungrouped"} and host.name in self._members["ungrouped"]:
                    grouped_elsewhere.add(host.name)
                    host.groups.remove("ungrouped")
            elif member_of <= {"all"}:
                self.add_host(host.name, "ungrouped")
        ungrouped = self.groups["ungrouped"]
        ungrouped.hosts = [name for name in ungrouped.hosts if name not in grouped_elsewhere]
        self._members["ungrouped"] -= grouped_elsewhere

    def _memberships(self, host: str) -> set[str]:
        """Groups holding ``host`` directly (with 'all') and all their ancestors."""
        direct = [*self.hosts[host].groups, *(["all"] if host in self._members["all"] else [])]
        return set(_closure(direct, lambda name: self.groups[name].parents))


def _closure(start: Iterable[str], links: Any) -> list[str]:
    """``start`` and everything reachable from it through ``links(name)``, breadth first."""
    seen = dict.fromkeys(start)
    queue = list(seen)
    for name in queue:
        for linked in links(name):
            if linked not in seen:
                seen[linked] = None
                queue.append(linked)
    return queue


# ---------------------------------------------------------------------------
# The inventory
# ---------------------------------------------------------------------------


class Inventory:
    """A loaded inventory: hosts and groups as declared, plus group_vars/host_vars files."""

    def __init__(
        self,
        sources: list[Path],
        hosts: dict[str, Host],
        groups: dict[str, Group],
        group_file_vars: dict[str, dict] | None = None,
        host_file_vars: dict[str, dict] | None = None,
    ) -> None:
        self.sources = sources
        self.hosts = hosts  # in the order Ansible declared them (InventoryData.hosts)
        self.groups = groups  # in the order Ansible declared them, 'all' and 'ungrouped' first
        self._group_file_vars = group_file_vars or {}
        self._host_file_vars = host_file_vars or {}
        self._depths = self._compute_depths()

    def _compute_depths(self) -> dict[str, int]:
        """A group's depth is its longest distance from 'all' (what ``Group.depth`` converges to)."""
        depths: dict[str, int] = {}

        def depth(name: str) -> int:
            if name not in depths:
                parents = self.groups[name].parents
                depths[name] = max((depth(parent) + 1 for parent in parents), default=0)
            return depths[name]

        for name in self.groups:
            depth(name)
        return depths

    # -- structure --------------------------------------------------------------------

    def group_hosts(self, group: str) -> list[str]:
        """Hosts of ``group`` and its descendants, like Ansible's ``Group.get_hosts()``: the
        group's own hosts, then its children's, then deeper levels, without duplicates.
        (Ansible walks the levels below the children in set order; this walks them in
        declaration order.)"""
        hosts: dict[str, None] = {}
        for name in _closure([group], lambda name: self.groups[name].children):
            hosts.update(dict.fromkeys(self.groups[name].hosts))
        return list(hosts)

    def host_groups(self, host: str) -> list[str]:
        """Every group ``host`` belongs to, directly or through children, except 'all', in
        Ansible's variable precedence order: by depth, then ansible_group_priority, then name."""
        direct = self.hosts[host].groups
        member_of = [name for name in _closure(direct, lambda name: self.groups[name].parents) if name != "all"]
        return sorted(member_of, key=lambda name: (self._depths[name], self.groups[name].priority, name))

    def select(self, pattern: str) -> list[str]:
        """Host names matching an Ansible host pattern (see :func:`provision.config.patterns.select_hosts`)."""
        return select_hosts(self, pattern)

    # -- variables --------------------------------------------------------------------

    def host_vars(self, name: str) -> dict:
        """All variables of host ``name``, merged like Ansible's ``VariableManager.get_vars``
        (hash_behaviour=replace, each layer replacing whole keys of the previous):

        inventory vars of 'all' < inventory vars of the host's other groups < group_vars/all
        < group_vars/<group> files < the host's inventory vars < host_vars/<host> files,

        the groups taken in :meth:`host_groups` order. Note that group_vars/all beats the
        inventory vars of every group, as in Ansible's default ``precedence`` setting."""
        host = self.hosts[name]
        groups = self.host_groups(name)
        merged = Vars()
        merged.layer(self.groups["all"].vars)
        for group in groups:
            merged.layer(self.groups[group].vars)
        merged.layer(self._group_file_vars.get("all", {}))
        for group in groups:
            merged.layer(self._group_file_vars.get(group, {}))
        merged.layer(host.vars)
        merged.layer(self._host_file_vars.get(name, {}))
        return _without_internal(merged)

    def group_vars(self, name: str) -> dict:
        """Variables of group ``name`` alone, as ``ansible-inventory --graph --vars`` shows them:
        inventory vars < group_vars/<name> files, plus ``ansible_group_priority`` unless 1."""
        group = self.groups[name]
        merged = group.vars | self._group_file_vars.get(name, {})
        if group.priority != 1:
            merged[PRIORITY_VAR] = group.priority
        return _without_internal(merged)

    # -- ansible-inventory output -----------------------------------------------------

    def to_ansible_list(self) -> dict:
        """What ``ansible-inventory --list`` prints, as parsed JSON: one entry per group that
        has hosts or children ('all' lists only children; an empty group appears only among
        its parent's children), and ``_meta.hostvars`` for hosts that have variables."""
        available = self.group_hosts("all")
        listed: dict[str, Any] = {}
        self._list_group("all", set(available), listed, set())
        hostvars = {name: host_vars for name in available if (host_vars := self.host_vars(name))}
        listed["_meta"] = {"hostvars": hostvars, "profile": "inventory_legacy"}
        return json.loads(json.dumps(_jsonable(listed)))

    def _list_group(self, name: str, available: set[str], listed: dict, seen: set[str]) -> None:
        group = self.groups[name]
        entry: dict[str, list[str]] = {}
        if name != "all":
            entry["hosts"] = [host for host in group.hosts if host in available]
        entry["children"] = list(group.children)
        for child in group.children:
            if child not in seen:
                self._list_group(child, available, listed, seen)
                seen.add(child)
        entry = {key: value for key, value in entry.items() if value}
        if entry:
            listed[name] = entry

    def graph(self, group: str = "all", with_vars: bool = False) -> str:
        """What ``ansible-inventory --graph [--vars] GROUP`` prints, without the final newline."""
        if group not in self.groups:
            raise PatternError(f"'{group}' is not a group of the inventory (--graph needs a group name)")
        return "\n".join(self._graph_group(group, 0, with_vars))

    def _graph_group(self, name: str, depth: int, with_vars: bool) -> list[str]:
        group = self.groups[name]
        lines = [_graph_line(f"@{name}:", depth)]
        for child in group.children:
            lines.extend(self._graph_group(child, depth + 1, with_vars))
        if name != "all":  # 'all' never shows hosts of its own
            for host in group.hosts:
                lines.append(_graph_line(host, depth + 1))
                if with_vars:
                    lines.extend(_graph_vars(self.host_vars(host), depth + 2))
        if with_vars:
            lines.extend(_graph_vars(self.group_vars(name), depth + 1))
        return lines


def _without_internal(variables: dict) -> dict:
    kept = Vars()
    kept.layer({key: value for key, value in variables.items() if key not in INTERNAL_VARS})
    kept.origins = {key: where for key, where in getattr(variables, "origins", {}).items() if key in kept}
    return kept


def _graph_line(text: str, depth: int) -> str:
    return "  |" * depth + "--" + text if depth else text


def _graph_vars(variables: dict, depth: int) -> list[str]:
    """``{name = value}`` lines, sorted by name, values as Python's str() shows them."""
    ordered = sorted(variables.items(), key=lambda item: item[0])
    return [_graph_line(f"{{{key} = {value}}}", depth) for key, value in ordered]


def _jsonable(value: Any) -> Any:
    """Values as ansible-inventory's JSON encoder writes them: dates in ISO format, sets as
    lists, ``!unsafe`` and ``!vault`` values wrapped in ``__ansible_unsafe``/``__ansible_vault``."""
    if isinstance(value, UnsafeText):
        return {"__ansible_unsafe": str(value)}
    if isinstance(value, VaultedText):
        return {"__ansible_vault": str(value)}
    if isinstance(value, dict):
        return {_json_key(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _json_key(key: Any) -> Any:
    if key is None or isinstance(key, (str, int, float, bool)):
        return str(key) if isinstance(key, str) else key
    return str(_jsonable(key))


# ---------------------------------------------------------------------------
# Reading sources: what InventoryManager.parse_source and the inventory plugins do
# ---------------------------------------------------------------------------


def _ignored_in_directory(name: str) -> bool:
    """Names Ansible skips in a directory inventory: hidden, group_vars/host_vars/vars_plugins,
    and the ignored extensions (backups, docs, .cfg, .retry, ...)."""
    return name.startswith(".") or name in IGNORED_NAMES or name.endswith(IGNORED_EXTENSIONS)


def _parse_directory(directory: Path, builder: InventoryBuilder, seen: frozenset[str] = frozenset()) -> None:
    """Every entry in sorted order, recursing into subdirectories (whose group_vars/ and
    host_vars/ are ignored: only those of the top-level source count). A folder that links back
    to one it is inside (a symlink loop) is refused."""
    seen = _enter(directory, seen)
    for name in sorted(os.listdir(directory)):
        if _ignored_in_directory(name):
            continue
        entry = directory / name
        if entry.is_dir():
            _parse_directory(entry, builder, seen)
        elif entry.is_file():
            _parse_file(entry, builder)


def _enter(directory: Path, seen: frozenset[str]) -> frozenset[str]:
    real = os.path.realpath(directory)
    if real in seen:
        raise InventoryError("symlink loop: this folder is inside itself", file=directory)
    return seen | {real}


def _parse_file(path: Path, builder: InventoryBuilder) -> None:
    """Try the plugins Ansible would, in its order: a YAML inventory for no extension or
    .yml/.yaml/.json (a mapping of groups), else INI (any extension but .toml)."""
    builder.file = path
    data = read_input(path, "inventory", error=InventoryError)
    extension = os.path.splitext(path.name)[1]
    if data.startswith(b"#!") and os.access(path, os.X_OK):
        raise InventoryError("executable inventory scripts are not supported", file=path, line=1)
    check_text(data, path, "inventory", error=InventoryError)
    if extension == ".toml":
        raise InventoryError("TOML inventories are not supported", file=path)
    if extension not in ("", *YAML_EXTENSIONS):
        parse_ini_inventory(data, path, builder)
        return
    document, yaml_error = _try_yaml(data, path)
    if isinstance(document, dict):
        parse_yaml_inventory(document, path, builder)
        return
    try:
        parse_ini_inventory(data, path, builder)
    except InventoryError as ini_error:
        if document is None and yaml_error is None:
            return  # an empty YAML document such as '---': an empty inventory
        if extension:
            raise yaml_error or _not_a_mapping(document, path) from None
        if yaml_error is None:
            raise
        detail = f"{ini_error.message} (and not YAML either: line {yaml_error.line}: {yaml_error.message})"
        raise InventoryError(detail, file=path, line=ini_error.line) from None


def _try_yaml(data: bytes, path: Path) -> tuple[Any, InventoryError | None]:
    """The document, or the error that prevented reading it."""
    try:
        return load_yaml(decode_utf8(data, path, "inventory", error=InventoryError), path), None
    except InventoryError as exc:
        return None, exc


def _not_a_mapping(document: Any, path: Path) -> InventoryError:
    line = getattr(document, "line", None) or 1
    message = f"YAML inventory must be a mapping of groups, got {type_name(document)}"
    return InventoryError(message, file=path, line=line)


def _parse_host_list(text: str, builder: InventoryBuilder) -> None:
    """``host1,host2:2222,`` (Ansible's host_list plugin): ungrouped hosts, no ranges."""
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            name, port = parse_address(entry)
        except ValueError:
            name, port = entry, None
        builder.add_host(name, "ungrouped", port)


# ---------------------------------------------------------------------------
# group_vars/ and host_vars/: Ansible's host_group_vars vars plugin
# ---------------------------------------------------------------------------


def _vars_files(vars_dir: Path, name: str) -> list[Path]:
    """Files for entity ``name``: the first of NAME, NAME.yml, NAME.yaml, NAME.json that
    exists (only that one!); a directory contributes all its files, recursively."""
    if name.startswith(os.sep):
        return []
    for extension in ("", *YAML_EXTENSIONS):
        candidate = Path(os.path.join(vars_dir, name + extension))
        if candidate.exists():
            return _vars_directory_files(candidate) if candidate.is_dir() else [candidate]
    return []


def _vars_directory_files(directory: Path, seen: frozenset[str] = frozenset()) -> list[Path]:
    """Files of a vars directory in sorted order: subdirectories without an extension are
    walked, files need no extension or a YAML one; hidden and ``~`` names are skipped."""
    seen = _enter(directory, seen)
    found: list[Path] = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(".") or name.endswith("~"):
            continue
        entry = directory / name
        extension = os.path.splitext(name)[1]
        if entry.is_dir() and not extension:
            found.extend(_vars_directory_files(entry, seen))
        elif entry.is_file() and extension in ("", *YAML_EXTENSIONS):
            found.append(entry)
    return found


def _load_vars_file(path: Path) -> dict:
    """One vars file: a mapping, or empty (ignored)."""
    raw = read_input(path, "vars file", error=InventoryError)
    if raw.startswith(b"$ANSIBLE_VAULT"):
        raise InventoryError("vault-encrypted vars files are not supported", file=path, line=1)
    check_text(raw, path, "vars file", error=InventoryError)
    data = load_yaml(decode_utf8(raw, path, "vars file", error=InventoryError), path)
    if not data:
        return {}
    if not isinstance(data, dict):
        line = getattr(data, "line", None) or 1
        raise InventoryError(f"vars file must be a mapping, got {type_name(data)}", file=path, line=line)
    result = Vars()
    for key, value in data.items():
        result.set(key, value, path, data.line_of(key) if hasattr(data, "line_of") else None)
    return result


def _file_vars(base: Path | None, subdir: str, names: Iterable[str]) -> dict[str, dict]:
    """Merged vars of every entity that has files under ``base/subdir``."""
    if base is None:
        return {}
    vars_dir = Path(os.path.realpath(base)) / subdir
    if not vars_dir.is_dir():
        return {}
    result: dict[str, dict] = {}
    for name in names:
        merged = Vars()
        for path in _vars_files(vars_dir, name):
            merged.layer(_load_vars_file(path))
        if merged:
            result[name] = merged
    return result


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def load_inventory(path: str | Path) -> Inventory:
    """Load an inventory source as ``ansible-inventory -i PATH`` would.

    ``path`` is an INI or YAML file (YAML is tried first for .yml/.yaml/.json and files
    without extension, INI otherwise or when that fails), a directory whose entries are
    loaded in sorted order (skipping hidden files, group_vars/, host_vars/ and the
    extensions Ansible ignores: .cfg .retry .orig .md .txt .rst .bak .swp .pyc .pyo .rpm ~),
    or a comma-separated host list. group_vars/ and host_vars/ are read next to a file, or
    inside a directory source. Raises :class:`InventoryError` naming file and line.
    """
    source = Path(path)
    builder = InventoryBuilder()
    vars_base: Path | None
    if source.is_dir():
        _parse_directory(source, builder)
        vars_base = source
    elif source.exists():
        _parse_file(source, builder)
        vars_base = source.parent
    elif "," in str(path):
        _parse_host_list(str(path), builder)
        vars_base = None
    else:
        from provision.config.inventory_path import not_found_hint

        raise InventoryError(f"inventory not found{not_found_hint(path)}", file=source)
    builder.file = None
    builder.reconcile()
    return Inventory(
        sources=[source],
        hosts=builder.hosts,
        groups=builder.groups,
        group_file_vars=_file_vars(vars_base, "group_vars", builder.groups),
        host_file_vars=_file_vars(vars_base, "host_vars", builder.hosts),
    )
