"""Issue 9: the local shipping registry is provision's alone, private, and does not grow without bound.

Fleet `registry-lock` (1 host, Docker installed by provision). Real `provision deploy` runs ship images
built here through the real local registry (Debian's docker-registry) and real SSH reverse tunnels.
- during a deploy (held at a healthcheck that waits for a file the test creates) anonymous pulls and
  pushes are refused with 401 from this machine and from the host's end of a tunnel; the storage is
  0700/0600 (even when it existed with looser modes); after the deploy the port is closed and the
  run's random login appears in no output, audit log or Docker config.json;
- deploying v1, v2, v3 of one image name leaves v1's blobs garbage-collected, v3's kept, and a
  no-change redeploy ships 0 bytes and leaves the storage as it was.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import stat
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import BackgroundCli, cli, cli_json, start_fleet

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"
HOST = "sbx1"
AUDIT_LOG = "/var/log/provision/audit.log"
HELD = {"test": ["CMD-SHELL", "test -f /tmp/release"], "interval": "1s", "start_period": "300s"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet, down = start_fleet(tmp_path_factory, "registry-lock", 1)
    try:
        proc = cli("docker", "install", "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"),
                   env={"PROVISION_HOME": str(fleet.home)}, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield fleet
    finally:
        down()


@pytest.fixture(scope="module")
def local():
    from provision_sandbox.base_image import ensure_busybox_image
    from provision_sandbox.engine import local_docker

    client = local_docker()
    ensure_busybox_image(client, log=lambda m: None)
    made: list[str] = []
    yield client, made
    for name in made:
        subprocess.run([DOCKER, "rmi", "-f", name], check=False, capture_output=True)


def build(local, name: str, payload: bytes) -> str:
    """busybox + one layer holding `payload`; returns the image id."""
    client, made = local
    dockerfile = b"FROM provision-sandbox/busybox:latest\nCOPY payload.bin /data/payload.bin\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member, data in (("Dockerfile", dockerfile), ("payload.bin", payload)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    image, _ = client.images.build(fileobj=io.BytesIO(buffer.getvalue()), custom_context=True, tag=name, rm=True)
    made.append(name)
    return image.id


def write_playbook(project: Path, stack: str, image: str, **service) -> Path:
    path = project / f"{stack}.yml"
    spec = {"image": image, "command": ["sleep", "2147483647"], "stop_grace_period": "1s", **service}
    path.write_text(yaml.safe_dump({"stack": stack, "hosts": "all", "services": {"app": spec}}, sort_keys=False))
    return path


def deploy_args(fleet, path: Path) -> list[str]:
    return ["deploy", str(path), "-i", str(fleet.inventory), "--known-hosts", str(fleet.home / "known_hosts"), "--json"]


def host_sh(fleet, script: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([DOCKER, "exec", fleet.container(HOST), "sh", "-c", script], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 or not check, proc.stderr
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def anonymous(port: int, path: str, method: str = "GET") -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


TOKEN_RUN = re.compile(r"[A-Za-z0-9_-]{43,}")


def leaked(htpasswd: bytes, *texts: str) -> list[str]:
    """Every 43-character url-safe token (the shape of the run's password) in `texts` that matches the
    registry's bcrypt hash: the password is never known to the test, only its hash."""
    import bcrypt

    hashed = htpasswd.split(b":", 1)[1].strip()
    found = set()
    for text in texts:
        for run in set(TOKEN_RUN.findall(text)):
            for start in range(len(run) - 42):
                if bcrypt.checkpw(run[start:start + 43].encode(), hashed):
                    found.add(run)
    return sorted(found)


def Background(fleet, path: Path, cwd: Path) -> BackgroundCli:
    """`provision deploy ... --json` running in the background, its output collected."""
    return BackgroundCli(*deploy_args(fleet, path), env={"PROVISION_HOME": str(fleet.home)}, cwd=cwd)


def test_registry_is_locked_down_private_and_gone_after_the_deploy(fleet, local, tmp_path):
    from provision.deploy.shipping import ReverseTunnel
    from provision.executor.known_hosts import KnownHosts
    from provision.workflows.fanout import RunOptions, make_executor
    from provision.workflows.targets import load_targets

    image = "provision-rg/lock:1"
    build(local, image, os.urandom(256 * 1024))
    state = tmp_path / ".provision" / "registry"
    (state / "storage").mkdir(parents=True)  # left behind loose by an older provision: fixed, not trusted
    (state / "config.yml").write_text("# old\n")
    for path, loose in ((state, 0o755), (state / "storage", 0o777), (state / "config.yml", 0o644)):
        os.chmod(path, loose)
    run = Background(fleet, write_playbook(tmp_path, "rglock", image, healthcheck=HELD), cwd=tmp_path)

    def held_container() -> str | None:  # the service container exists: the image was shipped, the deploy waits
        out = host_sh(fleet, "docker ps --filter label=io.provision.stack=rglock --format '{{.Names}}'").stdout
        return out.split()[0] if out.split() else None

    container = run.wait_for(held_container, "the deploy to wait on the held healthcheck", timeout=180)
    try:
        port = int(re.search(r"addr: 127\.0\.0\.1:(\d+)", (state / "config.yml").read_text()).group(1))
        htpasswd = (state / "htpasswd").read_bytes()
        # storage and config are private, also where they existed looser
        assert mode(state) == 0o700 and mode(state / "storage") == 0o700
        for name in ("config.yml", "htpasswd", "registry.log", "deploys.json"):
            assert mode(state / name) == 0o600, name
        assert htpasswd.startswith(b"provision:$2")  # bcrypt, never the password
        # from this machine: no anonymous pull, push or listing
        assert anonymous(port, "") == 401
        assert anonymous(port, "provision/provision-rg/lock/manifests/1") == 401
        assert anonymous(port, "provision/provision-rg/lock/blobs/uploads/", "POST") == 401
        assert anonymous(port, "_catalog") == 401
        import docker.errors

        client, _ = local

        with pytest.raises(docker.errors.APIError, match="(?i)no basic auth credentials|unauthorized"):
            client.api.pull(f"127.0.0.1:{port}/provision/provision-rg/lock", tag="1")
        # from the host, through a reverse tunnel to the same registry: refused too
        target = load_targets(fleet.inventory)[0]
        executor = make_executor(target, RunOptions(known_hosts=KnownHosts(fleet.home / "known_hosts")))
        try:
            with ReverseTunnel(executor.ssh_transport(), port) as tunnel:
                remote = tunnel.remote_port
                codes = host_sh(fleet, (
                    f"curl -s -o /dev/null -w '%{{http_code}} ' http://127.0.0.1:{remote}/v2/; "
                    f"curl -s -o /dev/null -w '%{{http_code}} ' "
                    f"http://127.0.0.1:{remote}/v2/provision/provision-rg/lock/manifests/1; "
                    f"curl -s -o /dev/null -w '%{{http_code}}' -X POST "
                    f"http://127.0.0.1:{remote}/v2/provision/provision-rg/evil/blobs/uploads/")).stdout
                assert codes.split() == ["401", "401", "401"]
                pull = host_sh(fleet, f"docker pull 127.0.0.1:{remote}/provision/provision-rg/lock:1", check=False)
                assert pull.returncode != 0 and re.search("(?i)no basic auth credentials|unauthorized", pull.stderr)
        finally:
            executor.close()
    finally:
        host_sh(fleet, f"docker exec {container} touch /tmp/release", check=False)
    code, out, err = run.finish(180)
    assert code == 0, out + err
    doc = json.loads(out)
    steps = {s["name"]: s for s in doc["hosts"][HOST]["steps"]}
    assert steps[f"image {image}"]["status"] == "changed"  # it was really shipped through the registry
    assert closed(port)  # the registry lives only for the deploy
    audit = host_sh(fleet, f"cat {AUDIT_LOG} 2>/dev/null || true").stdout
    configs = host_sh(fleet, "cat /root/.docker/config.json /home/*/.docker/config.json 2>/dev/null || true").stdout
    assert "127.0.0.1" not in configs  # the engine got the login per request, nothing was stored
    assert leaked(htpasswd, out, err, audit, configs, (state / "registry.log").read_text(),
                  (state / "config.yml").read_text(), (state / "deploys.json").read_text()) == []


def blobs(storage: Path) -> set[str]:
    root = storage / "docker" / "registry" / "v2" / "blobs" / "sha256"
    return {p.name for p in root.glob("*/*")} if root.is_dir() else set()


def manifest_blobs(storage: Path, repository: str, tag: str) -> set[str]:
    """The manifest, config and layer digests (hex) that `repository:tag` points to now."""
    v2 = storage / "docker" / "registry" / "v2"
    link = (v2 / "repositories" / repository / "_manifests" / "tags" / tag / "current" / "link").read_text()
    digest = link.strip().split(":", 1)[1]
    manifest = json.loads((v2 / "blobs" / "sha256" / digest[:2] / digest / "data").read_bytes())
    return {digest, manifest["config"]["digest"].split(":", 1)[1],
            *(layer["digest"].split(":", 1)[1] for layer in manifest["layers"])}


def test_storage_is_garbage_collected_and_a_no_change_redeploy_ships_nothing(fleet, local, tmp_path):
    image = "provision-rg/gc:current"
    repository = "provision/provision-rg/gc"
    storage = tmp_path / ".provision" / "registry" / "storage"
    path = write_playbook(tmp_path, "rggc", image)
    seen: dict[str, set[str]] = {}
    for version in ("v1", "v2", "v3"):
        build(local, image, version.encode() * 1024 + os.urandom(512 * 1024))
        proc, doc = cli_json(*deploy_args(fleet, path)[:-1], env={"PROVISION_HOME": str(fleet.home)}, cwd=tmp_path,
                             timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        step = next(s for s in doc["hosts"][HOST]["steps"] if s["name"] == f"image {image}")
        assert step["status"] == "changed" and step["message"].startswith("shipped: "), step
        seen[version] = manifest_blobs(storage, repository, "current")
    only_v1 = seen["v1"] - seen["v3"]
    assert only_v1, "v1 and v3 must differ"
    present = blobs(storage)
    assert not only_v1 & present  # v1's manifest, config and own layer are gone from the disk
    assert not (seen["v2"] - seen["v3"]) & present
    assert seen["v3"] <= present  # the current image is kept: the next deploy pushes only what changed
    assert len(present) == len(seen["v3"])  # nothing else is left: the storage holds one image
    proc, doc = cli_json(*deploy_args(fleet, path)[:-1], env={"PROVISION_HOME": str(fleet.home)}, cwd=tmp_path,
                         timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    step = next(s for s in doc["hosts"][HOST]["steps"] if s["name"] == f"image {image}")
    assert step["status"] == "ok" and "nothing sent" in step["message"]
    assert "shipped_bytes" not in json.dumps(doc)
    assert blobs(storage) == present  # the no-change redeploy kept and added nothing


def test_keep_policy_keeps_the_last_two_deploys_tags_and_collects_the_rest(local, tmp_path):
    """No host needed: three deploys of tags 1, 2, 3 of one repository through the real registry and GC."""
    from provision.deploy.shipping import staged_images
    from provision_sandbox.engine import local_docker

    state = tmp_path / "registry"
    repository = "provision/provision-rg/tags"
    seen = {}
    for tag in ("1", "2", "3"):
        name = f"provision-rg/tags:{tag}"
        build(local, name, tag.encode() * 1024 + os.urandom(256 * 1024))
        with staged_images([name], local_docker, state_dir=state) as (port, staged):
            assert staged[name].tag == tag and anonymous(port, "") == 401
        seen[tag] = manifest_blobs(state / "storage", repository, tag)
    present = blobs(state / "storage")
    assert not (seen["1"] - seen["2"] - seen["3"]) & present  # the oldest deploy's own blobs are gone
    assert seen["2"] | seen["3"] <= present  # the last two deploys' images are kept
    tags = state / "storage" / "docker" / "registry" / "v2" / "repositories" / repository / "_manifests" / "tags"
    assert sorted(p.name for p in tags.iterdir()) == ["2", "3"]
