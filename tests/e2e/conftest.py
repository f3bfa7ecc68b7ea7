"""The end-to-end tests run the real CLI against a real sandbox fleet (fleet `e2e`, 3 hosts).

In CI (CI=true) a missing Docker engine is an error, never a skip: .ci/run installs and starts one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from provision_sandbox.names import Paths, container_name

FLEET = "e2e"
HOSTS = 3
ROOT = Path(__file__).resolve().parents[2]
# Where `cli`/`BackgroundCli` run provision when a test gives no cwd: a fresh folder per test module (set by
# the autouse fixture below), so that what provision keeps under the current folder (the deploy's local
# registry state, .provision/registry) never carries from one module to the next, nor from an earlier run.
_module_cwd: Path | None = None


@pytest.fixture(scope="module", autouse=True)
def module_cwd(tmp_path_factory, request):
    global _module_cwd
    _module_cwd = tmp_path_factory.mktemp("cwd-" + request.module.__name__.rsplit(".", 1)[-1])
    yield _module_cwd
    _module_cwd = None


def _env(env: dict | None) -> dict:
    """The test's environment for provision: no become password unless given, and this checkout's code
    first on the path whatever the folder it runs in."""
    full_env = {k: v for k, v in os.environ.items() if k != "PROVISION_BECOME_PASSWORD"}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    full_env.update(env or {})
    return full_env


@dataclass
class Fleet:
    name: str
    home: Path
    inventory: Path
    key: Path
    become_password: str
    ports: dict[str, int]

    def container(self, host: str) -> str:
        return container_name(self.name, host)

    def testinfra(self, host: str):
        import testinfra

        return testinfra.get_host(f"docker://{self.container(host)}")

    def write_inventory(self, path: Path, doc: dict) -> Path:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path


def cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True, text=True,
                          env=_env(env), cwd=cwd or _module_cwd, timeout=timeout)


def cli_json(*args: str, **kwargs) -> tuple[subprocess.CompletedProcess, dict]:
    proc = cli(*args, "--json", **kwargs)
    try:
        return proc, json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON document (exit {proc.returncode}):\n{proc.stdout}\n--- stderr:\n{proc.stderr}")


def wait_for(predicate, timeout: float = 30, what: str = "condition", interval: float = 0.2):
    """Poll `predicate` until it returns something truthy (returned), failing after `timeout` seconds: the
    e2e tests synchronise with the sandbox this way, never by sleeping a fixed time."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


class BackgroundCli:
    """`python -m provision ARGS` running in the background (a deploy to interrupt, to hold at a point),
    its output collected by threads; the tests wait on it with a deadline, never a fixed sleep."""

    def __init__(self, *args: str, env: dict | None = None, cwd: Path | None = None) -> None:
        import threading

        self.proc = subprocess.Popen([sys.executable, "-m", "provision", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=_env(env), cwd=cwd or _module_cwd)
        self.pid = self.proc.pid
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=lambda s=stream, into=into: into.extend(iter(s.readline, "")),
                                         daemon=True)
                        for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait_for(self, predicate, what: str, timeout: float = 120.0):
        """wait_for, failing at once (with the output) when provision exits first."""
        def ready():
            value = predicate()
            if not value and self.proc.poll() is not None:
                self.finish()
                pytest.fail(f"provision exited ({self.proc.returncode}) before {what}:\n{''.join(self.out)}\n"
                            f"{self.stderr}")
            return value
        try:
            return wait_for(ready, timeout, what)
        except BaseException:  # timed out (pytest's Failed is a BaseException): leave nothing running
            if self.proc.poll() is None:
                self.proc.kill()
            raise

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for reader in self.readers:
            reader.join(10)
        return self.proc.returncode, "".join(self.out), self.stderr


def engine_available() -> str | None:
    try:
        from provision_sandbox.engine import local_docker

        local_docker()
    except Exception as exc:  # the explanation is the skip/fail reason
        return str(exc)
    return None


def start_fleet(tmp_path_factory, name: str, hosts: int, gpu_hosts: int = 0):
    problem = engine_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the e2e tests, but: {problem}")
        pytest.skip(problem)
    # PROVISION_E2E_PREFIX keeps concurrent runs (two checkouts on one machine) in separate fleets
    name = os.environ.get("PROVISION_E2E_PREFIX", "") + name
    home = tmp_path_factory.mktemp(f"provision-home-{name}")
    # one offline-upstreams build (the signed docker repo) shared by every fleet of the session
    env = {"PROVISION_HOME": str(home), "PROVISION_CACHE": str(tmp_path_factory.getbasetemp() / "provision-cache")}
    inventory = home / "sandbox.yml"
    gpu_args = ("--gpu-hosts", str(gpu_hosts)) if gpu_hosts else ()
    up = cli("sandbox", "up", "--hosts", str(hosts), *gpu_args, "--fleet", name, "--inventory-out", str(inventory),
             env=env, timeout=900)
    if up.returncode != 0:  # leave nothing half-started behind for the next session to trip over
        cli("sandbox", "down", "--fleet", name, "--inventory-out", str(inventory), env=env)
    assert up.returncode == 0, up.stderr
    doc = yaml.safe_load(inventory.read_text())
    ports = {host: hv["ansible_port"] for host, hv in doc["all"]["children"]["sandbox"]["hosts"].items()}
    paths = Paths(home, name)
    fleet = Fleet(name=name, home=home, inventory=inventory, key=paths.key,
                  become_password=paths.become_password.read_text().strip(), ports=ports)
    return fleet, lambda: cli("sandbox", "down", "--fleet", name, "--inventory-out", str(inventory), env=env)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory) -> Fleet:
    """Three fresh hosts for the foundation tests (left without Docker)."""
    fleet, down = start_fleet(tmp_path_factory, FLEET, HOSTS)
    yield fleet
    down()


@pytest.fixture(scope="session")
def docker_fleet(tmp_path_factory) -> Fleet:
    """Two fresh hosts that the Docker install tests change step by step, in file order."""
    fleet, down = start_fleet(tmp_path_factory, "e2e-docker", 2)
    yield fleet
    down()


@pytest.fixture(scope="session")
def gpu_fleet(tmp_path_factory) -> Fleet:
    """Two fresh hosts, the last (sbx2) a SIMULATED GPU host (fake nvidia-smi; no GPU exists here)."""
    fleet, down = start_fleet(tmp_path_factory, "e2e-gpu", 2, gpu_hosts=1)
    yield fleet
    down()


@pytest.fixture(scope="session")
def nvidia_fleet(tmp_path_factory) -> Fleet:
    """Two fresh hosts, sbx2 a SIMULATED GPU host, changed step by step by the NVIDIA stage tests."""
    fleet, down = start_fleet(tmp_path_factory, "e2e-nvidia", 2, gpu_hosts=1)
    yield fleet
    down()


@pytest.fixture(scope="session")
def gpu_vm_fleet(tmp_path_factory) -> Fleet:
    """One fresh host, a SIMULATED GPU host (sbx1): the "fresh GPU VM" of README's walkthrough and API example
    (tests/e2e/test_readme_walkthrough.py, tests/e2e/test_api_example.py; each works on a fresh or a bootstrapped
    host, in either order)."""
    fleet, down = start_fleet(tmp_path_factory, "e2e-gpu-vm", 1, gpu_hosts=1)
    yield fleet
    down()


def readme_block(begin: str, end: str = "") -> str:
    """The fenced block of README.md between `<!-- BEGIN...` and `<!-- END -->` markers, without its fences."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"<!-- {begin}")
    stop = text.index(f"<!-- {end or begin.replace('begin', 'end')} -->", start)
    lines = text[start:stop].splitlines()[1:]
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    assert len(fences) == 2, f"README: one fenced block expected between the {begin} markers"
    return "\n".join(lines[fences[0] + 1:fences[1]]) + "\n"


def project_folder(tmp_path: Path) -> tuple[Path, dict]:
    """A fresh project folder and the environment README's commands run in: `provision` on PATH (this checkout),
    provision's state (known_hosts) under the test's temp dir."""
    folder = tmp_path / "project"
    folder.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "provision"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m provision \"$@\"\n")
    shim.chmod(0o755)
    env = _env({"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                "PROVISION_KNOWN_HOSTS": str(tmp_path / "known_hosts"), "PROVISION_HOME": str(tmp_path / "home")})
    return folder, env
