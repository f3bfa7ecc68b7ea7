"""`provision deploy --swarm` driven through deploy_swarm (what the CLI calls), with a RecordingExecutor per
host (the factory of the deploy's SharedExecutors) and a small fake engine per host in place of remote_docker.client_for:
the exact host commands, in order (only the manager takes the lock), and the manager engine's changes, in
order, for a fresh swarm, a converged one (the second run changes nothing), refusals (a foreign service,
a non-overlay network, a held lock) and a failure midway (a service that does not converge: later
services are not touched, the lock is released, the audit says failed)."""

from __future__ import annotations

import functools
import os
import re

import docker.errors
import pytest

from provision.commands import deploy_host
from provision.deploy import images as image_sources
from provision.deploy import remote_docker
from provision.deploy.container_spec import LABEL_HASH, LABEL_SERVICE, LABEL_STACK
from provision.executor.fake import RecordingExecutor
from provision.workflows import swarm_deploy
from provision.workflows.fanout import RunOptions
from tests.unit.workflow_support import BY, NOW, TOKEN, freeze_lock


@pytest.fixture(autouse=True)
def _frozen_lock(monkeypatch):
    freeze_lock(monkeypatch)


class SwarmEngine:
    """Just enough of docker.DockerClient on a swarm node; `changes` lists what it was asked to change."""

    def __init__(self, *, networks: dict | None = None, services: list[dict] | None = None,
                 converges: bool = True) -> None:
        self.changes: list[tuple] = []
        self.networks_ = dict(networks or {})  # name → (driver, labels)
        self.services_: list[dict] = list(services or [])
        self.converges = converges
        engine = self

        class Networks:
            def create(self, name, driver=None, labels=None, **kwargs):
                engine.changes.append(("create network", name, driver))
                engine.networks_[name] = (driver, labels or {})

        class Images:
            def get(self, name):
                raise docker.errors.ImageNotFound(name)

        class API:
            def networks(self, names=()):
                return [{"Name": n, "Driver": engine.networks_[n][0], "Labels": engine.networks_[n][1]}
                        for n in names if n in engine.networks_]

            def services(self, filters=None):
                filters = filters or {}
                if "name" in filters:
                    return [s for s in engine.services_ if s["Spec"]["Name"] == filters["name"]]
                key, _, value = filters.get("label", "").partition("=")
                return [s for s in engine.services_ if (s["Spec"].get("Labels") or {}).get(key) == value]

            def create_service(self, name, labels, **kwargs):
                engine.changes.append(("create service", name))
                engine.services_.append({"ID": f"svc{len(engine.services_) + 1}", "Version": {"Index": 1},
                                         "Spec": {"Name": name, "Labels": labels}})
                return {"ID": engine.services_[-1]["ID"]}

            def update_service(self, service_id, version, name, labels, **kwargs):
                engine.changes.append(("update service", name))

            def remove_service(self, service_id):
                name = next(s["Spec"]["Name"] for s in engine.services_ if s["ID"] == service_id)
                engine.changes.append(("remove service", name))
                engine.services_ = [s for s in engine.services_ if s["ID"] != service_id]

            def inspect_service(self, service_id):
                return {"UpdateStatus": {"State": "completed" if engine.converges else "rollback_completed",
                                         "Message": "" if engine.converges else "update rolled back"}}

            def tasks(self, filters=None):
                if not engine.converges:
                    return [{"Status": {"State": "failed", "Err": "task: non-zero exit (1)"}}]
                return [{"NodeID": "node1", "Status": {"State": "running"}}]

        self.networks, self.images, self.api = Networks(), Images(), API()

    def ping(self):
        return True

    def info(self):
        return {"DockerRootDir": "/var/lib/docker"}


@pytest.fixture
def swarm(tmp_path, monkeypatch):
    """A two-node swarm (m1 manager, w1 worker) and a stack of two pulled services, api then worker."""
    playbook = tmp_path / "stack.yml"
    playbook.write_text("stack: demo\nhosts: all\nservices:\n"
                        "  api:\n    image: demo/api:1\n    command: [serve]\n"
                        "  worker:\n    image: demo/worker:1\n    depends_on: [api]\n")
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  vars: {ansible_host: 127.0.0.1}\n  children:\n"
                         "    swarm_managers: {hosts: {m1: {}}}\n    swarm_workers: {hosts: {w1: {}}}\n")
    monkeypatch.setattr(image_sources, "local_client", lambda: SwarmEngine())  # nothing here: both pulled
    return playbook, inventory


def deploy(swarm, monkeypatch, engines: dict, executors: dict, check: bool = False):
    monkeypatch.setattr(remote_docker, "client_for", lambda ex, settings: engines[ex.name])
    factory = lambda target, options: executors[target.name]  # noqa: E731
    monkeypatch.setattr(swarm_deploy, "SharedExecutors", functools.partial(swarm_deploy.SharedExecutors, make=factory))
    loaded = swarm_deploy.load(swarm[0], swarm[1], None, environ={})
    return swarm_deploy.deploy_swarm(loaded, RunOptions(check=check))


def lock(swarm, result: str, services: dict) -> tuple[str, str, str]:
    take = deploy_host.acquire_lock({"token": TOKEN, "by": BY, "pid": os.getpid(), "stack": "demo",
                                     "action": "deploy --swarm", "since": NOW})
    audit = deploy_host.append_audit({"time": NOW, "action": "deploy --swarm", "stack": "demo", "by": BY,
                                      "run": TOKEN, "result": result, "playbook": str(swarm[0]),
                                      "services": services})
    return take, audit, deploy_host.release_lock(TOKEN)


def nodes():
    return {"m1": RecordingExecutor("m1"), "w1": RecordingExecutor("w1")}


def summary(**actions) -> dict:
    return {name: [{"action": action, "name": f"demo_{name}", **({"id": f"svc{i}"} if action == "create" else {})}]
            for i, (name, action) in enumerate(actions.items(), 1)}


def test_a_fresh_swarm_gets_the_overlay_network_then_each_service_in_order_under_the_managers_lock(swarm, monkeypatch):
    manager, executors = SwarmEngine(), nodes()
    report = deploy(swarm, monkeypatch, {"m1": manager, "w1": SwarmEngine()}, executors)
    assert report.exit_code() == 0, report.hosts["m1"].steps
    take, audit, release = lock(swarm, "ok", summary(api="create", worker="create"))
    assert executors["m1"].shells == [take, audit, release]
    assert executors["w1"].shells == []  # pulled images: nothing to ship, no lock on a worker
    assert manager.changes == [("create network", "demo_default", "overlay"), ("create service", "demo_api"),
                               ("create service", "demo_worker")]


def test_the_second_run_on_the_converged_swarm_changes_nothing(swarm, monkeypatch):
    manager, executors = SwarmEngine(), nodes()
    engines = {"m1": manager, "w1": SwarmEngine()}
    deploy(swarm, monkeypatch, engines, executors)
    manager.changes.clear()
    executors = nodes()
    report = deploy(swarm, monkeypatch, engines, executors)
    take, audit, release = lock(swarm, "ok", {"api": [{"action": "keep", "name": "demo_api"}],
                                              "worker": [{"action": "keep", "name": "demo_worker"}]})
    assert executors["m1"].shells == [take, audit, release]
    assert manager.changes == []
    assert report.hosts["m1"].changed == 0 and report.exit_code() == 0


def test_a_foreign_service_of_the_same_name_is_left_alone_and_stops_the_deploy(swarm, monkeypatch):
    theirs = {"ID": "x1", "Version": {"Index": 3}, "Spec": {"Name": "demo_api", "Labels": {}}}
    manager, executors = SwarmEngine(services=[theirs]), nodes()
    report = deploy(swarm, monkeypatch, {"m1": manager, "w1": SwarmEngine()}, executors)
    take, audit, release = lock(swarm, "failed", {})
    assert executors["m1"].shells == [take, audit, release]
    assert manager.changes == [("create network", "demo_default", "overlay")]  # no service created or updated
    step = report.hosts["m1"].steps[-1]
    assert step.name == "service api" and step.status == "failed" and "not created by provision" in step.message


def test_a_bridge_network_of_the_same_name_is_refused_before_any_service(swarm, monkeypatch):
    manager, executors = SwarmEngine(networks={"demo_default": ("bridge", {LABEL_STACK: "demo"})}), nodes()
    report = deploy(swarm, monkeypatch, {"m1": manager, "w1": SwarmEngine()}, executors)
    take, audit, release = lock(swarm, "failed", {})
    assert executors["m1"].shells == [take, audit, release]
    assert manager.changes == []
    assert "Swarm services need an overlay network" in report.hosts["m1"].steps[-1].message


def test_a_service_that_does_not_converge_stops_the_later_ones_and_the_lock_is_released(swarm, monkeypatch):
    manager, executors = SwarmEngine(converges=False), nodes()
    report = deploy(swarm, monkeypatch, {"m1": manager, "w1": SwarmEngine()}, executors)
    take, audit, release = lock(swarm, "failed", summary(api="create"))
    assert executors["m1"].shells == [take, audit, release]
    assert manager.changes == [("create network", "demo_default", "overlay"), ("create service", "demo_api")]
    step = report.hosts["m1"].steps[-1]
    assert step.name == "service api" and step.status == "failed"
    assert "did not converge" in step.message and "task: non-zero exit (1)" in step.message


def test_a_held_lock_on_the_manager_refuses_before_the_swarm_changes(swarm, monkeypatch):
    manager, executors = SwarmEngine(), nodes()
    take, _, _ = lock(swarm, "ok", {})
    executors["m1"].respond(re.escape(take), stdout='{"by": "ana@laptop"}\n', exit_code=deploy_host.LOCK_HELD_RC)
    report = deploy(swarm, monkeypatch, {"m1": manager, "w1": SwarmEngine()}, executors)
    assert executors["m1"].shells == [take]
    assert manager.changes == []
    assert report.hosts["m1"].status == "failed" and "another run holds the host lock" in str(report.hosts["m1"].steps)


def test_check_mode_takes_no_lock_and_plans_network_and_services(swarm, monkeypatch):
    manager, executors = SwarmEngine(), nodes()
    report = deploy(swarm, monkeypatch, {"m1": manager, "w1": SwarmEngine()}, executors, check=True)
    assert executors["m1"].shells == [] and manager.changes == []
    assert [(p["object"], p["action"]) for p in report.hosts["m1"].extra["plan"]] == [
        ("network demo_default", "create"), ("service api", "create"), ("service worker", "create")]


def test_the_existing_service_carries_the_stack_and_hash_labels(swarm, monkeypatch):
    manager = SwarmEngine()
    deploy(swarm, monkeypatch, {"m1": manager, "w1": SwarmEngine()}, nodes())
    labels = manager.services_[0]["Spec"]["Labels"]
    assert labels[LABEL_STACK] == "demo" and labels[LABEL_SERVICE] == "api" and labels[LABEL_HASH]
