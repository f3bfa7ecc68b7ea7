"""`provision nvidia install` per host (the NVIDIA stage), driven through fan_out as the CLI does, with a
RecordingExecutor answering the facts script (captured outputs from tests/fixtures/facts) and the NVIDIA
probe: the exact commands, in order, for a fresh GPU host, a converged one (the second run changes
nothing), hosts it skips or refuses, and a failure midway."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provision.commands import apt, daemon_json, detached, nvidia
from provision.config.host_settings import NvidiaSettings
from provision.executor.fake import RecordingExecutor
from provision.facts import nvidia_host
from provision.facts.nvidia_host import NvidiaHostState
from provision.facts.script import FACTS_SCRIPT
from provision.operations import nvidia_install as op
from provision.workflows import nvidia as workflow
from tests.unit.workflow_support import MISSING, drive, freeze_lock, locked, script, sections

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "facts"
S = NvidiaSettings()
# the key and list are downloaded only when their recorded check is older than nvidia_repo_key_max_age (1 day);
# a real run records a matching download, --check records nothing
PROBE = nvidia_host.probe(S.nvidia_repo_url, apt.env_prefix(None), 86400, True)
CHECK_PROBE = nvidia_host.probe(S.nvidia_repo_url, apt.env_prefix(None), 86400, False)
FACTS_PATTERN = re.escape(FACTS_SCRIPT.splitlines()[0])
PROBE_PATTERN = re.escape("echo '@@provision-fact remote_list'")

GPU_HOST = "gpu-hgx8-documented.txt"  # Ubuntu, working driver, Docker running, no reboot pending
REBOOT_PENDING = "gpu-h100-pcie-1gpu-documented.txt"  # the same, with /var/run/reboot-required
NO_DOCKER = "gpu-no-driver-documented.txt"  # a GPU, but neither a driver nor Docker
CPU_HOST = "debian12-real-vm.txt"

FRESH = NvidiaHostState(remote_key_sha="k", remote_list_sha="l", daemon_json='{"log-driver": "json-file"}',
                        boot_marker="b1")
CONVERGED = NvidiaHostState(keyring_sha="k", remote_key_sha="k", list_sha="l", remote_list_sha="l", cdi_spec=True,
                            daemon_json='{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}',
                            packages={p: "1.17.8-1" for p in nvidia.TOOLKIT_PACKAGES}, boot_marker="b1")


@pytest.fixture(autouse=True)
def _frozen_lock(monkeypatch):
    freeze_lock(monkeypatch)


def probe_output(state: NvidiaHostState) -> str:
    """The NVIDIA probe's output for a host in `state` (nvidia_host.parse reads it back)."""
    return sections(
        packages="\n".join(f"{p}\t{v}\tii " for p, v in state.packages.items()),
        keyring=state.keyring_sha or MISSING,
        remote_key=state.remote_key_sha or (state.remote_error or "curl: (6) Could not resolve host", 6),
        list=state.list_sha or MISSING,
        remote_list=state.remote_list_sha or (state.remote_error or "curl: (6) Could not resolve host", 6),
        daemon_json=state.daemon_json if state.daemon_json is not None else MISSING,
        cdi="yes" if state.cdi_spec else "no",
        boot=state.boot_marker,
        dpkg_state="",
    )


def host(facts_file: str, *states: NvidiaHostState) -> RecordingExecutor:
    executor = RecordingExecutor("h1")
    executor.respond(FACTS_PATTERN, stdout=(FIXTURES / facts_file).read_text())
    if states:
        executor.respond_sequence(PROBE_PATTERN, *[probe_output(s) for s in states])
    return executor


def install(executor: RecordingExecutor, check: bool = False, **hostvars):
    return drive("nvidia install", workflow.install_work(check, "T", False), executor, **hostvars)


def toolkit_changes(state: NvidiaHostState = FRESH):
    """The toolkit changes a fresh GPU host gets, in order (repository, packages, runtime, CDI, restart)."""
    repo, packages, runtime = op.toolkit_repository(state, S), op.toolkit_packages(state, S), op.docker_runtime(state, S, "T")
    return [repo, packages, runtime, op.cdi_spec(state, True),
            op.docker_restart(True, True, daemon_json.backup_path("T"))]


def test_the_probe_renderer_is_read_back_as_the_state():
    for state in (FRESH, CONVERGED):
        assert nvidia_host.parse(probe_output(state)) == state


def test_a_fresh_gpu_host_gets_the_toolkit_runtime_cdi_and_one_restart_under_the_lock():
    ex = host(GPU_HOST, FRESH)
    result = install(ex)
    assert result.status == "changed", result.steps
    assert ex.shells == [FACTS_SCRIPT, PROBE, *locked("nvidia install", *[script(c) for c in toolkit_changes()])]
    changed = [(c.step, "changed") for c in toolkit_changes()]
    assert [(s.name, s.status) for s in result.steps] == [  # docker's cgroup driver unknown: no /dev/char remedy
        ("gpu driver", "ok"), ("lock", "ok"), *changed[:-1], ("gpu dev-char symlinks", "ok"), changed[-1]]


def test_the_second_run_on_the_converged_gpu_host_only_reads_facts_and_probes():
    ex = host(GPU_HOST, FRESH, CONVERGED)
    install(ex)
    first = len(ex.commands)
    result = install(ex)
    assert ex.shells[first:] == [FACTS_SCRIPT, PROBE]
    assert result.changed == 0 and result.status == "ok", result.steps


def test_a_host_without_a_gpu_is_skipped_after_the_facts_alone():
    ex = host(CPU_HOST)
    result = install(ex)
    assert ex.shells == [FACTS_SCRIPT]
    assert [(s.name, s.status) for s in result.steps] == [("gpu", "skipped")]


def test_a_gpu_host_without_docker_is_refused_after_the_facts_alone():
    ex = host(NO_DOCKER)
    result = install(ex)
    assert ex.shells == [FACTS_SCRIPT]
    assert result.status == "failed" and "Docker is not installed" in result.steps[-1].message


def test_a_pending_reboot_without_reboot_stops_before_any_change():
    ex = host(REBOOT_PENDING, FRESH)
    result = install(ex)
    assert ex.shells == [FACTS_SCRIPT]
    assert result.steps[-1].name == "reboot" and result.steps[-1].status == "skipped"
    assert result.extra["reboot_required"] is True


def test_an_unreachable_nvidia_repository_is_refused_before_any_change():
    ex = host(GPU_HOST, NvidiaHostState(remote_error="curl: (6) Could not resolve host: nvidia.github.io",
                                        boot_marker="b1"))
    result = install(ex)
    assert ex.shells == [FACTS_SCRIPT, PROBE]  # no lock, nothing changed
    failed = [s for s in result.steps if s.status == "failed"]
    assert [s.name for s in failed] == ["gpu toolkit repository"]
    assert "Could not resolve host" in failed[0].message and "nothing was changed" in failed[0].message


def test_a_failed_toolkit_install_stops_the_host_and_releases_the_lock():
    ex = host(GPU_HOST, FRESH)
    repo, packages, *_ = toolkit_changes()
    ex.respond(re.escape(detached.unit_name("T", packages.step)), exit_code=100,
               stderr="E: Unable to locate package nvidia-container-toolkit\n")
    result = install(ex)
    undo = ["\n".join(packages.undo)] if packages.undo else []
    assert ex.shells == [FACTS_SCRIPT, PROBE, *locked("nvidia install", script(repo), script(packages), *undo,
                                                      result="failed")]  # no runtime, CDI or restart
    assert result.steps[-1].name == "gpu toolkit packages" and result.steps[-1].status == "failed"
    assert "Unable to locate package nvidia-container-toolkit (exit 100)" in result.steps[-1].message


def test_check_mode_reads_facts_and_probes_and_plans_every_change():
    ex = host(GPU_HOST, FRESH)
    result = install(ex, check=True)
    assert ex.shells == [FACTS_SCRIPT, CHECK_PROBE]
    assert [p["step"] for p in result.extra["plan"]] == [c.step for c in toolkit_changes()]


def test_refresh_downloads_the_toolkit_key_and_list_whatever_the_record_says():
    ex = host(GPU_HOST, CONVERGED)
    drive("nvidia install", workflow.install_work(False, "T", False, refresh=True), ex)
    assert ex.shells == [FACTS_SCRIPT, nvidia_host.probe(S.nvidia_repo_url, apt.env_prefix(None), 0, True)]


def test_the_probe_output_says_when_the_toolkit_repository_was_checked():
    from tests.unit.workflow_support import sections

    state = nvidia_host.parse(sections(keyring="k", list="l", remote_key="cached k 1000 8200",
                                       remote_list="fetched 8200\nl"))
    assert (state.remote_key_sha, state.remote_list_sha, state.checked_at, state.host_now) == ("k", "l", 1000, 8200)
    assert op.toolkit_repository(state, S).reason.endswith("up to date (checked 2h ago)")
    plain = nvidia_host.parse(sections(keyring="k", list="l", remote_key="k", remote_list="l"))
    assert plain.checked_at is None and op.toolkit_repository(plain, S).reason.endswith("up to date")
