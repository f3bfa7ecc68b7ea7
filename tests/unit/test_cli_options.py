"""Every host-acting command hands its command-line options to the runner unchanged: --inventory,
--limit, --forks, --check, --json, -v, --known-hosts, --accept-new-host-keys and -K, field by field; and the
runner hands them on to provision.api as its Settings.

The fan-out is replaced by a stub that records the HostOptions it was given and stops the command,
so nothing connects anywhere."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision.cli import deploy_cmds, docker_cmds, facts_cmds, ops_cmds, swarm_cmds
from provision.cli.app import app
from provision.cli.options import HostOptions


class Stop(Exception):
    pass


@pytest.fixture
def inventory(tmp_path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1}\n    h2: {ansible_host: 127.0.0.2}\n")
    return path


def _args(inventory: Path, tmp_path: Path, check: bool) -> list[str]:
    return ["-i", str(inventory), "-l", "h1", "--forks", "3", "--json", "-v", "-v",
            "--known-hosts", str(tmp_path / "kh"), "--accept-new-host-keys", "-K"] + (["--check"] if check else [])


def _expected(inventory: Path, tmp_path: Path, check: bool) -> HostOptions:
    return HostOptions(inventory=inventory, limit="h1", forks=3, check=check, json=True, verbose=2,
                       known_hosts=tmp_path / "kh", accept_new_host_keys=True, ask_become_pass=True)


# (module whose run_on_hosts the command calls, argv before the shared options, has --check)
FANNED_OUT = [
    (facts_cmds, ["facts"], True),
    (facts_cmds, ["run", "uptime"], True),
    (docker_cmds, ["docker", "install"], True),
    (docker_cmds, ["docker", "uninstall"], True),
    (docker_cmds, ["nvidia", "install"], True),
    (docker_cmds, ["verify"], True),
    (docker_cmds, ["bootstrap"], True),
    (deploy_cmds, ["rollback", "web"], False),
    (ops_cmds, ["status"], False),
    (ops_cmds, ["logs", "web"], False),
    (ops_cmds, ["exec", "web"], False),  # its command (`-- true`) comes after the options
    (ops_cmds, ["down"], True),
    (ops_cmds, ["prune"], False),
    (ops_cmds, ["df"], False),
    (ops_cmds, ["unlock", "--yes"], False),
]


CASES = [(module, argv, with_check) for module, argv, check in FANNED_OUT for with_check in ((False, True) if check else (False,))]


@pytest.mark.parametrize("module,argv,with_check", CASES,
                         ids=[" ".join(argv[:2]) + (" --check" if c else "") for _, argv, c in CASES])
def test_options_reach_the_runner_unchanged(module, argv, with_check, inventory, tmp_path, monkeypatch):
    seen = []

    def run_on_hosts(command_name, o, work, *, needs_become=False):
        seen.append(o)
        raise Stop

    monkeypatch.setattr(module, "run_on_hosts", run_on_hosts)
    tail = ["--", "true"] if argv[0] == "exec" else []
    result = CliRunner().invoke(app, [*argv, *_args(inventory, tmp_path, with_check), *tail])
    assert isinstance(result.exception, Stop), result.output
    assert seen == [_expected(inventory, tmp_path, with_check)]


@pytest.mark.parametrize("swarm", [False, True], ids=["deploy", "deploy --swarm"])
def test_deploy_loads_the_playbook_with_the_given_inventory_and_limit(swarm, inventory, tmp_path, monkeypatch):
    from provision import api
    from provision.workflows import deploy, swarm_deploy

    loads, seen = [], []

    def load(files, inventory_path, limit, *, environ, project_name, profiles):
        loads.append((files, inventory_path, limit, project_name, profiles))
        playbook = type("Playbook", (), {"warnings": []})()
        return (playbook, [], {}) if not swarm else type("Loaded", (), {"hosts": [], "playbook": playbook})()

    def run_on_hosts(command_name, o, workflow):
        seen.append(o)
        workflow(api.Settings(progress=stop))  # loads, then stops where the hosts would be worked on

    monkeypatch.setattr(swarm_deploy if swarm else deploy, "load", load)
    monkeypatch.setattr(deploy_cmds, "run_on_hosts", run_on_hosts)
    argv = ["deploy", str(tmp_path / "stack.yml"), str(tmp_path / "prod.yml"), *(["--swarm"] if swarm else []),
            "-p", "shop", "--profile", "gpu", "--profile", "debug", *_args(inventory, tmp_path, True)]
    result = CliRunner().invoke(app, argv)
    assert isinstance(result.exception, Stop), result.output
    assert loads == [([tmp_path / "stack.yml", tmp_path / "prod.yml"], inventory, "h1", "shop", ("gpu", "debug"))]
    assert seen == [_expected(inventory, tmp_path, True)]


def test_swarm_init_options(inventory, tmp_path, monkeypatch):
    from provision import api
    from provision.workflows import swarm

    seen = []
    monkeypatch.setattr(swarm, "load_swarm_targets", lambda inventory_path, limit: seen.append((inventory_path, limit)) or [])

    def run_on_hosts(command_name, o, workflow):
        seen.append(o)
        workflow(api.Settings(progress=stop))

    monkeypatch.setattr(swarm_cmds, "run_on_hosts", run_on_hosts)
    result = CliRunner().invoke(app, ["swarm", "init", *_args(inventory, tmp_path, True)])
    assert isinstance(result.exception, Stop), result.output
    assert seen == [_expected(inventory, tmp_path, True), (inventory, "h1")]


def stop(command, total):
    raise Stop


def test_the_runner_hands_the_options_to_the_api(inventory, tmp_path, monkeypatch):
    """--forks, --known-hosts, --accept-new-host-keys and -K become provision.api.Settings; the workflow is the
    api's function, called with the command's inventory and limit."""
    from provision import api
    from provision.cli import runner

    calls = []
    monkeypatch.setattr(api, "facts", lambda inventory, *, limit, check, settings: calls.append(
        (inventory, limit, check, settings)) or (_ for _ in ()).throw(Stop))
    result = CliRunner().invoke(app, ["facts", *_args(inventory, tmp_path, True)])
    assert isinstance(result.exception, Stop), result.output
    [(inv, limit, check, settings)] = calls
    assert (inv, limit, check) == (inventory, "h1", True)
    assert (settings.forks, settings.known_hosts, settings.accept_new_host_keys) == (3, tmp_path / "kh", True)
    assert settings.become_password is runner.ask_become_password
    assert callable(settings.progress)
