"""Health-gated replacement of one container, with rollback; and the decision whether to replace.

Names: the serving container is `NAME`; the version it replaced is kept stopped as `NAME.previous`
(for `provision rollback`); a container being rolled out is `NAME.next` until it is healthy.

start-first: create and start NAME.next, wait until healthy (or steadily running when the image
has no healthcheck), then stop NAME and rename. The old container serves throughout.
stop-first (services publishing a fixed host port, which two containers cannot share): stop NAME,
start NAME.next, wait; on failure NAME is started again, so it serves again within seconds.
Either way a failed new container is removed, the old one is left serving, and the step fails
with the new container's last log lines ("rolled back").

An unexpected error midway (the engine's API refusing, the SSH channel dropping, an interrupt)
is not swallowed: the old container is first put back as it was (under NAME, started again if it
was running), NAME.next is removed, best effort, and then the error is re-raised. The same holds
for `rollback`. A stop requested by the operator (`stop()` true during a health wait) rolls back.

Containers are matched by name, but a container under one of these names that provision did not
create for this stack and service (no `io.provision.stack`/`io.provision.service` labels, e.g. a
Docker Compose project's `demo-app-1` or a plain `docker run --name`) is refused: it is never
renamed, stopped or removed (`foreign_names`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from provision import progress

PREVIOUS, NEXT = ".previous", ".next"
LOG_LINES = 15


@dataclass
class Desired:
    """One container the playbook wants on this host."""

    name: str
    service: str
    replica: int
    spec_hash: str
    create_kwargs: Callable[[str], dict]  # container name → api.create_container kwargs
    extra_networks: list[tuple[str, list[str]]] = field(default_factory=list)  # (network, aliases)
    order: str = "start-first"
    health_timeout: float = 60.0
    stack: str = ""
    stop: Callable[[], bool] = lambda: False  # True once the operator asked to stop (Ctrl-C)
    completes: bool = False  # a one-shot (a service_completed_successfully dependency): exit 0 is ready


@dataclass
class Outcome:
    action: str  # keep | create | replace | start | rolled back
    message: str
    container_id: str | None = None
    failed: bool = False

    @property
    def changed(self) -> bool:
        return self.action in ("create", "replace", "start", "rollback")


class RolloutFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def decide(current, desired: Desired) -> tuple[str, str]:
    """(action, reason) for one container: keep, start, create or replace. `current` may be None."""
    if current is None:
        return "create", "not running on this host yet"
    labels = current.labels or {}
    if labels.get("io.provision.spec-hash") != desired.spec_hash:
        return "replace", "spec changed"
    if current.status != "running":
        return "start", f"unchanged but {current.status}"
    return "keep", "unchanged and running"


LABEL_STACK, LABEL_SERVICE = "io.provision.stack", "io.provision.service"


def is_ours(container, stack: str, service: str | None = None) -> bool:
    """True when the container carries provision's labels for this stack (and service, if given)."""
    labels = container.labels or {}
    if labels.get(LABEL_STACK) != stack:
        return False
    return service is None or labels.get(LABEL_SERVICE) == service


def foreign(container, stack: str, service: str | None = None) -> str:
    """Why a same-named container is not provision's for this stack/service ('' when it is)."""
    if is_ours(container, stack, service):
        return ""
    labels = container.labels or {}
    project = labels.get("com.docker.compose.project")
    if project:
        owner = f"Docker Compose project {project!r}"
    elif labels.get(LABEL_STACK):
        owner = f"provision stack {labels[LABEL_STACK]!r}, service {labels.get(LABEL_SERVICE)!r}"
    else:
        owner = "no provision labels"
    return (f"a container named {container.name} exists that provision did not create for stack {stack!r}"
            f"{f', service {service!r}' if service else ''} ({owner}): refusing to rename, stop or remove it; "
            "rename or remove it yourself, or give the stack another name")


def foreign_names(client, desired: Desired) -> str:
    """The refusal for the first of NAME, NAME.next, NAME.previous held by a foreign container, or ''."""
    for name in (desired.name, desired.name + NEXT, desired.name + PREVIOUS):
        found = _get(client, name)
        if found is not None:
            problem = foreign(found, desired.stack, desired.service)
            if problem:
                return problem
    return ""


def apply(client, current, desired: Desired) -> Outcome:
    problem = foreign_names(client, desired)
    if problem:
        return Outcome("refused", problem, None, failed=True)
    action, reason = decide(current, desired)
    if action in ("keep", "start") and _get(client, desired.name + NEXT) is not None:
        _remove_if_exists(client, desired.name + NEXT)  # left by a killed run (checked ours above)
        reason += f"; removed {desired.name + NEXT} left by an interrupted run"
    if action == "keep":
        return Outcome("keep", reason, current.id)
    if action == "start":
        current.start()
        wait_ready(client, current.id, desired.health_timeout, stop=desired.stop, exited_ok=desired.completes)
        return Outcome("start", reason, current.id)
    return roll_out(client, current, desired, action, reason)


def roll_out(client, current, desired: Desired, action: str = "replace", reason: str = "") -> Outcome:
    """Create desired as NAME.next, gate on health, then swap names; roll back on failure."""
    import docker.errors

    _remove_if_exists(client, desired.name + NEXT)
    where = "the old container keeps serving" if current is not None else "nothing was running before"
    was_running = current is not None and current.status == "running"
    try:
        new = _create(client, desired, desired.name + NEXT)
    except docker.errors.APIError as exc:
        _remove_if_exists(client, desired.name + NEXT)
        return Outcome("rolled back", f"cannot create the new container: {api_message(exc)}; {where}",
                       current.id if current is not None else None, failed=True)
    except BaseException:
        _quietly(lambda: _remove_if_exists(client, desired.name + NEXT))
        _restore(client, current, None, desired.name, was_running)
        raise
    stop_first = current is not None and desired.order == "stop-first"
    try:
        if stop_first:
            current.stop()
        try:
            try:
                new.start()
            except docker.errors.APIError as exc:
                raise RolloutFailed(f"cannot start: {api_message(exc)}") from None
            wait_ready(client, new.id, desired.health_timeout, stop=desired.stop, exited_ok=desired.completes)
        except RolloutFailed as exc:
            logs = last_logs(new)
            new.remove(force=True)
            if stop_first:
                current.start()
            return Outcome("rolled back", f"new container failed: {exc.message}; {where}{logs}",
                           current.id if current is not None else None, failed=True)
        if current is not None:
            if not stop_first:
                current.stop()
            _remove_if_exists(client, desired.name + PREVIOUS)
            current.rename(desired.name + PREVIOUS)
        new.rename(desired.name)
    except BaseException:  # an unexpected error (API, SSH, interrupt): the old one back first, then re-raise
        _restore(client, current, new, desired.name, was_running)
        raise
    return Outcome(action, reason, new.id)


def _restore(client, current, new, name: str, was_running: bool) -> None:
    """Best effort, each action on its own: remove the new container (NAME.next), put the old one back
    under NAME and start it again if it was running."""
    if new is not None:
        _quietly(lambda: new.remove(force=True))
    if current is None:
        return
    if _quietly(current.reload) and current.name.lstrip("/") != name:
        _quietly(lambda: current.rename(name))
    if was_running and _quietly(current.reload) and current.status != "running":
        _quietly(current.start)


def abandon(client, current, name: str, was_running: bool) -> None:
    """For an exit at once (a second Ctrl-C) while a rollout of NAME may be in flight in another
    thread: remove NAME.next and put the old container back under NAME, running if it was. Best effort."""
    _quietly(lambda: _remove_if_exists(client, name + NEXT))
    _restore(client, current, None, name, was_running)


def _quietly(action) -> bool:
    try:
        action()
    except Exception:  # best effort while another error is on its way up
        return False
    return True


def rollback(client, current, desired_name: str, health_timeout: float, order: str, *,
             stop: Callable[[], bool] = lambda: False) -> Outcome:
    """Swap NAME and NAME.previous (health-gated the same way); a second rollback swaps back."""
    previous = _get(client, desired_name + PREVIOUS)
    if previous is None:
        return Outcome("rolled back", f"no previous version of {desired_name} on this host", failed=True)
    labels = (current.labels or {}) if current is not None else (previous.labels or {})
    problem = foreign(previous, labels.get(LABEL_STACK, ""), labels.get(LABEL_SERVICE))
    if problem:
        return Outcome("refused", problem, None, failed=True)
    stop_first = current is not None and order == "stop-first"
    was_running = current is not None and current.status == "running"
    try:
        if stop_first:
            current.stop()
        try:
            previous.start()
            wait_ready(client, previous.id, health_timeout, stop=stop)
        except RolloutFailed as exc:
            logs = last_logs(previous)
            previous.stop()
            if stop_first:
                current.start()
            return Outcome("rolled back", f"previous version failed to start: {exc.message}{logs}",
                           current.id if current else None, failed=True)
        if current is not None:
            if not stop_first:
                current.stop()
            current.rename(desired_name + NEXT)
        previous.rename(desired_name)
        if current is not None:
            current.rename(desired_name + PREVIOUS)
    except BaseException:  # unexpected: NAME.previous back as it was, the old one under NAME, then re-raise
        _quietly(previous.stop)
        if _quietly(previous.reload) and previous.name.lstrip("/") != desired_name + PREVIOUS:
            _quietly(lambda: previous.rename(desired_name + PREVIOUS))
        if current is not None:
            _restore(client, current, None, desired_name, was_running)
        raise
    return Outcome("rollback", f"now running the previous version ({previous.labels.get('io.provision.image', '')})",
                   previous.id)


def remove(client, container) -> None:
    """Stop and remove a container and its retained previous version."""
    container.remove(force=True)
    _remove_if_exists(client, container.name + PREVIOUS)


def most_checks(timeout: float, poll: float) -> int:
    """How many times a wait of `timeout` seconds, checking every `poll` seconds, checks at most (the first
    check at once, the last at the deadline): the m of the live view's "check n of m"."""
    return int(timeout / poll + 1e-9) + 1 if poll > 0 else 1


def wait_ready(client, container_id: str, timeout: float, *, settle: float = 2.0, poll: float = 0.5,
               stop: Callable[[], bool] = lambda: False, exited_ok: bool = False) -> None:
    """Healthy (with a healthcheck) or running steadily for `settle` seconds (without one); with
    `exited_ok` (a one-shot) exiting 0 is ready too.
    Raises RolloutFailed when `stop()` turns true (the operator interrupted)."""
    started = time.monotonic()
    deadline = started + timeout
    running_since = None
    checks = 0
    while True:
        if stop():
            raise RolloutFailed("interrupted by the operator before it was ready")
        state = client.api.inspect_container(container_id)["State"]
        health = (state.get("Health") or {}).get("Status")
        checks += 1
        attempt = f"check {checks} of {max(checks, most_checks(timeout, poll))}"
        progress.update(time.monotonic() - started, timeout, "s",
                        f"{attempt}: health {health}" if health else f"{attempt}: {state.get('Status')}")
        if exited_ok and state.get("Status") == "exited" and state.get("ExitCode") == 0:
            return
        if state.get("Status") in ("exited", "dead"):
            raise RolloutFailed(f"exited with code {state.get('ExitCode')}")
        if state.get("Restarting") or state.get("Status") == "restarting":
            raise RolloutFailed(f"keeps restarting (last exit code {state.get('ExitCode')})")
        if health == "healthy":
            return
        if health == "unhealthy":
            raise RolloutFailed("healthcheck reports unhealthy")
        if health is None and state.get("Status") == "running" and not state.get("Restarting"):
            running_since = running_since or time.monotonic()
            if time.monotonic() - running_since >= settle:
                return
        else:
            running_since = None if health is None else running_since
        if time.monotonic() >= deadline:
            what = f"health is {health!r}" if health else f"state is {state.get('Status')!r}"
            raise RolloutFailed(f"not ready after {timeout:g}s ({what})")
        time.sleep(poll)


def wait_healthy(client, name: str, timeout: float, *, poll: float = 0.5,
                 stop: Callable[[], bool] = lambda: False) -> None:
    """Compose's ``service_healthy``: the container reports healthy (it must have a healthcheck)."""

    def ready(state: dict) -> str | None:
        health = (state.get("Health") or {}).get("Status")
        if health is None:
            raise RolloutFailed("it has no healthcheck")
        if health == "healthy":
            return None
        if state.get("Status") in ("exited", "dead"):
            raise RolloutFailed(f"exited with code {state.get('ExitCode')}")
        return f"not healthy after {timeout:g}s (health is {health!r})"

    _wait_for_state(client, name, timeout, poll, stop, ready)


def wait_exited_ok(client, name: str, timeout: float, *, poll: float = 0.5,
                   stop: Callable[[], bool] = lambda: False) -> None:
    """Compose's ``service_completed_successfully``: the container exited with code 0."""

    def ready(state: dict) -> str | None:
        if state.get("Status") in ("exited", "dead"):
            if state.get("ExitCode") == 0:
                return None
            raise RolloutFailed(f"exited with code {state.get('ExitCode')}")
        return f"still {state.get('Status')!r} after {timeout:g}s"

    _wait_for_state(client, name, timeout, poll, stop, ready)


def _wait_for_state(client, name: str, timeout: float, poll: float, stop: Callable[[], bool],
                    ready: Callable[[dict], str | None]) -> None:
    """Poll the container's State until `ready` returns None (done) or raises; past the timeout, fail
    with what `ready` said it still waits for."""
    started = time.monotonic()
    deadline = started + timeout
    checks = 0
    while True:
        if stop():
            raise RolloutFailed("interrupted by the operator")
        waiting = ready(client.api.inspect_container(name)["State"])
        if waiting is None:
            return
        checks += 1
        progress.update(time.monotonic() - started, timeout, "s",
                        f"waiting for {name}, check {checks} of {max(checks, most_checks(timeout, poll))}")
        if time.monotonic() >= deadline:
            raise RolloutFailed(waiting)
        time.sleep(poll)


def api_message(exc) -> str:
    """The engine's own explanation of an API error, on one line."""
    text = str(getattr(exc, "explanation", None) or exc)
    return " ".join(text.split())[:400]


def last_logs(container, lines: int = LOG_LINES) -> str:
    try:
        text = container.logs(tail=lines).decode(errors="replace").rstrip()
    except Exception:  # logs are a courtesy in an error message
        return ""
    return ("; last log lines:\n" + text) if text else ""


def _create(client, desired: Desired, name: str):
    kwargs = desired.create_kwargs(name)
    created = client.api.create_container(**kwargs)
    for network, aliases in desired.extra_networks:
        client.api.connect_container_to_network(created["Id"], network, aliases=aliases)
    return client.containers.get(created["Id"])


def _get(client, name: str):
    import docker.errors

    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def _remove_if_exists(client, name: str) -> None:
    found = _get(client, name)
    if found is not None:
        found.remove(force=True)
