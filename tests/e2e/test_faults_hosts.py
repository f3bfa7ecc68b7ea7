"""Issue 9, host side: faults injected on a real sandbox fleet, and what provision does about them.

- a host that vanishes without a TCP reset (its container paused, or its traffic dropped in its own
  network namespace) is reported unreachable by the keepalive watchdog, with the command it was in,
  while the other host finishes;
- a command that runs past its timeout is ended on the host itself (exit 124), nothing lingers;
- a refusal known before any change changes nothing (docker.io from Debian stays installed and running);
- a daemon.json that stops dockerd from starting is rolled back and docker runs again;
- an SSH connection cut in the middle of apt does not kill dpkg (apt runs as a systemd unit), and a dpkg
  killed half-way is repaired by the next run, which converges;
- a daemon.json holding proxy credentials: the password never reaches stdout, --json, --check, facts, the
  host's process list (argv) or its disk outside tmpfs and the 0600 daemon.json itself.

Each test sets up what it needs; none depends on another's order (the fleet is shared, the state each
test changes is its own host's, and every test puts back what it broke).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import cli_json, start_fleet, wait_for

pytestmark = pytest.mark.e2e

MISSING_KEY_URL = "https://download.docker.com/linux/debian/no-such-key.gpg"  # the sandbox's mirror answers 404


@pytest.fixture(scope="module")
def faults_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-faults", 5)
    yield fleet
    down()


def inventory(fleet, tmp_path: Path, all_vars: dict | None = None, hostvars: dict | None = None) -> str:
    doc = yaml.safe_load(fleet.inventory.read_text())
    doc["all"]["vars"].update(all_vars or {})
    for host, extra in (hostvars or {}).items():
        doc["all"]["children"]["sandbox"]["hosts"][host].update(extra)
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def provision_json(fleet, tmp_path, *args, all_vars=None, hostvars=None, limit=None, timeout=300):
    limit_args = ("-l", limit) if limit else ()
    return cli_json(*args, "-i", inventory(fleet, tmp_path, all_vars, hostvars), "--known-hosts",
                    str(fleet.home / "known_hosts"), *limit_args, timeout=timeout)


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/usr/bin/docker", *args], capture_output=True, text=True, timeout=60)


def running(fleet, host: str, pattern: str) -> bool:
    return docker("exec", fleet.container(host), "pgrep", "-f", pattern).returncode == 0


KEEPALIVE = {"provision_keepalive_interval": 1, "provision_keepalive_count_max": 2}


def _run_while(fleet, tmp_path, marker: str, cut, restore):
    """`provision run` a 12 s command on sbx1 and sbx2; cut sbx1 once its command runs; restore afterwards."""
    import sys

    naptime = f"12.{time.monotonic_ns() % 100000:05d}"  # a sleep of its own, to find on the host
    command = f"sleep {naptime}; echo {marker}"

    argv = [sys.executable, "-m", "provision", "run", command, "--json", "-l", "sbx1:sbx2",
            "-i", inventory(fleet, tmp_path, KEEPALIVE),
            "--known-hosts", str(fleet.home / "known_hosts")]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the command's text is not in any argv (it travels on stdin); its `sleep` is
        wait_for(lambda: running(fleet, "sbx1", f"^sleep {naptime}$"), what="the command on sbx1")
        cut()
        out, err = proc.communicate(timeout=60)
    finally:
        restore()
        if proc.poll() is None:
            proc.kill()
    import json

    return proc.returncode, json.loads(out), err, time.monotonic() - start


def test_a_paused_host_is_reported_unreachable_and_the_other_host_finishes(faults_fleet, tmp_path):
    container = faults_fleet.container("sbx1")
    rc, doc, err, elapsed = _run_while(faults_fleet, tmp_path, "paused-marker",
                                       cut=lambda: docker("pause", container),
                                       restore=lambda: docker("unpause", container))
    assert rc == 3, err
    gone = doc["hosts"]["sbx1"]
    assert gone["status"] == "unreachable"
    assert "stopped answering" in gone["message"] and "paused-marker" in gone["message"]
    assert doc["hosts"]["sbx2"]["status"] == "changed"
    assert elapsed < 40  # the watchdog (1 s × 2) noticed; nothing waited for TCP's own 15-minute give-up


def test_a_host_whose_traffic_is_dropped_is_reported_unreachable(faults_fleet, tmp_path):
    pid = docker("inspect", "-f", "{{.State.Pid}}", faults_fleet.container("sbx1")).stdout.strip()
    rule = ["-p", "tcp", "--dport", "22", "-j", "DROP"]

    def iptables(action: str):
        return subprocess.run(["nsenter", "-t", pid, "-n", "iptables", action, "INPUT", *rule],
                              capture_output=True, text=True, timeout=30)

    def cut():
        assert iptables("-I").returncode == 0

    def restore():
        while iptables("-D").returncode == 0:
            pass

    rc, doc, err, elapsed = _run_while(faults_fleet, tmp_path, "dropped-marker", cut, restore)
    assert rc == 3, err
    assert doc["hosts"]["sbx1"]["status"] == "unreachable"
    assert "stopped answering" in doc["hosts"]["sbx1"]["message"]
    assert doc["hosts"]["sbx2"]["status"] == "changed"
    assert elapsed < 40


def test_a_command_past_its_timeout_is_ended_on_the_host(faults_fleet, tmp_path):
    proc, doc = provision_json(faults_fleet, tmp_path, "run", "sleep 47; echo never", limit="sbx2",
                               all_vars={"provision_command_timeout": 2})
    assert proc.returncode == 2, proc.stderr
    step = doc["hosts"]["sbx2"]["steps"][-1]
    assert step["status"] == "failed" and "timed out after 2s" in step["message"]
    assert not running(faults_fleet, "sbx2", "^sleep 47$")  # the host ended it: nothing lingers


def test_a_refusal_known_before_any_change_changes_nothing(faults_fleet, tmp_path):
    """Debian's docker.io is running on the host: provision must refuse (unknown docker_version, unreachable
    key, invalid daemon.json) before it removes docker.io, so the host keeps its working runtime."""
    host = faults_fleet.testinfra("sbx1")
    if not host.package("docker.io").is_installed:
        out = host.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io")
        assert out.rc == 0, out.stderr
    assert host.run("docker info").rc == 0

    cases = [
        ({"docker_version": "9.9.9"}, "docker packages", "docker_version 9.9.9 is not in the repository"),
        ({"docker_gpg_url": MISSING_KEY_URL}, "docker repository", "cannot fetch the repository key"),
    ]
    for hostvars, step_name, message in cases:
        proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx1",
                                   hostvars={"sbx1": hostvars})
        assert proc.returncode == 2, proc.stderr
        failed = [s for s in doc["hosts"]["sbx1"]["steps"] if s["status"] == "failed"]
        assert [s["name"] for s in failed] == [step_name], failed
        assert message in failed[0]["message"] and "nothing was changed" in failed[0]["message"]
        assert not [s for s in doc["hosts"]["sbx1"]["steps"] if s["status"] == "changed"]
        assert host.package("docker.io").is_installed and host.run("docker info").rc == 0
        assert not host.file("/etc/apt/sources.list.d/docker.sources").exists

    host.run("cp /etc/docker/daemon.json /tmp/daemon.json.keep 2>/dev/null || true")
    host.run("printf '{\"log-driver\": ' > /etc/docker/daemon.json")
    try:
        proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx1")
        assert proc.returncode == 2, proc.stderr
        failed = [s for s in doc["hosts"]["sbx1"]["steps"] if s["status"] == "failed"]
        assert [s["name"] for s in failed] == ["daemon.json"]
        assert host.package("docker.io").is_installed and host.run("docker info").rc == 0
    finally:
        host.run("if [ -e /tmp/daemon.json.keep ]; then mv /tmp/daemon.json.keep /etc/docker/daemon.json; "
                 "else rm -f /etc/docker/daemon.json; fi")


def test_a_daemon_json_that_stops_dockerd_is_rolled_back(faults_fleet, tmp_path):
    host = faults_fleet.testinfra("sbx2")
    proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx2")
    assert proc.returncode == 0, proc.stderr
    before = host.file("/etc/docker/daemon.json").content_string

    proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx2",
                               hostvars={"sbx2": {"docker_daemon": {"storage-driver": "no-such-driver"}}})
    assert proc.returncode == 2, proc.stderr
    failed = [s for s in doc["hosts"]["sbx2"]["steps"] if s["status"] == "failed"]
    assert [s["name"] for s in failed] == ["docker service"]
    assert "dockerd did not start with the new daemon.json" in failed[0]["message"]
    message = failed[0]["message"]  # dockerd's own words, from the journal (their wording varies by run)
    assert "no-such-driver" in message or "graphdriver" in message, message
    assert "docker started again with the previous daemon.json" in failed[0]["message"]
    assert host.file("/etc/docker/daemon.json").content_string == before
    assert host.service("docker").is_running and host.run("docker info").rc == 0

    proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx2")  # converged
    assert proc.returncode == 0 and doc["hosts"]["sbx2"]["changed"] == 0, proc.stderr


def _install_in_background(fleet, tmp_path, host: str) -> subprocess.Popen:
    import sys

    argv = [sys.executable, "-m", "provision", "docker", "install", "--json", "-l", host,
            "-i", inventory(fleet, tmp_path, KEEPALIVE), "--known-hosts", str(fleet.home / "known_hosts")]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _on(fleet, host: str, shell: str) -> subprocess.CompletedProcess:
    return docker("exec", fleet.container(host), "sh", "-c", shell)


# dpkg at work inside provision's detached "docker packages" unit (not the probe's short `dpkg --audit`)
PACKAGES_UNIT_DPKG = ("systemctl list-units --plain --no-legend --state=active 'provision-apt-*-docker-packages.service' "
                      "| grep -q . && pgrep -x dpkg")


def test_an_ssh_cut_mid_apt_does_not_kill_dpkg_and_a_rerun_converges(faults_fleet, tmp_path):
    import json

    proc = _install_in_background(faults_fleet, tmp_path, "sbx3")
    try:
        wait_for(lambda: _on(faults_fleet, "sbx3", PACKAGES_UNIT_DPKG).returncode == 0, timeout=180,
                 what="dpkg running on sbx3")
        assert _on(faults_fleet, "sbx3", "pkill -f '^sshd: root@notty'").returncode == 0  # the connection drops
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, err
    result = json.loads(out)["hosts"]["sbx3"]
    assert result["status"] == "unreachable" and "docker packages" in result["message"], result
    # dpkg ran on in its systemd unit and finished the install
    wait_for(lambda: _on(faults_fleet, "sbx3", "systemctl list-units --plain --no-legend --state=active,activating "
                                               "'provision-apt-*' | grep -q .").returncode != 0,
             timeout=180, what="the detached apt unit to finish")
    assert _on(faults_fleet, "sbx3", "dpkg-query -W -f='${Status}' docker-ce").stdout == "install ok installed"

    again, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx3")
    assert again.returncode == 0, again.stderr
    again, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx3")
    assert again.returncode == 0 and doc["hosts"]["sbx3"]["changed"] == 0, again.stderr


def test_a_dpkg_killed_half_way_is_repaired_by_the_next_run(faults_fleet, tmp_path):
    proc = _install_in_background(faults_fleet, tmp_path, "sbx4")
    try:
        wait_for(lambda: _on(faults_fleet, "sbx4", PACKAGES_UNIT_DPKG).returncode == 0, timeout=180,
                 what="dpkg running on sbx4")
        _on(faults_fleet, "sbx4", "pkill -9 -x dpkg")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 2), err  # 2 when dpkg was killed mid-package (the usual case)

    again, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx4")
    assert again.returncode == 0, again.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx4"]["steps"]}
    if proc.returncode == 2:
        assert steps["dpkg state"]["status"] == "changed", steps
    assert _on(faults_fleet, "sbx4", "dpkg --audit").stdout.strip() == ""
    assert _on(faults_fleet, "sbx4", "docker info >/dev/null && echo up").stdout.strip() == "up"
    again, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx4")
    assert again.returncode == 0 and doc["hosts"]["sbx4"]["changed"] == 0, again.stderr


class ArgvSampler:
    """Samples every process's argv on a host (docker exec, outside provision) while a run goes on."""

    def __init__(self, fleet, host: str) -> None:
        self.container = fleet.container(host)
        docker("exec", self.container, "rm", "-f", "/tmp/stop-sampler")
        self.proc = subprocess.Popen(
            ["/usr/bin/docker", "exec", self.container, "sh", "-c",
             "i=0; while [ ! -e /tmp/stop-sampler ] && [ $i -lt 6000 ]; do "
             "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo; i=$((i+1)); sleep 0.02; done"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def seen(self) -> str:
        docker("exec", self.container, "touch", "/tmp/stop-sampler")
        out, _ = self.proc.communicate(timeout=60)
        return out


def test_a_password_in_daemon_json_never_reaches_output_argv_or_disk(faults_fleet, tmp_path):
    secret = "s3cretPw-" + str(time.monotonic_ns())[-6:]
    # a URL with credentials in daemon.json (`proxies` is the usual place, but the sandbox's Docker 20.10 predates
    # it and refuses credentials in mirror URLs; an engine label carries the same URL; the redaction is the same)
    proxies = {"docker_daemon": {"labels": [f"proxy=http://bob:{secret}@proxy.invalid:3128"]}}
    host = faults_fleet.testinfra("sbx5")
    proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx5")
    assert proc.returncode == 0, proc.stderr

    check = subprocess.run(_cli_argv(faults_fleet, tmp_path, proxies, "docker", "install", "--check", "-l", "sbx5"),
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    assert "http://***:***@proxy.invalid:3128" in check.stderr + check.stdout  # the diff shows the change...
    sampler = ArgvSampler(faults_fleet, "sbx5")
    proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx5", hostvars={"sbx5": proxies})
    argv_seen = sampler.seen()
    assert proc.returncode == 0, proc.stderr
    facts = subprocess.run(_cli_argv(faults_fleet, tmp_path, proxies, "facts", "--json", "-l", "sbx5"),
                           capture_output=True, text=True, timeout=300)
    assert facts.returncode == 0, facts.stderr
    assert "proxy.invalid" in facts.stdout
    for where, text in (("--check", check.stdout + check.stderr), ("install output", proc.stdout + proc.stderr),
                        ("facts --json", facts.stdout), ("the host's argv", argv_seen)):
        assert secret not in text, f"the proxy password reached {where}"
    daemon = host.file("/etc/docker/daemon.json")
    assert secret in daemon.content_string and daemon.mode == 0o600
    assert len(host.run("ls /etc/docker/daemon.json.provision-bak-*").stdout.split()) <= 1
    on_disk = host.run(f"grep -rl --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=run "
                       f"-e {secret} / 2>/dev/null").stdout.split()
    assert on_disk == ["/etc/docker/daemon.json"], on_disk  # nothing else (no logs, no leftover scripts)
    assert host.run("ls /dev/shm | grep -c provision").stdout.strip() == "0"

    host.run("rm -f /etc/docker/daemon.json.provision-bak-*")


def _cli_argv(fleet, tmp_path, hostvars_for_sbx5: dict, *args: str) -> list[str]:
    import sys

    sub = tmp_path / "cli"
    sub.mkdir(exist_ok=True)
    return [sys.executable, "-m", "provision", *args, "-i",
            inventory(fleet, sub, hostvars={"sbx5": hostvars_for_sbx5}), "--known-hosts", str(fleet.home / "known_hosts")]


def test_a_become_password_run_keeps_the_script_off_argv_and_leaves_tmpfs_clean(faults_fleet, tmp_path):
    import os
    import sys

    marker = "argv-marker-" + str(time.monotonic_ns())[-6:]
    sampler = ArgvSampler(faults_fleet, "sbx1")
    proc = subprocess.run([sys.executable, "-m", "provision", "run", f"echo {marker}; id -un; sleep 1", "--become",
                           "--json", "-l", "sbx1", "-i",
                           inventory(faults_fleet, tmp_path, hostvars={"sbx1": {"ansible_user": "sandbox"}}),
                           "--known-hosts", str(faults_fleet.home / "known_hosts")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PROVISION_BECOME_PASSWORD": faults_fleet.become_password})
    argv_seen = sampler.seen()
    assert proc.returncode == 0, proc.stderr
    assert f"{marker}\\nroot" in proc.stdout  # the output, JSON-escaped
    assert marker not in argv_seen and faults_fleet.become_password not in argv_seen
    assert _on(faults_fleet, "sbx1", "ls /dev/shm | grep -c provision").stdout.strip() == "0"


def test_docker_install_takes_the_host_lock_before_its_first_change(faults_fleet, tmp_path):
    """A run that would change the engine is refused while another run holds the host's lock (a deploy, or
    a killed run's stale lock); a no-op run needs no lock; `provision unlock` breaks it deliberately."""
    host = faults_fleet.testinfra("sbx2")
    proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx2")
    assert proc.returncode == 0, proc.stderr
    holder = '{"action": "deploy", "by": "ana@laptop", "pid": 999999, "since": "2026-12-01T10:00:00+0000", ' \
             '"stack": "ml", "token": "t0k3n"}'
    host.run(f"mkdir -p /var/lib/provision/deploy.lock && printf '%s\\n' '{holder}' > /var/lib/provision/deploy.lock/holder")
    before = host.file("/etc/docker/daemon.json").content_string
    try:
        proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx2")  # no-op: no lock needed
        assert proc.returncode == 0 and doc["hosts"]["sbx2"]["changed"] == 0, proc.stderr
        change = {"sbx2": {"docker_daemon": {"max-concurrent-downloads": 4}}}
        proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx2", hostvars=change)
        assert proc.returncode == 2, proc.stderr
        message = json.dumps(doc["hosts"]["sbx2"])
        assert "another run holds the host lock" in message and "ana@laptop" in message and "provision unlock" in message
        assert host.file("/etc/docker/daemon.json").content_string == before  # refused before any change
        unlock = subprocess.run(_cli_argv(faults_fleet, tmp_path, {}, "unlock", "--yes", "-l", "sbx2"),
                                capture_output=True, text=True, timeout=120)
        assert unlock.returncode == 0, unlock.stderr
        assert "broke" in host.file("/var/log/provision/audit.log").content_string
        proc, doc = provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx2", hostvars=change)
        assert proc.returncode == 0, proc.stderr
        assert not host.file("/var/lib/provision/deploy.lock").exists  # released after the change
    finally:
        host.run("rm -rf /var/lib/provision/deploy.lock")
        provision_json(faults_fleet, tmp_path, "docker", "install", limit="sbx2")
