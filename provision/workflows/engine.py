"""A host's Docker engine over its SSH connection, checked to answer: used by deploy, rollback,
`deploy --swarm` and the ops commands. When it does not answer, the message says why (Docker missing,
or its daemon stopped and how to start it: workflows.docker.daemon_problem)."""

from __future__ import annotations

from provision.errors import HostError, ProvisionError
from provision.executor.base import Executor
from provision.workflows.targets import Target


def engine(target: Target, executor: Executor):
    """The host's docker.DockerClient, pinged; HostError with engine_problem's message if it does not answer."""
    import requests.exceptions

    from provision.deploy.remote_docker import client_for

    client = client_for(executor, target.settings)
    try:
        client.ping()
    except requests.exceptions.ConnectionError as exc:
        raise HostError(engine_problem(target.name, executor, exc)) from None
    return client


def engine_problem(host: str, executor: Executor, exc: Exception) -> str:
    """The message for an engine that did not answer over SSH."""
    from provision.workflows.docker import daemon_problem

    try:
        problem = daemon_problem(host, executor)
    except ProvisionError:  # the host went away meanwhile: the generic message below
        problem = None
    return problem or ("the Docker engine does not answer over SSH (installed and running? see "
                       f"`provision docker install`): {str(exc).splitlines()[0][:200]}")
