"""`provision deploy --swarm` end to end on its own fleet `e2e-swarm-deploy`: sbx1 (swarm_managers) and
sbx2 (swarm_workers), Docker installed and the swarm formed by provision itself. The stack
playbooks/swarm-hello.yml runs one replica on each node; a container on the overlay network on sbx1
gets replies from BOTH tasks (cross-host over VXLAN). The sandbox kernel has no IPVS: the Compose file
sets `x-provision: {swarm: {endpoint_mode: dnsrr}}`. The tests run in file order."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import cli, cli_json, start_fleet

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NETWORK = "swarm-hello_web"
SERVICE = "swarm-hello_web"


@pytest.fixture(scope="module")
def swarm_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-swarm-deploy", 2)
    try:
        doc = yaml.safe_load(fleet.inventory.read_text())
        children = doc["all"]["children"]
        children["swarm_managers"] = {"hosts": {"sbx1": None}}
        children["swarm_workers"] = {"hosts": {"sbx2": None}}
        inventory = fleet.write_inventory(fleet.home / "swarm.yml", doc)
        common = ["-i", str(inventory), "--known-hosts", str(fleet.home / "known_hosts")]
        env = {"PROVISION_HOME": str(fleet.home)}
        for args in (["docker", "install"], ["swarm", "init"]):
            proc = cli(*args, *common, env=env, timeout=600)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        yield fleet, inventory
    finally:
        down()


@pytest.fixture(scope="module")
def playbook(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("swarm-project") / "playbooks"
    target.mkdir()
    shutil.copytree(ROOT / "playbooks" / "hello", target / "hello")
    shutil.copy(ROOT / "playbooks" / "swarm-hello.yml", target / "swarm-hello.yml")
    return target / "swarm-hello.yml"


def deploy(swarm_fleet, playbook, *args):
    fleet, inventory = swarm_fleet
    return cli_json("deploy", "--swarm", *args, str(playbook), "-i", str(inventory), "--known-hosts",
                    str(fleet.home / "known_hosts"), env={"PROVISION_HOME": str(fleet.home)}, timeout=600)


def on(fleet, host: str, *argv: str) -> str:
    proc = subprocess.run(["docker", "exec", fleet.container(host), *argv], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_check_on_a_fresh_swarm_plans_creates_and_touches_nothing(swarm_fleet, playbook):
    fleet, _ = swarm_fleet
    proc, doc = deploy(swarm_fleet, playbook, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = {item["object"]: item["action"] for item in doc["hosts"]["sbx1"]["plan"]}
    assert plan[f"network {NETWORK}"] == "create"
    assert plan["service web"] == "create"
    assert SERVICE not in on(fleet, "sbx1", "docker", "service", "ls")


def test_deploy_runs_a_task_on_each_node_answering_across_hosts(swarm_fleet, playbook):
    fleet, _ = swarm_fleet
    proc, doc = deploy(swarm_fleet, playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx1"]["steps"]}
    assert steps["service web"]["status"] == "changed", steps
    assert "2/2 task(s) running on 2 node(s)" in steps["service web"]["message"]
    assert doc["hosts"]["sbx2"]["steps"][0]["name"] == "image provision-hello/web:1"  # shipped to the worker too
    assert on(fleet, "sbx1", "docker", "network", "inspect", "-f", "{{.Driver}} {{.Attachable}}", NETWORK).split() == \
        ["overlay", "true"]
    tasks = on(fleet, "sbx1", "docker", "service", "ps", SERVICE, "--filter", "desired-state=running",
               "--format", "{{.Node}} {{.CurrentState}}").splitlines()
    assert sorted(line.split()[0] for line in tasks) == ["sbx1", "sbx2"], tasks
    # the service runs the shipped image by ID; the page names each task's container
    image = on(fleet, "sbx1", "docker", "service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
               SERVICE).strip()
    assert image.startswith("sha256:")
    # provision's settings from the Compose file's x-provision (endpoint_mode, rollout order)
    assert on(fleet, "sbx1", "docker", "service", "inspect", "-f",
              "{{.Spec.EndpointSpec.Mode}} {{.Spec.UpdateConfig.Order}}", SERVICE).split() == ["dnsrr", "start-first"]
    hostnames = {}
    for host in ("sbx1", "sbx2"):
        cid = on(fleet, host, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={SERVICE}").split()
        assert len(cid) == 1, (host, cid)
        hostnames[host] = on(fleet, host, "docker", "inspect", "-f", "{{.Config.Hostname}}", cid[0]).strip()
    replies = on(fleet, "sbx1", "docker", "run", "--rm", "--network", NETWORK, image, "sh", "-c",
                 "for i in $(seq 12); do busybox timeout 5 wget -qO- http://web/ || echo failed; done")
    seen = set(replies.split())
    assert {f"hello-from-{hostnames['sbx1']}", f"hello-from-{hostnames['sbx2']}"} <= seen, replies


def test_redeploy_unchanged_changes_nothing(swarm_fleet, playbook):
    fleet, _ = swarm_fleet
    before = on(fleet, "sbx1", "docker", "service", "inspect", "-f", "{{.Version.Index}}", SERVICE)
    proc, doc = deploy(swarm_fleet, playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["summary"]["changed"] == 0, doc
    assert on(fleet, "sbx1", "docker", "service", "inspect", "-f", "{{.Version.Index}}", SERVICE) == before


def test_check_after_a_deploy_is_a_no_op(swarm_fleet, playbook):
    proc, doc = deploy(swarm_fleet, playbook, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = doc["hosts"]["sbx1"]["plan"]
    assert {item["action"] for item in plan} == {"keep"}, plan
    assert doc["summary"]["changed"] == 0


def test_a_changed_spec_is_a_rolling_update_and_a_dropped_service_is_removed(swarm_fleet, playbook):
    fleet, _ = swarm_fleet
    doc = yaml.safe_load(playbook.read_text())
    doc["services"]["web"]["environment"] = {"GREETING": "v2"}
    doc["services"]["extra"] = {"image": "provision-hello/web:1", "networks": ["web"], "deploy": {"replicas": 1}}
    playbook.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc, out = deploy(swarm_fleet, playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["name"]: s for s in out["hosts"]["sbx1"]["steps"]}
    assert steps["service web"]["message"].startswith("updated"), steps
    assert steps["service extra"]["message"].startswith("created"), steps
    del doc["services"]["extra"]
    playbook.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc, out = deploy(swarm_fleet, playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["name"]: s for s in out["hosts"]["sbx1"]["steps"]}
    assert steps["service extra"]["message"].startswith("removed"), steps
    assert "swarm-hello_extra" not in on(fleet, "sbx1", "docker", "service", "ls")
