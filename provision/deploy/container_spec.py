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
    from provision.deploy.stack.models import FileSecret

__all__ = [
    "LABEL_HASH", "LABEL_IMAGE", "LABEL_REPLICA", "LABEL_SERVICE", "LABEL_STACK", "ContainerSpec",
    "SECRETS_ROOT", "canonical_json", "container_name", "container_specs", "create_kwargs", "extra_networks",
    "network_aliases", "provision_labels", "secrets_folder", "spec_container_name", "spec_hash",
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
    # Compose keys (added later: left out of the hash while at their default, so older containers keep)
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # network → extra aliases
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    devices: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    log_driver: str | None = None
    log_options: Mapping[str, str] = field(default_factory=dict)
    init: bool | None = None
    expose: tuple[str, ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    hostname: str | None = None
    ipc: str | None = None
    pid: str | None = None
    network_mode: str | None = None  # host, none, container:NAME (service:X resolved)
    security_opt: tuple[str, ...] = ()
    stop_signal: str | None = None
    container_name: str | None = None
    pids_limit: int | None = None
    file_secrets: tuple[FileSecret, ...] = ()  # mounted from secrets_dir (values never here)
    secrets_dir: str | None = None  # the host's tmpfs folder of this service's Compose secrets
    secrets_version: str | None = None  # changes when a secret's value changed (set by the deploy)


_LATER_FIELDS = ("aliases", "cap_add", "cap_drop", "privileged", "devices", "tmpfs", "extra_hosts", "log_driver",
                 "log_options", "init", "expose", "sysctls", "hostname", "ipc", "pid", "network_mode",
                 "security_opt", "stop_signal", "container_name", "pids_limit", "file_secrets", "secrets_dir",
                 "secrets_version", "tmpfs_size", "tmpfs_mode", "create_host_path", "driver")


SECRETS_ROOT = "/run/provision/secrets"  # a tmpfs on the host (/run)



def capabilities(names) -> tuple[str, ...]:
    """Capabilities as the docker CLI and Compose send them: upper case, `CAP_`-prefixed (`ALL` stays)."""
    out = []
    for name in names:
        name = str(name).strip().upper()
        out.append(name if name == "ALL" or name.startswith("CAP_") else f"CAP_{name}")
    return tuple(out)

def container_name(stack: str, service: str, replica: int) -> str:
    return f"{stack}-{service}-{replica}"


def spec_container_name(spec: ContainerSpec) -> str:
    """The container's name: Compose's ``container_name`` when set, else ``STACK-SERVICE-REPLICA``."""
    return spec.container_name or container_name(spec.stack, spec.service, spec.replica)


def secrets_folder(stack: str, service: str) -> str:
    """The host's tmpfs folder holding a service's Compose secrets (one file per secret)."""
    return f"{SECRETS_ROOT}/{stack}/{service}"


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
        aliases={net: tuple(a for a in names if a != service_name)
                 for net, names in service.aliases(playbook).items() if len(names) > 1},
        cap_add=capabilities(service.cap_add), cap_drop=capabilities(service.cap_drop), privileged=service.privileged,
        devices=tuple(service.devices), tmpfs=tuple(service.tmpfs), extra_hosts=tuple(service.extra_hosts),
        log_driver=service.logging.driver if service.logging else None,
        log_options=dict(service.logging.options) if service.logging else {},
        init=service.init, expose=tuple(service.expose), sysctls=dict(service.sysctls), hostname=service.hostname,
        ipc=_service_mode(playbook, service.ipc), pid=_service_mode(playbook, service.pid),
        network_mode=_service_mode(playbook, service.network_mode), security_opt=tuple(service.security_opt),
        stop_signal=service.stop_signal, container_name=service.container_name, pids_limit=service.pids_limit,
        file_secrets=tuple(service.file_secrets),
        secrets_dir=secrets_folder(playbook.stack, service_name) if service.file_secrets else None,
    )


def _service_mode(playbook: Playbook, mode: str | None) -> str | None:
    """``service:NAME`` (Compose) → ``container:<NAME's first container>``; other modes as they are."""
    if mode is None or not mode.startswith("service:"):
        return mode
    other = mode.partition(":")[2]
    spec = playbook.services.get(other)
    name = spec.container_name if spec is not None and spec.container_name else container_name(playbook.stack,
                                                                                                 other, 1)
    return f"container:{name}"


def _tuple(items: list[str] | None) -> tuple[str, ...] | None:
    return None if items is None else tuple(items)


def extra_networks(spec: ContainerSpec) -> list[str]:
    """Networks to connect after create (aliases: :func:`network_aliases`); the first one is set at create."""
    return list(spec.networks[1:])


def network_aliases(spec: ContainerSpec, network: str) -> list[str]:
    """The container's aliases on ``network``: the service name (as Compose does), then the listed ones."""
    return [spec.service, *spec.aliases.get(network, ())]


# ---------------------------------------------------------------------------
# Hash
# ---------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """JSON-able form: dataclasses and pydantic models as dicts, tuples as lists."""
    if hasattr(value, "model_dump"):
        dumped = value.model_dump(mode="json")
        if "start_interval" in dumped and dumped["start_interval"] is None:  # added later: unset keeps the hash
            del dumped["start_interval"]
        return dumped
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value) if f.name not in _NOT_HASHED
                and not (f.name in _LATER_FIELDS and _at_default(value, f))}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _at_default(value: Any, f: Any) -> bool:
    from dataclasses import MISSING

    default = f.default_factory() if f.default_factory is not MISSING else f.default
    return getattr(value, f.name) == default


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

    The only place secret values of the old format are put in: the container's environment (Compose
    secrets are files on the host's tmpfs, bind-mounted read-only; their values are never here).
    """
    exposed = _exposed_ports(spec.ports) + [e for e in _expose(spec.expose) if e not in _exposed_ports(spec.ports)]
    networking = None
    if spec.networks:
        first = spec.networks[0]
        networking = api.create_networking_config(
            {first: api.create_endpoint_config(aliases=[spec.service, *spec.aliases.get(first, ())])})
    kwargs = {
        "image": spec.image_id or spec.image,
        "name": name,
        "command": _list(spec.command),
        "entrypoint": _list(spec.entrypoint),
        "environment": {**spec.environment, **_secret_environment(spec, secret_values)},
        "user": spec.user,
        "working_dir": spec.working_dir,
        "labels": {**spec.labels, **provision_labels(spec, hash)},
        "ports": exposed,
        "healthcheck": healthcheck_config(spec.healthcheck),
        "stop_timeout": None if spec.stop_grace_period is None else math.ceil(spec.stop_grace_period),
        "detach": True,
        "host_config": api.create_host_config(**host_config_args(spec)),
        "networking_config": networking,
    }
    if spec.hostname is not None:
        kwargs["hostname"] = spec.hostname
    if spec.stop_signal is not None:
        kwargs["stop_signal"] = spec.stop_signal
    return kwargs


def _expose(entries: tuple[str, ...]) -> list[tuple[int, str]]:
    """``expose:`` entries (``8080``, ``8080/udp``, ``8000-8002``) as (port, protocol) pairs."""
    result: list[tuple[int, str]] = []
    for entry in entries:
        ports, _, protocol = str(entry).partition("/")
        low, _, high = ports.partition("-")
        for port in range(int(low), int(high or low) + 1):
            result.append((port, protocol or "tcp"))
    return result


def host_config_args(spec: ContainerSpec) -> dict[str, Any]:
    """Arguments for ``api.create_host_config``; only the settings the spec has."""
    from docker.types import Ulimit

    network_mode = spec.network_mode or (spec.networks[0] if spec.networks else None)
    args: dict[str, Any] = {"network_mode": network_mode, "restart_policy": _restart_policy(spec.restart)}
    if spec.ports:
        args["port_bindings"] = _port_bindings(spec.ports)
    mounts = [docker_mount(mount) for mount in spec.mounts] + _secret_mounts(spec)
    if mounts:
        args["mounts"] = mounts
    for key, value in (("cap_add", list(spec.cap_add)), ("cap_drop", list(spec.cap_drop)),
                       ("devices", list(spec.devices)), ("extra_hosts", list(spec.extra_hosts)),
                       ("security_opt", list(spec.security_opt)), ("sysctls", dict(spec.sysctls))):
        if value:
            args[key] = value
    if spec.tmpfs:
        args["tmpfs"] = dict(_tmpfs_entry(entry) for entry in spec.tmpfs)
    if spec.privileged:
        args["privileged"] = True
    if spec.init is not None:
        args["init"] = spec.init
    if spec.ipc is not None:
        args["ipc_mode"] = spec.ipc
    if spec.pid is not None:
        args["pid_mode"] = spec.pid
    if spec.pids_limit is not None:
        args["pids_limit"] = spec.pids_limit
    if spec.log_driver is not None or spec.log_options:
        from docker.types import LogConfig

        args["log_config"] = LogConfig(type=spec.log_driver or "", config=dict(spec.log_options))
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


def _tmpfs_entry(entry: str) -> tuple[str, str]:
    path, _, options = entry.partition(":")
    return path, options


def _secret_mounts(spec: ContainerSpec) -> list[Any]:
    """Each Compose secret: its file in the host's tmpfs folder, read-only at its target."""
    from docker.types import Mount as DockerMount

    if not spec.file_secrets or spec.secrets_dir is None:
        return []
    return [DockerMount(target=secret.target, source=f"{spec.secrets_dir}/{secret.source}", type="bind",
                        read_only=True) for secret in spec.file_secrets]


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

    if mount.kind == "tmpfs":
        return DockerMount(target=mount.target, source=None, type="tmpfs", read_only=mount.read_only,
                           tmpfs_size=mount.tmpfs_size, tmpfs_mode=mount.tmpfs_mode)
    return DockerMount(target=mount.target, source=mount.source, type=mount.kind, read_only=mount.read_only)


def _device_request(gpus: GpuRequest) -> Any:
    from docker.types import DeviceRequest

    return DeviceRequest(driver=gpus.driver or "", count=gpus.count, device_ids=list(gpus.device_ids) or None,
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
    check = Healthcheck(test=list(health.test or []), interval=nanoseconds(health.interval),
                        timeout=nanoseconds(health.timeout), retries=health.retries,
                        start_period=nanoseconds(health.start_period))
    if health.start_interval is not None:
        check["StartInterval"] = nanoseconds(health.start_interval)
    return check
