"""Day-2 commands (status, logs, exec, down, prune, df) end to end on the `e2e-ops` fleet (2 hosts).

`provision deploy` is not used: the objects it creates are made here directly on each host's engine
through the same SSH transport (remote_docker.client_for), labelled as deploy labels them. Each
host also gets objects provision does not manage, which down and prune must leave alone.
The tests run in file order and change the hosts step by step.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.e2e.conftest import cli, cli_json, start_fleet, wait_for

pytestmark = pytest.mark.e2e

IMAGE = "provision-sandbox/busybox:latest"
STACK = "shop"
# what each host serves: (service, replica) → how the container is made
LAYOUT = {"sbx1": [("web", 1), ("web", 2), ("db", 1)], "sbx2": [("web", 1)]}
HEALTH = {"test": ["CMD", "true"], "interval": 1_000_000_000, "retries": 3}


def labels(service: str, replica: int, image: str = "") -> dict:
    return {"io.provision.stack": STACK, "io.provision.service": service, "io.provision.replica": str(replica),
            "io.provision.spec-hash": "h2", "io.provision.image": image or f"shop-{service}:v2"}


def _ship_image(client) -> None:
    import docker

    from provision_sandbox.base_image import ensure_busybox_image

    local = docker.from_env()
    ensure_busybox_image(local, log=lambda m: None)
    data = b"".join(local.api.get_image(IMAGE))
    client.images.load(data)


def _populate(client, host: str) -> None:
    """What a deploy of stack `shop` leaves on a host, plus the operator's own objects."""
    _ship_image(client)
    net = f"{STACK}_default"
    client.networks.create(net, labels={"io.provision.stack": STACK})
    client.volumes.create(f"{STACK}_data", labels={"io.provision.stack": STACK})
    for service, replica in LAYOUT[host]:
        name = f"{STACK}-{service}-{replica}"
        if service == "web":
            command = ["sh", "-c", f"echo web says 1; sleep 0.2; echo web says 2 >&2; sleep 0.2; echo web says 3 {name}; exec sleep 1d"]
            extra = {"healthcheck": HEALTH, "volumes": {f"{STACK}_data": {"bind": "/data", "mode": "rw"}}}
            if replica == 1:
                extra["ports"] = {"8080/tcp": ("127.0.0.1", 18080)}
        else:
            command = ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done"]
            extra = {}
        client.containers.run(IMAGE, command, name=name, detach=True, labels=labels(service, replica),
                              network=net, **extra)
    if host == "sbx1":  # the version web-1 replaced, stopped and kept for rollback
        old = client.containers.create(IMAGE, ["sh", "-c", "echo old"], name=f"{STACK}-web-1.previous",
                                       labels=labels("web", 1, "shop-web:v1"), network=net)
        old.start()
        old.wait(timeout=30)
    # not provision's: must survive down and prune
    client.volumes.create("precious")
    client.volumes.create("scratch")  # unused: only prune --all removes it
    client.networks.create("mynet")
    client.containers.run(IMAGE, ["sleep", "1d"], name="bystander", detach=True, network="mynet",
                          volumes={"precious": {"bind": "/keep", "mode": "rw"}}, labels={"team": "ops"})
    client.containers.run(IMAGE, ["true"], name="leftover", labels={"team": "ops"})  # stopped: plain prune removes it


def _wait_healthy(client, names: list[str], timeout: float = 30) -> None:
    def healthy() -> bool:
        states = [(client.containers.get(n).attrs["State"].get("Health") or {}).get("Status") for n in names]
        return all(s == "healthy" for s in states)

    wait_for(healthy, timeout, f"containers {names} to be healthy", interval=0.5)


class Hosts:
    """A docker client per fleet host, through the product's SSH transport."""

    def __init__(self, fleet) -> None:
        from provision.executor.known_hosts import KnownHosts
        from provision.workflows.fanout import RunOptions, make_executor
        from provision.workflows.targets import load_targets

        options = RunOptions(known_hosts=KnownHosts(fleet.home / "known_hosts"))
        self.targets = {t.name: t for t in load_targets(fleet.inventory)}
        self.executors = {name: make_executor(t, options) for name, t in self.targets.items()}
        self.clients: dict = {}

    def client(self, host: str):
        """One client per host: each pooled HTTP connection is an SSH channel, and sshd allows 10 per connection."""
        from provision.deploy.remote_docker import client_for

        if host not in self.clients:
            self.clients[host] = client_for(self.executors[host], self.targets[host].settings)
        return self.clients[host]

    def names(self, host: str, **kwargs) -> set[str]:
        return {c.name for c in self.client(host).containers.list(all=True, **kwargs)}

    def volumes(self, host: str) -> set[str]:
        return {v.name for v in self.client(host).volumes.list()}

    def networks(self, host: str) -> set[str]:
        return {n.name for n in self.client(host).networks.list()}

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        for executor in self.executors.values():
            executor.close()


@pytest.fixture(scope="module")
def ops_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-ops", 2)
    try:
        install = cli("docker", "install", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                      timeout=900)
        assert install.returncode == 0, install.stderr
        hosts = Hosts(fleet)
        for host in LAYOUT:
            client = hosts.client(host)
            _populate(client, host)
            _wait_healthy(client, [f"{STACK}-web-{r}" for s, r in LAYOUT[host] if s == "web"])
        fleet.hosts = hosts
        yield fleet
        hosts.close()
    finally:
        down()


def args(fleet, *extra: str) -> list[str]:
    return [*extra, "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts")]


def test_status_shows_the_stack_and_only_the_stack(ops_fleet):
    proc, doc = cli_json("status", *args(ops_fleet))
    assert proc.returncode == 0, proc.stderr
    rows = {r["container"]: r for r in doc["hosts"]["sbx1"]["services"]}
    assert set(rows) == {"shop-web-1", "shop-web-2", "shop-db-1", "shop-web-1.previous"}
    web = rows["shop-web-1"]
    assert (web["stack"], web["service"], web["replica"], web["image"]) == ("shop", "web", 1, "shop-web:v2")
    assert (web["state"], web["health"], web["previous"]) == ("running", "healthy", False)
    assert web["ports"] == "127.0.0.1:18080->8080/tcp" and web["started"].endswith("Z") and len(web["id"]) == 12
    old = rows["shop-web-1.previous"]
    assert (old["previous"], old["state"], old["image"]) == (True, "exited", "shop-web:v1")
    assert rows["shop-db-1"]["health"] == "-"
    assert [r["container"] for r in doc["hosts"]["sbx2"]["services"]] == ["shop-web-1"]
    human = cli("status", *args(ops_fleet, "-l", "sbx1"), env={"COLUMNS": "200"})
    assert human.returncode == 0, human.stderr
    for word in ("sbx1", "web", "shop-web:v2", "healthy", "127.0.0.1:18080→8080", "exited (previous)"):
        assert word in human.stdout, word
    assert "bystander" not in human.stdout


def test_logs_tail_from_every_host(ops_fleet):
    proc = cli("logs", "web", "--tail", "2", *args(ops_fleet))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if " | " in line]
    assert "sbx1 | shop-web-1 | web says 3 shop-web-1" in lines
    assert "sbx1 | shop-web-2 | web says 3 shop-web-2" in lines
    assert "sbx2 | shop-web-1 | web says 3 shop-web-1" in lines
    assert sum("| web says 1" in line for line in lines) == 0  # only the last 2 lines of each
    assert sum("| web says 2" in line for line in lines) == 3  # stderr included
    proc, doc = cli_json("logs", "shop/db", "--tail", "1", *args(ops_fleet))
    assert proc.returncode == 0, proc.stderr
    assert doc["hosts"]["sbx2"]["status"] == "skipped"
    [entry] = doc["hosts"]["sbx1"]["logs"]
    assert entry["container"] == "shop-db-1" and entry["line"].startswith("tick ")


def test_logs_follow_until_ctrl_c(ops_fleet):
    proc = subprocess.Popen([sys.executable, "-m", "provision", "logs", "db", "-f", "--tail", "0", *args(ops_fleet)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen: list[str] = []
        while len(seen) < 3:  # progress lines (sbx2 skipped) come on stdout too
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if " | " in line:
                seen.append(line)
        assert all(line.startswith("sbx1 | shop-db-1 | tick ") for line in seen), seen
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()


def exec_json(fleet, *command: str):
    """cli_json puts --json last, which after `--` would be part of the command."""
    proc = cli("exec", *args(fleet, "--json"), *command)
    return proc, json.loads(proc.stdout)


def test_exec_output_and_exit_codes(ops_fleet):
    proc, doc = exec_json(ops_fleet, "web", "--", "sh", "-c", "echo hi from $(hostname); ls /data")
    assert proc.returncode == 0, proc.stderr
    for host in ("sbx1", "sbx2"):
        result = doc["hosts"][host]
        assert result["exit_code"] == 0 and result["output"].startswith("hi from ") and result["container"] == "shop-web-1"
    proc, doc = exec_json(ops_fleet, "db", "--", "sh", "-c", "echo failing; exit 3")
    assert proc.returncode == 2
    assert doc["hosts"]["sbx1"]["status"] == "failed" and doc["hosts"]["sbx1"]["exit_code"] == 3
    assert doc["hosts"]["sbx1"]["output"] == "failing\n"
    assert doc["hosts"]["sbx2"]["status"] == "skipped"
    proc = cli("exec", *args(ops_fleet, "--replica", "2", "-l", "sbx1"), "web", "--", "hostname")
    assert proc.returncode == 0 and "sbx1 | shop-web-2 | exit 0 >>" in proc.stdout


def test_df_reports_usage(ops_fleet):
    proc, doc = cli_json("df", *args(ops_fleet))
    assert proc.returncode == 0, proc.stderr
    usage = doc["hosts"]["sbx1"]["df"]
    assert set(usage) == {"images", "containers", "volumes", "build_cache"}
    assert usage["images"]["count"] >= 1 and usage["images"]["size"] > 0
    assert usage["containers"]["count"] == 6 and usage["containers"]["active"] == 4
    assert usage["volumes"]["count"] == 3 and usage["volumes"]["active"] == 2


def test_prune_spares_provision_objects(ops_fleet):
    hosts = ops_fleet.hosts
    proc = cli("prune", "--all", "--json", *args(ops_fleet))  # never prompts under --json
    assert proc.returncode == 4 and "--yes" in proc.stderr and proc.stdout == ""
    assert "leftover" in hosts.names("sbx1")
    proc, doc = cli_json("prune", *args(ops_fleet))
    assert proc.returncode == 0, proc.stderr
    for host in ("sbx1", "sbx2"):
        assert doc["hosts"][host]["deleted"]["containers"], doc["hosts"][host]
        assert "volumes" not in doc["hosts"][host]["deleted"]
        names = hosts.names(host)
        assert "leftover" not in names and "bystander" in names
        assert {"shop_data", "precious", "scratch"} <= hosts.volumes(host)
    assert "shop-web-1.previous" in hosts.names("sbx1")  # kept for rollback


def test_down_keeps_volumes_and_foreign_objects(ops_fleet):
    hosts = ops_fleet.hosts
    proc, doc = cli_json("down", "--check", "--stack", STACK, *args(ops_fleet, "-l", "sbx1"))
    assert proc.returncode == 0, proc.stderr
    assert "container shop-web-1.previous" in doc["hosts"]["sbx1"]["would_remove"]
    assert "shop-web-1" in hosts.names("sbx1")
    proc, doc = cli_json("down", "--stack", STACK, *args(ops_fleet, "-l", "sbx1"))
    assert proc.returncode == 0, proc.stderr
    removed = doc["hosts"]["sbx1"]["removed"]
    assert removed == ["container shop-db-1", "container shop-web-1", "container shop-web-1.previous",
                       "container shop-web-2", "network shop_default"]
    assert hosts.names("sbx1") == {"bystander"}
    assert {"shop_data", "precious", "scratch"} <= hosts.volumes("sbx1")
    assert "shop_default" not in hosts.networks("sbx1") and "mynet" in hosts.networks("sbx1")
    assert "shop-web-1" in hosts.names("sbx2")  # --limit respected


def test_prune_all_keeps_labelled_volumes(ops_fleet):
    hosts = ops_fleet.hosts
    proc, doc = cli_json("prune", "--all", "--yes", *args(ops_fleet, "-l", "sbx1"))
    assert proc.returncode == 0, proc.stderr
    assert "scratch" in doc["hosts"]["sbx1"]["deleted"]["volumes"]
    volumes = hosts.volumes("sbx1")
    assert "shop_data" in volumes  # unused now, but provision's
    assert "precious" in volumes and "scratch" not in volumes
    assert hosts.names("sbx1") == {"bystander"}


def test_down_volumes_removes_them_everywhere(ops_fleet):
    hosts = ops_fleet.hosts
    proc, doc = cli_json("down", "--volumes", *args(ops_fleet))
    assert proc.returncode == 0, proc.stderr
    assert doc["hosts"]["sbx1"]["removed"] == ["volume shop_data"]
    assert doc["hosts"]["sbx2"]["removed"][-1] == "volume shop_data"
    for host in ("sbx1", "sbx2"):
        assert hosts.names(host) == {"bystander"}
        assert "shop_data" not in hosts.volumes(host) and "precious" in hosts.volumes(host)
    proc, doc = cli_json("status", *args(ops_fleet))
    assert proc.returncode == 0 and doc["hosts"]["sbx1"]["services"] == []
