"""Ansible host patterns: declaring hosts (``web[01:04]:2222``) and selecting them (``web:&gpu:!web01``).

Two halves, both mirroring ansible-core (2.19) exactly:

* *declaration*: :func:`parse_address` splits ``host:port`` the way
  ``ansible.parsing.utils.addresses.parse_address`` does and :func:`expand_host_pattern`
  expands ``[x:y(:step)]`` ranges like ``ansible.plugins.inventory.expand_hostname_range``;
  the INI and YAML parsers use both.
* *selection*: :func:`select_hosts` evaluates a host pattern like
  ``InventoryManager.get_hosts(pattern)``.

Deliberate deviations (safer for a provisioning tool, all where Ansible warns, silently
mangles the pattern or crashes):

* a host range whose start is after its end, or that expands to nothing, is an error
  (Ansible silently declares no host);
* an empty pattern, an unclosed ``[`` or a dangling ``&``/``!`` raises :class:`PatternError`
  (Ansible selects every host, drops the ``[`` or crashes, respectively);
* the *implicit localhost* is never selected: ``localhost`` matches only a host of that
  name in the inventory.
"""

from __future__ import annotations

import fnmatch
import re
import string
from typing import TYPE_CHECKING

from provision.errors import PatternError

if TYPE_CHECKING:
    from provision.config.inventory import Inventory

__all__ = [
    "HostRangeError",
    "parse_address",
    "expand_host_pattern",
    "expand_hostname_range",
    "split_host_pattern",
    "select_hosts",
]


class HostRangeError(ValueError):
    """A ``[x:y]`` host range that cannot be expanded; the parsers add file and line."""


# ---------------------------------------------------------------------------
# Host addresses: ``parse_address``
# ---------------------------------------------------------------------------

# Range expressions allowed inside addresses: numeric (IPv4), hexadecimal (IPv6) and
# one-letter-or-numeric (host names), each with an optional numeric step.
_STEP = r"(?::[0-9]+)?"
_NUMERIC_RANGE = rf"\[[0-9]+:[0-9]+{_STEP}\]"
_HEX_RANGE = re.compile(rf"\[[0-9a-f]+:[0-9a-f]+{_STEP}\]", re.IGNORECASE)
_LABEL_UNIT = rf"(?:[\w-]|\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+){_STEP}\])"
_LABEL = re.compile(rf"(?:\w|\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+){_STEP}\]){_LABEL_UNIT}*", re.IGNORECASE)
_IPV4_PART = re.compile(rf"[0-9]{{1,3}}|{_NUMERIC_RANGE}")
_HEX_PART = re.compile(r"[0-9a-f]{1,4}", re.IGNORECASE)

# ``[host]:port`` first, then ``host:port`` where the host has no ``:`` outside brackets.
_BRACKETED_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOSTPORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")


def _is_ipv4(text: str) -> bool:
    """Four dot-separated parts, each 0-255 (up to 3 digits, leading zeros allowed) or a numeric range."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not _IPV4_PART.fullmatch(part):
            return False
        if part.isdigit() and len(part) == 3 and int(part) > 255:
            return False
    return True


def _is_hex_group_list(text: str) -> list[str] | None:
    """Split ``a:b:c`` into IPv6 groups; None unless every group is 1-4 hex digits."""
    if text == "":
        return []
    groups = text.split(":")
    return groups if all(_HEX_PART.fullmatch(group) for group in groups) else None


def _is_ipv6(text: str) -> bool:
    """IPv6 as Ansible accepts it: hex ranges allowed per group, at most 7 groups around ``::``,
    and only the ``::ffff:``/``0:0:0:0:0:ffff:``/``0:0:0:0:0:0:`` forms of embedded IPv4."""
    text = _HEX_RANGE.sub("0", text)
    dotted = re.fullmatch(r"(.*:)((?:[0-9a-f]{1,4}\.){3}[0-9a-f]{1,4})", text, re.IGNORECASE)
    if dotted:
        prefix = dotted.group(1).lower()
        return prefix in ("::", "::ffff:", "0:0:0:0:0:ffff:", "0:0:0:0:0:0:")
    if text.count("::") > 1:
        return False
    if "::" not in text:
        groups = _is_hex_group_list(text)
        return groups is not None and len(groups) == 8
    left, right = text.split("::")
    before, after = _is_hex_group_list(left), _is_hex_group_list(right)
    if before is None or after is None:
        return False
    if not before or not after:
        return len(before) + len(after) <= 6
    return len(before) + len(after) <= 7


def _is_hostname(text: str) -> bool:
    """Dot-separated labels of word characters, ``-`` and ranges; no label ends with ``-`` or ``_``."""
    return all(_LABEL.fullmatch(label) and label[-1] not in "-_" for label in text.split("."))


def parse_address(address: str, allow_ranges: bool = False) -> tuple[str, int | None]:
    """Split ``host[:port]`` into ``(host, port)`` like Ansible's ``parse_address``.

    Accepts ``[anything]:port`` and ``host:port`` (the host without ``:`` outside range
    brackets); what remains must be an IPv4 address, an IPv6 address or a host name, each
    possibly with ``[x:y]`` ranges. Raises ValueError when it is none of these, or when it
    holds a range and ``allow_ranges`` is false.
    """
    port: int | None = None
    for hostport in (_BRACKETED_HOSTPORT, _HOSTPORT):  # both are tried, in this order
        match = hostport.match(address)
        if match:
            address, port = match.group(1), int(match.group(2))
    if not (_is_ipv4(address) or _is_ipv6(address) or _is_hostname(address)):
        raise ValueError(f"not a valid network host name: {address}")
    if not allow_ranges and "[" in address:
        raise ValueError("host ranges are not allowed here")
    return address, port


# ---------------------------------------------------------------------------
# Host ranges: ``web[01:04]``, ``node-[a:c]``, ``x[1:10:2]``
# ---------------------------------------------------------------------------


MAX_RANGE_HOSTS = 100_000  # hosts one inventory entry may expand to (a typo must not exhaust memory)


def _range_values(text: str, start: str, end: str, step_text: str) -> list[str]:
    """The values of one ``[start:end:step]`` range, zero-padded when ``start`` is."""
    try:
        step = int(step_text)
    except ValueError:
        raise HostRangeError(f"invalid host range '{text}': step '{step_text}' is not a number") from None
    if step <= 0:
        raise HostRangeError(f"invalid host range '{text}': step must be a positive number")
    letters = string.ascii_letters
    # Ansible looks start/end up as substrings of a-zA-Z (so 'a:C' runs a..z then A..C).
    if start in letters and end in letters:
        first, last = letters.index(start), letters.index(end)
        if first > last:
            raise HostRangeError(f"invalid host range '{text}': start '{start}' is after end '{end}'")
        return list(letters[first : last + 1 : step])
    try:
        first, last = int(start), int(end)
    except ValueError:
        message = f"invalid host range '{text}': start and end must both be numbers or both letters"
        raise HostRangeError(message) from None
    width = len(start) if start.startswith("0") and len(start) > 1 else 0
    if width and len(end) != width:
        raise HostRangeError(f"invalid host range '{text}': zero-padded start and end must have the same width")
    if first > last:
        raise HostRangeError(f"invalid host range '{text}': start {first} is greater than end {last}")
    values = range(first, last + 1, step)
    if len(values) > MAX_RANGE_HOSTS:
        raise HostRangeError(f"invalid host range '{text}': too many hosts ({len(values)}; at most {MAX_RANGE_HOSTS})")
    return [str(value).zfill(width) for value in values]


def expand_hostname_range(name: str, *, original: str | None = None) -> list[str]:
    """Expand every ``[start:end(:step)]`` in ``name``, left to right, like Ansible's
    ``expand_hostname_range``: an empty start means 0, a zero-padded start pads every value
    to its width, letters run through ``a-zA-Z``."""
    text = original or name
    if "[" not in name:
        return [name]
    opening, closing = name.index("["), name.find("]")
    if closing < opening or "|" in name:
        raise HostRangeError(f"invalid host range '{text}': unbalanced brackets")
    head, inner, tail = name[:opening], name[opening + 1 : closing], name[closing + 1 :]
    bounds = inner.split(":")
    if len(bounds) not in (2, 3):
        raise HostRangeError(f"invalid host range '{text}': expected [start:end] or [start:end:step]")
    start, end = bounds[0] or "0", bounds[1]
    if not end:
        raise HostRangeError(f"invalid host range '{text}': missing end value")
    values = _range_values(text, start, end, bounds[2] if len(bounds) == 3 else "1")
    if not values:
        raise HostRangeError(f"invalid host range '{text}': expands to no host")
    names: list[str] = []
    for value in values:
        names.extend(expand_hostname_range(head + value + tail, original=text))
        if len(names) > MAX_RANGE_HOSTS:
            raise HostRangeError(f"invalid host range '{text}': too many hosts (more than {MAX_RANGE_HOSTS})")
    return names


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """Host names and port declared by one inventory host entry, like Ansible's
    ``BaseInventoryPlugin._expand_hostpattern``: an entry that is not a valid address is
    kept verbatim (port and all) as a single name unless it holds a ``[`` range."""
    try:
        name, port = parse_address(pattern, allow_ranges=True)
    except ValueError:
        name, port = pattern, None
    return expand_hostname_range(name), port


# ---------------------------------------------------------------------------
# Selection: ``select_hosts``
# ---------------------------------------------------------------------------

_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
_COLON_SEPARATED_PART = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_OR_REGEX_CHARS = (".", "?", "*", "[")


def _check_brackets(pattern: str, whole: str) -> None:
    """Reject a ``[`` that is never closed (Ansible silently drops it)."""
    opening = pattern.rfind("[")
    if opening >= 0 and "]" not in pattern[opening + 1 :]:
        raise PatternError(f"unclosed '[' in host pattern '{whole}'")


def split_host_pattern(pattern: str) -> list[str]:
    """Split a pattern into its parts like Ansible's ``split_host_pattern``: on commas when
    there are any; otherwise one part if it parses as an address (``host:22``,
    ``web[1:3]``, IPv6), else on ``:`` and whitespace outside ``[...]``."""
    if "," in pattern:
        parts = pattern.split(",")
        for part in parts:
            if not part.strip().lstrip("&!").startswith("~"):
                _check_brackets(part, pattern)
    else:
        try:
            parse_address(pattern, allow_ranges=True)
            parts = [pattern]
        except ValueError:
            _check_brackets(pattern, pattern)
            parts = _COLON_SEPARATED_PART.findall(pattern)
    return [part.strip() for part in parts if part.strip()]


def order_patterns(parts: list[str]) -> list[str]:
    """Plain parts first, then ``&`` intersections, then ``!`` exclusions, whatever the
    order written; ``all`` when there is no plain part (Ansible's ``order_patterns``)."""
    plain = [part for part in parts if part[0] not in "&!"]
    intersections = [part for part in parts if part[0] == "&"]
    exclusions = [part for part in parts if part[0] == "!"]
    return (plain or ["all"]) + intersections + exclusions


def _compile(expression: str, whole: str) -> re.Pattern[str]:
    """``~regex`` (matched from the start of the name) or a shell glob (the whole name)."""
    try:
        if expression.startswith("~"):
            return re.compile(expression[1:])
        return re.compile(fnmatch.translate(expression))
    except re.error as exc:
        raise PatternError(f"invalid regular expression in host pattern '{whole}': {exc}") from None


def _split_subscript(expression: str) -> tuple[str, tuple[int, int | None] | None]:
    """``web[1]`` -> ('web', (1, None)); ``web[1:3]`` -> ('web', (1, 3)); ``web[1:]`` -> ('web', (1, -1)).
    Regexes never carry a subscript."""
    if expression.startswith("~"):
        return expression, None
    match = _SUBSCRIPT.match(expression)
    if not match:
        return expression, None
    base, index, start, _separator, end = match.groups()
    if index:
        return base, (int(index), None)
    return base, (int(start), int(end) if end else -1)


def _apply_subscript(hosts: list[str], subscript: tuple[int, int | None] | None, part: str) -> list[str]:
    """Ansible's ``_apply_subscript``: ``[i]`` picks one host, ``[i:j]`` is inclusive, ``[i:]``
    runs to the end, and ``[i:0]`` (an end of 0) means ``[i]``."""
    if not hosts or not subscript:
        return hosts
    start, end = subscript
    try:
        if end:
            return hosts[start : (len(hosts) - 1 if end == -1 else end) + 1]
        return [hosts[start]]
    except IndexError:
        raise PatternError(f"no hosts matched the subscripted pattern '{part}'") from None


def _enumerate_matches(inventory: Inventory, expression: str, whole: str) -> list[str]:
    """Hosts of every group whose name matches (inventory group order, duplicates kept), plus
    hosts whose name matches when no group did or the expression is a glob/regex."""
    regex = _compile(expression, whole)
    groups = [name for name in inventory.groups if regex.match(name)]
    results: list[str] = []
    for group in groups:
        results.extend(inventory.group_hosts(group))
    if not groups or expression.startswith("~") or any(char in expression for char in _GLOB_OR_REGEX_CHARS):
        results.extend(name for name in inventory.hosts if regex.match(name))
    return results


def _match_one(inventory: Inventory, part: str, whole: str) -> list[str]:
    """Hosts matched by one part, ignoring its ``&``/``!`` prefix."""
    expression = part[1:] if part[0] in "&!" else part
    if not expression:
        raise PatternError(f"missing pattern after '{part[0]}' in host pattern '{whole}'")
    expression, subscript = _split_subscript(expression)
    return _apply_subscript(_enumerate_matches(inventory, expression, whole), subscript, part)


def select_hosts(inventory: Inventory, pattern: str) -> list[str]:
    """Host names selected by ``pattern``, in Ansible's order, like ``inventory.get_hosts(pattern)``.

    Forms: ``all``/``*``, a group or host name, globs, ``~regex``, unions (``a:b``, ``a,b``),
    intersections (``a:&b``), exclusions (``a:!b``) and subscripts (``g[0]``, ``g[1:3]``,
    ``g[-1]``). Plain parts are unioned first, then intersected, then excluded. Matching
    nothing gives ``[]``; a malformed pattern raises :class:`PatternError`.
    """
    parts = split_host_pattern(pattern)
    if not parts:
        raise PatternError(f"empty host pattern '{pattern}'")
    selected: list[str] = []
    for part in order_patterns(parts):
        if part in inventory.hosts:  # a plain host name is taken as is
            selected.append(part)
            continue
        matched = _match_one(inventory, part, pattern)
        if part[0] == "!":
            excluded = set(matched)
            selected = [name for name in selected if name not in excluded]
        elif part[0] == "&":
            kept = set(matched)
            selected = [name for name in selected if name in kept]
        else:
            present = set(selected)
            selected.extend(name for name in matched if name not in present)
    return list(dict.fromkeys(selected))


def unknown_names(inventory: Inventory, pattern: str) -> list[str]:
    """Plain names (no glob, regex, subscript, ``&`` or ``!``) in ``pattern`` that are neither a
    host nor a group of the inventory. Ansible warns about them and goes on; a --limit naming a
    host that does not exist is a typo that would silently leave that host out, so provision refuses."""
    unknown = []
    for part in split_host_pattern(pattern):
        if part[0] in "&!~" or any(char in part for char in _GLOB_OR_REGEX_CHARS):
            continue
        if part not in inventory.hosts and part not in inventory.groups:
            unknown.append(part)
    return unknown
