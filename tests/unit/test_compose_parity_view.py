"""The pure parts of tests/e2e/compose_parity.py: inspect_view (docker inspect → the fields Compose and
provision must agree on) and compare, on `docker inspect` JSON CAPTURED from real containers (see the
"captured" note in each tests/fixtures/compose-stacks/inspect/*.json: Docker Engine 20.10.24 on a sandbox
host, stacks created by the real docker-compose v2.40.3)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.e2e.compose_parity import (STANDINS, Standin, compare, compare_stacks, inspect_view, stack_images)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "compose-stacks"
SECONDS = 1_000_000_000


def captured(stack: str) -> dict:
    doc = json.loads((FIXTURES / "inspect" / f"{stack}.json").read_text())
    assert doc["captured"].startswith("CAPTURED from real containers")
    return doc


def view(stack: str, service: str, **kw) -> dict:
    doc = captured(stack)
    opts = {"project": doc["project"], "roots": [doc["project_dir"]], **kw}
    return inspect_view(doc["services"][service][0], **opts)


def test_webapp_view_env_without_image_defaults_and_user_labels_only():
    web = view("webapp-health", "web")
    assert web["env"] == ["DATABASE_URL=postgres://shop:shop@db:5432/shop", "LOG_LEVEL=info",
                          "REDIS_URL=redis://cache:6379/0", "WEB_CONCURRENCY=2"]  # no PATH, no image ENV
    assert web["labels"] == {"com.example.team": "storefront", "com.example.tier": "web"}  # no com.docker.compose.*
    raw = captured("webapp-health")["services"]["web"][0]["Config"]["Labels"]
    assert raw["com.docker.compose.service"] == "web" and "io.provision.test.standin" in raw


def test_webapp_view_mounts_ports_networks_and_the_rest():
    web = view("webapp-health", "web")
    assert web["mounts"] == [
        {"type": "bind", "source": "./config", "destination": "/app/config", "read_only": True},
        {"type": "tmpfs", "source": "size=16777216", "destination": "/app/tmp", "read_only": False},
    ]
    assert web["tmpfs"] == {"/run/web": ""}
    assert web["ports"] == {"8000/tcp": [":8000"], "9100/tcp": [":9100"]}
    assert web["expose"] == []  # 8000 is the image's, 9100 is published
    assert web["networks"] == {"backend": ["web"], "frontend": ["web"]}  # container name dropped, service kept
    assert web["network_mode"] == ""
    assert web["restart"] == {"name": "unless-stopped", "max_retries": 0}
    assert web["healthcheck"] == {"test": ["CMD", "curl", "-f", "http://localhost:8000/health"],
                                  "interval": 2 * SECONDS, "timeout": 2 * SECONDS, "retries": 15,
                                  "start_period": 1 * SECONDS, "start_interval": 0}
    assert web["init"] is True and web["cap_add"] == ["CAP_NET_BIND_SERVICE"] and web["cap_drop"] == ["CAP_MKNOD"]
    assert web["sysctls"] == {"net.core.somaxconn": "1024"}
    assert web["ulimits"] == [{"name": "nofile", "soft": 4096, "hard": 8192}]
    assert web["extra_hosts"] == ["host.docker.internal:host-gateway", "metrics.internal:10.0.0.5"]
    assert web["logging"] == {"driver": "json-file", "options": {"max-file": "3", "max-size": "10m"}}
    assert web["stop_timeout"] == 5 and web["gpus"] == []


def test_named_volumes_by_logical_name_and_network_aliases():
    cache = view("webapp-health", "cache")
    assert cache["mounts"] == [{"type": "volume", "source": "cache-data", "destination": "/data", "read_only": False}]
    assert cache["networks"] == {"backend": ["cache", "redis"]}
    assert cache["cmd"] == ["redis-server", "--save", "60", "1", "--loglevel", "warning"]
    db = view("webapp-health", "db")
    assert db["mounts"][0]["source"] == "db-data" and db["shm_size"] == 256 * 1024 * 1024
    # without the project the prefix stays: the view never guesses
    assert view("webapp-health", "cache", project=None)["mounts"][0]["source"] == "shop_cache-data"


def test_gpu_requests_both_compose_spellings():
    assert view("llm-chat", "vllm")["gpus"] == [  # gpus: all
        {"driver": "", "count": -1, "device_ids": [], "capabilities": [["gpu"]], "options": {}}]
    assert view("llm-chat", "ollama")["gpus"] == [  # deploy.resources.reservations.devices, count 1
        {"driver": "nvidia", "count": 1, "device_ids": [], "capabilities": [["gpu"]], "options": {}}]
    assert view("milvus-gpu", "standalone")["gpus"] == [  # device_ids ["0"]
        {"driver": "nvidia", "count": 0, "device_ids": ["0"], "capabilities": [["gpu"]], "options": {}}]
    vllm = view("llm-chat", "vllm")
    assert vllm["env"] == ["HUGGING_FACE_HUB_TOKEN=", "VLLM_LOGGING_LEVEL=INFO"]
    assert vllm["entrypoint"] == ["/usr/local/bin/standin-server", "vllm"]
    assert vllm["cmd"][:2] == ["--model", "meta-llama/Meta-Llama-3-8B-Instruct"]


def test_default_network_and_container_name_and_binds_relative_to_the_project():
    etcd = view("milvus-gpu", "etcd")
    assert etcd["networks"] == {"milvus": ["etcd"]}  # `name: milvus`; container_name milvus-etcd dropped
    assert etcd["mounts"][0]["source"] == "./volumes/etcd"
    assert view("llm-chat", "open-webui")["networks"] == {"default": ["open-webui"]}  # llm_default
    assert view("milvus-gpu", "standalone")["security_opt"] == ["seccomp:unconfined"]
    # bind sources under another root (provision's remote_dir) read the same
    doc = captured("milvus-gpu")
    moved = copy.deepcopy(doc["services"]["etcd"][0])
    for m in moved["Mounts"]:
        m["Source"] = m["Source"].replace(doc["project_dir"], "/srv/provision/milvus")
    assert inspect_view(moved, project="milvus", roots=["/srv/provision/milvus"]) == view("milvus-gpu", "etcd")


def test_secrets_are_left_out_whatever_the_mechanism_and_anonymous_volumes():
    db = view("secrets", "db")
    assert db["mounts"] == [  # Compose's bind of the `file:` secret is not in the view
        {"type": "volume", "source": "<anonymous>", "destination": "/var/lib/postgresql/data", "read_only": False},
    ]
    raw = captured("secrets")["services"]["db"][0]["Mounts"]
    assert any(m["Destination"] == "/run/secrets/db_password" and m["Type"] == "bind" for m in raw)
    # provision's way (binds from a tmpfs on the host, or a tmpfs at /run/secrets): the same view
    doc = captured("secrets")
    other = copy.deepcopy(doc["services"]["db"][0])
    for m in other["Mounts"]:
        if m["Destination"].startswith("/run/secrets/"):
            m.update(Source="/run/provision/secrets/vault/db/db_password", RW=True)
    other["Mounts"].append({"Type": "bind", "Source": "/run/provision/secrets/vault/db/api_token",
                            "Destination": "/run/secrets/api_token", "Mode": "", "RW": False, "Propagation": "rprivate"})
    other["HostConfig"]["Mounts"] = [{"Type": "tmpfs", "Target": "/run/secrets", "TmpfsOptions": {"SizeBytes": 1048576}}]
    assert inspect_view(other, project="vault", roots=[doc["project_dir"]]) == db
    assert view("secrets", "api")["env"] == ["API_TOKEN_FILE=/run/secrets/api_token",
                                             "DB_PASSWORD_FILE=/run/secrets/db_password"]


def test_what_differs_by_design_is_not_in_the_view():
    """provision's container name, hostname, its own labels, a prefixed network/volume name, the
    container's own alias and a network mode naming one of its networks: the same view."""
    doc = captured("webapp-health")
    base = doc["services"]["cache"][0]
    other = copy.deepcopy(base)
    other["Name"] = "/shop-cache-1-provision"
    other["Id"] = "f" * 64
    other["Config"]["Hostname"] = "ffffffffffff"
    other["Config"]["Labels"] = {k: v for k, v in other["Config"]["Labels"].items()
                                 if not k.startswith("com.docker.compose.")}
    other["Config"]["Labels"].update({"io.provision.stack": "shop", "io.provision.service": "cache",
                                      "io.provision.spec": "abc"})
    nets = other["NetworkSettings"]["Networks"]
    nets["shop_backend"]["Aliases"] = ["cache", "redis", "ffffffffffff", "shop-cache-1-provision"]
    other["HostConfig"]["NetworkMode"] = "shop_backend"
    other["HostConfig"]["RestartPolicy"] = {"Name": "always", "MaximumRetryCount": 0}
    opts = {"project": "shop", "roots": [doc["project_dir"]]}
    assert compare(inspect_view(base, **opts), inspect_view(other, **opts)) == []


def test_compare_says_what_differs_in_words():
    doc = captured("webapp-health")
    a = inspect_view(doc["services"]["web"][0], project="shop")
    b = copy.deepcopy(a)
    b["env"] = [e for e in b["env"] if not e.startswith("LOG_LEVEL=")] + ["LOG_LEVEL=debug"]
    b["restart"]["name"] = "always"
    b["healthcheck"]["retries"] = 3
    b["gpus"] = [{"driver": "nvidia", "count": 1, "device_ids": [], "capabilities": [["gpu"]], "options": {}}]
    del b["labels"]
    assert compare(a, b, ("compose", "provision")) == [
        "env: only in compose: ['LOG_LEVEL=info']; only in provision: ['LOG_LEVEL=debug']",
        "gpus: compose=[] provision=[{'driver': 'nvidia', 'count': 1, 'device_ids': [], 'capabilities': [['gpu']], "
        "'options': {}}]",
        "healthcheck.retries: compose=15 provision=3",
        "labels: only in compose: {'com.example.team': 'storefront', 'com.example.tier': 'web'}",
        "restart.name: compose='unless-stopped' provision='always'",
    ]
    assert compare(a, copy.deepcopy(a)) == []


def test_compare_stacks_service_by_service():
    doc = captured("llm-chat")
    opts = {"project": "llm", "roots": [doc["project_dir"]]}
    assert compare_stacks(doc["services"], copy.deepcopy(doc["services"]), a_opts=opts, b_opts=opts) == []
    other = copy.deepcopy(doc["services"])
    del other["ollama"]
    other["vllm"][0]["HostConfig"]["ShmSize"] = 67108864
    assert compare_stacks(doc["services"], other, a_opts=opts, b_opts=opts) == [
        "service ollama: only in compose", "vllm: shm_size: compose=1073741824 provision=67108864"]


def test_stack_images_takes_interpolation_defaults_and_every_image_has_a_standin():
    assert stack_images(FIXTURES / "llm-chat" / "compose.yaml") == [
        "ghcr.io/open-webui/open-webui:main", "ollama/ollama:latest", "vllm/vllm-openai:v0.6.3"]
    for stack in ("milvus-gpu", "webapp-health", "secrets", "llm-chat"):
        import yaml

        images = [s["image"] for s in yaml.safe_load((FIXTURES / stack / "compose.yaml").read_text())["services"].values()]
        assert len(stack_images(FIXTURES / stack / "compose.yaml")) == len(set(images)), stack


@pytest.mark.parametrize("name", sorted(STANDINS))
def test_standin_dockerfiles_are_from_the_sandbox_base_and_keep_the_real_shape(name):
    standin: Standin = STANDINS[name]
    dockerfile = standin.dockerfile()
    assert dockerfile.startswith("FROM provision-sandbox/busybox:latest\n")
    assert f'LABEL io.provision.test.standin="{name}"' in dockerfile
    assert "CMD " in dockerfile and f"STANDIN_IMAGE={name}" in standin.conf().replace("'", "")
