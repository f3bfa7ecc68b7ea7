"""The CLI's shape: every command group reachable from `provision --help`, and no module in
provision/cli reaching into another module's private names (shared helpers live in runner.py/render.py)."""

import ast
import subprocess
import sys
from pathlib import Path

import provision.cli

CLI_DIR = Path(provision.cli.__file__).parent

COMMANDS = ["init", "hosts", "facts", "run", "verify", "bootstrap", "config", "deploy", "rollback", "status", "logs", "exec",
            "down", "prune", "df", "unlock"]
GROUPS = {"sandbox": ["up", "status", "down", "image", "attach"], "docker": ["install", "uninstall"], "nvidia": ["install"],
          "swarm": ["init"]}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_imports(source: str) -> list[str]:
    """`from X import _name`, `from provision._x import y`, `import provision._x`, and `module._name` where
    `module` is one of provision's, imported (os._exit and the like are the standard library's public API)."""
    tree = ast.parse(source)
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            ours = node.level > 0 or (node.module or "").startswith("provision")
            where = "." * node.level + (node.module or "")
            if ours and any(_private(part) for part in (node.module or "").split(".")):
                found.append(where)
            for alias in node.names:
                if _private(alias.name):
                    found.append(where + ("" if where.endswith(".") else ".") + alias.name)
                if ours:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("provision"):
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(alias.name)
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in modules:
                found.append(ast.unparse(node))
    return found


def test_the_checker_sees_each_kind_of_private_import():
    assert _private_imports("from provision.cli.app import _finish\n") == ["provision.cli.app._finish"]
    assert _private_imports("def f():\n    from provision.cli.app import main, _x as y\n") == ["provision.cli.app._x"]
    assert _private_imports("from provision.cli import app\napp._render_plan(1, 2)\n") == ["app._render_plan"]
    assert _private_imports("from . import _helpers\n") == ["._helpers"]
    assert _private_imports("from provision._vendor import x\nimport provision._y\n") == ["provision._vendor", "provision._y"]
    assert _private_imports("import provision.cli.app\nprovision.cli.app._exit_now(1)\n") == \
        ["provision.cli.app._exit_now"]
    assert _private_imports("from __future__ import annotations\nimport os\nos.path.join('a')\n") == []


def test_no_cli_module_imports_a_private_name_from_another_module():
    offenders = {path.name: found for path in sorted(CLI_DIR.glob("*.py"))
                 if (found := _private_imports(path.read_text()))}
    assert offenders == {}


def test_help_lists_every_command_and_group_in_order():
    import typer.main

    from provision.cli.app import app

    group = typer.main.get_command(app)
    ctx = group.make_context("provision", [], resilient_parsing=True)
    assert group.list_commands(ctx) == COMMANDS + list(GROUPS)
    for name, subcommands in GROUPS.items():
        sub = group.get_command(ctx, name)
        assert sub.list_commands(ctx) == subcommands, name


def test_provision_help_shows_every_command_group():
    proc = subprocess.run([sys.executable, "-m", "provision", "--help"], capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[1] for line in proc.stdout.splitlines()
              if line.startswith("│ ") and len(line.split()) > 1 and not line.split()[1].startswith("-")]
    for name in COMMANDS + list(GROUPS):
        assert name in listed, (name, proc.stdout)


def test_main_registers_only_the_invoked_command_and_its_help_is_the_whole_apps():
    """main() builds only the invoked command's module (issue 12: typer builds the parameters of every
    registered command before parsing); each command's --help is the same as the whole app's."""
    code = r'''
import contextlib, io, sys
import typer.main
from provision.cli.app import REGISTRATION, app, build_app, main

def paths(command, prefix):
    yield prefix
    for name in getattr(command, "commands", {}) or {}:
        yield from paths(command.commands[name], prefix + [name])

def help_of(call, path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            call(path + ["--help"])
        except SystemExit:
            pass
    return out.getvalue()

whole = typer.main.get_command(app)
names = [name for _, _, registered in REGISTRATION for name in registered]
assert sorted(names) == sorted(whole.commands), (names, sorted(whole.commands))
for _, _, registered in REGISTRATION:
    assert sorted(typer.main.get_command(build_app(registered[0])).commands) == sorted(registered)
for path in list(paths(whole, []))[1:]:
    lazy = help_of(main, path)
    full = help_of(lambda a: app(args=a, prog_name="provision", standalone_mode=False), path)
    assert lazy == full and lazy.strip(), path
print("OK")
'''
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1",
           "PYTHONPATH": ":".join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]
