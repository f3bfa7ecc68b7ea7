"""README's Python API example, run as written (in a project folder whose inventories/prod.yml is a one-host
sandbox fleet with a SIMULATED GPU host, and whose compose.yaml is `provision init`'s)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.e2e.conftest import project_folder, readme_block

pytestmark = pytest.mark.e2e


def test_the_readme_api_example_runs(gpu_vm_fleet, tmp_path):
    folder, env = project_folder(tmp_path)
    assert subprocess.run(["provision", "init"], cwd=folder, env=env, capture_output=True).returncode == 0
    shutil.copy(gpu_vm_fleet.inventory, folder / "inventories" / "prod.yml")
    code = readme_block("api-example:begin")
    assert "from provision import api" in code
    proc = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert "sbx1 gpu-worker running nvidia/cuda:12.4.1-base-ubuntu22.04" in proc.stdout.splitlines(), proc.stdout
