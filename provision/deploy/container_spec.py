"""A service of a playbook as the Docker containers it wants: pure data, no I/O.

``container_specs`` gives one :class:`ContainerSpec` per replica; ``spec_hash`` fingerprints it (secrets
only as digests) so the engine can tell whether a running container is still what the playbook says;
``create_kwargs`` turns it into keyword arguments for the docker SDK's ``APIClient.create_container``.

Imports neither docker nor pydantic at module level (``provision --help`` stays fast).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.errors import InputError

if TYPE_CHECKING:
    from provision.deploy.playbook import GpuRequest, HealthcheckSpec, Mount, Playbook, PortSpec, UlimitSpec

__all__ = [
    "LABEL_HASH", "LABEL_IMAGE", "LABEL_REPLICA", "LABEL_SERVICE", "LABEL_STACK", "ContainerSpec",
    "canonical_json", "container_name", "container_specs", "create_kwargs", "extra_networks",
    "provision_labels", "spec_hash",
]

LABEL_STACK = "io.provision.stack"
LABEL_SERVICE = "io.provision.service"
LABEL_REPLICA = "io.provision.replica"
LABEL_HASH = "io.provision.spec-hash"
LABEL_IMAGE = "io.provision.image"

_NS = 1_000_000_000
_NOT_HASHED = frozenset({"replica", "local_source"})  # same config for every replica and checkout


@dataclass(frozen=True)
class ContainerSpec:
    """Everything that decides one container of a service (secrets by name only)."""

    stack: str
    service: str
    replica: int  # 1-based
    image: str  # the human name (label); the container is created from image_id
    image_id: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)  # non-secret
    secret_names: tuple[str, ...] = ()
    user: str | None = None
    working_dir: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # the user's labels
    ports: tuple[PortSpec, ...] = ()
    mounts: tuple[Mount, ...] = ()
    networks: tuple[str, ...] = ()  # real names; the first is the container's network_mode
    restart: str = "unless-stopped"
    healthcheck: HealthcheckSpec | None = None
    gpus: GpuRequest | None = None
    shm_size: int | None = None
    ulimits: Mapping[str, UlimitSpec] = field(default_factory=dict)
    cpus: float | None = None
    mem_limit: int | None = None
    stop_grace_period: float | None = None  # seconds


def container_name(stack: str, service: str, replica: int) -> str:
    return f"{stack}-{service}-{replica}"


def container_specs(playbook: Playbook, service_name: str, image_id: str) -> list[ContainerSpec]:
    """One spec per replica (1..replicas) of ``service_name``, all running ``image_id``."""
    base = service_spec(playbook, service_name, image_id)
    return [replace(base, replica=index) for index in range(1, playbook.services[service_name].replicas + 1)]


def service_spec(playbook: Playbook, service_name: str, image_id: str) -> ContainerSpec:
    """The settings every container of ``service_name`` shares (replica 1), running ``image_id``."""
    service = playbook.services[service_name]
    return ContainerSpec(
        stack=playbook.stack, service=service_name, replica=1, image=service.image or "", image_id=image_id,
        command=_tuple(service.command), entrypoint=_tuple(service.entrypoint),
        environment=service.environment_dict(playbook), secret_names=tuple(service.secrets),
        user=service.user, working_dir=service.working_dir, labels=dict(service.labels),
        ports=tuple(service.port_list()), mounts=tuple(service.mounts(playbook)),
        networks=tuple(service.networks_list(playbook)), restart=service.restart,
        healthcheck=service.healthcheck, gpus=service.gpu_request(), shm_size=service.shm_size,
        ulimits=dict(service.ulimits), cpus=service.cpus, mem_limit=service.mem_limit,
        stop_grace_period=service.stop_grace_period,
    )


def _tuple(items: list[str] | None) -> tuple[str, ...] | None:
    return None if items is None else tuple(items)


def extra_networks(spec: ContainerSpec) -> list[str]:
    """Networks to connect after create (alias: the service name); the first one is set at create."""
    return list(spec.networks[1:])


# ---------------------------------------------------------------------------
# Hash
# ---------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """JSON-able form: dataclasses and pydantic models as dicts, tuples as lists."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value) if f.name not in _NOT_HASHED}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reveal(value: Any) -> str:
    """A secret value as text (accepts plain strings and :class:`~provision.secret.Secret`)."""
    return value.reveal() if hasattr(value, "reveal") else str(value)


def canonical_json(spec: ContainerSpec, secret_values: Mapping[str, Any]) -> str:
    """What ``spec_hash`` hashes: the spec (sorted keys) plus a sha256 of each secret, never the value."""
    secrets = {name: _digest(reveal(secret_values[name])) if name in secret_values else None
               for name in spec.secret_names}
    document = {"spec": plain(spec), "secrets": secrets}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(spec: ContainerSpec, secret_values: Mapping[str, Any]) -> str:
    """12 hex chars identifying the container's configuration (replicas of a service share it)."""
    return _digest(canonical_json(spec, secret_values))[:12]


def provision_labels(spec: ContainerSpec, hash: str) -> dict[str, str]:
    return {LABEL_STACK: spec.stack, LABEL_SERVICE: spec.service, LABEL_REPLICA: str(spec.replica),
            LABEL_HASH: hash, LABEL_IMAGE: spec.image}


# ---------------------------------------------------------------------------
# docker SDK arguments
# ---------------------------------------------------------------------------


def create_kwargs(spec: ContainerSpec, api: Any, *, name: str, secret_values: Mapping[str, Any],
                  hash: str) -> dict[str, Any]:
    """Keyword arguments for ``api.create_container(**kwargs)`` (docker.APIClient, API >= 1.41).

    The only place secret values are put in: the container's environment.
    """
    first = spec.networks[0]
    return {
        "image": spec.image_id or spec.image,
        "name": name,
        "command": _list(spec.command),
        "entrypoint": _list(spec.entrypoint),
        "environment": {**spec.environment, **_secret_environment(spec, secret_values)},
        "user": spec.user,
        "working_dir": spec.working_dir,
        "labels": {**spec.labels, **provision_labels(spec, hash)},
        "ports": _exposed_ports(spec.ports),
        "healthcheck": healthcheck_config(spec.healthcheck),
        "stop_timeout": None if spec.stop_grace_period is None else math.ceil(spec.stop_grace_period),
        "detach": True,
        "host_config": api.create_host_config(**host_config_args(spec)),
        "networking_config": api.create_networking_config(
            {first: api.create_endpoint_config(aliases=[spec.service])}),
    }


def host_config_args(spec: ContainerSpec) -> dict[str, Any]:
    """Arguments for ``api.create_host_config``; only the settings the spec has."""
    from docker.types import Ulimit

    args: dict[str, Any] = {"network_mode": spec.networks[0], "restart_policy": _restart_policy(spec.restart)}
    if spec.ports:
        args["port_bindings"] = _port_bindings(spec.ports)
    if spec.mounts:
        args["mounts"] = [docker_mount(mount) for mount in spec.mounts]
    if spec.shm_size is not None:
        args["shm_size"] = spec.shm_size
    if spec.ulimits:
        args["ulimits"] = [Ulimit(name=n, soft=u.soft, hard=u.hard) for n, u in spec.ulimits.items()]
    if spec.cpus:
        args["nano_cpus"] = round(spec.cpus * _NS)
    if spec.mem_limit is not None:
        args["mem_limit"] = spec.mem_limit
    if spec.gpus is not None:
        args["device_requests"] = [_device_request(spec.gpus)]
    return args


def _list(items: tuple[str, ...] | None) -> list[str] | None:
    return None if items is None else list(items)


def _secret_environment(spec: ContainerSpec, secret_values: Mapping[str, Any]) -> dict[str, str]:
    missing = [name for name in spec.secret_names if name not in secret_values]
    if missing:
        raise InputError(f"services.{spec.service}.secrets: {missing[0]!r} is not set in the environment")
    return {name: reveal(secret_values[name]) for name in spec.secret_names}


def _exposed_ports(ports: tuple[PortSpec, ...]) -> list[tuple[int, str]]:
    return list(dict.fromkeys((port.target, port.protocol) for port in ports))


def _port_bindings(ports: tuple[PortSpec, ...]) -> dict[str, list[tuple[str, int | None]]]:
    """``{"8000/tcp": [(host_ip, published)]}``; no published port: a random one."""
    bindings: dict[str, list[tuple[str, int | None]]] = {}
    for port in ports:
        bindings.setdefault(f"{port.target}/{port.protocol}", []).append((port.host_ip or "", port.published))
    return bindings


def _restart_policy(restart: str) -> dict[str, Any]:
    policy, _, retries = restart.partition(":")
    return {"Name": policy, "MaximumRetryCount": int(retries or 0)}


def docker_mount(mount: Mount) -> Any:
    from docker.types import Mount as DockerMount

    return DockerMount(target=mount.target, source=mount.source, type=mount.kind, read_only=mount.read_only)


def _device_request(gpus: GpuRequest) -> Any:
    from docker.types import DeviceRequest

    return DeviceRequest(count=gpus.count, device_ids=list(gpus.device_ids) or None,
                         capabilities=[list(gpus.capabilities)])


def nanoseconds(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * _NS)


def healthcheck_config(health: HealthcheckSpec | None) -> Any:
    """docker.types.Healthcheck with nanosecond durations; ``["NONE"]`` when disabled."""
    if health is None:
        return None
    from docker.types import Healthcheck

    if health.disabled:
        return Healthcheck(test=["NONE"])
    return Healthcheck(test=list(health.test or []), interval=nanoseconds(health.interval),
                       timeout=nanoseconds(health.timeout), retries=health.retries,
                       start_period=nanoseconds(health.start_period))
