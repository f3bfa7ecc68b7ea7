"""Layering checks on the source (issue 10): a remote command is built by a function of
provision/commands/, never written in place where it is run or planned.

What counts as "written in place", for the command argument of any `X.run(...)` in provision/ (outside
provision/commands/ and provision/executor/, which build and send commands; provision/sandbox/, the
test-bed, is exempt; `subprocess.run` runs on the operator's machine) and for the commands, `undo=` and
`script=` given to a `Change(...)` or appended to a `commands`/`undo` list in provision/operations/ and
provision/workflows/: a string literal, an f-string, a string concatenation or `%`-format, a
`"...".format(...)` or `"...".join(...)`, or a list/tuple holding one of those. A local variable counts
as what was assigned to it in the same function (`script = "set -e\\n" + ...; executor.run(script)`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "provision"
BUILDERS_AND_SENDERS = ("provision/commands/", "provision/executor/")
PLANNERS = ("provision/operations/", "provision/workflows/")
COMMAND_LISTS = ("commands", "undo")

# Commands still written in place, allowed for now: (file, the offending argument as ast.unparse writes
# it). Empty: every remote command is built in provision/commands/; keep it that way.
KNOWN_ELSEWHERE: set[tuple[str, str]] = set()


def written_in_place(node: ast.AST | None, names: dict[str, list[ast.AST]], seen: frozenset[str] = frozenset()) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return written_in_place(node.left, names, seen) or written_in_place(node.right, names, seen)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return written_in_place(node.func.value, names, seen)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return any(written_in_place(e.value if isinstance(e, ast.Starred) else e, names, seen) for e in node.elts)
    if isinstance(node, ast.IfExp):
        return written_in_place(node.body, names, seen) or written_in_place(node.orelse, names, seen)
    if isinstance(node, ast.Name) and node.id in names and node.id not in seen:
        return any(written_in_place(value, names, seen | {node.id}) for value in names[node.id])
    return False


def local_values(function: ast.AST) -> dict[str, list[ast.AST]]:
    """Every value a local name is given in the function: `x = ...`, `x += ...`, `x.append(...)`,
    `x.extend(...)`."""
    values: dict[str, list[ast.AST]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values.setdefault(target.id, []).append(node.value)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name) and node.value:
            values.setdefault(node.target.id, []).append(node.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("append", "extend")
              and isinstance(node.func.value, ast.Name) and node.args):
            values.setdefault(node.func.value.id, []).append(node.args[0])
    return values


def command_arguments(path: str, tree: ast.Module):
    """(line, what, the argument node, the local names of its function) for every place a command is given."""
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    owner: dict[ast.AST, ast.AST] = {}
    for function in functions:  # innermost function wins (walk order: outer before inner)
        for node in ast.walk(function):
            owner[node] = function
    cache: dict[ast.AST, dict[str, list[ast.AST]]] = {}

    def names_of(node: ast.AST) -> dict[str, list[ast.AST]]:
        function = owner.get(node)
        if function is None:
            return {}
        if function not in cache:
            cache[function] = local_values(function)
        return cache[function]

    planner = path.startswith(PLANNERS)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "run":
            if not (isinstance(func.value, ast.Name) and func.value.id == "subprocess"):
                arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "command"), None)
                if arg is not None:
                    yield node.lineno, "run", arg, names_of(node)
        for keyword in node.keywords:
            if keyword.arg == "script" or (planner and keyword.arg in ("undo", "commands")):
                yield node.lineno, keyword.arg, keyword.value, names_of(node)
        if planner and isinstance(func, ast.Name) and func.id == "Change" and len(node.args) > 2:
            yield node.lineno, "Change", node.args[2], names_of(node)
        if (planner and isinstance(func, ast.Attribute) and func.attr in ("append", "extend")
                and isinstance(func.value, ast.Name) and func.value.id in COMMAND_LISTS and node.args):
            yield node.lineno, f"{func.value.id}.{func.attr}", node.args[0], names_of(node)


def violations() -> list[tuple[str, int, str, str]]:
    found = []
    for file in sorted(PACKAGE.rglob("*.py")):
        path = file.relative_to(ROOT).as_posix()
        if path.startswith(BUILDERS_AND_SENDERS):
            continue
        tree = ast.parse(file.read_text(), filename=path)
        for line, what, arg, names in command_arguments(path, tree):
            if written_in_place(arg, names):
                found.append((path, line, what, ast.unparse(arg)))
    return found


def test_no_remote_command_is_written_in_place_outside_commands():
    new = [v for v in violations() if (v[0], v[3]) not in KNOWN_ELSEWHERE]
    assert not new, "remote commands written in place (build them with a function of provision/commands/, " \
                    "with an exact-string unit test):\n" + "\n".join(f"{p}:{l}: {w}({a})" for p, l, w, a in new)


def test_known_elsewhere_lists_only_what_is_still_there():
    """An entry fixed by its owner must leave the allow-list (so the list only shrinks)."""
    current = {(v[0], v[3]) for v in violations()}
    assert KNOWN_ELSEWHERE <= current, sorted(KNOWN_ELSEWHERE - current)


def _found(source: str, path: str = "provision/workflows/x.py") -> list[str]:
    tree = ast.parse(source)
    return [ast.unparse(arg) for _, _, arg, names in command_arguments(path, tree) if written_in_place(arg, names)]


def test_the_check_sees_each_way_of_writing_a_command_in_place():
    assert _found("def f(e, s):\n e.run('cat /etc/machine-id')") == ["'cat /etc/machine-id'"]
    assert _found("def f(e, s):\n e.run(f'timeout {s} cloud-init status --wait')")
    assert _found("def f(e, s):\n e.run('dpkg-query -W ' + ' '.join(s))")
    assert _found("def f(e, s):\n e.run('rm %s' % s)")
    assert _found("def f(e, s):\n e.run('rm {}'.format(s))")
    assert _found("def f(e, s):\n e.run(['test', '-d', s])")
    assert _found("def f(e, s):\n script = 'set -e\\n' + s\n e.run(script, become=True)")
    assert _found("def f(s):\n return Change('a', 'b', ['systemctl enable --now docker'])")
    assert _found("def f(s):\n return Change('a', 'b', [s], undo=[f'rm -f {s}'])")
    assert _found("def f(s):\n commands = []\n commands.append('systemctl enable x')")
    assert _found("def f(s):\n backup = 'true'\n return Change('a', 'b', [backup, s])")


def test_the_check_lets_built_commands_through():
    assert _found("def f(e, s):\n e.run(system.machine_id())\n e.run(s)\n e.run(dpkg.versions(s), become=True)") == []
    assert _found("def f(s):\n return Change('a', 'b', [files.remove(s)], undo=[apt.update()])") == []
    assert _found("import subprocess\ndef f():\n subprocess.run(['git', 'status'])") == []
    assert _found("def f(e):\n e.run('x')", path="provision/commands/x.py") == ["'x'"]  # the caller skips commands/


# -- no command text outside provision/commands/ (issue 10: "grep finds no remote command string") -------
# A string constant (or an f-string) in provision/ outside provision/commands/ and provision/executor/
# (provision/sandbox/, the test-bed, is exempt as above) must not *start with* a shell command. Docstrings,
# exception messages (`raise X("nvidia-smi -q -x printed nothing")`) and regular expressions
# (`re.compile(...)`) are not commands. After a word that is only ever a command (COMMAND_ONLY_WORDS:
# `getent group docker`), anything counts; a word that is also plain English or a step name ("docker
# packages", "cat exited with status 2", "reboot required: re-run with --reboot", f"install {driver}")
# counts only when what follows it is command-like: its next word an option (`-x`, `--x`), an absolute
# path, a quote or an expansion, or a constant's value (`f"cat {SOURCES}"`, `{docker_repo.KEYRING}`), or
# a shell operator or expansion anywhere after it (`; | & < > $`; not backticks, which messages use to
# quote a command: "docker info lists runtimes x, not nvidia: run `provision nvidia install`"). A shell
# variable set from a command or another variable (`t=$(mktemp); ...`) counts too, and each line of a
# multi-line string is checked (a script that opens with a comment).
COMMAND_ONLY_WORDS = (
    "dpkg-query", "apt-get", "apt-mark", "apt-cache", "systemctl", "systemd-run", "journalctl", "findmnt", "readlink",
    "lsmod", "modprobe", "nvidia-ctk", "ubuntu-drivers", "dcgmi", "getent", "usermod", "useradd", "mkdir", "rmdir",
    "chmod", "chown", "sha256sum", "mktemp", "lspci", "mokutil", "uname", "nohup", "sudo", "printf", "base64", "dockerd",
    "command -v", "sh -c", "bash -c", "set -e", "[", "[[",
)
COMMAND_WORDS = COMMAND_ONLY_WORDS + (
    "cat", "dpkg", "apt", "docker", "nvidia-smi", "test", "rm", "mv", "cp", "ls", "grep", "sed", "awk", "echo", "timeout",
    "df", "stat", "snap", "curl", "wget", "gpg", "tee", "install", "ln", "sleep", "cloud-init", "id", "ip", "tar",
    "find", "touch", "od", "env", "export", "for", "if", "while", "case", "reboot", "shutdown", "kill", "tail", "head",
    "cut", "sort", "exec", "true", "false", "cd", "umask",
)
_WORD = "|".join(re.escape(w) for w in sorted(COMMAND_WORDS, key=len, reverse=True))
STARTS_WITH_COMMAND = re.compile(rf"^\s*(?P<word>{_WORD})(?=\s)(?P<rest>\s.*)?$", re.S)
SHELL_ASSIGNMENT = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*=(?:\$\(|\$\{?[A-Za-z_]|\"\$)")  # t=$(mktemp), P="$PATH..."
COMMAND_LIKE_NEXT = re.compile("^\\s+(?:-|/|\\$|'|\"|\0)")
SHELL_OPERATORS = re.compile(r"[;|&<>$]")
CONSTANT, VALUE = "\0", "\1"  # stand for an f-string's {CONSTANT} / {other value} in the text checked


def looks_like_a_command(text: str) -> bool:
    """TEXT, or one of its lines (a script), starts with a shell command."""
    return any(_starts_with_command(line) for line in text.split("\n"))


def _starts_with_command(text: str) -> bool:
    if SHELL_ASSIGNMENT.match(text):
        return True
    match = STARTS_WITH_COMMAND.match(text)
    if match is None:
        return False
    rest = match["rest"] or ""
    if match["word"] in COMMAND_ONLY_WORDS:
        return bool(rest.strip())
    return bool(COMMAND_LIKE_NEXT.match(rest) or SHELL_OPERATORS.search(rest))


def _placeholder(value: ast.FormattedValue) -> str:
    """CONSTANT for `{NAME}` / `{module.NAME}` in capitals (a path or a word of provision's own), else VALUE."""
    node = value.value
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return CONSTANT if name and name.isupper() else VALUE


def _not_commands(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings, exception messages or regular expressions."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        below = []
        if isinstance(node, ast.Raise) and node.exc is not None:
            below = [node.exc]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
              and node.func.value.id == "re"):
            below = node.args
        for part in below:
            skip.update(id(n) for n in ast.walk(part))
        if isinstance(node, ast.JoinedStr):  # its parts are checked as one text
            skip.update(id(n) for n in node.values)
    return skip


def command_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string of SOURCE that starts with a shell command."""
    tree = ast.parse(source)
    skip = _not_commands(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else _placeholder(v) for v in node.values)
        else:
            continue
        if looks_like_a_command(text):
            found.append((node.lineno, text.replace(CONSTANT, "{…}").replace(VALUE, "{…}")))
    return found


def test_no_string_outside_commands_starts_with_a_shell_command():
    found = []
    for file in sorted(PACKAGE.rglob("*.py")):
        path = file.relative_to(ROOT).as_posix()
        if path.startswith(BUILDERS_AND_SENDERS + ("provision/sandbox/",)):
            continue
        found += [f"{path}:{line}: {text[:100]!r}" for line, text in command_strings(file.read_text())]
    assert not found, "command text outside provision/commands/ (move it into a builder there, with an " \
                      "exact-string unit test):\n" + "\n".join(found)


def test_the_command_string_check_sees_commands_and_lets_messages_through():
    commands = ['X = "cat /etc/os-release"', 'X = "dpkg --print-architecture"', 'X = f"cat {SOURCES}"',
                'X = "[ -d /run/systemd/system ] && echo yes || echo no"', 'X = "getent group docker"',
                'X = "command -v snap >/dev/null || exit 127; snap list docker"', 'X = f"[ -f {K} ] || exit 1"',
                'X = "systemctl show docker -p UnitFileState"', "X = (\"x\", \"dpkg --audit 2>/dev/null | grep -q .\")",
                'X = "  sudo -n true"', 'X = f"sed \'s#deb https://#deb [signed-by={K}] https://#g\'"',
                'def f(u):\n    return f"printf \'%s\\\\n\' {u}"',
                'X = f"t=$(mktemp); {fetch} -o \\"$t\\" {key}"', 'X = r"""# a script\nPATH=\"${PATH:-/usr/bin}\"\nexit 0\n"""',
                'X = "# a script\\ncat /proc/meminfo\\n"']
    for source in commands:
        assert command_strings(source), source
    messages = ['"""cat /etc/os-release: a docstring"""', 'X = "docker packages"', 'X = "reboot required: re-run"',
                'X = f"docker info exited {rc}"', 'X = f"cat exited with status {rc}"', 'X = "nvidia-smi not found"',
                'X = f"start it with `systemctl start docker` on {host}"', 'X = "docker"', 'X = "systemctl"',
                'raise E("nvidia-smi -q -x printed nothing")', 'P = re.compile(r"printf %s \'?(?P<d>.+)\'? \\| base64 -d")',
                'X = f"cloud-init still running after {n}s"', 'X = f"docker {docker[\'version\']}"',
                'X = f"install {driver}, or use an image tag built for CUDA {v} or older"',
                'X = "reboot required: re-run with --reboot"',
                'X = f"docker info lists runtimes {r}, not nvidia: run `provision nvidia install`"', 'X = "test must start with CMD, CMD-SHELL or NONE"',
                'def f():\n    """systemctl show docker -p X"""']
    for source in messages:
        assert not command_strings(source), source
