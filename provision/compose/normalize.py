"""One file's services and resources, from the short syntax to the long syntax that
``docker compose config --format json`` prints (depends_on, environment, labels, build,
healthcheck durations, byte sizes...; ports.py and volumes.py hold those two), with relative paths
made absolute against the file's folder. Merging files and resolving env files come after
(merge.py, project.py)."""

from __future__ import annotations

import re
import shlex
from typing import Any

from provision.compose.merge import unique
from provision.compose.ports import parse_ports
from provision.compose.reading import Override, Reset
from provision.compose.values import (
    FileContext,
    as_bool,
    as_bytes,
    as_duration,
    as_int,
    as_list,
    as_mapping,
    as_text,
    key_values,
    unique_items,
    unwrap,
)
from provision.compose.volumes import parse_volume

__all__ = ["extra_hosts_printed", "normalize_resources", "normalize_service"]


def _command(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ctx.fail(path, f"cannot split the command: {exc}") from None
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str):  # Compose's schema: a list of strings
                raise ctx.fail(path + (index,), f"must be a string, got {item!r}")
        return list(value)
    raise ctx.fail(path, f"expected a string or a list, got {type(value).__name__}")


def _device_request(ctx: FileContext, where: tuple[Any, ...], item: Any) -> dict:
    item = as_mapping(ctx, where, item)
    device: dict[str, Any] = {}
    for key in ("capabilities", "device_ids"):
        for index, entry in enumerate(item.get(key) or []):
            if not isinstance(entry, str):  # Compose's schema: lists of strings
                raise ctx.fail(where + (key, index), f"must be a string, got {entry!r}")
    if item.get("capabilities") is not None:
        device["capabilities"] = [as_text(c) for c in as_list(ctx, where + ("capabilities",), item["capabilities"])]
    if item.get("driver") is not None:
        device["driver"] = as_text(item["driver"])
    if item.get("count") is not None:
        count = item["count"]
        device["count"] = -1 if count == "all" else as_int(ctx, where + ("count",), count)
    if item.get("device_ids") is not None:
        device["device_ids"] = [as_text(d) for d in as_list(ctx, where + ("device_ids",), item["device_ids"])]
    if item.get("options") is not None:
        device["options"] = key_values(ctx, where + ("options",), item["options"], bare="")
    return device


def _gpus(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    if value == "all":
        return [{"count": -1}]
    return [_device_request(ctx, path + (index,), item) for index, item in enumerate(as_list(ctx, path, value))]


def _deploy(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    value = as_mapping(ctx, path, value)
    deploy: dict[str, Any] = {"resources": {}, "placement": {}}  # Compose always prints both
    if value.get("replicas") is not None:
        deploy["replicas"] = as_int(ctx, path + ("replicas",), value["replicas"])
    resources_in = value.get("resources")
    resources: dict[str, Any] = {}
    if resources_in is not None:
        for section in ("limits", "reservations"):
            given = (resources_in or {}).get(section)
            if given is None:
                continue
            where = path + ("resources", section)
            out: dict[str, Any] = {}
            if given.get("cpus") is not None:
                try:
                    out["cpus"] = float(given["cpus"])
                except (TypeError, ValueError):
                    raise ctx.fail(where + ("cpus",), f"invalid cpus {given['cpus']!r}") from None
            if given.get("memory") is not None:
                if not isinstance(given["memory"], str):  # Compose's schema: a string
                    raise ctx.fail(where + ("memory",), f"must be a string (such as 512m or 2g), got {given['memory']!r}")
                out["memory"] = as_bytes(ctx, where + ("memory",), given["memory"])
            if given.get("pids") is not None:
                out["pids"] = as_int(ctx, where + ("pids",), given["pids"])
            if given.get("devices") is not None:
                out["devices"] = [_device_request(ctx, where + ("devices", index), item)
                                  for index, item in enumerate(as_list(ctx, where + ("devices",), given["devices"]))]
            resources[section] = out
        deploy["resources"] = resources
    for key, item in value.items():
        if isinstance(key, str) and key.startswith("x-"):
            deploy[key] = item
    return deploy


def _healthcheck(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    value = as_mapping(ctx, path, value)
    check: dict[str, Any] = {}
    test = unwrap(value.get("test"))
    if test is not None:
        if isinstance(test, str):
            check["test"] = ["CMD-SHELL", test]
        elif test:  # an empty list is left out, as Compose prints it
            check["test"] = [as_text(part) for part in as_list(ctx, path + ("test",), test)]
    for key in ("timeout", "interval"):
        if value.get(key) is not None:
            check[key] = as_duration(ctx, path + (key,), value[key])
    if value.get("retries") is not None:
        check["retries"] = as_int(ctx, path + ("retries",), value["retries"])
    for key in ("start_period", "start_interval"):
        if value.get(key) is not None:
            check[key] = as_duration(ctx, path + (key,), value[key])
    if value.get("disable") is not None and as_bool(ctx, path + ("disable",), value["disable"]):
        check["disable"] = True
    return check


def _depends_on(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    result: dict[str, Any] = {}
    if isinstance(value, list):
        unique_items(ctx, path, value)
        for index, name in enumerate(value):
            if not isinstance(name, str):
                raise ctx.fail(path + (index,), f"expected a service name, got {name!r}")
            result[name] = {"condition": "service_started", "required": True}
        return result
    for name, spec in as_mapping(ctx, path, value).items():
        spec = spec or {}
        where = path + (name,)
        entry: dict[str, Any] = {}
        if spec.get("condition") is not None:  # required, but a later file may bring it (checked after merging)
            condition = as_text(spec["condition"])
            if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                raise ctx.fail(where + ("condition",), f"invalid condition {condition!r} (service_started, "
                               "service_healthy or service_completed_successfully)")
            entry["condition"] = condition
        if spec.get("restart") is not None:
            entry["restart"] = as_bool(ctx, where + ("restart",), spec["restart"])
        if spec.get("required") is not None:
            entry["required"] = as_bool(ctx, where + ("required",), spec["required"])
        result[str(name)] = entry
    return result


def _networks(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    if isinstance(value, list):
        unique_items(ctx, path, value)
        return {str(name): None for name in value}
    result: dict[str, Any] = {}
    for name, spec in as_mapping(ctx, path, value).items():
        if spec is None:
            result[str(name)] = None
            continue
        entry = {}
        if spec.get("aliases") is not None:
            entry["aliases"] = [as_text(a) for a in as_list(ctx, path + (name, "aliases"), spec["aliases"])]
        for key, item in spec.items():
            if isinstance(key, str) and key.startswith("x-"):
                entry[key] = item
        result[str(name)] = entry
    return result


def _ulimits(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    result: dict[str, Any] = {}
    for name, spec in as_mapping(ctx, path, value).items():
        if isinstance(spec, dict):
            result[str(name)] = {"soft": as_int(ctx, path + (name, "soft"), spec.get("soft")),
                                 "hard": as_int(ctx, path + (name, "hard"), spec.get("hard"))}
        else:
            single = as_int(ctx, path + (name,), spec)
            result[str(name)] = single if single else {}  # Compose prints a 0 limit as {}
    return result


def _host_entry(text: str) -> str:
    """``HOST:IP``, ``HOST=IP`` or ``HOST=[IPv6]`` as ``HOST=IP``, as Compose prints it."""
    if "=" in text:
        host, _, ip = text.partition("=")
    else:
        host, _, ip = text.partition(":")
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    return f"{host}={ip}"


def extra_hosts_printed(entries: list[str]) -> list[str]:
    """The merged ``extra_hosts`` entries (as written) the way Compose prints them: sorted ``HOST=IP``."""
    return sorted(_host_entry(entry) for entry in entries)


def _extra_hosts(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[str]:
    """The entries as written (a map becomes sorted ``HOST=IP`` strings): Compose compares the
    written forms when merging files, and prints them converted (:func:`extra_hosts_printed`)."""
    if isinstance(value, dict):
        hosts = []
        for host, ip in value.items():
            for one in (ip if isinstance(ip, list) else [ip]):
                hosts.append(f"{host}={as_text(one)}")
        return sorted(hosts)
    items = [as_text(item) for item in as_list(ctx, path, value)]
    unique_items(ctx, path, items)
    for index, text in enumerate(items):
        if "=" not in text and ":" not in text:
            raise ctx.fail(path + (index,), f"invalid additional host, missing IP: {text!r} "
                           "(expected HOST:IP or HOST=IP)")
    return items


def _devices(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    """``SOURCE[:TARGET[:PERMISSIONS]]`` (a two-part value's second part is always the target, as
    Compose reads it) or the long syntax; empty fields are left out, as Compose prints them."""
    result = []
    for index, item in enumerate(as_list(ctx, path, value)):
        if isinstance(item, dict):
            source = as_text(item.get("source") or "")
            target = as_text(item.get("target") or source)
            permissions = as_text(item.get("permissions") or "rwm")
        else:
            parts = as_text(item).split(":")
            if len(parts) > 3:
                raise ctx.fail(path + (index,), f"confusing device mapping {item!r}, please use the long syntax")
            source = parts[0]
            target = (parts[1] if len(parts) > 1 else "") or source
            permissions = parts[2] if len(parts) > 2 else "rwm"
        device = {"source": source, "target": target, "permissions": permissions}
        # Compose first de-duplicates by the target as written (empty when "SRC:" leaves it out)
        written = as_text(item.get("target") or "") if isinstance(item, dict) else \
            (parts[1] if len(parts) > 1 else parts[0])
        result.append((written, {k: v for k, v in device.items() if v}))
    return [device for _, device in unique(result, lambda pair: pair[0])]


def _secret_refs(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    result = []
    for index, item in enumerate(as_list(ctx, path, value)):
        if isinstance(item, str):
            result.append({"source": item, "target": f"/run/secrets/{item}"})
            continue
        item = as_mapping(ctx, path + (index,), item)
        ref: dict[str, Any] = {"source": as_text(item.get("source", ""))}
        ref["target"] = f"/run/secrets/{ref['source']}"  # the default, as Compose prints it
        for key in ("target", "uid", "gid"):
            if item.get(key) is not None:
                ref[key] = as_text(item[key])
        if item.get("mode") is not None:
            mode = item["mode"]
            if isinstance(mode, str):  # "0400" is octal, as Compose reads it
                try:
                    mode = int(mode, 8)
                except ValueError:
                    raise ctx.fail(path + (index, "mode"), f"invalid file mode {mode!r}") from None
            ref["mode"] = "0" + format(as_int(ctx, path + (index, "mode"), mode), "o")
        result.append(ref)
    return result


def _env_files(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    result = []
    for index, item in enumerate(as_list(ctx, path, value)):
        if isinstance(item, dict):
            required = item.get("required")
            result.append({"path": ctx.path(as_text(item.get("path", ""))),
                           "required": True if required is None else as_bool(ctx, path + (index, "required"), required)})
        else:
            result.append({"path": ctx.path(as_text(item)), "required": True})
    return result


def _build(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    if isinstance(value, str):
        value = {"context": value}
    value = as_mapping(ctx, path, value)
    build: dict[str, Any] = {}
    if value.get("context"):  # the defaults (".", "Dockerfile") are set after the files are merged
        context = as_text(value["context"])
        remote = re.match(r"^(https?://|git@|git://|github\.com/)", context)
        build["context"] = context if remote else ctx.path(context)
    if value.get("dockerfile"):
        build["dockerfile"] = as_text(value["dockerfile"])
    if value.get("args") is not None:
        build["args"] = key_values(ctx, path + ("args",), value["args"], bare=None)
    if value.get("target") is not None:
        build["target"] = as_text(value["target"])
    for key, item in value.items():
        if isinstance(key, str) and key.startswith("x-"):
            build[key] = item
    return build


_STRINGS = ("image", "restart", "ipc", "hostname", "user", "working_dir", "stop_signal", "container_name",
            "network_mode", "pid")


def normalize_service(ctx: FileContext, name: str, raw: Any) -> dict[str, Any]:
    """One service in the long syntax. Keys tagged ``!reset`` stay as Reset markers and
    ``!override`` values stay wrapped (merge.py applies them); ``extends`` is kept as it is."""
    path = ("services", name)
    if raw is None:
        raw = {}
    raw = as_mapping(ctx, path, raw)
    service: dict[str, Any] = {}
    for key, value in raw.items():
        where = path + (key,)
        if isinstance(value, Reset):
            service[key] = value
            continue
        wrapped = isinstance(value, Override)
        value = unwrap(value)
        if isinstance(key, str) and key.startswith("x-"):
            out = value
        elif key == "extends":
            out = {"service": value} if isinstance(value, str) else dict(as_mapping(ctx, where, value))
        elif value is None and key not in ("command", "entrypoint"):
            continue
        elif key in _STRINGS:
            out = as_text(value)
        elif key == "build":
            out = _build(ctx, where, value)
        elif key in ("command", "entrypoint"):
            out = _command(ctx, where, value)
        elif key == "environment":
            out = key_values(ctx, where, value, bare=None)
        elif key == "labels":
            out = key_values(ctx, where, value, bare="")
        elif key == "sysctls":
            out = key_values(ctx, where, value, bare="")
        elif key == "env_file":
            out = _env_files(ctx, where, value)
        elif key == "ports":
            out = parse_ports(ctx, where, value)
        elif key == "volumes":
            out = [parse_volume(ctx, where + (index,), item) for index, item in enumerate(as_list(ctx, where, value))]
        elif key == "networks":
            out = _networks(ctx, where, value)
        elif key == "depends_on":
            out = _depends_on(ctx, where, value)
        elif key == "healthcheck":
            out = _healthcheck(ctx, where, value)
        elif key == "gpus":
            out = _gpus(ctx, where, value)
        elif key == "deploy":
            out = _deploy(ctx, where, value)
        elif key == "shm_size":
            out = as_bytes(ctx, where, value)
            if out == "0":  # Compose leaves a zero size out
                continue
        elif key == "ulimits":
            out = _ulimits(ctx, where, value)
        elif key == "security_opt":
            out = [as_text(item) for item in as_list(ctx, where, value)]
            unique_items(ctx, where, out)
        elif key in ("cap_add", "cap_drop", "tmpfs", "expose", "profiles"):
            out = [as_text(item) for item in as_list(ctx, where, value)]
        elif key == "init":
            out = as_bool(ctx, where, value)
        elif key == "privileged":  # Compose leaves out a false privileged
            if not as_bool(ctx, where, value):
                continue
            out = True
        elif key == "devices":
            out = _devices(ctx, where, value)
        elif key == "extra_hosts":
            out = _extra_hosts(ctx, where, value)
        elif key == "logging":
            logging = as_mapping(ctx, where, value)
            out = {}
            if logging.get("driver") is not None:
                out["driver"] = as_text(logging["driver"])
            if logging.get("options") is not None:
                options = as_mapping(ctx, where + ("options",), logging["options"])
                for name, option in options.items():
                    if isinstance(option, bool) or not isinstance(option, (str, int, float, type(None))):
                        raise ctx.fail(where + ("options", name), "must be a null, number or string")
                out["options"] = key_values(ctx, where + ("options",), options, bare="")
        elif key == "stop_grace_period":
            out = as_duration(ctx, where, value)
        elif key == "secrets":
            out = _secret_refs(ctx, where, value)
        else:  # support.py refused it already
            raise ctx.fail(where, "not supported by provision")
        service[key] = Override(out) if wrapped else out
    return service


def normalize_resources(ctx: FileContext, kind: str, raw: Any) -> dict[str, dict]:
    """Top-level ``networks``, ``volumes`` or ``secrets`` of one file, names not yet applied."""
    result: dict[str, dict] = {}
    if raw is None:
        return result
    for name, spec in as_mapping(ctx, (kind,), raw).items():
        where = (kind, name)
        spec = dict(as_mapping(ctx, where, spec)) if spec is not None else {}
        entry: dict[str, Any] = {}
        for key, value in spec.items():
            if value is None:
                continue
            if key == "external":
                if isinstance(value, dict):
                    raise ctx.fail(where + (key,), "external: {name: ...} is obsolete; use external: true and name:")
                entry["external"] = as_bool(ctx, where + (key,), value)
            elif key == "file":
                entry["file"] = ctx.path(as_text(value))
            elif key == "labels":
                entry["labels"] = key_values(ctx, where + (key,), value, bare="")
            elif isinstance(key, str) and key.startswith("x-"):
                entry[key] = value
            else:
                entry[key] = as_text(value)
        if kind == "secrets" and ("file" in entry) == ("environment" in entry):
            raise ctx.fail(where, "a secret needs exactly one of file: or environment:")
        result[str(name)] = entry
    return result
