"""`provision deploy --swarm` with GPU services (issue 14): the image-vs-driver and requests-vs-facts checks run
on every member a GPU service can be placed on, before anything is shipped or changed (and under --check),
driven through deploy_swarm with a RecordingExecutor per host and the documented nvidia-smi outputs of
tests/fixtures/facts/ (gpu-hgx8-documented: 8 GPUs, driver 550.54.15, CUDA 12.4; gpu-no-driver-documented: no
GPU). The image configs are given (the registry read is tested in test_gpu_deploy_checks)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from provision.commands import probes
from provision.deploy import images as image_sources
from provision.deploy import remote_docker
from provision.executor.fake import RecordingExecutor
from provision.operations.gpu_requests import swarm_candidates
from provision.workflows import gpu_precheck, swarm_deploy
from provision.workflows.fanout import RunOptions
from tests.unit.test_workflow_swarm_deploy import SwarmEngine
from tests.unit.workflow_support import freeze_lock

FACTS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "facts"
HGX = (FACTS / "gpu-hgx8-documented.txt").read_text()
NO_GPU = (FACTS / "gpu-no-driver-documented.txt").read_text()
CONFIGS = {"demo/train:13": {"config": {"Env": ["CUDA_VERSION=13.0.0", "NVIDIA_REQUIRE_CUDA=cuda>=13.0"]}},
           "demo/train:12": {"config": {"Env": ["CUDA_VERSION=12.2.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.2"]}}}


@pytest.fixture(autouse=True)
def _frozen_lock(monkeypatch):
    freeze_lock(monkeypatch)


@pytest.mark.parametrize("constraints, expected", [
    ([], ["m1", "g1", "g2"]),
    (["node.role==manager"], ["m1"]),
    (["node.role != manager"], ["g1", "g2"]),
    (["node.role==worker", "node.labels.provision.gpu==true"], ["g1", "g2"]),  # the label: decided by the facts
    (["node.hostname==g1"], ["m1", "g1", "g2"]),  # not known before connecting: checks more nodes, never fewer
])
def test_swarm_candidates(constraints, expected):
    assert swarm_candidates(constraints, [("m1", "manager"), ("g1", "worker"), ("g2", "worker")]) == expected


def run(tmp_path, monkeypatch, service: str, outputs: dict[str, str], check: bool = False):
    """m1 manager (no GPU), g1 and g2 GPU workers; one pulled CPU service and one GPU SERVICE (YAML)."""
    playbook = tmp_path / "stack.yml"
    playbook.write_text("stack: demo\nhosts: all\nservices:\n  web:\n    image: demo/web:1\n" + service)
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  vars: {ansible_host: 127.0.0.1}\n  children:\n"
                         "    swarm_managers: {hosts: {m1: {}}}\n    swarm_workers: {hosts: {g1: {}, g2: {}}}\n")
    monkeypatch.setattr(image_sources, "local_client", lambda: SwarmEngine())
    engines = {name: SwarmEngine() for name in outputs}
    executors = {}

    def factory(target, options):
        if target.name not in executors:
            executors[target.name] = RecordingExecutor(target.name)
            executors[target.name].respond("nvidia-smi", stdout=outputs[target.name])
        return executors[target.name]

    monkeypatch.setattr(remote_docker, "client_for", lambda ex, settings: engines[ex.name])
    # every phase (GPU checks, image step, manager's work) leases the deploy's one executor per host
    monkeypatch.setattr(swarm_deploy, "SharedExecutors", functools.partial(swarm_deploy.SharedExecutors, make=factory))
    monkeypatch.setattr(gpu_precheck, "_engine_info", lambda target, executor: {})
    monkeypatch.setattr(gpu_precheck, "_remote_config", lambda ctx, target, ex, info, name, arch: CONFIGS[name])
    loaded = swarm_deploy.load(playbook, inventory, None, environ={})
    return swarm_deploy.deploy_swarm(loaded, RunOptions(check=check)), executors, engines


def test_an_image_too_new_for_the_nodes_driver_refuses_before_anything_is_changed(tmp_path, monkeypatch):
    report, executors, engines = run(tmp_path, monkeypatch, "  train:\n    image: demo/train:13\n    gpus: all\n",
                                     {"m1": NO_GPU, "g1": HGX, "g2": HGX})
    assert report.exit_code() == 2
    for node in ("g1", "g2"):
        step = report.hosts[node].steps[0]
        assert step.name == "gpu check train" and step.status == "failed"
        assert f"on host {node}: image demo/train:13 (service train) needs CUDA 13.0" in step.message
        assert "Remedy: install a driver >= 580.65.06" in step.message
    manager = report.hosts["m1"]  # no GPU: Swarm does not place the service there, so not refused there
    assert manager.status == "skipped" and "not deployed: the GPU checks refused hosts g1, g2" in manager.message
    assert "Swarm does not place service train here" in manager.steps[0].message
    for executor in executors.values():  # one read-only probe per node, no lock, nothing shipped
        assert executor.shells == [probes.gpu_deploy()]
    assert all(engine.changes == [] for engine in engines.values())


def test_a_count_larger_than_every_nodes_gpus_is_refused_under_check_too(tmp_path, monkeypatch):
    service = "  train:\n    image: demo/train:12\n    gpus: 16\n"
    report, executors, engines = run(tmp_path, monkeypatch, service, {"m1": NO_GPU, "g1": HGX, "g2": HGX}, check=True)
    assert report.exit_code() == 2
    assert "service train asks for 16 GPUs, but host g1 has 8 GPUs" in report.hosts["g1"].steps[0].message
    assert all(e.shells == [probes.gpu_deploy()] for e in executors.values())


def test_placement_on_nodes_without_a_gpu_is_refused_on_the_manager(tmp_path, monkeypatch):
    service = ("  train:\n    image: demo/train:12\n    gpus: all\n    deploy:\n      placement:\n"
               "        constraints: [node.role==manager]\n")
    report, executors, _ = run(tmp_path, monkeypatch, service, {"m1": NO_GPU, "g1": HGX, "g2": HGX})
    assert report.exit_code() == 2
    step = report.hosts["m1"].steps[-1]
    assert step.status == "failed" and "can be placed only on m1 (its placement constraints), and none has a GPU" \
        in step.message
    assert set(executors) == {"m1"}  # the workers cannot run it: not contacted
    assert report.hosts["g1"].status == "skipped"


def test_a_fitting_image_heads_each_gpu_nodes_result_and_the_deploy_goes_on(tmp_path, monkeypatch):
    report, executors, engines = run(tmp_path, monkeypatch, "  train:\n    image: demo/train:12\n    gpus: all\n",
                                     {"m1": NO_GPU, "g1": HGX, "g2": HGX}, check=True)
    assert report.exit_code() == 0, {n: h.steps for n, h in report.hosts.items()}
    for node in ("g1", "g2"):
        step = report.hosts[node].steps[0]
        assert step.name == "gpu check train" and step.status == "ok"
        assert "needs CUDA 12.2; the host's driver 550.54.15 supports CUDA 12.4" in step.message
    assert not any(s.name.startswith("gpu check") for s in report.hosts["m1"].steps)  # no GPU, not placed there
    assert report.hosts["m1"].extra["plan"]  # the --check plan is still there


def test_each_gpu_brand_is_checked_as_the_toolkit_checks_each_visible_gpu(tmp_path, monkeypatch):
    """A forward-compatible image (CUDA 12.8 through cuda-compat on the R550 branch of data center GPUs) on a
    node whose GPU 1 is a GeForce: the toolkit evaluates brand= per GPU, so that GPU refuses the container."""
    from tests.unit.test_gpu_deploy_checks import UUIDS, _with_xml

    CONFIGS["demo/compat:12.8"] = {"config": {"Env": [
        "CUDA_VERSION=12.8.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.8 brand=nvidia,driver>=550,driver<551"]}}
    gpus = "".join(f'<gpu id="0000000{i}:18:00.0"><product_brand>{brand}</product_brand><uuid>{uuid}</uuid></gpu>'
                   for i, (uuid, brand) in enumerate(zip(UUIDS, ("NVIDIA", "GeForce"))))
    mixed = _with_xml(HGX, f"<nvidia_smi_log>{gpus}</nvidia_smi_log>")
    first = gpus.split('<gpu id="00000001')[0]
    only_nvidia = _with_xml(HGX, f"<nvidia_smi_log>{first}</nvidia_smi_log>")
    report, _, _ = run(tmp_path, monkeypatch, "  train:\n    image: demo/compat:12.8\n    gpus: all\n",
                       {"m1": NO_GPU, "g1": mixed, "g2": only_nvidia}, check=True)
    g1, g2 = report.hosts["g1"].steps[0], report.hosts["g2"].steps[0]
    assert g1.status == "failed" and "unsatisfied condition: cuda>=12.8" in g1.message
    assert g2.status == "ok" and "forward compatibility" in g2.message  # GPUs 2-7 have no brand: not read
