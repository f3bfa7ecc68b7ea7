"""Issue 9, host faults outside deploy's rollouts, injected on real sandbox hosts: dockerd stopped, dpkg's
lock held by another process, a reboot that never returns, a host rebooted mid-run, a disk nearly full
before an image is shipped. Each asserts the message, the exit code and the host's state, and that a
re-run converges.

Fleet `e2e-misc` (3 hosts, Docker installed by provision; sbx3 a SIMULATED GPU host: fake nvidia-smi, no
GPU exists here). Every test sets up what it needs and puts the host back, so the order does not matter:
sbx1 serves the dockerd and disk tests, sbx2 the dpkg-lock and mid-run reboot tests, sbx3 the reboot that
never returns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import cli, cli_json, start_fleet, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"  # the engine's own client (another may sit earlier on PATH)
DOCKER_SOURCES = "/etc/apt/sources.list.d/docker.sources"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-misc", 3, gpu_hosts=1)
    try:
        proc = cli("docker", "install", *args(fleet), env=env(fleet), timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield fleet
    finally:
        down()


def env(fleet) -> dict:
    return {"PROVISION_HOME": str(fleet.home)}


def args(fleet, inventory: Path | None = None) -> list[str]:
    return ["-i", str(inventory or fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts")]


def run(fleet, *argv: str, inventory: Path | None = None, timeout: float = 600, cwd: Path | None = None):
    return cli_json(*argv, *args(fleet, inventory), env=env(fleet), timeout=timeout, cwd=cwd)


def with_vars(fleet, tmp_path: Path, host: str, **hostvars) -> Path:
    """The fleet's inventory with extra vars on one host."""
    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["all"]["children"]["sandbox"]["hosts"][host].update(hostvars)
    return fleet.write_inventory(tmp_path / f"inventory-{host}.yml", doc)


def host_exec(fleet, host: str, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run([DOCKER, "exec", fleet.container(host), *argv], capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def sh(fleet, host: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    return host_exec(fleet, host, "sh", "-c", script, check=check)


def poll(predicate, what: str, timeout: float = 120.0):
    return wait_for(predicate, timeout, what, interval=0.3)


def steps(doc: dict, host: str) -> dict[str, dict]:
    return {s["name"]: s for s in doc["hosts"][host]["steps"]}


def failed_step(doc: dict, host: str) -> dict:
    return next(s for s in doc["hosts"][host]["steps"] if s["status"] == "failed")


def docker_active(fleet, host: str) -> str:
    return sh(fleet, host, "systemctl is-active docker.service", check=False).stdout.strip()


def host_answers(fleet, host: str) -> bool:
    """The host container runs, systemd is up and sshd answers (what a booted host means here)."""
    proc = subprocess.run([DOCKER, "exec", fleet.container(host), "systemctl", "is-active", "ssh"],
                          capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() == "active"


# -- 1. dockerd stopped ----------------------------------------------------------------------------------
def test_dockerd_stopped_is_said_clearly_and_docker_install_starts_it(fleet, tmp_path):
    sh(fleet, "sbx1", "systemctl stop docker.service docker.socket")
    try:
        assert docker_active(fleet, "sbx1") == "inactive"
        expected = "the Docker daemon on sbx1 is not running"
        how = "systemctl start docker"

        proc, doc = run(fleet, "verify", "-l", "sbx1")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        failed = failed_step(doc, "sbx1")
        assert failed["name"] == "docker version"
        assert expected in failed["message"] and how in failed["message"], failed

        proc, doc = run(fleet, "status", "-l", "sbx1")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        message = failed_step(doc, "sbx1")["message"]
        assert expected in message and how in message and "provision docker install" in message, message

        project = tmp_path / "project"
        shutil.copytree(ROOT / "playbooks" / "hello", project / "web")
        playbook = project / "misc-dockerd.yml"
        playbook.write_text(yaml.safe_dump({"stack": "misc-dockerd", "hosts": "sbx1", "services": {
            "web": {"image": "provision-misc/web:1", "build": "./web"}}}, sort_keys=False))
        proc, doc = run(fleet, "deploy", str(playbook), "-l", "sbx1", cwd=project)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        message = failed_step(doc, "sbx1")["message"]
        assert expected in message and how in message, message

        # plain text too, not only --json
        text = cli("verify", "-l", "sbx1", *args(fleet), env=env(fleet))
        assert text.returncode == 2 and expected in " ".join((text.stdout + text.stderr).split())
        assert docker_active(fleet, "sbx1") == "inactive"  # none of those started anything
    finally:
        # the re-run that converges: a no-op install notices the stopped daemon and starts it
        proc, doc = run(fleet, "docker", "install", "-l", "sbx1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    service = steps(doc, "sbx1")["docker service"]
    assert service["status"] == "changed" and service["message"] == "enabling and starting docker"
    assert docker_active(fleet, "sbx1") == "active"
    proc, doc = run(fleet, "verify", "-l", "sbx1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc, doc = run(fleet, "docker", "install", "-l", "sbx1")
    assert proc.returncode == 0 and doc["hosts"]["sbx1"]["changed"] == 0


# -- 2. dpkg's lock held by another process ----------------------------------------------------------------
def test_dpkg_lock_held_fails_naming_the_holder_then_rerun_converges(fleet, tmp_path):
    run(fleet, "docker", "install", "-l", "sbx2")  # whatever an earlier test left: Docker in place
    sh(fleet, "sbx2", f"rm -f {DOCKER_SOURCES}")  # so the install has apt work to do (the repository)
    holder = subprocess.Popen([DOCKER, "exec", fleet.container("sbx2"), "flock", "/var/lib/dpkg/lock-frontend",
                               "sleep", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = poll(lambda: sh(fleet, "sbx2", "pgrep -f '^flock /var/lib/dpkg/lock-frontend sleep 300$'",
                              check=False).stdout.strip(), "the lock holder to start")
        inventory = with_vars(fleet, tmp_path, "sbx2", apt_lock_timeout=3)
        started = time.monotonic()
        proc, doc = run(fleet, "docker", "install", "-l", "sbx2", inventory=inventory)
        took = time.monotonic() - started
        assert proc.returncode == 2, proc.stdout + proc.stderr
        failed = failed_step(doc, "sbx2")
        assert failed["name"] == "dpkg lock", failed
        assert f"still held by pid {pid.split()[0]} (flock /var/lib/dpkg/lock-frontend sleep 300)" in failed["message"], failed
        assert "after 3s (apt_lock_timeout)" in failed["message"] and "nothing was changed" in failed["message"]
        assert took < 120
        assert sh(fleet, "sbx2", f"test -e {DOCKER_SOURCES}", check=False).returncode == 1  # nothing changed
        assert docker_active(fleet, "sbx2") == "active"
    finally:
        host_exec(fleet, "sbx2", "pkill", "-f", "^flock /var/lib/dpkg/lock-frontend sleep 300$", check=False)
        holder.wait(timeout=60)
    proc, doc = run(fleet, "docker", "install", "-l", "sbx2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert steps(doc, "sbx2")["dpkg lock"]["message"] == "free"
    assert sh(fleet, "sbx2", f"test -e {DOCKER_SOURCES}", check=False).returncode == 0
    proc, doc = run(fleet, "docker", "install", "-l", "sbx2")
    assert proc.returncode == 0 and doc["hosts"]["sbx2"]["changed"] == 0


# -- 3. a reboot that never returns -----------------------------------------------------------------------
def test_reboot_that_never_returns_fails_after_reboot_timeout_then_rerun_converges(fleet, tmp_path):
    container = fleet.container("sbx3")
    subprocess.run([DOCKER, "update", "--restart=no", container], check=True, capture_output=True, timeout=60)
    try:
        sh(fleet, "sbx3", "touch /var/run/reboot-required")  # SIMULATION of a driver stage that needs a reboot
        inventory = with_vars(fleet, tmp_path, "sbx3", reboot_timeout=10)
        started = time.monotonic()
        # the host powers off instead of coming back: its container is not restarted
        proc, doc = run(fleet, "nvidia", "install", "--reboot", "-l", "sbx3", inventory=inventory, timeout=300)
        took = time.monotonic() - started
        assert proc.returncode in (2, 3), proc.stdout + proc.stderr
        failed = failed_step(doc, "sbx3")
        assert failed["name"] == "reboot" and failed["message"] == "the host did not come back within 10s", failed
        assert took < 120, took
    finally:
        subprocess.run([DOCKER, "update", "--restart=unless-stopped", container], capture_output=True, timeout=60)
        subprocess.run([DOCKER, "start", container], capture_output=True, timeout=120)
    poll(lambda: host_answers(fleet, "sbx3"), "sbx3 to boot again")
    assert not sh(fleet, "sbx3", "test -e /var/run/reboot-required", check=False).returncode == 0  # /run is new
    proc, doc = run(fleet, "bootstrap", "--reboot", "-l", "sbx3", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert steps(doc, "sbx3")["gpu container"]["status"] == "ok"
    proc, doc = run(fleet, "nvidia", "install", "-l", "sbx3")
    assert proc.returncode == 0 and doc["hosts"]["sbx3"]["changed"] == 0, proc.stdout


# -- 4. a host rebooted mid-run ---------------------------------------------------------------------------
def test_host_rebooted_mid_install_is_reported_with_its_step_then_rerun_converges(fleet):
    proc, doc = run(fleet, "docker", "uninstall", "-l", "sbx2")  # Docker's packages to install again
    assert proc.returncode == 0, proc.stdout + proc.stderr
    environ = {k: v for k, v in os.environ.items() if k != "PROVISION_BECOME_PASSWORD"} | env(fleet)
    install = subprocess.Popen([sys.executable, "-m", "provision", "docker", "install", "-l", "sbx2", "--json",
                                *args(fleet)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)
    try:
        # apt (detached as a systemd unit) is installing Docker's packages: reboot the host under it
        poll(lambda: sh(fleet, "sbx2", "systemctl list-units --plain --no-legend --state=active 'provision-apt-*-docker-packages.service' "
                        "| grep -q .",
                        check=False).returncode == 0
             or install.poll() is not None, "apt to start installing", timeout=600)
        assert install.poll() is None, "the install finished before the reboot could be injected"
        sh(fleet, "sbx2", "systemctl reboot", check=False)
        started = time.monotonic()
        out, err = install.communicate(timeout=600)
        took = time.monotonic() - started
    finally:
        if install.poll() is None:
            install.kill()
            install.wait()
    assert install.returncode in (2, 3), out + err
    doc = json.loads(out)
    host = doc["hosts"]["sbx2"]
    assert host["status"] in ("unreachable", "failed"), host
    message = host.get("message") or failed_step(doc, "sbx2")["message"]
    in_step = ("step 'docker packages'" in message if host["status"] == "unreachable"
               else failed_step(doc, "sbx2")["name"] == "docker packages")
    assert in_step, host
    assert took < 300, took
    poll(lambda: host_answers(fleet, "sbx2"), "sbx2 to boot again")
    proc, doc = run(fleet, "docker", "install", "-l", "sbx2")  # repairs dpkg if it was cut, then converges
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sh(fleet, "sbx2", "dpkg --audit", check=False).stdout.strip() == ""
    assert docker_active(fleet, "sbx2") == "active"
    proc, doc = run(fleet, "verify", "-l", "sbx2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc, doc = run(fleet, "docker", "install", "-l", "sbx2")
    assert proc.returncode == 0 and doc["hosts"]["sbx2"]["changed"] == 0


# -- 5. disk nearly full before an image is shipped --------------------------------------------------------
def _small_docker_root(fleet, host: str, size_mb: int) -> None:
    """Docker's data root on a small tmpfs (the sandbox's /var/lib/docker is a volume on the operator's own
    disk, which a test must not fill): the host's engine starts empty on it."""
    sh(fleet, host, f"systemctl stop docker.service docker.socket && "
                    f"mount -t tmpfs -o size={size_mb}m provision-misc-small /var/lib/docker && "
                    f"systemctl start docker")


def _normal_docker_root(fleet, host: str) -> None:
    sh(fleet, host, "systemctl stop docker.service docker.socket; "
                    "while mountpoint -q /var/lib/docker; do umount /var/lib/docker || break; done; "
                    "systemctl start docker", check=False)


def test_disk_nearly_full_refuses_before_any_container_changes_then_rerun_converges(fleet, tmp_path):
    host = "sbx1"
    run(fleet, "docker", "install", "-l", host)  # a running engine, whatever an earlier test left
    project = tmp_path / "project"
    shutil.copytree(ROOT / "playbooks" / "hello", project / "web")
    playbook = project / "misc-disk.yml"

    def write(version: int) -> None:
        (project / "web" / "index.html").write_text(f"<h1>provision misc {version}</h1>\n" + "x" * 1024 * version)
        playbook.write_text(yaml.safe_dump({"stack": "misc-disk", "hosts": host, "services": {"web": {
            "image": f"provision-misc/disk:{version}", "build": "./web", "stop_grace_period": "1s"}}},
            sort_keys=False))

    inventory = with_vars(fleet, tmp_path, host, deploy_min_free_mb=16)
    _small_docker_root(fleet, host, 96)
    try:
        write(1)
        proc, doc = run(fleet, "deploy", str(playbook), "-l", host, inventory=inventory, cwd=project)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert steps(doc, host)["disk space"]["status"] == "ok"
        before = sh(fleet, host, "docker inspect -f '{{.Id}} {{.State.Status}} {{.Config.Image}}' misc-disk-web-1"
                    ).stdout.split()
        assert before[1] == "running"

        # fill the data root's filesystem to ~4 MiB free (below the 16 MiB the host asks for)
        sh(fleet, host, "avail=$(df -P -k /var/lib/docker | awk 'NR==2 {print $4}'); "
                        "fallocate -l $(( (avail - 4096) * 1024 )) /var/lib/docker/provision-misc-fill")
        write(2)
        proc, doc = run(fleet, "deploy", str(playbook), "-l", host, inventory=inventory, cwd=project)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        failed = failed_step(doc, host)
        assert failed["name"] == "disk space", failed
        assert failed["message"].startswith(f"{host}: /var/lib/docker has "), failed
        assert "free, the image(s) need about 16.0 MiB" in failed["message"], failed
        names = [s["name"] for s in doc["hosts"][host]["steps"]]
        assert not any(n.startswith("image ") or n.startswith("service ") for n in names), names
        after = sh(fleet, host, "docker inspect -f '{{.Id}} {{.State.Status}} {{.Config.Image}}' misc-disk-web-1"
                   ).stdout.split()
        assert after == before  # the old container keeps serving, untouched
        assert sh(fleet, host, "docker ps -a --format '{{.Names}}' | grep -c next || true").stdout.strip() == "0"
        assert sh(fleet, host, "docker image inspect provision-misc/disk:2", check=False).returncode != 0

        sh(fleet, host, "rm -f /var/lib/docker/provision-misc-fill")
        proc, doc = run(fleet, "deploy", str(playbook), "-l", host, inventory=inventory, cwd=project)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        image = sh(fleet, host, "docker inspect -f '{{.Image}}' misc-disk-web-1").stdout.strip()
        assert image == sh(fleet, host, "docker image inspect -f '{{.Id}}' provision-misc/disk:2").stdout.strip()
        proc, doc = run(fleet, "deploy", str(playbook), "-l", host, inventory=inventory, cwd=project)
        assert proc.returncode == 0 and doc["hosts"][host]["changed"] == 0, proc.stdout
    finally:
        _normal_docker_root(fleet, host)
    assert docker_active(fleet, host) == "active"
