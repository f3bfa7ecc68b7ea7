"""One SSH connection per host in a deploy (issue 12), counted by the hosts' own sshd.

Fleet `conn`: three fresh sandbox hosts bootstrapped by provision (Docker; the SIMULATED NVIDIA toolkit on the
last, a SIMULATED GPU host: there is no GPU here). The stack ships an image built on this machine to every host
(the host-to-host relay: the first host gets it from here, the others from a host that has it, which needs
commands on that seed host while another host loads the image) and runs a GPU service on the GPU host (the GPU
precheck contacts it before the deploy). Each host's sshd logs one "Accepted publickey" line per SSH login in
its journal: during the deploy, exactly one with the fleet's key per host (the relay's own `ssh seed` logins
use the temporary relay key, another fingerprint).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import cli_json, start_fleet

pytestmark = pytest.mark.e2e

HOSTS = ("sbx1", "sbx2", "sbx3")
GPU_HOST = "sbx3"
DOCKER = "/usr/bin/docker"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "conn", len(HOSTS), gpu_hosts=1)
    try:
        proc = cli_json("bootstrap", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                        env={"PROVISION_HOME": str(fleet.home)}, timeout=900)[0]
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield fleet
    finally:
        down()


@pytest.fixture(scope="module")
def image():
    """An image only this machine has (4 MiB of random data on busybox): every host needs it shipped."""
    name = f"provision-conn/app:{uuid.uuid4().hex[:8]}"
    dockerfile = ("FROM provision-sandbox/busybox:latest\n"
                  "RUN dd if=/dev/urandom of=/blob bs=1048576 count=4 2>/dev/null\n")
    subprocess.run([DOCKER, "build", "-q", "-t", name, "-"], input=dockerfile, text=True, check=True,
                   capture_output=True, timeout=300)
    yield name
    subprocess.run([DOCKER, "rmi", "-f", name], capture_output=True, timeout=60)


def fingerprint(key: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(key)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]  # SHA256:...


def logins(fleet, name: str, fp: str) -> int:
    """How many SSH logins with the key FP the host's sshd has accepted so far."""
    proc = subprocess.run([DOCKER, "exec", fleet.container(name), "journalctl", "-u", "ssh", "--no-pager",
                           "-o", "cat"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return sum(1 for line in proc.stdout.splitlines() if line.startswith("Accepted publickey") and line.endswith(fp))


def test_a_deploy_with_relay_and_gpu_precheck_logs_in_once_per_host(fleet, image, tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text(json.dumps({"name": "conn", "services": {  # JSON is YAML
        "app": {"image": image, "command": ["sleep", "2147483647"]},
        "train": {"image": image, "command": ["sleep", "2147483647"], "gpus": "all",
                  "x-provision": {"hosts": "gpu"}},
    }}))
    fp = fingerprint(fleet.key)
    before = {name: logins(fleet, name, fp) for name in HOSTS}
    proc, doc = cli_json("deploy", str(compose), "-i", str(fleet.inventory), "--known-hosts",
                         str(fleet.home / "known_hosts"), env={"PROVISION_HOME": str(fleet.home)}, timeout=600)
    after = {name: logins(fleet, name, fp) for name in HOSTS}
    assert proc.returncode == 0, proc.stdout + proc.stderr
    messages = {name: " | ".join(f"{s['name']}: {s['message']}" for s in doc["hosts"][name]["steps"]) for name in HOSTS}
    assert any("relayed from" in m for m in messages.values()), messages  # the relay ran (seed-side commands)
    assert "gpu check train" in messages[GPU_HOST], messages[GPU_HOST]  # the precheck ran
    assert {name: after[name] - before[name] for name in HOSTS} == {name: 1 for name in HOSTS}, messages


def test_one_executor_serves_several_threads_at_once(fleet):
    """What the relay needs of a seed's executor: commands and file writes from several threads at once on one
    connection, each thread getting its own command's output (the script each sends on stdin is per thread)."""
    import threading

    from provision.executor.known_hosts import KnownHosts
    from provision.executor.ssh import SSHExecutor
    from provision.workflows.targets import load_targets

    target = next(t for t in load_targets(fleet.inventory) if t.name == "sbx1")
    executor = SSHExecutor(target.settings, KnownHosts(fleet.home / "known_hosts"))
    fp = fingerprint(fleet.key)
    before = logins(fleet, "sbx1", fp)
    outputs: dict[int, tuple] = {}

    def work(n: int) -> None:
        executor.put(f"file {n}\n".encode(), f"/dev/shm/provision-conn-{n}", mode=0o600)
        out = executor.run(f"cat /dev/shm/provision-conn-{n}; rm -f /dev/shm/provision-conn-{n}; "
                           f"sleep 0.{n % 3}; echo thread {n}", timeout=60)
        outputs[n] = (out.exit_code, out.stdout)

    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        executor.close()
    assert outputs == {n: (0, f"file {n}\nthread {n}\n") for n in range(8)}
    assert logins(fleet, "sbx1", fp) - before == 1
