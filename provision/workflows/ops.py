"""Day-2 commands per host (status, logs, exec, down, prune, df): the docker SDK over the host's
SSH connection, one HostResult each, the data in HostResult.extra. Run with workflows.fanout.fan_out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from provision.errors import HostError, InputError
from provision.executor.base import Executor
from provision.report import HostResult, StepResult
from provision.workflows.targets import Target

HostWork = Callable[[Target, Executor], HostResult]
LineSink = Callable[[str, str, str], None]  # (host, container, line)


def _with_docker(name: str, target: Target, executor: Executor, fn) -> HostResult:
    """Open the client, run fn(client) -> HostResult, turn docker errors into a failed step."""
    import docker.errors
    import requests.exceptions

    start = time.monotonic()
    from provision.deploy.remote_docker import client_for

    client = client_for(executor, target.settings)  # HostUnreachable here, before any docker call
    try:
        return fn(client)
    except InputError as exc:  # e.g. an ambiguous service name on this host
        return HostResult(target.name, steps=[StepResult(name, "failed", exc.message, time.monotonic() - start)])
    except docker.errors.DockerException as exc:
        raise HostError(f"docker: {_short(exc)}") from None
    except requests.exceptions.ConnectionError as exc:  # `docker system dial-stdio` found no engine
        from provision.workflows.engine import engine_problem

        raise HostError(engine_problem(target.name, executor, exc)) from None
    finally:
        try:
            client.close()
        except Exception:
            pass


def _short(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0][:300] if text else type(exc).__name__


def status_work(stack: str | None = None) -> HostWork:
    from provision.deploy import ops

    def work(target: Target, executor: Executor) -> HostResult:
        def run(client) -> HostResult:
            start = time.monotonic()
            rows = ops.status_rows(client, stack)
            serving = [r for r in rows if r["role"] == "serving"]
            running = sum(1 for r in serving if r["state"] == "running")
            message = f"{running}/{len(serving)} container(s) running" if serving else "no provision containers"
            unhealthy = [r["container"] for r in serving if r["health"] == "unhealthy"]
            if unhealthy:
                message += f"; unhealthy: {', '.join(unhealthy)}"
            return HostResult(target.name, steps=[StepResult("status", "ok", message, time.monotonic() - start)],
                              extra={"services": rows})
        return _with_docker("status", target, executor, run)

    return work


def logs_work(service: str, *, tail: int | None, follow: bool = False, sink: LineSink | None = None,
              stop: threading.Event | None = None, replica: int | None = None) -> HostWork:
    """Without follow: the lines land in extra["logs"]. With follow: each line goes to sink() as it
    arrives, until stop is set (extra["lines"] counts them)."""
    from provision.deploy import ops

    def work(target: Target, executor: Executor) -> HostResult:
        def run(client) -> HostResult:
            start = time.monotonic()
            containers = ops.service_containers(client, service, replica)
            if not containers:
                return HostResult(target.name, skipped=f"no container of {service} on this host")
            names = [c.name for c in containers]
            if not follow:
                lines = [{"container": name, "line": line} for name, line in ops.logs(client, containers, False, tail)]
                return HostResult(target.name, steps=[StepResult("logs", "ok", f"{len(lines)} line(s) from "
                                                                 f"{', '.join(names)}", time.monotonic() - start)],
                                  extra={"containers": names, "logs": lines})
            count = 0
            for name, line in ops.logs(client, containers, True, tail, stop=stop):
                count += 1
                if sink:
                    sink(target.name, name, line)
            return HostResult(target.name, steps=[StepResult("logs", "ok", f"{count} line(s) followed from "
                                                             f"{', '.join(names)}", time.monotonic() - start)],
                              extra={"containers": names, "lines": count})
        return _with_docker("logs", target, executor, run)

    return work


def exec_work(service: str, argv: list[str], replica: int | None = None) -> HostWork:
    """argv in the service's first serving container (or the given replica); non-zero exit → failed."""
    from provision.deploy import ops

    def work(target: Target, executor: Executor) -> HostResult:
        def run(client) -> HostResult:
            start = time.monotonic()
            containers = ops.service_containers(client, service, replica)
            if not containers:
                which = f"replica {replica} of {service}" if replica is not None else service
                return HostResult(target.name, skipped=f"no container of {which} on this host")
            container = containers[0]
            if container.status != "running":
                return HostResult(target.name, steps=[StepResult("exec", "failed", f"{container.name} is {container.status}")],
                                  extra={"container": container.name})
            code, output = ops.exec_in(client, container, argv)
            status = "changed" if code == 0 else "failed"
            return HostResult(target.name, steps=[StepResult("exec", status, f"{container.name}: exit {code}",
                                                             time.monotonic() - start)],
                              extra={"container": container.name, "exit_code": code, "output": output})
        return _with_docker("exec", target, executor, run)

    return work


def down_work(stack: str | None, volumes: bool, check: bool = False) -> HostWork:
    from provision.deploy import ops

    def work(target: Target, executor: Executor) -> HostResult:
        def run(client) -> HostResult:
            start = time.monotonic()
            try:
                removed = ops.down(client, stack, volumes, dry_run=check)
            except ops.OpsError as exc:
                return HostResult(target.name, steps=[StepResult("down", "failed", exc.message, time.monotonic() - start)],
                                  extra={"removed": exc.done})
            what = f"stack {stack}" if stack else "every provision stack"
            if check:
                message = f"would remove {len(removed)} object(s) of {what}" if removed else f"nothing of {what} here"
                step = StepResult("down", "changed" if removed else "ok", message, time.monotonic() - start)
                return HostResult(target.name, steps=[step], extra={"removed": [], "would_remove": removed})
            message = f"removed {len(removed)} object(s) of {what}" if removed else f"nothing of {what} here"
            return HostResult(target.name, steps=[StepResult("down", "changed" if removed else "ok", message,
                                                             time.monotonic() - start)],
                              extra={"removed": removed})
        if check:
            return _with_docker("down", target, executor, run)
        return _locked(executor, target, f"down{' --volumes' if volumes else ''}", stack,
                       lambda: _with_docker("down", target, executor, run))

    return work


def prune_work(all_: bool) -> HostWork:
    from provision.deploy import ops

    def work(target: Target, executor: Executor) -> HostResult:
        def run(client) -> HostResult:
            start = time.monotonic()
            result = ops.prune(client, all_)
            total = result["reclaimed"]["total"]
            count = sum(len(v) for v in result["deleted"].values())
            step = StepResult("prune", "changed" if count or total else "ok",
                              f"reclaimed {ops.human_size(total)} ({count} object(s))", time.monotonic() - start)
            return HostResult(target.name, steps=[step], extra=result)
        return _locked(executor, target, f"prune{' --all' if all_ else ''}", None,
                       lambda: _with_docker("prune", target, executor, run))

    return work


def _locked(executor: Executor, target: Target, action: str, stack: str | None, fn) -> HostResult:
    """Run fn() under the host's deploy lock (a running deploy refuses it), with an audit-log line."""
    from provision.workflows.host_lock import HostLock

    record = HostResult(target.name)
    with HostLock(executor, action, stack=stack or "*", result=record):
        result = fn()
        record.steps = list(result.steps)
    return result


def df_work(target: Target, executor: Executor) -> HostResult:
    from provision.deploy import ops

    def run(client) -> HostResult:
        start = time.monotonic()
        usage = ops.df(client)
        reclaimable = sum(kind["reclaimable"] for kind in usage.values())
        size = sum(kind["size"] for kind in usage.values())
        return HostResult(target.name, steps=[StepResult("df", "ok", f"{ops.human_size(size)} used, "
                                                         f"{ops.human_size(reclaimable)} reclaimable",
                                                         time.monotonic() - start)],
                          extra={"df": usage})
    return _with_docker("df", target, executor, run)


# -- unlock ------------------------------------------------------------------------------------------
def lock_holder_work(target: Target, executor: Executor) -> HostResult:
    """Read-only: who holds the host lock (extra["lock"]: {"held", "holder", "text"})."""
    from provision.workflows.host_lock import read_holder

    start = time.monotonic()
    held = read_holder(executor)
    return HostResult(target.name, steps=[StepResult("lock", "ok", held.describe(), time.monotonic() - start)],
                      extra={"lock": {"held": held.held, "holder": held.holder, "text": held.text}})


def unlock_work(seen: dict[str, dict]):
    """Break each host's lock if it still holds exactly what `lock_holder_work` saw (and was shown)."""
    from provision.workflows.host_lock import Held, break_lock

    def work(target: Target, executor: Executor) -> HostResult:
        found = seen.get(target.name) or {"held": False}
        step = break_lock(executor, Held(found["held"], found.get("text", ""), found.get("holder")))
        return HostResult(target.name, steps=[step])

    return work
