"""Compose's override rules for several ``-f`` files and ``extends``, applied to services already
in the long syntax: mappings merge; ``command``, ``entrypoint`` and ``healthcheck.test`` are
replaced; ports, volumes, devices, secrets and env files are appended and de-duplicated by their
key (extra_hosts by value) (a later entry with the same key takes the earlier one's place); ``logging`` merges only when
the driver is the same; each ulimit is replaced whole; ``!reset`` drops a key and ``!override``
replaces a value without merging."""

from __future__ import annotations

import copy
from typing import Any, Callable

from provision.compose.reading import Override, Reset

__all__ = ["UNIQUE_KEYS", "enforce_unicity", "merge_service", "merge_tree", "strip_tags", "unique"]


def _port_key(port: dict) -> Any:
    return (port.get("host_ip", "0.0.0.0"), port.get("published"), port.get("target"), port.get("protocol"))


def _secret_key(ref: dict) -> Any:
    return ref.get("target") or f"/run/secrets/{ref.get('source')}"


UNIQUE_KEYS: dict[str, Callable[[Any], Any]] = {
    "ports": _port_key,
    "volumes": lambda v: v.get("target"),
    "devices": lambda d: d.get("target"),
    "secrets": _secret_key,
    "env_file": lambda e: e.get("path"),
    "expose": lambda e: e,
    "cap_add": lambda e: e,
    "cap_drop": lambda e: e,
    "profiles": lambda e: e,
    "tmpfs": lambda e: e,
}
_REPLACED = {"command", "entrypoint"}


def unique(items: list, key: Callable[[Any], Any]) -> list:
    """Later items with an equal key replace earlier ones, in the earlier one's position."""
    result: list = []
    seen: dict[Any, int] = {}
    for item in items:
        k = key(item)
        if k in seen:
            result[seen[k]] = item
        else:
            seen[k] = len(result)
            result.append(item)
    return result


def merge_tree(base: Any, over: Any) -> Any:
    """Generic merge: mappings merge key by key, lists concatenate, anything else is replaced."""
    if isinstance(over, Override):
        return strip_tags(over.value)
    if isinstance(base, dict) and isinstance(over, dict):
        result = dict(base)
        for key, value in over.items():
            if isinstance(value, Reset):
                result.pop(key, None)
            elif key in result:
                result[key] = merge_tree(result[key], value)
            else:
                result[key] = strip_tags(value)
        return result
    if isinstance(base, list) and isinstance(over, list):
        return base + strip_tags(over)
    return strip_tags(over)


def strip_tags(value: Any) -> Any:
    """The value without Override wrappers and with Reset keys removed."""
    if isinstance(value, Override):
        return strip_tags(value.value)
    if isinstance(value, dict):
        return {k: strip_tags(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip_tags(v) for v in value if not isinstance(v, Reset)]
    return value


def merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` (a later file, or the extending service) applied onto ``base``."""
    result = copy.deepcopy(strip_tags(base))
    for key, value in over.items():
        if isinstance(value, Reset):
            result.pop(key, None)
            continue
        if isinstance(value, Override) or key not in result or key in _REPLACED:
            result[key] = strip_tags(value)
            continue
        old = result[key]
        if key in UNIQUE_KEYS:
            result[key] = unique(old + strip_tags(value), UNIQUE_KEYS[key])
        elif key == "extra_hosts":  # a later file's entries already present (as written) are dropped
            result[key] = old + [host for host in strip_tags(value) if host not in old]
        elif key == "logging":
            same = value.get("driver") is None or old.get("driver") is None or value.get("driver") == old.get("driver")
            result[key] = merge_tree(old, value) if same else strip_tags(value)
        elif key == "ulimits":
            result[key] = {**old, **strip_tags(value)}
        elif key == "healthcheck":
            merged = merge_tree(old, {k: v for k, v in value.items() if k != "test"})
            if "test" in value:
                merged["test"] = strip_tags(value["test"])
            result[key] = merged
        elif key == "networks":
            merged = dict(old)
            for name, spec in value.items():
                if isinstance(spec, Reset):
                    merged.pop(name, None)
                elif merged.get(name) is None or spec is None or isinstance(spec, Override):
                    merged[name] = strip_tags(spec) if spec is not None else merged.get(name)
                else:
                    entry = merge_tree(merged[name], spec)
                    if "aliases" in entry:
                        entry["aliases"] = unique(entry["aliases"], lambda a: a)
                    merged[name] = entry
            result[key] = merged
        else:
            result[key] = merge_tree(old, value)
    return result


def enforce_unicity(service: dict[str, Any]) -> None:
    """Entries with the same key in one list (even within one file) collapse, as in Compose."""
    for key, key_of in UNIQUE_KEYS.items():
        if isinstance(service.get(key), list):
            service[key] = unique(service[key], key_of)
