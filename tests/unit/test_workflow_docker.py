"""`provision docker install` per host, driven through fan_out as the CLI does, with a RecordingExecutor
answering the real probe: the exact commands, in order, for a fresh host, a converged host (the second
run changes nothing), refusals (unsupported OS, unknown docker_version) and a failure midway.

(tests/unit/test_install_workflow.py covers the lock's placement, a held lock and dpkg repair with the
probe replaced by a state.)"""

from __future__ import annotations

import re

import pytest

from provision.commands import apt, detached, docker_repo, dpkg, host_health
from provision.config.host_settings import DockerSettings
from provision.executor.fake import RecordingExecutor
from provision.facts.docker_host import probe
from provision.operations import docker_install as op
from provision.operations.base import Change
from provision.workflows import docker
from tests.unit.test_docker_install_plan import configured, fresh
from tests.unit.workflow_support import audit, docker_probe_output, drive, freeze_lock, locked, release, script

S = DockerSettings()
KEY_URL = f"{docker_repo.DEFAULT_BASE}/{docker_repo.DISTRO_PLACEHOLDER}/gpg"
# the key is downloaded only when its recorded check is older than docker_repo_key_max_age (1 day); a real run
# records a matching download, --check records nothing, --refresh downloads whatever the record says
PROBE = probe(KEY_URL, apt.env_prefix(None), [], 86400, True)
CHECK_PROBE = probe(KEY_URL, apt.env_prefix(None), [], 86400, False)
REFRESH_PROBE = probe(KEY_URL, apt.env_prefix(None), [], 0, True)
PROBE_PATTERN = re.escape("echo '@@provision-fact stale'")  # the Docker probe's own section

VERSIONS_QUERY = dpkg.versions(docker_repo.PACKAGES)


@pytest.fixture(autouse=True)
def _frozen_lock(monkeypatch):
    freeze_lock(monkeypatch)


def host(*states, name: str = "h1") -> RecordingExecutor:
    """A host whose Docker probe sees `states` in turn (the last one repeats)."""
    executor = RecordingExecutor(name)
    executor.respond_sequence(PROBE_PATTERN, *[docker_probe_output(s) for s in states])
    executor.respond(re.escape(VERSIONS_QUERY), stdout="docker-ce 5:27.3.1-1~debian.12~bookworm\n")
    return executor


def install(executor: RecordingExecutor, **hostvars):
    return drive("docker install", docker.install_work(False, "T"), executor, **hostvars)


def fresh_host_changes(state=None) -> list[Change]:
    """What a fresh host gets, in order: repository, daemon.json, packages (then the versions query), service."""
    state = state or fresh()
    return [op.repository(state, S, "T"), op.daemon_config_change(state, S, "T"), op.packages(state, S, None)]


def test_a_fresh_host_gets_every_step_in_order_under_the_lock():
    ex = host(fresh())
    result = install(ex)
    assert result.status == "changed", result.steps
    repo, config, packages = fresh_host_changes()
    service = op.service(fresh(), config_changed=True, engine_installed=True, stamp="T")
    assert ex.shells == [PROBE, host_health.wait_dpkg_lock(S.apt_lock_timeout),
                         *locked("docker install", script(repo), script(config), script(packages), VERSIONS_QUERY,
                                 script(service))]
    assert all(become for _, become in ex.commands)
    assert [(s.name, s.status) for s in result.steps] == [
        ("preflight", "ok"), ("dpkg lock", "ok"), ("conflicting packages", "ok"), ("lock", "ok"),
        ("docker repository", "changed"), ("daemon.json", "changed"), ("docker packages", "changed"),
        ("hold", "ok"), ("docker users", "ok"), ("docker service", "changed")]
    assert "docker-ce 5:27.3.1" in result.steps[6].message  # the versions that landed


def test_the_second_run_on_the_converged_host_only_probes():
    ex = host(fresh(), configured())
    install(ex)
    first = len(ex.commands)
    result = install(ex)
    assert ex.shells[first:] == [PROBE]  # no dpkg lock wait, no host lock, no change
    assert result.changed == 0 and result.status == "ok", result.steps


def test_the_no_op_with_a_recent_key_check_is_one_probe_that_says_when_the_key_was_checked():
    ex = host(configured(remote_key_sha=None, key_cached=True, key_checked_at=1000, host_now=1000 + 3 * 3600 + 5))
    result = install(ex)
    assert ex.shells == [PROBE]
    assert result.changed == 0 and result.status == "ok", result.steps
    repo = next(s for s in result.steps if s.name == "docker repository")
    assert repo.message.endswith("up to date (key checked 3h ago)"), repo.message


def test_refresh_downloads_the_key_whatever_the_record_says_and_a_fetched_key_reads_checked_now():
    ex = host(configured(host_now=5000, key_checked_at=5000))
    result = drive("docker install", docker.install_work(False, "T", refresh=True), ex)
    assert ex.shells == [REFRESH_PROBE]
    repo = next(s for s in result.steps if s.name == "docker repository")
    assert repo.message.endswith("(key checked now)"), repo.message


def test_docker_repo_key_max_age_reaches_the_probe_and_zero_means_every_run():
    ex = host(configured())
    install(ex, docker_repo_key_max_age="12h")
    assert ex.shells == [probe(KEY_URL, apt.env_prefix(None), [], 12 * 3600, True)]
    ex = host(configured())
    install(ex, docker_repo_key_max_age=0)
    assert ex.shells == [REFRESH_PROBE]


def test_a_replaced_key_is_recorded_as_checked_after_apt_update():
    state = fresh(host_now=7000, key_checked_at=7000)
    repo = op.repository(state, S, "T")
    record = docker_repo.key_check_record(f"{docker_repo.DEFAULT_BASE}/debian/gpg", state.remote_key_sha, 7000)
    assert repo.commands[-1] == record and repo.commands[-2] == apt.update(S.apt_lock_timeout, S.proxy)


def test_an_unsupported_os_is_refused_after_the_probe_alone():
    ex = host(fresh(os_id="ubuntu", version_id="23.10", codename="mantic"))
    result = install(ex)
    assert ex.shells == [PROBE]
    assert result.status == "failed"
    assert result.steps[-1].name == "preflight" and "ubuntu 23.10 is not supported" in result.steps[-1].message


def test_an_unknown_docker_version_is_refused_after_reading_the_index_before_any_change():
    ex = host(fresh())
    index = docker_repo.index_versions(docker_repo.repo_url("debian"), "bookworm", "amd64", apt.env_prefix(None))
    ex.respond(re.escape(index), stdout="5:27.3.1-1~debian.12~bookworm\n5:20.10.24-1~debian.12~bookworm\n")
    result = install(ex, docker_version="9.9.9")
    assert ex.shells == [PROBE, index]  # no lock taken, nothing changed
    assert result.status == "failed"
    failed = [s for s in result.steps if s.status == "failed"]
    assert [s.name for s in failed] == ["docker packages"]
    assert "9.9.9" in failed[0].message and "nothing was changed" in failed[0].message


def test_a_failed_package_step_stops_the_host_and_the_lock_is_released_with_a_failed_audit():
    ex = host(fresh())
    repo, config, packages = fresh_host_changes()
    ex.respond(re.escape(detached.unit_name("T", "docker packages")), exit_code=100,
               stderr="E: Unable to locate package docker-ce\n")
    result = install(ex)
    undo = ["\n".join(packages.undo)] if packages.undo else []
    assert ex.shells == [PROBE, host_health.wait_dpkg_lock(S.apt_lock_timeout),
                         *locked("docker install", script(repo), script(config), script(packages), *undo,
                                 result="failed")]  # no versions query, no service step
    assert result.status == "failed"
    assert [(s.name, s.status) for s in result.steps][-1] == ("docker packages", "failed")
    assert "E: Unable to locate package docker-ce (exit 100)" in result.steps[-1].message


def test_a_failed_repository_step_is_undone_and_nothing_after_it_runs():
    ex = host(fresh())
    repo = fresh_host_changes()[0]
    ex.respond(r"^set -e\n.*" + re.escape(docker_repo.KEYRING), exit_code=100,
               stderr="W: GPG error: NO_PUBKEY 7EA0A9C3F273FCD8\nE: The repository is not signed.\n")
    result = install(ex)
    assert repo.undo  # a failed apt-get update leaves no repository behind
    assert ex.shells == [PROBE, host_health.wait_dpkg_lock(S.apt_lock_timeout),
                         *locked("docker install", script(repo), "\n".join(repo.undo), result="failed")]
    assert result.steps[-1].name == "docker repository" and result.steps[-1].status == "failed"
    assert result.steps[-1].message.endswith("(exit 100); partial changes undone")


def test_check_mode_plans_but_runs_no_change_and_takes_no_lock():
    ex = host(fresh())
    result = drive("docker install", docker.install_work(True, "T"), ex)
    assert ex.shells[0] == CHECK_PROBE
    assert not any(shell.startswith("set -e") or "deploy.lock" in shell for shell in ex.shells)
    assert [p["step"] for p in result.extra["plan"]] == ["docker repository", "daemon.json", "docker packages",
                                                         "docker service"]


def test_check_mode_costs_the_probe_alone_and_says_only_what_it_would_do():
    ex = host(fresh())
    ex.respond(re.escape(VERSIONS_QUERY), stdout="")
    result = drive("docker install", docker.install_work(True, "T"), ex)
    assert ex.shells == [CHECK_PROBE]
    packages = next(s for s in result.steps if s.name == "docker packages")
    assert not packages.message.rstrip().endswith("→")


def test_a_host_gone_midway_is_unreachable_and_the_report_names_the_step():
    from provision.errors import HostUnreachable

    class Drops(RecordingExecutor):
        def run(self, command, *, become=False, timeout=None):
            out = super().run(command, become=become, timeout=timeout)
            if detached.unit_name("T", "docker packages") in self.commands[-1][0]:
                raise HostUnreachable("connection reset by 127.0.0.1:22")
            return out

    ex = Drops("h1")
    ex.respond_sequence(PROBE_PATTERN, docker_probe_output(fresh()))
    result = install(ex)
    assert result.status == "unreachable"
    assert "step 'docker packages'" in result.unreachable
    assert ex.shells[-1] == release()  # the lock's release is still attempted (here it answers)
    assert ex.shells[-2] == audit("docker install", "failed")
