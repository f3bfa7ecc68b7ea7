"""`--inventory NAME` resolution (config/inventory_path.py): a path as given, else inventories/NAME.*."""

from pathlib import Path

from provision.config import inventory_path


def test_candidates_in_order(tmp_path):
    assert inventory_path.candidates("prod", tmp_path) == [
        Path("prod"), tmp_path / "inventories/prod.yml", tmp_path / "inventories/prod.yaml",
        tmp_path / "inventories/prod.ini", tmp_path / "inventories/prod"]


def test_a_path_is_only_itself(tmp_path):
    assert inventory_path.candidates("inventories/prod.yml", tmp_path) == [Path("inventories/prod.yml")]
    assert inventory_path.candidates("/etc/ansible/hosts", tmp_path) == [Path("/etc/ansible/hosts")]
    assert inventory_path.candidates("..", tmp_path) == [Path("..")]


def test_resolve_prefers_the_given_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventories").mkdir()
    (tmp_path / "inventories/prod.ini").write_text("web\n")
    assert inventory_path.resolve("prod") == Path("inventories/prod.ini")
    (tmp_path / "inventories/prod.yaml").write_text("all: {}\n")
    assert inventory_path.resolve("prod") == Path("inventories/prod.yaml")  # .yaml before .ini
    (tmp_path / "prod").write_text("web\n")
    assert inventory_path.resolve("prod") == Path("prod")


def test_resolve_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventories/staging").mkdir(parents=True)
    assert inventory_path.resolve("staging") == Path("inventories/staging")


def test_not_found_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert inventory_path.resolve("prod") == Path("prod")
    assert inventory_path.not_found_hint("prod") == (
        " (tried: prod, inventories/prod.yml, inventories/prod.yaml, inventories/prod.ini, inventories/prod/)")
    assert inventory_path.not_found_hint("x/hosts.yml") == ""


def _provision(cwd, *args):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "provision", *args], cwd=cwd, capture_output=True, text=True,
                          env=env)


def test_the_cli_resolves_a_named_inventory(tmp_path):
    (tmp_path / "inventories").mkdir()
    (tmp_path / "inventories/prod.yml").write_text("all:\n  hosts:\n    web-01: {ansible_host: 10.0.2.10}\n")
    proc = _provision(tmp_path, "hosts", "--inventory", "prod", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "web-01" in proc.stdout


def test_a_missing_named_inventory_is_bad_input_listing_what_was_tried(tmp_path):
    for args in (["hosts", "--inventory", "prod"], ["facts", "-i", "prod"]):
        proc = _provision(tmp_path, *args)
        assert proc.returncode == 4
        assert proc.stderr.strip().splitlines()[-1] == (
            "provision: error: prod: inventory not found (tried: prod, inventories/prod.yml, "
            "inventories/prod.yaml, inventories/prod.ini, inventories/prod/)")
