from pathlib import Path

import pytest

from provision.errors import EnvironmentProblem
from provision_sandbox.apt_sources import machine_debian_mirror, mirrors_from_deb822, mirrors_from_list
from provision_sandbox.fleet import check_inotify

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_from_deb822_skips_security_and_updates_only_stanzas():
    assert mirrors_from_deb822(DEB822) == ["http://mirror.example/debian"]


def test_mirror_from_one_line_sources_with_options():
    text = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\ndeb http://m.example/debian-security bookworm-security main\n"
    assert mirrors_from_list(text) == ["http://m.example/debian"]


def test_machine_mirror_reads_apt_dir(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert machine_debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_no_mirror_is_explained(tmp_path: Path):
    with pytest.raises(EnvironmentProblem, match="pass --mirror URL"):
        machine_debian_mirror(tmp_path)


def test_inotify_limit_checked_before_starting_hosts(tmp_path: Path):
    limit = tmp_path / "max"
    limit.write_text("128\n")
    check_inotify(10, 0, limit)
    with pytest.raises(EnvironmentProblem, match="fs.inotify.max_user_instances is 128"):
        check_inotify(20, 5, limit)


def test_the_product_imports_the_sandbox_only_in_the_sandbox_commands():
    """provision/ never knows it runs in a sandbox: only `provision sandbox ...` (cli/sandbox_cmds.py) imports it."""
    import re

    root = Path(__file__).resolve().parents[2] / "provision"
    importing = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                       if re.search(r"^\s*(from|import) provision_sandbox\b", path.read_text(), re.M))
    assert importing == ["cli/sandbox_cmds.py"]


def test_sandbox_down_removes_only_its_own_fleets_inventory(tmp_path):
    """`sandbox down --fleet X` used to delete any sandbox-written inventory, e.g. the default fleet's
    inventories/sandbox.yml; it now checks that the header names X's become-password file."""
    from provision_sandbox.fleet import SandboxHost, write_inventory, written_for
    from provision_sandbox.names import Paths

    mine, other = Paths.default("mine"), Paths.default("other")
    path = tmp_path / "sandbox.yml"
    write_inventory(path, [SandboxHost(name="sbx1", container="c1", port=22201, gpu=False)], mine)
    text = path.read_text()
    assert written_for(text, mine)
    assert not written_for(text, other)
    assert not written_for("all:\n  hosts: {}\n", mine)
