"""The Vagrantfile's docker provider end to end: `vagrant up`, scripts/vagrant-inventory.py, provision over SSH.

Two machines vg1/vg2 from the sandbox host image, with a test-private VAGRANT_DOTFILE_PATH, VAGRANT_HOME
and PROVISION_HOME (key) under tmp, so a user's own .vagrant machines are never touched. In CI (CI=true)
a missing vagrant or Docker engine is a failure, never a skip. The virtualbox/libvirt providers are not
exercised here (no usable VM hypervisor); they are for users' machines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import cli_json, engine_available

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ["vg1", "vg2"]


def _require(problem: str | None) -> None:
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Vagrant e2e test, but: {problem}")
        pytest.skip(problem)


def _ensure_host_image() -> None:
    """What `provision sandbox up` does first (it cannot be asked for 0 hosts): build the image if stale."""
    from provision_sandbox import image
    from provision_sandbox.apt_sources import machine_debian_mirror
    from provision_sandbox.engine import local_docker

    client = local_docker()
    if not image.image_is_current(client):
        image.build_host_image(client, machine_debian_mirror(), log=lambda msg: print(msg, file=sys.stderr))


@pytest.fixture(scope="module")
def vagrant(tmp_path_factory):
    # Debian's vagrant drives Debian's docker client: /usr/bin first, as scripts/install-deps.sh assumes.
    path = "/usr/bin:" + os.environ.get("PATH", "")
    _require(None if shutil.which("vagrant", path=path) else
             "vagrant is not installed (`apt-get install --no-install-recommends vagrant`; scripts/install-deps.sh does it)")
    _require(engine_available())
    _ensure_host_image()
    tmp = tmp_path_factory.mktemp("vagrant")
    env = {**os.environ, "PATH": path, "VAGRANT_HOSTS": str(len(HOSTS)),
           "VAGRANT_DOTFILE_PATH": str(tmp / "dotfile"), "VAGRANT_HOME": str(tmp / "vagrant.d"),
           "PROVISION_HOME": str(tmp / "provision-home"), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    env.pop("PROVISION_BECOME_PASSWORD", None)

    def vagrant_cmd(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(["vagrant", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)

    try:
        up = vagrant_cmd("up", "--provider=docker")
        assert up.returncode == 0, f"vagrant up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}"
        yield tmp, env
    finally:
        down = vagrant_cmd("destroy", "-f")
        assert down.returncode == 0, f"vagrant destroy failed:\n{down.stdout}\n{down.stderr}"


@pytest.fixture(scope="module")
def inventory(vagrant) -> Path:
    tmp, env = vagrant
    out = tmp / "vagrant.yml"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "vagrant-inventory.py"), "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return out


def test_inventory_lists_the_machines_on_loopback(inventory):
    hosts = yaml.safe_load(inventory.read_text())["all"]["children"]["vagrant"]["hosts"]
    assert sorted(hosts) == HOSTS
    for hv in hosts.values():
        assert hv["ansible_host"] == "127.0.0.1" and hv["ansible_user"] == "root"
        assert Path(hv["ansible_ssh_private_key_file"]).is_file()
    assert len({hv["ansible_port"] for hv in hosts.values()}) == len(HOSTS)


def test_ssh_is_published_on_loopback_only(vagrant, inventory):
    ports = {hv["ansible_port"] for hv in yaml.safe_load(inventory.read_text())["all"]["children"]["vagrant"]["hosts"].values()}
    tmp, env = vagrant
    ids = (Path(env["VAGRANT_DOTFILE_PATH"]) / "machines" / host / "docker" / "id" for host in HOSTS)
    for cid in ids:
        out = subprocess.run(["/usr/bin/docker", "port", cid.read_text().strip(), "22/tcp"],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out and all(line.startswith("127.0.0.1:") for line in out), out
        assert int(out[0].rsplit(":", 1)[1]) in ports


def test_facts_over_ssh(vagrant, inventory):
    tmp, _ = vagrant
    proc, doc = cli_json("facts", "-i", str(inventory), "--known-hosts", str(tmp / "known_hosts"))
    assert proc.returncode == 0, proc.stderr
    for host in HOSTS:
        result = doc["hosts"][host]
        assert result["status"] == "ok", result
        assert result["facts"]["os"]["id"] == "debian" and result["facts"]["os"]["version_id"] == "12"
        assert result["facts"]["systemd"]


def test_run_reports_each_hostname(vagrant, inventory):
    tmp, _ = vagrant
    proc, doc = cli_json("run", "-i", str(inventory), "--known-hosts", str(tmp / "known_hosts"), "hostname")
    assert proc.returncode == 0, proc.stderr
    assert {h: doc["hosts"][h]["stdout"].strip() for h in HOSTS} == {h: h for h in HOSTS}
