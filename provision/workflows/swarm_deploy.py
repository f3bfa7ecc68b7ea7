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
`--check` computes the same plan (create/update/keep/remove with the reason) and changes nothing.

Endpoint mode (`deploy.endpoint_mode`) and publish mode (a long port's `mode`) default to Docker's
own (vip, ingress); `dnsrr` and `mode: host` serve kernels without IPVS.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision.commands.swarm import GPU_LABEL
from provision.deploy import images as image_sources
from provision.deploy.container_spec import (
    LABEL_HASH,
    LABEL_IMAGE,
    LABEL_SERVICE,
    LABEL_STACK,
    ContainerSpec,
    _healthcheck,
    _plain,
    _reveal,
    canonical_json,
)
from provision.errors import InputError
from provision.executor.base import Executor
from provision.report import HostResult, Report, StepResult
from provision.workflows.fanout import RunOptions, _Silent, fan_out, run_on_host
from provision.workflows.targets import Target

GPU_CONSTRAINT = f"node.labels.{GPU_LABEL}==true"
_NS = 1_000_000_000
_RESTART = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}
_BAD_UPDATE = ("paused", "rollback_started", "rollback_paused", "rollback_completed")
# GPUs under Swarm: placement on nodes labelled by `provision swarm init` (services have no device requests)


# -- pure translation --------------------------------------------------------------------------------
def service_name(stack: str, service: str) -> str:
    return f"{stack}_{service}"


def base_spec(playbook, name: str, image_ref: str) -> ContainerSpec:
    """The service's container settings (as for a single host), replica 1, running `image_ref`."""
    from provision.deploy.container_spec import service_spec

    return service_spec(playbook, name, image_ref)


def swarm_settings(service) -> dict[str, Any]:
    """The settings only Swarm has (hashed along with the container settings)."""
    deploy = service.deploy
    constraints = list(deploy.placement.constraints)
    if service.gpus is not None and GPU_CONSTRAINT not in constraints:
        constraints.append(GPU_CONSTRAINT)
    return {"replicas": deploy.replicas, "endpoint_mode": deploy.endpoint_mode, "constraints": constraints,
            "update_order": deploy.update_config.order or "stop-first", "monitor": deploy.update_config.monitor}


def swarm_hash(playbook, name: str, image_ref: str, secrets: Mapping[str, Any]) -> str:
    """12 hex chars: the container settings (secrets as digests) plus the Swarm settings."""
    import hashlib
    import json

    spec = base_spec(playbook, name, image_ref)
    document = {"container": canonical_json(spec, secrets), "swarm": _plain(swarm_settings(playbook.services[name]))}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]


def validate(playbook) -> None:
    """Swarm-only checks, before any connection (InputError, exit 4)."""
    for name, service in playbook.services.items():
        for mount in service.mounts(playbook):
            if mount.kind == "bind" and mount.local_source is not None:
                raise InputError(f"services.{name}.volumes: the relative bind {mount.local_source.name!r} would "
                                 "need a copy on every node, which --swarm does not sync: use a named volume "
                                 "or an absolute path that exists on the nodes", file=playbook.path)
        if service.deploy.endpoint_mode == "dnsrr":
            for port in service.ports:
                if port.published is not None and port.mode == "ingress":
                    raise InputError(f"services.{name}.ports: port {port.published} is published in ingress mode, "
                                     "which endpoint_mode dnsrr cannot serve: use the long syntax with `mode: host`",
                                     file=playbook.path)


def _restart_policy(restart: str):
    from docker.types import RestartPolicy

    policy, _, retries = restart.partition(":")
    return RestartPolicy(condition=_RESTART[policy], max_attempts=int(retries or 0))


def _ports(spec: ContainerSpec) -> list[dict]:
    out = []
    for port in spec.ports:
        entry = {"Protocol": port.protocol, "TargetPort": port.target, "PublishMode": port.mode}
        if port.published is not None:
            entry["PublishedPort"] = port.published
        out.append(entry)
    return out


def _gpu_env(spec: ContainerSpec) -> dict[str, str]:
    if spec.gpus is None:
        return {}
    devices = ",".join(spec.gpus.device_ids) if spec.gpus.device_ids else "all"
    return {"NVIDIA_VISIBLE_DEVICES": devices}


def service_kwargs(playbook, name: str, image_ref: str, secrets: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """Keyword arguments for `APIClient.create_service` (and `update_service`): the whole spec.

    The only place secret values are put in: the tasks' environment."""
    from docker.types import ContainerSpec as DockerContainerSpec
    from docker.types import (
        EndpointSpec,
        Mount,
        Placement,
        Resources,
        ServiceMode,
        TaskTemplate,
        UpdateConfig,
    )

    service = playbook.services[name]
    spec = base_spec(playbook, name, image_ref)
    swarm = swarm_settings(service)
    missing = [s for s in spec.secret_names if s not in secrets]
    if missing:
        raise InputError(f"services.{name}.secrets: {missing[0]!r} is not set in the environment")
    env = {**spec.environment, **_gpu_env(spec), **{s: _reveal(secrets[s]) for s in spec.secret_names}}
    container = DockerContainerSpec(
        image=image_ref,
        command=list(spec.entrypoint) if spec.entrypoint is not None else None,  # Swarm: Command = entrypoint
        args=list(spec.command) if spec.command is not None else None,
        env=[f"{k}={v}" for k, v in env.items()] or None,
        workdir=spec.working_dir, user=spec.user,
        labels={LABEL_STACK: spec.stack, LABEL_SERVICE: spec.service, LABEL_IMAGE: spec.image},
        mounts=[Mount(target=m.target, source=m.source, type=m.kind, read_only=m.read_only) for m in spec.mounts]
        or None,
        stop_grace_period=None if spec.stop_grace_period is None else round(spec.stop_grace_period * _NS),
        healthcheck=_healthcheck(spec.healthcheck))
    resources = None
    if spec.cpus or spec.mem_limit is not None:
        resources = Resources(cpu_limit=round(spec.cpus * _NS) if spec.cpus else None, mem_limit=spec.mem_limit)
    template = TaskTemplate(
        container_spec=container, resources=resources, restart_policy=_restart_policy(spec.restart),
        placement=Placement(constraints=swarm["constraints"]) if swarm["constraints"] else None,
        networks=[{"Target": net, "Aliases": [name]} for net in spec.networks])
    update = UpdateConfig(parallelism=1, order=swarm["update_order"], failure_action="rollback",
                          monitor=None if swarm["monitor"] is None else round(swarm["monitor"] * _NS))
    return {
        "task_template": template,
        "name": service_name(playbook.stack, name),
        "labels": {**spec.labels, LABEL_STACK: spec.stack, LABEL_SERVICE: spec.service, LABEL_HASH: digest,
                   LABEL_IMAGE: spec.image},
        "mode": ServiceMode("replicated", replicas=swarm["replicas"]),
        "update_config": update,
        "endpoint_spec": EndpointSpec(mode=swarm["endpoint_mode"], ports=_ports(spec) or None),
    }


def needed_networks(playbook) -> list[tuple[str, Any]]:
    """(real name, NetworkSpec or None) of every network a service uses, in first-use order."""
    out: dict[str, Any] = {}
    for name in playbook.ordered_services():
        for key in playbook.services[name].networks or ["default"]:
            real = playbook.network_name(key) if key != "default" or key in playbook.networks else playbook.default_network
            out.setdefault(real, playbook.networks.get(key))
    return list(out.items())


def decide(current: dict | None, digest: str) -> tuple[str, str]:
    """(action, reason) for one service; `current` is the engine's service object or None."""
    if current is None:
        return "create", "not in the swarm yet"
    have = ((current.get("Spec") or {}).get("Labels") or {}).get(LABEL_HASH)
    if have == digest:
        return "keep", f"unchanged (spec {digest})"
    return "update", f"spec changed ({have} → {digest}): rolling update"


# -- before any connection -------------------------------------------------------------------------
@dataclass
class Loaded:
    playbook: Any
    hosts: list[Target]  # the selected swarm members: images go to each
    manager: Target
    secrets: dict[str, str]
    environ: Mapping[str, str]


def load(playbook_path: str | Path, inventory_path: str | Path, limit: str | None, *,
         environ: Mapping[str, str] | None = None) -> Loaded:
    from provision.workflows import deploy as single
    from provision.workflows import swarm

    environ = os.environ if environ is None else environ
    playbook, _, _ = single.load(playbook_path, inventory_path, limit, environ=environ)
    validate(playbook)
    members = [t for t in swarm.load_swarm_targets(inventory_path, limit) if swarm.role_of(t)]
    manager = swarm.manager_target(members)
    return Loaded(playbook, members, manager, single.read_secrets(playbook, environ), environ)


# -- running it -------------------------------------------------------------------------------------
@dataclass
class _Run:
    loaded: Loaded
    check: bool
    sources: dict[str, image_sources.ImageSource]
    registry_port: int | None = None
    staged: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda line: None


def deploy_swarm(loaded: Loaded, options: RunOptions, *, log: Callable[[str], None] = lambda line: None) -> Report:
    sources = image_sources.sources(loaded.playbook, check=options.check)
    run = _Run(loaded, options.check, sources, log=log)
    from provision.workflows.deploy import staged_images

    with staged_images(sources, options.check) as (run.registry_port, run.staged):
        report = fan_out("deploy", loaded.hosts, _image_work(run), options)
    manager = loaded.manager.name
    first = report.hosts[manager]
    broken = [n for n, r in report.hosts.items() if r.status in ("failed", "unreachable")]
    if broken:
        first.steps.append(StepResult("services", "failed", f"not deployed: images are missing on "
                                      f"{', '.join(broken)} (a task placed there could not start)"))
        return report
    result = run_on_host(loaded.manager, _manager_work(run), replace(options, progress=_Silent()))
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


def _client(target: Target, executor: Executor):
    from provision.workflows.deploy import engine

    return engine(target, executor)


def image_refs(sources: Mapping[str, image_sources.ImageSource]) -> dict[str, str]:
    """What each service's tasks run: the image ID of a shipped image (never pulled), else the name."""
    return {name: (s.local_id if s.how == image_sources.SHIP and s.local_id else s.name) for name, s in sources.items()}


def _image_work(run: _Run):
    def work(target: Target, executor: Executor) -> HostResult:
        result = HostResult(target.name)
        plan: list[dict] = []
        client = _client(target, executor)
        done: set[str] = set()
        for name, source in run.sources.items():
            if source.name in done or source.how == image_sources.PULL:
                continue  # pulled by each node when its task starts
            done.add(source.name)
            started = time.monotonic()
            label = f"image {source.name}"
            if source.how == image_sources.BUILD_REMOTE:
                if run.check:
                    plan.append({"object": label, "action": "build", "reason": "build on the host"})
                    result.steps.append(StepResult(label, "changed", "would build on the host"))
                    continue
                image, _ = client.images.build(**image_sources.build_context(run.loaded.playbook,
                                                                             run.loaded.playbook.services[name]))
                result.steps.append(StepResult(label, "changed", f"built on the host ({image.short_id})",
                                               time.monotonic() - started))
                continue
            transport = executor.ssh_transport()  # None: the local engine, which has the image already
            if run.check or transport is None:
                present = image_sources.local_image_id(client, source.name) == source.local_id and source.local_id
                if present or transport is None:
                    plan.append({"object": label, "action": "keep", "reason": "present on the host"})
                    result.steps.append(StepResult(label, "ok", "present on the host"))
                else:
                    plan.append({"object": label, "action": "ship", "reason": f"ship from this machine ({source.note})"})
                    result.steps.append(StepResult(label, "changed", f"would ship from this machine ({source.note})"))
                continue
            from provision.deploy import shipping

            shipped = shipping.ship(transport, client, run.staged[source.name],
                                    run.registry_port)
            if shipped.skipped:
                result.steps.append(StepResult(label, "ok", "present on the host (nothing sent)",
                                               time.monotonic() - started))
            else:
                result.steps.append(StepResult(label, "changed", f"shipped: {shipping.human_bytes(shipped.bytes_sent)} "
                                               "sent (only the layers the host lacked)", time.monotonic() - started))
        if run.check:
            result.extra["plan"] = plan
        return result

    return work


def _manager_work(run: _Run):
    def work(target: Target, executor: Executor) -> HostResult:
        import docker.errors

        from provision.workflows.host_lock import HostLock

        result = HostResult(target.name)
        stack = _Stack(run, _client(target, executor), result)
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
    def __init__(self, run: _Run, client, result: HostResult) -> None:
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
        for name, spec in needed_networks(self.p):
            started = time.monotonic()
            found = [n for n in self.api.networks(names=[name]) if n.get("Name") == name]
            if found:
                attrs = found[0]
                if LABEL_STACK not in (attrs.get("Labels") or {}):
                    self.step(f"network {name}", "keep", f"exists but was not created by provision (no {LABEL_STACK} "
                              "label); give the playbook's network another `name:`", failed=True)
                    return
                if attrs.get("Driver") != "overlay" and (getattr(spec, "driver", None) or "overlay") == "overlay":
                    self.step(f"network {name}", "keep", f"exists with driver {attrs.get('Driver')} (a non-swarm deploy?); "
                              "Swarm services need an overlay network: remove it or rename the playbook's network",
                              failed=True)
                    return
                self.step(f"network {name}", "keep", "exists")
                continue
            driver = getattr(spec, "driver", None) or "overlay"
            if self.run.check:
                self.step(f"network {name}", "create", f"create ({driver}, attachable)")
                continue
            self.client.networks.create(name, driver=driver, attachable=True, scope="swarm",
                                        internal=bool(getattr(spec, "internal", False)),
                                        labels={LABEL_STACK: self.p.stack, **(getattr(spec, "labels", None) or {})},
                                        options=getattr(spec, "driver_opts", None) or None)
            self.step(f"network {name}", "create", f"created ({driver}, attachable)", started)

    def _existing(self) -> dict[str, dict]:
        return {(s["Spec"].get("Labels") or {}).get(LABEL_SERVICE): s
                for s in self.api.services(filters={"label": f"{LABEL_STACK}={self.p.stack}"})}

    def services(self) -> None:
        existing = self._existing()
        refs = image_refs(self.run.sources)
        self._login(refs)
        for name in self.p.ordered_services():
            started = time.monotonic()
            label = f"service {name}"
            full = service_name(self.p.stack, name)
            digest = swarm_hash(self.p, name, refs[name], self.run.loaded.secrets)
            current = existing.get(name)
            if current is None and any(s["Spec"]["Name"] == full for s in self.api.services(filters={"name": full})):
                self.step(label, "keep", f"service {full} exists but was not created by provision "
                          f"(no {LABEL_STACK} label); left alone", failed=True)
                return
            action, reason = decide(current, digest)
            self.summary[name] = {"action": action, "name": full}
            if action == "keep" or self.run.check:
                self.step(label, action, f"{action} {full}: {reason}" if action != "keep" else reason)
                continue
            kwargs = service_kwargs(self.p, name, refs[name], self.run.loaded.secrets, digest)
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
