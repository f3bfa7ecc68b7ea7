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
