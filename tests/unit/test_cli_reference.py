"""README's command reference is what `--help` prints (scripts/cli-reference.py generates it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_command_reference_matches_the_help():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "cli-reference.py"), "--check"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (
        "README.md's command reference differs from `--help`: regenerate it with `scripts/cli-reference.py` "
        f"and commit README.md\n{proc.stderr}")


def test_the_reference_covers_every_command():
    readme = (ROOT / "README.md").read_text()
    for command in ("init", "hosts", "facts", "bootstrap", "deploy", "docker install", "nvidia install",
                    "swarm init", "sandbox up"):
        assert f"#### `provision {command}`" in readme, command
