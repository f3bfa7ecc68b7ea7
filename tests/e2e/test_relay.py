"""Host-to-host image relay end to end (issue 12), on three fresh sandbox hosts (fleet `e2e-relay`).

Images go to the hosts as `provision deploy` sends them (fan_out, each host's engine checked, the
image step `fetch_image` with the deploy's relay): the first host gets the image from this machine
(local registry + reverse tunnel), the other two from it over the fleet network
(`ssh seed | docker load` with a temporary forced-command key). Bytes leaving this machine are
counted twice: at the shipping tunnels (image data) and on the fleet network's bridge interface
(everything this machine's network stack sends to the fleet's containers: image data, SSH, the
Docker API, the relay's keys; container-to-container traffic does not pass it).

PROVISION_RELAY_MB (default 24) sets the image's size (random data in 4 layers, so nothing compresses).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from provision.commands import relay as relay_cmd
from provision.deploy import local_registry as lr
from provision.deploy import relay as relays
from provision.deploy.images import SHIP, ImageSource
from provision.deploy.shipping import human_bytes, stage
from provision.report import HostResult
from provision.workflows.deploy_images import ImageJob, fetch_image, make_relay
from provision.workflows.engine import engine
from provision.workflows.fanout import fan_out
from provision_sandbox.names import network_name
from tests.e2e.conftest import cli, start_fleet, wait_for

pytestmark = pytest.mark.e2e

REPO = "provision-test/relay"
DOCKER = "/usr/bin/docker"
MB = int(os.environ.get("PROVISION_RELAY_MB", "24"))
LAYERS = 4


@pytest.fixture(scope="module")
def relay_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-relay", 3)
    try:
        proc = cli("docker", "install", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                   timeout=900)
        assert proc.returncode == 0, proc.stderr
        yield fleet
    finally:
        down()


@pytest.fixture(scope="module")
def options(relay_fleet):
    from provision.executor.known_hosts import KnownHosts
    from provision.workflows.fanout import RunOptions

    return RunOptions(forks=3, known_hosts=KnownHosts(relay_fleet.home / "known_hosts"))


@pytest.fixture(scope="module")
def targets(relay_fleet):
    from provision.workflows.targets import load_targets

    return load_targets(relay_fleet.inventory)


@pytest.fixture(scope="module")
def local():
    from provision_sandbox.base_image import ensure_busybox_image
    from provision_sandbox.engine import local_docker

    client = local_docker()
    ensure_busybox_image(client)
    yield client
    for tag in ("one", "three", "off", "fault"):
        subprocess.run([DOCKER, "rmi", "-f", f"{REPO}:{tag}"], check=False, capture_output=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with lr.LocalRegistry(tmp_path_factory.mktemp("relay-registry")) as running:
        yield running


def build(client, tag: str) -> dict[str, str]:
    """busybox + LAYERS layers of random data (MB in all); returns {file: sha256}."""
    files = {f"layer{i}.bin": os.urandom(MB * 1024 * 1024 // LAYERS) for i in range(LAYERS)}
    dockerfile = "FROM provision-sandbox/busybox:latest\n" + "".join(f"COPY {n} /data/{n}\n" for n in files)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile.encode()), *files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    client.images.build(fileobj=io.BytesIO(buffer.getvalue()), custom_context=True, tag=f"{REPO}:{tag}", rm=True)
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def bridge_tx(local, fleet) -> int:
    """Bytes this machine's network stack has sent onto the fleet network (its bridge interface)."""
    network = local.networks.get(network_name(fleet.name))
    return int(Path(f"/sys/class/net/br-{network.id[:12]}/statistics/tx_bytes").read_text())


def on_host(fleet, host: str, script: str) -> str:
    proc = subprocess.run([DOCKER, "exec", fleet.container(host), "sh", "-c", script],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def traces(fleet, host: str) -> dict:
    """What a relay could leave behind on a host."""
    return {
        "authorized_keys": on_host(fleet, host, "sha256sum ~/.ssh/authorized_keys").split()[0],
        "relay lines": on_host(fleet, host, relay_cmd.count_lines()).strip(),
        "key folders": on_host(fleet, host, "ls -d /dev/shm/provision-relay-* 2>/dev/null || true").strip(),
        "relay processes": on_host(fleet, host, relay_cmd.relay_processes()).strip(),
        "containers": on_host(fleet, host, "docker ps -aq").strip(),
    }


def deploy_image(local, fleet, options, targets, registry, tag: str, *, relay=True, seeds=None):
    """`provision deploy`'s image step for REPO:tag on `targets` in parallel; returns (outcomes, stats)."""
    staged = stage(local, registry.port, f"{REPO}:{tag}", registry.auth_config)
    source = ImageSource(staged.name, SHIP, local_id=staged.image_id, note="built here")
    lines: list[str] = []
    job = ImageJob(None, {"app": source}, {}, False, registry.port, {staged.name: staged}, lines.append)
    if relay:
        job.relay = make_relay(targets, options, lines.append)
        if seeds:
            job.relay.seeds.update(seeds)
    outcomes, lock = {}, threading.Lock()

    def work(target, executor) -> HostResult:
        outcome = fetch_image(job, "app", source, target, executor, engine(target, executor))
        with lock:
            outcomes[target.name] = outcome
        return HostResult(target.name)

    tx, started = bridge_tx(local, fleet), time.monotonic()
    report = fan_out("deploy", targets, work, options)
    stats = {"seconds": time.monotonic() - started, "bridge": bridge_tx(local, fleet) - tx,
             "tunnels": sum(o.shipped_bytes or 0 for o in outcomes.values()), "size": staged.size, "log": lines,
             "outcomes": outcomes}
    for name, result in report.hosts.items():
        assert name in outcomes, result
        assert outcomes[name].status == "changed" and outcomes[name].image_id == staged.image_id, outcomes[name]
    return outcomes, stats


def assert_arrived(fleet, hosts, tag: str, digests: dict[str, str]) -> None:
    for host in hosts:
        out = on_host(fleet, host, f"docker run --rm {REPO}:{tag} sha256sum " + " ".join(f"/data/{n}" for n in digests))
        for digest in digests.values():
            assert digest in out, (host, out)


def report(what: str, stats: dict) -> str:
    line = (f"{what}: {stats['seconds']:.1f} s, image {human_bytes(stats['size'])}, from this machine: "
            f"{human_bytes(stats['bridge'])} on the bridge, {human_bytes(stats['tunnels'])} through the tunnels; "
            + ", ".join(f"{n} {o.seconds:.1f} s " + (f"from {o.relayed_from}" if o.relayed_from else "from here")
                        for n, o in sorted(stats["outcomes"].items())))
    print(line)
    return line


def test_three_hosts_cost_this_machine_what_one_host_costs(relay_fleet, options, targets, local, registry):
    names = [t.name for t in targets]
    before = {h: traces(relay_fleet, h) for h in names}
    assert all(not v["relay lines"] or v["relay lines"] == "0" for v in before.values()), before

    one_digests = build(local, "one")
    one, one_stats = deploy_image(local, relay_fleet, options, targets[:1], registry, "one")
    assert one[names[0]].relayed_from is None and one[names[0]].shipped_bytes > 0

    three_digests = build(local, "three")  # new random data: no host has any of its layers
    three, three_stats = deploy_image(local, relay_fleet, options, targets, registry, "three")
    report("1 host", one_stats)
    report("3 hosts", three_stats)
    assert_arrived(relay_fleet, names[:1], "one", one_digests)
    assert_arrived(relay_fleet, names, "three", three_digests)
    relayed = {n: o.relayed_from for n, o in three.items()}
    first = [n for n, seed in relayed.items() if seed is None]
    assert len(first) == 1 and all(seed == first[0] for n, seed in relayed.items() if n not in first), relayed
    assert all("relayed from" in three[n].message for n in names if n not in first), three
    assert three_stats["tunnels"] <= 1.1 * one_stats["tunnels"], (one_stats, three_stats)
    assert three_stats["bridge"] <= 1.1 * one_stats["bridge"], (one_stats, three_stats)
    assert {h: traces(relay_fleet, h) for h in names} == before  # keys, folders, processes: all gone


def test_ship_between_hosts_false_ships_every_host_from_here(relay_fleet, options, targets, local, registry):
    off = [dataclasses.replace(t, hostvars={**t.hostvars, "ship_between_hosts": False}) for t in targets]
    digests = build(local, "off")
    outcomes, stats = deploy_image(local, relay_fleet, options, off, registry, "off")
    report("3 hosts, ship_between_hosts: false", stats)
    assert_arrived(relay_fleet, [t.name for t in targets], "off", digests)
    assert all(o.relayed_from is None and o.shipped_bytes >= MB * 1024 * 1024 for o in outcomes.values()), outcomes
    assert stats["tunnels"] >= 2.9 * MB * 1024 * 1024


def test_an_unreachable_seed_falls_back_to_this_machine(relay_fleet, options, targets, local, registry):
    names = [t.name for t in targets]
    before = {h: traces(relay_fleet, h) for h in names}
    digests = build(local, "fault")
    # every host but the first is a sound seed; the first (the one that gets the image from this machine,
    # when the others wait for it) is announced at an address the peers cannot reach
    bogus = {t.name: relays.Seed(t.name, f"{t.name}.unreachable.invalid", 22, "root") for t in targets}
    outcomes, stats = deploy_image(local, relay_fleet, options, targets, registry, "fault", seeds=bogus)
    report("3 hosts, seed unreachable", stats)
    assert_arrived(relay_fleet, names, "fault", digests)
    fell_back = [n for n, o in outcomes.items() if "host-to-host from" in o.message]
    assert len(fell_back) == 2, outcomes
    for name in fell_back:
        assert "failed" in outcomes[name].message and "shipped:" in outcomes[name].message, outcomes[name]
        assert outcomes[name].relayed_from is None and outcomes[name].shipped_bytes > 0
    assert {h: traces(relay_fleet, h) for h in names} == before


def test_a_docker_api_channel_the_host_closed_is_replaced(relay_fleet, options, targets):
    """A host that waits long for a seed, then loads the image (`ssh seed | docker load`), makes no Docker API
    call for minutes; its engine (20.10) closes an API connection after 5 idle minutes, its dial-stdio exits
    and sshd closes the pooled channel. The next call used to fail with ConnectionError('Connection
    aborted.', OSError('Socket is closed')) (bench/shipping.py, 10 hosts). Here the host's dial-stdio is
    ended at once (by its pid) instead of after 5 minutes: the next call opens a new channel."""
    from provision.workflows.fanout import make_executor

    target = targets[0]
    executor = make_executor(target, options)
    try:
        client = engine(target, executor)
        assert client.ping()

        def dial_stdio_pids() -> list[str]:
            lines = on_host(relay_fleet, target.name, "ps -eo pid=,args=").splitlines()
            return [line.split()[0] for line in lines if line.split()[1:] == ["docker", "system", "dial-stdio"]]

        pids = dial_stdio_pids()
        assert len(pids) == 1, pids  # the client's one pooled channel
        on_host(relay_fleet, target.name, f"kill {pids[0]}")
        pool = client.api._custom_adapter.pools.get("ssh")
        channel = next(c for c in list(pool.pool.queue) if c is not None).sock
        wait_for(lambda: channel.closed, timeout=30, what="sshd closing the channel of the ended dial-stdio")
        assert client.ping() and client.version()["ApiVersion"]
        assert len(dial_stdio_pids()) == 1 and dial_stdio_pids() != pids  # a new channel, still only one
    finally:
        executor.close()
