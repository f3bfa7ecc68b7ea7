"""`provision hosts --list/--graph` print what `ansible-inventory --list/--graph` print, byte for byte."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inventories"
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"


def _ansible(args, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_HOME=str(tmp_path), ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    return subprocess.run([str(ANSIBLE_INVENTORY), *args], capture_output=True, text=True, env=env).stdout


@pytest.mark.skipif(not ANSIBLE_INVENTORY.exists(), reason="ansible-core (test extra) is not installed")
@pytest.mark.parametrize("source", ["ini_full/hosts.ini", "yaml_nested", "vars_files", "mixed_dir"])
@pytest.mark.parametrize("mode", [["--list"], ["--graph"], ["--graph", "--vars"]])
def test_same_output_as_ansible_inventory(source, mode, tmp_path):
    path = FIXTURES / source
    if path.is_dir() and source != "mixed_dir":
        path = next(p for p in sorted(path.iterdir()) if p.is_file())
    ours = subprocess.run([sys.executable, "-m", "provision", "hosts", "-i", str(path), *mode],
                          capture_output=True, text=True)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == _ansible(["-i", str(path), *mode], tmp_path)
