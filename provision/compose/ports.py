"""Service ports: the short syntax read as Docker's port-spec parser reads it, and the long
syntax, both printed as ``docker compose config`` prints them."""

from __future__ import annotations

import ipaddress
from typing import Any

from provision.compose.values import FileContext, as_int, as_list, as_text

__all__ = ["parse_ports"]


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


def parse_ports(ctx: FileContext, path: tuple[Any, ...], value: Any) -> list[dict]:
    """A ``ports:`` list in the long syntax (a range expands to one entry per port)."""
    result: list[dict] = []
    written: list[Any] = []
    for index, item in enumerate(as_list(ctx, path, value)):
        where = path + (index,)
        # Compose drops an item written again before it collapses equal entries (merge.UNIQUE_KEYS, the later
        # one winning): `[A, B, A]` where B differs from A only by `0.0.0.0` keeps B. As written: 1 and '1'
        # are the same item, '1-1:1' and '1:1' are not (checked with the oracle: test_compose_oracle).
        raw = item if isinstance(item, dict) or isinstance(item, bool) else str(item)
        if raw in written:
            continue
        written.append(raw)
        if isinstance(item, dict):
            if "target" not in item:
                raise ctx.fail(where, "a long-syntax port needs a target")
            port: dict[str, Any] = {}
            if item.get("name") is not None:
                port["name"] = as_text(item["name"])
            port["mode"] = as_text(item.get("mode") or "ingress")
            if item.get("host_ip"):
                port["host_ip"] = as_text(item["host_ip"])
            port["target"] = as_int(ctx, where + ("target",), item["target"])
            if item.get("published") not in (None, ""):
                port["published"] = as_text(item["published"])
            port["protocol"] = as_text(item.get("protocol") or "tcp")
            if item.get("app_protocol"):
                port["app_protocol"] = as_text(item["app_protocol"])
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
