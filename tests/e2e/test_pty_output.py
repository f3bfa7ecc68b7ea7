"""What an operator sees on a terminal (issue 13): `provision bootstrap` then `provision deploy` under a
pseudo-terminal (stdlib `pty`), on a fleet of one CPU host and one SIMULATED GPU host (fake nvidia-smi;
there is no GPU here). The live display runs (cursor control on a terminal), and the screen it leaves
holds the evidence: hello-world's greeting, the GPU container's UUID match on the simulated GPU host,
and the bytes shipped; long steps show their progress on the way (apt's packages; a pull's bytes end in
its step line). One module-scoped fleet serves the tests, which run in file order (deploy needs the
Docker that bootstrap installs)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from provision_sandbox import fake_gpu
from tests.e2e.conftest import ROOT, start_fleet

pytestmark = pytest.mark.e2e

GPU_HOST, CPU_HOST = "sbx2", "sbx1"
COLUMNS, ROWS = 160, 50
# CSI (colours, cursor moves, erase) and the few other escapes rich writes (show/hide cursor, OSC)
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>78]")


@pytest.fixture(scope="module")
def pty_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-pty", 2, gpu_hosts=1)
    yield fleet
    down()


def run_in_pty(*args: str, env: dict | None = None, timeout: float = 900, cwd: Path | None = None) -> tuple[int, str]:
    """`python -m provision ARGS` with a terminal (COLUMNS x ROWS) as stdin/stdout/stderr: (exit code,
    everything it wrote, escapes included)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("PROVISION_BECOME_PASSWORD", "NO_COLOR", "CI", "TERM", "COLUMNS", "LINES")}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    full_env.update({"TERM": "xterm-256color", **(env or {})})
    proc = subprocess.Popen([sys.executable, "-m", "provision", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=full_env, cwd=cwd, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        else:
            pytest.fail(f"provision {' '.join(args)} still running after {timeout}s:\n"
                        + b"".join(chunks).decode(errors="replace")[-4000:])
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def final_screen(raw: str) -> str:
    """What stays on the screen after the live display: the text with the escapes removed, each line
    as last drawn (a carriage return starts the line over)."""
    lines = []
    for line in ESCAPES.sub("", raw).replace("\r\n", "\n").split("\n"):
        lines.append(line.rsplit("\r", 1)[-1])
    return "\n".join(lines)


def test_bootstrap_on_a_terminal_shows_the_checks_evidence(pty_fleet, tmp_path):
    code, raw = run_in_pty("bootstrap", "-i", str(pty_fleet.inventory), "--known-hosts",
                           str(pty_fleet.home / "known_hosts"), cwd=tmp_path)
    screen = final_screen(raw)
    assert code == 0, screen[-6000:]
    assert "\x1b[" in raw  # a live display (cursor control), not plain lines
    for host in (CPU_HOST, GPU_HOST):  # the live display's last frame: each host collapsed to its outcome
        assert re.search(rf"✓ {host} +changed ", screen), screen[-6000:]
    uuid = fake_gpu.gpu_uuid(GPU_HOST)
    assert "Hello from Docker!" in screen, screen[-6000:]
    assert re.search(r"ok +gpu container +1 GPU\(s\), UUIDs match the host \(" + re.escape(uuid), screen), \
        screen[-6000:]
    assert re.search(r"changed +docker packages +installing docker-ce, .*→ ", screen), screen[-6000:]
    assert re.search(r"docker-ce 5:[0-9.]+-", screen), screen[-6000:]  # the version that landed
    recap = screen[screen.rindex("provision bootstrap: recap"):]
    assert re.search(rf"{GPU_HOST} .*changed .*gpu container: 1 GPU\(s\), UUIDs match", recap), recap
    assert re.search(rf"{CPU_HOST} .*changed .*hello-world: \"Hello from Docker!\"", recap), recap
    assert "Traceback" not in screen
    # a long step's progress in the live display, at some point: apt's packages (the detached unit's polls)
    assert re.search(r"\b\d+/\d+ packages, [a-z0-9][a-z0-9.+-]*", ESCAPES.sub("", raw)), raw[-6000:]


def test_deploy_on_a_terminal_shows_the_shipped_bytes(pty_fleet, tmp_path):
    playbook = ROOT / "playbooks" / "ml-stack.yml"
    code, raw = run_in_pty("deploy", str(playbook), "-i", str(pty_fleet.inventory), "--known-hosts",
                           str(pty_fleet.home / "known_hosts"), env={"HF_TOKEN": "sim-token"}, cwd=tmp_path)
    screen = final_screen(raw)
    assert code == 0, screen[-6000:]
    assert "\x1b[" in raw
    shipped = re.findall(r"changed +image provision-ml/app:1 +[^\n]*shipped: [0-9.]+ (?:B|KiB|MiB|GiB) sent", screen)
    relayed = re.findall(r"changed +image provision-ml/app:1 +relayed from sbx[12] ", screen)
    # once per host: the bytes this machine sent, or (host-to-host shipping, deploy.relay) the host it came from
    assert len(shipped) >= 1 and len(shipped) + len(relayed) == 2, screen[-6000:]
    assert ": shipping " not in screen  # no interleaved progress prints: the live display shows them
    assert "Traceback" not in screen


def test_a_pulled_image_shows_the_bytes_the_host_downloaded(pty_fleet, tmp_path):
    """The CPU host pulls an image it has never had (from the sandbox registry, through the mirror): the
    step line says how much the engine downloaded (the live display showed it as `pulling, x/y KiB`)."""
    stack = tmp_path / "pull.yml"
    stack.write_text("name: pull\n"
                     f"x-provision: {{hosts: {CPU_HOST}}}\n"
                     "services:\n"
                     "  puller:\n"
                     "    image: nvidia/cuda:12.8.0-compat-sim   # SIMULATION: a busybox stand-in, no CUDA\n"
                     "    command: [sleep, '2147483647']\n"
                     "    stop_grace_period: 1s\n")
    code, raw = run_in_pty("deploy", str(stack), "-i", str(pty_fleet.inventory), "--known-hosts",
                           str(pty_fleet.home / "known_hosts"), cwd=tmp_path)
    screen = final_screen(raw)
    assert code == 0, screen[-6000:]
    assert re.search(r"changed +image \S*nvidia/cuda:12\.8\.0-compat-sim +pulled: [0-9.]+ (?:B|KiB|MiB) downloaded",
                     screen), screen[-6000:]
    assert "Traceback" not in screen
