"""Issue 3 end to end on fresh sandbox hosts, through the sandbox's offline upstreams (the product uses
Docker's real default URLs; only the sandbox knows it is offline). The tests run in file order and
change the two hosts of the `e2e-docker` fleet step by step."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import cli, cli_json, wait_for

pytestmark = pytest.mark.e2e

WRONG_KEY_URL = "https://download.docker.com/linux/debian/wrong-key.gpg"  # served by the sandbox: a valid key, not the repo's
PACKAGES = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin")


def inventory(fleet, tmp_path: Path, hostvars: dict | None = None, name: str = "inv.yml") -> str:
    doc = yaml.safe_load(fleet.inventory.read_text())
    for host, extra in (hostvars or {}).items():
        doc["all"]["children"]["sandbox"]["hosts"][host].update(extra)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def install(fleet, tmp_path, *args, hostvars=None):
    return cli_json("docker", "install", "-i", inventory(fleet, tmp_path, hostvars), "--known-hosts",
                    str(fleet.home / "known_hosts"), *args)


def started(fleet, host: str) -> str:
    """dockerd's start time: changes on every restart."""
    return fleet.testinfra(host).check_output("systemctl show docker -p ActiveEnterTimestampMonotonic --value")


def snapshot(fleet, host: str) -> str:
    h = fleet.testinfra(host)
    return h.check_output("dpkg-query -W -f='${Package} ${Version} ${Status}\\n'; find /etc/apt /etc/docker "
                          "-xdev 2>/dev/null | sort | xargs -r ls -ld --time-style=+%s 2>/dev/null; "
                          "getent group docker || true")


def test_check_on_fresh_hosts_changes_nothing(docker_fleet, tmp_path):
    before = {h: snapshot(docker_fleet, h) for h in docker_fleet.ports}
    proc, doc = install(docker_fleet, tmp_path, "--check")
    assert proc.returncode == 0, proc.stderr
    for host in docker_fleet.ports:
        result = doc["hosts"][host]
        assert result["status"] == "changed"
        planned = [item["step"] for item in result["plan"]]
        assert planned == ["docker repository", "daemon.json", "docker packages", "docker service"]
        repo = result["plan"][0]
        assert any("https://download.docker.com/linux/debian/gpg" in c for c in repo["commands"])
        assert "+Signed-By: /etc/apt/keyrings/docker.asc" in repo["diff"]
        assert '+  "log-driver": "json-file",' in result["plan"][1]["diff"]
        assert snapshot(docker_fleet, host) == before[host]
    assert "$ " in proc.stderr and "+++ /etc/docker/daemon.json" in proc.stderr


def test_wrong_key_fails_that_host_only_and_leaves_apt_working(docker_fleet, tmp_path):
    proc, doc = install(docker_fleet, tmp_path, hostvars={"sbx2": {"docker_gpg_url": WRONG_KEY_URL}})
    assert proc.returncode == 2, proc.stderr
    assert doc["hosts"]["sbx1"]["status"] == "changed"
    bad = doc["hosts"]["sbx2"]
    assert bad["status"] == "failed"
    failed = [s for s in bad["steps"] if s["status"] == "failed"][0]
    assert failed["name"] == "docker repository" and "NO_PUBKEY" in failed["message"]
    assert "partial changes undone" in failed["message"]
    sbx2 = docker_fleet.testinfra("sbx2")
    assert not sbx2.file("/etc/apt/sources.list.d/docker.sources").exists
    assert not sbx2.file("/etc/apt/keyrings/docker.asc").exists
    assert sbx2.run("apt-get update").rc == 0  # nothing half-configured breaks apt


def test_fresh_host_runs_docker_and_verify_says_hello(docker_fleet, tmp_path):
    sbx1 = docker_fleet.testinfra("sbx1")
    for package in PACKAGES:
        assert sbx1.package(package).is_installed
    assert sbx1.service("docker").is_running and sbx1.service("docker").is_enabled
    key = sbx1.file("/etc/apt/keyrings/docker.asc")
    assert key.exists and key.mode == 0o644
    assert "Signed-By: /etc/apt/keyrings/docker.asc" in sbx1.file("/etc/apt/sources.list.d/docker.sources").content_string
    proc, doc = cli_json("verify", "-i", inventory(docker_fleet, tmp_path), "-l", "sbx1",
                         "--known-hosts", str(docker_fleet.home / "known_hosts"))
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx1"]["steps"]}
    assert list(steps) == ["docker version", "docker info", "hello-world", "gpu"]
    assert "Hello from Docker!" in steps["hello-world"]["message"]
    assert steps["gpu"]["status"] == "skipped" and "no NVIDIA GPU" in steps["gpu"]["message"]  # a CPU host


def test_second_run_changes_nothing_and_does_not_restart(docker_fleet, tmp_path):
    before = started(docker_fleet, "sbx1")
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx1")
    assert proc.returncode == 0
    assert doc["hosts"]["sbx1"]["changed"] == 0 and doc["hosts"]["sbx1"]["status"] == "ok"
    assert started(docker_fleet, "sbx1") == before
    # issue 12: the key was checked (and recorded) when it was installed: this run did not download it
    repo = next(s for s in doc["hosts"]["sbx1"]["steps"] if s["name"] == "docker repository")
    assert "(key checked " in repo["message"], repo
    sha, checked, url = docker_fleet.testinfra("sbx1").file("/var/lib/provision/docker-repo-key").content_string.split()
    assert url == "https://download.docker.com/linux/debian/gpg" and checked.isdigit()
    assert sha == docker_fleet.testinfra("sbx1").check_output("sha256sum < /etc/apt/keyrings/docker.asc | cut -d' ' -f1")


def test_refresh_downloads_the_key_again_and_an_old_record_is_checked_again(docker_fleet, tmp_path):
    h = docker_fleet.testinfra("sbx1")
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx1", "--refresh")
    assert proc.returncode == 0 and doc["hosts"]["sbx1"]["changed"] == 0, proc.stderr
    repo = next(s for s in doc["hosts"]["sbx1"]["steps"] if s["name"] == "docker repository")
    assert repo["message"].endswith("(key checked now)"), repo
    sha, checked, url = h.file("/var/lib/provision/docker-repo-key").content_string.split()
    h.run(f"echo '{sha} {int(checked) - 7200} {url}' > /var/lib/provision/docker-repo-key")  # two hours old
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx1", hostvars={"sbx1": {"docker_repo_key_max_age": "1h"}})
    repo = next(s for s in doc["hosts"]["sbx1"]["steps"] if s["name"] == "docker repository")
    assert proc.returncode == 0 and repo["message"].endswith("(key checked now)"), repo
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx1", hostvars={"sbx1": {"docker_repo_key_max_age": "1d"}})
    repo = next(s for s in doc["hosts"]["sbx1"]["steps"] if s["name"] == "docker repository")
    assert proc.returncode == 0 and "(key checked " in repo["message"], repo


def test_users_join_the_docker_group_and_bootstrap_is_idempotent(docker_fleet, tmp_path):
    hostvars = {"sbx1": {"docker_users": ["sandbox"]}}
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx1", hostvars=hostvars)
    assert proc.returncode == 0, proc.stderr
    assert [s["name"] for s in doc["hosts"]["sbx1"]["steps"] if s["changed"]] == ["docker users"]
    assert doc["hosts"]["sbx1"]["notes"] == [
        "sandbox: log out and in again for the docker group to apply (the group is root-equivalent)"]
    assert "docker" in docker_fleet.testinfra("sbx1").user("sandbox").groups
    # bootstrap = facts → docker install → verify, on the same connection; nothing left to change
    proc, doc = cli_json("bootstrap", "-i", inventory(docker_fleet, tmp_path, hostvars), "-l", "sbx1",
                         "--known-hosts", str(docker_fleet.home / "known_hosts"))
    assert proc.returncode == 0, proc.stderr
    host = doc["hosts"]["sbx1"]
    assert host["changed"] == 0 and host["facts"]["docker"]["running"] is True
    names = [s["name"] for s in host["steps"]]
    assert names[0] == "gather facts" and names[-1] == "hello-world"


def test_verify_quotes_the_daemon_error(docker_fleet, tmp_path):
    proc, doc = cli_json("verify", "-i", inventory(docker_fleet, tmp_path, {"sbx1": {"verify_hello_image": "sandbox-registry:5000/no-such-image:1"}}),
                         "-l", "sbx1", "--known-hosts", str(docker_fleet.home / "known_hosts"))
    assert proc.returncode == 2
    failed = doc["hosts"]["sbx1"]["steps"][-1]
    assert failed["name"] == "hello-world" and failed["status"] == "failed"
    assert "no-such-image" in failed["message"] and "exit 125" in failed["message"], failed["message"]


def test_unknown_daemon_json_key_survives_and_a_change_restarts_once(docker_fleet, tmp_path):
    sbx1 = docker_fleet.testinfra("sbx1")
    sbx1.run_expect([0], "python3 - <<'EOF'\nimport json\np='/etc/docker/daemon.json'\nd=json.load(open(p))\n"
                         "d['labels']=['rack=r1']\nopen(p,'w').write(json.dumps(d))\nEOF")
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx1")  # the operator's key alone: nothing to do
    assert doc["hosts"]["sbx1"]["changed"] == 0
    before = started(docker_fleet, "sbx1")
    hostvars = {"sbx1": {"docker_daemon": {"mtu": 1400}}}
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx1", hostvars=hostvars)
    assert proc.returncode == 0, proc.stderr
    changed = [s["name"] for s in doc["hosts"]["sbx1"]["steps"] if s["changed"]]
    assert changed == ["daemon.json", "docker service"]
    assert any("live-restore" in n for n in doc["hosts"]["sbx1"]["notes"])
    after = started(docker_fleet, "sbx1")
    assert after != before
    config = yaml.safe_load(sbx1.file("/etc/docker/daemon.json").content_string)
    assert config["labels"] == ["rack=r1"] and config["mtu"] == 1400
    assert sbx1.check_output("ls /etc/docker | grep -c daemon.json.provision-bak-") != "0"
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx1", hostvars=hostvars)
    assert doc["hosts"]["sbx1"]["changed"] == 0 and started(docker_fleet, "sbx1") == after


def test_debian_docker_io_is_converted_to_docker_ce(docker_fleet, tmp_path):
    sbx2 = docker_fleet.testinfra("sbx2")
    sbx2.run_expect([0], "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io")
    assert sbx2.package("docker.io").is_installed
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx2")
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx2"]["steps"]}
    assert steps["conflicting packages"]["status"] == "changed"
    assert steps["conflicting packages"]["message"].startswith("removing docker.io")
    assert not sbx2.package("docker.io").is_installed and sbx2.package("docker-ce").is_installed
    assert sbx2.service("docker").is_running


def test_dpkg_lock_is_waited_out_and_reported(docker_fleet, tmp_path):
    sbx2 = docker_fleet.testinfra("sbx2")
    held = "/run/provision-test-dpkg-lock-held"
    sbx2.run_expect([0], f"rm -f {held}")
    # the holder marks the moment it holds the lock; its sleep IS the simulated long apt run
    holder = threading.Thread(target=sbx2.run, args=(
        "python3 -c 'import fcntl,time; f=open(\"/var/lib/dpkg/lock-frontend\",\"w\"); "
        f"fcntl.lockf(f, fcntl.LOCK_EX); open(\"{held}\", \"w\").close(); time.sleep(20)'",))
    holder.start()
    wait_for(lambda: sbx2.file(held).exists, 30, "the test process to hold dpkg's lock")
    try:
        # a pin to the older version makes apt work necessary
        proc, doc = install(docker_fleet, tmp_path, "-l", "sbx2", hostvars={"sbx2": {"docker_version": "20.10.23"}})
    finally:
        holder.join()
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx2"]["steps"]}
    assert steps["dpkg lock"]["message"].startswith("waited ")
    assert "held by pid" in steps["dpkg lock"]["message"] and "python3" in steps["dpkg lock"]["message"]
    assert sbx2.package("docker-ce").version == "5:20.10.23-1~debian.12~bookworm"


def test_unknown_pin_lists_available_versions(docker_fleet, tmp_path):
    proc, doc = install(docker_fleet, tmp_path, "-l", "sbx2", hostvars={"sbx2": {"docker_version": "27.3.1"}})
    assert proc.returncode == 2
    message = doc["hosts"]["sbx2"]["steps"][-1]["message"]
    assert message.startswith("docker_version 27.3.1 is not in the repository; available: 5:20.10.24-1~debian.12~bookworm")


def test_bad_docker_vars_are_bad_input(docker_fleet, tmp_path):
    proc = cli("docker", "install", "-i", inventory(docker_fleet, tmp_path, {"sbx1": {"docker_daemon": ["mtu"]}}),
               "--known-hosts", str(tmp_path / "kh"))
    assert proc.returncode == 4
    assert "host 'sbx1': docker_daemon: Input should be a valid dictionary" in proc.stderr
    assert not (tmp_path / "kh").exists()


def test_uninstall_keeps_data_unless_purged(docker_fleet, tmp_path):
    proc, doc = cli_json("docker", "uninstall", "-i", inventory(docker_fleet, tmp_path), "-l", "sbx2",
                         "--known-hosts", str(docker_fleet.home / "known_hosts"))
    assert proc.returncode == 0, proc.stderr
    sbx2 = docker_fleet.testinfra("sbx2")
    assert not sbx2.package("docker-ce").is_installed
    assert not sbx2.file("/etc/apt/sources.list.d/docker.sources").exists
    assert sbx2.file("/var/lib/docker").is_directory
