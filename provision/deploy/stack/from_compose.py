"""A loaded Compose project (:mod:`provision.compose`) as the stack models (:class:`Playbook`), so a Compose
file and the old format share one set of cross-checks and one deploy path.

provision's own settings come from the ``x-provision`` extension fields, which Compose ignores:

- top level: ``hosts`` (inventory pattern, default ``all``), ``registry`` {server, username,
  password_env}, ``remote_dir``, ``rollout`` {order, monitor} (defaults for every service);
- per service: ``hosts``, ``build_on`` (local | remote), ``rollout`` {order, monitor},
  ``swarm`` {endpoint_mode, constraints} (``deploy --swarm`` only).

Unknown keys under ``x-provision`` are refused. Every problem is one InputError at
``FILE:LINE`` (the key's line when the file has it, else the service's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from provision.compose import ComposeProject
from provision.deploy.stack.located import dotted, short_repr
from provision.deploy.stack.models import Playbook
from provision.deploy.stack.scalars import parse_duration
from provision.deploy.stack.yaml_source import line_at, read_stack_yaml
from provision.errors import InputError

__all__ = ["SERVICE_KEYS", "TOP_LEVEL_KEYS", "from_compose", "locator"]

TOP_LEVEL_KEYS = {"hosts": None, "registry": {"server", "username", "password_env"}, "remote_dir": None,
                  "rollout": {"order", "monitor"}}
SERVICE_KEYS = {"hosts": None, "build_on": None, "rollout": {"order", "monitor"},
                "swarm": {"endpoint_mode", "constraints"}}

_CARRIED = ("image", "user", "working_dir", "hostname", "ipc", "pid", "network_mode", "stop_signal",
            "container_name", "cap_add", "cap_drop", "security_opt", "tmpfs", "sysctls", "labels", "init",
            "command", "entrypoint", "expose")
_RESTART_DEFAULT = "no"  # Compose's default (the old format's is unless-stopped)


class _Where:
    """Lines of keys in the project's files (read again with positions; the loader keeps only origins)."""

    def __init__(self, project: ComposeProject) -> None:
        self.project = project
        self._trees: dict[Path, Any] = {}

    def tree(self, file: Path) -> Any:
        if file not in self._trees:
            try:
                self._trees[file] = read_stack_yaml(file)
            except InputError:
                self._trees[file] = None
        return self._trees[file]

    def fail(self, loc: tuple[Any, ...], message: str) -> InputError:
        """``FILE:LINE: a.b.c: message``: the key's own line when found, else its service's."""
        file, line = self.locate(loc)
        return InputError(f"{dotted(loc)}: {message}" if loc else message, file=file, line=line)

    def locate(self, loc: tuple[Any, ...]) -> tuple[Path | None, int | None]:
        files = list(self.project.files)
        origin = self.project.origins.get(loc[1]) if len(loc) > 1 and loc[0] == "services" else None
        if origin is not None:
            files = [origin.file, *[f for f in reversed(files) if f != origin.file]]
        else:
            files = list(reversed(files))
        best: tuple[Path | None, int | None, int] = (files[0] if files else None, None, -1)
        for file in files:
            tree = self.tree(file)
            if tree is None:
                continue
            depth = _depth(tree, loc)
            if depth > best[2]:
                best = (file, line_at(tree, loc[:depth]) if depth else None, depth)
        if best[1] is None and origin is not None:
            return origin.file, origin.line
        return best[0], best[1]


def locator(project: ComposeProject) -> Callable[[tuple[Any, ...], str], InputError]:
    """``(loc, message)`` → the InputError at that key's FILE:LINE in the project's files."""
    return _Where(project).fail


def _depth(tree: Any, loc: tuple[Any, ...]) -> int:
    node, depth = tree, 0
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        depth += 1
    return depth


def from_compose(project: ComposeProject) -> Playbook:
    """The project as a :class:`Playbook` (its path: the first file; its stack: the project name)."""
    where = _Where(project)
    top = _extension(where, ("x-provision",), project.extensions.get("x-provision"), TOP_LEVEL_KEYS)
    rollout_defaults = top.get("rollout") or {}
    services = {name: _service(where, name, spec, rollout_defaults, project)
                for name, spec in project.services.items()}
    data: dict[str, Any] = {
        "stack": project.name,
        "services": services,
        "networks": {key: _network(value) for key, value in project.networks.items()},
        "volumes": {key: _volume(value) for key, value in project.volumes.items()},
        "secret_sources": {key: _secret_source(value) for key, value in project.secrets.items()},
    }
    for key in ("hosts", "remote_dir", "registry"):
        if top.get(key) is not None:
            data[key] = top[key]
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(where, exc, project) from None
    for name, spec in project.services.items():
        if not spec.get("restart"):
            playbook.services[name].mark_restart_default()
    playbook.set_path(project.files[0] if project.files else project.working_dir / "compose.yaml")
    playbook.set_source_dir(project.working_dir)
    playbook.warnings.extend(project.warnings)
    return playbook


def _extension(where: _Where, loc: tuple[Any, ...], value: Any, allowed: Mapping[str, Any]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.fail(loc, f"expected a mapping, got {short_repr(value)}")
    for key, sub in value.items():
        if key not in allowed:
            raise where.fail((*loc, key), f"unknown key (x-provision knows {', '.join(sorted(allowed))})")
        keys = allowed[key]
        if keys is not None:
            if not isinstance(sub, dict):
                raise where.fail((*loc, key), f"expected a mapping, got {short_repr(sub)}")
            for inner in sub:
                if inner not in keys:
                    raise where.fail((*loc, key, inner), f"unknown key (expected one of {', '.join(sorted(keys))})")
    return dict(value)


def _network(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": value.get("name")}
    for key in ("driver", "labels", "internal", "attachable", "driver_opts", "external"):
        if value.get(key) is not None:
            out[key] = value[key]
    return out


def _volume(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": value.get("name")}
    for key in ("driver", "labels", "driver_opts", "external"):
        if value.get(key) is not None:
            out[key] = value[key]
    return out


def _secret_source(value: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value[key] for key in ("file", "environment") if value.get(key) is not None}


def _service(where: _Where, name: str, spec: Mapping[str, Any], rollout_defaults: Mapping[str, Any],
             project: ComposeProject) -> dict[str, Any]:
    base = ("services", name)
    ext = _extension(where, (*base, "x-provision"), spec.get("x-provision"), SERVICE_KEYS)
    out: dict[str, Any] = {key: spec[key] for key in _CARRIED if spec.get(key) is not None}
    if spec.get("build") is not None:
        out["build"] = {k: v for k, v in spec["build"].items() if k in ("context", "dockerfile", "args", "target")}
    out["environment"] = {k: v for k, v in (spec.get("environment") or {}).items() if v is not None}
    out["restart"] = spec.get("restart") or _RESTART_DEFAULT
    if spec.get("privileged"):
        out["privileged"] = True
    out["ports"] = [_port(where, (*base, "ports", i), p) for i, p in enumerate(spec.get("ports") or [])]
    out["volumes"] = [_mount(v) for v in spec.get("volumes") or []]
    _networks(spec, out)
    _depends_on(spec, out, project.services)
    if spec.get("healthcheck") is not None:
        out["healthcheck"] = _healthcheck(spec["healthcheck"])
    if spec.get("devices"):
        out["devices"] = [":".join(p for p in (d.get("source"), d.get("target") or d.get("source"),
                                              d.get("permissions") or "rwm") if p) for d in spec["devices"]]
    if spec.get("extra_hosts"):
        out["extra_hosts"] = [_extra_host(entry) for entry in spec["extra_hosts"]]
    if spec.get("logging") is not None:
        out["logging"] = {k: v for k, v in spec["logging"].items() if v is not None}
    for key in ("shm_size", "stop_grace_period", "ulimits"):
        if spec.get(key) is not None:
            out[key] = spec[key]
    out["file_secrets"] = [_file_secret(where, (*base, "secrets", i), s, project)
                           for i, s in enumerate(spec.get("secrets") or [])]
    _gpus(where, base, spec, out)
    out["deploy"] = _deploy(where, base, spec, ext, rollout_defaults, out)
    for key in ("hosts", "build_on"):
        if ext.get(key) is not None:
            out[key] = ext[key]
    return out


def _port(where: _Where, loc: tuple[Any, ...], port: Mapping[str, Any]) -> dict[str, Any]:
    published = port.get("published")
    if isinstance(published, str) and "-" in published:
        raise where.fail(loc, f"published port range {published!r} is not supported by provision "
                              "(publish each port)")
    out: dict[str, Any] = {"target": port["target"], "protocol": port.get("protocol") or "tcp",
                           "mode": port.get("mode") or "ingress"}
    if published not in (None, ""):
        out["published"] = int(published)
    if port.get("host_ip"):
        out["host_ip"] = port["host_ip"]
    return out


def _mount(volume: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": volume["type"], "target": volume["target"],
                           "read_only": bool(volume.get("read_only"))}
    if volume.get("source") is not None:
        out["source"] = volume["source"]
    if volume["type"] == "bind" and (volume.get("bind") or {}).get("create_host_path"):
        out["create_host_path"] = True
    tmpfs = volume.get("tmpfs") or {}
    if tmpfs.get("size") is not None:
        out["tmpfs_size"] = int(tmpfs["size"])
    if tmpfs.get("mode") is not None:
        mode = tmpfs["mode"]
        out["tmpfs_mode"] = int(mode, 8) if isinstance(mode, str) else int(mode)
    return out


def _networks(spec: Mapping[str, Any], out: dict[str, Any]) -> None:
    networks = spec.get("networks") or {}
    if spec.get("network_mode") is not None:
        return
    out["networks"] = list(networks)
    out["network_aliases"] = {key: list((value or {}).get("aliases") or []) for key, value in networks.items()
                              if (value or {}).get("aliases")}


def _depends_on(spec: Mapping[str, Any], out: dict[str, Any], known: Mapping[str, Any]) -> None:
    depends = {key: value for key, value in (spec.get("depends_on") or {}).items()
               if key in known or (value or {}).get("required", True) is not False}  # optional, not enabled
    out["depends_on"] = list(depends)
    out["dependencies"] = {key: {"condition": (value or {}).get("condition") or "service_started",
                                 "restart": bool((value or {}).get("restart")),
                                 "required": (value or {}).get("required", True) is not False}
                           for key, value in depends.items()}


def _healthcheck(health: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in health.items()
           if k in ("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable")}
    return out


def _extra_host(entry: str) -> str:
    """Compose prints ``host=ip``; the engine takes ``host:ip``."""
    host, sep, address = entry.partition("=")
    return f"{host}:{address}" if sep else entry


def _file_secret(where: _Where, loc: tuple[Any, ...], secret: Mapping[str, Any],
                 project: ComposeProject) -> dict[str, Any]:
    source = str(secret["source"])
    if source not in project.secrets:
        raise where.fail(loc, f"undeclared secret {source!r} (declare it under the top-level secrets:)")
    target = str(secret.get("target") or source)
    if not target.startswith("/"):
        target = f"/run/secrets/{target}"
    out: dict[str, Any] = {"source": source, "target": target}
    if secret.get("uid") is not None:
        out["uid"] = str(secret["uid"])
    if secret.get("gid") is not None:
        out["gid"] = str(secret["gid"])
    if secret.get("mode") is not None:
        mode = secret["mode"]
        out["mode"] = int(mode, 8) if isinstance(mode, str) else int(mode)
    return out


def _device_gpu(where: _Where, loc: tuple[Any, ...], device: Mapping[str, Any]) -> dict[str, Any] | None:
    """A GPU request: every item of `gpus:` is one (Compose adds the `gpu` capability), a
    `deploy.resources.reservations.devices` item when its driver is nvidia or it asks for `gpu`."""
    capabilities = [c for c in device.get("capabilities") or []]
    driver = device.get("driver")
    from_gpus_key = len(loc) > 2 and loc[2] == "gpus"  # ("services", NAME, "gpus", i)
    if not from_gpus_key and "gpu" not in capabilities and driver != "nvidia":
        raise where.fail(loc, f"device request {short_repr(dict(device))} is not supported by provision "
                              "(only GPUs: driver nvidia or capabilities [gpu])")
    if device.get("options"):
        raise where.fail((*loc, "options"), "device request options are not supported by provision")
    out: dict[str, Any] = {"capabilities": capabilities or ["gpu"]}
    if driver:
        out["driver"] = driver
    if device.get("device_ids"):
        out["device_ids"] = list(device["device_ids"])
    else:
        count = device.get("count")
        out["count"] = -1 if count in (None, "all", -1) else int(count)
    return out


def _gpus(where: _Where, base: tuple[Any, ...], spec: Mapping[str, Any], out: dict[str, Any]) -> None:
    requests = [(("gpus", i), d) for i, d in enumerate(spec.get("gpus") or [])]
    devices = (((spec.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
    requests += [(("deploy", "resources", "reservations", "devices", i), d) for i, d in enumerate(devices)]
    if not requests:
        return
    if len(requests) > 1:
        raise where.fail((*base, *requests[1][0]), "more than one GPU request is not supported by provision "
                                                   "(one request: a count, all, or device_ids)")
    gpu = _device_gpu(where, (*base, *requests[0][0]), requests[0][1])
    if gpu and gpu.get("count") == -1 and "device_ids" not in gpu:
        gpu = {**{k: v for k, v in gpu.items() if k != "count"}, "count": "all"}
    out["gpus"] = gpu


def _deploy(where: _Where, base: tuple[Any, ...], spec: Mapping[str, Any], ext: Mapping[str, Any],
            rollout_defaults: Mapping[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    deploy = spec.get("deploy") or {}
    result: dict[str, Any] = {}
    if deploy.get("replicas") is not None:
        result["replicas"] = deploy["replicas"]
    limits = (deploy.get("resources") or {}).get("limits") or {}
    if limits.get("cpus") is not None:
        out["cpus"] = float(limits["cpus"])
    if limits.get("memory") is not None:
        out["mem_limit"] = int(limits["memory"])
    if limits.get("pids") is not None:
        out["pids_limit"] = int(limits["pids"])
    reservations = (deploy.get("resources") or {}).get("reservations") or {}
    for key in ("cpus", "memory"):
        if reservations.get(key) is not None:
            raise where.fail((*base, "deploy", "resources", "reservations", key),
                             "not supported by provision (a container engine reserves nothing; use limits)")
    rollout = {**rollout_defaults, **(ext.get("rollout") or {})}
    if rollout:
        result["update_config"] = {k: v for k, v in rollout.items() if v is not None}
        if "monitor" in result["update_config"]:
            try:
                parse_duration(result["update_config"]["monitor"])
            except ValueError as exc:
                raise where.fail((*base, "x-provision", "rollout", "monitor"), str(exc)) from None
    swarm = ext.get("swarm") or {}
    if swarm.get("endpoint_mode") is not None:
        result["endpoint_mode"] = swarm["endpoint_mode"]
    if swarm.get("constraints") is not None:
        result["placement"] = {"constraints": list(swarm["constraints"])}
    return result


_FIELD_TO_COMPOSE = {"mem_limit": ("deploy", "resources", "limits", "memory"),
                     "cpus": ("deploy", "resources", "limits", "cpus"),
                     "pids_limit": ("deploy", "resources", "limits", "pids"),
                     "hosts": ("x-provision", "hosts"), "build_on": ("x-provision", "build_on"),
                     "file_secrets": ("secrets",), "dependencies": ("depends_on",),
                     "network_aliases": ("networks",)}


def _validation_error(where: _Where, exc: ValidationError, project: ComposeProject) -> InputError:
    """The first pydantic problem at the Compose key it came from."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "["))))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] not in ("value_error", "assertion_error"):
        message = f"{message[0].lower()}{message[1:]}, got {short_repr(error.get('input'))}"
    if len(loc) >= 3 and loc[0] == "services":
        field_name = loc[2]
        if field_name in _FIELD_TO_COMPOSE:
            loc = (*loc[:2], *_FIELD_TO_COMPOSE[field_name])
        elif field_name == "deploy" and len(loc) > 3 and loc[3] == "update_config":
            loc = (*loc[:2], "x-provision", "rollout", *loc[4:])
    elif loc and loc[0] in ("hosts", "remote_dir", "registry"):
        loc = ("x-provision", *loc)
    elif loc and loc[0] == "stack":
        loc = ("name",)
    return where.fail(loc, message)
