"""`provision deploy` on one host, driven through fan_out with the per-host work the CLI's deploy fans out
(workflows.deploy.host_work), a RecordingExecutor as the host and a small fake Docker engine in place of
the host's engine (remote_docker.client_for): the exact host commands, in order, and the engine's changes,
in order, for a fresh host, a converged host (the second run changes nothing), refusals (a foreign
network, a foreign container, a held lock, an engine that does not answer) and a failure midway (a pull
that fails: no service is touched, the lock is released)."""

from __future__ import annotations

import os
import re

import docker.errors
import pytest
import requests.exceptions

from provision.commands import host_health
from provision.deploy import images as image_sources
from provision.deploy import remote_docker
from provision.deploy.container_spec import container_specs, spec_hash
from provision.executor.fake import RecordingExecutor
from provision.workflows import deploy
from tests.unit.workflow_support import BY, NOW, drive, freeze_lock

RUN = "run000000001"
IMAGE = "busybox:1.36"
IMAGE_ID = "sha256:" + "b" * 64
ROOT = "/var/lib/docker"
DF = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100000000 1000 90000000 1% /\n"


@pytest.fixture(autouse=True)
def _frozen_lock(monkeypatch):
    freeze_lock(monkeypatch)


# -- a fake engine -----------------------------------------------------------------------------------
class Container:
    def __init__(self, engine, cid: str, name: str, labels: dict, status: str = "running") -> None:
        self.engine, self.id, self.name, self.labels, self.status = engine, cid, name, labels, status
        self.attrs = {"Name": "/" + name, "Config": {"Labels": labels}, "State": {"Status": status}}

    def start(self):
        self.engine.changes.append(("start", self.name))
        self.status = "running"

    def stop(self):
        self.engine.changes.append(("stop", self.name))
        self.status = "exited"

    def remove(self, force=False):
        self.engine.changes.append(("remove", self.name))
        self.engine.containers_.remove(self)

    def rename(self, name):
        self.engine.changes.append(("rename", self.name, name))
        self.name = name

    def reload(self):
        pass

    def logs(self, tail=None):
        return b""


class Engine:
    """Just enough of docker.DockerClient for a deploy; `changes` lists what it was asked to change, in order."""

    def __init__(self, *, networks: dict | None = None, containers=(), images: dict | None = None,
                 pull_error: Exception | None = None, down: bool = False, cut: dict | None = None) -> None:
        self.changes: list[tuple] = []
        self.cut = dict(cut or {})  # change ("create network", "create container") → the error it raises instead
        self.networks_ = dict(networks or {})  # name → labels
        self.containers_: list[Container] = list(containers)
        self.images_ = dict(images or {})  # name → id
        self.pull_error, self.down = pull_error, down
        engine = self

        class Networks:
            def list(self, names=()):
                return [type("N", (), {"name": n, "attrs": {"Name": n, "Labels": engine.networks_[n]}})()
                        for n in names if n in engine.networks_]

            def create(self, name, **kwargs):
                if "create network" in engine.cut:
                    raise engine.cut["create network"]
                engine.changes.append(("create network", name))
                engine.networks_[name] = kwargs.get("labels") or {}

        class Volumes:
            def get(self, name):
                raise docker.errors.NotFound("no such volume")

        class Images:
            def get(self, name):
                if name not in engine.images_:
                    raise docker.errors.ImageNotFound(f"no such image: {name}")
                return type("I", (), {"id": engine.images_[name]})()

        class Containers:
            def get(self, key):
                for c in engine.containers_:
                    if key in (c.name, c.id):
                        return c
                raise docker.errors.NotFound(f"no such container: {key}")

            def list(self, all=False, filters=None):
                stack = (filters or {}).get("label", "").partition("=")[2]
                return [c for c in engine.containers_ if c.labels.get("io.provision.stack") == stack]

        real_api = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")  # builds configs only

        class API:
            create_host_config = staticmethod(real_api.create_host_config)
            create_networking_config = staticmethod(real_api.create_networking_config)
            create_endpoint_config = staticmethod(real_api.create_endpoint_config)

            def pull(self, repository, tag=None, stream=False, decode=False, auth_config=None):
                engine.changes.append(("pull", f"{repository}:{tag}"))
                if engine.pull_error:
                    raise engine.pull_error
                engine.images_[f"{repository}:{tag}"] = IMAGE_ID
                return iter([{"status": "Downloading", "progressDetail": {"current": 1, "total": 2}, "id": "l1"}])

            def create_container(self, name, labels=None, **kwargs):
                if "create container" in engine.cut:
                    raise engine.cut["create container"]
                engine.changes.append(("create container", name))
                cid = f"id-{len(engine.containers_) + 1}"
                engine.containers_.append(Container(engine, cid, name, labels or {}, status="created"))
                return {"Id": cid}

            def connect_container_to_network(self, cid, network, aliases=None):
                engine.changes.append(("connect", cid, network))

            def inspect_container(self, cid):
                return {"State": {"Status": "running", "Health": {"Status": "healthy"}}}

        self.networks, self.volumes, self.images, self.containers, self.api = (
            Networks(), Volumes(), Images(), Containers(), API())

    def ping(self):
        if self.down:
            raise requests.exceptions.ConnectionError("Error while fetching server API version")
        return True

    def info(self):
        return {"DockerRootDir": ROOT}


# -- the deploy --------------------------------------------------------------------------------------
@pytest.fixture
def stack(tmp_path):
    """(playbook, inventory) of a one-service stack `shop` on host h1, its image pulled."""
    playbook = tmp_path / "shop.yml"
    playbook.write_text(f"stack: shop\nhosts: all\nservices:\n  web:\n    image: {IMAGE}\n"
                        "    command: [sleep, '1d']\n")
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n")
    return playbook, inventory


def deploy_host(stack, engine: Engine, executor: RecordingExecutor, monkeypatch, check: bool = False):
    monkeypatch.setattr(remote_docker, "client_for", lambda ex, settings: engine)
    playbook, targets, services_by_host = deploy.load(stack[0], stack[1], None, environ={})
    sources = {"web": image_sources.ImageSource(IMAGE, image_sources.PULL, note="pulled from docker.io")}
    context = deploy.DeployContext(playbook, services_by_host, sources, {}, {}, check, run_id=RUN)
    return drive("deploy", deploy.host_work(context), executor)


def host() -> RecordingExecutor:
    executor = RecordingExecutor("h1")
    executor.respond(re.escape(host_health.free_space(ROOT)), stdout=DF)
    return executor


def lock_commands(stack_file, result: str, services: dict) -> tuple[str, str, str]:
    from provision.commands import deploy_host as commands

    take = commands.acquire_lock({"token": RUN, "by": BY, "pid": os.getpid(), "stack": "shop", "action": "deploy",
                                  "since": NOW})
    audit = commands.append_audit({"time": NOW, "action": "deploy", "stack": "shop", "by": BY, "run": RUN,
                                   "result": result, "playbook": str(stack_file), "services": services})
    return take, audit, commands.release_lock(RUN)


def converged_container(stack) -> Container:
    from provision.deploy.playbook import load_playbook

    playbook = load_playbook(stack[0], environ={})
    spec = container_specs(playbook, "web", IMAGE_ID)[0]
    labels = {**spec.labels, "io.provision.stack": "shop", "io.provision.service": "web", "io.provision.replica": "1",
              "io.provision.spec-hash": spec_hash(spec, {})}
    return Container(None, "id-old", "shop-web-1", labels)


def test_a_fresh_host_gets_network_image_and_container_under_the_lock(stack, monkeypatch):
    engine, ex = Engine(), host()
    result = deploy_host(stack, engine, ex, monkeypatch)
    assert result.status == "changed", result.steps
    take, audit, release = lock_commands(stack[0], "ok", {"web": ["create"]})
    assert ex.shells == [take, host_health.free_space(ROOT), audit, release]
    assert engine.changes == [("create network", "shop_default"), ("pull", IMAGE),
                              ("create container", "shop-web-1.next"), ("start", "shop-web-1.next"),
                              ("rename", "shop-web-1.next", "shop-web-1")]
    assert [s.name for s in result.steps] == ["lock", "network shop_default", "disk space", f"image {IMAGE}",
                                              "service web"]


def test_the_second_run_on_the_converged_host_keeps_everything(stack, monkeypatch):
    old = converged_container(stack)
    engine, ex = Engine(networks={"shop_default": {"io.provision.stack": "shop"}}, containers=[old],
                        images={IMAGE: IMAGE_ID}), host()
    old.engine = engine
    result = deploy_host(stack, engine, ex, monkeypatch)
    take, audit, release = lock_commands(stack[0], "ok", {"web": ["keep"]})
    assert ex.shells == [take, host_health.free_space(ROOT), audit, release]
    assert engine.changes == [("pull", IMAGE)]  # pulled again in case the tag moved; nothing else
    assert result.changed == 0 and result.status == "ok", result.steps


def test_a_foreign_network_of_the_same_name_is_refused_before_any_image_or_container(stack, monkeypatch):
    engine, ex = Engine(networks={"shop_default": {}}), host()
    result = deploy_host(stack, engine, ex, monkeypatch)
    take, audit, release = lock_commands(stack[0], "failed", {})
    assert ex.shells == [take, audit, release]
    assert engine.changes == []
    assert result.status == "failed" and "was not created by provision" in result.steps[-1].message


def test_a_foreign_container_of_the_same_name_is_never_touched(stack, monkeypatch):
    theirs = Container(None, "id-theirs", "shop-web-1", {"com.docker.compose.project": "shop"})
    engine, ex = Engine(networks={"shop_default": {"io.provision.stack": "shop"}}, containers=[theirs]), host()
    theirs.engine = engine
    result = deploy_host(stack, engine, ex, monkeypatch)
    take, audit, release = lock_commands(stack[0], "failed", {})
    assert ex.shells == [take, host_health.free_space(ROOT), audit, release]
    assert engine.changes == [("pull", IMAGE)]  # no create, stop, rename or remove
    assert result.steps[-1].name == "service web" and result.steps[-1].status == "failed"
    assert "Docker Compose project 'shop'" in result.steps[-1].message


def test_a_failed_pull_stops_the_host_before_any_service_and_releases_the_lock(stack, monkeypatch):
    engine = Engine(pull_error=docker.errors.APIError("404", explanation="manifest for busybox:1.36 not found"))
    ex = host()
    result = deploy_host(stack, engine, ex, monkeypatch)
    take, audit, release = lock_commands(stack[0], "failed", {})
    assert ex.shells == [take, host_health.free_space(ROOT), audit, release]
    assert engine.changes == [("create network", "shop_default"), ("pull", IMAGE)]  # no container created
    assert result.steps[-1].name == f"image {IMAGE}" and result.steps[-1].status == "failed"
    assert "manifest for busybox:1.36 not found" in result.steps[-1].message


SOCKET_CLOSED = "('Connection aborted.', OSError('Socket is closed'))"  # a dial-stdio channel gone mid-request


def test_a_connection_lost_in_the_network_step_is_that_steps_failure_and_the_lock_is_released(stack, monkeypatch):
    """A cut connection outside the image step used to escape the host's work: fan_out made it a lone
    `error` step (the lock step and the steps before it lost)."""
    engine = Engine(cut={"create network": requests.exceptions.ConnectionError(SOCKET_CLOSED)})
    ex = host()
    result = deploy_host(stack, engine, ex, monkeypatch)
    take, audit, release = lock_commands(stack[0], "failed", {})
    assert ex.shells == [take, audit, release]
    assert engine.changes == []
    assert [(s.name, s.status) for s in result.steps] == [("lock", "ok"), ("networks", "failed")]
    assert result.steps[-1].message == f"the connection to h1's Docker engine was lost: {SOCKET_CLOSED}"
    assert result.status == "failed" and result.unreachable is None


def test_a_connection_lost_while_creating_a_container_fails_the_rollout_step_and_the_json_says_so(stack, monkeypatch):
    from provision.errors import EXIT_HOST_FAILED
    from provision.report import Report

    engine = Engine(cut={"create container": requests.exceptions.ConnectionError(SOCKET_CLOSED)})
    ex = host()
    result = deploy_host(stack, engine, ex, monkeypatch)
    take, audit, release = lock_commands(stack[0], "failed", {})
    assert ex.shells == [take, host_health.free_space(ROOT), audit, release]
    assert engine.changes == [("create network", "shop_default"), ("pull", IMAGE)]
    assert [(s.name, s.status) for s in result.steps][-2:] == [(f"image {IMAGE}", "changed"),
                                                                ("services rollout", "failed")]
    report = Report("deploy")
    report.add(result)
    assert report.exit_code() == EXIT_HOST_FAILED
    step = report.to_dict()["hosts"]["h1"]["steps"][-1]
    assert (step["name"], step["status"]) == ("services rollout", "failed")
    assert step["message"] == f"the connection to h1's Docker engine was lost: {SOCKET_CLOSED}"


def test_a_bug_in_a_step_is_still_not_mistaken_for_a_lost_connection(stack, monkeypatch):
    engine = Engine(cut={"create network": KeyError("oops")})
    result = deploy_host(stack, engine, host(), monkeypatch)
    assert [(s.name, s.status) for s in result.steps] == [("error", "failed")]


def test_a_held_lock_refuses_the_host_before_the_engine_changes(stack, monkeypatch):
    engine, ex = Engine(), host()
    take, _, _ = lock_commands(stack[0], "ok", {})
    ex.respond(re.escape(take), stdout='{"by": "ana@laptop", "action": "deploy", "stack": "shop"}\n', exit_code=17)
    result = deploy_host(stack, engine, ex, monkeypatch)
    assert ex.shells == [take]
    assert engine.changes == []
    assert result.status == "failed" and "another run holds the host lock" in result.steps[-1].message


def test_an_engine_that_does_not_answer_is_explained_and_no_lock_is_taken(stack, monkeypatch):
    engine, ex = Engine(down=True), host()
    ex.respond(re.escape(host_health.docker_units()), stdout="")
    result = deploy_host(stack, engine, ex, monkeypatch)
    assert ex.shells == [host_health.docker_units()]
    assert result.status == "failed" and "does not answer over SSH" in result.steps[-1].message


def test_check_mode_takes_no_lock_and_changes_nothing(stack, monkeypatch):
    engine, ex = Engine(), host()
    result = deploy_host(stack, engine, ex, monkeypatch, check=True)
    assert ex.shells == [host_health.free_space(ROOT)]
    assert engine.changes == []
    assert [(p["object"], p["action"]) for p in result.extra["plan"]] == [
        ("network shop_default", "create"), ("disk space", "keep"), (f"image {IMAGE}", "pull"), ("service web", "create")]


# -- a redeploy where nothing changed: one round trip (issue 12) ---------------------------------------
def shipped_host_work(stack, executor, monkeypatch, check: bool = False):
    """The deploy of `stack` with its image shipped from this machine (present here as IMAGE_ID); the docker
    SDK client of the host must never be asked for."""
    def no_client(ex, settings):
        raise AssertionError("the Docker SSH transport was opened")

    monkeypatch.setattr(remote_docker, "client_for", no_client)
    playbook, targets, services_by_host = deploy.load(stack[0], stack[1], None, environ={})
    sources = {"web": image_sources.ImageSource(IMAGE, image_sources.SHIP, IMAGE_ID, note="present here")}
    context = deploy.DeployContext(playbook, services_by_host, sources, {}, {}, check, run_id=RUN)
    return drive("deploy", deploy.host_work(context), executor)


def converged_probe(stack, *, lock: str = "free") -> tuple[str, str]:
    """(the probe of the shop stack on h1, a converged host's answer)."""
    from provision.commands.deploy_state import deploy_state
    from tests.unit.workflow_support import sections

    old = converged_container(stack)
    probe = deploy_state("shop", ["shop-web-1", "shop-web-1.next", "shop-web-1.previous"], ["shop_default"], [],
                         [IMAGE], [], [])
    from provision.facts.deploy_state import ContainerState
    from tests.unit.workflow_support import inspected_objects

    web = ContainerState(id="0123456789ab" + "c" * 52, name="shop-web-1", labels=old.labels, status="running",
                         image=IMAGE_ID)
    objects = inspected_objects(have_containers=[web], networks=["shop_default"], images=[IMAGE],
                                have_networks={"shop_default": {"io.provision.stack": "shop"}},
                                have_images={IMAGE: IMAGE_ID})
    return probe, sections(lock=lock, objects=objects, markers="", folders="")


def test_a_converged_host_is_one_round_trip_without_lock_or_docker_sdk(stack, monkeypatch):
    probe, answer = converged_probe(stack)
    ex = RecordingExecutor("h1")
    ex.respond(re.escape(probe), stdout=answer)
    result = shipped_host_work(stack, ex, monkeypatch)
    assert ex.commands == [(probe, True)]  # the probe, as root; no lock, no audit line, no dial-stdio
    assert result.status == "ok" and result.changed == 0, result.steps
    assert [(s.name, s.status, s.message) for s in result.steps] == [
        ("network shop_default", "ok", "exists"), (f"image {IMAGE}", "ok", "present on the host (nothing sent)"),
        ("service web", "ok", "shop-web-1 unchanged and running")]
    assert result.extra["services"] == {"web": {"actions": ["keep"], "containers": ["0123456789ab"]}}


def test_check_of_a_converged_host_is_the_same_round_trip_and_a_plan_of_keeps(stack, monkeypatch):
    probe, answer = converged_probe(stack)
    ex = RecordingExecutor("h1")
    ex.respond(re.escape(probe), stdout=answer)
    result = shipped_host_work(stack, ex, monkeypatch, check=True)
    assert ex.commands == [(probe, True)]
    assert [(p["object"], p["action"], p["reason"]) for p in result.extra["plan"]] == [
        ("network shop_default", "keep", "exists"), (f"image {IMAGE}", "keep", "present on the host"),
        ("service web", "keep", "unchanged and running")]


def test_a_held_lock_seen_by_the_probe_takes_the_full_path_which_refuses(stack, monkeypatch):
    probe, answer = converged_probe(stack, lock='held\n{"by": "ana@laptop", "action": "deploy", "stack": "shop"}')
    ex = RecordingExecutor("h1")
    ex.respond(re.escape(probe), stdout=answer)
    take, _, _ = lock_commands(stack[0], "ok", {})
    ex.respond(re.escape(take), stdout='{"by": "ana@laptop", "action": "deploy", "stack": "shop"}\n', exit_code=17)
    engine = Engine()
    monkeypatch.setattr(remote_docker, "client_for", lambda ex, settings: engine)
    playbook, targets, services_by_host = deploy.load(stack[0], stack[1], None, environ={})
    sources = {"web": image_sources.ImageSource(IMAGE, image_sources.SHIP, IMAGE_ID, note="present here")}
    context = deploy.DeployContext(playbook, services_by_host, sources, {}, {}, False, run_id=RUN)
    result = drive("deploy", deploy.host_work(context), ex)
    assert ex.shells == [probe, take]
    assert engine.changes == []
    assert result.status == "failed" and "another run holds the host lock" in result.steps[-1].message
