"""deploy.swarm_spec's small translations and deploy.networks (shared by single-host and Swarm deploys)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from provision.deploy import networks, swarm_spec
from provision.deploy.container_spec import LABEL_STACK
from provision.deploy.playbook import GpuRequest, PortSpec, load_playbook


def test_restart_policy_in_swarm_words():
    def policy(restart: str) -> tuple:
        made = swarm_spec.restart_policy(restart)
        return made["Condition"], made["MaxAttempts"]

    assert policy("no") == ("none", 0)
    assert policy("unless-stopped") == ("any", 0)
    assert policy("on-failure:3") == ("on-failure", 3)


def test_published_ports_leave_out_an_unpublished_port():
    class Spec:
        ports = (PortSpec(target=80, published=8080, protocol="tcp", mode="host"),
                 PortSpec(target=53, protocol="udp", mode="ingress"))

    assert swarm_spec.published_ports(Spec()) == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host", "PublishedPort": 8080},
        {"Protocol": "udp", "TargetPort": 53, "PublishMode": "ingress"}]


def test_gpu_environment_names_the_devices():
    class Spec:
        gpus = None

    assert swarm_spec.gpu_environment(Spec()) == {}
    Spec.gpus = GpuRequest(count=-1)
    assert swarm_spec.gpu_environment(Spec()) == {"NVIDIA_VISIBLE_DEVICES": "all"}
    Spec.gpus = GpuRequest(count=None, device_ids=("0", "2"))
    assert swarm_spec.gpu_environment(Spec()) == {"NVIDIA_VISIBLE_DEVICES": "0,2"}


def test_service_name_is_stack_underscore_service():
    assert swarm_spec.service_name("demo", "api") == "demo_api"


def _playbook(tmp_path: Path, body: str):
    path = tmp_path / "stack.yml"
    path.write_text(textwrap.dedent(body))
    return load_playbook(path, environ={})


def test_needed_networks_of_some_services_in_first_use_order(tmp_path):
    pb = _playbook(tmp_path, """
        stack: demo
        networks: {back: {internal: true}, front: {driver: macvlan, labels: {team: a}}}
        services:
          web: {image: nginx, networks: [front, back]}
          db: {image: postgres, networks: [back]}
          cache: {image: redis}
        """)
    assert [n for n, _ in networks.needed_networks(pb, ["db", "cache"])] == ["demo_back", "demo_default"]
    found = dict(networks.needed_networks(pb, pb.ordered_services()))
    assert set(found) == {"demo_front", "demo_back", "demo_default"}
    assert found["demo_back"].internal and found["demo_front"].driver == "macvlan"
    assert found["demo_default"] is None


def test_network_create_kwargs_bridge_and_overlay(tmp_path):
    class Spec:
        driver = None
        labels = {"team": "a"}
        internal = True
        attachable = False
        driver_opts = {"mtu": "1400"}

    assert networks.create_kwargs("demo", Spec(), swarm=False) == {
        "driver": "bridge", "labels": {LABEL_STACK: "demo", "team": "a"}, "internal": True,
        "options": {"mtu": "1400"}, "attachable": None}
    assert networks.create_kwargs("demo", None, swarm=True) == {
        "driver": "overlay", "labels": {LABEL_STACK: "demo"}, "internal": False, "options": None,
        "attachable": True, "scope": "swarm"}
    assert networks.is_ours({"Labels": {LABEL_STACK: "demo"}}) and not networks.is_ours({"Labels": None})
