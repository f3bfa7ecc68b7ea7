"""provision.config.patterns.select_hosts: every pattern form, as ``ansible PATTERN --list-hosts``.

Expected results were checked against ansible-core 2.19 (and are again in
tests/unit/test_inventory_oracle.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.config.inventory import Inventory, load_inventory
from provision.config.patterns import order_patterns, select_hosts, split_host_pattern
from provision.errors import PatternError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "inventories" / "patterns" / "hosts.ini"

ALL = ["u1", "gpu-a01", "gpu-a02", "gpu-b01", "10.0.0.1", "web1", "web2", "web3", "db1", "db2", "canary1"]
WEB = ["web1", "web2", "web3", "canary1"]


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return load_inventory(FIXTURE)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # everything: group by group, breadth first (ungrouped, gpu, prod's children, ...)
        ("all", ALL),
        ("*", ALL),
        # a group: its hosts, then its children's
        ("web", WEB),
        ("ungrouped", ["u1"]),
        # a host
        ("web1", ["web1"]),
        ("10.0.0.1", ["10.0.0.1"]),
        # globs match group names and host names
        ("gpu-a*", ["gpu-a01", "gpu-a02"]),
        ("w*", WEB),
        # ~regex, matched from the start of the name
        ("~gpu-[ab]01", ["gpu-a01", "gpu-b01"]),
        ("~web", WEB),
        # unions, with ':' or ',' (whitespace around parts is ignored)
        ("web:db", [*WEB, "db1", "db2"]),
        ("web,db", [*WEB, "db1", "db2"]),
        (" web , db ", [*WEB, "db1", "db2"]),
        ("web1:web1", ["web1"]),
        # intersection keeps the order of the union
        ("prod:&db", ["web2", "db1", "db2"]),
        # exclusion
        ("web:!web_canary", ["web1", "web2", "web3"]),
        ("!db", [name for name in ALL if name not in ("db1", "db2", "web2")]),
        # positives first, then &, then !, whatever the written order
        ("!db:web", ["web1", "web3", "canary1"]),
        ("&db:web", ["web2"]),
        ("prod:&web:!web2", ["web1", "web3", "canary1"]),
        # subscripts: index, inclusive range, open range, negative index
        ("web[0]", ["web1"]),
        ("web[1:2]", ["web2", "web3"]),
        ("web[2:]", ["web3", "canary1"]),
        ("web[-1]", ["canary1"]),
        ("web[0:0]", ["web1"]),  # Ansible: an end of 0 means a single host
        ("web[0],web[-1]", ["web1", "canary1"]),
        # a subscript applies to everything the expression matched, duplicates included
        ("gpu*[1]", ["gpu-a02"]),
        # nothing matched
        ("nomatch", []),
        ("web:nomatch", WEB),
        ("host:22", []),  # an address, so a single pattern, naming no host
    ],
)
def test_select(inventory: Inventory, pattern: str, expected: list[str]) -> None:
    assert select_hosts(inventory, pattern) == expected
    assert inventory.select(pattern) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("web[", "unclosed '[' in host pattern 'web['"),
        ("web[,db", "unclosed '[' in host pattern 'web[,db'"),
        ("a:&", "missing pattern after '&' in host pattern 'a:&'"),
        ("web,!", "missing pattern after '!' in host pattern 'web,!'"),
        ("", "empty host pattern ''"),
        (" , ", "empty host pattern ' , '"),
        ("~(", "invalid regular expression in host pattern '~(': missing ), unterminated subpattern at position 0"),
        ("web[99]", "no hosts matched the subscripted pattern 'web[99]'"),
    ],
)
def test_malformed_patterns(inventory: Inventory, pattern: str, message: str) -> None:
    with pytest.raises(PatternError) as caught:
        select_hosts(inventory, pattern)
    assert str(caught.value) == message


def test_localhost_is_not_implicit(inventory: Inventory) -> None:
    # Ansible would conjure an implicit localhost; a provisioning tool must not.
    assert select_hosts(inventory, "localhost") == []


@pytest.mark.parametrize(
    ("pattern", "parts"),
    [
        ("a:b:&c:!d", ["a", "b", "&c", "!d"]),
        ("a,b[1:2]", ["a", "b[1:2]"]),
        ("web[1:2]", ["web[1:2]"]),  # a range-like subscript is not split on ':'
        ("fe80::1", ["fe80::1"]),  # an IPv6 address neither
        ("host:22", ["host:22"]),
        ("~a.*:b", ["~a.*", "b"]),
        ("a b", ["a", "b"]),
    ],
)
def test_split_host_pattern(pattern: str, parts: list[str]) -> None:
    assert split_host_pattern(pattern) == parts


def test_order_patterns() -> None:
    assert order_patterns(["!x", "&y", "a", "b"]) == ["a", "b", "&y", "!x"]
    assert order_patterns(["!x"]) == ["all", "!x"]
