"""provision.config.inventory: parsing, ranges, variable precedence, typing, output, errors.

The expected values here were checked against ansible-core 2.19 (``ansible-inventory``);
tests/unit/test_inventory_oracle.py compares the fixtures with the real thing.
"""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest

from provision.config.inventory import Group, Host, Inventory, load_inventory
from provision.config.patterns import HostRangeError, expand_host_pattern, expand_hostname_range, parse_address
from provision.config.yaml_inventory import UnsafeText, VaultedText
from provision.errors import InventoryError, PatternError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inventories"


def write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def load_text(tmp_path: Path, name: str, text: str, **extra: str) -> Inventory:
    write(tmp_path, {name: text, **extra})
    return load_inventory(tmp_path / name)


# ---------------------------------------------------------------------------
# INI
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ini_full() -> Inventory:
    return load_inventory(FIXTURES / "ini_full" / "hosts.ini")


def test_ini_groups_in_declaration_order(ini_full: Inventory) -> None:
    assert list(ini_full.groups) == ["all", "ungrouped", "gpu", "cpu", "compute", "storage", "site", "monitoring"]
    assert ini_full.groups["all"].children == ["ungrouped", "site", "monitoring"]
    assert ini_full.groups["compute"].children == ["gpu", "cpu", "storage"]
    assert ini_full.groups["compute"].parents == ["site"]


def test_ini_hosts_and_memberships(ini_full: Inventory) -> None:
    assert ini_full.groups["ungrouped"].hosts == ["bastion"]  # jump moved to monitoring
    assert ini_full.groups["cpu"].hosts == ["cpu01", "cpu02", "gpu-a01"]
    assert ini_full.hosts["gpu-a01"] == Host(
        "gpu-a01", {"gpu_model": "H100", "gpu_count": 8, "fast": True, "role": "dual"}, ["gpu", "cpu"]
    )
    assert ini_full.hosts["jump"].groups == ["monitoring"]
    assert ini_full.hosts["bastion"].groups == ["ungrouped"]


def test_ini_ranges_padding_alpha_step_and_port(ini_full: Inventory) -> None:
    assert ini_full.groups["gpu"].hosts == [
        "gpu-a01", "gpu-a02", "gpu-a03", "gpu-a04",
        "gpu-b1", "gpu-b5", "gpu-b9",
        "node-a", "node-b", "node-c",
    ]
    assert ini_full.hosts["gpu-b5"].vars == {"ansible_port": 2222, "gpu_model": "A100 80GB", "gpu_count": 4}
    assert ini_full.groups["storage"].hosts == ["nas1.example.com", "nas2.example.com"]


def test_ini_port_of_first_declaration_wins(ini_full: Inventory) -> None:
    assert ini_full.hosts["jump"].vars == {"ansible_port": 2200}
    # cpu02 was declared without a port first; the later inline ansible_port is a plain var
    assert ini_full.hosts["cpu02"].vars == {"ansible_port": 2299}
    assert ini_full.hosts["cpu01"].vars == {"ansible_port": 2201}


def test_ini_inline_vars_are_python_literals(ini_full: Inventory) -> None:
    assert ini_full.hosts["node-a"].vars == {"labels": ["x", "y"], "ratio": 0.5, "nothing": None}
    assert ini_full.hosts["bastion"].vars == {"ansible_host": "203.0.113.10", "ansible_user": "admin"}


def test_ini_section_vars_are_python_literals_too(ini_full: Inventory) -> None:
    assert ini_full.groups["gpu"].vars == {
        "cuda_version": 12.4,
        "driver": "550",
        "enabled": True,
        "bare": "plain text here",
        "opts": {"a": 1, "b": [1, 2]},
    }


def test_ini_group_priority_is_not_a_var(ini_full: Inventory) -> None:
    assert ini_full.groups["compute"].priority == 3
    assert "ansible_group_priority" not in ini_full.groups["compute"].vars
    assert ini_full.groups["gpu"].priority == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1", 1),
        ("a=-5", -5),
        ("a=0x10", 16),
        ("a=1.5", 1.5),
        ("a=True", True),
        ("a=yes", "yes"),  # not a Python literal
        ("a=None", None),
        ("a='q'", "q"),
        ('a="x y"', "x y"),
        ("a=[1,2]", [1, 2]),
        ("a=(1,2)", [1, 2]),  # tuples become lists
        ("a={'k':1}", "{k:1}"),  # shell-style splitting removed the quotes first
        ('a="{\'k\': 1}"', {"k": 1}),
        ("a=1j", "1j"),
        ("a=...", "..."),
        ("a=b'x'", "bx"),  # shell quoting again
        ('a="b\'x\'"', UnsafeText("x")),  # a bytes literal: Ansible prints it as unsafe
    ],
)
def test_ini_inline_value_typing(tmp_path: Path, text: str, expected: object) -> None:
    inventory = load_text(tmp_path, "hosts.ini", f"h {text}\n")
    value = inventory.hosts["h"].vars["a"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a = 1 # a Python comment", 1),
        ("a = hello # not a comment", "hello # not a comment"),
        ("a = 'a b' 'c'", "a bc"),
        ("a = x=y", "x=y"),
        ("a =", ""),
    ],
)
def test_ini_section_value_typing(tmp_path: Path, line: str, expected: object) -> None:
    inventory = load_text(tmp_path, "hosts.ini", f"[g]\nh\n[g:vars]\n{line}\n")
    assert inventory.groups["g"].vars["a"] == expected


def test_ini_forward_and_backward_child_references(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.ini",
        "[top:children]\nmid\n[mid:vars]\nv=1\n[mid:children]\nleaf\n[leaf]\nh1\n[other:children]\nleaf\n",
    )
    assert inventory.groups["top"].children == ["mid"]
    assert inventory.groups["mid"].children == ["leaf"]
    assert inventory.groups["leaf"].parents == ["mid", "other"]
    assert inventory.groups["all"].children == ["ungrouped", "top", "other"]


def test_ini_empty_children_section_is_fine(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", "[web:children]\n[web]\nw1\n")
    assert inventory.groups["web"] == Group("web", {}, ["w1"], [], ["all"])


def test_ini_hosts_section_suffix_and_all_section(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", "[web:hosts]\nw1\n[all]\nh0\n")
    assert inventory.groups["web"].hosts == ["w1"]
    assert inventory.groups["all"].hosts == ["h0"]
    # a host only in 'all' is also listed under 'ungrouped', like Ansible does
    assert inventory.groups["ungrouped"].hosts == ["h0"]
    assert inventory.hosts["h0"].groups == ["ungrouped"]


def test_ini_addresses_with_ports(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.ini",
        "[fe80::1]:2222\n10.0.0.[1:2]:2200\nfe80::[a:b]\nfoo@bar:22\nweb_:22\n",
    )
    assert list(inventory.hosts) == ["fe80::1", "10.0.0.1", "10.0.0.2", "fe80::a", "fe80::b", "foo@bar:22", "web_:22"]
    assert inventory.hosts["fe80::1"].vars == {"ansible_port": 2222}
    assert inventory.hosts["10.0.0.2"].vars == {"ansible_port": 2200}
    # not valid host names, so Ansible keeps them verbatim, port and all
    assert inventory.hosts["foo@bar:22"].vars == {}
    assert inventory.hosts["web_:22"].vars == {}


# ---------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def yaml_nested() -> Inventory:
    return load_inventory(FIXTURES / "yaml_nested" / "hosts.yml")


def test_yaml_nested_children(yaml_nested: Inventory) -> None:
    assert list(yaml_nested.groups) == [
        "all", "ungrouped", "cloud", "gpu", "gpu_h100", "gpu_a100", "cpu", "empty_group", "monitoring", "databases",
    ]
    assert yaml_nested.groups["all"].children == ["ungrouped", "cloud", "empty_group", "monitoring", "databases"]
    assert yaml_nested.groups["cloud"].children == ["gpu", "cpu"]
    assert yaml_nested.groups["gpu"].children == ["gpu_h100", "gpu_a100"]
    assert yaml_nested.groups["cpu"].parents == ["cloud", "databases"]
    assert yaml_nested.groups["empty_group"] == Group("empty_group", {}, [], [], ["all"])


def test_yaml_hosts_ranges_ports_and_strings(yaml_nested: Inventory) -> None:
    assert yaml_nested.groups["gpu_h100"].hosts == [
        "gpu-a01", "gpu-a02", "gpu-a03", "gpu-a04", "gpu-b1", "gpu-b2", "gpu-b3",
    ]
    assert yaml_nested.hosts["gpu-b2"].vars == {"ansible_port": 2222}
    assert yaml_nested.groups["gpu_a100"].hosts == ["gpu-c01"]
    assert yaml_nested.groups["cpu"].hosts == ["cpua", "cpub", "cpuc", "gpu-a01"]
    assert yaml_nested.hosts["gpu-a01"] == Host("gpu-a01", {"gpu_count": 8, "role": "dual"}, ["gpu_h100", "cpu"])
    assert yaml_nested.hosts["cpub"].groups == ["cpu", "monitoring"]


def test_yaml_hosts_of_all_are_ungrouped_unless_grouped(yaml_nested: Inventory) -> None:
    assert yaml_nested.groups["all"].hosts == ["bastion", "jump"]
    assert yaml_nested.groups["ungrouped"].hosts == ["jump"]
    assert yaml_nested.hosts["jump"].vars == {"ansible_port": 2200}


def test_yaml_native_types(yaml_nested: Inventory) -> None:
    gpu = yaml_nested.groups["gpu"].vars
    assert gpu == {"gpu": True, "cuda": "12.4", "cuda_float": 12.4, "started": datetime.date(2024, 5, 1)}
    monitoring = yaml_nested.groups["monitoring"].vars
    # YAML 1.1 as Ansible reads it: on -> True, 0x1F -> 31, 1e3 (no dot) -> a string
    assert monitoring == {"alerting": True, "threshold": 31, "ratio": "1e3", "nothing": None}
    assert yaml_nested.hosts["cpub"].vars == {"monitored": True}
    assert yaml_nested.groups["gpu_a100"].priority == 10


def test_json_inventory_keeps_json_types(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.json", '{"all": {"hosts": {"h": {"n": 1e3, "s": "x"}}}}')
    assert inventory.hosts["h"].vars == {"n": 1000.0, "s": "x"}


def test_yaml_unsafe_and_vault_values(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.yml",
        "all:\n  hosts:\n    h:\n      u: !unsafe '{{ x }}'\n      n: !unsafe 5\n"
        "      v: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6162\n",
    )
    variables = inventory.host_vars("h")
    assert type(variables["u"]) is UnsafeText and variables["u"] == "{{ x }}"
    assert variables["n"] == 5
    assert type(variables["v"]) is VaultedText
    assert inventory.to_ansible_list()["_meta"]["hostvars"]["h"] == {
        "u": {"__ansible_unsafe": "{{ x }}"},
        "n": 5,
        "v": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n6162\n"},
    }


# ---------------------------------------------------------------------------
# Host ranges and addresses
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("web[01:03]", ["web01", "web02", "web03"]),
        ("web[8:10]", ["web8", "web9", "web10"]),
        ("web[08:10]", ["web08", "web09", "web10"]),
        ("node-[a:c]", ["node-a", "node-b", "node-c"]),
        ("x[1:10:4]", ["x1", "x5", "x9"]),
        ("x[:2]", ["x0", "x1", "x2"]),
        ("r[1:2]-[a:b].lan", ["r1-a.lan", "r1-b.lan", "r2-a.lan", "r2-b.lan"]),
        ("n[y:B]", ["ny", "nz", "nA", "nB"]),  # letters run a..z then A..Z
        ("plain", ["plain"]),
    ],
)
def test_expand_hostname_range(pattern: str, expected: list[str]) -> None:
    assert expand_hostname_range(pattern) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host", ("host", None)),
        ("host:22", ("host", 22)),
        ("10.0.0.1:22", ("10.0.0.1", 22)),
        ("[fe80::1]:22", ("fe80::1", 22)),
        ("fe80::1", ("fe80::1", None)),
        ("web[01:04]:2222", ("web[01:04]", 2222)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_address(text, allow_ranges=True) == expected


@pytest.mark.parametrize("text", ["web_", "-web", "a..b", "host:22:33", "a b:22", "foo@bar", "web[1:2]"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def test_expand_host_pattern_keeps_invalid_addresses_verbatim() -> None:
    assert expand_host_pattern("gpu[1:2]:2222") == (["gpu1", "gpu2"], 2222)
    assert expand_host_pattern("user@host:22") == (["user@host:22"], None)
    with pytest.raises(HostRangeError):
        expand_host_pattern("web[3:1]")


# ---------------------------------------------------------------------------
# Variable precedence
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vars_files() -> Inventory:
    return load_inventory(FIXTURES / "vars_files" / "hosts.ini")


def test_precedence_all_parent_child_host(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.ini",
        "[parent:children]\nchild\n[child]\nh1 v=host\nh2\n"
        "[all:vars]\nv=all\na=all\n[parent:vars]\nv=parent\np=parent\n[child:vars]\nv=child\n",
    )
    assert inventory.host_vars("h1") == {"v": "host", "a": "all", "p": "parent"}
    assert inventory.host_vars("h2") == {"v": "child", "a": "all", "p": "parent"}


def test_precedence_group_priority_orders_groups_of_equal_depth(tmp_path: Path) -> None:
    text = "[a]\nh\n[b]\nh\n[a:vars]\nv=a\n[b:vars]\nv=b\n"
    assert load_text(tmp_path, "hosts.ini", text).host_vars("h") == {"v": "b"}  # same depth: by name
    text += "ansible_group_priority=0\n"
    assert load_text(tmp_path, "hosts.ini", text).host_vars("h") == {"v": "a"}  # b now sorts first


def test_precedence_depth_beats_priority(tmp_path: Path) -> None:
    text = "[outer:children]\ninner\n[inner]\nh\n[outer:vars]\nv=outer\nansible_group_priority=100\n[inner:vars]\nv=inner\n"
    assert load_text(tmp_path, "hosts.ini", text).host_vars("h") == {"v": "inner"}


def test_precedence_group_vars_files_beat_all_inventory_group_vars(vars_files: Inventory) -> None:
    # inventory: all < fleet < cpu/gpu; files: all < fleet < cpu/gpu -- and every file beats every inventory var
    assert vars_files.host_vars("cpu01")["layer"] == "fleet_file"
    assert vars_files.host_vars("gpu02")["layer"] == "gpu_dir_b"


def test_precedence_host_vars_files_beat_inline_vars(vars_files: Inventory) -> None:
    assert vars_files.host_vars("gpu02")["inline"] == "host_file"
    assert vars_files.host_vars("gpu01")["inline"] == "host_inline"
    assert vars_files.host_vars("gpu01")["layer"] == "host_file"


def test_group_vars_directory_files_merge_in_sorted_order(vars_files: Inventory) -> None:
    gpu01 = vars_files.host_vars("gpu01")
    assert gpu01["gpu_json"] == [1, 2]  # 00-first.json
    assert gpu01["same_depth"] == "gpu_dir_a"  # 10-a.yml replaced 00-first.json
    assert gpu01["nested_var"] == "from_nested"  # subdirectory without extension
    assert "ignored" not in gpu01  # .txt, hidden and ~ files are skipped
    assert gpu01["host_file"] == "gpu01_a" and gpu01["host_file2"] == "gpu01_b"  # host_vars/gpu01/


def test_group_vars_first_existing_name_only(vars_files: Inventory) -> None:
    # group_vars/fleet exists, so group_vars/fleet.yml is never read (Ansible stops at the first match)
    assert "shadowed" not in vars_files.host_vars("cpu01")
    assert vars_files.host_vars("cpu01")["fleet_file"] == 1


def test_group_priority_from_files_is_just_a_var(vars_files: Inventory) -> None:
    # cpu has ansible_group_priority=5 in the inventory (it sorts after gpu) and 99 in group_vars/cpu.yaml
    assert vars_files.groups["cpu"].priority == 5
    assert vars_files.host_vars("gpu02")["same_depth"] == "cpu_file"
    assert vars_files.host_vars("gpu02")["ansible_group_priority"] == 99
    assert vars_files.group_vars("cpu")["ansible_group_priority"] == 5


def test_full_host_vars(vars_files: Inventory) -> None:
    assert vars_files.host_vars("cpu01") == {
        "all_file": True,
        "all_only": "all_inventory",
        "ansible_group_priority": 99,
        "fleet_file": 1,
        "fleet_only": "fleet_inventory",
        "layer": "fleet_file",
        "same_depth": "cpu_file",
    }


def test_internal_variables_are_not_shown(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", "h inventory_hostname=x group_names=y keep=1\n")
    assert inventory.host_vars("h") == {"keep": 1}
    assert inventory.hosts["h"].vars == {"inventory_hostname": "x", "group_names": "y", "keep": 1}


def test_host_groups_in_precedence_order(vars_files: Inventory) -> None:
    assert vars_files.host_groups("gpu02") == ["fleet", "gpu", "cpu"]


# ---------------------------------------------------------------------------
# Directories of inventories, host lists, empty sources
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_dir() -> Inventory:
    return load_inventory(FIXTURES / "mixed_dir")


def test_directory_sources_merge_in_sorted_order(mixed_dir: Inventory) -> None:
    assert list(mixed_dir.hosts) == ["web1", "web2", "web3", "db1", "web4", "gpu01", "gpu02", "gpu03", "db2", "mon1"]
    assert mixed_dir.groups["web"].parents == ["all", "cloud", "app"]
    assert mixed_dir.hosts["web1"].vars == {"tier": "front", "http_port": 8080}
    assert mixed_dir.hosts["gpu02"].vars == {}  # declared in 02-cloud.yml first: the :2202 came too late
    assert mixed_dir.groups["app"].vars == {"http_port": 81}
    assert mixed_dir.hosts["db2"].vars == {"port_json": 1000.0}


def test_directory_skips_what_ansible_skips(mixed_dir: Inventory) -> None:
    for skipped in ("readme-host", "cfg-host", "hidden-host", "backup-host", "retry-host", "orig-host"):
        assert skipped not in mixed_dir.hosts


def test_directory_vars_files_only_at_top_level(mixed_dir: Inventory) -> None:
    assert mixed_dir.host_vars("web2") == {"env": "prod", "from_group_vars": "web", "http_port": 8000, "tier": "front"}
    assert mixed_dir.host_vars("db1") == {"env": "prod", "from_group_vars": "app", "from_host_vars": "db1", "http_port": 81}
    assert mixed_dir.host_vars("mon1") == {"env": "prod"}  # zz-more/group_vars/ is not read


def test_host_list_source() -> None:
    inventory = load_inventory("h1, h2:2222,[::1]:23,")
    assert list(inventory.hosts) == ["h1", "h2", "::1"]
    assert inventory.groups["ungrouped"].hosts == ["h1", "h2", "::1"]
    assert inventory.host_vars("h2") == {"ansible_port": 2222}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.ini", ""),
        ("empty.yml", ""),
        ("comments.yml", "# nothing yet\n"),
        ("document.yml", "---\n"),
        ("hosts", "; only a comment\n"),
    ],
)
def test_empty_sources_are_empty_inventories(tmp_path: Path, name: str, text: str) -> None:
    inventory = load_text(tmp_path, name, text)
    assert inventory.hosts == {}
    assert list(inventory.groups) == ["all", "ungrouped"]
    assert inventory.to_ansible_list() == {
        "_meta": {"hostvars": {}, "profile": "inventory_legacy"},
        "all": {"children": ["ungrouped"]},
    }
    assert inventory.graph() == "@all:\n  |--@ungrouped:"


@pytest.mark.parametrize(
    ("name", "text", "hosts"),
    [
        ("hosts", "all:\n  hosts:\n    y1:\n", ["y1"]),  # no extension, YAML mapping: YAML
        ("hosts", "[web]\nw1\n", ["w1"]),  # no extension, not YAML: INI
        ("ini.yml", "[web]\nw1\n", ["w1"]),  # .yml that is not YAML: Ansible falls back to INI
        ("word.yml", "justaword\n", ["justaword"]),  # a YAML scalar, so INI: one host
    ],
)
def test_format_detection(tmp_path: Path, name: str, text: str, hosts: list[str]) -> None:
    assert list(load_text(tmp_path, name, text).hosts) == hosts


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def test_to_ansible_list_structure(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.yml",
        "all:\n  children:\n    web:\n      hosts:\n        w1: {port: 80}\n        w2:\n"
        "    empty:\n    parent:\n      children:\n        web:\n        empty:\n",
    )
    assert inventory.to_ansible_list() == {
        "_meta": {"hostvars": {"w1": {"port": 80}}, "profile": "inventory_legacy"},
        "all": {"children": ["ungrouped", "web", "empty", "parent"]},  # empty groups: only as children
        "parent": {"children": ["web", "empty"]},
        "web": {"hosts": ["w1", "w2"]},
    }


def test_graph_text(tmp_path: Path) -> None:
    inventory = load_text(
        tmp_path,
        "hosts.ini",
        "solo\n[web]\nw1 a=1\n[web:vars]\nb=[1, 'x']\n[site:children]\nweb\n[site:vars]\nansible_group_priority=2\n",
    )
    assert inventory.graph() == "\n".join(
        ["@all:", "  |--@ungrouped:", "  |  |--solo", "  |--@site:", "  |  |--@web:", "  |  |  |--w1"]
    )
    assert inventory.graph("web", with_vars=True) == "\n".join(
        ["@web:", "  |--w1", "  |  |--{a = 1}", "  |  |--{b = [1, 'x']}", "  |--{b = [1, 'x']}"]
    )
    assert inventory.graph("site", with_vars=True).splitlines()[-1] == "  |--{ansible_group_priority = 2}"
    with pytest.raises(PatternError):
        inventory.graph("nope")


def test_all_hosts_order_is_ansible_listing_order(tmp_path: Path) -> None:
    inventory = load_text(tmp_path, "hosts.ini", "u1\n[web]\nw1\n[web:children]\nsub\n[sub]\ns1\n[db]\nd1\nw1\n")
    assert list(inventory.hosts) == ["u1", "w1", "s1", "d1"]  # declaration order
    assert inventory.select("all") == ["u1", "w1", "d1", "s1"]  # group by group, breadth first


# ---------------------------------------------------------------------------
# Bad inputs: one exact line each
# ---------------------------------------------------------------------------

BAD_INPUTS = [
    # INI
    ("bad.ini", "[web]\nweb[01:x]\n", "bad.ini:2: invalid host range 'web[01:x]': start and end must both be numbers or both letters"),
    ("bad.ini", "[web]\nok\nweb[5:1]\n", "bad.ini:3: invalid host range 'web[5:1]': start 5 is greater than end 1"),
    ("bad.ini", "node-[c:a]\n", "bad.ini:1: invalid host range 'node-[c:a]': start 'c' is after end 'a'"),
    ("bad.ini", "web[01:100]\n", "bad.ini:1: invalid host range 'web[01:100]': zero-padded start and end must have the same width"),
    ("bad.ini", "web[1:5:0]\n", "bad.ini:1: invalid host range 'web[1:5:0]': step must be a positive number"),
    ("bad.ini", "web[1:]\n", "bad.ini:1: invalid host range 'web[1:]': missing end value"),
    ("bad.ini", "web[1]\n", "bad.ini:1: invalid host range 'web[1]': expected [start:end] or [start:end:step]"),
    ("bad.ini", "web[1:3\n", "bad.ini:1: invalid host range 'web[1:3': unbalanced brackets"),
    ("bad.ini", "# c\n[foo:bar]\n", "bad.ini:2: section [foo:bar] has unknown type 'bar' (expected hosts, children or vars)"),
    ("bad.ini", "[foo bar]\n", "bad.ini:1: invalid section header '[foo bar]' (no spaces or other invalid characters allowed)"),
    ("bad.ini", "[web]\nweb1 novalue\n", "bad.ini:2: expected key=value host variable, got 'novalue'"),
    ("bad.ini", "[web]\nw1\n[web:vars]\njustakey\n", "bad.ini:4: expected key=value in [web:vars], got 'justakey'"),
    ("bad.ini", "[web]\nw1\n[web:children]\nnothere\n", "bad.ini:4: [web:children] includes undefined group 'nothere'"),
    ("bad.ini", "[ghost:vars]\na=1\n", "bad.ini:1: [ghost:vars] given for undefined group 'ghost'"),
    ("bad.ini", "[p:children]\na b\n", "bad.ini:2: expected a group name in [p:children], got 'a b'"),
    ("bad.ini", "[a:children]\nb\n[b:children]\na\n", "bad.ini:4: group 'a' is its own ancestor (a -> b -> a)"),
    ("bad.ini", "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n", "bad.ini:6: group 'a' is its own ancestor (a -> b -> c -> a)"),
    ("bad.ini", "[a:children]\na\n", "bad.ini:2: group 'a' is its own ancestor (a -> a)"),
    ("bad.ini", "[x:children]\nall\n", "bad.ini:2: group 'all' cannot be a child of group 'x'"),
    ("bad.ini", '[web]\nw1 a="x\n', "bad.ini:2: cannot parse host line: No closing quotation"),
    ("bad.ini", "[web]\nw1:\n", "bad.ini:2: invalid host pattern 'w1:': a trailing ':' must be followed by a port number"),
    ("bad.ini", "---\n", "bad.ini:1: '---' is not a host name (this looks like a YAML file)"),
    ("bad.ini", "[g]\nh\n[g:vars]\nansible_group_priority=high\n", "bad.ini:4: ansible_group_priority of group 'g' must be an integer, got 'high'"),
    ("bad.ini", 'h a="{[1]: 2}"\n', "bad.ini:1: invalid value for 'a': cannot evaluate value '{[1]: 2}': unhashable type: 'list'"),
    # YAML
    ("bad.yml", "all:\n  hosts:\n    a: [1\n  vars: {}\n", "bad.yml:4: YAML syntax error: expected ',' or ']', but got ':'"),
    ("bad.yml", "all:\n  hosts:\n  a: b\n   c: d\n", "bad.yml:4: YAML syntax error: mapping values are not allowed here"),
    ("bad.yml", "all:\n  x: !foo 1\n", "bad.yml:2: YAML syntax error: could not determine a constructor for the tag '!foo'"),
    ("hosts.yml", "all:\n  children:\n    web:\n      vars: {}\n      hosts:\n        - w1\n", "hosts.yml:5: 'hosts' of group 'web' must be a mapping, got list"),
    ("bad.yml", "all:\n  host:\n    a:\n", "bad.yml:2: unknown key 'host' in group 'all' (expected hosts, children or vars)"),
    ("bad.yml", "- a\n- b\n", "bad.yml:1: YAML inventory must be a mapping of groups, got list"),
    ("bad.yaml", "just text\n", "bad.yaml:1: YAML inventory must be a mapping of groups, got str"),
    ("bad.yml", "web: [a]\n", "bad.yml:1: group 'web' must be a mapping, got list"),
    ("bad.yml", "all:\n  hosts:\n    a: 5\n", "bad.yml:3: vars of host 'a' in group 'all' must be a mapping, got int"),
    ("bad.yml", "all:\n  hosts:\n    1:\n", "bad.yml:3: host pattern 1 must be a string (quote numbers)"),
    ("bad.yml", "all:\n  hosts:\n    ok:\n    web[3:1]:\n", "bad.yml:4: invalid host range 'web[3:1]': start 3 is greater than end 1"),
    ("bad.yml", "a:\n  children:\n    b:\n      children:\n        a:\n", "bad.yml:3: group 'b' is its own ancestor (b -> a -> b)"),
    ("bad.yml", "all:\n  vars:\n    ansible_group_priority: [1]\n", "bad.yml:3: ansible_group_priority of group 'all' must be an integer, got [1]"),
    ("bad.yml", "plugin: aws_ec2\n", "bad.yml:1: inventory plugin configuration (plugin: aws_ec2) is not supported; only static INI and YAML inventories are"),
    ("bad.json", '{"all": {"hosts": ["a"]}}', "bad.json:1: 'hosts' of group 'all' must be a mapping, got list"),
    # Neither YAML nor INI
    ("hosts", "all:\n  hosts: [\n", "hosts:1: invalid host pattern 'all:': a trailing ':' must be followed by a port number (and not YAML either: line 3: YAML syntax error: expected the node content, but found '<stream end>')"),
    # Sources Ansible would run or hand to plugins provision does not have
    ("inv.toml", "[web]\n", "inv.toml: TOML inventories are not supported"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_INPUTS, ids=[f"{n}:{t[:30]!r}" for n, t, _ in BAD_INPUTS])
def test_bad_inventories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).write_text(text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(name)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"group_vars/all.yml": "- 1\n"}, "group_vars/all.yml:1: vars file must be a mapping, got list"),
        ({"group_vars/web/b.yml": "a: 1\n b: 2\n"}, "group_vars/web/b.yml:2: YAML syntax error: mapping values are not allowed here"),
        ({"host_vars/w1": "$ANSIBLE_VAULT;1.1;AES256\n6162\n"}, "host_vars/w1:1: vault-encrypted vars files are not supported"),
    ],
)
def test_bad_vars_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], message: str) -> None:
    write(tmp_path, {"hosts.ini": "[web]\nw1\n", **files})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InventoryError) as caught:
        load_inventory("hosts.ini")
    assert str(caught.value).endswith(message)


def test_missing_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InventoryError) as caught:
        load_inventory("missing.ini")
    assert str(caught.value) == "missing.ini: inventory not found"


def test_executable_script_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    script = Path("inventory.py")
    script.write_text("#!/usr/bin/env python3\nprint('{}')\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(InventoryError) as caught:
        load_inventory("inventory.py")
    assert str(caught.value) == "inventory.py:1: executable inventory scripts are not supported"


def test_error_in_directory_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"inv/01.ini": "[web]\nw1\n", "inv/02.yml": "web:\n  hosts: [w2]\n"})
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path / "inv")
    assert str(caught.value) == f"{tmp_path / 'inv' / '02.yml'}:2: 'hosts' of group 'web' must be a mapping, got list"


def test_undefined_child_may_be_declared_in_a_later_file_only_if_it_exists_already(tmp_path: Path) -> None:
    # Each INI file must declare the children it names, or name groups that already exist.
    write(tmp_path, {"inv/01.yml": "web:\n  hosts:\n    w1:\n", "inv/02.ini": "[site:children]\nweb\n"})
    assert load_inventory(tmp_path / "inv").groups["site"].children == ["web"]
    os.remove(tmp_path / "inv" / "01.yml")
    write(tmp_path, {"inv/03.yml": "web:\n  hosts:\n    w1:\n"})
    with pytest.raises(InventoryError, match="includes undefined group 'web'"):
        load_inventory(tmp_path / "inv")
