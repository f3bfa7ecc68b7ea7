"""One file's services and resources, from the short syntax to the long syntax that
``docker compose config --format json`` prints (ports, volumes, depends_on, environment,
labels, build, healthcheck durations, byte sizes...), with relative paths made absolute
against the file's folder. Merging files and resolving env files come after (merge.py,
project.py)."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.compose.errors import ComposeError, error_at
from provision.compose.merge import unique
from provision.compose.reading import Override, Reset
from provision.compose.units import format_duration, parse_bytes, parse_duration

__all__ = ["extra_hosts_printed", "FileContext", "normalize_service", "normalize_resources", "resolve_path"]


@dataclass
class FileContext:
    """Where a file's values come from: its path, its positioned tree (for lines), its folder."""

    file: Path
    tree: Any
    base_dir: Path
    home: str | None = None  # the operator's HOME, for ``~`` (None: this process's)

    def path(self, value: str) -> str:
        return resolve_path(value, self.base_dir, self.home)

    def fail(self, path: tuple[Any, ...], message: str) -> ComposeError:
        return error_at(self.file, self.tree, path, message)


def resolve_path(value: str, base_dir: Path, home: str | None = None) -> str:
    """A path as Compose resolves it: ``~`` is the home, relative is against ``base_dir``."""
    if value == "~" or value.startswith("~/"):
        value = (home or os.path.expanduser("~")) + value[1:]
    elif value.startswith("~"):
        value = os.path.expanduser(value)
    if os.path.isabs(value):
        return os.path.normpath(value)
    if re.match(r"^[A-Za-z]:[\\/]|^\\\\", value):  # a Windows path: absolute, kept as written
        return value
    return os.path.normpath(os.path.join(str(base_dir), value))


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Override) else value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bool(ctx: FileContext, path: tuple[Any, ...], value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "y", "on"):  # as Compose casts them
        return True
    if isinstance(value, str) and value.lower() in ("false", "no", "n", "off"):
        return False
    raise ctx.fail(path, f"expected a boolean, got {value!r}")


def _int(ctx: FileContext, path: tuple[Any, ...], value: Any) -> int:
    if isinstance(value, bool):
        raise ctx.fail(path, f"expected an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ctx.fail(path, f"expected an integer, got {value!r}") from None


def _list(ctx: FileContext, path: tuple[Any, ...], value: Any, what: str = "a list") -> list:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ctx.fail(path, f"expected {what}, got {type(value).__name__}")
    return list(value)


def _mapping(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    if not isinstance(value, dict):
        raise ctx.fail(path, f"expected a mapping, got {type(value).__name__}")
    return value


def _duration(ctx: FileContext, path: tuple[Any, ...], value: Any) -> str:
    if not isinstance(value, str):  # Compose's schema: a duration is a string
        raise ctx.fail(path, f"must be a string (a duration such as 30s or 1m30s), got {value!r}")
    try:
        return format_duration(parse_duration(value))
    except ValueError:
        raise ctx.fail(path, f"invalid duration {value!r} (expected e.g. 30s, 1m30s, 500ms)") from None


def _bytes(ctx: FileContext, path: tuple[Any, ...], value: Any) -> str:
    try:
        return str(parse_bytes(value))
    except ValueError:
        raise ctx.fail(path, f"invalid size {value!r} (expected e.g. 512m, 1gb, 1024)") from None


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


def key_values(ctx: FileContext, path: tuple[Any, ...], value: Any, *, bare: Any) -> dict[str, Any]:
    """A map or a ``KEY=VALUE`` list as a map of strings; a bare list ``KEY`` gets ``bare``."""
    result: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            result[str(key)] = bare if item is None else _text(item)
        return result
    for index, item in enumerate(_list(ctx, path, value, "a mapping or a list")):
        if not isinstance(item, str):
            raise ctx.fail(path + (index,), f"expected KEY=VALUE, got {item!r}")
        key, sep, text = item.partition("=")
        if key != key.rstrip() and path[-1] == "environment":
            raise ctx.fail(path + (index,), f"environment variable {key!r} is declared with a trailing space")
        result[key] = text if sep else bare
    return result


# ---------------------------------------------------------------------------
# ports
# ---------------------------------------------------------------------------

_PROTOCOLS = ("tcp", "udp", "sctp")


def _port_range(text: str) -> tuple[int, int]:
    """``80`` or ``8000-8010`` (Go's ParseUint, 16 bits). Raises ValueError."""
    low, sep, high = text.partition("-")
    start = _uint16(low)
    end = _uint16(high.split("-")[0]) if sep else start
    if end < start:
        raise ValueError(text)
    return start, end


def _uint16(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(text)
    value = int(text)
    if value > 65535:
        raise ValueError(text)
    return value


def _valid_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _short_port(text: str) -> list[dict]:
    """``[IP:][PUBLISHED:]TARGET[/PROTO]`` as Docker's port-spec parser reads it. Raises ValueError."""
    parts = text.split(":")
    target = parts[-1]
    if len(parts) == 1:
        ip, published = "", ""
    elif len(parts) == 2:
        ip, published = "", parts[0]
    else:
        ip, published = ":".join(parts[:-2]), parts[-2]
    target, _, proto = target.partition("/")
    if "/" in proto:
        raise ValueError(f"invalid protocol {proto}")
    proto = proto or "tcp"
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise ValueError(f"invalid IP address {ip}")
        ip = ip[1:-1]
    if ip and not _valid_ip(ip):
        raise ValueError(f"invalid IP address {ip}")
    if not target:
        raise ValueError("no port specified")
    start, end = _port_range(target)
    host_start = host_end = 0
    if published:
        host_start, host_end = _port_range(published)
        if end - start != host_end - host_start and end != start:
            raise ValueError(f"invalid ranges specified for container and host ports: {target} and {published}")
    if proto.lower() not in _PROTOCOLS:
        raise ValueError(f"invalid protocol {proto}")
    result = []
    for offset in range(end - start + 1):
        port: dict[str, Any] = {"mode": "ingress"}
        if ip:
            port["host_ip"] = ip
        port["target"] = start + offset
        if published:
            port["published"] = (f"{host_start}-{host_end}" if start == end and host_start != host_end
                                 else str(host_start + offset))
        port["protocol"] = proto.lower()
        result.append(port)
    # Compose orders the ports of one range by their "PORT/PROTO" text (so 10 comes before 2)
    return sorted(result, key=lambda port: f"{port['target']}/{port['protocol']}")


def _ports(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    result: list[dict] = []
    for index, item in enumerate(_list(ctx, path, value)):
        where = path + (index,)
        if isinstance(item, dict):
            if "target" not in item:
                raise ctx.fail(where, "a long-syntax port needs a target")
            port: dict[str, Any] = {}
            if item.get("name") is not None:
                port["name"] = _text(item["name"])
            port["mode"] = _text(item.get("mode") or "ingress")
            if item.get("host_ip"):
                port["host_ip"] = _text(item["host_ip"])
            port["target"] = _int(ctx, where + ("target",), item["target"])
            if item.get("published") not in (None, ""):
                port["published"] = _text(item["published"])
            port["protocol"] = _text(item.get("protocol") or "tcp")
            if item.get("app_protocol"):
                port["app_protocol"] = _text(item["app_protocol"])
            result.append(port)
            continue
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ctx.fail(where, f"invalid port {item!r}")
        try:
            parsed = _short_port(str(item))
        except ValueError as exc:
            raise ctx.fail(where, f"invalid port {item!r} ({exc}; expected [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL])") \
                from None
        if any(port["target"] == 0 for port in parsed):
            raise ctx.fail(where, f"invalid port {item!r} (the target port cannot be 0)")
        result.extend(parsed)
    return result


# ---------------------------------------------------------------------------
# volumes
# ---------------------------------------------------------------------------

_BIND_PREFIXES = (".", "/", "~")


def _is_path(source: str) -> bool:
    return source.startswith(_BIND_PREFIXES) or (len(source) > 1 and source[1] == ":")


def _volume(ctx: FileContext, where: tuple[Any, ...], item: Any) -> dict:
    if isinstance(item, dict):
        kind = _text(item.get("type") or "volume")
        if kind not in ("bind", "volume", "tmpfs"):
            raise ctx.fail(where + ("type",), f"volume type {kind!r} is not supported by provision "
                           "(bind, volume and tmpfs are)")
        if not item.get("target"):
            raise ctx.fail(where, "a long-syntax volume needs a target")
        mount: dict[str, Any] = {"type": kind}
        source = item.get("source")
        if source not in (None, ""):
            mount["source"] = ctx.path(_text(source)) if kind == "bind" else _text(source)
        mount["target"] = _text(item["target"])
        if item.get("read_only") is not None and _bool(ctx, where + ("read_only",), item["read_only"]):
            mount["read_only"] = True
        if kind == "bind":
            bind = dict(item.get("bind") or {})
            options: dict[str, Any] = {}
            if bind.get("propagation"):
                options["propagation"] = _text(bind["propagation"])
            create = bind.get("create_host_path")
            if create is not None and _bool(ctx, where + ("bind", "create_host_path"), create):
                options["create_host_path"] = True  # false is left out, as Compose prints it
            if bind.get("selinux"):
                options["selinux"] = _text(bind["selinux"])
            if options or item.get("bind") is not None:
                mount["bind"] = options
        elif kind == "volume" and item.get("volume") is not None:
            options = {}
            vol = dict(item.get("volume") or {})
            if vol.get("nocopy") is not None:
                options["nocopy"] = _bool(ctx, where + ("volume", "nocopy"), vol["nocopy"])
            if vol.get("subpath"):
                options["subpath"] = _text(vol["subpath"])
            mount["volume"] = options
        elif kind == "tmpfs":
            tmp = dict(item.get("tmpfs") or {})
            options = {}
            if tmp.get("size") is not None:
                options["size"] = _bytes(ctx, where + ("tmpfs", "size"), tmp["size"])
            if tmp.get("mode") is not None:
                options["mode"] = _int(ctx, where + ("tmpfs", "mode"), tmp["mode"])
            if options:
                mount["tmpfs"] = options
        return mount
    if not isinstance(item, str):
        raise ctx.fail(where, f"invalid volume {item!r}")
    try:
        mount = _short_volume(item)
    except ValueError as exc:
        raise ctx.fail(where, f"invalid volume {item!r}: {exc} (expected [SOURCE:]TARGET[:MODE])") from None
    if mount["type"] == "bind":
        mount["source"] = ctx.path(mount["source"])
    return mount


_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_SELINUX = ("z", "Z")


def _windows_drive(buffer: str, char: str) -> bool:
    return char == ":" and len(buffer) == 1 and buffer.isalpha()


def _is_file_path(source: str) -> bool:
    if not source:
        return False
    if source[0] in ".~/" or source.startswith("\\\\"):
        return True
    return len(source) > 1 and _windows_drive(source[0], source[1])


def _short_volume(spec: str) -> dict[str, Any]:
    """``[SOURCE:]TARGET[:OPTIONS]`` the way Compose's volume-spec parser reads it (colons inside
    ``${...}`` and after a Windows drive letter do not split; unknown options are ignored).
    Raises ValueError."""
    if not spec:
        raise ValueError("empty volume spec")
    if len(spec) <= 2:
        return {"type": "volume", "target": spec}
    fields: dict[str, str] = {}
    read_only = False
    nocopy = False
    bind: dict[str, Any] = {}
    buffer = ""
    depth = 0
    end = "\0"
    text = spec + end
    for index, char in enumerate(text):
        if char == "$" and text[index + 1: index + 2] == "{":
            depth += 1
            buffer += char
            continue
        if char == "}" and depth:
            depth -= 1
            buffer += char
            continue
        if _windows_drive(buffer, char):
            buffer += char
        elif (char == ":" or index == len(spec)) and not depth:
            if not buffer:
                raise ValueError("empty section between colons")
            if "source" not in fields and index >= len(spec):
                fields["target"] = buffer
            elif "source" not in fields:
                fields["source"] = buffer
            elif "target" not in fields:
                fields["target"] = buffer
            elif char == ":":
                raise ValueError("too many colons")
            else:
                for option in buffer.split(","):
                    if option == "ro":
                        read_only = True
                    elif option == "rw":
                        read_only = False
                    elif option == "nocopy":
                        nocopy = True
                    elif option in _PROPAGATIONS:
                        bind["propagation"] = option
                    elif option in _SELINUX:
                        bind["selinux"] = option
            buffer = ""
        else:
            buffer += char
    source = fields.get("source", "")
    mount: dict[str, Any] = {"type": "bind" if _is_file_path(source) else "volume"}
    if source:
        mount["source"] = source
    mount["target"] = fields.get("target", "")
    if read_only:
        mount["read_only"] = True
    if mount["type"] == "bind":
        mount["bind"] = {**bind, "create_host_path": True}
        if nocopy:
            mount["volume"] = {"nocopy": True}
    else:
        if bind:
            mount["bind"] = bind
        mount["volume"] = {"nocopy": True} if nocopy else {}
    return mount


# ---------------------------------------------------------------------------
# the rest of a service
# ---------------------------------------------------------------------------


def _device_request(ctx: FileContext, where: tuple[Any, ...], item: Any) -> dict:
    item = _mapping(ctx, where, item)
    device: dict[str, Any] = {}
    for key in ("capabilities", "device_ids"):
        for index, entry in enumerate(item.get(key) or []):
            if not isinstance(entry, str):  # Compose's schema: lists of strings
                raise ctx.fail(where + (key, index), f"must be a string, got {entry!r}")
    if item.get("capabilities") is not None:
        device["capabilities"] = [_text(c) for c in _list(ctx, where + ("capabilities",), item["capabilities"])]
    if item.get("driver") is not None:
        device["driver"] = _text(item["driver"])
    if item.get("count") is not None:
        count = item["count"]
        device["count"] = -1 if count == "all" else _int(ctx, where + ("count",), count)
    if item.get("device_ids") is not None:
        device["device_ids"] = [_text(d) for d in _list(ctx, where + ("device_ids",), item["device_ids"])]
    if item.get("options") is not None:
        device["options"] = key_values(ctx, where + ("options",), item["options"], bare="")
    return device


def _gpus(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    if value == "all":
        return [{"count": -1}]
    return [_device_request(ctx, path + (index,), item) for index, item in enumerate(_list(ctx, path, value))]


def _deploy(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    value = _mapping(ctx, path, value)
    deploy: dict[str, Any] = {"resources": {}, "placement": {}}  # Compose always prints both
    if value.get("replicas") is not None:
        deploy["replicas"] = _int(ctx, path + ("replicas",), value["replicas"])
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
                out["memory"] = _bytes(ctx, where + ("memory",), given["memory"])
            if given.get("pids") is not None:
                out["pids"] = _int(ctx, where + ("pids",), given["pids"])
            if given.get("devices") is not None:
                out["devices"] = [_device_request(ctx, where + ("devices", index), item)
                                  for index, item in enumerate(_list(ctx, where + ("devices",), given["devices"]))]
            resources[section] = out
        deploy["resources"] = resources
    for key, item in value.items():
        if isinstance(key, str) and key.startswith("x-"):
            deploy[key] = item
    return deploy


def _healthcheck(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    value = _mapping(ctx, path, value)
    check: dict[str, Any] = {}
    test = _unwrap(value.get("test"))
    if test is not None:
        if isinstance(test, str):
            check["test"] = ["CMD-SHELL", test]
        elif test:  # an empty list is left out, as Compose prints it
            check["test"] = [_text(part) for part in _list(ctx, path + ("test",), test)]
    for key in ("timeout", "interval"):
        if value.get(key) is not None:
            check[key] = _duration(ctx, path + (key,), value[key])
    if value.get("retries") is not None:
        check["retries"] = _int(ctx, path + ("retries",), value["retries"])
    for key in ("start_period", "start_interval"):
        if value.get(key) is not None:
            check[key] = _duration(ctx, path + (key,), value[key])
    if value.get("disable") is not None and _bool(ctx, path + ("disable",), value["disable"]):
        check["disable"] = True
    return check


def _unique_items(ctx: FileContext, path: tuple[Any, ...], items: list) -> None:
    """Compose's schema: the items of this list must be unique."""
    for index, item in enumerate(items):
        if item in items[:index]:
            raise ctx.fail(path + (index,), f"items at {items.index(item)} and {index} are equal")


def _depends_on(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    result: dict[str, Any] = {}
    if isinstance(value, list):
        _unique_items(ctx, path, value)
        for index, name in enumerate(value):
            if not isinstance(name, str):
                raise ctx.fail(path + (index,), f"expected a service name, got {name!r}")
            result[name] = {"condition": "service_started", "required": True}
        return result
    for name, spec in _mapping(ctx, path, value).items():
        spec = spec or {}
        where = path + (name,)
        entry: dict[str, Any] = {}
        if spec.get("condition") is not None:  # required, but a later file may bring it (checked after merging)
            condition = _text(spec["condition"])
            if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                raise ctx.fail(where + ("condition",), f"invalid condition {condition!r} (service_started, "
                               "service_healthy or service_completed_successfully)")
            entry["condition"] = condition
        if spec.get("restart") is not None:
            entry["restart"] = _bool(ctx, where + ("restart",), spec["restart"])
        if spec.get("required") is not None:
            entry["required"] = _bool(ctx, where + ("required",), spec["required"])
        result[str(name)] = entry
    return result


def _networks(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    if isinstance(value, list):
        _unique_items(ctx, path, value)
        return {str(name): None for name in value}
    result: dict[str, Any] = {}
    for name, spec in _mapping(ctx, path, value).items():
        if spec is None:
            result[str(name)] = None
            continue
        entry = {}
        if spec.get("aliases") is not None:
            entry["aliases"] = [_text(a) for a in _list(ctx, path + (name, "aliases"), spec["aliases"])]
        for key, item in spec.items():
            if isinstance(key, str) and key.startswith("x-"):
                entry[key] = item
        result[str(name)] = entry
    return result


def _ulimits(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    result: dict[str, Any] = {}
    for name, spec in _mapping(ctx, path, value).items():
        if isinstance(spec, dict):
            result[str(name)] = {"soft": _int(ctx, path + (name, "soft"), spec.get("soft")),
                                 "hard": _int(ctx, path + (name, "hard"), spec.get("hard"))}
        else:
            single = _int(ctx, path + (name,), spec)
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
                hosts.append(f"{host}={_text(one)}")
        return sorted(hosts)
    items = [_text(item) for item in _list(ctx, path, value)]
    _unique_items(ctx, path, items)
    for index, text in enumerate(items):
        if "=" not in text and ":" not in text:
            raise ctx.fail(path + (index,), f"invalid additional host, missing IP: {text!r} "
                           "(expected HOST:IP or HOST=IP)")
    return items


def _devices(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    """``SOURCE[:TARGET[:PERMISSIONS]]`` (a two-part value's second part is always the target, as
    Compose reads it) or the long syntax; empty fields are left out, as Compose prints them."""
    result = []
    for index, item in enumerate(_list(ctx, path, value)):
        if isinstance(item, dict):
            source = _text(item.get("source") or "")
            target = _text(item.get("target") or source)
            permissions = _text(item.get("permissions") or "rwm")
        else:
            parts = _text(item).split(":")
            if len(parts) > 3:
                raise ctx.fail(path + (index,), f"confusing device mapping {item!r}, please use the long syntax")
            source = parts[0]
            target = (parts[1] if len(parts) > 1 else "") or source
            permissions = parts[2] if len(parts) > 2 else "rwm"
        device = {"source": source, "target": target, "permissions": permissions}
        # Compose first de-duplicates by the target as written (empty when "SRC:" leaves it out)
        written = _text(item.get("target") or "") if isinstance(item, dict) else \
            (parts[1] if len(parts) > 1 else parts[0])
        result.append((written, {k: v for k, v in device.items() if v}))
    return [device for _, device in unique(result, lambda pair: pair[0])]


def _secret_refs(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    result = []
    for index, item in enumerate(_list(ctx, path, value)):
        if isinstance(item, str):
            result.append({"source": item, "target": f"/run/secrets/{item}"})
            continue
        item = _mapping(ctx, path + (index,), item)
        ref: dict[str, Any] = {"source": _text(item.get("source", ""))}
        ref["target"] = f"/run/secrets/{ref['source']}"  # the default, as Compose prints it
        for key in ("target", "uid", "gid"):
            if item.get(key) is not None:
                ref[key] = _text(item[key])
        if item.get("mode") is not None:
            mode = item["mode"]
            if isinstance(mode, str):  # "0400" is octal, as Compose reads it
                try:
                    mode = int(mode, 8)
                except ValueError:
                    raise ctx.fail(path + (index, "mode"), f"invalid file mode {mode!r}") from None
            ref["mode"] = "0" + format(_int(ctx, path + (index, "mode"), mode), "o")
        result.append(ref)
    return result


def _env_files(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    result = []
    for index, item in enumerate(_list(ctx, path, value)):
        if isinstance(item, dict):
            required = item.get("required")
            result.append({"path": ctx.path(_text(item.get("path", ""))),
                           "required": True if required is None else _bool(ctx, path + (index, "required"), required)})
        else:
            result.append({"path": ctx.path(_text(item)), "required": True})
    return result


def _build(ctx: FileContext, path: tuple[Any, ...], value: Any) -> dict:
    if isinstance(value, str):
        value = {"context": value}
    value = _mapping(ctx, path, value)
    build: dict[str, Any] = {}
    if value.get("context"):  # the defaults (".", "Dockerfile") are set after the files are merged
        context = _text(value["context"])
        remote = re.match(r"^(https?://|git@|git://|github\.com/)", context)
        build["context"] = context if remote else ctx.path(context)
    if value.get("dockerfile"):
        build["dockerfile"] = _text(value["dockerfile"])
    if value.get("args") is not None:
        build["args"] = key_values(ctx, path + ("args",), value["args"], bare=None)
    if value.get("target") is not None:
        build["target"] = _text(value["target"])
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
    raw = _mapping(ctx, path, raw)
    service: dict[str, Any] = {}
    for key, value in raw.items():
        where = path + (key,)
        if isinstance(value, Reset):
            service[key] = value
            continue
        wrapped = isinstance(value, Override)
        value = _unwrap(value)
        if isinstance(key, str) and key.startswith("x-"):
            out = value
        elif key == "extends":
            out = {"service": value} if isinstance(value, str) else dict(_mapping(ctx, where, value))
        elif value is None and key not in ("command", "entrypoint"):
            continue
        elif key in _STRINGS:
            out = _text(value)
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
            out = _ports(ctx, where, value)
        elif key == "volumes":
            out = [_volume(ctx, where + (index,), item) for index, item in enumerate(_list(ctx, where, value))]
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
            out = _bytes(ctx, where, value)
            if out == "0":  # Compose leaves a zero size out
                continue
        elif key == "ulimits":
            out = _ulimits(ctx, where, value)
        elif key == "security_opt":
            out = [_text(item) for item in _list(ctx, where, value)]
            _unique_items(ctx, where, out)
        elif key in ("cap_add", "cap_drop", "tmpfs", "expose", "profiles"):
            out = [_text(item) for item in _list(ctx, where, value)]
        elif key == "init":
            out = _bool(ctx, where, value)
        elif key == "privileged":  # Compose leaves out a false privileged
            if not _bool(ctx, where, value):
                continue
            out = True
        elif key == "devices":
            out = _devices(ctx, where, value)
        elif key == "extra_hosts":
            out = _extra_hosts(ctx, where, value)
        elif key == "logging":
            logging = _mapping(ctx, where, value)
            out = {}
            if logging.get("driver") is not None:
                out["driver"] = _text(logging["driver"])
            if logging.get("options") is not None:
                options = _mapping(ctx, where + ("options",), logging["options"])
                for name, option in options.items():
                    if isinstance(option, bool) or not isinstance(option, (str, int, float, type(None))):
                        raise ctx.fail(where + ("options", name), "must be a null, number or string")
                out["options"] = key_values(ctx, where + ("options",), options, bare="")
        elif key == "stop_grace_period":
            out = _duration(ctx, where, value)
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
    for name, spec in _mapping(ctx, (kind,), raw).items():
        where = (kind, name)
        spec = dict(_mapping(ctx, where, spec)) if spec is not None else {}
        entry: dict[str, Any] = {}
        for key, value in spec.items():
            if value is None:
                continue
            if key == "external":
                if isinstance(value, dict):
                    raise ctx.fail(where + (key,), "external: {name: ...} is obsolete; use external: true and name:")
                entry["external"] = _bool(ctx, where + (key,), value)
            elif key == "file":
                entry["file"] = ctx.path(_text(value))
            elif key == "labels":
                entry["labels"] = key_values(ctx, where + (key,), value, bare="")
            elif isinstance(key, str) and key.startswith("x-"):
                entry[key] = value
            else:
                entry[key] = _text(value)
        if kind == "secrets" and ("file" in entry) == ("environment" in entry):
            raise ctx.fail(where, "a secret needs exactly one of file: or environment:")
        result[str(name)] = entry
    return result
