"""`provision --help` must answer fast: the heavy libraries are imported only by the commands that use them."""

import subprocess
import sys

HEAVY = ("fabric", "paramiko", "invoke", "docker", "pydantic", "yaml")


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from provision.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY:"


def test_help_lists_the_commands_and_exit_codes():
    proc = subprocess.run([sys.executable, "-m", "provision", "--help"], capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0
    for word in ("hosts", "facts", "run", "sandbox", "4 bad input"):
        assert word in proc.stdout


def test_usage_errors_exit_4():
    proc = subprocess.run([sys.executable, "-m", "provision", "facts", "--forks", "0"], capture_output=True, text=True)
    assert proc.returncode == 4
