"""Issue 11 end to end: realistic compose files deployed unchanged by `provision deploy`, and the literal
`provision deploy --inventory prod` in a project folder.

Fleet `compose-stacks`: sbx1 a CPU host, sbx2 a SIMULATED GPU host (no GPU exists here), Docker and the
NVIDIA runtime installed by `provision bootstrap`. The stacks (tests/fixtures/compose-stacks/) name
images the sandbox cannot pull: stand-ins built from the sandbox's busybox base and tagged with the real
names (tests/e2e/compose_parity.py) are on the local engine only, so provision ships them over SSH.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e import compose_parity as cp
from tests.e2e.conftest import cli, cli_json, start_fleet, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STACKS = ROOT / "tests" / "fixtures" / "compose-stacks"
CPU_HOST, GPU_HOST = "sbx1", "sbx2"
DB_PASSWORD = "db-pw-stacks-93e0a1c5"
API_TOKEN = "api-token-stacks-5be27d40"
DEFAULT_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


@pytest.fixture(scope="module")
def stacks_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "compose-stacks", 2, gpu_hosts=1)
    try:
        proc = cli_json("bootstrap", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                        env={"PROVISION_HOME": str(fleet.home)}, timeout=600)[0]
        assert proc.returncode == 0, proc.stdout + proc.stderr
        cp.build_standins()  # on the local engine only: provision ships them
        yield fleet
    finally:
        down()


def project_copy(tmp_path: Path, stack: str, name: str | None = None) -> Path:
    target = tmp_path / (name or stack)
    shutil.copytree(STACKS / stack, target)
    secret = target / "secrets" / "db_password.txt"
    if secret.exists():
        secret.write_text(DB_PASSWORD)
    return target


def deploy(fleet, project_dir: Path, *args: str, env: dict | None = None):
    """`provision deploy --json ARGS` in the project folder (no FILE: Compose's default names there)."""
    return cli_json("deploy", *args, env={"PROVISION_HOME": str(fleet.home), **(env or {})}, cwd=project_dir,
                    timeout=600)


def inventory_deploy(fleet, project_dir: Path, *args: str, env: dict | None = None):
    proc, doc = deploy(fleet, project_dir, "-i", str(fleet.inventory), *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, doc


@pytest.fixture
def cleanup(stacks_fleet):
    """Projects to remove from both hosts after the test (each test leaves the fleet empty)."""
    projects: list[str] = []
    yield projects
    for project in projects:
        for host in (CPU_HOST, GPU_HOST):
            cp.remove_project(stacks_fleet.container(host), project)


def running(fleet, host: str, project: str) -> dict[str, dict]:
    """The project's containers on a host by service (their `docker inspect`)."""
    return {s: c[0] for s, c in cp.service_containers(fleet.container(host), project).items()}


# ---- (i) realistic stacks, unchanged ------------------------------------------------------------------

def test_gpu_stack_lands_on_the_gpu_host_with_its_gpu(stacks_fleet, tmp_path, cleanup):
    """Milvus' standalone GPU compose file as published (`deploy.resources.reservations.devices`,
    device_ids ["0"]; etcd and MinIO beside it), limited to the inventory's `gpu` group."""
    project_dir = project_copy(tmp_path, "milvus-gpu")
    project = cp.project_name(project_dir / "compose.yaml")
    cleanup.append(project)
    proc, doc = inventory_deploy(stacks_fleet, project_dir, "-l", "gpu")
    assert set(doc["hosts"]) == {GPU_HOST}
    containers = running(stacks_fleet, GPU_HOST, project)
    assert set(containers) == {"etcd", "minio", "standalone"}
    standalone = containers["standalone"]
    assert standalone["State"]["Running"], standalone["State"]
    assert standalone["Name"] == "/milvus-standalone"  # container_name as written
    assert cp.inspect_view(standalone, project=project)["gpus"] == [
        {"driver": "nvidia", "count": 0, "device_ids": ["0"], "capabilities": [["gpu"]], "options": {}}]
    host = stacks_fleet.container(GPU_HOST)
    in_container = cp.host_run(host, "docker", "exec", "milvus-standalone", "nvidia-smi", "-L").stdout
    assert in_container.strip() == cp.host_run(host, "nvidia-smi", "-L").stdout.strip()  # the host's (fake) GPU
    assert running(stacks_fleet, CPU_HOST, project) == {}
    assert "image milvusdb/milvus:v2.4.0-gpu" in json.dumps(doc)  # shipped, no registry involved


def test_depends_on_service_healthy_starts_the_app_after_the_db_is_healthy(stacks_fleet, tmp_path, cleanup):
    """The web app waits for a healthy Postgres (the stand-in answers pg_isready 3 s after it starts) and
    a started Redis: the host engine's own events give the order."""
    project_dir = project_copy(tmp_path, "webapp-health")
    project = cp.project_name(project_dir / "compose.yaml")
    cleanup.append(project)
    host = stacks_fleet.container(CPU_HOST)
    since = cp.host_epoch(host)
    inventory_deploy(stacks_fleet, project_dir, "-l", CPU_HOST)
    containers = running(stacks_fleet, CPU_HOST, project)
    assert set(containers) == {"db", "cache", "web"}
    names = {s: c["Name"].lstrip("/") for s, c in containers.items()}
    events = cp.container_events(host, since)
    db_start = cp.first_event(events, "start", names["db"])
    db_healthy = cp.first_event(events, "health_status: healthy", names["db"])
    cache_start = cp.first_event(events, "start", names["cache"])
    web_start = cp.first_event(events, "start", names["web"])
    assert None not in (db_start, db_healthy, cache_start, web_start), events
    assert db_start < db_healthy < web_start, events
    assert cache_start < web_start, events
    assert db_healthy - db_start >= 2_500_000_000  # a real wait, not a lucky order
    wait_for(lambda: cp.host_run(host, "docker", "inspect", "-f", "{{.State.Health.Status}}", names["web"]
                                 ).stdout.strip() == "healthy", 60, "web to be healthy")


def test_secrets_are_in_run_secrets_and_nowhere_else(stacks_fleet, tmp_path, cleanup):
    """Compose-spec secrets (`file:` and `environment:`): each at /run/secrets/NAME in the containers that
    ask for it, and the values nowhere else: not in docker inspect (env, labels, cmd, anything), not in
    provision's stdout/stderr/--json, not on the host's disk outside a tmpfs (grep of / without /proc,
    /sys, /run, /dev), not in what provision keeps locally (PROVISION_HOME, the project's .provision/)."""
    project_dir = project_copy(tmp_path, "secrets")
    project = cp.project_name(project_dir / "compose.yaml")
    cleanup.append(project)
    proc, doc = inventory_deploy(stacks_fleet, project_dir, "-l", CPU_HOST, env={"API_TOKEN": API_TOKEN})
    host = stacks_fleet.container(CPU_HOST)
    containers = running(stacks_fleet, CPU_HOST, project)
    names = {s: c["Name"].lstrip("/") for s, c in containers.items()}

    def read(service, path):
        return cp.host_run(host, "docker", "exec", names[service], "cat", path).stdout

    assert read("db", "/run/secrets/db_password") == DB_PASSWORD
    assert read("api", "/run/secrets/db_password") == DB_PASSWORD
    assert read("api", "/run/secrets/api_token") == API_TOKEN
    assert cp.host_run(host, "docker", "exec", names["db"], "test", "!", "-e", "/run/secrets/api_token").returncode == 0
    for value in (DB_PASSWORD, API_TOKEN):
        assert value not in proc.stdout + proc.stderr and value not in json.dumps(doc)
        for service in names.values():
            inspect = cp.host_run(host, "docker", "inspect", service).stdout
            assert value not in inspect, service
            env = cp.host_run(host, "docker", "exec", service, "env").stdout
            assert value not in env, service
            assert value not in cp.host_run(host, "docker", "logs", service).stdout, service
        assert cp.files_containing(host, value) == [], value
        local = subprocess.run(["grep", "-rlsF", "-e", value, str(stacks_fleet.home), str(project_dir / ".provision")],
                               capture_output=True, text=True).stdout.split()
        assert local == [], local


# ---- (iii) `provision deploy --inventory prod` ----------------------------------------------------------

def prod_inventory(fleet, project_dir: Path, **all_vars) -> Path:
    """inventories/prod.yml in the project folder: the fleet's inventory as an operator would keep it."""
    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["all"].setdefault("vars", {}).update(all_vars)
    (project_dir / "inventories").mkdir(exist_ok=True)
    return fleet.write_inventory(project_dir / "inventories" / "prod.yml", doc)


def test_deploy_inventory_prod_in_a_project_folder(stacks_fleet, tmp_path, cleanup):
    """The literal command, in a folder holding compose.yaml and inventories/prod.yml (PROVISION_HOME
    gives the fleet's known_hosts, as ~/.provision would)."""
    project_dir = project_copy(tmp_path, "webapp-health", "shop-project")
    prod_inventory(stacks_fleet, project_dir)
    project = cp.project_name(project_dir / "compose.yaml")
    cleanup.append(project)
    proc = cli("deploy", "--inventory", "prod", env={"PROVISION_HOME": str(stacks_fleet.home)}, cwd=project_dir,
               timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in (CPU_HOST, GPU_HOST):
        assert set(running(stacks_fleet, host, project)) == {"db", "cache", "web"}, host


def test_stack_file_from_the_inventory_var_when_the_folder_has_no_compose_file(stacks_fleet, tmp_path):
    project_dir = tmp_path / "ops"
    project_dir.mkdir()
    shutil.copytree(STACKS / "webapp-health", project_dir / "stacks" / "shop")
    prod_inventory(stacks_fleet, project_dir, provision_stack_file="stacks/shop/compose.yaml")
    proc, doc = deploy(stacks_fleet, project_dir, "--inventory", "prod", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = json.dumps(doc["hosts"][CPU_HOST]["plan"])
    assert "service web" in plan and "service db" in plan


def test_no_compose_file_says_what_was_looked_for(tmp_path):
    project_dir = tmp_path / "empty"
    (project_dir / "inventories").mkdir(parents=True)
    (project_dir / "inventories" / "prod.yml").write_text(
        "all:\n  hosts:\n    web1: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    proc = cli("deploy", "--inventory", "prod", cwd=project_dir)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    for name in (*DEFAULT_NAMES, "provision_stack_file"):
        assert name in proc.stderr, name
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("how", ["stack file given", "compose.yaml found by default"])
def test_unknown_inventory_lists_what_was_tried(tmp_path, how):
    project_dir = tmp_path / "proj"
    shutil.copytree(STACKS / "webapp-health", project_dir)
    args = ["deploy", "--inventory", "nope"]
    if how == "stack file given":
        (project_dir / "hello.yml").write_text((ROOT / "playbooks" / "hello.yml").read_text())
        shutil.copytree(ROOT / "playbooks" / "hello", project_dir / "hello")
        args.append("hello.yml")
    proc = cli(*args, cwd=project_dir)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    for tried in ("inventories/nope.yml", "inventories/nope.yaml", "inventories/nope.ini", "inventories/nope/"):
        assert tried in proc.stderr, proc.stderr
