"""The Docker install workflow's sequencing, with the recording executor and the probe replaced by a state:
a refusal known before any change with conflicting packages (nothing run, no lock), a host locked by
another run (refused before any change), an interrupted dpkg (repaired first), a host gone before the lock
is released, cloud-init still running past cloud_init_timeout (refused before any change). The fresh and converged hosts, refusals and failures midway, driven through fan_out with the
real probe and exact commands, are in test_workflow_docker.py."""

from __future__ import annotations

import json

import pytest

from provision.commands import deploy_host, detached
from provision.config.connection import connection_settings
from provision.errors import HostError
from provision.executor.fake import RecordingExecutor
from provision.facts.dpkg_state import DpkgState
from provision.workflows import docker
from provision.workflows.targets import Target
from tests.unit.test_docker_install_plan import configured, fresh


def target(**hostvars) -> Target:
    return Target("h1", connection_settings("h1", {"ansible_host": "127.0.0.1", **hostvars}), hostvars)


def run(monkeypatch, states, executor=None, **hostvars):
    """Run install_work with probe_state answering `states` in turn; returns (result, executor)."""
    states = list(states)
    monkeypatch.setattr(docker, "probe_state", lambda ex, settings, *a, **kw: states.pop(0))
    executor = executor or RecordingExecutor("h1")
    result = docker.install_work(False, "T")(target(**hostvars), executor)
    return result, executor


def kinds(executor: RecordingExecutor) -> list[str]:
    """Each recorded command, named by what it is."""
    names = []
    for shell, _ in executor.commands:
        if shell.startswith("waited=0"):
            names.append("wait dpkg lock")
        elif deploy_host.LOCK_DIR in shell and "mkdir" in shell and "holder" in shell and "grep" not in shell:
            names.append("take lock")
        elif "audit.log" in shell:
            names.append("audit")
        elif "grep -qF" in shell and deploy_host.LOCK_DIR in shell:
            names.append("release lock")
        elif "systemd-run" in shell:
            names.append("detached: " + shell.split("--unit=")[1].split()[0])
        elif shell.startswith("set -e"):
            names.append("change: " + shell.splitlines()[1][:40].strip())
        else:
            names.append(shell[:40].strip())
    return names


def test_a_refusal_known_before_any_change_runs_nothing_and_takes_no_lock(monkeypatch):
    ex = RecordingExecutor("h1")
    ex.respond(r"curl -fsSL --max-time 60 .*/Packages", stdout="5:27.3.1-1~debian.12~bookworm\n")
    result, ex = run(monkeypatch, [configured(packages={"docker.io": "20.10", "containerd": "1.6"}, keyring_sha=None,
                                              sources=None)], executor=ex, docker_version="9.9.9")
    assert result.status == "failed"
    assert [s.name for s in result.steps if s.status == "failed"] == ["docker packages"]
    assert "nothing was changed" in result.steps[-1].message
    assert kinds(ex) == ["env DEBIAN_FRONTEND=noninteractive curl"]  # read the index, changed nothing


def test_a_host_locked_by_another_run_is_refused_before_any_change(monkeypatch):
    ex = RecordingExecutor("h1")
    holder = {"by": "ana@laptop", "pid": 1, "action": "deploy", "stack": "ml", "since": "2026-12-01T10:00:00+0000"}
    ex.respond(r"if mkdir /var/lib/provision/deploy.lock", stdout=json.dumps(holder) + "\n",
               exit_code=deploy_host.LOCK_HELD_RC)
    with pytest.raises(HostError, match="another run holds the host lock .*ana@laptop .*provision unlock -l h1"):
        run(monkeypatch, [fresh()], executor=ex)
    assert kinds(ex) == ["wait dpkg lock", "take lock"]  # nothing after the refused lock


def test_an_interrupted_dpkg_is_repaired_first_then_the_host_is_probed_again(monkeypatch):
    broken = configured(dpkg=DpkgState(interrupted=True, units=["provision-apt-S-docker-packages.service"]))
    result, ex = run(monkeypatch, [broken, configured()])
    assert kinds(ex) == ["take lock", "detached: provision-apt-T-dpkg-state", "audit", "release lock"]
    assert result.steps[2].name == "dpkg state" and result.steps[2].status == "changed"
    assert "provision-apt-S-docker-packages.service" in result.steps[2].message
    script = ex.commands[1][0]
    assert detached.RUN_DIR in script


def test_a_host_gone_before_the_lock_is_released_keeps_the_report_and_says_the_lock_stays():
    from provision.errors import HostUnreachable
    from provision.report import HostResult, StepResult
    from provision.workflows.host_lock import HostLock

    class GoneAfterTaking(RecordingExecutor):
        def run(self, command, *, become=False, timeout=None):
            if len(self.commands) >= 1:
                self.commands.append((str(command), become))
                raise HostUnreachable("connection refused by 127.0.0.1:2222")
            return super().run(command, become=become, timeout=timeout)

    result = HostResult("h1")
    with HostLock(GoneAfterTaking("h1"), "nvidia install", result=result, lazy=True) as lock:
        lock.ensure()
        result.steps.append(StepResult("reboot", "failed", "the host did not come back within 10s"))
    assert [(s.name, s.status) for s in result.steps] == [("lock", "ok"), ("reboot", "failed"), ("lock", "failed")]
    assert "provision unlock -l h1" in result.steps[-1].message


def test_cloud_init_still_running_past_its_timeout_refuses_before_any_change(monkeypatch):
    ex = RecordingExecutor("h1")
    ex.respond_timeout(r"^timeout 5 cloud-init status --wait$", stdout="status: running\n")
    result, ex = run(monkeypatch, [fresh(cloud_init="running")], executor=ex, cloud_init_timeout=5)
    assert result.status == "failed"
    assert (result.steps[-1].name, result.steps[-1].message) == ("cloud-init", "cloud-init still running after 5s")
    assert kinds(ex) == ["timeout 5 cloud-init status --wait"]  # nothing changed, no lock taken
    assert ex.timeouts == [65]  # the executor waits longer than cloud-init's own limit
