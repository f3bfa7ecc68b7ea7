"""The Vagrantfile's docker provider end to end, exactly as README's "Vagrant" block shows it.

`provision sandbox image` → `vagrant up --provider=docker` (its trigger runs `provision sandbox attach`)
→ `provision bootstrap -i vagrant` → `provision deploy -i vagrant` → `provision status -i vagrant` →
`vagrant destroy -f`: the lines are read from README.md between the vagrant-loop markers and run in
that order, in the repository root (where the Vagrantfile is). Two machines vg1/vg2 from the sandbox
host image, with a test-private VAGRANT_DOTFILE_PATH, VAGRANT_HOME and PROVISION_HOME (key,
known_hosts) under tmp, so a user's own .vagrant machines are never touched; the offline upstreams are
fleet `<prefix>vagrant`. In CI (CI=true) a missing vagrant or Docker engine is a failure, never a skip.
The virtualbox/libvirt providers are not exercised here (no usable VM hypervisor); they are for users'
machines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import engine_available

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ["vg1", "vg2"]
BEGIN, END = "<!-- vagrant-loop:begin", "<!-- vagrant-loop:end -->"


def readme_lines() -> list[str]:
    """The commands of README's Vagrant block, comments stripped."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index(BEGIN):text.index(END)]
    body = block.split("```sh\n", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in body.splitlines() if line.strip()]


def test_the_readme_block_is_the_loop_the_issue_names():
    lines = readme_lines()
    assert lines[1:] == ["vagrant up --provider=docker", "provision bootstrap -i vagrant", "provision deploy -i vagrant",
                         "provision status -i vagrant", "vagrant destroy -f"]


def _require(problem: str | None) -> None:
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Vagrant e2e test, but: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """README's Vagrant lines run in order (all but `vagrant destroy -f`, which is the teardown):
    {line: CompletedProcess}, plus the env they ran with."""
    bin_dir = Path(sys.executable).parent  # this checkout's `provision` console script
    # Debian's vagrant drives Debian's docker client: /usr/bin first, as scripts/install-deps.sh assumes.
    path = f"/usr/bin:{bin_dir}:" + os.environ.get("PATH", "")
    _require(None if shutil.which("vagrant", path=path) else
             "vagrant is not installed (`apt-get install --no-install-recommends vagrant`; scripts/install-deps.sh does it)")
    _require(None if (bin_dir / "provision").is_file() else f"no provision console script in {bin_dir} (pip install -e .)")
    _require(engine_available())
    tmp = tmp_path_factory.mktemp("vagrant")
    fleet = os.environ.get("PROVISION_E2E_PREFIX", "") + "vagrant"
    env = {**os.environ, "PATH": path, "VAGRANT_HOSTS": str(len(HOSTS)),
           "VAGRANT_DOTFILE_PATH": str(tmp / "dotfile"), "VAGRANT_HOME": str(tmp / "vagrant.d"),
           "PROVISION_HOME": str(tmp / "provision-home"), "VAGRANT_CHECKPOINT_DISABLE": "1",
           "PROVISION": str(bin_dir / "provision"), "PROVISION_VAGRANT_FLEET": fleet,
           "PROVISION_CACHE": str(tmp_path_factory.getbasetemp() / "provision-cache"), "NO_COLOR": "1"}
    for name in ("PROVISION_BECOME_PASSWORD", "PROVISION_INVENTORY", "PROVISION_KNOWN_HOSTS", "COMPOSE_FILE"):
        env.pop(name, None)

    def sh(line: str | list[str], timeout: float = 900) -> subprocess.CompletedProcess:
        argv = ["bash", "-c", line] if isinstance(line, str) else line
        return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    lines = readme_lines()
    teardown = [line for line in lines if line.startswith("vagrant destroy")]
    ran: dict[str, subprocess.CompletedProcess] = {}
    try:
        for line in lines:
            if line in teardown:
                continue
            ran[line] = proc = sh(line)
            assert proc.returncode == 0, f"`{line}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        yield ran, env, sh
    finally:
        for line in teardown:
            down = sh(line, timeout=300)
            assert down.returncode == 0, f"`{line}` failed:\n{down.stdout}\n{down.stderr}"
        sh(f"provision sandbox down --fleet {fleet} --inventory-out {tmp / 'unused.yml'}", timeout=300)
        vars_file = ROOT / "inventories" / "group_vars" / "vagrant" / "sandbox-upstreams.yml"
        if vars_file.is_file() and vars_file.read_text().startswith("# Written by `provision sandbox attach`"):
            vars_file.unlink()  # it points at upstreams that are gone now


def _json(sh, line: str) -> dict:
    proc = sh(line)
    assert proc.returncode == 0, f"`{line}` exited {proc.returncode}: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def test_inventory_lists_the_machines_on_loopback(loop):
    inventory = ROOT / "inventories" / "vagrant.yml"
    hosts = yaml.safe_load(inventory.read_text())["all"]["children"]["vagrant"]["hosts"]
    assert sorted(hosts) == HOSTS
    for hv in hosts.values():
        assert hv["ansible_host"] == "127.0.0.1" and hv["ansible_user"] == "root"
        assert Path(hv["ansible_ssh_private_key_file"]).is_file()
    assert len({hv["ansible_port"] for hv in hosts.values()}) == len(HOSTS)


def test_ssh_is_published_on_loopback_only(loop):
    _, env, _ = loop
    ports = {hv["ansible_port"] for hv in yaml.safe_load((ROOT / "inventories" / "vagrant.yml").read_text())
             ["all"]["children"]["vagrant"]["hosts"].values()}
    ids = (Path(env["VAGRANT_DOTFILE_PATH"]) / "machines" / host / "docker" / "id" for host in HOSTS)
    for cid in ids:
        out = subprocess.run(["/usr/bin/docker", "port", cid.read_text().strip(), "22/tcp"],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out and all(line.startswith("127.0.0.1:") for line in out), out
        assert int(out[0].rsplit(":", 1)[1]) in ports


def test_bootstrap_installed_docker_and_hello_world_answered(loop):
    ran, _, sh = loop
    assert "vg1" in ran["provision bootstrap -i vagrant"].stdout + ran["provision bootstrap -i vagrant"].stderr
    doc = _json(sh, "provision verify -i vagrant --json")
    for host in HOSTS:
        assert doc["hosts"][host]["status"] == "ok", doc["hosts"][host]


def test_deploy_runs_the_stack_the_group_vars_name(loop):
    _, env, sh = loop
    doc = _json(sh, "provision status -i vagrant --json")
    for host in HOSTS:
        services = {row["service"]: row for row in doc["hosts"][host]["services"]}
        assert services["web"]["state"] == "running", services
    again = _json(sh, "provision deploy -i vagrant --json")  # converged: a second run changes nothing
    assert again["summary"]["changed"] == 0 and again["summary"]["failed"] == 0, again["summary"]
    request = """bash -c 'exec 3<>/dev/tcp/127.0.0.1/8088; printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3'"""
    proc = sh([env["PROVISION"], "run", "-i", "vagrant", "--json", request])
    assert proc.returncode == 0, proc.stderr
    for host in HOSTS:
        assert "hello from provision" in json.loads(proc.stdout)["hosts"][host]["stdout"]


def test_run_reports_each_hostname(loop):
    _, _, sh = loop
    doc = _json(sh, "provision run -i vagrant --json hostname")
    assert {h: doc["hosts"][h]["stdout"].strip() for h in HOSTS} == {h: h for h in HOSTS}
