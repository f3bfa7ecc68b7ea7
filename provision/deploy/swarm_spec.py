"""A playbook service as a Docker Swarm service spec (pure: no connection), beside container_spec.

The container settings are the single-host ones (container_spec.service_spec); Swarm adds replicas,
placement (GPU services go to nodes labelled by `provision swarm init`), endpoint and update modes.
The spec hash covers both, so any change is a rolling `service update`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.commands.swarm import GPU_LABEL
from provision.deploy import images as image_sources
from provision.deploy.container_spec import (
    LABEL_HASH,
    LABEL_IMAGE,
    LABEL_SERVICE,
    LABEL_STACK,
    ContainerSpec,
    canonical_json,
    docker_mount,
    healthcheck_config,
    nanoseconds,
    plain,
    reveal,
)
from provision.errors import InputError

GPU_CONSTRAINT = f"node.labels.{GPU_LABEL}==true"  # GPUs under Swarm: placement, not device requests
RESTART_CONDITIONS = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}


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
    document = {"container": canonical_json(spec, secrets), "swarm": plain(swarm_settings(playbook.services[name]))}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]


# Compose keys a Swarm service cannot do as `docker compose up` does: refused under --swarm, never ignored.
SWARM_REFUSED = {
    "cap_add": "cap_add", "cap_drop": "cap_drop", "privileged": "privileged", "devices": "devices",
    "tmpfs": "tmpfs", "extra_hosts": "extra_hosts", "logging": "logging", "init": "init", "expose": "expose",
    "sysctls": "sysctls", "hostname": "hostname", "ipc": "ipc", "pid": "pid", "network_mode": "network_mode",
    "security_opt": "security_opt", "stop_signal": "stop_signal", "container_name": "container_name",
    "pids_limit": "deploy", "file_secrets": "secrets", "network_aliases": "networks",
}


def validate(playbook) -> None:
    """Swarm-only checks, before any connection (InputError, exit 4)."""
    for kind in ("networks", "volumes"):
        for key, spec in getattr(playbook, kind).items():
            if spec.external:
                raise playbook.error_at((kind, key, "external"), "not supported by provision under --swarm")
    for name, service in playbook.services.items():
        for field_name, key in SWARM_REFUSED.items():
            if getattr(service, field_name) not in (None, False, [], {}):
                raise playbook.error_at(("services", name, key),
                                        "not supported by provision under --swarm (deploy without --swarm)")
        for dependency, spec in service.dependencies.items():
            if spec.condition != "service_started":
                raise playbook.error_at(("services", name, "depends_on", dependency),
                                        f"condition {spec.condition} is not supported by provision under --swarm "
                                        "(Swarm starts services in no order)")
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


def restart_policy(restart: str):
    from docker.types import RestartPolicy

    policy, _, retries = restart.partition(":")
    return RestartPolicy(condition=RESTART_CONDITIONS[policy], max_attempts=int(retries or 0))


def published_ports(spec: ContainerSpec) -> list[dict]:
    out = []
    for port in spec.ports:
        entry = {"Protocol": port.protocol, "TargetPort": port.target, "PublishMode": port.mode}
        if port.published is not None:
            entry["PublishedPort"] = port.published
        out.append(entry)
    return out


def gpu_environment(spec: ContainerSpec) -> dict[str, str]:
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
    env = {**spec.environment, **gpu_environment(spec), **{s: reveal(secrets[s]) for s in spec.secret_names}}
    container = DockerContainerSpec(
        image=image_ref,
        command=list(spec.entrypoint) if spec.entrypoint is not None else None,  # Swarm: Command = entrypoint
        args=list(spec.command) if spec.command is not None else None,
        env=[f"{k}={v}" for k, v in env.items()] or None,
        workdir=spec.working_dir, user=spec.user,
        labels={LABEL_STACK: spec.stack, LABEL_SERVICE: spec.service, LABEL_IMAGE: spec.image},
        mounts=[docker_mount(m) for m in spec.mounts]
        or None,
        stop_grace_period=nanoseconds(spec.stop_grace_period),
        healthcheck=healthcheck_config(spec.healthcheck))
    resources = None
    if spec.cpus or spec.mem_limit is not None:
        resources = Resources(cpu_limit=nanoseconds(spec.cpus) if spec.cpus else None, mem_limit=spec.mem_limit)
    template = TaskTemplate(
        container_spec=container, resources=resources, restart_policy=restart_policy(service.swarm_restart),
        placement=Placement(constraints=swarm["constraints"]) if swarm["constraints"] else None,
        networks=[{"Target": net, "Aliases": [name]} for net in spec.networks])
    update = UpdateConfig(parallelism=1, order=swarm["update_order"], failure_action="rollback",
                          monitor=nanoseconds(swarm["monitor"]))
    return {
        "task_template": template,
        "name": service_name(playbook.stack, name),
        "labels": {**spec.labels, LABEL_STACK: spec.stack, LABEL_SERVICE: spec.service, LABEL_HASH: digest,
                   LABEL_IMAGE: spec.image},
        "mode": ServiceMode("replicated", replicas=swarm["replicas"]),
        "update_config": update,
        "endpoint_spec": EndpointSpec(mode=swarm["endpoint_mode"], ports=published_ports(spec) or None),
    }


def decide(current: dict | None, digest: str) -> tuple[str, str]:
    """(action, reason) for one service; `current` is the engine's service object or None."""
    if current is None:
        return "create", "not in the swarm yet"
    have = ((current.get("Spec") or {}).get("Labels") or {}).get(LABEL_HASH)
    if have == digest:
        return "keep", f"unchanged (spec {digest})"
    return "update", f"spec changed ({have} → {digest}): rolling update"


def image_refs(sources: Mapping[str, image_sources.ImageSource]) -> dict[str, str]:
    """What each service's tasks run: the image ID of a shipped image (never pulled), else the name."""
    return {name: (s.local_id if s.how == image_sources.SHIP and s.local_id else s.name) for name, s in sources.items()}
