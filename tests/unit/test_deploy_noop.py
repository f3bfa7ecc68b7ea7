"""A redeploy where nothing changed (issue 12): the probe (commands.deploy_state) as an exact string, its
parser (facts.deploy_state) on real captures, and the planner (workflows.deploy_noop.plan): every step
"ok" when the host holds what the playbook wants, else the full path, with the reason."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provision.commands.deploy_host import read_lock
from provision.commands.deploy_state import deploy_state
from provision.commands.probes import probe_script
from provision.deploy import images as image_sources
from provision.deploy.container_spec import container_specs, spec_hash
from provision.facts.deploy_state import ContainerState, DeployState, parse_deploy_state
from provision.workflows import deploy, deploy_noop
from tests.unit.workflow_support import target

FIXTURES = Path(__file__).parent.parent / "fixtures" / "facts"
IMAGE = "shop/web:1"
IMAGE_ID = "sha256:" + "c" * 64
C_FMT = ('\'{"id":{{json .Id}},"name":{{json .Name}},"labels":{{json .Config.Labels}},"status":{{json .State.Status}},'
         '"exit_code":{{json .State.ExitCode}},"health":{{with index .State "Health"}}{{json .Status}}{{else}}null{{end}},'
         '"image":{{json .Image}}}\'')
N_FMT = '\'{"name":{{json .Name}},"labels":{{json .Labels}}}\''


# -- the probe -----------------------------------------------------------------------------------------
def test_the_probe_is_one_script_of_named_sections():
    assert deploy_state("shop", ["shop-web-1", "shop-web-1.next"], ["shop_default"], ["shop_data"], [IMAGE],
                        ["/opt/shop/.provision-sync/ab"], ["/srv/data"]) == probe_script([
        ("lock", read_lock()),
        ("containers", "ids=$(docker ps -aq --no-trunc --filter label=io.provision.stack=shop) || exit $?; "
                       f"docker container inspect --format {C_FMT} $ids shop-web-1 shop-web-1.next; exit 0"),
        ("networks", f"docker network inspect --format {N_FMT} shop_default; exit 0"),
        ("volumes", f"docker volume inspect --format {N_FMT} shop_data; exit 0"),
        ("images", "i=$(docker image inspect --format '{{.Id}}' shop/web:1 2>/dev/null) && [ -n \"$i\" ] || i=-; "
                   "printf '%s\\n' \"$i\""),
        ("markers", "printf '=%s\\n' \"$(cat /opt/shop/.provision-sync/ab 2>/dev/null)\""),
        ("folders", "if [ -d /srv/data ]; then echo yes; else echo no; fi"),
    ])


def test_the_probe_without_containers_networks_or_files():
    assert deploy_state("my stack", [], [], [], [], [], []) == probe_script([
        ("lock", read_lock()),
        ("containers", "ids=$(docker ps -aq --no-trunc --filter 'label=io.provision.stack=my stack') || exit $?; "
                       f"[ -n \"$ids\" ] || exit 0; docker container inspect --format {C_FMT} $ids ; exit 0"),
        ("networks", "true"), ("volumes", "true"), ("images", "true"), ("markers", "true"), ("folders", "true"),
    ])


# -- the parser, on real captures ------------------------------------------------------------------------
CAPTURED = dict(images=["provision-hello/web:1", "provision-hello/missing:1"],
                markers=["/opt/provision/hello/.provision-sync/9a1b2c3d4e5f6071",
                         "/opt/provision/hello/.provision-sync/0000000000000000"],
                folders=["/opt/provision", "/srv/dn-missing"])


def test_parse_a_real_sandbox_host():
    state = parse_deploy_state((FIXTURES / "deploy-state-real-sandbox-host.txt").read_text(), **CAPTURED)
    assert state.problem is None and not state.lock_held
    assert sorted(state.containers) == ["hello-cache-1", "hello-web-1", "hello-web-1.previous"]
    web = state.containers["hello-web-1"]
    assert (web.id[:12], web.status, web.health, web.exit_code) == ("6d8468258823", "running", "healthy", 0)
    assert web.labels["io.provision.spec-hash"] == "ea87df4a732b" and web.image.startswith("sha256:9be04c12")
    previous = state.containers["hello-web-1.previous"]
    assert (previous.status, previous.health, previous.labels["io.provision.spec-hash"]) == ("created", None,
                                                                                            "0123456789ab")
    assert state.containers["hello-cache-1"].labels["com.docker.compose.project"] == "hello"
    assert state.networks == {"hello_default": {"io.provision.stack": "hello"}, "bridge": {}}
    assert state.volumes == {"hello_data": {"io.provision.stack": "hello"}, "plain_vol": {}}
    assert state.images == {"provision-hello/web:1": "sha256:9be04c12ac3159bea1c72493001f2f690633f8bb6c73c507fba017460ecb27e0",
                            "provision-hello/missing:1": None}
    assert list(state.markers.values()) == ["5f1d0c2e8a3b4c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d", ""]
    assert state.folders == {"/opt/provision": True, "/srv/dn-missing": False}
    assert [c.name for c in state.with_label("io.provision.stack", "hello")] == ["hello-web-1.previous", "hello-web-1"]


def test_a_stopped_engine_is_a_problem_not_an_empty_host():
    state = parse_deploy_state((FIXTURES / "deploy-state-real-dockerd-stopped.txt").read_text(), **CAPTURED)
    assert state.problem and "containers: exit status 1" in state.problem and "Cannot connect" in state.problem


@pytest.mark.parametrize("edit,problem", [
    (lambda text: text.split("@@provision-fact images")[0], "images section is missing"),
    (lambda text: text.replace('{"name":"bridge","labels":{}}', "template parsing error: x"), "networks: unexpected"),
    (lambda text: text.replace("\n=\n", "\n"), "markers: 1 lines for 2 items"),
    (lambda text: text.replace("@@provision-fact lock\nfree", "@@provision-fact lock\nheld\n{\"by\": \"ana\"}"), None),
])
def test_output_that_cannot_be_read_with_certainty_is_a_problem(edit, problem):
    state = parse_deploy_state(edit((FIXTURES / "deploy-state-real-sandbox-host.txt").read_text()), **CAPTURED)
    if problem is None:
        assert state.problem is None and state.lock_held and "ana" in state.lock_holder
    else:
        assert problem in (state.problem or ""), state.problem


# -- the planner -----------------------------------------------------------------------------------------
def context_for(tmp_path, services: str, *, check: bool = False, how: str = image_sources.SHIP, top: str = "",
                compose: bool = False):
    playbook = tmp_path / ("compose.yaml" if compose else "shop.yml")
    playbook.write_text(f"name: shop\n{top}services:\n{services}" if compose else
                        f"stack: shop\nhosts: all\n{top}services:\n{services}")
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n")
    loaded, _, services_by_host = deploy.load(playbook, inventory, None, environ={})
    sources = {name: image_sources.ImageSource(IMAGE, how, IMAGE_ID if how == image_sources.SHIP else None)
               for name in loaded.services}
    return deploy.DeployContext(loaded, services_by_host, sources, {}, {}, check, run_id="run000000001")


WEB = f"  web:\n    image: {IMAGE}\n    command: [sleep, '1d']\n"


def ours(context, service: str = "web", replica: int = 1, *, status: str = "running", health: str | None = None,
         name: str | None = None, spec: str | None = None) -> ContainerState:
    if spec is None:
        spec = spec_hash(container_specs(context.playbook, service, IMAGE_ID)[0], {})
    labels = {"io.provision.stack": "shop", "io.provision.service": service, "io.provision.replica": str(replica),
              "io.provision.spec-hash": spec}
    return ContainerState(id=f"{service}{replica}" + "0" * 20, name=name or f"shop-{service}-{replica}", labels=labels,
                          status=status, health=health, image=IMAGE_ID)


def converged(context, *containers: ContainerState) -> DeployState:
    found = containers or (ours(context),)
    return DeployState(containers={c.name: c for c in found}, networks={"shop_default": {"io.provision.stack": "shop"}},
                       images={IMAGE: IMAGE_ID})


def test_a_converged_host_is_every_step_ok(tmp_path):
    context = context_for(tmp_path, WEB)
    noop = deploy_noop.plan(context, target(), ["web"], converged(context))
    assert noop.steps == [("network shop_default", "exists"), (f"image {IMAGE}", "present on the host (nothing sent)"),
                          ("service web", "shop-web-1 unchanged and running")]
    assert noop.actions == {"web": ["keep"]} and noop.containers == {"web": ["web100000000"]}


def test_under_check_the_same_steps_are_the_plan(tmp_path):
    context = context_for(tmp_path, WEB, check=True)
    noop = deploy_noop.plan(context, target(), ["web"], converged(context))
    assert noop.steps == [("network shop_default", "exists"), (f"image {IMAGE}", "present on the host"),
                          ("service web", "unchanged and running")]
    assert noop.containers == {}


def test_a_kept_previous_version_is_no_change(tmp_path):
    context = context_for(tmp_path, WEB)
    state = converged(context, ours(context), ours(context, name="shop-web-1.previous", status="exited", spec="0" * 12))
    assert deploy_noop.plan(context, target(), ["web"], state).actions == {"web": ["keep"]}


@pytest.mark.parametrize("change,why", [
    (lambda c, s: setattr(s, "lock_held", True), "the host lock is held"),
    (lambda c, s: setattr(s, "problem", "containers: exit status 1"), "exit status 1"),
    (lambda c, s: s.networks.clear(), "network shop_default is missing"),
    (lambda c, s: s.networks.update(shop_default={}), "not provision's"),
    (lambda c, s: s.images.update({IMAGE: "sha256:" + "d" * 64}), "not on the host"),
    (lambda c, s: s.containers.clear(), "create (not running on this host yet)"),
    (lambda c, s: s.containers.update({"shop-web-1": ours(c, status="exited")}), "start (unchanged but exited)"),
    (lambda c, s: s.containers.update({"shop-web-1": ours(c, spec="0" * 12)}), "replace (spec changed)"),
    (lambda c, s: s.containers.update({"shop-web-1.next": ours(c, name="shop-web-1.next")}), "left over"),
    (lambda c, s: s.containers.update({"shop-web-1.previous": ContainerState("x", "shop-web-1.previous")}),
     "is not this stack's"),
    (lambda c, s: s.containers.update({"shop-old-1": ours(c, "old", name="shop-old-1", spec="0" * 12)}), "no longer wanted"),
    (lambda c, s: s.containers.update({"shop-web-2": ours(c, replica=2, name="shop-web-2")}), "no longer wanted"),
])
def test_anything_to_change_takes_the_full_path(tmp_path, change, why):
    context = context_for(tmp_path, WEB)
    state = converged(context)
    change(context, state)
    with pytest.raises(deploy_noop.Changes, match=re.escape(why)):
        deploy_noop.plan(context, target(), ["web"], state)


def test_volumes_and_external_networks(tmp_path):
    services = WEB + "    volumes: [data:/data]\n    networks: [front]\n"
    context = context_for(tmp_path, services, top="networks:\n  front: {external: true, name: edge}\nvolumes:\n  data: {}\n")
    state = converged(context)
    state.networks = {"edge": {}}
    state.volumes = {"shop_data": {"io.provision.stack": "shop"}}
    steps = deploy_noop.plan(context, target(), ["web"], state).steps
    assert steps[:2] == [("network edge", "exists (external)"), ("volume shop_data", "exists (kept)")]
    state.volumes = {"shop_data": {}}
    with pytest.raises(deploy_noop.Changes, match="volume shop_data is not provision's"):
        deploy_noop.plan(context, target(), ["web"], state)


def test_a_bind_folder_in_sync_is_ok_and_a_changed_one_is_not(tmp_path):
    from provision.deploy.folder_sync import folder_archive, sync_marker

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("hi")
    context = context_for(tmp_path, WEB + "    volumes: [./site:/www]\n")
    want = deploy_noop.wanted(context, ["web"])
    marker = sync_marker(context.playbook.remote_dir, want.folders[0] if want.folders else
                         context.playbook.services["web"].mounts(context.playbook)[0].source)
    assert want.markers == [marker] and want.folders == []
    state = converged(context)
    state.markers = {marker: folder_archive(tmp_path / "site")[1]}
    assert deploy_noop.plan(context, target(), ["web"], state).steps[1] == ("folder " + context.playbook.services[
        "web"].mounts(context.playbook)[0].source, f"in sync with {tmp_path / 'site'}")
    (tmp_path / "site" / "index.html").write_text("changed")
    with pytest.raises(deploy_noop.Changes, match="content changed"):
        deploy_noop.plan(context, target(), ["web"], state)


def test_a_healthy_dependency_passes_and_one_still_starting_takes_the_full_path(tmp_path):
    services = (f"  db:\n    image: {IMAGE}\n"
                f"  web:\n    image: {IMAGE}\n    depends_on: {{db: {{condition: service_healthy}}}}\n")
    context = context_for(tmp_path, services, compose=True)
    state = converged(context, ours(context, "db", health="healthy"), ours(context))
    assert deploy_noop.plan(context, target(), ["db", "web"], state).actions == {"db": ["keep"], "web": ["keep"]}
    state.containers["shop-db-1"] = ours(context, "db", health="starting")
    with pytest.raises(deploy_noop.Changes, match="depends_on db"):
        deploy_noop.plan(context, target(), ["db", "web"], state)


def test_pulled_images_and_compose_secrets_take_the_full_path_without_a_round_trip(tmp_path):
    from provision.executor.fake import RecordingExecutor

    executor = RecordingExecutor("h1")
    pulled = context_for(tmp_path, WEB, how=image_sources.PULL)
    assert deploy_noop.probe(pulled, target(), executor) == (None, "image of service web: pull")
    (tmp_path / "tok.txt").write_text("s3cret")
    secret = context_for(tmp_path, f"  web:\n    image: {IMAGE}\n    secrets: [tok]\n", compose=True,
                         top="secrets:\n  tok: {file: ./tok.txt}\n")
    assert deploy_noop.probe(secret, target(), executor) == (None, "service web has Compose secrets")
    assert executor.shells == []


def test_the_steps_read_back_from_the_probe(tmp_path):
    """probe(): one command, as root, parsed and planned."""
    from provision.executor.fake import RecordingExecutor
    from tests.unit.workflow_support import sections

    context = context_for(tmp_path, WEB)
    executor = RecordingExecutor("h1")
    want = deploy_noop.wanted(context, ["web"])
    assert want.containers == ["shop-web-1", "shop-web-1.next", "shop-web-1.previous"]
    executor.respond(".*", stdout=probe_output(context))
    noop, why = deploy_noop.probe(context, target(), executor)
    assert why == "" and noop.actions == {"web": ["keep"]}
    assert executor.commands == [(deploy_state("shop", want.containers, ["shop_default"], [], [IMAGE], [], []), True)]
    assert sections  # (the renderer below uses the same section format)


def probe_output(context, containers=None) -> str:
    """The probe's output for a host holding `containers` (default: the converged web container)."""
    from tests.unit.workflow_support import sections

    found = containers if containers is not None else [ours(context)]
    lines = [json.dumps({"id": c.id, "name": "/" + c.name, "labels": c.labels, "status": c.status,
                         "exit_code": c.exit_code, "health": c.health, "image": c.image}) for c in found]
    return sections(lock="free", containers="\n".join(lines),
                    networks=json.dumps({"name": "shop_default", "labels": {"io.provision.stack": "shop"}}),
                    volumes="", images=IMAGE_ID, markers="", folders="")


# -- the shipping registry starts only for a host that takes the full path ----------------------------------
def test_staging_starts_once_on_demand_and_stops_in_its_own_thread(monkeypatch):
    import contextlib
    import threading

    events: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def staged(sources, check):
        events.append(("start", threading.current_thread().name))
        yield 5000, {"shop/web:1": "staged"}
        events.append(("stop", threading.current_thread().name))

    monkeypatch.setattr(deploy, "staged_images", staged)
    with deploy.Staging({}, False):
        pass
    assert events == []  # nobody asked: never started
    contexts = [type("C", (), {})() for _ in range(3)]
    with deploy.Staging({}, False) as staging:
        workers = [threading.Thread(target=staging.ensure, args=(c,)) for c in contexts]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert [e[0] for e in events] == ["start"]
    assert events == [("start", "provision-staging"), ("stop", "provision-staging")]
    assert all((c.registry_port, c.staged) == (5000, {"shop/web:1": "staged"}) for c in contexts)


def test_a_staging_error_is_every_waiting_hosts_error(monkeypatch):
    import contextlib

    from provision.errors import EnvironmentProblem

    @contextlib.contextmanager
    def broken(sources, check):
        raise EnvironmentProblem("no local engine")
        yield

    monkeypatch.setattr(deploy, "staged_images", broken)
    with deploy.Staging({}, False) as staging:
        for _ in range(2):
            with pytest.raises(EnvironmentProblem, match="no local engine"):
                staging.ensure(type("C", (), {})())
