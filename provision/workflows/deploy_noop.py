"""The redeploy where nothing changed: one round trip per host, no lock, no Docker SDK.

Before a host's deploy opens the Docker SSH transport (workflows.deploy_host, the docker SDK), one
read-only script (commands.deploy_state, parsed by facts.deploy_state) reads what the host holds of the
stack: the host lock, the stack's containers and every name a replica may use (NAME, NAME.next,
NAME.previous) with their spec-hash labels, state and health, the networks and volumes the services
use, the id each shipped image's name resolves to, the bind folders' sync digests and host folders.
`plan` compares that with what the playbook wants, step by step as workflows.deploy_host decides:
when every step would be "ok" it returns those steps (same names and messages) and the deploy of this
host ends there, without taking the host lock and without an audit line (nothing on the host changed,
nothing was written). Anything else returns None with the reason, and the host takes the full path
(the lock, the SDK, and the exact behaviour of every change, refusal and failure).

The full path is taken when: the host lock is held (the refusal comes from there); a network, volume,
container, image or bind folder is missing, foreign or different; a container is not running, its spec
hash differs, or a NAME.next is left over; a container of the stack is no longer wanted (an orphan); a
service has Compose secrets (their content is compared by the full path); an image is pulled or built on
the host (a deploy pulls again, in case the tag moved); a `service_healthy` dependency is not healthy now;
the probe's output cannot be read with certainty (e.g. a name asked for as a volume that a container or network
also has: the probe's one `docker inspect` returns the first kind it finds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provision.commands.deploy_state import deploy_state
from provision.deploy import images as image_sources
from provision.deploy import networks as stack_networks
from provision.deploy import rollout
from provision.deploy.container_spec import (LABEL_REPLICA, LABEL_SERVICE, LABEL_STACK, container_specs,
                                             spec_container_name, spec_hash)
from provision.deploy.folder_sync import folder_archive, sync_marker
from provision.errors import InputError
from provision.executor.base import Executor
from provision.facts.deploy_state import DeployState, parse_deploy_state
from provision.workflows.deploy_images import same_engine
from provision.workflows.targets import Target

if TYPE_CHECKING:
    from provision.workflows.deploy import DeployContext

PROBE_TIMEOUT = 60


@dataclass
class Wanted:
    """What the probe asks for one host (in the order the parser reads it back)."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)


@dataclass
class NoOp:
    """Every step of a host whose deploy changes nothing: (name, message) in order, and per service the
    actions ("keep") and container ids (12 chars), as workflows.deploy_host records them."""

    steps: list[tuple[str, str]] = field(default_factory=list)
    actions: dict[str, list[str]] = field(default_factory=dict)
    containers: dict[str, list[str]] = field(default_factory=dict)


class Changes(Exception):
    """Something must change (or cannot be decided here): the full path decides. The message says what."""


def wanted(context: DeployContext, services: list[str]) -> Wanted:
    p = context.playbook
    want = Wanted()
    for name in services:
        for spec in container_specs(p, name, ""):
            cname = spec_container_name(spec)
            want.containers += [cname, cname + rollout.NEXT, cname + rollout.PREVIOUS]
    want.networks = [name for name, _ in stack_networks.needed_networks(p, services)]
    for name in services:
        for mount in p.services[name].mounts(p):
            if mount.kind == "volume" and mount.source not in want.volumes:
                want.volumes.append(mount.source)
    for name in services:
        source = context.sources[name]
        if source.how == image_sources.SHIP and source.name not in want.images:
            want.images.append(source.name)
    for mount in _binds(context, services):
        if mount.local_source is None or not Path(mount.local_source).is_dir():
            want.folders.append(mount.source)
        else:
            want.markers.append(sync_marker(p.remote_dir, mount.source))
    return want


def _binds(context: DeployContext, services: list[str]):
    """The bind mounts the full path handles, once each, in its order (deploy_host.bind_folders)."""
    p, seen = context.playbook, set()
    for name in services:
        for mount in p.services[name].mounts(p):
            if mount.kind != "bind" or mount.source in seen:
                continue
            seen.add(mount.source)
            if mount.local_source is None and not mount.create_host_path:
                continue
            yield mount


def probe(context: DeployContext, target: Target, executor: Executor) -> tuple[NoOp | None, str]:
    """One round trip: (the host's no-op steps, "") when nothing must change, else (None, why not)."""
    services = context.services_by_host.get(target.name, [])
    try:
        _precheck(context, services)
    except Changes as why:
        return None, str(why)
    want = wanted(context, services)
    script = deploy_state(context.playbook.stack, want.containers, want.networks, want.volumes, want.images,
                          want.markers, want.folders)
    outcome = executor.run(script, become=True, timeout=PROBE_TIMEOUT)
    if not outcome.ok:
        return None, f"the probe failed: {outcome.error_line()}"
    state = parse_deploy_state(outcome.stdout, networks=want.networks, volumes=want.volumes, images=want.images,
                               markers=want.markers, folders=want.folders)
    try:
        return plan(context, target, services, state), ""
    except Changes as why:
        return None, str(why)


def _precheck(context: DeployContext, services: list[str]) -> None:
    """What needs the full path whatever the host holds (no round trip spent on it)."""
    for name in services:
        if context.playbook.services[name].file_secrets:
            raise Changes(f"service {name} has Compose secrets")
        if context.sources[name].how != image_sources.SHIP or not context.sources[name].local_id:
            raise Changes(f"image of service {name}: {context.sources[name].how}")


def plan(context: DeployContext, target: Target, services: list[str], state: DeployState) -> NoOp:
    """The steps of a deploy that changes nothing on this host; raises Changes when something must change.
    Pure: decides from the probe's `state` only."""
    p, noop = context.playbook, NoOp()
    if state.problem:
        raise Changes(state.problem)
    if state.lock_held:
        raise Changes("the host lock is held")
    _networks(context, services, state, noop)
    _volumes(context, services, state, noop)
    _folders(context, services, state, noop)
    image_ids = _images(context, target, services, state, noop)
    wanted_keys = set()
    for name in services:
        service = p.services[name]
        _dependencies(context, name, services, state)
        for spec in container_specs(p, name, image_ids[name]):
            wanted_keys.add((name, spec.replica))
            cname = spec_container_name(spec)
            label = f"service {name}" + (f"[{spec.replica}]" if service.replicas > 1 else "")
            for other in (cname, cname + rollout.NEXT, cname + rollout.PREVIOUS):
                found = state.containers.get(other)
                if found is not None and rollout.foreign(found, p.stack, name):
                    raise Changes(f"{other} is not this stack's")
            if cname + rollout.NEXT in state.containers:
                raise Changes(f"{cname}{rollout.NEXT} is left over")
            current = state.containers.get(cname)
            desired = rollout.Desired(name=cname, service=name, replica=spec.replica,
                                      spec_hash=spec_hash(spec, context.secrets), create_kwargs=lambda n: {})
            action, reason = rollout.decide(current, desired)
            if action != "keep" or current is None:
                raise Changes(f"{label}: {action} ({reason})")
            noop.steps.append((label, reason if context.check else f"{cname} {reason}"))
            noop.actions.setdefault(name, []).append("keep")
            if not context.check:  # as the full path: ids of what the run kept, none in a plan
                noop.containers.setdefault(name, []).append(current.id[:12])
    for container in state.with_label(LABEL_STACK, p.stack):
        labels = container.labels or {}
        try:
            key = (labels.get(LABEL_SERVICE), int(labels.get(LABEL_REPLICA, "0") or 0))
        except ValueError:
            raise Changes(f"container {container.name}: replica label {labels.get(LABEL_REPLICA)!r}") from None
        if key not in wanted_keys:
            raise Changes(f"container {container.name} is no longer wanted")
    return noop


def _networks(context: DeployContext, services: list[str], state: DeployState, noop: NoOp) -> None:
    for name, spec in stack_networks.needed_networks(context.playbook, services):
        if name not in state.networks:
            raise Changes(f"network {name} is missing")
        if spec is not None and getattr(spec, "external", False):
            noop.steps.append((f"network {name}", "exists (external)"))
        elif stack_networks.is_ours({"Labels": state.networks[name]}):
            noop.steps.append((f"network {name}", "exists"))
        else:
            raise Changes(f"network {name} is not provision's")


def _volumes(context: DeployContext, services: list[str], state: DeployState, noop: NoOp) -> None:
    p = context.playbook
    specs = {p.volume_name(k): v for k, v in (p.volumes or {}).items()}
    for name in wanted(context, services).volumes:
        if name not in state.volumes:
            raise Changes(f"volume {name} is missing")
        if getattr(specs.get(name), "external", False):
            noop.steps.append((f"volume {name}", "exists (external)"))
        elif stack_networks.is_ours({"Labels": state.volumes[name]}):
            noop.steps.append((f"volume {name}", "exists (kept)"))
        else:
            raise Changes(f"volume {name} is not provision's")


def _folders(context: DeployContext, services: list[str], state: DeployState, noop: NoOp) -> None:
    p = context.playbook
    for mount in _binds(context, services):
        label = f"folder {mount.source}"
        if mount.local_source is None:  # an absolute bind Compose creates when missing: no step when it exists
            if not state.folders.get(mount.source):
                raise Changes(f"{label} is missing")
            continue
        local = Path(mount.local_source)
        if not local.is_dir():
            if not state.folders.get(mount.source):
                raise Changes(f"{label} is missing")
            noop.steps.append((label, "exists (no local folder to sync)"))
            continue
        try:
            _, digest = folder_archive(local)
        except InputError as exc:
            raise Changes(str(exc)) from None
        if state.markers.get(sync_marker(p.remote_dir, mount.source)) != digest:
            raise Changes(f"{label}: content changed")
        noop.steps.append((label, f"in sync with {local}"))


def _images(context: DeployContext, target: Target, services: list[str], state: DeployState,
            noop: NoOp) -> dict[str, str]:
    ids: dict[str, str] = {}
    done: set[str] = set()
    for name in services:
        source = context.sources[name]
        ids[name] = source.local_id or ""
        if source.name in done:
            continue
        done.add(source.name)
        label = f"image {source.name}"
        if same_engine(target):
            noop.steps.append((label, "present (this machine's engine)"))
        elif state.images.get(source.name) == source.local_id:
            noop.steps.append((label, "present on the host" if context.check else "present on the host (nothing sent)"))
        else:
            raise Changes(f"{label}: not on the host as {source.local_id}")
    return ids


def _dependencies(context: DeployContext, name: str, services: list[str], state: DeployState) -> None:
    """Compose's depends_on as the full path waits for it: here only what is true already passes."""
    if context.check:
        return
    p = context.playbook
    for dependency, spec in p.services[name].dependencies.items():
        if spec.condition == "service_started" or dependency not in services:
            continue
        for dep_spec in container_specs(p, dependency, ""):
            found = state.containers.get(spec_container_name(dep_spec))
            if spec.condition != "service_healthy" or found is None or found.health != "healthy":
                raise Changes(f"service {name}: depends_on {dependency} ({spec.condition}) is not met now")
