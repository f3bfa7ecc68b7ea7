"""`provision swarm init` end to end on its own fleet `e2e-swarm`: sbx1 (swarm_managers) and sbx2
(swarm_workers, a SIMULATED GPU host whose `gpu` var is removed, so its facts decide the GPU label).
Docker is installed first with `provision docker install`. The tests run in file order."""

from __future__ import annotations

import subprocess

from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import _start_fleet, cli, cli_json

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def swarm_fleet(tmp_path_factory):
    fleet, down = _start_fleet(tmp_path_factory, "e2e-swarm", 2, gpu_hosts=1)
    try:
        doc = yaml.safe_load(fleet.inventory.read_text())
        children = doc["all"]["children"]
        children["gpu"]["hosts"]["sbx2"].pop("gpu")  # the facts (simulated nvidia-smi) must find the GPU
        children["swarm_managers"] = {"hosts": {"sbx1": None}}
        children["swarm_workers"] = {"hosts": {"sbx2": None}}
        inventory = fleet.write_inventory(fleet.home / "swarm.yml", doc)
        installed = cli("docker", "install", "-i", str(inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                        timeout=600)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        yield fleet, inventory
    finally:
        down()


def swarm(swarm_fleet, *args):
    fleet, inventory = swarm_fleet
    return cli_json("swarm", "init", "-i", str(inventory), "--known-hosts", str(fleet.home / "known_hosts"), *args)


def node_state(fleet, host: str) -> str:
    return fleet.testinfra(host).check_output("docker info --format '{{.Swarm.LocalNodeState}}'")


def test_check_on_fresh_hosts_is_a_no_op(swarm_fleet):
    fleet, _ = swarm_fleet
    proc, doc = swarm(swarm_fleet, "--check")
    assert proc.returncode == 0, proc.stderr
    leader, worker = doc["hosts"]["sbx1"], doc["hosts"]["sbx2"]
    assert [p["step"] for p in leader["plan"]] == ["swarm"]
    address = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                              fleet.container("sbx1")], capture_output=True, text=True).stdout.strip()
    assert leader["plan"][0]["commands"][0] == f"docker swarm init --advertise-addr {address}"
    assert [p["step"] for p in worker["plan"]] == ["swarm", "gpu label"]
    assert "--token '<worker-join-token>'" in worker["plan"][0]["commands"][0]
    assert "GPU(s) found" in worker["plan"][1]["reason"]
    assert (node_state(fleet, "sbx1"), node_state(fleet, "sbx2")) == ("inactive", "inactive")


def test_init_forms_a_two_node_swarm_with_the_gpu_label(swarm_fleet):
    fleet, _ = swarm_fleet
    proc, doc = swarm(swarm_fleet)
    assert proc.returncode == 0, proc.stderr
    assert doc["summary"]["changed"] == 2
    assert "SWMTKN" not in proc.stdout + proc.stderr  # join tokens are never shown
    sbx1 = fleet.testinfra("sbx1")
    nodes = sbx1.check_output("docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'").splitlines()
    assert sorted(line.strip() for line in nodes) == ["sbx1 Leader", "sbx2"]
    labels = sbx1.check_output("docker node ls -q | xargs docker node inspect --format "
                               "'{{.Description.Hostname}} {{index .Spec.Labels \"provision.gpu\"}}'").splitlines()
    assert sorted(l.strip() for l in labels) == ["sbx1", "sbx2 true"]
    assert doc["hosts"]["sbx2"]["swarm"]["cluster_id"] == doc["hosts"]["sbx1"]["swarm"]["cluster_id"]


def test_second_run_changes_nothing(swarm_fleet):
    proc, doc = swarm(swarm_fleet)
    assert proc.returncode == 0, proc.stderr
    assert doc["summary"] == {"ok": 2, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
    assert [s["name"] for s in doc["hosts"]["sbx2"]["steps"]] == ["swarm", "gpu label"]


def test_no_manager_selected_is_bad_input(swarm_fleet):
    proc = cli("swarm", "init", "-i", str(swarm_fleet[1]), "-l", "sbx2")
    assert proc.returncode == 4
    assert "no swarm manager among the selected hosts" in proc.stderr


def test_host_in_another_swarm_fails_and_is_left_alone(swarm_fleet):
    fleet, _ = swarm_fleet
    sbx2 = fleet.testinfra("sbx2")
    sbx2.check_output("docker swarm leave && docker swarm init --advertise-addr eth0")  # test setup, not provision
    own = sbx2.check_output("docker info --format '{{.Swarm.Cluster.ID}}'")
    try:
        proc, doc = swarm(swarm_fleet)
        assert proc.returncode == 2, proc.stderr
        assert doc["hosts"]["sbx1"]["status"] == "ok"
        failed = doc["hosts"]["sbx2"]
        assert failed["status"] == "failed"
        assert "already in another swarm" in failed["steps"][0]["message"]
        assert "never leaves or forces" in failed["steps"][0]["message"]
        assert sbx2.check_output("docker info --format '{{.Swarm.Cluster.ID}}'") == own  # untouched
    finally:
        sbx2.check_output("docker swarm leave --force")
    proc, doc = swarm(swarm_fleet)  # back in: joins again, label again on the new node
    assert proc.returncode == 0, proc.stderr
    assert [(s["name"], s["status"]) for s in doc["hosts"]["sbx2"]["steps"]] == [("swarm", "changed"), ("gpu label", "changed")]
