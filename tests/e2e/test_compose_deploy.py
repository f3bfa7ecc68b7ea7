"""Issue 11 end to end: `provision deploy -i INVENTORY compose.yaml` of a Compose file using the keys added
for Compose (cap_add, sysctls, tmpfs, extra_hosts, init, logging, network aliases, depends_on
service_healthy, a Compose secret) onto a sandbox host, checked with `docker inspect` on the host: the
settings are there, the secret is a file at /run/secrets/... (on a tmpfs on the host) and nowhere else."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import cli, cli_json, start_fleet

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECRET = "compose_SECRET_never_printed_51c9"

COMPOSE = """\
name: cmp
services:
  db:
    build: ./app
    image: provision-compose/app:1
    healthcheck: {test: ["CMD", "wget", "-qO-", "http://127.0.0.1/"], interval: 1s, retries: 30}
    stop_grace_period: 1s
  web:
    build: ./app
    image: provision-compose/app:1
    depends_on: {db: {condition: service_healthy}}
    cap_add: [NET_ADMIN]
    sysctls: {net.ipv4.ip_unprivileged_port_start: "0"}
    tmpfs: ["/scratch:size=1m"]
    extra_hosts: ["gw:host-gateway", "static.example:10.1.2.3"]
    init: true
    logging: {driver: json-file, options: {max-size: 1m}}
    networks: {default: {aliases: [www]}}
    secrets: [api_key]
    stop_grace_period: 1s
    restart: unless-stopped
secrets:
  api_key: {environment: API_KEY}
"""


@pytest.fixture(scope="module")
def compose_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-compose", 1)
    proc = cli("docker", "install", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
               env={"PROVISION_HOME": str(fleet.home)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield fleet
    down()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("compose-project")
    shutil.copytree(ROOT / "playbooks" / "hello", folder / "app")
    (folder / "compose.yaml").write_text(COMPOSE)
    return folder


def host_exec(fleet, host: str, *argv: str) -> str:
    proc = subprocess.run(["docker", "exec", fleet.container(host), *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def inspect(fleet, host: str, name: str) -> dict:
    return json.loads(host_exec(fleet, host, "docker", "inspect", name))[0]


def test_a_compose_file_deploys_with_its_keys_applied(compose_fleet, project):
    fleet = compose_fleet
    proc, doc = cli_json("deploy", str(project / "compose.yaml"), "-i", str(fleet.inventory), "--known-hosts",
                         str(fleet.home / "known_hosts"),
                         env={"PROVISION_HOME": str(fleet.home), "API_KEY": SECRET}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    host = "sbx1"
    db, web = inspect(fleet, host, "cmp-db-1"), inspect(fleet, host, "cmp-web-1")
    assert db["State"]["Health"]["Status"] == "healthy"
    assert web["State"]["StartedAt"] >= db["State"]["StartedAt"]  # after db was healthy
    hc = web["HostConfig"]
    assert hc["CapAdd"] == ["CAP_NET_ADMIN"]
    assert hc["Sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"}
    assert hc["Tmpfs"] == {"/scratch": "size=1m"}
    assert sorted(hc["ExtraHosts"]) == ["gw:host-gateway", "static.example:10.1.2.3"]
    assert hc["Init"] is True
    assert hc["LogConfig"]["Type"] == "json-file"
    assert hc["LogConfig"]["Config"]["max-size"] == "1m"  # (the engine adds its daemon.json log-opts defaults)
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    aliases = web["NetworkSettings"]["Networks"]["cmp_default"]["Aliases"]
    assert "web" in aliases and "www" in aliases
    # the secret: a read-only bind of a file on the host's tmpfs, at /run/secrets/api_key
    mounts = {m["Destination"]: m for m in web["Mounts"]}
    secret_mount = mounts["/run/secrets/api_key"]
    assert secret_mount["Type"] == "bind" and secret_mount["RW"] is False
    assert secret_mount["Source"] == "/run/provision/secrets/cmp/web/api_key"
    assert host_exec(fleet, host, "stat", "-f", "-c", "%T", secret_mount["Source"]).strip() == "tmpfs"
    assert host_exec(fleet, host, "stat", "-c", "%u %g %a", secret_mount["Source"]).strip() == "0 0 400"
    assert host_exec(fleet, host, "docker", "exec", "cmp-web-1", "cat", "/run/secrets/api_key") == SECRET
    assert all(SECRET not in entry for entry in web["Config"]["Env"])
    assert SECRET not in json.dumps(web) and SECRET not in json.dumps(db)
    # a second run keeps everything (the secret unchanged: same file, same hash)
    proc, doc = cli_json("deploy", str(project / "compose.yaml"), "-i", str(fleet.inventory), "--known-hosts",
                         str(fleet.home / "known_hosts"),
                         env={"PROVISION_HOME": str(fleet.home), "API_KEY": SECRET}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["hosts"][host]["services"]["web"]["actions"] == ["keep"], doc["hosts"][host]
    # a changed secret value replaces the container, and the new value is what it reads
    proc, doc = cli_json("deploy", str(project / "compose.yaml"), "-i", str(fleet.inventory), "--known-hosts",
                         str(fleet.home / "known_hosts"),
                         env={"PROVISION_HOME": str(fleet.home), "API_KEY": SECRET + "2"}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["hosts"][host]["services"]["web"]["actions"] == ["replace"], doc["hosts"][host]
    assert host_exec(fleet, host, "docker", "exec", "cmp-web-1", "cat", "/run/secrets/api_key") == SECRET + "2"

