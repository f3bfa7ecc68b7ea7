"""Deploy playbooks (``playbooks/*.yml``): load, validate, and normalize (see docs/playbook.md).

``load_playbook(path)`` parses the YAML with line numbers, validates it with the pydantic models
below, then runs the named cross-checks. Any problem is ONE :class:`InputError` rendered as
``FILE:LINE: PATH: problem`` (exit 4), e.g. ``ml.yml:14: services.app.ports[0]: invalid port '80:x'``.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError,
                      field_validator, model_validator)

from provision.config.image_ref import check_image_reference
from provision.config.input_file import check_text, decode_utf8, read_input
from provision.config.positioned_yaml import (PositionLoader, YamlLimitError, YamlMapping, YamlSequence, type_name,
                                              yaml_error_parts)
from provision.errors import InputError
from provision.executor.secret import Secret

__all__ = [
    "BuildSpec", "DeploySpec", "GpuRequest", "GpuSpec", "HealthcheckSpec", "Mount", "NetworkSpec",
    "PlacementSpec", "Playbook", "PortSpec", "RegistrySpec", "Service", "UlimitSpec", "UpdateConfig",
    "VolumeSpec", "load_playbook", "parse_duration", "parse_size", "read_env_file",
]

STACK_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # services, network and volume keys
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_REPLICAS = 1000

DEFAULT_HEALTH_TIMEOUT_S = 60.0


# ---------------------------------------------------------------------------
# Scalar parsers (durations, sizes, ports, volumes, text)
# ---------------------------------------------------------------------------

_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_duration(value: Any) -> float:
    """Seconds from ``"5s"``, ``"1m30s"``, ``"500ms"``, ``"2h"`` or a number of seconds."""
    if _is_number(value) and value >= 0:
        return float(value)
    text = value.strip() if isinstance(value, str) else ""
    if text and _DURATION_PART.sub("", text) == "":
        return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    raise ValueError(f"invalid duration {value!r} (e.g. 5s, 1m30s, 500ms, or seconds)")


def parse_size(value: Any) -> int:
    """Bytes from ``"512m"``, ``"2g"``, ``"1024k"``, ``"100b"`` or an int."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"invalid size {value!r} (e.g. 512m, 2g, 1024k, 100b, or bytes)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _text(value: Any) -> Any:
    """YAML scalars as strings (``true`` → ``"true"``, ``8`` → ``"8"``); other types left to pydantic."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return str(value)
    return value


def _env_text(value: Any) -> Any:
    return "" if value is None else _text(value)


def _parse_port_number(text: str) -> int | None:
    number = int(text) if text.isdigit() else 0
    return number if 1 <= number <= 65535 else None


def _parse_short_port(value: str | int) -> dict[str, Any]:
    """``"8000"``, ``"8000:80"``, ``"127.0.0.1:8000:80"``, ``"127.0.0.1::80"``, ``".../udp"``."""
    spec, _, protocol = str(value).strip().partition("/")
    parts = spec.rsplit(":", 2)
    host_ip = _ip(parts[0]) if len(parts) == 3 else None
    published = parts[-2] if len(parts) >= 2 else None
    target = _parse_port_number(parts[-1])
    published_port = _parse_port_number(published) if published else None
    valid_ip = len(parts) < 3 or host_ip is not None
    valid_published = published is None or published_port is not None or (published == "" and len(parts) == 3)
    if target is None or protocol not in ("", "tcp", "udp") or not valid_ip or not valid_published:
        raise ValueError(f"invalid port {value!r}")
    return {"target": target, "published": published_port, "protocol": protocol or "tcp", "host_ip": host_ip}


def _ip(text: str) -> str | None:
    """An IPv4/IPv6 address (brackets stripped), or None."""
    try:
        return str(ipaddress.ip_address(text.removeprefix("[").removesuffix("]")))
    except ValueError:
        return None


def _is_relative_path(source: str) -> bool:
    return source in (".", "..") or source.startswith(("./", "../"))


def _split_volume(text: str) -> tuple[str, str, bool]:
    """(source, target, read_only) of ``SOURCE:TARGET[:ro|rw]``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/") \
            or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise ValueError(f"invalid volume {text!r} (expected SOURCE:TARGET[:ro|rw] with an absolute TARGET)")
    return parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"


def _volume_entry(value: Any) -> Any:
    if isinstance(value, str):
        _split_volume(value)
    return value


def _key_values(value: Any, what: str) -> Any:
    """A ``["K=V", "K"]`` list as a dict (``K`` alone → empty value); dicts pass through."""
    if not isinstance(value, list):
        return {} if value is None else value
    result: dict[str, str] = {}
    for item in value:
        if not isinstance(item, str) or not item or item.startswith("="):
            raise ValueError(f"invalid {what} entry {item!r} (expected KEY=VALUE)")
        key, _, val = item.partition("=")
        result[key] = val
    return result


def _as_list(value: Any) -> Any:
    """``None`` → ``[]``; a single string → ``[string]``."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _command(value: Any) -> Any:
    """A string command split like a shell; lists as they are."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command {value!r}: {exc}") from None
    if isinstance(value, list):
        return [_text(item) for item in value]
    return value


def _host_pattern(value: Any) -> Any:
    """An Ansible host pattern: not empty (that would not mean "all"), brackets closed."""
    if value is None or not isinstance(value, str):
        return value
    from provision.config.patterns import split_host_pattern
    from provision.errors import PatternError

    try:
        parts = split_host_pattern(value)
    except PatternError as exc:
        raise ValueError(str(exc)) from None
    if not parts or any(part in ("&", "!") for part in parts):
        raise ValueError(f"empty host pattern {value!r} (use 'all' to mean every host)")
    return value


HostPattern = Annotated[str, BeforeValidator(_host_pattern)]


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Text = Annotated[str, BeforeValidator(_text)]
EnvValue = Annotated[str, BeforeValidator(_env_text)]
VolumeEntry = Annotated[str, BeforeValidator(_volume_entry)]
TextMap = Annotated[dict[str, Text], BeforeValidator(lambda v: _key_values(v, "label"))]


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkSpec(_Model):
    name: str | None = None
    driver: str | None = None  # None: bridge (overlay under --swarm)
    attachable: bool = False
    internal: bool = False
    labels: TextMap = Field(default_factory=dict)
    driver_opts: dict[str, Text] = Field(default_factory=dict)


class VolumeSpec(_Model):
    name: str | None = None
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
            return _parse_short_port(value)
        return value


class HealthcheckSpec(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    test: list[str] | None = None  # None: the image's own test
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: int | None = Field(None, ge=0)
    start_period: Duration | None = None
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
    update_config: Annotated[UpdateConfig, BeforeValidator(_none_as_empty)] = Field(default_factory=UpdateConfig)
    endpoint_mode: Literal["vip", "dnsrr"] = "vip"
    placement: Annotated[PlacementSpec, BeforeValidator(_none_as_empty)] = Field(default_factory=PlacementSpec)


@dataclass(frozen=True)
class Mount:
    """One mount of a service: a volume (real name) or a bind (absolute remote path)."""

    kind: Literal["volume", "bind"]
    source: str
    target: str
    read_only: bool = False
    local_source: Path | None = None  # relative binds: the folder next to the playbook (may not exist)


@dataclass(frozen=True)
class GpuRequest:
    count: int  # -1: all; 0 with device_ids
    device_ids: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=lambda: ["gpu"])


_RESTART_RE = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?")


class Service(_Model):
    image: str | None = None  # filled with <stack>-<service> when only `build` is given
    build: BuildSpec | None = None
    build_on: Literal["local", "remote"] = "local"
    command: Annotated[list[str] | None, BeforeValidator(_command)] = None
    entrypoint: Annotated[list[str] | None, BeforeValidator(_command)] = None
    environment: Annotated[dict[str, EnvValue], BeforeValidator(lambda v: _key_values(v, "environment"))] = \
        Field(default_factory=dict)
    env_file: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    secrets: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    networks: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    volumes: Annotated[list[VolumeEntry], BeforeValidator(_as_list)] = Field(default_factory=list)
    ports: Annotated[list[PortSpec], BeforeValidator(_as_list)] = Field(default_factory=list)
    gpus: GpuSpec | None = None
    restart: str = "unless-stopped"
    healthcheck: HealthcheckSpec | None = None
    depends_on: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    hosts: HostPattern | None = None
    labels: TextMap = Field(default_factory=dict)
    user: Annotated[str | None, BeforeValidator(_text)] = None
    working_dir: str | None = None
    shm_size: Size | None = None
    ulimits: dict[str, UlimitSpec] = Field(default_factory=dict)
    cpus: float | None = Field(None, gt=0)
    mem_limit: Size | None = None
    stop_grace_period: Duration | None = None
    deploy: Annotated[DeploySpec, BeforeValidator(_none_as_empty)] = Field(default_factory=DeploySpec)

    _name: str = PrivateAttr("")

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
        return GpuRequest(count, list(self.gpus.device_ids), list(self.gpus.capabilities))

    def networks_list(self, playbook: Playbook) -> list[str]:
        """Real network names; the stack's default network when none is listed."""
        return [playbook.network_name(key) for key in self.networks] or [playbook.default_network]

    def environment_dict(self, playbook: Playbook) -> dict[str, str]:
        """env_file(s) (relative to the playbook), then ``environment`` on top; secrets are not here."""
        result: dict[str, str] = {}
        for name in self.env_file:
            result.update(read_env_file(playbook.base_dir / name))
        result.update(self.environment)
        return result

    def mounts(self, playbook: Playbook) -> list[Mount]:
        return [_mount(entry, playbook) for entry in self.volumes]


def _mount(entry: str, playbook: Playbook) -> Mount:
    source, target, read_only = _split_volume(entry)
    if source.startswith("/"):
        return Mount("bind", source, target, read_only)
    if _is_relative_path(source):
        remote = posixpath.normpath(posixpath.join(playbook.remote_dir, source))
        local = Path(os.path.normpath(playbook.base_dir / source))
        return Mount("bind", remote, target, read_only, local)
    return Mount("volume", playbook.volume_name(source), target, read_only)


class Playbook(_Model):
    stack: str
    hosts: HostPattern = "all"
    remote_dir: str | None = None  # filled with /srv/provision/<stack>
    networks: dict[str, Annotated[NetworkSpec, BeforeValidator(_none_as_empty)]] = Field(default_factory=dict)
    volumes: dict[str, Annotated[VolumeSpec, BeforeValidator(_none_as_empty)]] = Field(default_factory=dict)
    registry: RegistrySpec | None = None
    services: dict[str, Service]

    _path: Path = PrivateAttr(default_factory=lambda: Path("playbook.yml"))

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
        return _none_as_empty(value)

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

    @property
    def base_dir(self) -> Path:
        return self._path.parent

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
            ready = next((n for n in pending if set(self.services[n].depends_on) <= set(done)), pending[0])
            done.append(ready)
            pending.remove(ready)
        return done

    def secret_values(self, environ: Mapping[str, str] | None = None) -> dict[str, Secret]:
        """The services' secrets that are set in ``environ`` (default os.environ), wrapped."""
        environ = os.environ if environ is None else environ
        names = [s for service in self.services.values() for s in service.secrets]
        return {name: Secret(environ[name]) for name in dict.fromkeys(names) if name in environ}


# ---------------------------------------------------------------------------
# env files
# ---------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` allowed, ``#`` comments and blank lines skipped, quotes stripped)."""
    data = read_input(path, "env file")
    check_text(data, path, "env file")
    lines = decode_utf8(data, path, "env file").splitlines()
    result: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not key or any(c.isspace() for c in key):
            raise InputError("invalid line (expected KEY=VALUE)", file=path, line=number)
        result[key] = _unquote(value.strip())
    return result


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# ---------------------------------------------------------------------------
# Loading: YAML with positions, pydantic errors as one line
# ---------------------------------------------------------------------------

Loc = tuple[Any, ...]


class _Loader(PositionLoader):
    """The inventory's position-recording loader, plus the line of every sequence item."""

    def construct_positioned_seq(self, node: yaml.SequenceNode):  # type: ignore[no-untyped-def]
        data = YamlSequence()
        data.line = node.start_mark.line + 1
        data.item_lines = [item.start_mark.line + 1 for item in node.value]
        yield data
        data.extend(self.construct_sequence(node))

    def construct_vault(self, node: yaml.Node):  # type: ignore[no-untyped-def]
        raise YamlLimitError(None, None, f"an ansible-vault encrypted value ({node.tag}): provision cannot decrypt it "
                             "(pass secrets through the service's secrets: from the environment)", node.start_mark)


_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_positioned_seq)
_Loader.add_constructor("!vault", _Loader.construct_vault)
_Loader.add_constructor("!vault-encrypted", _Loader.construct_vault)


def _read_yaml(path: Path) -> Any:
    data = read_input(path, "playbook")
    check_text(data, path, "playbook")
    text = decode_utf8(data, path, "playbook")
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        message, line = yaml_error_parts(exc, text)
        raise InputError(message, file=path, line=line) from None


def _line_at(raw: Any, loc: Loc) -> int | None:
    """The line of the deepest node of ``loc`` found in the loaded YAML."""
    line = getattr(raw, "line", None)
    node = raw
    for part in loc:
        if isinstance(node, YamlMapping) and part in node:
            line, node = node.line_of(part), node[part]
        elif isinstance(node, YamlSequence) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.item_lines[part], node[part]
        else:
            break
    return line


def _dotted(loc: Loc) -> str:
    """``("services", "app", "ports", 0)`` → ``services.app.ports[0]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _located(message: str, loc: Loc, raw: Any, path: Path, *, line_loc: Loc | None = None) -> InputError:
    """``PATH: message`` at the line of ``line_loc`` (default ``loc``) in the loaded YAML."""
    prefix = f"{_dotted(loc)}: " if loc else ""
    line = _line_at(raw, loc if line_loc is None else line_loc)
    return InputError(prefix + message, file=path, line=line or 1)


_TYPE_WORDS = {"model_type": "a mapping", "dict_type": "a mapping", "list_type": "a list",
               "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
               "int_from_float": "an integer", "float_type": "a number", "float_parsing": "a number",
               "bool_type": "true or false", "bool_parsing": "true or false"}


def _pydantic_error(exc: ValidationError, raw: Any, path: Path) -> InputError:
    """The first validation problem as one ``FILE:LINE: PATH: problem`` line."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "["))))
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return _located(f"unknown key '{loc[-1]}'", loc[:-1], raw, path, line_loc=loc)
    if kind == "missing":
        return _located(f"missing required key '{loc[-1]}'", loc[:-1], raw, path)
    if kind in _TYPE_WORDS:
        got = "null" if value is None else f"{type_name(value)} {_short_repr(value)}"
        return _located(f"expected {_TYPE_WORDS[kind]}, got {got}", loc, raw, path)
    message = error["msg"].removeprefix("Value error, ")
    if kind not in ("value_error", "assertion_error"):
        message = f"{message[0].lower()}{message[1:]}, got {_short_repr(value)}"
    return _located(message, loc, raw, path)


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_playbook(path: str | Path, *, environ: Mapping[str, str] | None = None,
                  require_secrets: bool = True, require_build_contexts: bool = False) -> Playbook:
    """Read and validate a playbook; one InputError (``FILE:LINE: PATH: problem``) on the first problem.

    Secrets and ``registry.password_env`` are checked against ``environ`` (default os.environ) only
    when ``require_secrets`` (deploy needs them, ops commands do not); build contexts (and their
    Dockerfiles) must exist when ``require_build_contexts`` (deploy, --check included).
    """
    path = Path(path)
    raw = _read_yaml(path)
    if raw is None:
        raise InputError("the playbook is empty", file=path, line=1)
    if not isinstance(raw, dict):
        raise InputError(f"a playbook must be a mapping, got {type_name(raw)}", file=path,
                         line=getattr(raw, "line", None) or 1)
    data = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(exc, raw, path) from None
    playbook._path = path
    _CrossChecks(playbook, raw, os.environ if environ is None else environ, require_secrets,
                 require_build_contexts).run()
    return playbook


# ---------------------------------------------------------------------------
# Cross-checks (second pass, named in docs/playbook.md)
# ---------------------------------------------------------------------------


class _CrossChecks:
    def __init__(self, playbook: Playbook, raw: Any, environ: Mapping[str, str], require_secrets: bool,
                 require_build_contexts: bool = False) -> None:
        self.p = playbook
        self.raw = raw
        self.environ = environ
        self.require_secrets = require_secrets
        self.require_build_contexts = require_build_contexts

    def fail(self, loc: Loc, message: str) -> InputError:
        return _located(message, loc, self.raw, self.p.path)

    def run(self) -> None:
        self.names()
        for name, service in self.p.services.items():
            base = ("services", name)
            self.networks(base, service)
            self.volumes(base, service)
            self.depends_on(base, service)
            self.secrets(base, service)
            self.ports(base, service)
            self.build(base, service)
            self.env_files(base, service)
        self.cycles()
        self.registry()

    def names(self) -> None:
        for section in ("networks", "volumes", "services"):
            for key in getattr(self.p, section):
                if not NAME_RE.fullmatch(key):
                    raise self.fail((section, key), f"invalid name {key!r} (letters, digits, '_', '.' and '-')")

    def networks(self, base: Loc, service: Service) -> None:
        for index, key in enumerate(service.networks):
            if key not in self.p.networks and key != "default":
                raise self.fail((*base, "networks", index),
                                f"undeclared network {key!r} (declare it under networks:)")

    def volumes(self, base: Loc, service: Service) -> None:
        for index, entry in enumerate(service.volumes):
            source = _split_volume(entry)[0]
            if not source.startswith("/") and not _is_relative_path(source) and source not in self.p.volumes:
                raise self.fail((*base, "volumes", index),
                                f"undeclared volume {source!r} (declare it under volumes:)")

    def depends_on(self, base: Loc, service: Service) -> None:
        for index, name in enumerate(service.depends_on):
            if name not in self.p.services:
                raise self.fail((*base, "depends_on", index), f"unknown service {name!r}")

    def secrets(self, base: Loc, service: Service) -> None:
        for index, name in enumerate(service.secrets):
            loc = (*base, "secrets", index)
            if not ENV_NAME_RE.fullmatch(name):
                raise self.fail(loc, f"invalid secret name {name!r} (must be an environment variable name)")
            if self.require_secrets and name not in self.environ:
                raise self.fail(loc, f"secret {name!r} is not set in the environment")

    def ports(self, base: Loc, service: Service) -> None:
        published = service.published_ports()
        if not published:
            return
        index = service.ports.index(published[0])
        if service.replicas > 1:
            raise self.fail((*base, "ports", index),
                            f"published port {published[0].published} would collide between "
                            f"{service.replicas} replicas (drop the published port or use replicas: 1)")
        if service.deploy.update_config.order == "start-first":
            raise self.fail((*base, "deploy", "update_config", "order"),
                            f"start-first cannot be used with published port {published[0].published} "
                            "(the new container could not bind it; use stop-first)")

    def build(self, base: Loc, service: Service) -> None:
        if service.build_on == "remote" and service.build is None:
            raise self.fail((*base, "build_on"), "build_on: remote needs 'build'")
        if service.build is None or not self.require_build_contexts:
            return
        context = service.build.context
        if "://" in context or context.startswith("git@"):
            return  # a remote context: the engine fetches it
        short = isinstance(_raw_get(self.raw, (*base, "build")), str)
        loc = (*base, "build") if short else (*base, "build", "context")
        folder = self.p.base_dir / context
        if not folder.exists():
            raise self.fail(loc, f"build context {context!r} not found (relative to the playbook)")
        if not folder.is_dir():
            raise self.fail(loc, f"build context {context!r} is not a folder")
        dockerfile = service.build.dockerfile
        if dockerfile and "://" not in dockerfile and not (folder / dockerfile).is_file():
            raise self.fail((*base, "build", "dockerfile"),
                            f"dockerfile {dockerfile!r} not found (relative to the build context)")

    def env_files(self, base: Loc, service: Service) -> None:
        written_as_list = isinstance(_raw_get(self.raw, (*base, "env_file")), list)
        for index, name in enumerate(service.env_file):
            env_path = self.p.base_dir / name
            loc = (*base, "env_file", index) if written_as_list else (*base, "env_file")
            if not env_path.exists():
                raise self.fail(loc, f"env file {name!r} not found (relative to the playbook)")
            try:
                read_env_file(env_path)
            except InputError as exc:
                if exc.line is None:  # the file as a whole (a directory, a pipe, too large): at the playbook's line
                    raise self.fail(loc, f"env file {name!r}: {exc.message}") from None
                raise

    def cycles(self) -> None:
        state: dict[str, str] = {}

        def visit(name: str, trail: list[str]) -> None:
            state[name] = "open"
            for dep in self.p.services[name].depends_on:
                if state.get(dep) == "open":
                    cycle = [*trail[trail.index(dep):], dep]
                    raise self.fail(("services", dep, "depends_on"), f"dependency cycle {' -> '.join(cycle)}")
                if dep not in state:
                    visit(dep, [*trail, dep])
            state[name] = "done"

        for name in self.p.services:
            if name not in state:
                visit(name, [name])

    def registry(self) -> None:
        registry = self.p.registry
        if registry is None:
            return
        loc = ("registry", "password_env")
        if not ENV_NAME_RE.fullmatch(registry.password_env):
            raise self.fail(loc, f"invalid environment variable name {registry.password_env!r}")
        if self.require_secrets and registry.password_env not in self.environ:
            raise self.fail(loc, f"environment variable {registry.password_env!r} is not set")


def _raw_get(raw: Any, loc: Loc) -> Any:
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node
