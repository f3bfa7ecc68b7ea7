"""README's "fresh GPU VM in three commands", run as written on a one-host sandbox fleet whose host is a SIMULATED
GPU host (fake nvidia-smi, stand-in toolkit and CUDA image; there is no GPU here). The edit between the first and
the second command (your VM in inventories/prod.yml) is done by copying the sandbox's inventory over it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.e2e.conftest import project_folder, readme_block

pytestmark = pytest.mark.e2e


def commands() -> list[str]:
    return [line for line in readme_block("walkthrough:begin").splitlines() if line.strip()]


def test_the_walkthrough_is_three_provision_commands():
    lines = commands()
    assert len(lines) == 3 and all(line.startswith("provision ") for line in lines)
    assert [line.split()[1] for line in lines] == ["init", "bootstrap", "deploy"]


def sh(line: str, folder, env, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "-c", line], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"`{line}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_the_walkthrough_runs_as_written(gpu_vm_fleet, tmp_path):
    folder, env = project_folder(tmp_path)
    init, bootstrap, deploy = commands()

    sh(init, folder, env)
    assert (folder / "inventories" / "prod.yml").is_file() and (folder / "compose.yaml").is_file()
    shutil.copy(gpu_vm_fleet.inventory, folder / "inventories" / "prod.yml")  # "edit inventories/prod.yml"

    sh(bootstrap, folder, env)
    sh(deploy, folder, env)

    # what the user ran it to learn: the GPU container saw the host's (SIMULATED) GPU, the worker runs
    verify = sh("provision verify -i prod --json", folder, env)
    host = json.loads(verify.stdout)["hosts"]["sbx1"]
    steps = {s["name"]: s for s in host["steps"]}
    assert steps["gpu container"]["status"] == "ok", steps
    status = sh("provision status -i prod --json", folder, env)
    rows = json.loads(status.stdout)["hosts"]["sbx1"]["services"]
    assert [(r["service"], r["state"]) for r in rows if r["role"] == "serving"] == [("gpu-worker", "running")]
    logs = sh("provision logs gpu-worker -i prod --json", folder, env)
    lines = [e["line"] for e in json.loads(logs.stdout)["hosts"]["sbx1"]["logs"]]
    assert any(line.startswith("GPU 0:") for line in lines), lines  # `nvidia-smi -L` in the container
