"""What the operator sees, as text (issue 13): a representative report (a changed GPU host, an ok CPU host, a
failed host, an unreachable one and a skipped one) rendered to a fixed-width console without colour, at 80
and 120 columns — the live display's final frame, the step lines, the recap, the facts and status tables —
compared with the reviewed expected text under tests/fixtures/render/.

To regenerate after an intended change: PROVISION_UPDATE_SNAPSHOTS=1 pytest tests/unit/test_render_snapshots.py,
then review the diff of tests/fixtures/render/ before committing it."""

from __future__ import annotations

import io
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from rich.console import Console

from provision.cli import facts_cmds, ops_cmds, render
from provision.progress import Update
from provision.report import HostResult, Report, StepResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "render"
UPDATE = os.environ.get("PROVISION_UPDATE_SNAPSHOTS") == "1"
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
GPU_UUID = "GPU-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
DOCKER_VERSIONS = ("docker-ce 5:27.3.1-1~debian.12~bookworm, docker-ce-cli 5:27.3.1-1~debian.12~bookworm, "
                   "containerd.io 1.7.22-1, docker-buildx-plugin 0.17.1-1~debian.12~bookworm, "
                   "docker-compose-plugin 2.29.7-1~debian.12~bookworm")
HELLO = '"Hello from Docker!"'


def _facts(gpus: int, docker: bool = True) -> dict:
    return {"os": {"id": "debian", "version_id": "12", "codename": "bookworm",
                   "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
            "arch": "amd64", "kernel": "6.1.0-26-cloud-amd64", "cpus": 16 if gpus else 4,
            "memory_mib": 257000 if gpus else 7820, "systemd": True,
            "docker": {"version": "27.3.1", "running": True} if docker else None,
            "gpus": [{"index": i, "name": "NVIDIA H100 80GB HBM3", "uuid": GPU_UUID, "memory_mib": 81559}
                     for i in range(gpus)],
            "nvidia": {"driver": "550.54.15", "cuda": "12.4"} if gpus else None}


def bootstrap_report() -> Report:
    report = Report("bootstrap")
    report.add(HostResult("gpu1", steps=[
        StepResult("host key", "ok", "recorded gpu1's ssh-ed25519 key SHA256:Xq3…Zf0 (first use)"),
        StepResult("gather facts", "ok", "debian 12, amd64, no docker, 1 GPU(s)", 0.4),
        StepResult("docker repository", "changed", "key https://download.docker.com/linux/debian/gpg → "
                   "/etc/apt/keyrings/docker.asc; /etc/apt/sources.list.d/docker.list", 2.1),
        StepResult("docker packages", "changed", "installing docker-ce, docker-ce-cli, containerd.io, "
                   "docker-buildx-plugin, docker-compose-plugin → " + DOCKER_VERSIONS, 48.2),
        StepResult("docker service", "ok", "docker enabled and running", 0.2),
        StepResult("gpu toolkit packages", "changed", "installing nvidia-container-toolkit=1.17.8-1 → "
                   "nvidia-container-toolkit 1.17.8-1", 12.0),
        StepResult("docker version", "ok", "27.3.1", 0.3),
        StepResult("hello-world", "ok", HELLO, 3.2),
        StepResult("gpu host nvidia-smi", "ok", "1 GPU(s) (0: NVIDIA H100 80GB HBM3 81559 MiB), driver 550.54.15, "
                   "CUDA 12.4"),
        StepResult("gpu container", "ok", f"1 GPU(s), UUIDs match the host ({GPU_UUID}) in "
                   "nvidia/cuda:12.4.1-base-ubuntu22.04", 5.5),
    ], extra={"facts": _facts(1)}))
    report.add(HostResult("cpu2", steps=[
        StepResult("gather facts", "ok", "debian 12, amd64, docker 27.3.1", 0.3),
        StepResult("docker packages", "ok", "docker-ce 5:27.3.1-1~debian.12~bookworm installed"),
        StepResult("gpu", "skipped", "no NVIDIA GPU (lspci lists none)"),
        StepResult("docker version", "ok", "27.3.1", 0.2),
        StepResult("hello-world", "ok", HELLO, 1.9),
    ], extra={"facts": _facts(0)}))
    report.add(HostResult("web3", steps=[
        StepResult("gather facts", "ok", "debian 12, amd64, no docker", 0.3),
        StepResult("docker packages", "failed", "E: Unable to locate package docker-ce (exit 100); "
                   "partial changes undone", 6.0),
    ], extra={"facts": _facts(0, docker=False)}))
    report.add(HostResult("db4", unreachable="ssh: connect to 10.0.0.14 port 22: timed out after 10s"))
    report.add(HostResult("old5", skipped="not started: interrupted by the operator"))
    return report


def status_report() -> Report:
    report = Report("status")
    row = {"stack": "ml", "replica": 1, "role": "serving", "health": "-"}
    report.add(HostResult("gpu1", steps=[StepResult("status", "ok", "3 containers")], extra={"services": [
        dict(row, service="vectordb", image="ghcr.io/chroma-core/chroma:0.5.5", state="running", health="healthy",
             ports="0.0.0.0:8000->8000/tcp, [::]:8000->8000/tcp", started="2026-12-01T11:57:00Z"),
        dict(row, service="app", image="registry.example.com:5000/team/provision-ml/app:1", state="running",
             ports="127.0.0.1:8080->8080/tcp, 9000/udp", started="2026-12-01T09:30:12.123456789Z"),
        dict(row, service="gpu-worker", image="nvidia/cuda:12.4.1-base-ubuntu22.04", state="exited",
             role="previous", ports="", started="2026-11-28T10:00:00Z"),
    ]}))
    report.add(HostResult("cpu2", steps=[StepResult("status", "ok", "no containers")], extra={"services": []}))
    return report


def console(width: int, terminal: bool = True) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system=None, highlight=False,
                   soft_wrap=False, _environ={})


def final_frame(c: Console, report: Report) -> None:
    clock = iter(range(0, 1000, 7))
    progress = render.LiveProgress(c, "bootstrap", len(report.hosts), names=list(report.hosts),
                                   clock=lambda: float(next(clock)))
    progress.live_mode = True  # as on a terminal: the frame, not plain lines
    for name, result in report.hosts.items():
        if result.skipped is None:
            progress.host_started(name)
        progress.host_finished(result)
    c.print(progress.frame())


def running_frame(c: Console) -> None:
    """The live display mid-run: apt's packages, a pull with its rate and ETA, shipping without a total, a
    health wait's attempts, a reboot, and a finished host."""
    now = [0.0]
    progress = render.LiveProgress(c, "deploy", 6, names=["gpu1", "cpu2", "cpu3", "web3", "db4", "old5"],
                                   clock=lambda: now[0])
    progress.live_mode = True
    for name in ("gpu1", "cpu2", "cpu3", "web3", "db4", "old5"):
        progress.host_started(name)
    progress.step("gpu1", "docker packages")
    progress.update("gpu1", Update(12, 40, "packages", "docker-ce"))
    progress.step("cpu2", "image app")
    progress.update("cpu2", Update(10 * 2**20, 120 * 2**20, "B", "pulling"))
    progress.step("cpu3", "image vectordb")
    progress.update("cpu3", Update(2 * 2**20, None, "B", "shipping"))  # the engine has not said how much yet
    progress.step("web3", "rollout app")
    progress.update("web3", Update(6.2, 60, "s", "check 12 of 121: health starting"))
    progress.step("db4", "reboot")
    progress.update("db4", Update(31, 600, "s", "waiting for a new boot"))
    now[0] = 4.0
    progress.update("cpu2", Update(30 * 2**20, 120 * 2**20, "B", "pulling"))
    progress.update("cpu3", Update(10 * 2**20, 26 * 2**20, "B", "shipping"))
    progress.host_finished(HostResult("old5", steps=[StepResult("hello-world", "ok", HELLO, 1.9)]))
    c.print(progress.frame())


CASES = {
    "live_running_frame": running_frame,
    "live_final_frame": lambda c: final_frame(c, bootstrap_report()),
    "steps_and_recap": lambda c: render.recap(c, bootstrap_report()),
    "steps_and_recap_verbose": lambda c: render.recap(c, bootstrap_report(), verbose=1),
    "facts": lambda c: facts_cmds.render_facts(c, bootstrap_report()),
    "status": lambda c: ops_cmds.render_status(c, status_report(), now=NOW),
}


def _check(name: str, shown: str) -> None:
    path = FIXTURES / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(shown)
    assert path.exists(), f"no snapshot {path}: run with PROVISION_UPDATE_SNAPSHOTS=1 and review it"
    assert shown == path.read_text(), f"{name} differs from {path} (PROVISION_UPDATE_SNAPSHOTS=1 regenerates)"


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_output_matches_the_reviewed_snapshot(case: str, width: int) -> None:
    c = console(width)
    CASES[case](c)
    shown = c.file.getvalue()
    assert all(len(line) <= width for line in shown.splitlines()), shown
    _check(f"{case}-{width}", shown)


def test_plain_output_is_never_cut_nor_wrapped() -> None:
    """Not a terminal (CI logs, pipes): plain lines, no cursor control, the full text on one line each."""
    c = console(80, terminal=False)
    report = bootstrap_report()
    progress = render.LiveProgress(c, "bootstrap", len(report.hosts), names=list(report.hosts), clock=lambda: 0.0)
    with progress:
        progress.host_started("gpu1")
        progress.step("gpu1", "docker packages")
        progress.update("gpu1", Update(3, 5, "", "packages"))
        for result in report.hosts.values():
            progress.host_finished(result)
    render.recap(c, report)
    shown = c.file.getvalue()
    assert "\x1b" not in shown
    assert "gpu1: docker packages\n" in shown
    assert re.search(r"\n  changed  docker packages +installing docker-ce, docker-ce-cli, containerd.io, "
                     r"docker-buildx-plugin, docker-compose-plugin → " + re.escape(DOCKER_VERSIONS) + "\n", shown)
    assert f"({GPU_UUID}) in nvidia/cuda:12.4.1-base-ubuntu22.04" in shown
    _check("plain-80", shown)


def test_no_color_is_honoured(monkeypatch) -> None:
    """Colours carry the outcome only, and NO_COLOR turns them off (rich reads it when the console is made)."""
    report = bootstrap_report()
    colour = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="truecolor", _environ={})
    render.recap(colour, report)
    assert "\x1b[31m" in colour.file.getvalue() or "\x1b[38;5;1m" in colour.file.getvalue() \
        or "\x1b[91m" in colour.file.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    made = render.console_for(False)
    assert made.no_color
    plain = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="truecolor",
                    _environ={"NO_COLOR": "1"})
    render.recap(plain, report)
    shown = plain.file.getvalue()
    assert "failed" in shown and not any(f"\x1b[{code}m" in shown for code in (31, 32, 33, 36, 91, 92, 93, 96))
    assert "38;" not in shown


@pytest.mark.parametrize(("update", "rate", "shown"), [
    (Update(12 * 1024 * 1024, None, "B", "shipping"), 3.1 * 1024 * 1024, "shipping, 12.0 MiB, 3.1 MiB/s"),
    (Update(10 * 1024 * 1024, 40 * 1024 * 1024, "B", "pull"), 1024 * 1024, "pull, 10.0/40.0 MiB, 1.0 MiB/s, ETA 30s"),
    (Update(12.4, 60, "s", "check 3 of 121: health starting"), None, "check 3 of 121: health starting, 12s/60s"),
    (Update(11 * 2**20, 10 * 2**20, "B", "shipping"), 2**20, "shipping, 11.0 MiB, 1.0 MiB/s"),  # framing > layers
    (Update(3, 5, "", "packages"), None, "packages, 3/5"),
    (Update(12, 40, "packages", "docker-ce"), None, "12/40 packages, docker-ce"),
    (Update(4, 13, "files", "downloading"), None, "4/13 files, downloading"),
    (Update(900 * 2**10, 3 * 2**20, "B", "pulling"), 2**10, "pulling, 900.0 KiB/3.0 MiB, 1.0 KiB/s, ETA 36m12s"),
    (Update(None, None, "", "waiting for SSH"), None, "waiting for SSH"),
])
def test_progress_updates_in_words(update, rate, shown) -> None:
    assert render.describe_update(update, rate) == shown


@pytest.mark.parametrize(("value", "shown"), [
    ("0.0.0.0:8000->8000/tcp, [::]:8000->8000/tcp", "8000→8000"),
    ("127.0.0.1:8080->8080/tcp, 9000/udp", "127.0.0.1:8080→8080, 9000/udp"),
    ("[::1]:53->53/udp", "[::1]:53→53/udp"),
    ("", "-"),
])
def test_ports_short_form(value, shown) -> None:
    assert render.short_ports(value) == shown


def test_short_forms() -> None:
    assert render.short_os(_facts(0)["os"]) == "Debian 12"
    assert render.short_os({"id": "ubuntu", "version_id": "22.04", "pretty_name": "Ubuntu 22.04.4 LTS"}) == "Ubuntu 22.04"
    assert render.short_nvidia({"driver": "550.54.15", "cuda": "12.4"}) == "550.54 / CUDA 12.4"
    assert render.short_image("ghcr.io/chroma-core/chroma:0.5.5", 20) == "…a-core/chroma:0.5.5"
    assert render.short_image("busybox:1.36", 20) == "busybox:1.36"
    assert render.relative_time("2026-12-01T11:57:00Z", NOW) == "3m ago"
    assert render.relative_time("2026-11-28T10:00:00Z", NOW) == "3d ago"
    assert render.relative_time("-", NOW) == "-"


def test_verbose_shows_the_commands_and_very_verbose_their_output() -> None:
    report = bootstrap_report()
    report.hosts["cpu2"].commands.append({"step": "hello-world", "commands": ["docker run --rm -- hello-world"],
                                          "output": "\nHello from Docker!\nThis message shows that your installation"})
    for terminal in (True, False):
        shown = {}
        for verbose in (0, 1, 2):
            c = console(120, terminal=terminal)
            render.step_lines(c, report, verbose)
            shown[verbose] = c.file.getvalue()
        assert "$ docker run" not in shown[0]
        assert "$ docker run --rm -- hello-world" in shown[1] and "| Hello from Docker!" not in shown[1]
        assert "| Hello from Docker!" in shown[2] and "| This message shows that your installation" in shown[2]
    assert "commands" not in report.hosts["cpu2"].to_dict()  # never in --json


def test_plain_output_says_a_long_steps_progress_at_most_every_30s() -> None:
    """Not a terminal: apt's packages, a pull's bytes... are a line per host at most every
    NON_TERMINAL_UPDATE_EVERY_S, never one per poll or per pull event."""
    c = console(80, terminal=False)
    now = [100.0]
    progress = render.LiveProgress(c, "bootstrap", 1, names=["gpu1"], clock=lambda: now[0])
    with progress:
        progress.host_started("gpu1")
        progress.step("gpu1", "docker packages")
        for done in range(40):  # a poll every 2s
            progress.update("gpu1", Update(done, 40, "packages", f"pkg{done}"))
            now[0] += 2
    shown = c.file.getvalue()
    assert "\x1b" not in shown
    assert shown.splitlines() == ["gpu1: docker packages", "gpu1: docker packages: 0/40 packages, pkg0",
                                  "gpu1: docker packages: 15/40 packages, pkg15",
                                  "gpu1: docker packages: 30/40 packages, pkg30"]
