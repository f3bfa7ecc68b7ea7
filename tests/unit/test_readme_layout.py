"""The README's Layout section names every module of the tree, and names no module that is gone."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layout() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout"):]
    following = re.search(r"\n## ", section[3:])
    return section[: following.start() + 3] if following else section


def _modules(package: str) -> set[str]:
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        if path.name != "__init__.py":
            names.add(path.stem)
        elif path.parent != ROOT / package:
            names.add(path.parent.name)  # a subpackage is named by its folder
    return names


def test_every_module_is_in_the_layout():
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", _layout()))
    missing = sorted((_modules("provision") | _modules("provision_sandbox")) - words)
    assert missing == [], f"README Layout does not mention: {missing}"


def test_every_package_in_the_layout_exists():
    for folder in re.findall(r"^  ([a-z_]+)/ ", _layout(), flags=re.M):
        assert (ROOT / "provision" / folder).is_dir(), folder
