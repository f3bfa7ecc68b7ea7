"""`provision deploy`: a playbook's stack onto the selected hosts through the docker SDK over SSH.

Before any connection: the playbook is validated (exit 4), the hosts of each service are selected,
secrets are read from the operator's environment, and locally built images are built. Then, per
host in parallel, under the host's deploy lock: networks and volumes (created once), bind folders,
images (shipped registry-less, pulled, or built on the host), then each service in dependency
order is reconciled by its labels (keep / create / replace with a health-gated rollout) and
containers of services no longer in the playbook are removed. Every run appends a line to the
host's audit log. `--check` computes the same plan and changes nothing.

Faults: after Ctrl-C/SIGTERM a host in flight stops at its next step boundary (a health wait in
progress rolls back: NAME.next removed, the old container serving) and releases its lock; hosts
not yet started are reported "not started: interrupted"; the shipping registry is stopped after the
last host (workflows.interrupt). A same-named container that is not this stack's is refused, never
touched (deploy.rollout). A bind-folder sync that fails is a failed step and stops the host before
any service; relative bind mounts stay inside the playbook's folder and remote_dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from provision.commands import deploy_host, host_health
from provision.deploy import images as image_sources
from provision.deploy import rollout
from provision.deploy.container_spec import (LABEL_REPLICA, LABEL_SERVICE, LABEL_STACK,
                                             container_specs, create_kwargs, extra_networks, spec_hash)
from provision.errors import HostError, InputError, ProvisionError
from provision.executor.base import Executor
from provision.facts import host_health as health
from provision.report import HostResult, Report, StepResult
from provision.workflows.fanout import RunOptions, fan_out
from provision.workflows.interrupt import INTERRUPT
from provision.workflows.host_lock import HostLock
from provision.workflows.targets import Target

SPEC_LABEL = "io.provision.spec"


@dataclass
class DeployContext:
    """Everything decided on the operator's machine, shared read-only by the per-host works."""

    playbook: object
    services_by_host: dict[str, list[str]]
    sources: dict[str, image_sources.ImageSource]
    secrets: dict[str, str]
    environ: Mapping[str, str]
    check: bool
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    registry_port: int | None = None
    staged: dict[str, object] = field(default_factory=dict)  # image name → shipping.StagedImage
    log: Callable[[str], None] = lambda line: None


# -- before any connection ------------------------------------------------------------------------
def load(playbook_path: str | Path, inventory_path: str | Path, limit: str | None, *,
         environ: Mapping[str, str], require_secrets: bool = True):
    """(playbook, targets, services_by_host); raises InputError before any host is contacted."""
    from provision.config.inventory import load_inventory
    from provision.deploy.playbook import load_playbook
    from provision.workflows.targets import load_targets

    playbook = load_playbook(playbook_path, environ=environ, require_secrets=require_secrets,
                             require_build_contexts=True)
    targets = load_targets(inventory_path, limit)
    inventory = load_inventory(inventory_path)
    selected = {t.name for t in targets}
    services_by_host: dict[str, list[str]] = {t.name: [] for t in targets}
    for name in playbook.ordered_services():
        pattern = playbook.service_hosts(playbook.services[name])
        for host in inventory.select(pattern):
            if host in selected:
                services_by_host[host].append(name)
    check_bind_sources(playbook)
    for target in targets:  # bad per-host settings are bad input, found before any connection
        image_sources.min_free_mb(target.name, target.hostvars)
    stack_hosts = set(inventory.select(playbook.hosts)) | {h for h, s in services_by_host.items() if s}
    targets = [t for t in targets if t.name in stack_hosts]
    if not targets:
        raise InputError(f"no selected host runs any service of stack {playbook.stack!r} "
                         f"(hosts: {playbook.hosts!r}{', --limit ' + repr(limit) if limit else ''})",
                         file=playbook.path)
    return playbook, targets, services_by_host


def check_bind_sources(playbook) -> None:
    """Relative bind mounts stay inside the playbook's folder here and inside remote_dir on the host
    (`./a/../../etc` is refused as bad input, before any connection)."""
    import posixpath

    root = posixpath.normpath(playbook.remote_dir)
    base = Path(os.path.normpath(playbook.base_dir))
    for name in playbook.ordered_services():
        for mount in playbook.services[name].mounts(playbook):
            if mount.kind != "bind" or mount.local_source is None:
                continue
            inside_remote = (mount.source.rstrip("/") + "/").startswith(root.rstrip("/") + "/")
            if not inside_remote or not Path(mount.local_source).is_relative_to(base):
                raise InputError(f"services.{name}.volumes: a relative bind mount must name a folder inside the "
                                 f"playbook's folder ({base}) and so inside remote_dir ({root}) on the host; "
                                 f"it resolves to {mount.local_source} here and {mount.source} there",
                                 file=playbook.path)


def read_secrets(playbook, environ: Mapping[str, str]) -> dict[str, str]:
    names = {s for service in playbook.services.values() for s in (service.secrets or [])}
    return {name: environ[name] for name in sorted(names) if name in environ}


def deploy(playbook_path: str | Path, inventory_path: str | Path, limit: str | None, options: RunOptions, *,
           environ: Mapping[str, str] | None = None, log: Callable[[str], None] = lambda line: None) -> Report:
    environ = os.environ if environ is None else environ
    return run(load(playbook_path, inventory_path, limit, environ=environ), options, environ=environ, log=log)


def run(loaded, options: RunOptions, *, environ: Mapping[str, str],
        log: Callable[[str], None] = lambda line: None) -> Report:
    """Deploy what `load` returned: build local images, stage them, then every host in parallel."""
    playbook, targets, services_by_host = loaded
    sources = image_sources.sources(playbook, check=options.check)
    context = DeployContext(playbook, services_by_host, sources, read_secrets(playbook, environ), environ,
                            options.check, log=log)
    with staged_images(sources, options.check) as (context.registry_port, context.staged):
        return fan_out("deploy", targets, host_work(context), options)


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


# -- per host ----------------------------------------------------------------------------------------
def host_work(context: DeployContext):
    def work(target: Target, executor: Executor) -> HostResult:
        result = HostResult(target.name)
        client = engine(target, executor)
        host = HostDeploy(context, target, executor, client, result)
        if context.check:
            host.run()
            return result
        with HostLock(executor, "deploy", stack=context.playbook.stack, run_id=context.run_id,
                      result=result) as lock:
            try:
                host.run()
            finally:
                lock.note(playbook=str(context.playbook.path), services=host.actions,
                          **({"result": "interrupted"} if host.was_interrupted or INTERRUPT.requested else {}))
        return result

    return work


def engine(target: Target, executor: Executor):
    """The host's Docker engine over its SSH connection, checked to answer (a clear error if not: Docker
    missing, or its daemon stopped and how to start it)."""
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


class HostDeploy:
    def __init__(self, context: DeployContext, target: Target, executor: Executor, client, result: HostResult):
        self.c = context
        self.p = context.playbook
        self.target = target
        self.executor = executor
        self.client = client
        self.result = result
        self.services = context.services_by_host.get(target.name, [])
        self.actions: dict[str, list[str]] = {}
        self.containers: dict[str, list[str]] = {}
        self.failed = False
        self.was_interrupted = False
        self.plan: list[dict] = []

    # steps ---------------------------------------------------------------------------------------
    def step(self, name: str, status: str, message: str, started: float | None = None) -> None:
        if self.c.check and status == "ok":
            self.plan.append({"object": name, "action": "keep", "reason": message})
        duration = time.monotonic() - started if started else 0.0
        self.result.steps.append(StepResult(name, status, message, duration))  # type: ignore[arg-type]
        if status == "failed":
            self.failed = True

    def interrupted(self, before: str) -> None:
        self.step("interrupted", "failed", f"stopped before {before}: the operator interrupted the run")
        self.was_interrupted = True

    def change(self, name: str, message: str, started: float | None = None, **plan) -> None:
        if self.c.check:
            self.plan.append({"object": name, "action": plan.pop("action", message.split()[0]),
                              "reason": message, **plan})
            self.step(name, "changed", f"would {message}")
        else:
            self.step(name, "changed", message, started)

    def run(self) -> None:
        import docker.errors

        for work in (self.networks, self.volumes, self.bind_folders, self.images, self.services_rollout, self.orphans):
            if self.failed:
                break
            if INTERRUPT.requested:  # a step boundary: stop here, the lock is released by the caller
                self.interrupted(work.__name__.replace("_", " ").strip())
                break
            try:
                work()
            except docker.errors.APIError as exc:  # the engine refused: this host's step fails, others go on
                self.step(work.__name__.replace("_", " ").strip(), "failed", f"docker: {rollout.api_message(exc)}")
        self.result.extra["services"] = {name: {"actions": self.actions.get(name, []),
                                                "containers": self.containers.get(name, [])}
                                         for name in self.services}
        if self.c.check:
            self.result.extra["plan"] = self.plan

    # networks, volumes, bind folders ---------------------------------------------------------------
    def needed_networks(self) -> list[tuple[str, object]]:
        keys: list[str] = []
        for name in self.services:
            for net in self.p.services[name].networks or ["default"]:
                if net not in keys:
                    keys.append(net)
        out = []
        for key in keys:
            if key == "default" and "default" not in (self.p.networks or {}):
                out.append((self.p.default_network, None))
            else:
                out.append((self.p.network_name(key), (self.p.networks or {}).get(key)))
        return out

    def networks(self) -> None:
        for name, spec in self.needed_networks():
            started = time.monotonic()
            found = self.client.networks.list(names=[name])
            found = [n for n in found if n.name == name]
            if found:
                if not self._ours(found[0].attrs):
                    self.step(f"network {name}", "failed", "exists but was not created by provision "
                              f"(no {LABEL_STACK} label); give the playbook's network another `name:`")
                    return
                self.step(f"network {name}", "ok", "exists")
                continue
            driver = getattr(spec, "driver", None) or "bridge"
            if self.c.check:
                self.change(f"network {name}", f"create ({driver})")
                continue
            self.client.networks.create(name, driver=driver, labels={LABEL_STACK: self.p.stack,
                                                                     **(getattr(spec, "labels", None) or {})},
                                        internal=bool(getattr(spec, "internal", False)),
                                        attachable=bool(getattr(spec, "attachable", False)) or None,
                                        options=getattr(spec, "driver_opts", None) or None)
            self.change(f"network {name}", f"created ({driver})", started)

    def volumes(self) -> None:
        wanted: list[str] = []
        for name in self.services:
            for mount in self.p.services[name].mounts(self.p):
                if mount.kind == "volume" and mount.source not in wanted:
                    wanted.append(mount.source)
        specs = {self.p.volume_name(k): v for k, v in (self.p.volumes or {}).items()}
        for name in wanted:
            started = time.monotonic()
            import docker.errors

            try:
                volume = self.client.volumes.get(name)
                if not self._ours(volume.attrs):
                    self.step(f"volume {name}", "failed", f"exists but was not created by provision (no "
                              f"{LABEL_STACK} label); refusing to use another tool's data")
                    return
                self.step(f"volume {name}", "ok", "exists (kept)")
                continue
            except docker.errors.NotFound:
                pass
            spec = specs.get(name)
            if self.c.check:
                self.change(f"volume {name}", "create")
                continue
            self.client.volumes.create(name, driver=getattr(spec, "driver", None) or "local",
                                       driver_opts=getattr(spec, "driver_opts", None) or {},
                                       labels={LABEL_STACK: self.p.stack, **(getattr(spec, "labels", None) or {})})
            self.change(f"volume {name}", "created", started)

    def _ours(self, attrs: dict) -> bool:
        return (attrs.get("Labels") or {}).get(LABEL_STACK) is not None

    def bind_folders(self) -> None:
        seen: set[str] = set()
        for name in self.services:
            for mount in self.p.services[name].mounts(self.p):
                if mount.kind != "bind" or mount.source in seen:
                    continue
                seen.add(mount.source)
                if mount.local_source is None:
                    continue  # an absolute host path: the operator's business
                self._sync(mount)

    def _sync(self, mount) -> None:
        started = time.monotonic()
        label = f"folder {mount.source}"
        local = Path(mount.local_source)
        if not local.is_dir():
            if self.c.check:
                exists = self.executor.run(["test", "-d", mount.source], become=True).ok
                if exists:
                    self.step(label, "ok", "exists (no local folder to sync)")
                else:
                    self.change(label, "create (empty: no local folder to sync)")
                return
            outcome = self.executor.run(deploy_host.make_dirs([mount.source]), become=True)
            self._expect(outcome, label, "exists (no local folder to sync)", started)
            return
        try:
            archive, digest = folder_archive(local)
        except InputError as exc:
            self.step(label, "failed", str(exc))
            return
        marker = sync_marker(self.p.remote_dir, mount.source)
        synced = self.executor.run(deploy_host.read_sync_marker(marker), become=True).stdout.strip()
        if synced == digest:  # nothing to send
            self.step(label, "ok", f"in sync with {local}", started)
            return
        if self.c.check:
            self.change(label, f"sync from {local} (content changed)")
            return
        made = self.executor.run(deploy_host.make_temp())  # as the login user, who uploads
        if not made.ok:
            self.step(label, "failed", f"mktemp: {made.error_line()}")
            return
        remote_tmp = made.stdout.strip()
        self.executor.put(archive, remote_tmp)
        outcome = self.executor.run(deploy_host.sync_folder(mount.source, remote_tmp, digest, marker,
                                                            self.p.remote_dir), become=True)
        if outcome.ok and outcome.stdout.strip().splitlines()[-1:] == ["unchanged"]:
            self.step(label, "ok", f"in sync with {local}", started)
            return
        self._expect(outcome, label, f"synced from {local}", started, changed=True)

    def _expect(self, outcome, label: str, message: str, started: float, changed: bool = False) -> None:
        if outcome.ok:
            self.step(label, "changed" if changed else "ok", message, started)
        else:
            self.step(label, "failed", outcome.error_line())

    # images ----------------------------------------------------------------------------------------
    def images(self) -> None:
        self.image_ids: dict[str, str | None] = {}
        done: dict[str, str | None] = {}
        if not self.enough_space():
            return
        for name in self.services:
            source = self.c.sources[name]
            key = f"{source.how}:{source.name}"
            if key not in done:
                done[key] = self._image(name, source)
                if self.failed:
                    return
            self.image_ids[name] = done[key]

    def enough_space(self) -> bool:
        """Before any image is pulled, shipped or built: does the filesystem under Docker's data root have
        room for them? If not the step fails here, before any container is touched (old ones keep serving)."""
        started = time.monotonic()
        fetch: dict[str, int | None] = {}
        for name in self.services:
            source = self.c.sources[name]
            if source.how == image_sources.SHIP:
                if not hasattr(self.executor, "connect"):  # connection=local: the same engine built it
                    continue
                if image_sources.local_image_id(self.client, source.name) == source.local_id and source.local_id:
                    continue  # present on the host: nothing travels
                staged = self.c.staged.get(source.name)
                fetch[source.name] = getattr(staged, "size", None)
            else:  # pulled (again, in case the tag moved) or built on the host: size unknown beforehand
                fetch.setdefault(source.name, None)
        if not fetch:
            return True
        needed = image_sources.space_needed(list(fetch.values()),
                                            image_sources.min_free_mb(self.target.name, self.target.hostvars))
        root = self.client.info().get("DockerRootDir") or "/var/lib/docker"
        out = self.executor.run(host_health.free_space(root), timeout=60)
        free = health.parse_free_space(out.stdout) if out.ok else None
        if free is None:
            self.step("disk space", "failed", f"cannot read the free space of {root}: {out.error_line()}")
            return False
        refusal = health.space_shortfall(self.target.name, root, free, needed)
        if refusal:
            self.step("disk space", "failed", refusal, started)
            return False
        self.step("disk space", "ok", f"{root}: {health.human(free.available)} free "
                                      f"(about {health.human(needed)} needed)", started)
        return True

    def _image(self, service_name: str, source) -> str | None:
        started = time.monotonic()
        label = f"image {source.name}"
        current = image_sources.local_image_id(self.client, source.name)
        if source.how == image_sources.SHIP:
            if not hasattr(self.executor, "connect"):  # connection=local: the same engine built it
                self.step(label, "ok", "present (this machine's engine)")
                return source.local_id
            if self.c.check:
                if current and current == source.local_id:
                    self.step(label, "ok", "present on the host")
                else:
                    self.change(label, f"ship from this machine ({source.note}; only missing layers)")
                return source.local_id or current
            from provision.deploy import shipping

            staged = self.c.staged[source.name]
            shipped = shipping.ship(self.executor.ssh_transport(), self.client, staged,
                                    self.c.registry_port, progress=self._progress(source.name))
            if shipped.skipped:
                self.step(label, "ok", "present on the host (nothing sent)", started)
            else:
                self.step(label, "changed", f"shipped: {shipping.human_bytes(shipped.bytes_sent)} sent "
                          f"(only the layers the host lacked)", started)
                self.result.extra.setdefault("shipped_bytes", {})[source.name] = shipped.bytes_sent
            return shipped.image_id
        if source.how == image_sources.PULL:
            if self.c.check:
                if current:
                    self.step(label, "ok", "on the host (a deploy pulls again, in case the tag moved)")
                else:
                    self.change(label, f"pull ({source.note})")
                return current
            return self._pull(label, source.name, started)
        # built on the host
        if self.c.check:
            self.change(label, "build on the host")
            return current
        service = self.p.services[service_name]
        kwargs = image_sources.build_context(self.p, service)
        import docker.errors

        try:
            image, _ = self.client.images.build(**kwargs)
        except (docker.errors.BuildError, docker.errors.APIError) as exc:
            self.step(label, "failed", f"build on the host failed: {str(exc)[:300]}")
            return None
        self.step(label, "changed" if image.id != current else "ok",
                  "built on the host" + (" (unchanged)" if image.id == current else ""), started)
        return image.id

    def _pull(self, label: str, name: str, started: float) -> str | None:
        import docker.errors

        repository, tag = image_sources.split_reference(name)
        auth = image_sources.pull_auth(self.p, name, self.c.environ)
        before = image_sources.local_image_id(self.client, name)
        try:
            image = self.client.images.pull(repository, tag=tag, auth_config=auth)
        except docker.errors.APIError as exc:
            message = str(getattr(exc, "explanation", None) or exc)
            if before:
                self.step(label, "ok", f"pull failed ({message[:200]}); using the image already on the host")
                return before
            self.step(label, "failed", f"pull failed: {message[:300]}")
            return None
        self.step(label, "changed" if image.id != before else "ok",
                  "pulled" + (" (unchanged)" if image.id == before else ""), started)
        return image.id

    def _progress(self, image: str) -> Callable[[int], None]:
        last = [0.0]

        def report(sent: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                from provision.deploy.shipping import human_bytes

                self.c.log(f"{self.target.name}: shipping {image}: {human_bytes(sent)} sent")

        return report

    # services --------------------------------------------------------------------------------------
    def services_rollout(self) -> None:
        for name in self.services:
            service = self.p.services[name]
            specs = container_specs(self.p, name, self.image_ids.get(name) or "")
            for spec in specs:
                if INTERRUPT.requested:
                    self.interrupted(f"service {service.name}[{spec.replica}]")
                    return
                self._replica(service, spec)
                if self.failed:
                    return

    def _replica(self, service, spec) -> None:
        started = time.monotonic()
        cname = spec_name(spec)
        label = f"service {service.name}" + (f"[{spec.replica}]" if service.replicas > 1 else "")
        digest = spec_hash(spec, self.c.secrets)
        current = _get(self.client, cname)
        desired = rollout.Desired(
            name=cname, service=service.name, replica=spec.replica, spec_hash=digest,
            create_kwargs=lambda n: create_kwargs(spec, self.client.api, name=n, secret_values=self.c.secrets,
                                                  hash=digest),
            extra_networks=[(net, [service.name]) for net in extra_networks(spec)],
            order=service.rollout_order, health_timeout=service.health_timeout_s, stack=self.p.stack,
            stop=lambda: INTERRUPT.requested)
        refused = rollout.foreign_names(self.client, desired)
        if refused:  # never renamed, stopped or removed, under --check too
            self.step(label, "failed", refused, started)
            return
        action, reason = rollout.decide(current, desired)
        if self.c.check:
            self.actions.setdefault(service.name, []).append(action)
            if action == "keep":
                self.step(label, "ok", reason)
            else:
                self.change(label, f"{action} {cname}: {reason}", action=action)
            return
        was_running = current is not None and current.status == "running"
        held = INTERRUPT.hold(f"{self.target.name} {cname}{rollout.NEXT}",
                              lambda: rollout.abandon(self.client, current, cname, was_running))
        try:
            outcome = rollout.apply(self.client, current, desired)
        finally:
            INTERRUPT.drop(held)
        self.actions.setdefault(service.name, []).append(outcome.action)
        if outcome.container_id:
            self.containers.setdefault(service.name, []).append(outcome.container_id[:12])
        if outcome.failed and outcome.action == "refused":
            self.step(label, "failed", outcome.message, started)
        elif outcome.failed:
            self.step(label, "failed", f"rolled back: {outcome.message}", started)
            self.result.extra["rolled_back"] = True
        elif outcome.action == "keep":
            self.step(label, "ok", f"{cname} {outcome.message}", started)
        else:
            self.step(label, "changed", f"{outcome.action} {cname}: {outcome.message}", started)

    def orphans(self) -> None:
        wanted = {(name, spec.replica) for name in self.services
                  for spec in container_specs(self.p, name, self.image_ids.get(name) or "")}
        for container in self.client.containers.list(all=True, filters={"label": f"{LABEL_STACK}={self.p.stack}"}):
            labels = container.labels or {}
            key = (labels.get(LABEL_SERVICE), int(labels.get(LABEL_REPLICA, "0") or 0))
            if key in wanted:
                continue
            started = time.monotonic()
            why = "no longer in the playbook" if key[0] not in self.p.services else "not wanted on this host"
            if self.c.check:
                self.change(f"container {container.name}", f"remove ({why})", action="remove")
                continue
            container.remove(force=True)
            self.change(f"container {container.name}", f"removed ({why})", started)


def spec_name(spec) -> str:
    from provision.deploy.container_spec import container_name

    return container_name(spec.stack, spec.service, spec.replica)


def _get(client, name: str):
    import docker.errors

    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def folder_archive(folder: Path) -> tuple[bytes, str]:
    """A reproducible tar of a folder (sorted, mtimes and owners zeroed, setuid/setgid/sticky bits
    dropped) and its sha256. A symlink that leads outside the folder is refused (InputError): what it
    points to on the host is not what it points to here."""
    buffer = io.BytesIO()
    root = folder.resolve()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                target = (path.parent / os.readlink(path)).resolve()
                if os.path.isabs(os.readlink(path)) or not target.is_relative_to(root):
                    raise InputError(f"{path} is a symlink to {os.readlink(path)}, outside {folder}: "
                                     "refusing to sync it (copy the file in instead)")
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            info.mode &= 0o777
            if info.isreg():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def sync_marker(remote_dir: str, target: str) -> str:
    """Where the digest of a synced folder is kept: beside the folders, never inside a mount."""
    return f"{remote_dir.rstrip('/')}/.provision-sync/{hashlib.sha256(target.encode()).hexdigest()[:16]}"



# -- rollback ---------------------------------------------------------------------------------------
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
