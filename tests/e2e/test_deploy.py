"""Issue 5 end to end: `provision deploy` of the shipped playbooks onto real sandbox hosts (fleet
`e2e-deploy`, Docker installed by provision itself), through the docker SDK over SSH. The tests run
in file order and evolve the same `ml` stack step by step."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.compose_parity import files_containing
from tests.e2e.conftest import cli, cli_json, start_fleet, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hf_SECRET_never_printed_7f3a"
ENV = {"HF_TOKEN": SECRET}


@pytest.fixture(scope="module")
def deploy_fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "e2e-deploy", 2)
    proc = cli("docker", "install", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
               env={"PROVISION_HOME": str(fleet.home)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield fleet
    down()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the shipped playbooks (the tests edit their copies, never the originals)."""
    target = tmp_path_factory.mktemp("project") / "playbooks"
    shutil.copytree(ROOT / "playbooks", target)
    return target


def run(fleet, *args, env=None, playbook=None):
    extra = [str(playbook)] if playbook else []
    return cli_json(*args, *extra, "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                    env={"PROVISION_HOME": str(fleet.home), **ENV, **(env or {})}, timeout=600)


def host_exec(fleet, host: str, *argv: str) -> str:
    proc = subprocess.run(["docker", "exec", fleet.container(host), *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def container_ids(fleet, host: str) -> dict[str, str]:
    out = host_exec(fleet, host, "docker", "ps", "-a", "--filter", "label=io.provision.stack=ml",
                    "--format", "{{.Names}} {{.ID}} {{.State}}")
    return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}


def http(fleet, host: str, port: int, path: str, body: str | None = None) -> str:
    """An HTTP request to the host's own loopback, made inside the host (the published port)."""
    method = "POST" if body is not None else "GET"
    payload = body or ""
    script = (f'exec 3<>/dev/tcp/127.0.0.1/{port}; printf "{method} {path} HTTP/1.0\\r\\nContent-Length: '
              f'{len(payload)}\\r\\n\\r\\n%s" "$1" >&3; cat <&3')
    return host_exec(fleet, host, "bash", "-c", script, "_", payload)


def edit(playbook: Path, change) -> None:
    doc = yaml.safe_load(playbook.read_text())
    change(doc)
    playbook.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_check_shows_the_plan_and_touches_nothing(deploy_fleet, project):
    proc, doc = run(deploy_fleet, "deploy", "--check", playbook=project / "ml-stack.yml")
    assert proc.returncode == 0, proc.stderr
    plan = {item["object"]: item["reason"] for item in doc["hosts"]["sbx1"]["plan"]}
    assert plan["network ml_ml-network"] == "create (bridge)"
    assert plan["volume hf-cache"] == "create"
    assert plan["volume ml_vectordb-data"] == "create"
    assert plan["service vectordb"].startswith("create ml-vectordb-1")
    assert plan["service app"].startswith("create ml-app-1")
    assert "gpu-worker" not in json.dumps(doc)  # `hosts: gpu` selects no host of this CPU fleet
    assert container_ids(deploy_fleet, "sbx1") == {}
    assert "ml_ml-network" not in host_exec(deploy_fleet, "sbx1", "docker", "network", "ls")


def test_deploy_ml_stack_networks_volumes_and_ports(deploy_fleet, project):
    proc, doc = run(deploy_fleet, "deploy", playbook=project / "ml-stack.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in ("sbx1", "sbx2"):
        steps = {s["name"]: s for s in doc["hosts"][host]["steps"]}
        assert steps["image provision-ml/app:1"]["status"] == "changed"  # shipped over SSH
        assert "sent" in steps["image provision-ml/app:1"]["message"]
        # the published port answers on the host; the app reaches the DB by its service name
        assert "stored greeting" in http(deploy_fleet, host, 8000, "/cgi-bin/put?greeting", f"hi from {host}")
        assert f"app asked http://vectordb:8000: hi from {host}" in http(deploy_fleet, host, 8080, "/cgi-bin/ask?greeting")
        assert "HF_TOKEN is set" in http(deploy_fleet, host, 8080, "/cgi-bin/secret-set")
        # the relative bind mount was synced to the stack's remote dir
        assert "synced" in host_exec(deploy_fleet, host, "docker", "exec", "ml-app-1", "cat", "/workspace/data/README.txt")


def test_secrets_never_reach_stdout_json_or_the_audit_log(deploy_fleet, project):
    """The ml stack's Compose secret hf_token (`environment: HF_TOKEN`): a file at /run/secrets/hf_token
    in the app, and the value nowhere else: not printed, not in the container's environment or inspect
    output, not on the host's disk outside the secrets' tmpfs (under /run)."""
    proc, doc = run(deploy_fleet, "deploy", playbook=project / "ml-stack.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert SECRET not in proc.stdout and SECRET not in proc.stderr and SECRET not in json.dumps(doc)
    for host in ("sbx1", "sbx2"):
        audit = host_exec(deploy_fleet, host, "cat", "/var/log/provision/audit.log")
        assert SECRET not in audit
        entries = [json.loads(line) for line in audit.splitlines()]
        assert entries[-1]["action"] == "deploy" and entries[-1]["stack"] == "ml"
        assert host_exec(deploy_fleet, host, "docker", "exec", "ml-app-1", "cat", "/run/secrets/hf_token") == SECRET
        assert SECRET not in host_exec(deploy_fleet, host, "docker", "exec", "ml-app-1", "env")
        assert SECRET not in host_exec(deploy_fleet, host, "docker", "inspect", "ml-app-1")
        source = host_exec(deploy_fleet, host, "docker", "inspect", "-f",
                           '{{range .Mounts}}{{if eq .Destination "/run/secrets/hf_token"}}{{.Source}}{{end}}{{end}}',
                           "ml-app-1").strip()
        assert source.startswith("/run/"), source
        assert host_exec(deploy_fleet, host, "stat", "-f", "-c", "%T", source).strip() == "tmpfs"
        assert files_containing(deploy_fleet.container(host), SECRET) == []


def test_redeploy_unchanged_recreates_nothing(deploy_fleet, project):
    before = {h: container_ids(deploy_fleet, h) for h in ("sbx1", "sbx2")}
    proc, doc = run(deploy_fleet, "deploy", playbook=project / "ml-stack.yml")
    assert proc.returncode == 0, proc.stderr
    assert {h: container_ids(deploy_fleet, h) for h in ("sbx1", "sbx2")} == before
    for host in ("sbx1", "sbx2"):
        assert doc["hosts"][host]["changed"] == 0, doc["hosts"][host]["steps"]
        assert doc["hosts"][host]["services"]["app"]["actions"] == ["keep"]


def test_check_after_a_deploy_plans_keep_for_every_object(deploy_fleet, project):
    proc, doc = run(deploy_fleet, "deploy", "--check", playbook=project / "ml-stack.yml")
    assert proc.returncode == 0, proc.stderr
    plan = doc["hosts"]["sbx1"]["plan"]
    assert {item["action"] for item in plan} == {"keep"}, plan
    assert {item["object"] for item in plan} >= {"network ml_ml-network", "volume hf-cache", "service vectordb",
                                                 "service app", "image provision-ml/app:1"}
    assert "nothing to change" in proc.stderr


def test_one_env_change_replaces_only_that_service_and_the_volume_keeps_data(deploy_fleet, project):
    playbook = project / "ml-stack.yml"
    edit(playbook, lambda d: d["services"]["vectordb"].setdefault("environment", {}).update({"LOG_LEVEL": "debug"}))
    before = container_ids(deploy_fleet, "sbx1")
    proc, doc = run(deploy_fleet, "deploy", playbook=playbook)
    assert proc.returncode == 0, proc.stderr
    after = container_ids(deploy_fleet, "sbx1")
    assert after["ml-app-1"] == before["ml-app-1"]
    assert after["ml-vectordb-1"] != before["ml-vectordb-1"]
    assert after["ml-vectordb-1.previous"] == before["ml-vectordb-1"]  # kept, stopped, for rollback
    assert doc["hosts"]["sbx1"]["services"]["vectordb"]["actions"] == ["replace"]
    # the named volume kept the file written before the replacement
    assert "hi from sbx1" in http(deploy_fleet, "sbx1", 8000, "/cgi-bin/get?greeting")


def test_failing_healthcheck_rolls_back_and_the_old_container_serves(deploy_fleet, project):
    playbook = project / "ml-stack.yml"
    good = playbook.read_text()
    edit(playbook, lambda d: d["services"]["vectordb"].update(
        environment={"LOG_LEVEL": "trace"},
        healthcheck={"test": ["CMD-SHELL", "echo broken-health-probe; exit 1"], "interval": "1s", "retries": 2}))
    before = container_ids(deploy_fleet, "sbx1")
    proc, doc = run(deploy_fleet, "deploy", playbook=playbook)
    playbook.write_text(good)
    assert proc.returncode == 2, proc.stdout
    result = doc["hosts"]["sbx1"]
    failed = [s for s in result["steps"] if s["status"] == "failed"]
    assert failed and failed[0]["name"] == "service vectordb"
    assert failed[0]["message"].startswith("rolled back:")
    assert result["rolled_back"] is True
    assert container_ids(deploy_fleet, "sbx1")["ml-vectordb-1"] == before["ml-vectordb-1"]
    assert "hi from sbx1" in http(deploy_fleet, "sbx1", 8000, "/cgi-bin/get?greeting")
    assert "rolled back" in proc.stderr


def test_rollback_returns_to_the_previous_version_and_back(deploy_fleet):
    before = container_ids(deploy_fleet, "sbx1")
    proc, doc = run(deploy_fleet, "rollback", "vectordb")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = container_ids(deploy_fleet, "sbx1")
    assert after["ml-vectordb-1"] == before["ml-vectordb-1.previous"]
    assert after["ml-vectordb-1.previous"] == before["ml-vectordb-1"]
    assert "hi from sbx1" in http(deploy_fleet, "sbx1", 8000, "/cgi-bin/get?greeting")
    proc, _ = run(deploy_fleet, "rollback", "ml/vectordb")
    assert proc.returncode == 0
    assert container_ids(deploy_fleet, "sbx1")["ml-vectordb-1"] == before["ml-vectordb-1"]


def test_a_deploy_is_refused_while_another_holds_the_lock(deploy_fleet, project):
    holder = {"by": "ana@laptop", "pid": 4242, "stack": "ml", "since": "2026-11-22T10:00:00+0000", "token": "other"}
    host_exec(deploy_fleet, "sbx2", "sh", "-c", "mkdir -p /var/lib/provision/deploy.lock && "
              f"echo '{json.dumps(holder)}' > /var/lib/provision/deploy.lock/holder")
    try:
        proc, doc = run(deploy_fleet, "deploy", playbook=project / "ml-stack.yml")
    finally:
        host_exec(deploy_fleet, "sbx2", "rm", "-rf", "/var/lib/provision/deploy.lock")
    assert proc.returncode == 2
    assert doc["hosts"]["sbx1"]["status"] == "ok"
    message = doc["hosts"]["sbx2"]["steps"][-1]["message"]
    assert "ana@laptop" in message and "2026-11-22T10:00:00+0000" in message
    # our own lock is released on every exit path
    host_exec(deploy_fleet, "sbx1", "test", "!", "-e", "/var/lib/provision/deploy.lock")


def test_services_dropped_from_the_playbook_are_removed(deploy_fleet, project, tmp_path):
    playbook = tmp_path / "ml-stack.yml"
    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    edit(playbook, lambda d: d["services"].pop("app"))
    unrelated = host_exec(deploy_fleet, "sbx1", "docker", "run", "-d", "--name", "not-ours",
                          "provision-ml/vectordb:1").strip()
    proc, doc = run(deploy_fleet, "deploy", playbook=playbook)
    assert proc.returncode == 0, proc.stderr
    names = container_ids(deploy_fleet, "sbx1")
    assert "ml-app-1" not in names and "ml-vectordb-1" in names
    assert unrelated[:12] in host_exec(deploy_fleet, "sbx1", "docker", "ps", "-q", "--no-trunc")  # never touched
    host_exec(deploy_fleet, "sbx1", "docker", "rm", "-f", "not-ours")


def test_bad_playbook_is_exit_4_with_file_and_line_before_any_connection(deploy_fleet, tmp_path):
    playbook = tmp_path / "bad.yml"
    playbook.write_text("stack: ml\nservices:\n  app:\n    image: x:1\n    ports: ['80:x']\n")
    proc = cli("deploy", str(playbook), "-i", str(deploy_fleet.inventory),
               env={"PROVISION_HOME": str(deploy_fleet.home)})
    assert proc.returncode == 4
    assert proc.stderr.strip().startswith(f"provision: error: {playbook}:5: services.app.ports[0]")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_hello_playbook_deploys_next_to_the_ml_stack(deploy_fleet):
    proc, doc = run(deploy_fleet, "deploy", playbook=ROOT / "playbooks" / "hello.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in ("sbx1", "sbx2"):
        assert "hello from provision" in http(deploy_fleet, host, 8088, "/")
    assert "ml-vectordb-1" in container_ids(deploy_fleet, "sbx1")  # another stack: untouched


def test_pulled_image_with_registry_login_and_a_build_on_the_host(deploy_fleet, tmp_path):
    """(a) a host pulls from a registry with the playbook's login (the password never shows);
    (c) `build_on: remote` sends the context through the same SSH transport and builds there."""
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "Dockerfile").write_text(
        "FROM provision-ml/vectordb:1\nRUN echo built-on-the-host > /www/built\n")
    playbook = tmp_path / "tools.yml"
    playbook.write_text(yaml.safe_dump({
        "stack": "tools",
        "registry": {"server": "sandbox-registry:5000", "username": "bot", "password_env": "REGISTRY_PASSWORD"},
        "services": {
            "sleeper": {"image": "sandbox-registry:5000/nvidia/cuda:12.4.1-base-ubuntu22.04",
                        "command": ["sleep", "2147483647"]},
            "extra": {"image": "tools/extra:1", "build": "./extra", "build_on": "remote", "ports": ["8090:8000"],
                      "healthcheck": {"test": ["CMD", "wget", "-qO-", "http://127.0.0.1:8000/built"],
                                      "interval": "1s", "retries": 20}},
        }}, sort_keys=False))
    password = "registry-PASSWORD-never-printed"
    proc, doc = run(deploy_fleet, "deploy", playbook=playbook, env={"REGISTRY_PASSWORD": password})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert password not in proc.stdout + proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx1"]["steps"]}
    assert steps["image sandbox-registry:5000/nvidia/cuda:12.4.1-base-ubuntu22.04"]["message"].startswith("pulled")
    assert steps["image tools/extra:1"]["message"].startswith("built on the host")
    assert "built-on-the-host" in http(deploy_fleet, "sbx1", 8090, "/built")
    proc, doc = run(deploy_fleet, "deploy", playbook=playbook, env={"REGISTRY_PASSWORD": password})
    assert proc.returncode == 0 and doc["hosts"]["sbx1"]["changed"] == 0, doc["hosts"]["sbx1"]["steps"]


@pytest.fixture
def auth_registry(deploy_fleet, tmp_path):
    """A REAL registry that demands a login: Debian's docker-registry with htpasswd (bcrypt) auth on this
    machine's 127.0.0.1, holding one image, reached from sbx1's engine at ITS 127.0.0.1:<port> through an
    SSH reverse tunnel (engines allow plain HTTP to loopback registries). Yields (address, user, password)."""
    import socket

    import bcrypt

    from provision.deploy.shipping import ReverseTunnel
    from provision.executor.known_hosts import KnownHosts
    from provision_sandbox.base_image import ensure_busybox_image
    from provision_sandbox.engine import local_docker
    from provision.workflows.fanout import RunOptions, make_executor
    from provision.workflows.targets import load_targets

    user, password = "deployer", "registry-auth-PASSWORD-1b9c"
    (tmp_path / "htpasswd").write_bytes(user.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt()) + b"\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "config.yml").write_text(
        f"version: 0.1\nstorage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\nauth: {{htpasswd: {{realm: provision-test, path: {tmp_path / 'htpasswd'}}}}}\n")
    server = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(tmp_path / "config.yml")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    executor = None
    try:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 10, f"the test registry on port {port}", interval=0.1)
        local = local_docker()
        image = ensure_busybox_image(local, log=lambda m: None)
        image.tag(f"127.0.0.1:{port}/auth/worker", "1")
        local.images.push(f"127.0.0.1:{port}/auth/worker", "1", auth_config={"username": user, "password": password})
        local.images.remove(f"127.0.0.1:{port}/auth/worker:1")
        target = next(t for t in load_targets(deploy_fleet.inventory) if t.name == "sbx1")
        executor = make_executor(target, RunOptions(known_hosts=KnownHosts(deploy_fleet.home / "known_hosts")))
        with ReverseTunnel(executor.ssh_transport(), port) as tunnel:
            yield f"127.0.0.1:{tunnel.remote_port}", user, password
    finally:
        if executor is not None:
            executor.close()
        server.terminate()
        server.wait(timeout=10)


def test_pull_needs_the_registry_login_and_never_prints_the_password(deploy_fleet, tmp_path, auth_registry):
    address, user, password = auth_registry
    playbook = tmp_path / "private.yml"
    playbook.write_text(yaml.safe_dump({
        "stack": "private", "hosts": "sbx1",
        "registry": {"server": address, "username": user, "password_env": "PRIVATE_REGISTRY_PASSWORD"},
        "services": {"worker": {"image": f"{address}/auth/worker:1", "command": ["sleep", "2147483647"],
                                "stop_grace_period": "1s"}}}, sort_keys=False))
    proc, doc = run(deploy_fleet, "deploy", playbook=playbook, env={"PRIVATE_REGISTRY_PASSWORD": "wrong-password-x"})
    assert proc.returncode == 2
    failed = [s for s in doc["hosts"]["sbx1"]["steps"] if s["status"] == "failed"][0]
    assert failed["name"] == f"image {address}/auth/worker:1" and "pull failed" in failed["message"]
    assert "wrong-password-x" not in proc.stdout + proc.stderr
    proc, doc = run(deploy_fleet, "deploy", playbook=playbook, env={"PRIVATE_REGISTRY_PASSWORD": password})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx1"]["steps"]}
    # the bytes the engine downloaded, when it downloaded any (an earlier test may have left the base layers)
    assert re.fullmatch(r"pulled(: [0-9.]+ (B|KiB|MiB) downloaded)?", steps[f"image {address}/auth/worker:1"]["message"])
    assert password not in proc.stdout + proc.stderr
    host_config = host_exec(deploy_fleet, "sbx1", "sh", "-c", "cat /root/.docker/config.json 2>/dev/null || true")
    assert password not in host_config and user not in host_config  # passed per request, never stored


# -- issue 12: a redeploy where nothing changed is one round trip per host ------------------------------
NO_DOCKER_SDK = ("import runpy, sys; sys.modules['docker'] = None; "  # any `import docker` now fails
                 "runpy.run_module('provision', run_name='__main__', alter_sys=True)")


def test_a_redeploy_where_nothing_changed_needs_no_lock_no_audit_line_and_no_docker_sdk(deploy_fleet, tmp_path):
    """A stack with a built-here image, a published port, a healthcheck and a synced bind folder: the second
    deploy runs with the docker SDK made unimportable (here and for the hosts: one probe each), takes no lock,
    writes no audit line, and says every step is ok; `--check` too. A changed bind file takes the full path."""
    import os
    import sys

    shutil.copytree(ROOT / "playbooks" / "hello", tmp_path / "hello")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "page.txt").write_text("v1")
    playbook = tmp_path / "compose.yaml"
    playbook.write_text(yaml.safe_dump({"name": "quick", "services": {"web": {
        "image": "provision-quick/web:1", "build": "./hello", "ports": ["8095:80"], "stop_grace_period": "2s",
        "volumes": ["./site:/srv/site:ro"],
        "healthcheck": {"test": ["CMD", "wget", "-qO-", "http://127.0.0.1/"], "interval": "1s", "retries": 20}}}}))
    env = {"PROVISION_HOME": str(deploy_fleet.home)}
    common = [str(playbook), "-i", str(deploy_fleet.inventory), "--known-hosts", str(deploy_fleet.home / "known_hosts")]
    # the same folder for every run: the shipping registry's state and the build cache live in its .provision/
    proc, doc = cli_json("deploy", *common, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def audit_lines(host: str) -> int:
        return len(host_exec(deploy_fleet, host, "cat", "/var/log/provision/audit.log").splitlines())

    def quick_id(host: str) -> str:
        return host_exec(deploy_fleet, host, "docker", "inspect", "-f", "{{.Id}}", "quick-web-1").strip()

    before = {h: (audit_lines(h), quick_id(h)) for h in ("sbx1", "sbx2")}
    for check in ((), ("--check",)):
        proc = subprocess.run([sys.executable, "-c", NO_DOCKER_SDK, "deploy", *common, "--json", *check],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300,
                              env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        doc = json.loads(proc.stdout)
        for host in ("sbx1", "sbx2"):
            result = doc["hosts"][host]
            assert result["changed"] == 0, result
            assert [s["name"] for s in result["steps"]] == ["network quick_default", "folder /srv/provision/quick/site",
                                                             "image provision-quick/web:1", "service web"], result
            assert all(s["status"] == "ok" for s in result["steps"])
            if check:
                assert {p["action"] for p in result["plan"]} == {"keep"}
            else:
                assert result["services"]["web"] == {"actions": ["keep"], "containers": [before[host][1][:12]]}
    for host in ("sbx1", "sbx2"):
        assert (audit_lines(host), quick_id(host)) == before[host]  # no audit line, the same container
        host_exec(deploy_fleet, host, "test", "!", "-e", "/var/lib/provision/deploy.lock")
    # a changed file in the bind folder: the full path (lock, sync, audit line)
    (tmp_path / "site" / "page.txt").write_text("v2")
    proc, doc = cli_json("deploy", *common, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["name"]: s for s in doc["hosts"]["sbx1"]["steps"]}
    assert steps["lock"]["status"] == "ok" and steps["folder /srv/provision/quick/site"]["status"] == "changed"
    assert audit_lines("sbx1") == before["sbx1"][0] + 1
    assert host_exec(deploy_fleet, "sbx1", "cat", "/srv/provision/quick/site/page.txt") == "v2"
