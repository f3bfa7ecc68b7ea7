"""The layering, checked on the source (issue 10): data flows one way, shared concepts have a home.

- No module imports a private name (leading underscore) of another module.
- No import cycle between modules of different concerns (packages); inside one concern a cycle is
  allowed only through TYPE_CHECKING imports.
- Each concern imports only the concerns below it (ALLOWED), so commands/ stays pure, operations/
  never know workflows or the CLI, and the product never imports the test bed (provision_sandbox),
  except the `provision sandbox` commands.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "provision"

# concern -> the concerns it may import (top-level modules count as concerns of their own)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "secret": set(),
    "redaction": {"secret"},
    "interrupts": {"errors"},
    "report": {"errors"},
    "progress": set(),
    "commands": {"errors", "secret"},
    "config": {"errors", "secret"},
    "executor": {"config", "errors", "secret", "redaction", "interrupts"},
    "facts": {"commands", "errors", "secret", "redaction"},
    "operations": {"commands", "config", "facts", "errors", "secret", "redaction"},
    "deploy": {"commands", "config", "compose", "executor", "facts", "errors", "secret", "redaction", "interrupts",
               "report", "progress"},
    "compose": {"config", "errors", "secret"},
    "workflows": {"commands", "config", "deploy", "compose", "executor", "facts", "operations", "errors",
                  "secret", "redaction", "interrupts", "report", "progress"},
    "api": {"workflows", "config", "deploy", "compose", "errors", "report", "executor", "secret", "progress"},
    "cli": {"api", "workflows", "config", "deploy", "compose", "executor", "facts", "errors", "secret",
            "redaction", "interrupts", "report", "progress"},
    "__main__": {"cli"},
    "__init__": set(),
}
SANDBOX_GATE = {"provision.cli.sandbox_cmds"}  # the only product modules that may import the test bed


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path):
    """(imported module, imported name or None, inside `if TYPE_CHECKING:`) for every import."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            for alias in node.names:
                yield module, alias.name, id(node) in typing_only
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, id(node) in typing_only


def _concern(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


MODULES = _modules()


def test_no_private_name_is_imported_from_another_module():
    found = []
    for name, path in MODULES.items():
        for module, imported, _ in _imports(name, path):
            if module.startswith("provision") and imported and imported.startswith("_") \
                    and f"{module}.{imported}" not in MODULES and module != name:
                found.append(f"{name}: from {module} import {imported}")
    assert found == []


def test_each_concern_imports_only_the_concerns_below_it():
    found = []
    for name, path in MODULES.items():
        mine = _concern(name)
        for module, _, typing_only in _imports(name, path):
            if module.startswith("provision_sandbox") and name not in SANDBOX_GATE:
                found.append(f"{name} imports the test bed {module}")
            if not module.startswith("provision.") or typing_only:
                continue
            theirs = _concern(module)
            if theirs != mine and theirs not in ALLOWED.get(mine, set()):
                found.append(f"{name} ({mine}) imports {module} ({theirs})")
    assert found == []


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, imported, typing_only in _imports(name, path):
            if typing_only or not module.startswith("provision."):
                continue
            target = f"{module}.{imported}" if imported and f"{module}.{imported}" in MODULES else module
            if target in MODULES and target != name:
                graph[name].add(target)
    cycles = _cycles(graph)
    assert cycles == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
