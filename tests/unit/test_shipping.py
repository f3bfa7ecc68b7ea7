"""Pure parts of registry-less image shipping: names, sizes, the registry config, the tunnel's pumping
(a fake transport and a loopback echo server) and the decisions `ship` makes without pulling."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import yaml

from provision.deploy import local_registry as lr
from provision.deploy import shipping as sh
from provision.errors import EnvironmentProblem, ProvisionError

ID = "sha256:" + "ab12cd34ef56" + "0" * 52


@pytest.mark.parametrize("name, staged, on_host", [
    ("nginx", ("provision/nginx", "latest"), ("nginx", "latest")),
    ("myapp:1.2", ("provision/myapp", "1.2"), ("myapp", "1.2")),
    ("team/app:v3", ("provision/team/app", "v3"), ("team/app", "v3")),
    ("localhost:5000/app", ("provision/localhost-5000/app", "latest"), ("localhost:5000/app", "latest")),
    ("registry.example.com:5000/team/app:2.0", ("provision/registry.example.com-5000/team/app", "2.0"),
     ("registry.example.com:5000/team/app", "2.0")),
    ("ghcr.io/org/tool@sha256:" + "f" * 64, ("provision/ghcr.io/org/tool", "ab12cd34ef56"),
     ("ghcr.io/org/tool", "ab12cd34ef56")),
    ("app:1.0@sha256:" + "f" * 64, ("provision/app", "1.0"), ("app", "1.0")),
])
def test_staging_and_host_references(name, staged, on_host):
    assert sh.staging_reference(name, ID) == staged
    assert sh.host_reference(name, ID) == on_host


def test_short_id():
    assert sh.short_id(ID) == "ab12cd34ef56"
    assert sh.short_id("ab12cd34ef5699") == "ab12cd34ef56"


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
                                     (3 * 1024 ** 2, "3.0 MiB"), (5 * 1024 ** 3 // 2, "2.5 GiB"),
                                     (2048 * 1024 ** 4, "2048.0 TiB")])
def test_human_bytes(n, text):
    assert sh.human_bytes(n) == text


def test_registry_config_is_minimal_and_loopback_only(tmp_path):
    doc = yaml.safe_load(lr.registry_config(tmp_path / "storage", 41234))
    assert doc["http"]["addr"] == "127.0.0.1:41234"
    assert doc["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "storage")
    assert doc["storage"]["delete"] == {"enabled": True}
    assert "auth" not in doc  # the packaged config's broken htpasswd auth is not carried over


def test_registry_config_with_htpasswd_demands_the_login(tmp_path):
    doc = yaml.safe_load(lr.registry_config(tmp_path / "storage", 41234, htpasswd=tmp_path / "htpasswd"))
    assert doc["auth"] == {"htpasswd": {"realm": "provision", "path": str(tmp_path / "htpasswd")}}
    assert doc["http"]["addr"] == "127.0.0.1:41234"


def test_credentials_are_random_hidden_and_bcrypt_hashed():
    import base64

    import bcrypt

    one, two = lr.Credentials.random(), lr.Credentials.random()
    assert one.password != two.password and len(one.password) == 43 and one.username == "provision"
    assert one.password not in repr(one) and one.password not in str(one)
    user, hashed = one.htpasswd().rstrip(b"\n").split(b":", 1)
    assert user == b"provision" and hashed.startswith(b"$2") and one.password.encode() not in hashed
    assert bcrypt.checkpw(one.password.encode(), hashed) and not bcrypt.checkpw(two.password.encode(), hashed)
    assert one.auth_config == {"username": "provision", "password": one.password}
    assert base64.b64decode(one.header().removeprefix("Basic ")).decode() == f"provision:{one.password}"
    staged = sh.StagedImage("a:1", ID, 1, "provision/a", "1", one.auth_config)
    assert one.password not in repr(staged)


def test_private_storage_is_created_private_and_tightened_when_loose(tmp_path):
    import os
    import stat

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    old = os.umask(0)
    try:
        fresh = lr.private_dir(tmp_path / "a" / "registry")
        lr.write_private(fresh / "config.yml", b"x")
    finally:
        os.umask(old)
    assert mode(fresh) == 0o700 and mode(fresh / "config.yml") == 0o600
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "htpasswd").write_text("old")
    os.chmod(loose, 0o777)
    os.chmod(loose / "htpasswd", 0o666)
    lr.private_dir(loose)
    lr.write_private(loose / "htpasswd", b"new")
    assert mode(loose) == 0o700 and mode(loose / "htpasswd") == 0o600 and (loose / "htpasswd").read_text() == "new"


DAY = 24 * 3600.0


def test_keep_policy_keeps_the_last_two_deploys_per_repository_within_30_days():
    now = 100 * DAY
    index = {"provision/app": {"1": now - 3 * DAY, "2": now - 2 * DAY, "3": now},
             "provision/db": {"old": now - 31 * DAY},
             "provision/web": {"latest": now - DAY}}
    assert lr.keep_policy(index, now) == {("provision/app", "3"), ("provision/app", "2"), ("provision/web", "latest")}
    assert lr.keep_policy(index, now, keep=1) == {("provision/app", "3"), ("provision/web", "latest")}


class FakeRegistryAPI:
    """The registry's tags and manifests (tag → digest); records deletions."""

    tags_by_repo: dict = {}
    deleted: list = []

    def __init__(self, port, credentials) -> None:
        pass

    def repositories(self):
        return list(self.tags_by_repo)

    def tags(self, repository):
        return list(self.tags_by_repo[repository])

    def digest(self, repository, tag):
        return self.tags_by_repo[repository][tag]

    def delete(self, repository, digest):
        self.deleted.append((repository, digest))


def test_collection_deletes_what_the_policy_drops_but_never_a_kept_manifest(tmp_path, monkeypatch):
    import json

    now = 100 * DAY
    registry = lr.LocalRegistry(tmp_path / "reg", clock=lambda: now)
    registry.how, registry.port = "binary", 5000
    lr.private_dir(registry.state_dir)
    (registry.state_dir / "deploys.json").write_text(json.dumps(
        {"provision/app": {"1": now - 3 * DAY, "2": now - 2 * DAY, "3": now}}))
    monkeypatch.setattr(FakeRegistryAPI, "tags_by_repo", {
        "provision/app": {"1": "sha256:d1", "2": "sha256:d2", "3": "sha256:d3", "again-3": "sha256:d3"},
        "provision/gone": {"latest": "sha256:g"}})  # pushed before any record: nothing keeps it
    monkeypatch.setattr(FakeRegistryAPI, "deleted", [])
    monkeypatch.setattr(lr, "RegistryAPI", FakeRegistryAPI)
    dropped = registry._delete_dropped()
    assert dropped == ["provision/app:1", "provision/gone:latest"]  # again-3 shares 3's manifest: kept
    assert FakeRegistryAPI.deleted == [("provision/app", "sha256:d1"), ("provision/gone", "sha256:g")]
    assert json.loads((registry.state_dir / "deploys.json").read_text()) == {
        "provision/app": {"2": now - 2 * DAY, "3": now}}


def test_an_interrupted_or_aborted_run_stops_without_collecting(tmp_path, monkeypatch):
    from provision.interrupts import INTERRUPT

    calls = []
    registry = lr.LocalRegistry(tmp_path / "reg")
    monkeypatch.setattr(registry, "stop", lambda collect=False: calls.append(collect))
    registry.__exit__(None, None, None)
    registry.__exit__(ProvisionError, ProvisionError("a host failed"), None)
    registry.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
    monkeypatch.setattr(type(INTERRUPT), "requested", property(lambda self: True))
    registry.__exit__(None, None, None)
    assert calls == [True, True, False, False]


class FakePushAPI:
    def __init__(self) -> None:
        self.calls = []

    def push(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        self.calls.append(("push", repository, tag, auth_config))
        return iter([{"status": "Pushed"}])

    def remove_image(self, reference, noprune=False):
        self.calls.append(("untag", reference))


class FakeLocal:
    def __init__(self) -> None:
        self.api = FakePushAPI()
        outer = self

        class Image:
            id = ID
            attrs = {"Size": 10}

            @staticmethod
            def tag(repository, tag):
                outer.api.calls.append(("tag", repository, tag))

        class Images:
            @staticmethod
            def get(name):
                return Image

        self.images = Images


def test_stage_pushes_with_the_registry_login_and_ship_pulls_with_it(monkeypatch):
    auth = {"username": "provision", "password": "p" * 43}
    local = FakeLocal()
    staged = sh.stage(local, 5000, "myapp:2", auth)
    assert ("push", "127.0.0.1:5000/provision/myapp", "2", auth) in local.api.calls and staged.auth == auth
    pulled = []

    class HostAPI:
        @staticmethod
        def pull(repository, tag=None, stream=False, decode=False, auth_config=None):
            pulled.append((repository, tag, auth_config))
            return iter([])

    sh._pull(type("Host", (), {"api": HostAPI})(), "127.0.0.1:40000/provision/myapp", staged, lambda total=None: None)
    assert pulled == [("127.0.0.1:40000/provision/myapp", "2", auth)]


def test_local_registry_does_no_io_until_started(tmp_path):
    registry = lr.LocalRegistry(tmp_path / "reg", client_factory=lambda: pytest.fail("no engine call"))
    assert registry.port is None and not (tmp_path / "reg").exists()
    registry.stop()  # stopping what never started is fine


class _NoRegistryImage:
    class images:
        @staticmethod
        def get(name):
            import docker.errors

            raise docker.errors.ImageNotFound(name)


def test_missing_binary_and_image_says_how_to_install(tmp_path):
    registry = lr.LocalRegistry(tmp_path / "reg", binary=tmp_path / "no-such-registry",
                                client_factory=_NoRegistryImage)
    with pytest.raises(EnvironmentProblem, match="apt-get install docker-registry"):
        registry.start()
    assert registry.port is None


# -- the tunnel, on a fake transport ------------------------------------------------------
class FakeTransport:
    """Stands in for paramiko's Transport: a forwarded connection is one end of a socketpair."""

    def __init__(self) -> None:
        self.handler = None
        self.cancelled: list[tuple[str, int]] = []

    def request_port_forward(self, address, port, handler=None):
        assert (address, port) == ("127.0.0.1", 0)
        self.handler = handler
        return 45678

    def cancel_port_forward(self, address, port):
        self.cancelled.append((address, port))
        self.handler = None

    def connect(self) -> socket.socket:
        """What a client on the host does: returns the host side of the forwarded connection."""
        host_side, channel = socket.socketpair()
        self.handler(channel, ("127.0.0.1", 50000), ("127.0.0.1", 45678))
        return host_side


@pytest.fixture
def echo_port():
    """A loopback server answering every request with the request twice."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                data = conn.recv(65536)
                conn.sendall(data * 2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_tunnel_pumps_both_ways_and_counts_what_reaches_the_host(echo_port):
    transport = FakeTransport()
    with sh.ReverseTunnel(transport, echo_port) as tunnel:
        assert tunnel.remote_port == 45678
        host_side = transport.connect()
        host_side.sendall(b"x" * 1000)
        assert _read_all(host_side) == b"x" * 2000
        host_side.close()
        deadline = time.monotonic() + 5
        while tunnel.bytes_to_host < 2000 and time.monotonic() < deadline:
            time.sleep(0.01)  # poll interval (a poll with a deadline, not a fixed wait)
        assert tunnel.bytes_to_host == 2000  # the echo's 2000 bytes, not the host's 1000
    assert transport.cancelled == [("127.0.0.1", 45678)]


def test_tunnel_close_ends_idle_connections(echo_port):
    transport = FakeTransport()
    tunnel = sh.ReverseTunnel(transport, echo_port)
    tunnel.open()
    host_side = transport.connect()  # a keep-alive connection the host never closes
    deadline = time.monotonic() + 5  # until the tunnel pumps that connection
    while not any(pump.is_alive() for pump in tunnel._pumps) and time.monotonic() < deadline:
        time.sleep(0.01)  # poll interval
    assert any(pump.is_alive() for pump in tunnel._pumps)
    started = time.monotonic()
    tunnel.close()
    assert time.monotonic() - started < 2
    assert all(not pump.is_alive() for pump in tunnel._pumps)
    host_side.close()


def test_tunnels_on_one_transport_take_turns(echo_port):
    transport = FakeTransport()
    first = sh.ReverseTunnel(transport, echo_port)
    first.open()
    entered = threading.Event()

    def second():
        with sh.ReverseTunnel(transport, echo_port):
            entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not entered.wait(0.3)  # paramiko keeps one forward handler per transport (an absence: checked for a while)
    first.close()
    assert entered.wait(5)
    thread.join()


def test_a_refused_forward_is_a_clear_error(echo_port):
    import paramiko

    class Refusing(FakeTransport):
        def request_port_forward(self, address, port, handler=None):
            raise paramiko.SSHException("TCP forwarding request denied")

    transport = Refusing()
    with pytest.raises(ProvisionError, match="AllowTcpForwarding"):
        sh.ReverseTunnel(transport, echo_port).open()
    assert sh._transport_lock(transport).acquire(timeout=1)  # the failed open released its turn


# -- ship's decisions, on a fake host engine -----------------------------------------------
class FakeAPI:
    def __init__(self, images: dict[str, str]) -> None:
        self.images = images  # reference or id → id
        self.tags: list[tuple[str, str, str]] = []

    def inspect_image(self, reference):
        import docker.errors

        if reference not in self.images:
            raise docker.errors.NotFound(reference)
        return {"Id": self.images[reference]}

    def tag(self, image, repository, tag):
        self.tags.append((image, repository, tag))
        return True


class FakeHost:
    def __init__(self, images) -> None:
        self.api = FakeAPI(images)


def test_a_host_that_has_the_image_gets_only_the_tag():
    staged = sh.StagedImage("myapp:2", ID, 5_000_000, "provision/myapp", "2")
    host = FakeHost({ID: ID})
    result = sh.ship(object(), host, staged, 5000)  # no transport is touched
    assert result.skipped and result.bytes_sent == 0 and result.image_id == ID
    assert host.api.tags == [(ID, "myapp", "2")]


@pytest.mark.parametrize("name, is_id", [
    ("ab12cd", True), ("sha256:ab12cd34ef56", True), (ID, True),
    ("myapp:ab12", False), ("provision-rg/tags:a", False), ("ab12cd:1", False), ("ffff", False), ("", False),
])
def test_only_an_id_reference_counts_as_an_image_id(name, is_id):
    assert sh._is_image_id(name, ID) is is_id  # a tag that happens to start the id is still a name


def test_the_container_fallback_demands_the_login_too(tmp_path, monkeypatch):
    """No registry:2 image here: a fake engine records what the fallback asks of it."""
    import io
    import tarfile

    import bcrypt

    calls = {}

    class Container:
        attrs = {"NetworkSettings": {"Ports": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41000"}]}}}

        def put_archive(self, path, data):
            calls["archive"] = (path, data)

        def start(self):
            calls["started"] = True

        def reload(self):
            pass

        def remove(self, force=False):
            calls["removed"] = True

    class Engine:
        class images:
            @staticmethod
            def get(name):
                return object()

        class containers:
            @staticmethod
            def create(image, **kwargs):
                calls["create"] = (image, kwargs)
                return Container()

    checked = []
    monkeypatch.setattr(lr, "answers", lambda port, credentials=None: checked.append((port, credentials)) or True)
    registry = lr.LocalRegistry(tmp_path / "reg", binary=tmp_path / "no-binary", client_factory=Engine)
    assert registry.start() == 41000 and registry.how == "container" and calls["started"]
    environment = calls["create"][1]["environment"]
    assert environment["REGISTRY_AUTH"] == "htpasswd" and environment["REGISTRY_AUTH_HTPASSWD_PATH"] == "/auth/htpasswd"
    assert calls["create"][1]["ports"] == {"5000/tcp": ("127.0.0.1",)}
    with tarfile.open(fileobj=io.BytesIO(calls["archive"][1])) as tar:
        member = tar.getmember("auth/htpasswd")
        user, hashed = tar.extractfile(member).read().rstrip(b"\n").split(b":", 1)
    assert member.mode == 0o600 and user == b"provision"
    assert bcrypt.checkpw(registry.credentials.password.encode(), hashed)
    assert registry.credentials.password not in repr(calls)
    assert checked == [(41000, registry.credentials)]
    registry.stop(collect=True)
    assert calls["removed"] and registry.port is None
