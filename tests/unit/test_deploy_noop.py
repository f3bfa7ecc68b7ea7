"""A redeploy where nothing changed (issue 12): the probe (commands.deploy_state) as an exact string, its
parser (facts.deploy_state) on real captures, and the planner (workflows.deploy_noop.plan): every step
"ok" when the host holds what the playbook wants, else the full path, with the reason."""

from __future__ import annotations

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
INSPECT = "docker inspect --format '{{json .}}'"
LISTING = "'{{if eq (.Label \"io.provision.stack\") \"shop\"}}L{{else}}-{{end}} {{.Names}}'"
MARKER = ("m=; n=; { IFS= read -r m; IFS= read -r n || [ -n \"$n\" ]; } 2>/dev/null < /opt/shop/.provision-sync/ab "
          "&& m=\"$m ...\"; printf '=%s\\n' \"$m\"")


# -- the probe -----------------------------------------------------------------------------------------
def test_the_probe_is_one_script_of_named_sections_with_two_docker_cli_starts():
    script = deploy_state("shop", ["shop-web-1", "shop-web-1.next"], ["shop_default"], ["shop_data"], [IMAGE],
                          ["/opt/shop/.provision-sync/ab"], ["/srv/data"])
    assert script == probe_script([
        ("lock", read_lock()),
        ("objects", f"out=$(docker ps -a --format {LISTING}) || exit $?; set -f; IFS='\n'; c=; for l in $out; do "
                    "n=${l#* }; case $l in L\\ *) c=\"$c $n\";; *) case ' shop-web-1 shop-web-1.next ' in "
                    "*\" $n \"*) c=\"$c $n\";; esac;; esac; done; unset IFS; echo containers$c; "
                    f"{INSPECT} $c shop_default shop_data shop/web:1; exit 0"),
        ("markers", MARKER),
        ("folders", "if [ -d /srv/data ]; then echo yes; else echo no; fi"),
    ])
    assert len(re.findall(r"\bdocker ", script)) == 2 and "$(cat" not in script


def test_the_probe_without_containers_networks_or_files():
    assert deploy_state("my stack", [], [], [], [], [], []) == probe_script([
        ("lock", read_lock()),
        ("objects", "out=$(docker ps -a --format '{{if eq (.Label \"io.provision.stack\") \"my stack\"}}L{{else}}-{{end}} "
                    "{{.Names}}') || exit $?; set -f; IFS='\n'; c=; for l in $out; do n=${l#* }; case $l in "
                    "L\\ *) c=\"$c $n\";; esac; done; unset IFS; echo containers$c; [ -n \"$c\" ] || exit 0; "
                    f"{INSPECT} $c ; exit 0"),
        ("markers", "true"), ("folders", "true"),
    ])


def test_the_stack_is_a_go_string_literal_in_the_listing():
    from provision.commands.deploy_state import go_string

    assert go_string('a"b\\c é\n') == '"a\\U00000022b\\U0000005cc \\U000000e9\\U0000000a"'
    assert go_string("shop-1_x") == '"shop-1_x"'


def test_the_containers_are_picked_by_label_or_name_in_sh(tmp_path):
    """The shell part of the `objects` section, with a stand-in `docker` printing a listing: labelled
    containers and the wanted names are inspected, nothing else; no name the host lacks is asked for."""
    import subprocess

    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = ps ]; then printf 'L shop-web-1\\n- other\\n- shop-web-1.next\\n"
                    "L shop-old-1\\n- x-shop-web-1.previous\\n'; else echo \"$@\"; fi\n")
    fake.chmod(0o755)
    script = deploy_state("shop", ["shop-web-1", "shop-web-1.next", "shop-web-1.previous"], ["shop_default"], [],
                          [], [], [])
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True,
                         env={"PATH": str(tmp_path)}).stdout
    section = out.split("@@provision-fact objects\n")[1].split("@@provision-rc objects 0")[0]
    assert section.splitlines() == ["containers shop-web-1 shop-web-1.next shop-old-1",
                                    "inspect --format {{json .}} shop-web-1 shop-web-1.next shop-old-1 shop_default"]


def test_a_marker_is_read_without_a_fork(tmp_path):
    """The marker's first line, ` ...` when more follows (never a digest then), empty when absent: run in sh."""
    import subprocess

    files = {"one": "ab12\n", "bare": "ab12", "two": "ab12\nzz\n", "spaces": " a\\b \n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    markers = [str(tmp_path / name) for name in [*files, "absent"]]
    script = deploy_state("s", [], [], [], [], markers, [])
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=True,
                         env={"PATH": "/nonexistent"}).stdout
    section = out.split("@@provision-fact markers\n")[1].split("@@provision-rc markers 0")[0]
    assert section.splitlines() == ["=ab12", "=ab12", "=ab12 ...", "= a\\b ", "="]


# -- the parser, on real captures ------------------------------------------------------------------------
CAPTURED = dict(networks=["hello_default", "bridge", "hello_backend"], volumes=["hello_data", "plain_vol", "hello_missing"],
                images=["provision-hello/web:1", "provision-hello/missing:1"],
                markers=["/opt/provision/hello/.provision-sync/9a1b2c3d4e5f6071",
                         "/opt/provision/hello/.provision-sync/0000000000000000"],
                folders=["/opt/provision", "/srv/dn-missing"])
WEB_IMAGE_ID = "sha256:9be04c12ac3159bea1c72493001f2f690633f8bb6c73c507fba017460ecb27e0"


def real(name: str = "sandbox-host") -> str:
    return (FIXTURES / f"deploy-state-real-{name}.txt").read_text()


def test_parse_a_real_sandbox_host():
    state = parse_deploy_state(real(), **CAPTURED)
    assert state.problem is None and not state.lock_held
    assert sorted(state.containers) == ["hello-cache-1", "hello-web-1", "hello-web-1.previous"]
    web = state.containers["hello-web-1"]
    assert (web.id[:12], web.status, web.health, web.exit_code) == ("dea5caaafce8", "running", "healthy", 0)
    assert web.labels["io.provision.spec-hash"] and web.image == WEB_IMAGE_ID
    previous = state.containers["hello-web-1.previous"]
    assert (previous.status, previous.health, previous.labels["io.provision.spec-hash"]) == ("created", None,
                                                                                            "0123456789ab")
    assert state.containers["hello-cache-1"].labels["com.docker.compose.project"] == "hello"
    assert state.networks == {"hello_default": {"io.provision.stack": "hello"}, "bridge": {}}
    assert state.volumes == {"hello_data": {"io.provision.stack": "hello"}, "plain_vol": {}}
    assert state.images == {"provision-hello/web:1": WEB_IMAGE_ID, "provision-hello/missing:1": None}
    assert list(state.markers.values()) == ["5f1d0c2e8a3b4c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d", ""]
    assert state.folders == {"/opt/provision": True, "/srv/dn-missing": False}
    assert sorted(c.name for c in state.with_label("io.provision.stack", "hello")) == ["hello-web-1",
                                                                                     "hello-web-1.previous"]


def test_a_stopped_engine_is_a_problem_not_an_empty_host():
    state = parse_deploy_state(real("dockerd-stopped"), **CAPTURED)
    assert state.problem and "objects: exit status 1" in state.problem and "Cannot connect" in state.problem


def test_names_of_another_kind_on_a_real_host_are_a_problem():
    """The generic inspect gives the first kind a name has: a network asked for that is a volume, a volume
    that is a network, an image reference that is a container: never read as what was asked."""
    asked = dict(networks=["hello_data"], volumes=["hello_default"], images=["hello-cache-1"], markers=[], folders=[])
    state = parse_deploy_state(real("wrong-kinds"), **asked)
    assert state.problem == "objects: 'hello_data' was asked for as a network and is a volume"
    lines = _lines("wrong-kinds")
    network = next(line for line in lines if '"IPAM"' in line)
    cache = next(line for line in lines if '"Name":"/hello-cache-1"' in line)
    for asked, objects, problem in (({"volumes": ["hello_default"]}, ["containers", network],
                                     "'hello_default' was asked for as a volume and is a network"),
                                    ({"images": ["hello-cache-1"]}, ["containers", cache],
                                     "'hello-cache-1' was asked for as an image and is a container")):
        state = parse_deploy_state(_objects(real("wrong-kinds"), "\n".join(objects)),
                                   **{"networks": [], "volumes": [], "images": [], "markers": [], "folders": [], **asked})
        assert state.problem == f"objects: {problem}"


def _objects(text: str, new: str) -> str:
    head, rest = text.split("@@provision-fact objects\n")
    _, tail = rest.split("@@provision-rc objects", 1)
    return f"{head}@@provision-fact objects\n{new}\n@@provision-rc objects{tail}"


def _lines(name: str = "sandbox-host") -> list[str]:
    return real(name).split("@@provision-fact objects\n")[1].split("\n@@provision-rc objects")[0].splitlines()


@pytest.mark.parametrize("edit,problem", [
    (lambda text: text.split("@@provision-fact markers")[0], "markers section is missing"),
    (lambda text: text.replace('"Name":"bridge"', '"Name":"bridge2"'), "network 'bridge' was asked for and 'bridge2'"),
    (lambda text: text.replace('"Name":"/hello-web-1"', '"Name":"/hello-web-2"'), "'hello-web-1' was asked for"),
    (lambda text: text.replace("Error: No such object: hello_missing\n", ""), "objects: 8 objects and 2 missing for 11 names"),
    (lambda text: text.replace("Error: No such object: hello_missing", "Error: No such object: elsewhere"),
     "'elsewhere' missing, which was not asked"),
    (lambda text: text.replace("Error: No such object: hello_missing", "Error response from daemon: permission"),
     "unexpected output 'Error response"),
    (lambda text: text.replace("containers hello-cache-1", "containers hello/cache-1"), "unexpected first line"),
    (lambda text: text.replace("containers hello-cache-1 ", "containers "), "8 objects and 3 missing for 10 names"),
    (lambda text: text.replace('"IPAM":', '"IPAMX":', 1), "'hello_default' was asked for as a network and is of no known"),
    (lambda text: text.replace('"Mountpoint":', '"IPAM":1,"Mountpoint":', 1), "hello_data' was asked for as a volume and is of no"),
    (lambda text: text.replace('"RepoTags":', '"State":{},"HostConfig":{},"RepoTags":', 1), "provision-hello/web:1' was asked"),
    (lambda text: _objects(text, "\n".join(_lines()[:4] + [_lines()[5], _lines()[4]] + _lines()[6:])), "asked for"),
    (lambda text: text.replace("\n=\n", "\n"), "markers: 1 lines for 2 items"),
    (lambda text: text.replace("@@provision-fact lock\nfree", "@@provision-fact lock\nheld\n{\"by\": \"ana\"}"), None),
])
def test_output_that_cannot_be_read_with_certainty_is_a_problem(edit, problem):
    state = parse_deploy_state(edit(real()), **CAPTURED)
    if problem is None:
        assert state.problem is None and state.lock_held and "ana" in state.lock_holder
    else:
        assert problem in (state.problem or ""), state.problem


def test_a_container_listed_twice_or_gone_since_the_listing():
    """A name given twice reads the same object twice; a container removed between `docker ps` and the inspect
    is not on the host."""
    lines = _lines()
    twice = _objects(real(), "\n".join([lines[0] + " hello-web-1", *lines[1:4], lines[3], *lines[4:]]))
    state = parse_deploy_state(twice, **CAPTURED)
    assert state.problem is None and sorted(state.containers) == ["hello-cache-1", "hello-web-1", "hello-web-1.previous"]
    gone = _objects(real(), "\n".join([lines[0], lines[2], *lines[3:], "Error: No such object: hello-cache-1"]))
    state = parse_deploy_state(gone, **CAPTURED)
    assert state.problem is None and sorted(state.containers) == ["hello-web-1", "hello-web-1.previous"]
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
    return ContainerState(id=(service.encode().hex() + str(replica)).ljust(64, "0"), name=name or f"shop-{service}-{replica}", labels=labels,
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
    assert noop.actions == {"web": ["keep"]} and noop.containers == {"web": ["776562100000"]}


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

    context = context_for(tmp_path, WEB)
    executor = RecordingExecutor("h1")
    want = deploy_noop.wanted(context, ["web"])
    assert want.containers == ["shop-web-1", "shop-web-1.next", "shop-web-1.previous"]
    executor.respond(".*", stdout=probe_output(context))
    noop, why = deploy_noop.probe(context, target(), executor)
    assert why == "" and noop.actions == {"web": ["keep"]}
    assert executor.commands == [(deploy_state("shop", want.containers, ["shop_default"], [], [IMAGE], [], []), True)]


def probe_output(context, containers=None) -> str:
    """The probe's output for a host holding `containers` (default: the converged web container)."""
    from tests.unit.workflow_support import inspected_objects, sections

    found = containers if containers is not None else [ours(context)]
    objects = inspected_objects(have_containers=found, networks=["shop_default"], images=[IMAGE],
                                have_networks={"shop_default": {"io.provision.stack": "shop"}},
                                have_images={IMAGE: IMAGE_ID})
    return sections(lock="free", objects=objects, markers="", folders="")


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


def test_a_name_of_another_kind_sends_the_host_down_the_full_path(tmp_path):
    """The network the stack wants is, on the host, a container's name: the generic inspect returns the
    container, and the probe says why instead of a no-op."""
    from provision.executor.fake import RecordingExecutor
    from tests.unit.workflow_support import inspected_objects, sections

    context = context_for(tmp_path, WEB)
    imposter = ContainerState(id="d" * 64, name="shop_default", labels={}, status="running", image=IMAGE_ID)
    objects = inspected_objects(have_containers=[ours(context)], images=[IMAGE], have_images={IMAGE: IMAGE_ID})
    head, *rest = objects.splitlines()
    container_line = inspected_objects(have_containers=[imposter]).splitlines()[1]
    answer = sections(lock="free", objects="\n".join([head, rest[0], container_line, *rest[1:]]), markers="", folders="")
    executor = RecordingExecutor("h1")
    executor.respond(".*", stdout=answer)
    assert deploy_noop.probe(context, target(), executor) == (
        None, "objects: 'shop_default' was asked for as a network and is a container")
