"""The Docker Engine API half of `provision swarm init`: the join tokens read on the leader (`GET /swarm`)
and the join of a member (`POST /swarm/join`), each over the host's own SSH connection, so a token is
never on a command line. Errors of the docker SDK become one line without the token."""

from __future__ import annotations

import time
from typing import Any, Callable

from provision.commands import swarm as cmd
from provision.executor.base import Executor
from provision.secret import Secret
from provision.facts import swarm as facts
from provision.operations.base import Change, redact
from provision.report import StepResult
from provision.workflows.applier import Applier
from provision.workflows.targets import Target

DockerFactory = Callable[[Target, Executor], Any]  # a host → its docker.DockerClient (over its SSH connection)


def docker_error(exc: Exception, secrets: list[Secret]) -> str | None:
    """One line for an error of the docker SDK or its transport (never a token); None for others."""
    import docker.errors
    import requests.exceptions

    if not isinstance(exc, (docker.errors.DockerException, requests.exceptions.RequestException)):
        return None
    text = str(getattr(exc, "explanation", None) or exc or type(exc).__name__).strip()
    for secret in secrets:
        if secret:
            text = text.replace(secret.reveal(), "********")
    line = text.splitlines()[0][:300] if text else type(exc).__name__
    if isinstance(exc, requests.exceptions.ConnectionError):
        line = f"the Docker engine does not answer over SSH: {line}"
    return redact(line)


def read_tokens(docker_factory: DockerFactory, target: Target, executor: Executor) -> dict[str, Secret]:
    """The join tokens, through the leader's Engine API (`GET /swarm`) over its SSH connection."""
    client = docker_factory(target, executor)
    try:
        return facts.parse_join_tokens(client.api.inspect_swarm())
    finally:
        client.close()


def join(applier: Applier, step: Change, docker_factory: DockerFactory, target: Target, executor: Executor, token: Secret | None,
          manager_addr: str, advertise: str) -> bool:
    """Apply the join step: the Engine API's `POST /swarm/join` on the member (the token in the body).

    The step as the Applier records it (changed or failed, with the duration); True when joined."""
    if applier.check or applier.failed:
        return applier.apply(step)
    start = time.monotonic()
    if not token:
        applier.result.steps.append(StepResult(step.step, "failed", "the leader gave no join token for this role"))
        applier.failed = True
        return False
    body = cmd.join_request(token.reveal(), manager_addr, advertise)
    client = docker_factory(target, executor)
    try:
        client.api.join_swarm(remote_addrs=body["RemoteAddrs"], join_token=body["JoinToken"],
                              listen_addr=body["ListenAddr"], advertise_addr=body["AdvertiseAddr"])
    except Exception as exc:
        message = docker_error(exc, [token])
        if message is None:
            raise
        applier.result.steps.append(StepResult(step.step, "failed", f"swarm join (Engine API): {message}",
                                               time.monotonic() - start))
        applier.failed = True
        return False
    finally:
        client.close()
    applier.result.steps.append(StepResult(step.step, "changed", redact(step.reason), time.monotonic() - start))
    return True
