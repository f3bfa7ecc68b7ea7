"""INI inventories, parsed like ansible-core's ``ini`` inventory plugin.

    top-host ansible_host=10.0.0.1     # before any section: the 'ungrouped' group
    [web]                              # [NAME] or [NAME:hosts]: hosts of NAME
    web[01:04]:2222 role="front end"   # ranges, :port -> ansible_port, inline vars
    [web:vars]                         # group vars: key = value
    http_port = 8080
    [site:children]                    # child groups, which must be declared in the file
    web                                #   ([web] or [web:children]) or exist already

Values (inline host vars and ``:vars`` alike) go through ``ast.literal_eval``: ``8080`` is an
int, ``True`` a bool, ``[1, 2]`` a list, ``'x'`` the string x; anything else stays a string
(a ``b'x'`` bytes literal becomes an ``!unsafe`` string, as it does in Ansible).
Inline vars are split like a shell command line first (so ``b="x y"`` is ``x y``), ``:vars``
values are taken verbatim after the first ``=``.

Stricter than Ansible, which keeps the last one silently: the same key twice on one host line,
or twice in one ``[NAME:vars]`` section, is an error with its line.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.config.patterns import HostRangeError, expand_host_pattern
from provision.config.yaml_inventory import UnsafeText
from provision.errors import InventoryError

if TYPE_CHECKING:
    from provision.config.inventory import InventoryBuilder

__all__ = ["parse_ini_inventory", "parse_ini_value"]

_COMMENT_MARKERS = ("#", ";")
_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_SECTION_KINDS = ("hosts", "children", "vars")


@dataclass
class _Pending:
    """A group named before it is declared: by ``[NAME:vars]`` or as a child in ``[P:children]``."""

    kind: str  # 'vars' or 'children'
    line: int
    parents: list[tuple[str, int]] = field(default_factory=list)  # (parent, line of the child entry)


def parse_ini_value(text: str) -> Any:
    """A value as Ansible's INI plugin reads it: a Python literal when ``ast.literal_eval``
    accepts it (tuples and sets become lists, bytes become str, complex numbers and
    ``...`` stay strings), otherwise the text itself."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    except (TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"cannot evaluate value {text!r}: {exc}") from None
    return _coerce(value)


def _coerce(value: Any) -> Any:
    """Turn what ``literal_eval`` may return into inventory variable types."""
    if isinstance(value, (list, tuple, set)):
        return [_coerce(item) for item in value]
    if isinstance(value, dict):
        return {key: _coerce(item) for key, item in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):  # Ansible loses the template trust here, so it prints as unsafe
        return UnsafeText(value.decode("utf-8", errors="surrogateescape"))
    return value


def _decode_lines(data: bytes, path: Path) -> list[str]:
    """UTF-8 lines; like Ansible, undecodable bytes are tolerated in comment lines only."""
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if raw[:1] in (b"#", b";"):
            lines.append("")
            continue
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InventoryError("line is not valid UTF-8", file=path, line=number) from None
    return lines


class _IniParser:
    """One pass over the lines, as if the file started with ``[ungrouped]``."""

    def __init__(self, builder: InventoryBuilder, path: Path) -> None:
        self.builder = builder
        self.path = path
        self.line = 0
        self.group = "ungrouped"
        self.kind = "hosts"
        self.pending: dict[str, _Pending] = {}
        self.section_vars: dict[str, int] = {}

    def error(self, message: str, line: int | None = None) -> InventoryError:
        return InventoryError(message, file=self.path, line=line or self.line)

    def parse(self, lines: list[str]) -> None:
        for self.line, raw in enumerate(lines, start=1):
            text = raw.strip()
            if not text or text.startswith(_COMMENT_MARKERS):
                continue
            if self._section(text):
                continue
            if self.kind == "hosts":
                self._host_line(text)
            elif self.kind == "vars":
                self._var_line(text)
            else:
                self._child_line(text)
        self._check_pending()

    # -- sections ---------------------------------------------------------------------

    def _section(self, text: str) -> bool:
        """Handle ``[NAME]``, ``[NAME:hosts]``, ``[NAME:children]``, ``[NAME:vars]``."""
        match = _SECTION.match(text)
        if not match:
            if text.startswith("[") and text.endswith("]"):
                raise self.error(f"invalid section header '{text}' (no spaces or other invalid characters allowed)")
            return False
        name, kind = match.group(1), match.group(2) or "hosts"
        if kind not in _SECTION_KINDS:
            raise self.error(f"section [{name}:{kind}] has unknown type '{kind}' (expected hosts, children or vars)")
        self.group, self.kind = name, kind
        self.section_vars: dict[str, int] = {}  # key -> line, within this [NAME:vars] section
        if not self.builder.has_group(name):
            # [NAME:vars] alone does not declare NAME; remember it and check at the end.
            if kind == "vars" and name not in self.pending:
                self.pending[name] = _Pending("vars", self.line)
            self.builder.add_group(name, line=self.line)
        if kind != "vars" and name in self.pending:
            self._declare(name)
        return True

    def _declare(self, name: str) -> None:
        """NAME is now declared: attach it to the parents that listed it before."""
        pending = self.pending.pop(name)
        if pending.kind != "children":
            return
        for parent, line in pending.parents:
            self.builder.add_child(parent, name, line=line)
            if parent in self.pending and self.pending[parent].kind == "children":
                self._declare(parent)

    def _check_pending(self) -> None:
        """Like Ansible, report the first group that was referenced but never declared."""
        for name, pending in self.pending.items():
            if pending.kind == "vars":
                raise self.error(f"[{name}:vars] given for undefined group '{name}'", pending.line)
            parent, line = pending.parents[-1]
            raise self.error(f"[{parent}:children] includes undefined group '{name}'", line)

    # -- entries ----------------------------------------------------------------------

    def _host_line(self, text: str) -> None:
        """``PATTERN [key=value ...]``: shell-like tokens, ``#`` starts a comment."""
        try:
            tokens = shlex.split(text, comments=True)
        except ValueError as exc:
            raise self.error(f"cannot parse host line: {exc}") from None
        if not tokens:  # e.g. a line of just a quoted empty string
            raise self.error("empty host name")
        names, port = self._expand(tokens[0])
        variables: dict[str, Any] = {}
        for token in tokens[1:]:
            if "=" not in token:
                raise self.error(f"expected key=value host variable, got '{token}'")
            key, value = token.split("=", 1)
            if key in variables:  # Ansible keeps the last one silently
                raise self.error(f"duplicate key '{key}' on this host line")
            variables[key] = self._value(key, value)
        for name in names:
            self.builder.add_host(name, self.group, port, line=self.line)
            for key, value in variables.items():
                self.builder.set_host_var(name, key, value, line=self.line)

    def _expand(self, pattern: str) -> tuple[list[str], int | None]:
        try:
            names, port = expand_host_pattern(pattern)
        except HostRangeError as exc:
            raise self.error(str(exc)) from None
        if pattern.strip().endswith(":") and port is None:
            raise self.error(f"invalid host pattern '{pattern}': a trailing ':' must be followed by a port number")
        if any(name.strip() == "---" for name in names):
            raise self.error("'---' is not a host name (this looks like a YAML file)")
        if any(not name for name in names):
            raise self.error("empty host name")
        return names, port

    def _var_line(self, text: str) -> None:
        """``key = value`` in a ``[NAME:vars]`` section."""
        if "=" not in text:
            raise self.error(f"expected key=value in [{self.group}:vars], got '{text}'")
        key, value = (part.strip() for part in text.split("=", 1))
        if key in self.section_vars:  # Ansible keeps the last one silently
            raise self.error(f"duplicate key '{key}' in [{self.group}:vars] (already set on line {self.section_vars[key]})")
        self.section_vars[key] = self.line
        self.builder.set_group_var(self.group, key, self._value(key, value), line=self.line)

    def _child_line(self, text: str) -> None:
        """A group name in a ``[NAME:children]`` section; undeclared groups wait for their section."""
        match = _GROUP_NAME.match(text)
        if not match:
            raise self.error(f"expected a group name in [{self.group}:children], got '{text}'")
        child = match.group(1)
        if self.builder.has_group(child):
            self.builder.add_child(self.group, child, line=self.line)
            return
        pending = self.pending.setdefault(child, _Pending("children", self.line))
        pending.parents.append((self.group, self.line))

    def _value(self, key: str, text: str) -> Any:
        try:
            return parse_ini_value(text)
        except ValueError as exc:
            raise self.error(f"invalid value for '{key}': {exc}") from None


def parse_ini_inventory(data: bytes, path: Path, builder: InventoryBuilder) -> None:
    """Add the hosts, groups and variables of the INI inventory ``data`` (read from ``path``)
    to ``builder``. Raises :class:`InventoryError` with the file and line of the problem."""
    _IniParser(builder, path).parse(_decode_lines(data, path))
