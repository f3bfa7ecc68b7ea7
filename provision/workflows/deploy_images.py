"""The image step of a deploy, one code path for `provision deploy` and `provision deploy --swarm`.

On the operator's machine, once per deploy: images to ship are pushed to the local registry
(`staged_images`). Then per host: is there room under Docker's data root (`space_check`), then each
image is shipped from this machine (only the layers the host lacks), pulled, or built on the host
(`fetch_image`). A failed pull or build is a failed step with the engine's words, never an exception;
under --check nothing moves and the outcome says what would.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from provision import progress as progress_events
from provision.commands import host_health
from provision.deploy import images as image_sources
from provision.executor.base import Executor
from provision.facts import host_health as health
from provision.workflows.targets import Target


@contextlib.contextmanager
def staged_images(sources: Mapping[str, image_sources.ImageSource], check: bool):
    """The local registry, running, with every image to ship pushed to it: yields (port, {name: staged}).
    Nothing starts under --check or when no image is shipped (yields (None, {}))."""
    shipped = sorted({s.name for s in sources.values() if s.how == image_sources.SHIP})
    if check or not shipped:
        yield None, {}
        return
    from provision.deploy import shipping

    with shipping.staged_images(shipped, image_sources.local_client) as (port, staged):
        yield port, staged


@dataclass
class ImageJob:
    """What every host's image step shares (decided on the operator's machine)."""

    playbook: Any
    sources: dict[str, image_sources.ImageSource]  # service name → where its image comes from
    environ: Mapping[str, str]
    check: bool
    registry_port: int | None = None
    staged: dict[str, Any] = field(default_factory=dict)  # image name → shipping.StagedImage
    log: Callable[[str], None] = lambda line: None


@dataclass
class ImageOutcome:
    """One image on one host. `action` is what --check plans when the status is "changed"."""

    label: str
    status: str  # ok | changed | failed
    message: str
    image_id: str | None = None
    action: str = "keep"
    shipped_bytes: int | None = None
    seconds: float = 0.0


def same_engine(target: Target) -> bool:
    """connection=local: the host's engine is this machine's, which has every local image already."""
    return target.settings.connection == "local"


def fetch_image(job: ImageJob, service_name: str, source: image_sources.ImageSource, target: Target,
                executor: Executor, client) -> ImageOutcome:
    """Ship, pull or build one service's image on one host (or say what would happen, under --check)."""
    started = time.monotonic()
    label = f"image {source.name}"
    progress_events.step(label)
    current = image_sources.local_image_id(client, source.name)
    if source.how == image_sources.SHIP:
        outcome = _ship(job, source, target, executor, client, label, current)
    elif source.how == image_sources.PULL:
        outcome = _pull(job, source, client, label, current)
    else:
        outcome = _build(job, service_name, client, label, current)
    outcome.seconds = time.monotonic() - started
    return outcome


def _ship(job: ImageJob, source, target: Target, executor: Executor, client, label: str,
          current: str | None) -> ImageOutcome:
    if same_engine(target):
        return ImageOutcome(label, "ok", "present (this machine's engine)", source.local_id)
    if job.check:
        if current and current == source.local_id:
            return ImageOutcome(label, "ok", "present on the host", source.local_id)
        return ImageOutcome(label, "changed", f"ship from this machine ({source.note}; only missing layers)",
                            source.local_id or current, action="ship")
    from provision.deploy import shipping

    shipped = shipping.ship(executor.ssh_transport(), client, job.staged[source.name], job.registry_port,
                            progress=_progress())
    if shipped.skipped:
        return ImageOutcome(label, "ok", "present on the host (nothing sent)", shipped.image_id)
    return ImageOutcome(label, "changed", f"shipped: {shipping.human_bytes(shipped.bytes_sent)} sent "
                        "(only the layers the host lacked)", shipped.image_id, action="ship",
                        shipped_bytes=shipped.bytes_sent)


def _pull(job: ImageJob, source, client, label: str, current: str | None) -> ImageOutcome:
    if job.check:
        if current:
            return ImageOutcome(label, "ok", "on the host (a deploy pulls again, in case the tag moved)", current)
        return ImageOutcome(label, "changed", f"pull ({source.note})", current, action="pull")
    import docker.errors

    repository, tag = image_sources.split_reference(source.name)
    auth = image_sources.pull_auth(job.playbook, source.name, job.environ)
    try:
        image = client.images.pull(repository, tag=tag, auth_config=auth)
    except docker.errors.APIError as exc:
        message = str(getattr(exc, "explanation", None) or exc)
        if current:
            return ImageOutcome(label, "ok", f"pull failed ({message[:200]}); using the image already on the host",
                                current)
        return ImageOutcome(label, "failed", f"pull failed: {message[:300]}")
    unchanged = image.id == current
    return ImageOutcome(label, "ok" if unchanged else "changed", "pulled" + (" (unchanged)" if unchanged else ""),
                        image.id, action="pull")


def _build(job: ImageJob, service_name: str, client, label: str, current: str | None) -> ImageOutcome:
    if job.check:
        return ImageOutcome(label, "changed", "build on the host", current, action="build")
    import docker.errors

    kwargs = image_sources.build_context(job.playbook, job.playbook.services[service_name])
    try:
        image, _ = client.images.build(**kwargs)
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        return ImageOutcome(label, "failed", f"build on the host failed: {str(exc)[:300]}")
    unchanged = image.id == current
    return ImageOutcome(label, "ok" if unchanged else "changed",
                        "built on the host" + (" (unchanged)" if unchanged else ""), image.id, action="build")


def _progress() -> Callable[[int], None]:
    """Bytes sent so far → a progress event of this host (the live display shows bytes and rate; no
    total: only the layers the host lacks travel, compressed, so the image's size is no estimate).
    The handle is taken here, in the host's thread: the callback may run in another."""
    handle = progress_events.current()

    def report(sent: int) -> None:
        handle.update(done=sent, unit="B", detail="shipping")

    return report


def space_check(job: ImageJob, services: list[str], target: Target, executor: Executor,
                client) -> ImageOutcome | None:
    """Before any image is pulled, shipped or built: does the filesystem under Docker's data root have
    room for them? None when nothing will travel; a failed outcome when there is not enough room."""
    started = time.monotonic()
    fetch: dict[str, int | None] = {}
    for name in services:
        source = job.sources[name]
        if source.how == image_sources.SHIP:
            if same_engine(target):
                continue
            if image_sources.local_image_id(client, source.name) == source.local_id and source.local_id:
                continue  # present on the host: nothing travels
            staged = job.staged.get(source.name)
            fetch[source.name] = getattr(staged, "size", None)
        else:  # pulled (again, in case the tag moved) or built on the host: size unknown beforehand
            fetch.setdefault(source.name, None)
    if not fetch:
        return None
    label = "disk space"
    needed = image_sources.space_needed(list(fetch.values()),
                                        image_sources.min_free_mb(target.name, target.hostvars))
    root = client.info().get("DockerRootDir") or "/var/lib/docker"
    out = executor.run(host_health.free_space(root), timeout=60)
    free = health.parse_free_space(out.stdout) if out.ok else None
    if free is None:
        return ImageOutcome(label, "failed", f"cannot read the free space of {root}: {out.error_line()}")
    refusal = health.space_shortfall(target.name, root, free, needed)
    if refusal:
        return ImageOutcome(label, "failed", refusal, seconds=time.monotonic() - started)
    return ImageOutcome(label, "ok", f"{root}: {health.human(free.available)} free "
                        f"(about {health.human(needed)} needed)", seconds=time.monotonic() - started)
