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
from provision.deploy.lost_connection import is_lost_connection, lost_connection_message
from provision.deploy.pull_progress import PullProgress
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
    relay: Any = None  # deploy.relay.Relay: hosts get shipped images from each other (None: each from here)


@dataclass
class ImageOutcome:
    """One image on one host. `action` is what --check plans when the status is "changed"."""

    label: str
    status: str  # ok | changed | failed
    message: str
    image_id: str | None = None
    action: str = "keep"
    shipped_bytes: int | None = None  # bytes sent from this machine (0 when relayed from another host)
    seconds: float = 0.0
    relayed_from: str | None = None  # the host it came from, host to host


def same_engine(target: Target) -> bool:
    """connection=local: the host's engine is this machine's, which has every local image already."""
    return target.settings.connection == "local"


def fetch_image(job: ImageJob, service_name: str, source: image_sources.ImageSource, target: Target,
                executor: Executor, client) -> ImageOutcome:
    """Ship, pull or build one service's image on one host (or say what would happen, under --check)."""
    started = time.monotonic()
    label = f"image {source.name}"
    progress_events.step(label)
    try:
        current = image_sources.local_image_id(client, source.name)
        if source.how == image_sources.SHIP:
            outcome = _ship(job, source, target, executor, client, label, current)
        elif source.how == image_sources.PULL:
            outcome = _pull(job, source, client, label, current)
        else:
            outcome = _build(job, service_name, client, label, current)
    except Exception as exc:  # the host's Docker API connection broke mid-step: this step fails, redacted
        if not is_lost_connection(exc):
            raise
        outcome = ImageOutcome(label, "failed", lost_connection_message(target.name, exc))
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
    staged = job.staged[source.name]
    if job.relay is not None and target.name in job.relay.seeds:
        return _ship_via_relay(job, job.relay, staged, target, executor, client, label)
    return _ship_from_here(job, staged, target, executor, client, label)


def _ship_from_here(job: ImageJob, staged, target: Target, executor: Executor, client, label: str,
                    note: str = "") -> ImageOutcome:
    from provision.deploy import shipping

    shipped = shipping.ship(executor.ssh_transport(), client, staged, job.registry_port, progress=_progress())
    if shipped.skipped:
        return ImageOutcome(label, "ok", "present on the host (nothing sent)", shipped.image_id)
    return ImageOutcome(label, "changed", f"{note}shipped: {shipping.human_bytes(shipped.bytes_sent)} sent "
                        "(only the layers the host lacked)", shipped.image_id, action="ship",
                        shipped_bytes=shipped.bytes_sent)


def _ship_via_relay(job: ImageJob, relay, staged, target: Target, executor: Executor, client,
                    label: str) -> ImageOutcome:
    """The first host gets the image from this machine, the others from a host that has it
    (deploy.relay); a failed relay falls back to this machine, saying why."""
    from provision.deploy import relay as relays
    from provision.deploy import shipping
    from provision.errors import ProvisionError

    if shipping.present(client, staged):
        relay.offer(staged.image_id, target.name)
        return ImageOutcome(label, "ok", "present on the host (nothing sent)", staged.image_id)
    lacking = shipping.missing_share(client, staged)
    if lacking < relays.MIN_MISSING_SHARE:  # a seed would send the whole image, this machine only what is missing
        outcome = _ship_from_here(job, staged, target, executor, client, label,
                                  f"{lacking:.0%} of the image missing here, so from this machine: ")
        if outcome.status != "failed":
            relay.offer(staged.image_id, target.name)
        return outcome
    claim = relay.claim(staged.image_id, target.name, receive=relays.enabled(target.name, target.hostvars))
    ok = False
    try:
        note = ""
        if claim.kind == relays.SEED:
            seed = claim.seed
            progress_events.update(detail=f"getting {staged.name} from {seed.name} (host to host)")
            try:
                sent = relay_image(relay, seed, staged, executor, client, log=job.log)
                ok = True
                return ImageOutcome(label, "changed", f"relayed from {seed.name} over the hosts' network "
                                    f"({shipping.human_bytes(sent)}; nothing sent from this machine)",
                                    staged.image_id, action="ship", shipped_bytes=0, relayed_from=seed.name)
            except ProvisionError as exc:
                relay.abandon_seed(claim)
                note = f"host-to-host from {seed.name} failed ({exc}); "
                progress_events.update(detail=f"{note}shipping {staged.name} from this machine")
        outcome = _ship_from_here(job, staged, target, executor, client, label, note)
        ok = outcome.status != "failed"
        return outcome
    finally:
        relay.done(claim, ok)


def relay_image(relay, seed, staged, executor: Executor, client,
                log: Callable[[str], None] = lambda line: None) -> int:
    """Get `staged` onto this host (`executor`, `client`) from `seed` over the hosts' network; returns the
    size of the image the seed sent. The seed's temporary key line and this host's key folder are
    removed on every way out (also by a second Ctrl-C: INTERRUPT.hold); the line expires by itself
    should provision be killed. Raises ProvisionError when the relay fails."""
    import secrets

    from provision.commands import relay as relay_cmd
    from provision.deploy import relay as relays
    from provision.deploy import shipping
    from provision.errors import ProvisionError
    from provision.interrupts import INTERRUPT

    marker = relay_cmd.MARKER_PREFIX + secrets.token_hex(8)
    private, public = relays.new_keypair()
    until = relays.expiry(time.time())
    line = relay_cmd.authorized_line(public, marker, staged.image_id, until)
    folder = relay_cmd.folder(marker)
    seed_executor = relay.connect(seed.name)
    try:
        try:
            key = seed_executor.ssh_transport().get_remote_server_key()  # as checked against known_hosts
        except ProvisionError as exc:
            raise ProvisionError(f"cannot reach {seed.name} from this machine: {exc}") from None
        host_key = f"{key.get_name()} {key.get_base64()}"
        with relay.seed_lock(seed.name):
            _must(seed_executor.run(relay_cmd.authorize(line), timeout=30), f"adding a temporary key on {seed.name}")

        def revoke() -> None:
            with relay.seed_lock(seed.name):
                out = None
                with contextlib.suppress(ProvisionError):
                    out = seed_executor.run(relay_cmd.revoke(marker), timeout=30)
            if out is None or not out.ok:
                log(f"{seed.name}: could not remove the temporary relay key {marker} from authorized_keys "
                    f"({out.error_line() if out else 'connection lost'}); it expires by itself at {until}")

        held = INTERRUPT.hold(f"relay key on {seed.name}", revoke)
        try:
            _must(executor.run(relay_cmd.make_folder(marker), timeout=30), "making the relay's key folder")
            try:
                try:
                    executor.put(private.reveal().encode(), f"{folder}/key", mode=0o600)
                    executor.put(relay_cmd.known_hosts_line(seed.address, seed.port, host_key).encode(),
                                 f"{folder}/known_hosts", mode=0o600)
                except OSError as exc:
                    raise ProvisionError(f"writing the relay key to {folder} failed: {exc}") from None
                out = executor.run(relay_cmd.receive(marker, seed.user, seed.address, seed.port,
                                                     relays.RELAY_TIMEOUT_S), timeout=relays.RELAY_TIMEOUT_S + 30)
            finally:
                with contextlib.suppress(ProvisionError):
                    executor.run(relay_cmd.remove_folder(marker), timeout=30)
        finally:
            revoke()
            INTERRUPT.drop(held)
    finally:
        seed_executor.close()
    if not out.ok:
        raise ProvisionError(f"ssh {seed.address}:{seed.port} | docker load: {out.error_line()}")
    if not shipping.present(client, staged):
        raise ProvisionError(f"{seed.name} sent an image, but not {shipping.short_id(staged.image_id)}")
    return int(getattr(staged, "size", 0) or 0)


def _must(out, what: str) -> None:
    from provision.errors import ProvisionError

    if not out.ok:
        raise ProvisionError(f"{what} failed: {out.error_line()}")


def make_relay(targets: list[Target], options, log: Callable[[str], None] = lambda line: None, *,
               executors=None) -> Any:
    """The deploy's relay (deploy.relay.Relay) over `targets`: the hosts with ship_between_hosts on (the
    default). With `executors` (workflows.fanout.SharedExecutors, the deploy's), a seed's commands run on
    the seed's own executor, one SSH connection per host; without, on a new connection per relay."""
    if len(targets) < 2:  # no host to relay to: deploy.relay is not even imported
        return None
    from provision.deploy import relay as relays
    from provision.interrupts import INTERRUPT
    from provision.workflows.fanout import make_executor

    by_name = {t.name: t for t in targets}
    seeds, why_not = {}, {}
    for t in targets:
        if relays.enabled(t.name, t.hostvars) and not same_engine(t):
            seeds[t.name], why_not[t.name] = relays.seed_endpoint(t.name, t.hostvars, t.settings)
    if len(seeds) < 2:
        return None
    for name, why in why_not.items():
        if why:
            log(f"{name}: cannot serve images to other hosts: {why}")
    interrupted = lambda: INTERRUPT.check("waiting for another host to get the image")  # noqa: E731
    if executors is not None:
        return relays.Relay(seeds, executors.lease, pin=executors.pin, interrupted=interrupted)
    return relays.Relay(seeds, lambda name: make_executor(by_name[name], options), interrupted=interrupted)


def _pull(job: ImageJob, source, client, label: str, current: str | None) -> ImageOutcome:
    if job.check:
        if current:
            return ImageOutcome(label, "ok", "on the host (a deploy pulls again, in case the tag moved)", current)
        return ImageOutcome(label, "changed", f"pull ({source.note})", current, action="pull")
    import docker.errors

    repository, tag = image_sources.split_reference(source.name)
    auth = image_sources.pull_auth(job.playbook, source.name, job.environ)
    try:
        image, downloaded = _streamed_pull(client, repository, tag, auth)
    except docker.errors.APIError as exc:
        message = str(getattr(exc, "explanation", None) or exc)
        if current:
            return ImageOutcome(label, "ok", f"pull failed ({message[:200]}); using the image already on the host",
                                current)
        return ImageOutcome(label, "failed", f"pull failed: {message[:300]}")
    unchanged = image.id == current
    said = "pulled" + (" (unchanged)" if unchanged else "")
    if downloaded:  # the evidence the pull did something: what the engine downloaded (compressed layers)
        from provision.deploy.shipping import human_bytes

        said += f": {human_bytes(downloaded)} downloaded"
    return ImageOutcome(label, "ok" if unchanged else "changed", said, image.id, action="pull")


def _streamed_pull(client, repository: str, tag: str | None, auth: dict | None):
    """`client.images.pull` as the SDK does it (the streamed pull, then the image by its reference: the same
    errors, the same result), with the layers' bytes reported to the live view on the way. Returns the
    image and the bytes the engine downloaded."""
    tag = tag or "latest"
    handle = progress_events.current()
    counted = PullProgress()
    for event in client.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        if isinstance(event, dict):
            before = counted.done
            counted.feed(event)
            if counted.done != before:
                handle.update(counted.done, counted.total, "B", "pulling")
    return client.images.get(f"{repository}{'@' if tag.startswith('sha256:') else ':'}{tag}"), counted.done


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


def _progress() -> Callable[[int, int | None], None]:
    """Bytes sent so far → a progress event of this host (the live display shows bytes, rate and ETA).
    The total is what the host's engine says it downloads (the compressed layers it lacks, as far as it
    has started them), not the image's size. The handle is taken here, in the host's thread: the callback
    may run in another."""
    handle = progress_events.current()

    def report(sent: int, total: int | None = None) -> None:
        handle.update(done=sent, total=total, unit="B", detail="shipping")

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
