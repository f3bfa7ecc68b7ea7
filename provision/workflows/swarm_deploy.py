"""`provision deploy --swarm`: a playbook's stack as Docker Swarm services, created from a manager.

Before any connection: the playbook is validated, the swarm members and their manager are chosen
(exit 4 without one), secrets are read from the operator's environment and local images are built.
Then:
1. images shipped registry-less go to EVERY selected swarm member (hosts in parallel), since any
   node may run a task; services reference them by image ID (`sha256:...`), which the daemon never
   tries to pull. Images from a registry are referenced by name and each node pulls them;
2. on the manager: the stack's networks become attachable `overlay` networks (created once);
3. each service `<stack>_<service>` is reconciled by its labels: same spec hash → kept, changed →
   `service update` (Swarm's rolling update, rolled back on failure), absent → created; services of
   the stack no longer in the playbook are removed; services without provision's labels are never
   touched. Each created/updated service must have all its replicas running within the health
   timeout, else its step fails with the tasks' errors.
The service spec (container settings plus Swarm's) is built in deploy.swarm_spec, the image step is
the single-host one (workflows.deploy_images), networks are created as in deploy.networks.
`--check` computes the same plan (create/update/keep/remove with the reason) and changes nothing.

GPU services (issue 14): before anything is shipped or changed (and under --check), workflows.gpu_precheck
checks, on every member a GPU service can be placed on (its placement constraints against the members'
roles: operations.gpu_requests.swarm_candidates), the service's GPU request against the node's GPUs and
its image's CUDA requirement against the node's driver; one refusal stops the whole deploy, every refusal
shown. Members without a GPU are not refused (Swarm places GPU services only on nodes labelled
provision.gpu=true).

Endpoint mode (`deploy.endpoint_mode`) and publish mode (a long port's `mode`) default to Docker's
own (vip, ingress); `dnsrr` and `mode: host` serve kernels without IPVS.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from provision.deploy import images as image_sources
from provision.deploy import networks as stack_networks
from provision.deploy import swarm_spec
from provision.deploy.container_spec import LABEL_SERVICE, LABEL_STACK
from provision.executor.base import Executor
from provision.report import HostResult, Report, StepResult
from provision.workflows.deploy_images import ImageJob, fetch_image, make_relay, staged_images
from provision.workflows.engine import engine
from provision.workflows.fanout import RunOptions, SharedExecutors, SilentProgress, fan_out, run_on_host
from provision.workflows.swarm_targets import load_swarm_targets, manager_target, role_of
from provision.workflows.targets import Target

_BAD_UPDATE = ("paused", "rollback_started", "rollback_paused", "rollback_completed")


# -- before any connection -------------------------------------------------------------------------
@dataclass
class Loaded:
    playbook: Any
    hosts: list[Target]  # the selected swarm members: images go to each
    manager: Target
    secrets: dict[str, str]
    environ: Mapping[str, str]


def load(playbook_path: str | Path | Sequence[str | Path], inventory_path: str | Path, limit: str | None, *,
         environ: Mapping[str, str] | None = None, project_name: str | None = None,
         profiles: Sequence[str] = ()) -> Loaded:
    from provision.workflows import deploy as single

    environ = os.environ if environ is None else environ
    playbook, _, _ = single.load(playbook_path, inventory_path, limit, environ=environ, project_name=project_name,
                                 profiles=profiles)
    swarm_spec.validate(playbook)
    members = [t for t in load_swarm_targets(inventory_path, limit) if role_of(t)]
    manager = manager_target(members)
    return Loaded(playbook, members, manager, single.read_secrets(playbook, environ), environ)


# -- running it -------------------------------------------------------------------------------------
@dataclass
class SwarmRun:
    loaded: Loaded
    images: ImageJob

    @property
    def check(self) -> bool:
        return self.images.check

    @property
    def sources(self) -> dict[str, image_sources.ImageSource]:
        return self.images.sources


@dataclass
class GpuContext:
    """What workflows.gpu_precheck reads of a deploy: the GPU services each member can be placed on."""

    playbook: Any
    services_by_host: dict[str, list[str]]
    sources: dict[str, image_sources.ImageSource]
    environ: Mapping[str, str]


def gpu_placement(loaded: Loaded) -> dict[str, list[str]]:
    """Member → the GPU services Swarm can place on it (placement constraints vs the members' roles)."""
    from provision.operations.gpu_requests import swarm_candidates

    members = [(t.name, role_of(t)) for t in loaded.hosts]
    placed: dict[str, list[str]] = {t.name: [] for t in loaded.hosts}
    for name in loaded.playbook.ordered_services():
        service = loaded.playbook.services[name]
        if service.gpu_request() is None:
            continue
        for host in swarm_candidates(swarm_spec.swarm_settings(service)["constraints"], members):
            placed[host].append(name)
    return placed


def deploy_swarm(loaded: Loaded, options: RunOptions, *, log: Callable[[str], None] = lambda line: None) -> Report:
    sources = image_sources.sources(loaded.playbook, check=options.check)
    refusal, gpu_steps = None, {}
    # one executor (one SSH connection) per host: the GPU checks, the image step, the relay's seed side, the
    # manager's work
    with SharedExecutors([*loaded.hosts, loaded.manager], options) as executors:
        if any(t.name == loaded.manager.name for t in loaded.hosts):
            executors.expect(loaded.manager.name, 2)  # its image step, then the services
        if any(s.gpu_request() is not None for s in loaded.playbook.services.values()):
            from provision.workflows import gpu_precheck  # only for GPU services

            gpu = GpuContext(loaded.playbook, gpu_placement(loaded), sources, loaded.environ)
            for target in loaded.hosts:
                if gpu_precheck.gpu_services(gpu, target.name):
                    executors.expect(target.name, 2)  # the GPU checks' lease, then the image step's
            refusal, gpu_steps = gpu_precheck.precheck(gpu, loaded.hosts, options, swarm_manager=loaded.manager.name,
                                                       executors=executors)
        if refusal is not None:  # before anything is shipped or changed
            return refusal
        report = _deploy(loaded, sources, options, log, executors)
    for name, steps in gpu_steps.items():  # the GPU checks head each GPU node's result
        if name in report.hosts and any(s.status != "skipped" for s in steps):
            report.hosts[name].steps[0:0] = steps
    return report


def _deploy(loaded: Loaded, sources, options: RunOptions, log: Callable[[str], None],
            executors: SharedExecutors) -> Report:
    run = SwarmRun(loaded, ImageJob(loaded.playbook, sources, loaded.environ, options.check, log=log))
    with staged_images(sources, options.check) as (run.images.registry_port, run.images.staged):
        run.images.relay = make_relay(loaded.hosts, options, log, executors=executors) \
            if run.images.staged else None
        report = fan_out("deploy", loaded.hosts, image_work(run), options, executors=executors)
    manager = loaded.manager.name
    first = report.hosts[manager]
    broken = [n for n, r in report.hosts.items() if r.status in ("failed", "unreachable")]
    if broken:
        first.steps.append(StepResult("services", "failed", f"not deployed: images are missing on "
                                      f"{', '.join(broken)} (a task placed there could not start)"))
        return report
    result = run_on_host(loaded.manager, _manager_work(run), replace(options, progress=SilentProgress()),
                         executors.factory)
    first.steps.extend(result.steps)
    first.unreachable = result.unreachable
    plan = first.extra.pop("plan", []) + result.extra.pop("plan", [])
    first.extra.update(result.extra)
    if options.check:
        first.extra["plan"] = plan
    for name, host in report.hosts.items():
        if name != manager and options.check:
            host.extra.setdefault("plan", [])
    return report


def image_work(run: SwarmRun):
    """Per member: each image shipped or built on the host (deploy_images.fetch_image, as a single-host
    deploy does); images from a registry are pulled by each node when its task starts."""

    def work(target: Target, executor: Executor) -> HostResult:
        result = HostResult(target.name)
        plan: list[dict] = []
        client = engine(target, executor)
        done: set[str] = set()
        for name, source in run.sources.items():
            if source.name in done or source.how == image_sources.PULL:
                continue
            done.add(source.name)
            outcome = fetch_image(run.images, name, source, target, executor, client)
            changed = outcome.status == "changed"
            if run.check:
                plan.append({"object": outcome.label, "action": outcome.action if changed else "keep",
                             "reason": outcome.message})
            message = f"would {outcome.message}" if run.check and changed else outcome.message
            result.steps.append(StepResult(outcome.label, outcome.status, message,  # type: ignore[arg-type]
                                           outcome.seconds))
            if outcome.status == "failed":
                break
        if run.check:
            result.extra["plan"] = plan
        return result

    return work


def _manager_work(run: SwarmRun):
    def work(target: Target, executor: Executor) -> HostResult:
        import docker.errors

        from provision.workflows.host_lock import HostLock

        result = HostResult(target.name)
        stack = _Stack(run, engine(target, executor), result)
        lock = HostLock(executor, "deploy --swarm", stack=run.loaded.playbook.stack, result=result)
        if not run.check:
            lock.take()
        try:
            stack.networks()
            if not stack.failed:
                stack.services()
            if not stack.failed:
                stack.orphans()
        except docker.errors.APIError as exc:
            from provision.deploy.rollout import api_message

            result.steps.append(StepResult("swarm", "failed", f"docker: {api_message(exc)}"))
        finally:
            if not run.check:
                lock.note(playbook=str(run.loaded.playbook.path),
                          services={k: [v] for k, v in stack.summary.items()} if isinstance(stack.summary, dict) else {})
                lock.release()
        result.extra["swarm"] = {"manager": target.name, "services": stack.summary}
        if run.check:
            result.extra["plan"] = stack.plan
        return result

    return work


class _Stack:
    def __init__(self, run: SwarmRun, client, result: HostResult) -> None:
        self.run = run
        self.p = run.loaded.playbook
        self.client = client
        self.api = client.api
        self.result = result
        self.plan: list[dict] = []
        self.summary: dict[str, dict] = {}
        self.failed = False

    def step(self, name: str, action: str, reason: str, started: float | None = None, failed: bool = False) -> None:
        if self.run.check:
            self.plan.append({"object": name, "action": action, "reason": reason})
        status = "failed" if failed else "ok" if action == "keep" else "changed"
        message = f"would {reason}" if self.run.check and status == "changed" else reason
        self.result.steps.append(StepResult(name, status, message,  # type: ignore[arg-type]
                                            time.monotonic() - started if started else 0.0))
        self.failed = self.failed or failed

    def networks(self) -> None:
        for name, spec in stack_networks.needed_networks(self.p, self.p.ordered_services()):
            started = time.monotonic()
            found = [n for n in self.api.networks(names=[name]) if n.get("Name") == name]
            if found:
                attrs = found[0]
                if not stack_networks.is_ours(attrs):
                    self.step(f"network {name}", "keep", stack_networks.FOREIGN, failed=True)
                    return
                if attrs.get("Driver") != "overlay" and stack_networks.driver(spec, swarm=True) == "overlay":
                    self.step(f"network {name}", "keep", f"exists with driver {attrs.get('Driver')} (a non-swarm deploy?); "
                              "Swarm services need an overlay network: remove it or rename the playbook's network",
                              failed=True)
                    return
                self.step(f"network {name}", "keep", "exists")
                continue
            kwargs = stack_networks.create_kwargs(self.p.stack, spec, swarm=True)
            if self.run.check:
                self.step(f"network {name}", "create", f"create ({kwargs['driver']}, attachable)")
                continue
            self.client.networks.create(name, **kwargs)
            self.step(f"network {name}", "create", f"created ({kwargs['driver']}, attachable)", started)

    def _existing(self) -> dict[str, dict]:
        return {(s["Spec"].get("Labels") or {}).get(LABEL_SERVICE): s
                for s in self.api.services(filters={"label": f"{LABEL_STACK}={self.p.stack}"})}

    def services(self) -> None:
        existing = self._existing()
        refs = swarm_spec.image_refs(self.run.sources)
        self._login(refs)
        for name in self.p.ordered_services():
            started = time.monotonic()
            label = f"service {name}"
            full = swarm_spec.service_name(self.p.stack, name)
            digest = swarm_spec.swarm_hash(self.p, name, refs[name], self.run.loaded.secrets)
            current = existing.get(name)
            if current is None and any(s["Spec"]["Name"] == full for s in self.api.services(filters={"name": full})):
                self.step(label, "keep", f"service {full} exists but was not created by provision "
                          f"(no {LABEL_STACK} label); left alone", failed=True)
                return
            action, reason = swarm_spec.decide(current, digest)
            self.summary[name] = {"action": action, "name": full}
            if action == "keep" or self.run.check:
                self.step(label, action, f"{action} {full}: {reason}" if action != "keep" else reason)
                continue
            kwargs = swarm_spec.service_kwargs(self.p, name, refs[name], self.run.loaded.secrets, digest)
            if action == "create":
                service_id = self.api.create_service(**kwargs)["ID"]
            else:
                service_id = current["ID"]
                self.api.update_service(service_id, current["Version"]["Index"], **kwargs)
            self.summary[name]["id"] = service_id[:12]
            service = self.p.services[name]
            timeout = service.health_timeout_s + (service.deploy.update_config.monitor or 5.0)
            ok, message = wait_converged(self.api, service_id, service.replicas, timeout)
            self.step(label, action, f"{'created' if action == 'create' else 'updated'} {full}: {message}"
                      if ok else f"{action} {full} did not converge: {message}", started, failed=not ok)
            if not ok:
                return

    def _login(self, refs: Mapping[str, str]) -> None:
        """Registry credentials go with create/update (the manager hands them to the nodes' pulls)."""
        registry = self.p.registry
        if registry is None or self.run.check:
            return
        if any(s.how == image_sources.PULL and image_sources.pull_auth(self.p, s.name, self.run.loaded.environ)
               for s in self.run.sources.values()):
            self.client.login(registry.username, self.run.loaded.environ.get(registry.password_env, ""),
                              registry=registry.server, reauth=True)

    def orphans(self) -> None:
        for name, current in self._existing().items():
            if name in self.p.services:
                continue
            full = current["Spec"]["Name"]
            started = time.monotonic()
            if not self.run.check:
                self.api.remove_service(current["ID"])
            self.step(f"service {name}", "remove", f"remove {full} (no longer in the playbook)"
                      if self.run.check else f"removed {full} (no longer in the playbook)", started)
            self.summary[name] = {"action": "remove", "name": full}


def wait_converged(api, service_id: str, replicas: int, timeout: float, poll: float = 0.5) -> tuple[bool, str]:
    """(True, message) once `replicas` tasks run and no update is in progress; else (False, the tasks' errors)."""
    deadline = time.monotonic() + timeout
    while True:
        info = api.inspect_service(service_id)
        update = (info.get("UpdateStatus") or {}).get("State")
        tasks = api.tasks(filters={"service": service_id, "desired-state": "running"})
        running = [t for t in tasks if (t.get("Status") or {}).get("State") == "running"]
        if update in _BAD_UPDATE:
            why = (info.get("UpdateStatus") or {}).get("Message") or update
            return False, f"update {update}: {why}; {task_errors(api, service_id)}"
        if len(running) >= replicas and update in (None, "completed"):
            nodes = sorted({t.get("NodeID", "")[:12] for t in running})
            return True, f"{len(running)}/{replicas} task(s) running on {len(nodes)} node(s)"
        if time.monotonic() > deadline:
            return False, f"{len(running)}/{replicas} task(s) running after {timeout:.0f}s; {task_errors(api, service_id)}"
        time.sleep(poll)


def task_errors(api, service_id: str) -> str:
    errors: list[str] = []
    tasks = sorted(api.tasks(filters={"service": service_id}), key=lambda t: t.get("UpdatedAt", ""), reverse=True)
    for task in tasks:
        status = task.get("Status") or {}
        text = status.get("Err") or (status.get("Message") if status.get("State") in ("failed", "rejected") else "")
        if text and text not in errors:
            errors.append(text)
    return "task errors: " + "; ".join(errors[:3]) if errors else "no task error reported"
