"""The pure part of `provision deploy --swarm`: playbook → service spec, hash, decisions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from provision.deploy.container_spec import LABEL_HASH, LABEL_IMAGE, LABEL_STACK
from provision.deploy.playbook import load_playbook, load_stack
from provision.errors import InputError
from provision.deploy import networks
from provision.deploy import swarm_spec as spec
from provision.workflows import swarm_deploy as sd

ROOT = Path(__file__).resolve().parents[2]
IMAGE_ID = "sha256:" + "ab" * 32


def playbook(tmp_path: Path, body: str):
    path = tmp_path / "stack.yml"
    path.write_text(textwrap.dedent(body))
    return load_playbook(path, environ={"TOKEN": "s3cret-value"})


BASE = """
stack: demo
networks: {front: {}}
services:
  api:
    image: demo/api:1
    command: ["serve", "--port", "80"]
    environment: {MODE: prod}
    secrets: [TOKEN]
    networks: [front]
    ports: [{target: 80, published: 8080, mode: host}]
    cpus: 1.5
    mem_limit: 256m
    restart: on-failure:3
    healthcheck: {test: ["CMD", "true"], interval: 2s}
    deploy:
      replicas: 1
      endpoint_mode: dnsrr
      update_config: {order: stop-first, monitor: 10s}
      placement: {constraints: ["node.role==worker"]}
  gpu:
    image: demo/gpu:1
    gpus: all
"""


def kwargs(pb, name="api", secrets=None):
    secrets = {"TOKEN": "s3cret-value"} if secrets is None else secrets
    return spec.service_kwargs(pb, name, IMAGE_ID, secrets, spec.swarm_hash(pb, name, IMAGE_ID, secrets))


def test_service_spec_from_the_playbook(tmp_path):
    pb = playbook(tmp_path, BASE)
    k = kwargs(pb)
    assert k["name"] == "demo_api"
    container = k["task_template"]["ContainerSpec"]
    assert container["Image"] == IMAGE_ID  # by ID: the daemon never pulls a shipped image
    assert container["Args"] == ["serve", "--port", "80"]  # Compose's command = Swarm's Args
    assert container.get("Command") is None  # the image's entrypoint stays
    assert "MODE=prod" in container["Env"] and "TOKEN=s3cret-value" in container["Env"]
    assert container["Labels"][LABEL_IMAGE] == "demo/api:1"
    assert container["Healthcheck"]["Interval"] == 2_000_000_000
    assert k["mode"] == {"replicated": {"Replicas": 1}}
    assert k["labels"][LABEL_STACK] == "demo" and len(k["labels"][LABEL_HASH]) == 12
    assert k["task_template"]["Networks"] == [{"Target": "demo_front", "Aliases": ["api"]}]
    assert k["task_template"]["Placement"]["Constraints"] == ["node.role==worker"]
    assert k["task_template"]["Resources"]["Limits"] == {"NanoCPUs": 1_500_000_000, "MemoryBytes": 256 * 1024 ** 2}
    assert k["task_template"]["RestartPolicy"]["Condition"] == "on-failure"
    assert k["task_template"]["RestartPolicy"]["MaxAttempts"] == 3
    update = k["update_config"]
    assert (update["Order"], update["FailureAction"], update["Monitor"]) == ("stop-first", "rollback", 10_000_000_000)


def test_endpoint_and_publish_modes(tmp_path):
    k = kwargs(playbook(tmp_path, BASE))
    assert k["endpoint_spec"]["Mode"] == "dnsrr"
    assert k["endpoint_spec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host",
                                            "PublishedPort": 8080}]
    default = kwargs(playbook(tmp_path, BASE), "gpu")
    assert default["endpoint_spec"]["Mode"] == "vip"  # Docker's default unless the playbook says otherwise
    assert "Ports" not in default["endpoint_spec"]


def test_short_port_keeps_dockers_ingress_publish_mode(tmp_path):
    pb = playbook(tmp_path, """
        stack: demo
        services:
          web: {image: web:1, ports: ["8080:80"]}
    """)
    assert kwargs(pb, "web")["endpoint_spec"]["Ports"][0]["PublishMode"] == "ingress"


def test_dnsrr_with_an_ingress_port_is_bad_input(tmp_path):
    pb = playbook(tmp_path, """
        stack: demo
        services:
          web: {image: web:1, ports: ["8080:80"], deploy: {endpoint_mode: dnsrr}}
    """)
    with pytest.raises(InputError, match="mode: host"):
        spec.validate(pb)


def test_gpu_services_are_placed_on_gpu_nodes(tmp_path):
    k = kwargs(playbook(tmp_path, BASE), "gpu")
    assert k["task_template"]["Placement"]["Constraints"] == ["node.labels.provision.gpu==true"]
    assert "NVIDIA_VISIBLE_DEVICES=all" in k["task_template"]["ContainerSpec"]["Env"]
    assert "Placement" not in kwargs(playbook(tmp_path, BASE.replace("    gpus: all\n", "")), "gpu")["task_template"]


def test_hash_is_stable_and_tracks_every_input(tmp_path):
    pb = playbook(tmp_path, BASE)
    secrets = {"TOKEN": "s3cret-value"}
    digest = spec.swarm_hash(pb, "api", IMAGE_ID, secrets)
    assert digest == spec.swarm_hash(playbook(tmp_path, BASE), "api", IMAGE_ID, dict(secrets))
    assert digest != spec.swarm_hash(pb, "api", "sha256:" + "cd" * 32, secrets)
    assert digest != spec.swarm_hash(pb, "api", IMAGE_ID, {"TOKEN": "rotated"})
    assert digest != spec.swarm_hash(playbook(tmp_path, BASE.replace("replicas: 1", "replicas: 2").replace("    ports: [{target: 80, published: 8080, mode: host}]\n", "")), "api", IMAGE_ID, secrets)
    assert digest != spec.swarm_hash(playbook(tmp_path, BASE.replace("dnsrr", "vip").replace("mode: host", "mode: ingress")),
                                   "api", IMAGE_ID, secrets)
    assert "s3cret-value" not in repr(spec.swarm_hash(pb, "api", IMAGE_ID, secrets))


def test_decide_by_labels():
    assert spec.decide(None, "abc")[0] == "create"
    assert spec.decide({"Spec": {"Labels": {LABEL_HASH: "abc"}}}, "abc")[0] == "keep"
    action, reason = spec.decide({"Spec": {"Labels": {LABEL_HASH: "old"}}}, "abc")
    assert action == "update" and "rolling update" in reason


def test_networks_default_and_declared(tmp_path):
    pb = playbook(tmp_path, BASE)
    assert [name for name, _ in networks.needed_networks(pb, pb.ordered_services())] == ["demo_front", "demo_default"]


def test_image_refs_ship_by_id_pull_by_name():
    from provision.deploy.images import PULL, SHIP, ImageSource

    refs = spec.image_refs({"a": ImageSource("a:1", SHIP, local_id=IMAGE_ID), "b": ImageSource("redis:7", PULL)})
    assert refs == {"a": IMAGE_ID, "b": "redis:7"}


def test_the_shipped_swarm_playbook_validates():
    pb = load_stack(ROOT / "playbooks" / "swarm-hello.yml", environ={})
    assert pb.warnings == []  # a Compose file, not the deprecated playbook format
    spec.validate(pb)
    k = spec.service_kwargs(pb, "web", IMAGE_ID, {}, "0" * 12)
    assert k["mode"] == {"replicated": {"Replicas": 2}} and k["endpoint_spec"]["Mode"] == "dnsrr"
    assert k["update_config"]["Order"] == "start-first"  # x-provision.rollout
    # $$(hostname) is Compose's escape: the task's shell sees $(hostname)
    container = k["task_template"]["ContainerSpec"]
    assert "hello-from-$(hostname) >" in container["Args"][2]
    assert k["task_template"]["RestartPolicy"]["Condition"] == "any"  # no `restart:`: Swarm restarts tasks


def test_wait_converged_reports_task_errors():
    class Api:
        def inspect_service(self, _):
            return {}

        def tasks(self, filters):
            if "desired-state" in filters:
                return []
            return [{"Status": {"State": "rejected", "Err": "No such image: sha256:abc"}, "UpdatedAt": "1"}]

    ok, message = sd.wait_converged(Api(), "id", 1, timeout=0, poll=0)
    assert not ok and "No such image" in message


def test_relative_bind_mounts_are_refused_under_swarm(tmp_path):
    book = playbook(tmp_path, """
        stack: demo
        services:
          api: {image: demo/api:1, volumes: ["./data:/data"]}
    """)
    with pytest.raises(InputError, match=r"services.api.volumes: the relative bind 'data' would need a copy on every node"):
        spec.validate(book)
