"""`provision --version` (from the package metadata) and shell completion (Typer's --show-completion /
--install-completion)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _provision(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_version_is_the_package_metadata_version():
    from provision.cli.app import package_version

    proc = _provision("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"provision {package_version()}\n"
    assert package_version()[0].isdigit()


def test_show_completion_prints_a_bash_script():
    proc = _provision("--show-completion", "bash")
    assert proc.returncode == 0, proc.stderr
    assert "_provision_completion()" in proc.stdout
    assert "complete -o default -F _provision_completion provision" in proc.stdout


def test_completion_completes_commands():
    """What the installed script asks: Typer's completion protocol, answered by provision itself."""
    proc = _provision(_PROVISION_COMPLETE="complete_bash", COMP_WORDS="provision boo", COMP_CWORD="1")
    assert proc.returncode == 0, proc.stderr
    assert "bootstrap" in proc.stdout.split()


def test_help_offers_completion_and_version():
    proc = _provision("--help", COLUMNS="120", NO_COLOR="1")
    for option in ("--version", "--install-completion", "--show-completion"):
        assert option in proc.stdout
