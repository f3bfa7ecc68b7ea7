"""The quoting primitives of provision/commands/ and the table of tests/e2e/test_command_quoting.py:
every public function of every module of provision/commands/ is in it (a new builder cannot be left
out of the property test on the sandbox), and every value that cannot travel in argv (a NUL byte;
for URLs and apt sources a control character or a leading `-`) is refused before anything runs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import provision.commands
from provision.commands import apt, argv, deploy_host, docker_repo, files, nvidia, swarm
from provision.errors import EXIT_BAD_INPUT, InputError
from tests.e2e.test_command_quoting import BUILDERS, CASES, EXAMPLES, NASTY, WORK, Case


def public_functions() -> set[str]:
    names = set()
    for info in pkgutil.iter_modules(provision.commands.__path__):
        module = importlib.import_module(f"provision.commands.{info.name}")
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if not fname.startswith("_") and fn.__module__ == module.__name__:
                names.add(f"{info.name}.{fname}")
    return names


def test_every_public_function_of_commands_is_in_the_property_table():
    missing = public_functions() - set(BUILDERS)
    assert not missing, (f"add these to BUILDERS in tests/e2e/test_command_quoting.py (a Case that drives it on the "
                         f"sandbox, or the reason it takes no operator string): {sorted(missing)}")
    stale = set(BUILDERS) - public_functions()
    assert not stale, f"no longer in provision/commands/: {sorted(stale)}"
    assert all(isinstance(why, Case) or why.strip() for why in BUILDERS.values())


@pytest.mark.parametrize("key", sorted(CASES))
def test_a_nul_byte_is_refused_or_carried_escaped(key):
    case = CASES[key]
    value = "a\0b"
    if case.refuses(value):
        with pytest.raises(argv.UnsafeValue) as exc:
            case.call(value, WORK)
        assert isinstance(exc.value, ValueError) and isinstance(exc.value, InputError)
        assert exc.value.exit_code == EXIT_BAD_INPUT
        assert "NUL" in exc.value.message or "control character" in exc.value.message
    else:  # JSON carries it as \u0000: nothing NUL reaches the command line
        command = case.call(value, WORK)
        assert "\0" not in command and "\\u0000" in command


@pytest.mark.parametrize("key", sorted(CASES))
def test_builders_accept_every_nasty_class_or_refuse_it_cleanly(key):
    case = CASES[key]
    for value in [*EXAMPLES, *NASTY]:
        if case.refuses(value):
            with pytest.raises(argv.UnsafeValue):
                case.call(value, WORK)
        else:
            assert "\0" not in case.call(value, WORK)


def test_primitives():
    assert argv.quote("it's $(id)") == "'it'\"'\"'s $(id)'"
    assert argv.join(["docker", "run", "--", "-x y"]) == "docker run -- '-x y'"
    assert argv.args(["a", "b c"]) == ["a", "b c"]
    assert argv.one_line("é 中 🚀 \\ ' \"") == "é 中 🚀 \\ ' \""
    assert argv.url("https://u:p@h/x?a=1&b=2") == "https://u:p@h/x?a=1&b=2"
    with pytest.raises(argv.UnsafeValue, match=r"^proxy contains a NUL byte \(at offset 3\): it cannot be passed"):
        argv.quote("abc\0secret", "proxy")
    with pytest.raises(argv.UnsafeValue, match=r"^suite contains the control character '\\n' \(at offset 1\)"):
        argv.one_line("a\nTrusted: yes", "suite")
    with pytest.raises(argv.UnsafeValue, match="starts with '-'"):
        argv.url("-K/etc/shadow")
    with pytest.raises(argv.UnsafeValue, match="must be a string"):
        argv.checked(3)  # type: ignore[arg-type]


def test_refusals_never_quote_the_value():
    with pytest.raises(argv.UnsafeValue) as exc:
        apt.env_prefix({"https_proxy": "http://user:hunter2@proxy\0"})
    assert "hunter2" not in str(exc.value)
    assert str(exc.value) == "proxy setting contains a NUL byte (at offset 37): it cannot be passed to a remote command"


def test_nul_in_each_kind_of_value_is_refused():
    for call in (lambda: apt.install(["docker-ce\0"]), lambda: apt.madison("x\0"), lambda: apt.hold(["\0"]),
                 lambda: apt.update(proxy={"http_proxy": "\0"}), lambda: apt.dpkg_lock_holder_script("/x\0"),
                 lambda: deploy_host.make_dirs(["/srv/\0"]), lambda: deploy_host.sync_folder("/a\0", "/b", "c", "/d/e", "/a"),
                 lambda: docker_repo.remove_stale_files(["/x\0"]), lambda: files.write_file("/x\0", "c"),
                 lambda: nvidia.gpu_test_command("img\0"), lambda: nvidia.driver_packages("580\0", nvswitch=False),
                 lambda: nvidia.toolkit_package_specs("1.0\0"), lambda: nvidia.cdi_generate("/x\0"),
                 lambda: swarm.init("eth0\0"), lambda: swarm.label_add("n\0"), lambda: swarm.label_rm("n\0")):
        with pytest.raises(ValueError, match="NUL byte"):
            call()


def test_json_values_keep_a_nul_escaped():
    entry = {"who": "a\0b"}
    command = deploy_host.append_audit(entry)
    assert "\0" not in command and '{"who": "a\\u0000b"}' in command
