"""The reference oracle: our loader against the real ``ansible-inventory`` and ``ansible``.

For each fixture inventory, ``Inventory.to_ansible_list()`` must equal the parsed output of
``ansible-inventory -i FIXTURE --list``, ``Inventory.graph()`` the text of ``--graph`` (with
and without ``--vars``), and ``Inventory.select(PATTERN)`` the hosts printed by
``ansible -i FIXTURE PATTERN --list-hosts``.

ansible-core is a test dependency (``pip install -e .[test]``); without it this module skips.
Ansible runs isolated from the machine: its home, temp dir and config are a fresh temp dir,
and it is told to fail (rather than warn) on any source it cannot parse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from provision.config.inventory import Inventory, load_inventory

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "inventories"
BIN = Path(sys.executable).parent
ANSIBLE_INVENTORY = BIN / "ansible-inventory"
ANSIBLE = BIN / "ansible"

pytestmark = pytest.mark.skipif(
    not (ANSIBLE_INVENTORY.exists() and ANSIBLE.exists()),
    reason=f"ansible-core is not installed next to {sys.executable} (pip install -e '.[test]')",
)

# fixture -> (inventory source, groups to graph, host patterns)
CASES: dict[str, tuple[str, list[str], list[str]]] = {
    "ini_full": (
        "ini_full/hosts.ini",
        ["compute", "monitoring"],
        ["all", "gpu[0:2]", "compute:&cpu", "site:!gpu", "~node-[ab]", "monitoring,storage", "*.example.com"],
    ),
    "yaml_nested": (
        "yaml_nested/hosts.yml",
        ["cloud", "databases"],
        ["all", "cloud:&monitoring", "gpu[1:3]", "all:!cloud", "~gpu-[ab]0?1", "cpu*"],
    ),
    "vars_files": (
        "vars_files/hosts.ini",
        ["gpu", "cpu"],
        ["all", "fleet:!cpu", "gpu[-1]"],
    ),
    "mixed_dir": (
        "mixed_dir",
        ["cloud", "app"],
        ["all", "app", "cloud:&app", "gpu[-1]", "web:db:!web1", "monitoring"],
    ),
    # the annotated example the repository ships (inventories/prod.example.yml)
    "prod_example": (
        "../../../inventories/prod.example.yml",
        ["gpu", "cpu"],
        ["all", "gpu", "gpu:&all", "all:!gpu", "web-*"],
    ),
    "patterns": (
        "patterns/hosts.ini",
        ["prod"],
        [
            "all", "web", "w*", "~web", "web:db", "prod:&db", "!db:web", "&db:web",
            "web[1:2]", "web[2:]", "web[-1]", "gpu*[1]", "web[0:0]", "10.0.0.1", "nomatch",
        ],
    ),
}


def _commands() -> dict[tuple, list[str]]:
    """Every ansible invocation the tests compare with, keyed by what it answers."""
    commands: dict[tuple, list[str]] = {}
    for name, (source, groups, patterns) in CASES.items():
        path = str(FIXTURES / source)
        commands[("list", name)] = [str(ANSIBLE_INVENTORY), "-i", path, "--list"]
        for group in ["all", *groups]:
            commands[("graph", name, group, False)] = [str(ANSIBLE_INVENTORY), "-i", path, "--graph", group]
            commands[("graph", name, group, True)] = [str(ANSIBLE_INVENTORY), "-i", path, "--graph", "--vars", group]
        for pattern in patterns:
            commands[("hosts", name, pattern)] = [str(ANSIBLE), "-i", path, pattern, "--list-hosts"]
    return commands


def _isolated_env(home: Path) -> dict[str, str]:
    """The caller's environment without ANSIBLE_* settings, Ansible confined to ``home``."""
    config = home / "ansible.cfg"
    config.write_text("")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        HOME=str(home),
        ANSIBLE_HOME=str(home / "ansible"),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="True",
        ANSIBLE_HOST_PATTERN_MISMATCH="ignore",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_NOCOLOR="1",
    )
    return env


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple, str]:
    """stdout of every command, run concurrently once for the whole module."""
    home = tmp_path_factory.mktemp("ansible-home")
    env = _isolated_env(home)
    commands = _commands()

    def run(argv: list[str]) -> str:
        result = subprocess.run(argv, cwd=home, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr}"
        return result.stdout

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        outputs = list(pool.map(run, commands.values()))
    return dict(zip(commands, outputs))


@pytest.fixture(scope="module")
def inventories() -> dict[str, Inventory]:
    return {name: load_inventory(FIXTURES / source) for name, (source, _groups, _patterns) in CASES.items()}


def _listed_hosts(stdout: str) -> list[str]:
    """Host names from ``ansible PATTERN --list-hosts``: a '  hosts (N):' line, then N names."""
    lines = stdout.splitlines()
    header = lines[0].strip()
    assert header.startswith("hosts (") and header.endswith("):"), stdout
    count = int(header[len("hosts (") : -2])
    names = [line.strip() for line in lines[1:] if line.strip()]
    assert len(names) == count, stdout
    return names


@pytest.mark.parametrize("name", list(CASES))
def test_list_matches_ansible_inventory(name: str, oracle: dict, inventories: dict) -> None:
    assert inventories[name].to_ansible_list() == json.loads(oracle[("list", name)])


GRAPH_CASES = [
    (name, group, with_vars)
    for name, (_source, groups, _patterns) in CASES.items()
    for group in ["all", *groups]
    for with_vars in (False, True)
]


@pytest.mark.parametrize(("name", "group", "with_vars"), GRAPH_CASES)
def test_graph_matches_ansible_inventory(name: str, group: str, with_vars: bool, oracle: dict, inventories: dict) -> None:
    expected = oracle[("graph", name, group, with_vars)].rstrip("\n")
    assert inventories[name].graph(group, with_vars=with_vars) == expected


PATTERN_CASES = [(name, pattern) for name, (_source, _groups, patterns) in CASES.items() for pattern in patterns]


@pytest.mark.parametrize(("name", "pattern"), PATTERN_CASES)
def test_select_matches_ansible_list_hosts(name: str, pattern: str, oracle: dict, inventories: dict) -> None:
    assert inventories[name].select(pattern) == _listed_hosts(oracle[("hosts", name, pattern)])


@pytest.mark.parametrize("name", list(CASES))
def test_host_vars_are_list_hostvars(name: str, oracle: dict, inventories: dict) -> None:
    hostvars = json.loads(oracle[("list", name)])["_meta"]["hostvars"]
    inventory = inventories[name]
    for host in inventory.hosts:
        assert json.loads(json.dumps(inventory.host_vars(host), default=str)) == hostvars.get(host, {})
