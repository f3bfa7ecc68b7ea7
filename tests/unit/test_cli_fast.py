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


# -- issue 12: which modules each command path imports (a module-set assertion, never a timing one) --------
NETWORK = ("fabric", "paramiko", "invoke", "cryptography")
HEAVY_ALL = NETWORK + ("docker", "pydantic", "yaml", "rich", "typer")


def imported(*args: str, code: str | None = None, cwd=None, ok=(0, 2, 3)) -> set[str]:
    """Every module `python -X importtime` reports for `python -m provision ARGS` (or `-c CODE`)."""
    command = [sys.executable, "-X", "importtime"] + (["-c", code] if code is not None else ["-m", "provision", *args])
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200",
                                                                                  "PYTHONPATH": ":".join(sys.path)})
    assert proc.returncode in ok, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
            and "|" in line} - {"package"}


def heavy(modules: set[str]) -> set[str]:
    return {m for m in HEAVY_ALL if m in modules}


def test_importing_the_cli_loads_typer_alone():
    assert heavy(imported(code="import provision.cli.app")) == {"typer"}


def test_help_paths_load_only_what_help_needs():
    # typer formats help with rich; pydantic stays out (typer < 0.29: pyproject.toml)
    assert heavy(imported("--help")) <= {"typer", "rich"}
    for args in (("run", "--help"), ("facts", "--help"), ("docker", "install", "--help"), ("deploy", "--help")):
        assert not heavy(imported(*args)) & set(NETWORK + ("docker", "yaml", "pydantic")), args


def test_an_ad_hoc_command_loads_neither_the_docker_sdk_nor_the_settings_models(tmp_path):
    """Nor pydantic: typer 0.29 builds a pydantic TypeAdapter for every parameter of the invoked command,
    hence typer < 0.29 in pyproject.toml (0.1 s of CPU per `provision run`, issue 12)."""
    (tmp_path / "inv.ini").write_text("h1 ansible_host=127.0.0.1 ansible_port=1\n")
    modules = imported("run", "-i", str(tmp_path / "inv.ini"), "--check", "uname -r", cwd=tmp_path)
    assert "docker" not in modules
    assert "pydantic" not in modules
    assert not {m for m in modules if m.startswith(("provision.deploy", "provision.compose", "provision.config.host_settings"))}


def test_reading_an_inventory_loads_no_network_library(tmp_path):
    (tmp_path / "inv.ini").write_text("h1 ansible_host=127.0.0.1\n")
    modules = imported("hosts", "-i", str(tmp_path / "inv.ini"), cwd=tmp_path)
    assert not heavy(modules) & set(NETWORK + ("docker",))


def test_an_ad_hoc_command_over_ssh_loads_paramiko_alone_and_only_its_own_command_module(tmp_path):
    """The SSH executor uses paramiko directly: neither Fabric nor invoke (paramiko.config imports invoke for
    ssh_config's `Match exec` unless the CLI keeps it out); main() registers only the `run` command's module;
    rich's live view only on a terminal. (The host refuses the connection: exit 3.)"""
    (tmp_path / "inv.ini").write_text("h1 ansible_host=127.0.0.1 ansible_port=1\n")
    modules = imported("run", "-i", str(tmp_path / "inv.ini"), "--known-hosts", str(tmp_path / "kh"), "uname -r",
                       cwd=tmp_path)
    assert "paramiko" in modules and "provision.executor.ssh" in modules
    assert not {"fabric", "docker", "pydantic", "rich.live", "rich.spinner"} & modules
    assert not {m for m in modules if m.startswith(("fabric.", "invoke."))}  # a refused `import invoke` is listed
    assert not {m for m in modules if m.startswith("provision.cli.") and m.endswith("_cmds")} - {"provision.cli.facts_cmds"}


def test_the_cli_keeps_invoke_out_only_while_it_runs():
    code = ("import sys\nfrom provision.cli.app import main\n"
            "try:\n    main(['hosts', '--help'])\nexcept SystemExit:\n    pass\n"
            "import invoke\nprint('invoke importable')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "invoke importable" in proc.stdout, proc.stderr[-2000:]


def test_docker_install_loads_neither_the_nvidia_stage_nor_fabric(tmp_path):
    (tmp_path / "inv.ini").write_text("h1 ansible_host=127.0.0.1 ansible_port=1\n")
    modules = imported("docker", "install", "-i", str(tmp_path / "inv.ini"), "--known-hosts", str(tmp_path / "kh"),
                       cwd=tmp_path)
    assert "provision.workflows.docker" in modules and "paramiko" in modules
    assert not {"fabric", "docker", "provision.workflows.nvidia", "provision.operations.gpu_ladder"} & modules
    assert not {m for m in modules if m.startswith(("fabric.", "invoke.", "provision.deploy", "provision.compose"))}
    assert "pydantic" not in modules  # issue 12: the settings' fast path (config/host_settings.py)


def test_docker_install_with_docker_vars_in_yaml_loads_no_pydantic(tmp_path):
    """Vars already of their plain type (the sandbox's docker_daemon, a YAML list, an age) need no pydantic;
    pydantic is loaded only to convert a value or word an error (issue 12)."""
    (tmp_path / "inv.yml").write_text(
        "all:\n  vars:\n    docker_daemon:\n      registry-mirrors: [http://sandbox-registry:5000]\n"
        "    docker_users: [alice]\n    docker_repo_key_max_age: 12h\n    nvidia_driver_branch: 550\n"
        "  hosts:\n    h1: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    args = ("docker", "install", "-i", str(tmp_path / "inv.yml"), "--known-hosts", str(tmp_path / "kh"))
    assert "pydantic" not in imported(*args, cwd=tmp_path)
    (tmp_path / "inv.yml").write_text("all:\n  vars:\n    apt_timeout: 5\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n")
    assert "pydantic" in imported(*args, cwd=tmp_path, ok=(4,))  # a bad value: the model words the error (exit 4)


def test_a_deploy_without_gpu_services_does_not_load_the_gpu_precheck(tmp_path):
    (tmp_path / "inv.ini").write_text("h1 ansible_host=127.0.0.1 ansible_port=1\n")
    (tmp_path / "stack.yml").write_text("services:\n  web:\n    image: busybox:1.36\n")
    modules = imported("deploy", str(tmp_path / "stack.yml"), "-i", str(tmp_path / "inv.ini"), "--known-hosts",
                       str(tmp_path / "kh"), cwd=tmp_path)
    assert "provision.workflows.deploy_noop" in modules
    assert not {"fabric", "provision.workflows.gpu_precheck", "provision.facts.gpu_deploy"} & modules
    assert not {m for m in modules if m.startswith(("fabric.", "invoke."))}


def test_the_command_line_collects_garbage_less_often_and_an_api_caller_keeps_its_own_thresholds():
    """Issue 12: the ~100 young-generation collections over the imports cost 25-70 ms of a deploy no-op's CPU."""
    code = ("import atexit, gc, sys\nfrom provision.cli import app\n"
            "atexit.register(lambda: print('THRESHOLD', gc.get_threshold()[0]))\n"
            "app.main(['--help'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "THRESHOLD 700" in proc.stdout, proc.stderr[-2000:]  # main(argv): a caller's process, left alone
    code = code.replace("app.main(['--help'])", "sys.argv = ['provision', '--help']\napp.main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "THRESHOLD 100000" in proc.stdout, proc.stderr[-2000:]
    code = code.replace("app.main()", "import runpy\nrunpy.run_module('provision', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)  # python -m provision
    assert "THRESHOLD 100000" in proc.stdout, proc.stderr[-2000:]


def test_a_one_host_deploy_does_not_import_the_relay():
    code = ("import sys\nfrom provision.workflows.deploy_images import make_relay\n"
            "from tests.unit.workflow_support import target\n"
            "assert make_relay([target('a')], None) is None\nprint('RELAY', 'provision.deploy.relay' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "RELAY False" in proc.stdout, proc.stderr[-2000:]


def test_docker_install_loads_the_dpkg_repair_and_lock_wait_modules_only_when_it_needs_them(tmp_path):
    """Issue 12: a no-op install neither repairs dpkg, nor waits for its lock, nor reads the docker units,
    nor polls a detached apt step: those modules (operations.dpkg, commands/facts.host_health,
    facts.apt_status) load at their use (~3 ms of imports)."""
    (tmp_path / "inv.ini").write_text("h1 ansible_host=127.0.0.1 ansible_port=1\n")
    modules = imported("docker", "install", "-i", str(tmp_path / "inv.ini"), "--known-hosts", str(tmp_path / "kh"),
                       cwd=tmp_path)
    assert "provision.workflows.docker" in modules
    assert not {"provision.operations.dpkg", "provision.commands.host_health", "provision.facts.host_health",
                "provision.facts.apt_status"} & modules
