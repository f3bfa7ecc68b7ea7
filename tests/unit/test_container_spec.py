"""provision.deploy.container_spec: specs per replica, the spec hash, and docker SDK create arguments
(built with a real docker.APIClient, whose create_*_config helpers do no I/O)."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import docker
import pytest

from provision.deploy.container_spec import (LABEL_HASH, LABEL_IMAGE, LABEL_REPLICA, LABEL_SERVICE, LABEL_STACK,
                                             ContainerSpec, canonical_json, container_name, container_specs,
                                             create_kwargs, extra_networks, provision_labels, spec_hash)
from provision.deploy.playbook import GpuRequest, Mount, Playbook, PortSpec, load_playbook
from provision.errors import InputError
from provision.secret import Secret

DOC = Path(__file__).resolve().parents[2] / "docs" / "playbook.md"
ENV = {"HF_TOKEN": "hf_secret_value", "REGISTRY_TOKEN": "registry-secret"}
SECRETS = {"HF_TOKEN": "hf_secret_value"}
IMAGE_ID = "sha256:" + "ab" * 32


def doc_example() -> str:
    text = DOC.read_text()
    start = text.index("```yaml\n") + len("```yaml\n")
    return text[start:text.index("```", start)]


def load(directory: Path, text: str, name: str = "stack.yml") -> Playbook:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return load_playbook(path, environ=ENV)


def load_ml(directory: Path) -> Playbook:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".env").write_text("LOG_LEVEL=info\n")
    return load(directory, doc_example(), "ml.yml")


@pytest.fixture
def api() -> docker.APIClient:
    return docker.APIClient(base_url="unix://var/run/docker.sock", version="1.41")


@pytest.fixture
def ml(tmp_path: Path) -> Playbook:
    return load_ml(tmp_path)


@pytest.fixture
def app(ml: Playbook) -> ContainerSpec:
    return container_specs(ml, "app", IMAGE_ID)[0]


# ---------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------


def test_spec_of_the_ml_app(app: ContainerSpec, tmp_path: Path) -> None:
    assert (app.stack, app.service, app.replica, app.image, app.image_id) == ("ml", "app", 1, "myapp:v1", IMAGE_ID)
    assert app.command == ("python", "serve.py") and app.entrypoint is None
    assert app.environment == {"LOG_LEVEL": "info", "CHROMA_HOST": "chromadb"}
    assert app.secret_names == ("HF_TOKEN",)
    assert "HF_TOKEN" not in app.environment
    assert app.mounts == (Mount("volume", "hf-cache", "/root/.cache/huggingface", False, None),
                          Mount("bind", "/srv/provision/ml/data", "/workspace/data", True, tmp_path / "data"))
    assert app.networks == ("ml_ml-network",)
    assert app.gpus == GpuRequest(-1, [], ["gpu"])
    assert (app.shm_size, app.mem_limit, app.cpus, app.stop_grace_period) == (2 * 1024**3, 8 * 1024**3, 2.5, 10.0)
    assert app.labels == {"team": "ml"} and app.restart == "unless-stopped"


def test_one_spec_per_replica(tmp_path: Path) -> None:
    playbook = load(tmp_path, "stack: web\nservices:\n  api: {image: api:1, deploy: {replicas: 3}}\n")
    specs = container_specs(playbook, "api", "sha256:1")
    assert [spec.replica for spec in specs] == [1, 2, 3]
    assert [container_name(s.stack, s.service, s.replica) for s in specs] == ["web-api-1", "web-api-2", "web-api-3"]
    assert len({spec_hash(spec, {}) for spec in specs}) == 1  # replicas share their configuration hash


def test_zero_replicas_means_no_container(tmp_path: Path) -> None:
    playbook = load(tmp_path, "stack: web\nservices:\n  api: {image: api:1, deploy: {replicas: 0}}\n")
    assert container_specs(playbook, "api", "sha256:1") == []


def test_extra_networks_are_all_but_the_first(tmp_path: Path) -> None:
    text = "stack: web\nnetworks: {a: {}, b: {}, c: {name: shared}}\nservices:\n  api: {image: x, networks: [a, b, c]}\n"
    spec = container_specs(load(tmp_path, text), "api", "sha256:1")[0]
    assert spec.networks == ("web_a", "web_b", "shared")
    assert extra_networks(spec) == ["web_b", "shared"]


# ---------------------------------------------------------------------------
# Hash
# ---------------------------------------------------------------------------


def test_hash_is_stable(ml: Playbook, app: ContainerSpec) -> None:
    digest = spec_hash(app, SECRETS)
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert spec_hash(container_specs(ml, "app", IMAGE_ID)[0], dict(SECRETS)) == digest


def test_hash_ignores_dict_order(app: ContainerSpec) -> None:
    reordered = dataclasses.replace(app, environment=dict(reversed(list(app.environment.items()))),
                                    labels={"b": "2", "a": "1"}, ulimits=dict(reversed(list(app.ulimits.items()))))
    same = dataclasses.replace(app, labels={"a": "1", "b": "2"})
    assert spec_hash(reordered, SECRETS) == spec_hash(same, SECRETS)


def test_hash_ignores_the_local_checkout_location(tmp_path: Path) -> None:
    one = container_specs(load_ml(tmp_path / "alice"), "app", IMAGE_ID)[0]
    two = container_specs(load_ml(tmp_path / "bob" / "checkout"), "app", IMAGE_ID)[0]
    assert one.mounts != two.mounts  # local_source differs
    assert spec_hash(one, SECRETS) == spec_hash(two, SECRETS)


@pytest.mark.parametrize("change", [
    {"image_id": "sha256:" + "cd" * 32},
    {"image": "myapp:v2"},
    {"environment": {"LOG_LEVEL": "debug", "CHROMA_HOST": "chromadb"}},
    {"environment": {"LOG_LEVEL": "info", "CHROMA_HOST": "chromadb", "NEW": ""}},
    {"command": ("python", "serve.py", "--port", "9000")},
    {"entrypoint": ("/bin/sh", "-c")},
    {"ports": (PortSpec(target=8080, published=8080),)},
    {"mounts": (Mount("volume", "hf-cache", "/cache", False, None),)},
    {"networks": ("ml_other",)},
    {"restart": "always"},
    {"gpus": GpuRequest(1, [], ["gpu"])},
    {"gpus": None},
    {"shm_size": 1024},
    {"cpus": 4.0},
    {"mem_limit": 1024},
    {"stop_grace_period": 30.0},
    {"user": "root"},
    {"working_dir": "/app"},
    {"labels": {"team": "search"}},
    {"secret_names": ("HF_TOKEN", "OTHER")},
    {"healthcheck": None},
])
def test_hash_changes_with_any_setting(app: ContainerSpec, change: dict) -> None:
    assert spec_hash(dataclasses.replace(app, **change), SECRETS) != spec_hash(app, SECRETS)


def test_secret_value_changes_the_hash_but_never_enters_it(app: ContainerSpec) -> None:
    before = spec_hash(app, {"HF_TOKEN": "old-value"})
    after = spec_hash(app, {"HF_TOKEN": "new-value"})
    assert before != after
    for value in ("old-value", "new-value"):
        assert value not in canonical_json(app, {"HF_TOKEN": value})
    assert spec_hash(app, {"HF_TOKEN": Secret("new-value")}) == after  # Secret wrappers accepted


def test_provision_labels(app: ContainerSpec) -> None:
    assert provision_labels(app, "0123456789ab") == {
        LABEL_STACK: "ml", LABEL_SERVICE: "app", LABEL_REPLICA: "1", LABEL_HASH: "0123456789ab",
        LABEL_IMAGE: "myapp:v1"}
    assert (LABEL_STACK, LABEL_SERVICE, LABEL_REPLICA, LABEL_HASH, LABEL_IMAGE) == (
        "io.provision.stack", "io.provision.service", "io.provision.replica", "io.provision.spec-hash",
        "io.provision.image")


# ---------------------------------------------------------------------------
# create_container arguments
# ---------------------------------------------------------------------------


def test_create_kwargs_for_the_ml_app(app: ContainerSpec, api: docker.APIClient) -> None:
    kwargs = create_kwargs(app, api, name="ml-app-1", secret_values=SECRETS, hash="0123456789ab")
    assert kwargs["host_config"] == {
        "NetworkMode": "ml_ml-network",
        "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
        "Mounts": [
            {"Target": "/root/.cache/huggingface", "Source": "hf-cache", "Type": "volume", "ReadOnly": False},
            {"Target": "/workspace/data", "Source": "/srv/provision/ml/data", "Type": "bind", "ReadOnly": True},
        ],
        "ShmSize": 2147483648,
        "Ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1},
                    {"Name": "stack", "Soft": 67108864, "Hard": 67108864},
                    {"Name": "nofile", "Soft": 65536, "Hard": 65536}],
        "NanoCpus": 2_500_000_000,
        "Memory": 8589934592,
        "DeviceRequests": [{"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}],
    }
    assert kwargs["networking_config"] == {"EndpointsConfig": {"ml_ml-network": {"Aliases": ["app"]}}}
    assert kwargs["healthcheck"] == {"Test": ["CMD", "curl", "-f", "http://localhost:8080/health"],
                                     "Interval": 5_000_000_000, "Timeout": None, "Retries": 10,
                                     "StartPeriod": None}
    rest = {k: v for k, v in kwargs.items() if k not in ("host_config", "networking_config", "healthcheck")}
    assert rest == {
        "image": IMAGE_ID, "name": "ml-app-1", "command": ["python", "serve.py"], "entrypoint": None,
        "environment": {"LOG_LEVEL": "info", "CHROMA_HOST": "chromadb", "HF_TOKEN": "hf_secret_value"},
        "user": "1000:1000", "working_dir": "/workspace",
        "labels": {"team": "ml", LABEL_STACK: "ml", LABEL_SERVICE: "app", LABEL_REPLICA: "1",
                   LABEL_HASH: "0123456789ab", LABEL_IMAGE: "myapp:v1"},
        "ports": [], "stop_timeout": 10, "detach": True,
    }


def test_create_kwargs_ports_and_defaults(ml: Playbook, api: docker.APIClient) -> None:
    spec = container_specs(ml, "chromadb", "sha256:c")[0]
    kwargs = create_kwargs(spec, api, name="ml-chromadb-1", secret_values={}, hash="h")
    assert kwargs["host_config"] == {
        "NetworkMode": "ml_ml-network",
        "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
        "PortBindings": {"8000/tcp": [{"HostIp": "", "HostPort": "8000"}]},
        "Mounts": [{"Target": "/chroma/chroma", "Source": "ml_chroma-data", "Type": "volume", "ReadOnly": False}],
    }
    assert kwargs["ports"] == [(8000, "tcp")]
    assert kwargs["healthcheck"] is None and kwargs["stop_timeout"] is None and kwargs["environment"] == {}


def test_port_bindings_with_ip_udp_and_random_ports(tmp_path: Path, api: docker.APIClient) -> None:
    text = """\
        stack: dns
        services:
          dns:
            image: coredns
            restart: on-failure:5
            ports: ["127.0.0.1:53:53/udp", "53:53", "9153", "127.0.0.1::8080"]
        """
    spec = container_specs(load(tmp_path, text), "dns", "sha256:d")[0]
    kwargs = create_kwargs(spec, api, name="dns-dns-1", secret_values={}, hash="h")
    assert kwargs["host_config"]["PortBindings"] == {
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
        "53/tcp": [{"HostIp": "", "HostPort": "53"}],
        "9153/tcp": [{"HostIp": "", "HostPort": ""}],
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
    }
    assert kwargs["ports"] == [(53, "udp"), (53, "tcp"), (9153, "tcp"), (8080, "tcp")]
    assert kwargs["host_config"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert kwargs["host_config"]["NetworkMode"] == "dns_default"


@pytest.mark.parametrize(("gpus", "request_"), [
    ("2", {"Driver": "", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}),
    ('["0", "2"]', {"Driver": "", "Count": 0, "DeviceIDs": ["0", "2"], "Capabilities": [["gpu"]], "Options": {}}),
    ("{count: all, capabilities: [compute, utility]}",
     {"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["compute", "utility"]], "Options": {}}),
])
def test_device_requests(tmp_path: Path, api: docker.APIClient, gpus: str, request_: dict) -> None:
    playbook = load(tmp_path, f"stack: ml\nservices:\n  app:\n    image: cuda\n    gpus: {gpus}\n")
    kwargs = create_kwargs(container_specs(playbook, "app", "sha256:g")[0], api, name="n", secret_values={},
                           hash="h")
    assert kwargs["host_config"]["DeviceRequests"] == [request_]


def test_disabled_healthcheck_and_string_command(tmp_path: Path, api: docker.APIClient) -> None:
    text = """\
        stack: web
        services:
          app:
            image: app
            command: serve --port 80
            entrypoint: /entry.sh
            healthcheck: {disable: true}
        """
    kwargs = create_kwargs(container_specs(load(tmp_path, text), "app", "")[0], api, name="n",
                           secret_values={}, hash="h")
    assert kwargs["healthcheck"]["Test"] == ["NONE"]
    assert kwargs["command"] == ["serve", "--port", "80"] and kwargs["entrypoint"] == ["/entry.sh"]
    assert kwargs["image"] == "app"  # no image id yet (--check): the name


def test_secret_values_only_in_create_kwargs(app: ContainerSpec, api: docker.APIClient) -> None:
    assert "hf_secret_value" not in repr(app)
    kwargs = create_kwargs(app, api, name="n", secret_values={"HF_TOKEN": Secret("hf_secret_value")}, hash="h")
    assert kwargs["environment"]["HF_TOKEN"] == "hf_secret_value"


def test_missing_secret_value_refuses_to_create(app: ContainerSpec, api: docker.APIClient) -> None:
    with pytest.raises(InputError, match=r"services\.app\.secrets: 'HF_TOKEN' is not set in the environment"):
        create_kwargs(app, api, name="n", secret_values={}, hash="h")


def test_create_kwargs_are_accepted_by_the_sdk(app: ContainerSpec, api: docker.APIClient,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK turns the kwargs into a create request without complaint (the HTTP call is stubbed)."""
    sent = {}

    def fake_create(config, name, platform=None):
        sent.update(config=config, name=name)
        return {"Id": "c0ffee"}

    monkeypatch.setattr(api, "create_container_from_config", fake_create)
    assert api.create_container(**create_kwargs(app, api, name="ml-app-1", secret_values=SECRETS,
                                                hash="h")) == {"Id": "c0ffee"}
    config = sent["config"]
    assert sent["name"] == "ml-app-1"
    assert config["Image"] == IMAGE_ID and config["StopTimeout"] == 10
    assert sorted(config["Env"]) == ["CHROMA_HOST=chromadb", "HF_TOKEN=hf_secret_value", "LOG_LEVEL=info"]
    assert config["Healthcheck"]["Interval"] == 5_000_000_000
