"""Issue 9, the deploy side: faults injected on real sandbox hosts during `provision deploy`.

Fleet `faults-deploy` (2 hosts, Docker installed by provision). Every test deploys its own stack
(own name, own ports) and sets up what it needs, so the tests do not depend on each other's order.
Faults: Ctrl-C / SIGTERM mid-deploy, a second Ctrl-C, a docker API error mid-rollout, a container of
another tool under provision's name, a failed or escaping bind-folder sync, a deploy killed with -9
(stale lock, `provision unlock`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import BackgroundCli, cli, cli_json, start_fleet
from tests.e2e.conftest import wait_for as conftest_wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "provision-faults/web:1"
LOCK = "/var/lib/provision/deploy.lock"
DOCKER = "/usr/bin/docker"  # the engine's own client (another may sit earlier on PATH)
NEVER_READY = {"test": ["CMD", "false"], "interval": "1s", "start_period": "300s"}  # stays "starting"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "faults-deploy", 2)
    proc = cli("docker", "install", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
               env={"PROVISION_HOME": str(fleet.home)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield fleet
    down()


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder with the hello web image's build context (the tests write their playbooks here)."""
    shutil.copytree(ROOT / "playbooks" / "hello", tmp_path / "web")
    return tmp_path


def playbook(project: Path, stack: str, web: dict | None = None, **top) -> Path:
    service = {"image": IMAGE, "build": "./web", "stop_grace_period": "1s",
               "healthcheck": {"test": ["CMD", "wget", "-qO-", "http://127.0.0.1/"], "interval": "1s", "retries": 20}}
    service.update(web or {})
    path = project / f"{stack}.yml"
    path.write_text(yaml.safe_dump({"stack": stack, "hosts": "all", **top, "services": {"web": service}}, sort_keys=False))
    return path


def args(fleet, *extra) -> list[str]:
    return [*extra, "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts")]


def deploy(fleet, path: Path, *extra, cwd: Path):
    return cli_json(*args(fleet, "deploy", str(path), *extra), env={"PROVISION_HOME": str(fleet.home)}, cwd=cwd,
                    timeout=600)


def Background(fleet, path: Path | None, *extra, cwd: Path, command: list[str] | None = None) -> BackgroundCli:
    """`provision deploy PATH --json ...` (or another command: `command=[...]`) running in the background."""
    command = command or ["deploy", str(path)]
    return BackgroundCli(*args(fleet, *command, "--json", *extra), env={"PROVISION_HOME": str(fleet.home)}, cwd=cwd)


def host_exec(fleet, host: str, *argv: str, check: bool = True) -> str:
    proc = subprocess.run([DOCKER, "exec", fleet.container(host), *argv], capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout


def containers(fleet, host: str) -> dict[str, tuple[str, str]]:
    """name → (id, state) of every container on the host."""
    out = host_exec(fleet, host, "docker", "ps", "-a", "--format", "{{.Names}} {{.ID}} {{.State}}")
    return {line.split()[0]: (line.split()[1], line.split()[2]) for line in out.splitlines() if line.strip()}


def answers(fleet, host: str, container: str) -> bool:
    proc = subprocess.run([DOCKER, "exec", fleet.container(host), "docker", "exec", container, "wget", "-qO-",
                           "http://127.0.0.1/"], capture_output=True, text=True, timeout=60)
    return proc.returncode == 0 and "provision" in proc.stdout.lower()


def wait_for(predicate, what: str, timeout: float = 60.0):
    """conftest's wait_for (poll with a deadline), with this module's argument order."""
    return conftest_wait_for(predicate, timeout, what)


def lock_free(fleet, host: str) -> bool:
    return subprocess.run([DOCKER, "exec", fleet.container(host), "test", "!", "-e", LOCK], timeout=60).returncode == 0


def audit(fleet, host: str) -> list[dict]:
    return [json.loads(line) for line in host_exec(fleet, host, "cat", "/var/log/provision/audit.log").splitlines()]


def registries(cwd: Path) -> list[int]:
    """PIDs of docker-registry processes started from this test's project folder (the shipping registry)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if cmdline and cmdline[0].endswith(b"docker-registry") and os.readlink(entry / "cwd") == str(cwd):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def deployed(fleet, project: Path, stack: str, web: dict | None = None, **top) -> dict[str, str]:
    """Deploy a healthy first version of the stack on both hosts: {host: container id}."""
    proc, doc = deploy(fleet, playbook(project, stack, web, **top), cwd=project)
    assert proc.returncode == 0, proc.stderr
    return {h: containers(fleet, h)[f"{stack}-web-1"][0] for h in ("sbx1", "sbx2")}


# -- Ctrl-C / SIGTERM ---------------------------------------------------------------------------------
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"])
def test_interrupt_mid_deploy_stops_cleanly(fleet, project, signum, code):
    stack = f"intr{signum}"
    before = deployed(fleet, project, stack)
    # v2 never becomes healthy: sbx1's rollout is in flight (NAME.next starting) while sbx2 waits (-f 1)
    path = playbook(project, stack, {"environment": {"V": "2"}, "healthcheck": NEVER_READY})
    run = Background(fleet, path, "-f", "1", cwd=project)
    run.wait_for(lambda: f"{stack}-web-1.next" in containers(fleet, "sbx1"), "the rollout on sbx1")
    assert containers(fleet, "sbx2")[f"{stack}-web-1"][0] == before["sbx2"]  # sbx2 still queued
    assert registries(project), "the shipping registry runs while hosts may pull"
    run.proc.send_signal(signum)
    returncode, stdout, stderr = run.finish()
    assert returncode == code, stderr
    doc = json.loads(stdout)
    assert doc["hosts"]["sbx2"]["status"] == "skipped" and doc["hosts"]["sbx2"]["message"] == "not started: interrupted"
    sbx1 = doc["hosts"]["sbx1"]
    assert sbx1["status"] == "failed" and "interrupted by the operator" in json.dumps(sbx1["steps"]), sbx1
    assert "starting no other host" in stderr
    for host in ("sbx1", "sbx2"):
        now = containers(fleet, host)
        assert f"{stack}-web-1.next" not in now
        assert now[f"{stack}-web-1"] == (before[host], "running")  # the old one kept serving
        assert answers(fleet, host, f"{stack}-web-1")
        assert lock_free(fleet, host)
    assert audit(fleet, "sbx1")[-1]["result"] == "interrupted"
    assert registries(project) == []


def test_second_ctrl_c_exits_at_once_and_still_releases_the_lock(fleet, project):
    stack = "twice"
    deployed(fleet, project, stack)
    path = playbook(project, stack, {"environment": {"V": "2"}, "healthcheck": NEVER_READY})
    run = Background(fleet, path, "-f", "1", cwd=project)
    run.wait_for(lambda: f"{stack}-web-1.next" in containers(fleet, "sbx1"), "the rollout on sbx1")
    run.proc.send_signal(signal.SIGINT)
    run.wait_for(lambda: "starting no other host" in run.stderr, "the first interrupt's notice")
    run.proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    returncode, _, stderr = run.finish(timeout=60)
    assert returncode == 130, stderr
    assert time.monotonic() - started < 20
    assert lock_free(fleet, "sbx1") and lock_free(fleet, "sbx2")
    now = containers(fleet, "sbx1")
    assert f"{stack}-web-1.next" not in now and now[f"{stack}-web-1"][1] == "running"
    assert registries(project) == []
    # the next deploy converges
    proc, doc = deploy(fleet, playbook(project, stack), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert f"{stack}-web-1.next" not in containers(fleet, "sbx1")


# -- rollouts -----------------------------------------------------------------------------------------
# the engine's API errors (the container it waits on vanishes), or the SSH connection drops (sshd's
# session processes for provision's connection are killed on the host)
INJECT = {"api": ["docker", "rm", "-f", "{stack}-web-1.next"], "ssh": ["pkill", "-f", "^sshd: root"]}


@pytest.mark.parametrize("fault", ["api", "ssh"])
def test_an_error_mid_stop_first_rollout_restores_the_old_container(fleet, project, fault):
    stack = f"restore{fault}"
    ports = {"ports": ["8093:80" if fault == "api" else "8095:80"]}  # a fixed host port: stop-first
    before = deployed(fleet, project, stack, ports)
    path = playbook(project, stack, {**ports, "environment": {"V": "2"}, "healthcheck": NEVER_READY})
    run = Background(fleet, path, "-l", "sbx1", cwd=project)
    run.wait_for(lambda: (containers(fleet, "sbx1").get(f"{stack}-web-1.next", ("", ""))[1] == "running"
                          and containers(fleet, "sbx1")[f"{stack}-web-1"][1] == "exited"),
                 "the stop-first rollout (old stopped, new starting)")
    host_exec(fleet, "sbx1", *[arg.format(stack=stack) for arg in INJECT[fault]])
    returncode, stdout, stderr = run.finish()
    assert returncode == 2, stderr
    step = json.loads(stdout)["hosts"]["sbx1"]["steps"][-1]
    assert step["status"] == "failed", step  # the error, re-raised after the restore
    if fault == "api":
        assert step["message"].startswith("docker: "), step
    now = containers(fleet, "sbx1")
    assert now[f"{stack}-web-1"] == (before["sbx1"], "running") and f"{stack}-web-1.next" not in now
    assert answers(fleet, "sbx1", f"{stack}-web-1")
    port = ports["ports"][0].split(":")[0]
    assert "provision" in host_exec(fleet, "sbx1", "curl", "-fsS", f"http://127.0.0.1:{port}/").lower()
    assert lock_free(fleet, "sbx1")


def test_a_channel_to_the_engine_lost_mid_rollout_is_the_rollout_steps_failure(fleet, project):
    """The host's dial-stdio channels ended and no new one can reach the engine (the host's docker CLI moved
    away) during a health wait: the next API call finds its connection gone. That used to escape the host's
    work as a bare "error" step; now it is the rollout step's failure naming the lost connection, exit 2,
    the lock released. (Killing sshd's sessions instead, as above, is not deterministic for this: the
    client reconnects between two health polls.)"""
    stack = "chanlost"
    deployed(fleet, project, stack)
    path = playbook(project, stack, {"environment": {"V": "2"}, "healthcheck": NEVER_READY})
    run = Background(fleet, path, "-l", "sbx1", cwd=project)
    run.wait_for(lambda: containers(fleet, "sbx1").get(f"{stack}-web-1.next", ("", ""))[1] == "running",
                 "the health wait of the new container")
    cli_path = host_exec(fleet, "sbx1", "sh", "-c", "command -v docker").strip()
    try:
        host_exec(fleet, "sbx1", "sh", "-c", f"mv {cli_path} {cli_path}.off; pkill -f '[d]ocker system dial-stdio'; "
                                             "true")
        returncode, stdout, stderr = run.finish()
    finally:
        host_exec(fleet, "sbx1", "mv", f"{cli_path}.off", cli_path, check=False)
    assert returncode == 2, stderr
    steps = json.loads(stdout)["hosts"]["sbx1"]["steps"]
    assert [s["name"] for s in steps if s["status"] == "failed"] == ["services rollout"], steps
    assert steps[-1]["message"].startswith("the connection to sbx1's Docker engine was lost: "), steps[-1]
    assert "error" not in [s["name"] for s in steps]
    assert lock_free(fleet, "sbx1")
    assert audit(fleet, "sbx1")[-1]["result"] == "failed"
    proc, _ = deploy(fleet, playbook(project, stack), "-l", "sbx1", cwd=project)  # a re-run converges
    assert proc.returncode == 0, proc.stderr
    now = containers(fleet, "sbx1")
    assert now[f"{stack}-web-1"][1] == "running" and f"{stack}-web-1.next" not in now


def test_docker_error_mid_rollback_puts_the_serving_container_back(fleet, project):
    stack = "rbk"
    # both versions take a few seconds to become healthy: a window to inject the error in
    slow = {"ports": ["8094:80"], "command": ["sh", "-c", "sleep 6; exec httpd -f -p 80 -h /var/www"]}
    deployed(fleet, project, stack, slow)
    proc, doc = deploy(fleet, playbook(project, stack, {**slow, "environment": {"V": "2"}}), "-l", "sbx1", cwd=project)
    assert proc.returncode == 0, proc.stderr
    serving = containers(fleet, "sbx1")[f"{stack}-web-1"][0]
    assert f"{stack}-web-1.previous" in containers(fleet, "sbx1")
    previous = containers(fleet, "sbx1")[f"{stack}-web-1.previous"][0]
    host_exec(fleet, "sbx1", "docker", "pull", "-q", "hello-world")
    run = Background(fleet, None, "-l", "sbx1", cwd=project, command=["rollback", f"{stack}/web"])
    run.wait_for(lambda: (containers(fleet, "sbx1").get(f"{stack}-web-1.previous", ("", ""))[1] == "running"
                          and containers(fleet, "sbx1")[f"{stack}-web-1"][1] == "exited"),
                 "the stop-first rollback (serving one stopped, previous starting)")
    # a name the swap needs is taken meanwhile: the engine refuses the rename (409) once previous is healthy
    host_exec(fleet, "sbx1", "docker", "create", "--name", f"{stack}-web-1.next", "hello-world")
    returncode, stdout, stderr = run.finish()
    assert returncode == 2, stderr
    message = json.loads(stdout)["hosts"]["sbx1"]["steps"][-1]["message"]
    assert message.startswith("docker: ") and "is already in use" in message, message
    now = containers(fleet, "sbx1")
    assert now[f"{stack}-web-1"] == (serving, "running")
    assert now[f"{stack}-web-1.previous"] == (previous, "exited")
    wait_for(lambda: answers(fleet, "sbx1", f"{stack}-web-1"), "the restored container to answer")
    assert lock_free(fleet, "sbx1")
    host_exec(fleet, "sbx1", "docker", "rm", "-f", f"{stack}-web-1.next")


def test_a_foreign_container_under_provisions_name_is_refused_untouched(fleet, project):
    stack = "foreign"
    host_exec(fleet, "sbx1", "docker", "pull", "-q", "hello-world")
    host_exec(fleet, "sbx1", "docker", "rm", "-f", f"{stack}-web-1", check=False)
    host_exec(fleet, "sbx1", "docker", "create", "--name", f"{stack}-web-1", "--label",
              f"com.docker.compose.project={stack}", "--label", "com.docker.compose.service=web", "hello-world")
    foreign_id = containers(fleet, "sbx1")[f"{stack}-web-1"][0]
    path = playbook(project, stack)
    for extra in (("--check",), ()):
        proc, doc = deploy(fleet, path, "-l", "sbx1", *extra, cwd=project)
        assert proc.returncode == 2, proc.stderr
        message = doc["hosts"]["sbx1"]["steps"][-1]["message"]
        assert f"{stack}-web-1" in message and "Docker Compose project 'foreign'" in message
        assert "refusing to rename, stop or remove it" in message
        now = containers(fleet, "sbx1")
        assert now[f"{stack}-web-1"][0] == foreign_id and f"{stack}-web-1.next" not in now
    assert lock_free(fleet, "sbx1")
    host_exec(fleet, "sbx1", "docker", "rm", "-f", f"{stack}-web-1")


# -- bind-folder syncs --------------------------------------------------------------------------------
def test_a_failed_bind_folder_sync_is_a_failed_step(fleet, project):
    stack = "syncfail"
    (project / "data").mkdir()
    (project / "data" / "a.txt").write_text("a\n")
    remote = f"/srv/provision/{stack}"
    host_exec(fleet, "sbx1", "sh", "-c", f"rm -rf {remote} && mkdir -p {remote} && echo x > {remote}/data")  # a file
    path = playbook(project, stack, {"volumes": ["./data:/data"]})
    proc, doc = deploy(fleet, path, "-l", "sbx1", cwd=project)
    assert proc.returncode == 2, proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx1"]["steps"]}
    step = steps[f"folder {remote}/data"]
    assert step["status"] == "failed" and "File exists" in step["message"], step
    assert host_exec(fleet, "sbx1", "ls", "-A", f"{remote}/.provision-sync", check=False).strip() == ""  # no marker
    assert host_exec(fleet, "sbx1", "sh", "-c", "ls /tmp/provision-sync.* 2>/dev/null || true").strip() == ""
    assert f"{stack}-web-1" not in containers(fleet, "sbx1")  # stopped before any service
    assert lock_free(fleet, "sbx1")
    host_exec(fleet, "sbx1", "rm", "-rf", remote)


def test_synced_files_keep_no_owner_or_setuid_and_never_leave_remote_dir(fleet, project):
    stack = "syncsafe"
    data = project / "data"
    data.mkdir()
    (data / "tool").write_text("#!/bin/sh\n")
    os.chmod(data / "tool", 0o4755)
    os.chown(data / "tool", 1234, 1234) if os.geteuid() == 0 else None
    proc, doc = deploy(fleet, playbook(project, stack, {"volumes": ["./data:/data"]}), "-l", "sbx2", cwd=project)
    assert proc.returncode == 0, proc.stderr
    mode, owner = host_exec(fleet, "sbx2", "stat", "-c", "%a %u", f"/srv/provision/{stack}/data/tool").split()
    assert (mode, owner) == ("755", "0")
    # a symlink leading out of the folder is refused (its target on the host is not this machine's)
    (data / "escape").symlink_to("/etc")
    proc, doc = deploy(fleet, playbook(project, stack, {"volumes": ["./data:/data"]}), "-l", "sbx2", cwd=project)
    assert proc.returncode == 2
    assert "outside" in doc["hosts"]["sbx2"]["steps"][-1]["message"]
    # `..` out of the playbook's folder (and so out of remote_dir): bad input, nothing contacted
    bad = playbook(project, stack, {"volumes": ["./data/../../../etc:/etc-host"]})
    proc = cli(*args(fleet, "deploy", str(bad)), env={"PROVISION_HOME": str(fleet.home)}, cwd=project)
    assert proc.returncode == 4 and "relative bind mount" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert lock_free(fleet, "sbx2")


# -- stale locks --------------------------------------------------------------------------------------
def test_a_killed_deploy_leaves_a_lock_that_only_unlock_breaks(fleet, project):
    stack = "stale"
    deployed(fleet, project, stack)
    run = Background(fleet, playbook(project, stack, {"environment": {"V": "2"}, "healthcheck": NEVER_READY}),
                     "-l", "sbx1", cwd=project)
    run.wait_for(lambda: f"{stack}-web-1.next" in containers(fleet, "sbx1"), "the rollout on sbx1")
    run.proc.kill()  # SIGKILL: nothing can clean up
    run.finish(timeout=30)
    assert not lock_free(fleet, "sbx1")
    wait_for(lambda: registries(project) == [], "the shipping registry to die with provision", timeout=30)
    # the next deploy is refused, naming the holder and how to break the lock deliberately
    healthy = playbook(project, stack)
    refused, doc = deploy(fleet, healthy, "-l", "sbx1", cwd=project)
    assert refused.returncode == 2
    message = doc["hosts"]["sbx1"]["steps"][-1]["message"]
    assert f"pid {run.pid}" in message and "no longer runs on this machine" in message
    assert "provision unlock -l sbx1" in message
    assert not lock_free(fleet, "sbx1")  # never broken silently
    # --json without --yes is bad input; then unlock shows the holder and records the break
    no = cli(*args(fleet, "unlock", "-l", "sbx1", "--json"), env={"PROVISION_HOME": str(fleet.home)})
    assert no.returncode == 4 and not lock_free(fleet, "sbx1")
    unlock = cli(*args(fleet, "unlock", "-l", "sbx1", "--yes"), env={"PROVISION_HOME": str(fleet.home)})
    assert unlock.returncode == 0, unlock.stderr
    assert f"pid {run.pid}" in unlock.stdout and "locked by" in unlock.stdout
    assert lock_free(fleet, "sbx1")
    entry = audit(fleet, "sbx1")[-1]
    assert entry["action"] == "unlock" and entry["broke"]["pid"] == run.pid and entry["broke"]["stack"] == stack
    again, doc = deploy(fleet, healthy, "-l", "sbx1", cwd=project)
    assert again.returncode == 0, again.stderr
    now = containers(fleet, "sbx1")
    assert now[f"{stack}-web-1"][1] == "running" and f"{stack}-web-1.next" not in now
    nothing = cli(*args(fleet, "unlock", "-l", "sbx1", "--yes"), env={"PROVISION_HOME": str(fleet.home)})
    assert nothing.returncode == 0 and "not locked" in nothing.stdout
