"""Registry-less image shipping end to end: a real local registry (Debian's docker-registry), real
reverse SSH tunnels, real engines on two fresh sandbox hosts (fleet `e2e-ship`). Tests run in file order.

Images go to the hosts the way `provision deploy` sends them: `stage` into the local registry, then
fan_out over the hosts, each host's engine checked (workflows.engine) and the image step of every
deploy (workflows.deploy_images.fetch_image) shipping it."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import tarfile
import threading
import time
import urllib.request

import pytest

from provision.deploy import local_registry as lr
from provision.deploy import remote_docker
from provision.deploy.images import SHIP, ImageSource
from provision.deploy.shipping import StagedImage, human_bytes, stage
from provision.report import HostResult
from provision.workflows.deploy_images import ImageJob, ImageOutcome, fetch_image
from provision.workflows.engine import engine
from provision.workflows.fanout import fan_out
from tests.e2e.conftest import cli, start_fleet

pytestmark = pytest.mark.e2e

REPO = "provision-test/ship"
DOCKER = "/usr/bin/docker"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def ship_fleet(tmp_path_factory):
    """Two fresh hosts with Docker installed by the CLI."""
    fleet, down = start_fleet(tmp_path_factory, "e2e-ship", 2)
    try:
        proc = cli("docker", "install", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                   timeout=600)
        assert proc.returncode == 0, proc.stderr
        yield fleet
    finally:
        down()


@pytest.fixture(scope="module")
def options(ship_fleet):
    from provision.executor.known_hosts import KnownHosts
    from provision.workflows.fanout import RunOptions

    return RunOptions(forks=2, known_hosts=KnownHosts(ship_fleet.home / "known_hosts"))


@pytest.fixture(scope="module")
def hosts(ship_fleet, options):
    """(name, docker client) per host, on each host's one SSH connection: to look at what arrived."""
    from provision.workflows.fanout import make_executor
    from provision.workflows.targets import load_targets

    targets = load_targets(ship_fleet.inventory)
    executors = [make_executor(t, options) for t in targets]
    items = [(e.name, remote_docker.client_for(e, t.settings)) for t, e in zip(targets, executors)]
    yield items
    for _, client in items:
        client.close()
    for executor in executors:
        executor.close()


@dataclasses.dataclass
class Shipped:
    outcome: ImageOutcome
    started: float
    finished: float


def deploy_image(fleet, options, staged: StagedImage, registry, log=lambda line: None) -> dict[str, Shipped]:
    """What `provision deploy` does with a shipped image: every host in parallel (fan_out), its engine
    checked, then the deploy's image step."""
    from provision.workflows.targets import load_targets

    source = ImageSource(staged.name, SHIP, local_id=staged.image_id, note="built here")
    job = ImageJob(None, {"app": source}, {}, False, registry.port, {staged.name: staged}, log)
    shipped: dict[str, Shipped] = {}
    lock = threading.Lock()

    def work(target, executor) -> HostResult:
        client = engine(target, executor)
        started = time.monotonic()
        outcome = fetch_image(job, "app", source, target, executor, client)
        with lock:
            shipped[target.name] = Shipped(outcome, started, time.monotonic())
        return HostResult(target.name)

    report = fan_out("deploy", load_targets(fleet.inventory), work, options)
    for name, result in report.hosts.items():
        assert name in shipped, result
        assert shipped[name].outcome.status != "failed", shipped[name].outcome
    return shipped


@pytest.fixture(scope="module")
def local():
    from provision_sandbox.base_image import ensure_busybox_image
    from provision_sandbox.engine import local_docker

    client = local_docker()
    ensure_busybox_image(client)
    yield client
    for tag in ("v1", "v2", "v3"):
        subprocess.run([DOCKER, "rmi", "-f", f"{REPO}:{tag}"], check=False, capture_output=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with lr.LocalRegistry(tmp_path_factory.mktemp("registry-state")) as running:
        yield running


def build(client, tag: str, base: bytes, top: bytes, label: str = "one") -> None:
    """busybox + /data/base.bin layer + /data/top.bin layer (the top layer last)."""
    dockerfile = (f"FROM provision-sandbox/busybox:latest\nCOPY base.bin /data/base.bin\n"
                  f"COPY top.bin /data/top.bin\nLABEL io.provision.test={label}\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile), ("base.bin", base), ("top.bin", top)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    client.images.build(fileobj=io.BytesIO(buffer.getvalue()), custom_context=True, tag=f"{REPO}:{tag}", rm=True)


def on_host(fleet, host: str, image: str, *command: str) -> str:
    proc = subprocess.run([DOCKER, "exec", fleet.container(host), "docker", "run", "--rm", image, *command],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def last_layer_size(registry, repository: str, tag: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{registry.port}/v2/{repository}/manifests/{tag}",
                                     headers={"Accept": MANIFEST_V2, "Authorization": registry.credentials.header()})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["layers"][-1]["size"]


def test_local_registry_serves_on_loopback_and_stops(tmp_path):
    registry = lr.LocalRegistry(tmp_path / "state")
    with registry:
        port = registry.port
        assert registry.how == "binary" and lr.answers(port, registry.credentials) and not lr.answers(port)
        process = registry._process
    assert process.poll() is not None and not lr.answers(port, registry.credentials)
    assert (tmp_path / "state" / "storage").is_dir()


BASE, TOP1, TOP2 = os.urandom(3 * 1024 * 1024), os.urandom(2 * 1024 * 1024), os.urandom(2 * 1024 * 1024)
RESULTS: dict[str, dict[str, Shipped]] = {}


def test_first_ship_reaches_both_hosts_in_parallel(ship_fleet, options, hosts, local, registry):
    build(local, "v1", BASE, TOP1)
    staged = stage(local, registry.port, f"{REPO}:v1", registry.auth_config)
    assert staged.repository == f"provision/{REPO}" and staged.tag == "v1"
    progress: list[str] = []
    results = deploy_image(ship_fleet, options, staged, registry, log=progress.append)
    digest = hashlib.sha256(TOP1).hexdigest()
    for host, _ in hosts:
        result = results[host].outcome
        assert result.status == "changed" and result.image_id == staged.image_id, result
        assert result.shipped_bytes >= len(BASE) + len(TOP1)  # random bytes do not compress
        assert digest in on_host(ship_fleet, host, f"{REPO}:v1", "sha256sum", "/data/top.bin")
        RESULTS.setdefault("v1", {})[host] = results[host]
    first, second = (results[h] for h, _ in hosts)
    assert max(first.started, second.started) < min(first.finished, second.finished)
    print(f"v1 ({human_bytes(staged.size)}): " + ", ".join(
        f"{h} {human_bytes(r.outcome.shipped_bytes)} in {r.outcome.seconds:.2f}s" for h, r in RESULTS["v1"].items()))


def test_changing_only_the_top_layer_sends_only_that_layer(ship_fleet, options, hosts, local, registry):
    build(local, "v2", BASE, TOP2)
    staged = stage(local, registry.port, f"{REPO}:v2", registry.auth_config)
    layer = last_layer_size(registry, staged.repository, staged.tag)
    results = deploy_image(ship_fleet, options, staged, registry)
    for host, _ in hosts:
        result = results[host].outcome
        print(f"v2 {host}: sent {result.shipped_bytes} B for a changed layer of {layer} B "
              f"({(result.shipped_bytes or 0) / layer:.3f}x)")
        assert result.status == "changed" and result.shipped_bytes <= 1.1 * layer, result
        assert hashlib.sha256(TOP2).hexdigest() in on_host(ship_fleet, host, f"{REPO}:v2", "sha256sum", "/data/top.bin")
        RESULTS.setdefault("v2", {})[host] = results[host]


def test_unchanged_image_costs_nothing(ship_fleet, options, hosts, local, registry):
    staged = stage(local, registry.port, f"{REPO}:v2", registry.auth_config)
    results = deploy_image(ship_fleet, options, staged, registry)
    for host, _ in hosts:
        result = results[host].outcome
        print(f"v2 again {host}: {result.message}")
        assert (result.status, result.message, result.shipped_bytes) == (
            "ok", "present on the host (nothing sent)", None), result


def test_same_layers_new_config_sends_only_metadata(ship_fleet, options, hosts, local, registry):
    build(local, "v3", BASE, TOP2, label="two")  # a new image id whose layers every host already has
    staged = stage(local, registry.port, f"{REPO}:v3", registry.auth_config)
    results = deploy_image(ship_fleet, options, staged, registry)
    for host, client in hosts:
        result = results[host].outcome
        print(f"v3 {host}: sent {result.shipped_bytes} B of a {staged.size} B image")
        assert result.status == "changed" and result.shipped_bytes < 0.01 * staged.size, result
        image = client.images.get(f"{REPO}:v3")
        assert image.id == staged.image_id
        assert not [t for t in image.tags if t.startswith("127.0.0.1:")]  # the temporary tag is gone
        assert client.images.get(f"{REPO}:v1").id != staged.image_id  # earlier images are untouched


def test_registry_storage_persists_across_restarts(local, registry):
    state = registry.state_dir
    registry.stop()
    with lr.LocalRegistry(state) as again:
        layer = last_layer_size(again, f"provision/{REPO}", "v2")
        assert layer > 2 * 1024 * 1024
