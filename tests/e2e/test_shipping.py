"""Registry-less image shipping end to end: a real local registry (Debian's docker-registry), real
reverse SSH tunnels, real engines on two fresh sandbox hosts (fleet `e2e-ship`). Tests run in file order."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import urllib.request

import pytest

from provision.deploy import local_registry as lr
from provision.deploy import remote_docker
from provision.deploy.shipping import (
    ShipResult,
    human_bytes,
    ship,
    ship_to_hosts,
    stage,
)
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
def hosts(ship_fleet):
    """(name, paramiko transport, docker client) per host, on each host's one SSH connection."""
    from provision.executor.known_hosts import KnownHosts
    from provision.workflows.fanout import RunOptions, make_executor
    from provision.workflows.targets import load_targets

    options = RunOptions(known_hosts=KnownHosts(ship_fleet.home / "known_hosts"))
    targets = load_targets(ship_fleet.inventory)
    executors = [make_executor(t, options) for t in targets]
    items = [(e.name, e.ssh_transport(), remote_docker.client_for(e, t.settings)) for t, e in zip(targets, executors)]
    yield items
    for _, _, client in items:
        client.close()
    for executor in executors:
        executor.close()


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
RESULTS: dict[str, dict[str, ShipResult]] = {}


def test_first_ship_reaches_both_hosts_in_parallel(ship_fleet, hosts, local, registry):
    build(local, "v1", BASE, TOP1)
    staged = stage(local, registry.port, f"{REPO}:v1", registry.auth_config)
    assert staged.repository == f"provision/{REPO}" and staged.tag == "v1"
    progress: list[tuple[str, int]] = []
    results = ship_to_hosts(hosts, [staged], registry.port, forks=2,
                            progress=lambda host, name, sent: progress.append((host, sent)))
    digest = hashlib.sha256(TOP1).hexdigest()
    for host, _, _ in hosts:
        (result,) = results[host]
        assert not result.skipped and result.image_id == staged.image_id
        assert result.bytes_sent >= len(BASE) + len(TOP1)  # random bytes do not compress
        assert digest in on_host(ship_fleet, host, f"{REPO}:v1", "sha256sum", "/data/top.bin")
        assert any(h == host and sent > 0 for h, sent in progress)
        RESULTS.setdefault("v1", {})[host] = result
    first, second = (results[h][0] for h, _, _ in hosts)
    assert max(first.started, second.started) < min(first.started + first.seconds, second.started + second.seconds)
    print(f"v1 ({human_bytes(staged.size)}): " + ", ".join(f"{h} {human_bytes(r.bytes_sent)} in {r.seconds:.2f}s"
                                                           for h, r in RESULTS["v1"].items()))


def test_changing_only_the_top_layer_sends_only_that_layer(ship_fleet, hosts, local, registry):
    build(local, "v2", BASE, TOP2)
    staged = stage(local, registry.port, f"{REPO}:v2", registry.auth_config)
    layer = last_layer_size(registry, staged.repository, staged.tag)
    results = ship_to_hosts(hosts, [staged], registry.port, forks=2)
    for host, _, _ in hosts:
        (result,) = results[host]
        print(f"v2 {host}: sent {result.bytes_sent} B for a changed layer of {layer} B "
              f"({result.bytes_sent / layer:.3f}x)")
        assert not result.skipped and result.bytes_sent <= 1.1 * layer
        assert hashlib.sha256(TOP2).hexdigest() in on_host(ship_fleet, host, f"{REPO}:v2", "sha256sum", "/data/top.bin")
        RESULTS.setdefault("v2", {})[host] = result


def test_unchanged_image_costs_nothing(ship_fleet, hosts, local, registry):
    staged = stage(local, registry.port, f"{REPO}:v2", registry.auth_config)
    for host, transport, client in hosts:
        result = ship(transport, client, staged, registry.port)
        print(f"v2 again {host}: sent {result.bytes_sent} B")
        assert result.skipped and result.bytes_sent < 0.01 * staged.size


def test_same_layers_new_config_sends_only_metadata(ship_fleet, hosts, local, registry):
    build(local, "v3", BASE, TOP2, label="two")  # a new image id whose layers every host already has
    staged = stage(local, registry.port, f"{REPO}:v3", registry.auth_config)
    for host, transport, client in hosts:
        result = ship(transport, client, staged, registry.port)
        print(f"v3 {host}: sent {result.bytes_sent} B of a {staged.size} B image")
        assert not result.skipped and result.bytes_sent < 0.01 * staged.size
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
