"""A host with `ansible_connection: local` (the machine provision runs on) deploys like any other:
the executor protocol gives the folder sync its `put` on every executor (it used to reach through to
Fabric and crash with AttributeError here), and the docker client is the machine's own engine."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import cli_json, engine_available

NO_ENGINE = engine_available()  # None, or why there is no local engine
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(NO_ENGINE is not None, reason=f"no local Docker engine: {NO_ENGINE}")]


def test_a_relative_bind_mount_is_synced_on_a_local_host(tmp_path: Path) -> None:
    from provision_sandbox.base_image import IMAGE, ensure_busybox_image
    from provision_sandbox.engine import local_docker

    ensure_busybox_image(local_docker(), log=lambda _line: None)
    stack = f"localbind{uuid.uuid4().hex[:8]}"
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "hello.txt").write_text("hello from the operator's folder\n")
    remote_dir = tmp_path / "remote"
    (project / "stack.yml").write_text(
        f"stack: {stack}\nremote_dir: {remote_dir}\nservices:\n"
        f"  app:\n    image: {IMAGE}\n    volumes: ['./data:/data:ro']\n"
        "    command: ['sh', '-c', 'exec sleep 2147483647']\n    stop_grace_period: 1s\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("here ansible_connection=local\n")
    try:
        proc, doc = cli_json("deploy", "-i", str(inventory), str(project / "stack.yml"), cwd=project)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (remote_dir / "data" / "hello.txt").read_text() == "hello from the operator's folder\n"
        name = subprocess.run(["docker", "ps", "-q", "--filter", f"label=io.provision.stack={stack}"],
                              capture_output=True, text=True, check=True).stdout.split()
        assert len(name) == 1
        seen = subprocess.run(["docker", "exec", name[0], "cat", "/data/hello.txt"], capture_output=True, text=True)
        assert seen.stdout == "hello from the operator's folder\n"
        again, doc = cli_json("deploy", "-i", str(inventory), str(project / "stack.yml"), cwd=project)
        assert again.returncode == 0, again.stderr
        assert doc["hosts"]["here"]["changed"] == 0  # a second run changes nothing
    finally:
        cli_json("down", "--stack", stack, "-i", str(inventory), "--volumes", cwd=project)
