"""The stack's models: services, networks, volumes, registry (pydantic), plus the normalized views
the deploy engine uses (mounts, GPU requests, real network/volume names, dependency order).

They validate plain Python data; where that data came from (which file, which line) is the
loader's business (:mod:`provision.deploy.stack.load`).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from provision.config.image_ref import check_image_reference
from provision.deploy.stack.env_file import read_env_file
from provision.deploy.stack.scalars import (Duration, EnvValue, HostPattern, Size, Text, TextMap, VolumeEntry, as_list,
                                            as_text, is_relative_path, key_values, none_as_empty, parse_short_port,
                                            split_command, split_volume)
from provision.secret import Secret

__all__ = [
    "DEFAULT_HEALTH_TIMEOUT_S", "DEPENDENCY_CONDITIONS", "MAX_REPLICAS", "STACK_RE", "BuildSpec", "DependencySpec",
    "DeploySpec", "FileSecret", "GpuRequest", "GpuSpec", "HealthcheckSpec", "LoggingSpec", "Mount", "MountSpec",
    "NetworkSpec", "PlacementSpec", "Playbook", "PortSpec", "RegistrySpec", "SecretSource", "Service", "UlimitSpec",
    "UpdateConfig", "VolumeSpec",
]

STACK_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
MAX_REPLICAS = 1000

DEFAULT_HEALTH_TIMEOUT_S = 60.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkSpec(_Model):
    name: str | None = None
    external: bool = False  # Compose: it must exist on the host; provision never creates nor labels it
    driver: str | None = None  # None: bridge (overlay under --swarm)
    attachable: bool = False
    internal: bool = False
    labels: TextMap = Field(default_factory=dict)
    driver_opts: dict[str, Text] = Field(default_factory=dict)


class VolumeSpec(_Model):
    name: str | None = None
    external: bool = False  # Compose: it must exist on the host; provision never creates it
    driver: str = "local"
    driver_opts: dict[str, Text] = Field(default_factory=dict)
    labels: TextMap = Field(default_factory=dict)


class RegistrySpec(_Model):
    server: str = "docker.io"
    username: str
    password_env: str

    def password(self, environ: Mapping[str, str] | None = None) -> Secret:
        """The password from the operator's environment (empty when unset)."""
        return Secret((os.environ if environ is None else environ).get(self.password_env, ""))


class BuildSpec(_Model):
    context: str
    dockerfile: str | None = None
    args: dict[str, EnvValue] = Field(default_factory=dict)
    target: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"context": value} if isinstance(value, str) else value


class PortSpec(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target: int = Field(ge=1, le=65535)
    published: int | None = Field(None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str | None = None
    mode: Literal["ingress", "host"] = "ingress"

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return parse_short_port(value)
        return value


class HealthcheckSpec(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    test: list[str] | None = None  # None: the image's own test
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: int | None = Field(None, ge=0)
    start_period: Duration | None = None
    start_interval: Duration | None = None
    disable: bool = False

    @field_validator("test", mode="before")
    @classmethod
    def _test(cls, value: Any) -> Any:
        if isinstance(value, str):
            return ["CMD-SHELL", value]
        if isinstance(value, list) and (not value or value[0] not in ("NONE", "CMD", "CMD-SHELL")):
            raise ValueError(f"test must start with CMD, CMD-SHELL or NONE, got {value!r}")
        return value

    @property
    def disabled(self) -> bool:
        return self.disable or self.test == ["NONE"]


class GpuSpec(_Model):
    count: int | None = None  # -1: all
    driver: str | None = None  # Compose's device request driver (nvidia); None: the engine picks
    device_ids: list[Text] = Field(default_factory=list)
    capabilities: list[str] = Field(default_factory=lambda: ["gpu"])

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if value == "all":
            return {"count": -1}
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return {"count": value}
        if isinstance(value, list) and value:
            return {"device_ids": value}
        if isinstance(value, dict):
            return _gpu_mapping(value)
        raise ValueError(f"invalid gpus {value!r} (all, a count >= 1, a list of device ids, or a mapping)")


def _gpu_mapping(value: dict) -> dict:
    value = dict(value)
    count = value.get("count")
    if count == "all":
        value["count"] = -1
    elif count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"invalid gpus count {count!r} (all or an int >= 1)")
    if count is not None and value.get("device_ids") is not None:
        raise ValueError("gpus: set count or device_ids, not both")
    if value.get("device_ids") == []:
        raise ValueError("gpus: device_ids is empty")
    if count is None and value.get("device_ids") is None:
        value["count"] = -1  # Compose: neither means all GPUs
    return value


class UlimitSpec(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    soft: int
    hard: int

    @model_validator(mode="before")
    @classmethod
    def _single(cls, value: Any) -> Any:
        return {"soft": value, "hard": value} if isinstance(value, int) and not isinstance(value, bool) else value


class UpdateConfig(_Model):
    order: Literal["start-first", "stop-first"] | None = None
    monitor: Duration | None = None


class PlacementSpec(_Model):
    constraints: list[str] = Field(default_factory=list)


class DeploySpec(_Model):
    replicas: int = Field(1, ge=0, le=MAX_REPLICAS)
    update_config: Annotated[UpdateConfig, BeforeValidator(none_as_empty)] = Field(default_factory=UpdateConfig)
    endpoint_mode: Literal["vip", "dnsrr"] = "vip"
    placement: Annotated[PlacementSpec, BeforeValidator(none_as_empty)] = Field(default_factory=PlacementSpec)


DEPENDENCY_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


class DependencySpec(_Model):
    """The long form of one ``depends_on`` entry (Compose): what to wait for before starting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = "service_started"
    restart: bool = False
    required: bool = True


class LoggingSpec(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: str | None = None  # None: the engine's default driver
    options: dict[str, Text] = Field(default_factory=dict)


class MountSpec(_Model):
    """The long form of a volume entry (Compose): volume, bind or tmpfs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["volume", "bind", "tmpfs"]
    source: str | None = None
    target: str
    read_only: bool = False
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None
    create_host_path: bool = False  # a bind's missing host folder is created (Compose's default)

    @model_validator(mode="after")
    def _source(self) -> MountSpec:
        if not self.target.startswith("/"):
            raise ValueError(f"invalid mount target {self.target!r} (an absolute path)")
        if self.type != "tmpfs" and not self.source:
            raise ValueError(f"an anonymous {self.type} is not supported by provision (name it under volumes:)")
        return self


class FileSecret(_Model):
    """A Compose secret of a service: mounted read-only at ``/run/secrets/<target>``, never in the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str  # the key under the top-level secrets:
    target: str  # an absolute path in the container
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o400


class SecretSource(_Model):
    """A top-level Compose secret: its value comes from a local file or an operator's variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = None
    environment: str | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretSource:
        if (self.file is None) == (self.environment is None):
            raise ValueError("a secret needs exactly one of file: or environment:")
        return self

    def value(self, environ: Mapping[str, str]) -> Secret | None:
        """The value (wrapped), or None when the variable is unset or the file unreadable."""
        if self.environment is not None:
            return Secret(environ[self.environment]) if self.environment in environ else None
        try:
            return Secret(Path(self.file or "").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class Mount:
    """One mount of a service: a volume (real name), a bind (absolute remote path) or a tmpfs."""

    kind: Literal["volume", "bind", "tmpfs"]
    source: str
    target: str
    read_only: bool = False
    local_source: Path | None = None  # relative binds: the folder next to the playbook (may not exist)
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None
    create_host_path: bool = False  # an absolute bind: create the host folder when missing (Compose)


@dataclass(frozen=True)
class GpuRequest:
    count: int  # -1: all; 0 with device_ids
    device_ids: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=lambda: ["gpu"])
    driver: str | None = None


_RESTART_RE = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?")


class Service(_Model):
    image: str | None = None  # filled with <stack>-<service> when only `build` is given
    build: BuildSpec | None = None
    build_on: Literal["local", "remote"] = "local"
    command: Annotated[list[str] | None, BeforeValidator(split_command)] = None
    entrypoint: Annotated[list[str] | None, BeforeValidator(split_command)] = None
    environment: Annotated[dict[str, EnvValue], BeforeValidator(lambda v: key_values(v, "environment"))] = \
        Field(default_factory=dict)
    env_file: Annotated[list[str], BeforeValidator(as_list)] = Field(default_factory=list)
    secrets: Annotated[list[str], BeforeValidator(as_list)] = Field(default_factory=list)
    networks: Annotated[list[str], BeforeValidator(as_list)] = Field(default_factory=list)
    volumes: Annotated[list[VolumeEntry | MountSpec], BeforeValidator(as_list)] = Field(default_factory=list)
    ports: Annotated[list[PortSpec], BeforeValidator(as_list)] = Field(default_factory=list)
    gpus: GpuSpec | None = None
    restart: str = "unless-stopped"
    healthcheck: HealthcheckSpec | None = None
    depends_on: Annotated[list[str], BeforeValidator(as_list)] = Field(default_factory=list)
    hosts: HostPattern | None = None
    labels: TextMap = Field(default_factory=dict)
    user: Annotated[str | None, BeforeValidator(as_text)] = None
    working_dir: str | None = None
    shm_size: Size | None = None
    ulimits: dict[str, UlimitSpec] = Field(default_factory=dict)
    cpus: float | None = Field(None, gt=0)
    mem_limit: Size | None = None
    stop_grace_period: Duration | None = None
    deploy: Annotated[DeploySpec, BeforeValidator(none_as_empty)] = Field(default_factory=DeploySpec)
    # Compose keys (the old format accepts them too; see docs/compose.md)
    dependencies: dict[str, DependencySpec] = Field(default_factory=dict)  # depends_on's long form
    network_aliases: dict[str, list[str]] = Field(default_factory=dict)  # network key → extra aliases
    file_secrets: list[FileSecret] = Field(default_factory=list)  # Compose secrets, at /run/secrets/...
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    privileged: bool = False
    devices: list[str] = Field(default_factory=list)  # SOURCE:TARGET[:PERMISSIONS]
    tmpfs: list[str] = Field(default_factory=list)  # PATH[:OPTIONS]
    extra_hosts: list[str] = Field(default_factory=list)  # HOST:IP (IP may be host-gateway)
    logging: LoggingSpec | None = None
    init: bool | None = None
    expose: list[Text] = Field(default_factory=list)  # PORT[/PROTO] or a range
    sysctls: TextMap = Field(default_factory=dict)
    hostname: str | None = None
    ipc: str | None = None
    pid: str | None = None
    network_mode: str | None = None
    security_opt: list[str] = Field(default_factory=list)
    stop_signal: str | None = None
    container_name: str | None = None
    pids_limit: int | None = None

    _name: str = PrivateAttr("")
    _restart_default: bool = PrivateAttr(False)  # a Compose service without restart: (Compose's "no")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else check_image_reference(value)

    @field_validator("restart")
    @classmethod
    def _restart(cls, value: str) -> str:
        if not _RESTART_RE.fullmatch(value):
            raise ValueError(f"invalid restart policy {value!r} (no, always, unless-stopped, on-failure[:N])")
        return value

    @model_validator(mode="after")
    def _image_or_build(self) -> Service:
        if self.image is None and self.build is None:
            raise ValueError("needs 'image' or 'build'")
        return self

    @property
    def name(self) -> str:
        return self._name

    @property
    def swarm_restart(self) -> str:
        """The restart policy of Swarm tasks: ``restart``, or "always" for a Compose service without one
        (``docker stack deploy`` ignores ``restart:`` and restarts tasks by default)."""
        return "always" if self._restart_default else self.restart

    def mark_restart_default(self) -> None:
        self._restart_default = True

    @property
    def replicas(self) -> int:
        return self.deploy.replicas

    @property
    def rollout_order(self) -> str:
        """``update_config.order``; by default stop-first when a host port is fixed, else start-first."""
        if self.deploy.update_config.order:
            return self.deploy.update_config.order
        return "stop-first" if self.published_ports() else "start-first"

    @property
    def health_timeout_s(self) -> float:
        monitor = self.deploy.update_config.monitor
        return DEFAULT_HEALTH_TIMEOUT_S if monitor is None else monitor

    def published_ports(self) -> list[PortSpec]:
        return [port for port in self.ports if port.published is not None]

    def port_list(self) -> list[PortSpec]:
        return list(self.ports)

    def gpu_request(self) -> GpuRequest | None:
        if self.gpus is None:
            return None
        count = 0 if self.gpus.device_ids else (self.gpus.count or 0)
        return GpuRequest(count, list(self.gpus.device_ids), list(self.gpus.capabilities), self.gpus.driver)

    def networks_list(self, playbook: Playbook) -> list[str]:
        """Real network names; the stack's default network when none is listed; none with network_mode."""
        if self.network_mode is not None:
            return []
        return [playbook.network_name(key) for key in self.networks] or [playbook.default_network]

    def aliases(self, playbook: Playbook) -> dict[str, list[str]]:
        """Real network name → the container's aliases there: the service name, then the listed ones."""
        keys = list(self.networks) or ["default"]
        return {playbook.network_name(key): list(dict.fromkeys([self.name, *self.network_aliases.get(key, [])]))
                for key in keys} if self.network_mode is None else {}

    def condition(self, dependency: str) -> str:
        spec = self.dependencies.get(dependency)
        return spec.condition if spec is not None else "service_started"

    def environment_dict(self, playbook: Playbook) -> dict[str, str]:
        """env_file(s) (relative to the playbook), then ``environment`` on top; secrets are not here."""
        result: dict[str, str] = {}
        for name in self.env_file:
            result.update(read_env_file(playbook.base_dir / name))
        result.update(self.environment)
        return result

    def mounts(self, playbook: Playbook) -> list[Mount]:
        return [_mount(entry, playbook) for entry in self.volumes]


def _mount(entry: str | MountSpec, playbook: Playbook) -> Mount:
    if isinstance(entry, MountSpec):
        if entry.type == "tmpfs":
            return Mount("tmpfs", "", entry.target, entry.read_only, None, entry.tmpfs_size, entry.tmpfs_mode)
        if entry.type == "volume":
            return Mount("volume", playbook.volume_name(entry.source or ""), entry.target, entry.read_only)
        source, target, read_only = entry.source or "", entry.target, entry.read_only
        if source.startswith("/") and playbook.source_dir is not None:
            local = Path(source)
            if local.is_relative_to(playbook.source_dir):  # Compose resolved ./x next to the file: synced
                relative = local.relative_to(playbook.source_dir).as_posix()
                remote = posixpath.normpath(posixpath.join(playbook.remote_dir, relative))
                return Mount("bind", remote, target, read_only, local)
        if source.startswith("/"):
            return Mount("bind", source, target, read_only, None, create_host_path=entry.create_host_path)
        source = "./" + source if not is_relative_path(source) else source
        entry = f"{source}:{target}" + (":ro" if read_only else "")
    source, target, read_only = split_volume(entry)
    if source.startswith("/"):
        return Mount("bind", source, target, read_only)
    if is_relative_path(source):
        remote = posixpath.normpath(posixpath.join(playbook.remote_dir, source))
        local = Path(os.path.normpath(playbook.base_dir / source))
        return Mount("bind", remote, target, read_only, local)
    return Mount("volume", playbook.volume_name(source), target, read_only)


class Playbook(_Model):
    stack: str
    hosts: HostPattern = "all"
    remote_dir: str | None = None  # filled with /srv/provision/<stack>
    networks: dict[str, Annotated[NetworkSpec, BeforeValidator(none_as_empty)]] = Field(default_factory=dict)
    volumes: dict[str, Annotated[VolumeSpec, BeforeValidator(none_as_empty)]] = Field(default_factory=dict)
    registry: RegistrySpec | None = None
    services: dict[str, Service]
    secret_sources: dict[str, SecretSource] = Field(default_factory=dict)  # Compose's top-level secrets:

    _path: Path = PrivateAttr(default_factory=lambda: Path("playbook.yml"))
    _warnings: list[str] = PrivateAttr(default_factory=list)
    _source_dir: Path | None = PrivateAttr(None)
    _locate: Any = PrivateAttr(None)

    @field_validator("stack")
    @classmethod
    def _stack(cls, value: str) -> str:
        if not STACK_RE.fullmatch(value):
            raise ValueError(f"invalid stack name {value!r} (lowercase letters, digits, '_' and '-', "
                             "starting with a letter or digit)")
        return value

    @field_validator("remote_dir")
    @classmethod
    def _remote_dir(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must be an absolute path, got {value!r}")
        return value

    @field_validator("networks", "volumes", "services", mode="before")
    @classmethod
    def _empty_mapping(cls, value: Any) -> Any:
        return none_as_empty(value)

    @field_validator("services")
    @classmethod
    def _some_services(cls, value: dict[str, Service]) -> dict[str, Service]:
        if not value:
            raise ValueError("no services defined (at least one is required)")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Playbook:
        if self.remote_dir is None:
            self.remote_dir = f"/srv/provision/{self.stack}"
        for key, service in self.services.items():
            service._name = key
            if service.image is None:
                service.image = f"{self.stack}-{key}".lower()
        return self

    @property
    def path(self) -> Path:
        return self._path

    def set_path(self, path: Path) -> None:
        """Record the file the stack was read from (``base_dir``: where relative paths start)."""
        self._path = path

    @property
    def base_dir(self) -> Path:
        return self._path.parent if self._source_dir is None else self._source_dir

    @property
    def warnings(self) -> list[str]:
        """Deprecations and Compose's own warnings (obsolete version, unset variables), for stderr."""
        return self._warnings

    @property
    def source_dir(self) -> Path | None:
        """A Compose project's working directory (absolute binds under it are synced); None: old format."""
        return self._source_dir

    def set_source_dir(self, folder: Path) -> None:
        self._source_dir = folder

    def set_locator(self, locate: Any) -> None:
        """``(loc, message) -> InputError`` at the key's FILE:LINE (set by the loader)."""
        self._locate = locate

    def error_at(self, loc: tuple[Any, ...], message: str) -> Exception:
        """An InputError for the key at ``loc`` (``("services", "app", "cap_add")``): FILE:LINE when known."""
        if self._locate is not None:
            return self._locate(loc, message)
        from provision.deploy.stack.located import dotted
        from provision.errors import InputError

        return InputError(f"{dotted(loc)}: {message}", file=self._path)

    @property
    def default_network(self) -> str:
        return self.network_name("default")

    def network_name(self, key: str) -> str:
        spec = self.networks.get(key)
        return spec.name if spec is not None and spec.name else f"{self.stack}_{key}"

    def volume_name(self, key: str) -> str:
        spec = self.volumes.get(key)
        return spec.name if spec is not None and spec.name else f"{self.stack}_{key}"

    def service_hosts(self, service: Service | str) -> str:
        """The inventory pattern a service runs on: its own ``hosts`` or the playbook's."""
        if isinstance(service, str):
            service = self.services[service]
        return service.hosts or self.hosts

    def ordered_services(self) -> list[str]:
        """Service names, dependencies first; ties in file order."""
        done: list[str] = []
        pending = list(self.services)
        while pending:
            ready = next((n for n in pending if set(self.services[n].depends_on) & set(self.services) <= set(done)),
                         pending[0])
            done.append(ready)
            pending.remove(ready)
        return done

    def file_secret_values(self, environ: Mapping[str, str] | None = None) -> dict[str, Secret]:
        """Compose secrets used by a service whose value is available (file read, variable set), wrapped."""
        environ = os.environ if environ is None else environ
        names = {s.source for service in self.services.values() for s in service.file_secrets}
        values = {name: self.secret_sources[name].value(environ) for name in sorted(names)
                  if name in self.secret_sources}
        return {name: value for name, value in values.items() if value is not None}

    def secret_values(self, environ: Mapping[str, str] | None = None) -> dict[str, Secret]:
        """The services' secrets that are set in ``environ`` (default os.environ), wrapped."""
        environ = os.environ if environ is None else environ
        names = [s for service in self.services.values() for s in service.secrets]
        return {name: Secret(environ[name]) for name in dict.fromkeys(names) if name in environ}
