"""The operator's engine without the docker SDK (deploy.local_engine): an image id over the unix socket, and a
build skipped only when its fingerprint (context, Dockerfile, args, target, tag, base image ids) is unchanged."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from provision.deploy import local_engine

BASE_ID = "sha256:" + "a" * 64


@pytest.fixture
def engine(tmp_path):
    """A fake engine on a unix socket: GET /v1.41/images/NAME/json for the names in `images`."""
    images = {"busybox:1.36": BASE_ID}
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            name = self.path.removeprefix("/v1.41/images/").removesuffix("/json")
            from urllib.parse import unquote

            found = images.get(unquote(name))
            body = json.dumps({"Id": found} if found else {"message": "No such image"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self):
            request, _ = super().get_request()
            return request, ("local", 0)

    path = str(tmp_path / "docker.sock")
    server = Server(path, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"DOCKER_HOST": f"unix://{path}"}, images, seen
    server.shutdown()
    server.server_close()


def test_an_image_id_over_the_socket(engine):
    environ, images, seen = engine
    assert local_engine.image_id("busybox:1.36", environ) == (True, BASE_ID)
    assert local_engine.image_id("shop/web:1", environ) == (True, None)
    assert seen == ["/v1.41/images/busybox:1.36/json", "/v1.41/images/shop/web:1/json"]


@pytest.mark.parametrize("environ", [{"DOCKER_HOST": "tcp://10.0.0.1:2376"}, {"DOCKER_HOST": "ssh://me@box"},
                                     {"DOCKER_TLS_VERIFY": "1"}, {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}])
def test_other_engines_are_left_to_the_sdk(environ):
    assert local_engine.image_id("busybox:1.36", environ) == (False, None)


def test_the_default_socket():
    assert local_engine.socket_path({}) == "/var/run/docker.sock"
    assert local_engine.socket_path({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}) == "/run/user/1000/docker.sock"


def test_base_images_of_a_dockerfile():
    text = ("FROM --platform=linux/amd64 busybox:1.36 AS build\nRUN make\nfrom scratch\nFROM build\n"
            "COPY --from=build /x /x\nFROM  debian:12\n")
    assert local_engine.base_images(text) == ["busybox:1.36", "debian:12"]
    assert local_engine.base_images("ARG V=1\nFROM busybox:${V}\n") is None


def context(tmp_path, dockerfile: str = "FROM busybox:1.36\nCOPY index.html /www/\n"):
    folder = tmp_path / "ctx"
    folder.mkdir(exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "index.html").write_text("hello")
    return folder


def test_the_fingerprint_follows_every_input(engine, tmp_path):
    environ, images, _ = engine
    folder = context(tmp_path)

    def fp(**kw):
        args = {"dockerfile": None, "args": {}, "target": None, "tag": "shop/web:1", **kw}
        return local_engine.build_fingerprint(folder, args["dockerfile"], args["args"], args["target"], args["tag"],
                                              environ)

    first = fp()
    assert first is not None and fp() == first
    assert len({first, fp(args={"V": "2"}), fp(target="prod"), fp(tag="shop/web:2")}) == 4
    (folder / "index.html").write_text("changed")
    second = fp()
    assert second != first
    images["busybox:1.36"] = "sha256:" + "b" * 64  # the base image moved
    assert fp() not in (first, second)
    del images["busybox:1.36"]  # a base the engine lacks: the build pulls it, nothing to compare
    assert fp() is None


def test_a_variable_base_image_is_never_fingerprinted(engine, tmp_path):
    folder = context(tmp_path, "ARG BASE=busybox:1.36\nFROM $BASE\n")
    assert local_engine.build_fingerprint(folder, None, {}, None, "t:1", engine[0]) is None


def test_the_build_cache_round_trip(tmp_path):
    cache = local_engine.BuildCache(tmp_path / ".provision" / "builds.json")
    assert cache.get("f1") is None
    cache.put("f1", BASE_ID)
    assert local_engine.BuildCache(tmp_path / ".provision" / "builds.json").get("f1") == BASE_ID
    (tmp_path / ".provision" / "builds.json").write_text("not json")
    assert cache.get("f1") is None


def test_a_deploy_does_not_rebuild_an_unchanged_image_nor_load_the_sdk(engine, tmp_path, monkeypatch):
    """deploy.images.sources: the second deploy of an unchanged `build:` reuses the id of the first build (while the
    tag still points to it); a changed context is built again."""
    from provision.deploy import images as image_sources
    from provision.deploy.playbook import load_stack

    environ, images, _ = engine
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    folder = context(tmp_path)
    (tmp_path / "compose.yaml").write_text("name: shop\nservices:\n  web:\n    image: shop/web:1\n    build: ./ctx\n")
    playbook = load_stack(tmp_path / "compose.yaml", environ={})
    built: list[str] = []

    def build(client, playbook, service):
        built.append(service.name)
        images["shop/web:1"] = "sha256:" + str(len(built)) * 64
        return images["shop/web:1"]

    monkeypatch.setattr(image_sources, "build_locally", build)
    clients: list[object] = []  # SDK clients asked for (the SDK is loaded then)
    monkeypatch.setattr(image_sources, "local_client", lambda: clients.append(object()) or clients[-1])
    real = [image_sources.local_client]  # passed as the default engine's factory is

    first = image_sources.sources(playbook, check=False, client_factory=real[0])
    assert built == ["web"] and first["web"].local_id == "sha256:" + "1" * 64
    assert (tmp_path / ".provision" / "builds.json").exists()
    again = image_sources.sources(playbook, check=False, client_factory=real[0])
    assert built == ["web"] and again["web"].local_id == first["web"].local_id  # not rebuilt
    assert len(clients) == 1  # the first build's only
    (folder / "index.html").write_text("changed")
    image_sources.sources(playbook, check=False, client_factory=real[0])
    assert built == ["web", "web"]
