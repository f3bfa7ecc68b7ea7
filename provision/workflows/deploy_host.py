"""One host's part of `provision deploy` (run under its deploy lock by workflows.deploy): networks,
volumes, bind folders, images (workflows.deploy_images), then each service's replicas reconciled by
their labels with a health-gated rollout (deploy.rollout), then containers no longer wanted removed.

Every step is recorded in the host's result; under --check the same steps build the plan instead. A step the
engine refuses (docker APIError) or whose connection is lost (deploy.lost_connection: the SSH connection or its
dial-stdio channel gone) is this host's failed step, the steps before it kept; the other hosts go on."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from provision import progress
from provision.commands import deploy_host
from provision.deploy import networks as stack_networks
from provision.deploy import rollout
from provision.deploy.container_spec import (LABEL_REPLICA, LABEL_SERVICE, LABEL_STACK, container_specs,
                                             create_kwargs, extra_networks, network_aliases, secrets_folder,
                                             spec_container_name, spec_hash)
from provision.deploy.folder_sync import folder_archive, sync_marker
from provision.deploy.lost_connection import is_lost_connection, lost_connection_message
from provision.errors import InputError
from provision.executor.base import Executor
from provision.report import HostResult, StepResult
from provision.workflows.deploy_images import ImageOutcome, fetch_image, space_check
from provision.interrupts import INTERRUPT
from provision.workflows.targets import Target

if TYPE_CHECKING:  # workflows.deploy imports this module
    from provision.workflows.deploy import DeployContext


class HostDeploy:
    """The steps of one host, in order (run); each records its StepResult, or its plan under --check."""

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

        for work in (self.networks, self.volumes, self.bind_folders, self.images, self.secrets, self.services_rollout,
                     self.orphans):
            if self.failed:
                break
            if INTERRUPT.requested:  # a step boundary: stop here, the lock is released by the caller
                self.interrupted(work.__name__.replace("_", " ").strip())
                break
            name = work.__name__.replace("_", " ").strip()
            try:
                progress.step(name)
                work()
            except Exception as exc:  # this host's step fails, the other hosts go on (an interrupt is not caught)
                if is_lost_connection(exc):  # the SSH connection or its dial-stdio channel went away
                    self.step(name, "failed", lost_connection_message(self.target.name, exc))
                elif isinstance(exc, docker.errors.APIError):  # the engine answered and refused
                    self.step(name, "failed", f"docker: {rollout.api_message(exc)}")
                else:
                    raise
        self.result.extra["services"] = {name: {"actions": self.actions.get(name, []),
                                                "containers": self.containers.get(name, [])}
                                         for name in self.services}
        if self.c.check:
            self.result.extra["plan"] = self.plan

    def record_noop(self, noop) -> None:
        """The steps of a host where nothing must change (workflows.deploy_noop), recorded as run() would."""
        for name, message in noop.steps:
            self.step(name, "ok", message)
        self.actions, self.containers = noop.actions, noop.containers
        self.result.extra["services"] = {name: {"actions": self.actions.get(name, []),
                                                "containers": self.containers.get(name, [])}
                                         for name in self.services}
        if self.c.check:
            self.result.extra["plan"] = self.plan

    # networks, volumes, bind folders ---------------------------------------------------------------
    def networks(self) -> None:
        for name, spec in stack_networks.needed_networks(self.p, self.services):
            started = time.monotonic()
            found = [n for n in self.client.networks.list(names=[name]) if n.name == name]
            if spec is not None and getattr(spec, "external", False):
                if found:
                    self.step(f"network {name}", "ok", "exists (external)")
                    continue
                self.step(f"network {name}", "failed", "external network not found on the host (create it first)")
                return
            if found:
                if not stack_networks.is_ours(found[0].attrs):
                    self.step(f"network {name}", "failed", stack_networks.FOREIGN)
                    return
                self.step(f"network {name}", "ok", "exists")
                continue
            kwargs = stack_networks.create_kwargs(self.p.stack, spec, swarm=False)
            if self.c.check:
                self.change(f"network {name}", f"create ({kwargs['driver']})")
                continue
            self.client.networks.create(name, **kwargs)
            self.change(f"network {name}", f"created ({kwargs['driver']})", started)

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

            external = getattr(specs.get(name), "external", False)
            try:
                volume = self.client.volumes.get(name)
                if external:
                    self.step(f"volume {name}", "ok", "exists (external)")
                    continue
                if not stack_networks.is_ours(volume.attrs):
                    self.step(f"volume {name}", "failed", f"exists but was not created by provision (no "
                              f"{LABEL_STACK} label); refusing to use another tool's data")
                    return
                self.step(f"volume {name}", "ok", "exists (kept)")
                continue
            except docker.errors.NotFound:
                if external:
                    self.step(f"volume {name}", "failed", "external volume not found on the host (create it first)")
                    return
            spec = specs.get(name)
            if self.c.check:
                self.change(f"volume {name}", "create")
                continue
            self.client.volumes.create(name, driver=getattr(spec, "driver", None) or "local",
                                       driver_opts=getattr(spec, "driver_opts", None) or {},
                                       labels={LABEL_STACK: self.p.stack, **(getattr(spec, "labels", None) or {})})
            self.change(f"volume {name}", "created", started)

    def bind_folders(self) -> None:
        seen: set[str] = set()
        for name in self.services:
            for mount in self.p.services[name].mounts(self.p):
                if mount.kind != "bind" or mount.source in seen:
                    continue
                seen.add(mount.source)
                if mount.local_source is None:
                    if mount.create_host_path:  # Compose creates a missing host folder of a bind
                        self._host_folder(mount)
                    continue  # otherwise an absolute host path is the operator's business
                self._sync(mount)

    def _host_folder(self, mount) -> None:
        label = f"folder {mount.source}"
        started = time.monotonic()
        if self.executor.run(deploy_host.folder_exists(mount.source), become=True).ok:
            return
        if self.c.check:
            self.change(label, "create (missing host folder of a bind mount)")
            return
        outcome = self.executor.run(deploy_host.make_dirs([mount.source]), become=True)
        self._expect(outcome, label, "created (missing host folder of a bind mount)", started, changed=True)

    def _sync(self, mount) -> None:
        started = time.monotonic()
        label = f"folder {mount.source}"
        local = Path(mount.local_source)
        if not local.is_dir():
            if self.c.check:
                exists = self.executor.run(deploy_host.folder_exists(mount.source), become=True).ok
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
        """Room first (deploy_images.space_check), then each distinct image once (deploy_images.fetch_image)."""
        self.image_ids: dict[str, str | None] = {}
        if not self.enough_space():
            return
        job = self.c.image_job()
        done: dict[str, str | None] = {}
        for name in self.services:
            source = self.c.sources[name]
            key = f"{source.how}:{source.name}"
            if key not in done:
                outcome = fetch_image(job, name, source, self.target, self.executor, self.client)
                self.record(outcome)
                if outcome.shipped_bytes is not None:
                    self.result.extra.setdefault("shipped_bytes", {})[source.name] = outcome.shipped_bytes
                done[key] = outcome.image_id
                if self.failed:
                    return
            self.image_ids[name] = done[key]

    def enough_space(self) -> bool:
        """Before any image is fetched: room under Docker's data root? If not the step fails here, before
        any container is touched (old ones keep serving)."""
        outcome = space_check(self.c.image_job(), self.services, self.target, self.executor, self.client)
        if outcome is not None:
            self.record(outcome)
        return outcome is None or outcome.status != "failed"

    def record(self, outcome: ImageOutcome) -> None:
        if outcome.status == "changed" and self.c.check:
            self.change(outcome.label, outcome.message, action=outcome.action)
        else:
            self.step(outcome.label, outcome.status, outcome.message)
            self.result.steps[-1].duration_s = outcome.seconds

    # Compose secrets ---------------------------------------------------------------------------------
    def secrets(self) -> None:
        """Each service's Compose secrets as files in its tmpfs folder on the host (root-owned 0400 unless
        uid/gid/mode say otherwise); the value goes by SFTP into a private /dev/shm folder, never in a
        command. A secret whose bytes changed gets a new file, hence a new version, hence a new spec hash."""
        self.secret_versions: dict[str, str] = {}
        for name in self.services:
            wanted = self.p.services[name].file_secrets
            if not wanted:
                continue
            label = f"secrets {name}"
            started = time.monotonic()
            folder = secrets_folder(self.p.stack, name)
            if self.c.check:
                outcome = self.executor.run(deploy_host.secret_versions([f"{folder}/{s.source}" for s in wanted]),
                                            become=True)
                self.secret_versions[name] = ",".join(outcome.stdout.split())
                self.step(label, "ok", f"{len(wanted)} secret(s) in {folder} (values not compared under --check)")
                continue
            versions = self._write_secrets(label, folder, wanted, started)
            if versions is None:
                return
            self.secret_versions[name] = ",".join(versions)

    def _write_secrets(self, label: str, folder: str, wanted, started: float) -> list[str] | None:
        made = self.executor.run(deploy_host.make_secrets_folder(folder), become=True)
        if not made.ok:
            self.step(label, "failed", made.error_line())
            return None
        stage_made = self.executor.run(deploy_host.make_secrets_stage())
        if not stage_made.ok:
            self.step(label, "failed", stage_made.error_line())
            return None
        stage = stage_made.stdout.strip()
        versions: list[str] = []
        try:
            for secret in wanted:
                value = self.c.file_secrets.get(secret.source)
                if value is None:
                    self.step(label, "failed", f"secret {secret.source!r} has no value (file unreadable or "
                                               "variable unset)")
                    return None
                staged = f"{stage}/{secret.source}"
                self.executor.put(value.reveal().encode("utf-8"), staged, mode=0o600)
                outcome = self.executor.run(deploy_host.install_secret(staged, f"{folder}/{secret.source}",
                                                                       secret.uid, secret.gid, secret.mode),
                                            become=True)
                if not outcome.ok:
                    self.step(label, "failed", outcome.error_line())
                    return None
                versions.append(outcome.stdout.strip().splitlines()[-1] if outcome.stdout.strip() else "")
        finally:
            self.executor.run(deploy_host.remove_secrets_stage(stage))
        self.step(label, "ok", f"{len(wanted)} secret(s) in {folder} (tmpfs)", started)
        return versions

    # services --------------------------------------------------------------------------------------
    def services_rollout(self) -> None:
        for name in self.services:
            service = self.p.services[name]
            specs = container_specs(self.p, name, self.image_ids.get(name) or "")
            version = getattr(self, "secret_versions", {}).get(name)
            if version is not None:
                specs = [replace(spec, secrets_version=version) for spec in specs]
            if not self.dependencies_ready(name):
                return
            for spec in specs:
                if INTERRUPT.requested:
                    self.interrupted(f"service {service.name}[{spec.replica}]")
                    return
                self._replica(service, spec)
                if self.failed:
                    return
            self.restart_after_dependencies(name, specs)

    def restart_after_dependencies(self, name: str, specs) -> None:
        """Compose's ``depends_on: {X: {restart: true}}``: a kept container restarts when X was replaced."""
        service = self.p.services[name]
        changed = [dep for dep, spec in service.dependencies.items()
                   if spec.restart and any(a in ("create", "replace") for a in self.actions.get(dep, []))]
        if not changed or self.c.check:
            return
        for spec, action in zip(specs, self.actions.get(name, [])):
            if action != "keep":
                continue
            started = time.monotonic()
            cname = spec_container_name(spec)
            self.client.containers.get(cname).restart()
            self.change(f"service {name}", f"restarted {cname} ({', '.join(changed)} replaced)", started)

    def completes(self, name: str) -> bool:
        """Another service waits for this one to exit 0 (Compose's service_completed_successfully)."""
        return any(spec.condition == "service_completed_successfully" and dependency == name
                   for other in self.p.services.values() for dependency, spec in other.dependencies.items())

    def dependencies_ready(self, name: str) -> bool:
        """Compose's depends_on conditions on this host: service_healthy waits for the dependency's health,
        service_completed_successfully for it to exit 0 (service_started: its rollout is already done)."""
        service = self.p.services[name]
        for dependency, spec in service.dependencies.items():
            if spec.condition == "service_started" or dependency not in self.services or self.c.check:
                continue
            started = time.monotonic()
            label = f"service {name}"
            for dep_spec in container_specs(self.p, dependency, ""):
                cname = spec_container_name(dep_spec)
                try:
                    if spec.condition == "service_healthy":
                        rollout.wait_healthy(self.client, cname, self.p.services[dependency].health_timeout_s,
                                             stop=lambda: INTERRUPT.requested)
                    else:
                        rollout.wait_exited_ok(self.client, cname, self.p.services[dependency].health_timeout_s,
                                               stop=lambda: INTERRUPT.requested)
                except rollout.RolloutFailed as exc:
                    self.step(label, "failed", f"depends_on {dependency} ({spec.condition}): {exc.message}",
                              started)
                    return False
        return True

    def _replica(self, service, spec) -> None:
        started = time.monotonic()
        cname = spec_name(spec)
        label = f"service {service.name}" + (f"[{spec.replica}]" if service.replicas > 1 else "")
        progress.step(label)
        digest = spec_hash(spec, self.c.secrets)
        current = get_container(self.client, cname)
        desired = rollout.Desired(
            name=cname, service=service.name, replica=spec.replica, spec_hash=digest,
            create_kwargs=lambda n: create_kwargs(spec, self.client.api, name=n, secret_values=self.c.secrets,
                                                  hash=digest),
            extra_networks=[(net, network_aliases(spec, net)) for net in extra_networks(spec)],
            order=service.rollout_order, health_timeout=service.health_timeout_s, stack=self.p.stack,
            stop=lambda: INTERRUPT.requested, completes=self.completes(service.name))
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
        gone: set[str] = set()
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
            if key[0] not in self.services and key[0]:
                gone.add(key[0])
        for name in sorted(gone):  # their Compose secrets go with them (nothing if there were none)
            self.executor.run(deploy_host.remove_secrets_folder(secrets_folder(self.p.stack, name)), become=True)


def spec_name(spec) -> str:
    return spec_container_name(spec)


def get_container(client, name: str):
    import docker.errors

    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None
