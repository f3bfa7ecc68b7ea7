"""provision.api: the CLI's workflows as functions. The same code path as the CLI (the report's to_dict() is
what --json prints), errors raised from the project's hierarchy (never sys.exit), and a light import."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provision import api
from provision.errors import InputError, InventoryError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_inventory(tmp_path) -> Path:
    path = tmp_path / "local.yml"
    path.write_text("all:\n  hosts:\n    here: {ansible_connection: local}\n")
    return path


def _without_durations(doc: dict) -> dict:
    for host in doc["hosts"].values():
        for step in host["steps"]:
            step.pop("duration_s", None)
    return doc


def test_importing_the_api_imports_no_heavy_module():
    code = ("import sys\nimport provision.api\n"
            "print(','.join(m for m in ('fabric', 'paramiko', 'docker', 'pydantic', 'yaml', 'typer', 'rich') "
            "if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_run_returns_the_report_that_json_prints(local_inventory, tmp_path):
    report = api.run(local_inventory, "echo hi; echo oops >&2",
                     settings=api.Settings(known_hosts=tmp_path / "kh"))
    proc = subprocess.run([sys.executable, "-m", "provision", "run", "-i", str(local_inventory), "--known-hosts",
                           str(tmp_path / "kh"), "--json", "echo hi; echo oops >&2"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == report.exit_code() == 0, proc.stderr
    assert _without_durations(json.loads(proc.stdout)) == _without_durations(report.to_dict())
    assert report.to_dict()["hosts"]["here"]["stdout"] == "hi\n"


def test_a_failing_host_is_in_the_report_not_raised(local_inventory):
    report = api.run(local_inventory, "exit 3")
    assert report.exit_code() == 2
    assert report.to_dict()["hosts"]["here"]["status"] == "failed"


def test_check_runs_nothing(local_inventory, tmp_path):
    marker = tmp_path / "touched"
    report = api.run(local_inventory, f"touch {marker}", check=True)
    assert report.exit_code() == 0 and not marker.exists()


def test_bad_input_raises_the_projects_errors(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts:\n    h1: {ansible_port: not-a-port}\n")
    with pytest.raises(InventoryError) as caught:
        api.facts(bad)
    assert caught.value.exit_code == 4
    with pytest.raises(InputError, match="not found"):
        api.status(tmp_path / "missing.yml")
    bad.write_text("all:\n  hosts:\n    h1: {docker_version: 'not a version!'}\n")
    with pytest.raises(InputError, match="docker_version"):  # validated before any connection
        api.bootstrap(bad)


def test_an_inventory_name_means_inventories_name_yml(tmp_path, monkeypatch, local_inventory):
    (tmp_path / "inventories").mkdir()
    (tmp_path / "inventories" / "prod.yml").write_text(local_inventory.read_text())
    monkeypatch.chdir(tmp_path)
    assert list(api.run("prod", "true").hosts) == ["here"]

    from provision.workflows import deploy

    class Stop(Exception):
        pass

    seen = []
    monkeypatch.setattr(deploy, "load", lambda files, inventory, limit, **kw: seen.append(inventory) or (_ for _ in ()).throw(Stop))
    (tmp_path / "compose.yaml").write_text("services: {web: {image: busybox}}\n")
    with pytest.raises(Stop):
        api.deploy("prod")
    assert seen == [Path("inventories/prod.yml")]


def test_progress_and_become_password_settings(local_inventory, monkeypatch):
    monkeypatch.delenv("PROVISION_BECOME_PASSWORD", raising=False)
    seen = []

    class Progress:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def host_started(self, name):
            seen.append(("started", name))

        def host_finished(self, result):
            seen.append(("finished", result.name))

    asked = []
    api.run(local_inventory, "true", settings=api.Settings(
        progress=lambda command, names: seen.append((command, names)) or Progress(),
        become_password=lambda: asked.append(1) or "pw"))
    assert seen == [("run", ["here"]), ("started", "here"), ("finished", "here")]
    assert asked == []  # no host uses become: never asked


def test_every_cli_workflow_has_an_api_function():
    names = {"facts", "run", "docker_install", "docker_uninstall", "nvidia_install", "verify", "bootstrap", "deploy",
             "rollback", "status", "logs", "exec_", "down", "prune", "df", "swarm_init"}
    assert names <= set(api.__all__)
    for name in names:
        parameters = inspect.signature(getattr(api, name)).parameters
        assert "settings" in parameters and "inventory" in parameters, name
        assert parameters["settings"].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_the_cli_command_modules_call_the_api_not_the_workflows():
    """One function per workflow, shared: the host-acting commands reach the workflows only through provision.api
    (logs --follow and unlock pass their own work to api.run_work)."""
    for module in ("facts_cmds", "docker_cmds", "deploy_cmds", "swarm_cmds"):
        text = (ROOT / "provision" / "cli" / f"{module}.py").read_text()
        assert "provision.workflows" not in text, module
