"""`provision swarm init` end to end on its own fleet `e2e-swarm`: sbx1 (swarm_managers) and sbx2
(swarm_workers, a SIMULATED GPU host whose `gpu` var is removed, so its facts decide the GPU label).
provision logs in as the non-root `sandbox` user and becomes root through sudo (as on most cloud
images), so every command it runs as root goes through sudo's log. Docker is installed first with
`provision docker install`. The tests run in file order."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.e2e.conftest import cli, cli_json, start_fleet, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def swarm_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-swarm", 2, gpu_hosts=1)
    try:
        doc = yaml.safe_load(fleet.inventory.read_text())
        children = doc["all"]["children"]
        children["gpu"]["hosts"]["sbx2"].pop("gpu")  # the facts (simulated nvidia-smi) must find the GPU
        children["swarm_managers"] = {"hosts": {"sbx1": None}}
        children["swarm_workers"] = {"hosts": {"sbx2": None}}
        doc["all"]["vars"].update(ansible_user="sandbox", ansible_become=True)
        for host in ("sbx1", "sbx2"):  # test setup, not provision: passwordless sudo, as cloud images have it
            docker_exec(fleet, host, "echo 'sandbox ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-cloud-user "
                                     "&& chmod 0440 /etc/sudoers.d/90-cloud-user")
        inventory = fleet.write_inventory(fleet.home / "swarm.yml", doc)
        installed = cli("docker", "install", "-i", str(inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                        timeout=600)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        yield fleet, inventory
    finally:
        down()


def docker_exec(fleet, host: str, script: str, *, detach: bool = False) -> str:
    """Test setup and inspection as root inside the sandbox host (never through provision)."""
    proc = subprocess.run(["/usr/bin/docker", "exec", *(["-d"] if detach else []), fleet.container(host),
                           "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# Records every distinct command line (/proc/PID/cmdline) seen on the host while it runs: the place
# where a token given as an argument would show (as it would in `ps`, /proc and audit logs).
ARGV_WATCH = r"""
import os, time
seen, out = set(), open("/run/sp-argv.log", "w")
while not os.path.exists("/run/sp-argv.stop"):
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                line = open("/proc/%s/cmdline" % pid, "rb").read()
            except OSError:
                continue
            if line and line not in seen:
                seen.add(line)
                out.write(line.replace(b"\0", b" ").decode("utf-8", "replace") + "\n")
                out.flush()
    time.sleep(0.005)  # the sampling interval of this watcher (it runs until told to stop), not a wait
out.write("@@stopped\n")
out.close()
"""


def poll(check, what: str, deadline_s: float = 30):
    return wait_for(check, deadline_s, what, interval=0.05)


def start_argv_watch(fleet, host: str) -> None:
    docker_exec(fleet, host, "rm -f /run/sp-argv.log /run/sp-argv.stop")
    docker_exec(fleet, host, f"exec python3 -c '{ARGV_WATCH}'", detach=True)
    poll(lambda: "sp-argv" in docker_exec(fleet, host, "cat /run/sp-argv.log 2>/dev/null || true"),
         f"the argv watcher on {host}")


def stop_argv_watch(fleet, host: str) -> list[str]:
    docker_exec(fleet, host, "touch /run/sp-argv.stop")
    text = poll(lambda: (lambda t: t if "@@stopped" in t else "")(docker_exec(fleet, host, "cat /run/sp-argv.log")),
                f"the argv watcher on {host} to stop")
    return text.splitlines()


def swarm(swarm_fleet, *args):
    fleet, inventory = swarm_fleet
    return cli_json("swarm", "init", "-i", str(inventory), "--known-hosts", str(fleet.home / "known_hosts"), *args)


def node_state(fleet, host: str) -> str:
    return fleet.testinfra(host).check_output("docker info --format '{{.Swarm.LocalNodeState}}'")


def test_check_on_fresh_hosts_is_a_no_op(swarm_fleet):
    fleet, _ = swarm_fleet
    proc, doc = swarm(swarm_fleet, "--check")
    assert proc.returncode == 0, proc.stderr
    leader, worker = doc["hosts"]["sbx1"], doc["hosts"]["sbx2"]
    assert [p["step"] for p in leader["plan"]] == ["swarm"]
    address = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                              fleet.container("sbx1")], capture_output=True, text=True).stdout.strip()
    assert leader["plan"][0]["commands"][0] == f"docker swarm init --advertise-addr {address}"
    assert [p["step"] for p in worker["plan"]] == ["swarm", "gpu label"]
    assert worker["plan"][0]["commands"][0].startswith("docker API: POST /swarm/join ")
    assert '"JoinToken": "<worker-join-token>"' in worker["plan"][0]["commands"][0]
    assert "GPU(s) found" in worker["plan"][1]["reason"]
    assert (node_state(fleet, "sbx1"), node_state(fleet, "sbx2")) == ("inactive", "inactive")


def test_init_forms_a_two_node_swarm_with_the_gpu_label_and_no_token_in_argv_or_logs(swarm_fleet):
    fleet, _ = swarm_fleet
    for host in ("sbx1", "sbx2"):
        start_argv_watch(fleet, host)
    try:
        proc, doc = swarm(swarm_fleet)
    finally:
        seen = {host: stop_argv_watch(fleet, host) for host in ("sbx1", "sbx2")}
    assert proc.returncode == 0, proc.stderr
    assert doc["summary"]["changed"] == 2
    assert "SWMTKN" not in proc.stdout + proc.stderr  # join tokens are never shown
    sudo_logs = {host: docker_exec(fleet, host, "journalctl --no-pager -o cat _COMM=sudo") for host in ("sbx1", "sbx2")}
    for host in ("sbx1", "sbx2"):
        # no command line carried a token, and sudo's log (journald; auth.log where rsyslog writes one) has none ...
        assert [line for line in seen[host] if "SWMTKN" in line] == []
        assert [line for line in sudo_logs[host].splitlines() if "SWMTKN" in line] == []
    for host in ("sbx1", "sbx2"):
        # ... while both saw provision's commands (the Engine API's dial-stdio, through sudo)
        assert any("sudo -n docker system dial-stdio" in line for line in seen[host]), seen[host]
        assert "COMMAND=/usr/bin/docker system dial-stdio" in sudo_logs[host]
        # nor anything else in the journal or under /var/log (process accounting, where installed, keeps
        # only a 16-byte command name per process, never arguments: it cannot hold a token)
        assert docker_exec(fleet, host, "journalctl --no-pager -o cat | grep -c SWMTKN || true").strip() == "0"
        assert docker_exec(fleet, host, "grep -rl SWMTKN /var/log || true").strip() == ""
    sbx1 = fleet.testinfra("sbx1")
    nodes = sbx1.check_output("docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'").splitlines()
    assert sorted(line.strip() for line in nodes) == ["sbx1 Leader", "sbx2"]
    labels = sbx1.check_output("docker node ls -q | xargs docker node inspect --format "
                               "'{{.Description.Hostname}} {{index .Spec.Labels \"provision.gpu\"}}'").splitlines()
    assert sorted(l.strip() for l in labels) == ["sbx1", "sbx2 true"]
    assert doc["hosts"]["sbx2"]["swarm"]["cluster_id"] == doc["hosts"]["sbx1"]["swarm"]["cluster_id"]


def test_second_run_changes_nothing(swarm_fleet):
    proc, doc = swarm(swarm_fleet)
    assert proc.returncode == 0, proc.stderr
    assert "SWMTKN" not in proc.stdout + proc.stderr
    assert doc["summary"] == {"ok": 2, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
    assert [s["name"] for s in doc["hosts"]["sbx2"]["steps"]] == ["swarm", "gpu label"]


def test_no_manager_selected_is_bad_input(swarm_fleet):
    proc = cli("swarm", "init", "-i", str(swarm_fleet[1]), "-l", "sbx2")
    assert proc.returncode == 4
    assert "no swarm manager among the selected hosts" in proc.stderr


def test_host_in_another_swarm_fails_and_is_left_alone(swarm_fleet):
    fleet, _ = swarm_fleet
    sbx2 = fleet.testinfra("sbx2")
    sbx2.check_output("docker swarm leave && docker swarm init --advertise-addr eth0")  # test setup, not provision
    own = sbx2.check_output("docker info --format '{{.Swarm.Cluster.ID}}'")
    try:
        proc, doc = swarm(swarm_fleet)
        assert proc.returncode == 2, proc.stderr
        assert doc["hosts"]["sbx1"]["status"] == "ok"
        failed = doc["hosts"]["sbx2"]
        assert failed["status"] == "failed"
        assert "already in another swarm" in failed["steps"][0]["message"]
        assert "never leaves or forces" in failed["steps"][0]["message"]
        assert sbx2.check_output("docker info --format '{{.Swarm.Cluster.ID}}'") == own  # untouched
    finally:
        sbx2.check_output("docker swarm leave --force")
    proc, doc = swarm(swarm_fleet)  # back in: joins again, label again on the new node
    assert proc.returncode == 0, proc.stderr
    assert [(s["name"], s["status"]) for s in doc["hosts"]["sbx2"]["steps"]] == [("swarm", "changed"), ("gpu label", "changed")]
