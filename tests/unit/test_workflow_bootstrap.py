"""`provision bootstrap` per host (facts → Docker install → NVIDIA stage → verify), driven through fan_out as
the CLI does, with a RecordingExecutor answering the facts script, the Docker and NVIDIA probes and the
verify checks: the exact commands, in order, for a fresh CPU host, a converged one (the second run changes
nothing), a converged GPU host, refusals, and failures midway (later stages never run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provision.commands import apt, detached, docker_engine, docker_repo, dpkg, host_health, nvidia
from provision.config.host_settings import DockerSettings, NvidiaSettings
from provision.executor.base import CommandResult
from provision.executor.fake import RecordingExecutor
from provision.facts import nvidia_host
from provision.facts.docker_host import probe
from provision.facts.script import FACTS_SCRIPT
from provision.operations import docker_install as op
from provision.workflows import bootstrap, docker
from tests.unit.test_docker_install_plan import configured, fresh
from tests.unit.test_workflow_nvidia import CONVERGED as NV_CONVERGED
from tests.unit.test_workflow_nvidia import probe_output as nvidia_probe_output
from tests.unit.workflow_support import docker_probe_output, drive, freeze_lock, locked, script

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "facts"
CPU_HOST = "debian12-sandbox-host-real.txt"  # Debian 12, no Docker, no GPU
GPU_HOST = "gpu-hgx8-documented.txt"
D, N = DockerSettings(), NvidiaSettings()
DOCKER_PROBE = probe(f"{docker_repo.DEFAULT_BASE}/{docker_repo.DISTRO_PLACEHOLDER}/gpg", apt.env_prefix(None), [], 86400, True)
NVIDIA_PROBE = nvidia_host.probe(N.nvidia_repo_url, apt.env_prefix(None), 86400, True)
VERSIONS_QUERY = dpkg.versions(docker_repo.PACKAGES)
# the Docker verify checks
DOCKER_VERSION = docker_engine.version()
DOCKER_INFO = docker_engine.info()
HELLO = docker_engine.hello(D.verify_hello_image)
VERIFY = [DOCKER_VERSION, DOCKER_INFO, HELLO]


@pytest.fixture(autouse=True)
def _frozen_lock(monkeypatch):
    freeze_lock(monkeypatch)


def host(facts_file: str, *docker_states, nvidia_states=()) -> RecordingExecutor:
    ex = RecordingExecutor("h1")
    ex.respond(re.escape(FACTS_SCRIPT.splitlines()[0]), stdout=(FIXTURES / facts_file).read_text())
    if docker_states:
        ex.respond_sequence(re.escape("echo '@@provision-fact stale'"),
                            *[docker_probe_output(s) for s in docker_states])
    if nvidia_states:
        ex.respond_sequence(re.escape("echo '@@provision-fact remote_list'"),
                            *[nvidia_probe_output(s) for s in nvidia_states])
    ex.respond(re.escape(VERSIONS_QUERY), stdout="docker-ce 5:27.3.1-1~debian.12~bookworm\n")
    ex.respond(re.escape(DOCKER_VERSION), stdout="client 27.3.1, server 27.3.1\n")
    ex.respond(re.escape(DOCKER_INFO), stdout="daemon reachable: 27.3.1, storage overlay2, cgroup 2\n")
    ex.respond(re.escape(HELLO), stdout="\nHello from Docker!\nThis message shows that your installation appears "
                                        "to be working correctly.\n")
    return ex


def run(executor: RecordingExecutor, check: bool = False):
    return drive("bootstrap", bootstrap.bootstrap_work(check, "T", False), executor)


def docker_install_commands() -> list[str]:
    """A fresh Debian host's Docker install (see test_workflow_docker)."""
    state = fresh()
    changes = [op.repository(state, D, "T"), op.daemon_config_change(state, D, "T"), op.packages(state, D, None)]
    service = op.service(state, config_changed=True, engine_installed=True, stamp="T")
    return [DOCKER_PROBE, host_health.wait_dpkg_lock(D.apt_lock_timeout),
            *locked("docker install", *[script(c) for c in changes], VERSIONS_QUERY, script(service))]


def test_a_fresh_cpu_host_facts_then_docker_install_then_the_gpu_skip_then_verify():
    ex = host(CPU_HOST, fresh())
    result = run(ex)
    assert result.status == "changed", result.steps
    assert ex.shells == [FACTS_SCRIPT, *docker_install_commands(), FACTS_SCRIPT, *VERIFY]
    names = [s.name for s in result.steps]
    assert names[0] == "gather facts" and names[-4:] == ["gpu", "docker version", "docker info", "hello-world"]
    assert result.steps[-4].status == "skipped"
    # what -v/-vv show (not in --json): each change's commands and each check's command, with their output
    ran = {entry["step"]: entry for entry in result.commands}
    assert ran["docker packages"]["commands"] and ran["hello-world"]["commands"] == [VERIFY[-1]]
    assert "Hello from Docker!" in ran["hello-world"]["output"]
    assert "commands" not in result.to_dict()


def test_the_second_run_on_the_converged_cpu_host_changes_nothing():
    ex = host(CPU_HOST, fresh(), configured())
    run(ex)
    first = len(ex.commands)
    result = run(ex)
    assert ex.shells[first:] == [FACTS_SCRIPT, DOCKER_PROBE, FACTS_SCRIPT, *VERIFY]
    assert result.changed == 0 and result.status == "ok", result.steps


def test_a_converged_gpu_host_is_verified_with_the_gpu_checks_last():
    ex = host(GPU_HOST, configured(), nvidia_states=[NV_CONVERGED])
    gpu_test = nvidia.gpu_test_command(N.verify_gpu_image)
    ex.respond(re.escape(gpu_test), exit_code=125, stderr="docker: Error response from daemon: could not select "
                                                           "device driver \"\" with capabilities: [[gpu]].\n")
    result = run(ex)
    assert ex.shells == [FACTS_SCRIPT, DOCKER_PROBE, FACTS_SCRIPT, NVIDIA_PROBE, *VERIFY, FACTS_SCRIPT, gpu_test]
    assert result.changed == 0
    assert [(s.name, s.status) for s in result.steps][-1] == ("gpu container", "failed")  # the last check failed


def test_facts_that_cannot_be_gathered_stop_the_host_at_once():
    ex = RecordingExecutor("h1")
    ex.respond(re.escape(FACTS_SCRIPT.splitlines()[0]), exit_code=1, stderr="sudo: a password is required\n")
    result = run(ex)
    assert ex.shells == [FACTS_SCRIPT]
    assert [(s.name, s.status) for s in result.steps] == [("gather facts", "failed")]


def test_a_refused_docker_install_stops_before_the_nvidia_stage_and_verify():
    ex = host(CPU_HOST, fresh(os_id="ubuntu", version_id="23.10", codename="mantic"))
    result = run(ex)
    assert ex.shells == [FACTS_SCRIPT, DOCKER_PROBE]
    assert result.status == "failed" and result.steps[-1].name == "preflight"


def test_a_failed_docker_step_stops_before_the_nvidia_stage_and_verify_and_releases_the_lock():
    ex = host(CPU_HOST, fresh())
    ex.respond(re.escape(detached.unit_name("T", "docker packages")), exit_code=100, stderr="E: broken\n")
    result = run(ex)
    assert ex.shells[-2:] == locked("docker install", result="failed")[-2:]  # audited as failed, released
    assert FACTS_SCRIPT not in ex.shells[1:] and DOCKER_VERSION not in ex.shells
    assert result.steps[-1].name == "docker packages" and result.steps[-1].status == "failed"


def test_a_failed_verify_check_stops_the_later_checks_and_asks_why():
    ex = host(CPU_HOST, configured())
    ex.respond_sequence(re.escape(DOCKER_VERSION), CommandResult("", 1,
                        stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n"))
    result = run(ex)
    assert ex.shells == [FACTS_SCRIPT, DOCKER_PROBE, FACTS_SCRIPT, DOCKER_VERSION, host_health.docker_units()]
    assert result.steps[-1].name == "docker version" and result.steps[-1].status == "failed"


def test_check_mode_stops_after_the_docker_plan():
    ex = host(CPU_HOST, fresh())
    result = run(ex, check=True)
    assert ex.shells[:2] == [FACTS_SCRIPT, probe(f"{docker_repo.DEFAULT_BASE}/{docker_repo.DISTRO_PLACEHOLDER}/gpg",
                                                 apt.env_prefix(None), [], 86400, False)]  # --check records nothing
    assert not any(s.startswith("set -e") or "deploy.lock" in s or s in VERIFY for s in ex.shells)
    assert [p["step"] for p in result.extra["plan"]][0] == "docker repository"


def test_verify_alone_runs_the_docker_checks_then_the_gpu_checks():
    ex = host(CPU_HOST)
    result = drive("verify", bootstrap.verify_all, ex)
    assert ex.shells == [*VERIFY, FACTS_SCRIPT]
    assert [s.name for s in result.steps] == ["docker version", "docker info", "hello-world", "gpu"]
    assert docker.verify_work  # the Docker half is docker.verify_work
