"""Day-2 operations (provision.deploy.ops) on a fake docker client: status rows, service resolution,
down's selection, prune's filters, df's arithmetic, log line splitting; plus the workflows' results."""

from __future__ import annotations

import copy
import threading
from types import SimpleNamespace

import pytest

from provision.deploy import ops
from provision.errors import InputError
from provision.workflows.targets import Target

# What `containers.list()` holds for a serving container (captured from Docker 20.10, trimmed).
CAPTURED = {
    "Id": "5bc6caf57fe30fa6199e634f532189f640d32f85a24ca88139bc04e2f39d663d",
    "Name": "/ml-web-1",
    "State": {
        "Status": "running", "Running": True, "Paused": False, "Restarting": False, "OOMKilled": False,
        "Dead": False, "Pid": 25262, "ExitCode": 0, "Error": "",
        "StartedAt": "2026-11-22T06:37:27.990330432Z", "FinishedAt": "0001-01-01T00:00:00Z",
        "Health": {"Status": "healthy", "FailingStreak": 0,
                   "Log": [{"Start": "2026-11-22T06:37:28.990903447Z", "End": "2026-11-22T06:37:29.029671721Z",
                            "ExitCode": 0, "Output": ""}]},
    },
    "Config": {"Image": "provision-sandbox/busybox:latest",
               "Labels": {"io.provision.image": "myweb:v1", "io.provision.replica": "1",
                          "io.provision.service": "web", "io.provision.spec-hash": "abc",
                          "io.provision.stack": "ml"}},
    "NetworkSettings": {"Ports": {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000"}]}},
}


def container_attrs(name: str, stack: str | None, service: str = "web", replica: int = 1, status: str = "running",
                    health: str | None = None, ports: dict | None = None) -> dict:
    attrs = copy.deepcopy(CAPTURED)
    attrs["Name"] = "/" + name
    attrs["Id"] = (name.encode().hex() * 8)[:64]
    labels = {"io.provision.stack": stack, "io.provision.service": service, "io.provision.replica": str(replica),
              "io.provision.spec-hash": "h", "io.provision.image": f"{service}:v1"} if stack else {"team": "x"}
    attrs["Config"]["Labels"] = labels
    attrs["State"]["Status"] = status
    if health is None:
        attrs["State"].pop("Health")
    else:
        attrs["State"]["Health"]["Status"] = health
    attrs["NetworkSettings"]["Ports"] = ports or {}
    return attrs


def _matches(labels: dict, wanted: list[str]) -> bool:
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


class FakeContainer:
    def __init__(self, attrs: dict, client: FakeClient) -> None:
        self.attrs = attrs
        self.client = client

    name = property(lambda self: self.attrs["Name"].lstrip("/"))
    labels = property(lambda self: self.attrs["Config"]["Labels"])
    status = property(lambda self: self.attrs["State"]["Status"])

    def remove(self, force=False):
        self.client.removed.append(f"container {self.name}")
        self.client.containers_.remove(self)

    def logs(self, stdout=True, stderr=True, tail="all", stream=False, follow=False):
        return b"one\ntwo\nthree\n"

    def exec_run(self, cmd, **kwargs):
        return SimpleNamespace(exit_code=3, output=b"out\n")


class FakeObject:
    def __init__(self, kind: str, name: str, labels: dict, client: FakeClient, fail: bool = False) -> None:
        self.kind, self.name, self.attrs, self.client, self.fail = kind, name, {"Name": name, "Labels": labels}, client, fail

    def remove(self, force=False):
        if self.fail:
            raise RuntimeError("in use")
        self.client.removed.append(f"{self.kind} {self.name}")


class Collection:
    def __init__(self, items_of, kind: str, client) -> None:
        self.items_of, self.kind, self.client = items_of, kind, client

    def list(self, all=False, filters=None):
        wanted = (filters or {}).get("label", [])
        wanted = [wanted] if isinstance(wanted, str) else wanted
        return [o for o in self.items_of() if _matches(self._labels(o), wanted)]

    @staticmethod
    def _labels(o):
        return (o.labels if isinstance(o, FakeContainer) else o.attrs.get("Labels")) or {}

    def prune(self, filters=None):
        self.client.prune_calls.append((self.kind, filters))
        return {"containers": {"ContainersDeleted": ["a" * 64], "SpaceReclaimed": 10},
                "networks": {"NetworksDeleted": ["junk"]},
                "volumes": {"VolumesDeleted": ["anon"], "SpaceReclaimed": 100},
                "images": {"ImagesDeleted": [{"Untagged": "old:1"}, {"Deleted": "sha256:1"}], "SpaceReclaimed": 1000},
                }[self.kind]


class FakeClient:
    def __init__(self, containers: list[dict], networks=(), volumes=()) -> None:
        self.removed: list[str] = []
        self.prune_calls: list = []
        self.containers_ = [FakeContainer(a, self) for a in containers]
        self.networks_ = [FakeObject("network", n, l, self, fail=f) for n, l, f in networks]
        self.volumes_ = [FakeObject("volume", n, l, self) for n, l in volumes]
        self.containers = Collection(lambda: list(self.containers_), "containers", self)
        self.networks = Collection(lambda: self.networks_, "networks", self)
        self.volumes = Collection(lambda: self.volumes_, "volumes", self)
        self.images = Collection(list, "images", self)
        self.api = SimpleNamespace(prune_builds=self._prune_builds)

    def _prune_builds(self, **kwargs):
        self.prune_calls.append(("build", kwargs))
        return {"CachesDeleted": ["c1"], "SpaceReclaimed": 5}


def two_stacks() -> FakeClient:
    return FakeClient([
        container_attrs("ml-web-2", "ml", replica=2),
        container_attrs("ml-web-1", "ml"),
        container_attrs("ml-web-1.previous", "ml", status="exited"),
        container_attrs("shop-web-1", "shop"),
        container_attrs("shop-db-1", "shop", service="db"),
        container_attrs("mine", None),
    ], networks=[("ml_default", {"io.provision.stack": "ml"}, False), ("bridge", {}, False)],
        volumes=[("ml_data", {"io.provision.stack": "ml"}), ("precious", {})])


# -- status rows ----------------------------------------------------------------------------
def test_row_from_captured_attrs():
    row = ops.status_row(CAPTURED)
    assert row == {"stack": "ml", "service": "web", "replica": 1, "container": "ml-web-1", "id": "5bc6caf57fe3",
                   "image": "myweb:v1", "state": "running", "health": "healthy",
                   "ports": "127.0.0.1:8000->8000/tcp", "started": "2026-11-22T06:37:27Z",
                   "previous": False, "role": "serving"}


def test_row_of_a_previous_container_without_healthcheck():
    attrs = container_attrs("ml-web-1.previous", "ml", status="created")
    attrs["State"]["StartedAt"] = "0001-01-01T00:00:00Z"
    row = ops.status_row(attrs)
    assert (row["previous"], row["role"], row["health"], row["started"], row["ports"]) == (True, "previous", "-", "-", "")


def test_ports_like_docker_ps():
    ports = {"9000/tcp": None, "8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"}, {"HostIp": "::", "HostPort": "8000"}],
             "53/udp": [{"HostIp": "", "HostPort": "5353"}]}
    assert ops.format_ports(ports) == "0.0.0.0:5353->53/udp, 0.0.0.0:8000->8000/tcp, :::8000->8000/tcp, 9000/tcp"


def test_iso_time():
    assert ops.iso_time("2024-05-01T12:00:03.123456789Z") == "2024-05-01T12:00:03Z"
    assert ops.iso_time("2024-05-01T12:00:03.5+02:00") == "2024-05-01T12:00:03+02:00"
    assert ops.iso_time(None) == "-"


def test_status_rows_sorted_and_unlabelled_left_out():
    rows = ops.status_rows(two_stacks())
    assert [r["container"] for r in rows] == ["ml-web-1", "ml-web-1.previous", "ml-web-2", "shop-db-1", "shop-web-1"]
    assert [r["container"] for r in ops.status_rows(two_stacks(), "shop")] == ["shop-db-1", "shop-web-1"]


def test_managed_containers_leave_previous_out_unless_asked():
    client = two_stacks()
    assert [c.name for c in ops.managed_containers(client, "ml", "web")] == ["ml-web-1", "ml-web-2"]
    assert len(ops.managed_containers(client, "ml", "web", include_previous=True)) == 3


# -- service resolution ---------------------------------------------------------------------
def test_resolve_service():
    client = two_stacks()
    assert ops.resolve_service(client, "db") == ("shop", "db")
    assert ops.resolve_service(client, "ml/web") == ("ml", "web")
    assert ops.resolve_service(client, "nope") is None
    assert ops.resolve_service(client, "ml/db") is None
    with pytest.raises(InputError) as exc:
        ops.resolve_service(client, "web")
    assert "ml" in str(exc.value) and "shop" in str(exc.value) and "ml/web" in str(exc.value)
    with pytest.raises(InputError):
        ops.resolve_service(client, "ml/")


def test_service_containers_by_replica():
    client = two_stacks()
    assert [c.name for c in ops.service_containers(client, "ml/web")] == ["ml-web-1", "ml-web-2"]
    assert [c.name for c in ops.service_containers(client, "ml/web", replica=2)] == ["ml-web-2"]
    assert ops.service_containers(client, "ghost") == []


# -- logs and exec --------------------------------------------------------------------------
def test_split_lines_across_chunks():
    assert list(ops.split_lines([b"a\nb", b"c\r\n", b"", b"tail"])) == ["a", "bc", "tail"]


def test_logs_without_follow():
    client = two_stacks()
    got = list(ops.logs(client, ops.service_containers(client, "ml/web"), tail=2))
    assert got[:3] == [("ml-web-1", "one"), ("ml-web-1", "two"), ("ml-web-1", "three")] and len(got) == 6


def test_logs_follow_stops_when_asked():
    class Endless:
        name = "c"

        def __init__(self):
            self.closed = threading.Event()

        def logs(self, **kwargs):
            assert kwargs["follow"] and kwargs["stream"]

            closed = self.closed

            class Stream:  # like docker's CancellableStream: close() ends the blocked read
                def __iter__(self):
                    yield b"first\n"
                    closed.wait(5)

                def close(self):
                    closed.set()

            return Stream()

    container, stop = Endless(), threading.Event()
    lines = ops.logs(None, [container], follow=True, tail=0, stop=stop)
    assert next(lines) == ("c", "first")
    stop.set()
    assert list(lines) == []
    assert container.closed.is_set()


def test_exec_in():
    client = two_stacks()
    assert ops.exec_in(client, client.containers_[0], ["sh", "-c", "exit 3"]) == (3, "out\n")


# -- down -----------------------------------------------------------------------------------
def test_down_keeps_volumes_and_unlabelled_objects():
    client = two_stacks()
    removed = ops.down(client, "ml", volumes=False)
    assert removed == ["container ml-web-1", "container ml-web-1.previous", "container ml-web-2", "network ml_default"]
    assert {c.name for c in client.containers_} == {"shop-web-1", "shop-db-1", "mine"}


def test_down_with_volumes_and_dry_run():
    client = two_stacks()
    assert ops.down(client, "ml", volumes=True, dry_run=True)[-1] == "volume ml_data"
    assert client.removed == []
    assert ops.down(client, "ml", volumes=True)[-1] == "volume ml_data"
    assert "volume precious" not in client.removed and "container mine" not in client.removed


def test_down_every_stack_and_best_effort():
    client = two_stacks()
    client.networks_[0].fail = True
    with pytest.raises(ops.OpsError) as exc:
        ops.down(client, None, volumes=False)
    assert "network ml_default: in use" in exc.value.message
    assert len(exc.value.done) == 5 and [c.name for c in client.containers_] == ["mine"]


# -- prune and df ---------------------------------------------------------------------------
def test_prune_filters():
    plain = ops.prune_filters(False)
    assert plain == {"containers": {"label!": ["io.provision.stack"]}, "images": {"dangling": ["true"]},
                     "networks": {"label!": ["io.provision.stack"]}}
    full = ops.prune_filters(True)
    assert full["images"] == {"dangling": ["false"]} and full["volumes"] == {"label!": ["io.provision.stack"]}


def test_prune_calls_and_report():
    client = two_stacks()
    result = ops.prune(client, all_images=False)
    kinds = [k for k, _ in client.prune_calls]
    assert kinds == ["containers", "networks", "images", "build"] and "volumes" not in result["deleted"]
    assert result["reclaimed"] == {"containers": 10, "images": 1000, "build_cache": 5, "total": 1015}
    assert result["deleted"]["images"] == ["old:1", "sha256:1"]
    client = two_stacks()
    result = ops.prune(client, all_images=True)
    assert ("build", {"all": True}) in client.prune_calls
    assert ("volumes", {"label!": ["io.provision.stack"]}) in client.prune_calls
    assert result["reclaimed"]["volumes"] == 100 and result["reclaimed"]["total"] == 1115


def test_df_summary():
    data = {"LayersSize": 1000,
            "Images": [{"Containers": 1, "Size": 600, "SharedSize": 100}, {"Containers": 0, "Size": 400, "SharedSize": 0}],
            "Containers": [{"State": "running", "SizeRw": 5}, {"State": "exited", "SizeRw": 7}],
            "Volumes": [{"UsageData": {"Size": 50, "RefCount": 1}}, {"UsageData": {"Size": 20, "RefCount": 0}},
                        {"UsageData": {"Size": -1, "RefCount": -1}}],
            "BuildCache": [{"Size": 30, "InUse": False, "Shared": False}, {"Size": 9, "InUse": True}]}
    assert ops.summarize_df(data) == {
        "images": {"count": 2, "active": 1, "size": 1000, "reclaimable": 500},
        "containers": {"count": 2, "active": 1, "size": 12, "reclaimable": 7},
        "volumes": {"count": 3, "active": 1, "size": 70, "reclaimable": 20},
        "build_cache": {"count": 2, "active": 1, "size": 39, "reclaimable": 30},
    }
    assert ops.summarize_df({}) ["images"] == {"count": 0, "active": 0, "size": 0, "reclaimable": 0}


def test_human_size():
    assert [ops.human_size(n) for n in (0, 999, 1500, 23_400_000)] == ["0B", "999B", "1.5kB", "23.4MB"]


# -- workflows ------------------------------------------------------------------------------
@pytest.fixture
def fake_docker(monkeypatch):
    from provision.deploy import remote_docker

    client = two_stacks()
    client.close = lambda: None
    monkeypatch.setattr(remote_docker, "client_for", lambda executor, settings: client)
    return client


TARGET = Target("sbx1", None, {})  # type: ignore[arg-type]


def test_exec_work_fails_the_host_on_non_zero_exit(fake_docker):
    from provision.workflows.ops import exec_work

    result = exec_work("db", ["false"])(TARGET, None)
    assert result.status == "failed" and result.extra == {"container": "shop-db-1", "exit_code": 3, "output": "out\n"}


def test_ambiguous_service_fails_the_host_and_missing_one_skips_it(fake_docker):
    from provision.workflows.ops import exec_work, logs_work

    result = exec_work("web", ["true"])(TARGET, None)
    assert result.status == "failed" and "several stacks" in result.message
    assert logs_work("ghost", tail=5)(TARGET, None).status == "skipped"


def test_status_and_down_work(fake_docker):
    from provision.workflows.ops import down_work, status_work

    status = status_work()(TARGET, None)
    assert status.status == "ok" and len(status.extra["services"]) == 5
    assert status.steps[0].message == "4/4 container(s) running"
    check = down_work("ml", False, check=True)(TARGET, None)
    assert check.extra["removed"] == [] and len(check.extra["would_remove"]) == 4 and fake_docker.removed == []
    from provision.executor.fake import RecordingExecutor

    executor = RecordingExecutor("sbx1")
    down = down_work("ml", False)(TARGET, executor)
    assert down.status == "changed" and len(down.extra["removed"]) == 4
    # under the host's deploy lock, with an audit line, the lock released
    assert "mkdir /var/lib/provision/deploy.lock" in executor.commands[0][0]
    assert '"action": "down"' in executor.commands[1][0] and "audit.log" in executor.commands[1][0]
    assert executor.commands[2][0].startswith("if grep -qF ")


def test_down_is_refused_while_a_deploy_holds_the_lock(fake_docker):
    from provision.errors import HostError
    from provision.executor.fake import RecordingExecutor
    from provision.workflows.ops import down_work

    executor = RecordingExecutor("sbx1")
    executor.respond("deploy.lock", stdout='{"by": "ana@laptop", "since": "2026-11-22T10:00:00+0000"}', exit_code=17)
    with pytest.raises(HostError, match="ana@laptop"):
        down_work("ml", False)(TARGET, executor)
    assert fake_docker.removed == []
