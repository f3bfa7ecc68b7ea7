"""`provision rollback SERVICE`: per host, under the host's lock, each replica of the service swaps
back to its retained previous version (NAME.previous), health-gated like a rollout (deploy.rollout)."""

from __future__ import annotations

import time

from provision.deploy import rollout
from provision.deploy.container_spec import LABEL_SERVICE, LABEL_STACK
from provision.executor.base import Executor
from provision.report import HostResult, StepResult
from provision.workflows.engine import engine
from provision.workflows.host_lock import HostLock
from provision.interrupts import INTERRUPT
from provision.workflows.targets import Target


def rollback_work(service_ref: str, health_timeout: float = 60.0):
    """Per host: swap each replica of SERVICE (or STACK/SERVICE) with its retained previous version."""
    stack, _, service = service_ref.rpartition("/")

    def work(target: Target, executor: Executor) -> HostResult:
        import docker.errors

        result = HostResult(target.name)
        client = engine(target, executor)
        filters = {"label": [f"{LABEL_SERVICE}={service}"] + ([f"{LABEL_STACK}={stack}"] if stack else [])}
        serving = [c for c in client.containers.list(all=True, filters=filters)
                   if not c.name.endswith((rollout.PREVIOUS, rollout.NEXT))]
        stacks = sorted({(c.labels or {}).get(LABEL_STACK, "") for c in serving})
        if not serving:
            result.skipped = f"no service {service_ref!r} on this host"
            return result
        if len(stacks) > 1:
            result.steps.append(StepResult("rollback", "failed", f"service {service!r} exists in stacks "
                                           f"{', '.join(stacks)}: name one as STACK/SERVICE"))
            return result
        outcomes: dict[str, list[str]] = {}
        with HostLock(executor, f"rollback {service}", stack=stacks[0], result=result) as lock:
            try:
                for container in sorted(serving, key=lambda c: c.name):
                    INTERRUPT.check(f"rollback {container.name}")
                    order = "stop-first" if _publishes_host_ports(container) else "start-first"
                    started = time.monotonic()
                    try:
                        outcome = rollout.rollback(client, container, container.name, health_timeout, order,
                                                   stop=lambda: INTERRUPT.requested)
                    except docker.errors.APIError as exc:  # the serving container was put back first
                        result.steps.append(StepResult(f"rollback {container.name}", "failed",
                                                       f"docker: {rollout.api_message(exc)}", time.monotonic() - started))
                        outcomes.setdefault(service, []).append("failed")
                        break
                    outcomes.setdefault(service, []).append("failed" if outcome.failed else outcome.action)
                    status = "failed" if outcome.failed else "changed"
                    result.steps.append(StepResult(f"rollback {container.name}", status, outcome.message,  # type: ignore[arg-type]
                                                   time.monotonic() - started))
            finally:
                lock.note(services=outcomes)
        return result

    return work


def _publishes_host_ports(container) -> bool:
    bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    return any(b.get("HostPort") for entries in bindings.values() for b in (entries or []))
