"""From an inventory path and a --limit pattern to the hosts to act on. Pure input: no connection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provision.config.connection import ConnectionSettings, connection_settings
from provision.errors import InputError


@dataclass(frozen=True)
class Target:
    name: str
    settings: ConnectionSettings
    hostvars: dict


def load_targets(inventory_path: str | Path, limit: str | None = None) -> list[Target]:
    """Every selected host with its connection settings; raises InputError before any connection."""
    from provision.config import inventory_path as named

    path = named.resolve(inventory_path)
    if not path.exists():
        hint = " (run `provision sandbox up` to create the sandbox fleet)" if path.name == "sandbox.yml" \
            else named.not_found_hint(inventory_path)
        raise InputError(f"inventory not found{hint}", file=path)
    from provision.config.inventory import load_inventory

    inventory = load_inventory(path)
    from provision.config.patterns import unknown_names

    unknown = unknown_names(inventory, limit) if limit else []
    if unknown:
        raise InputError(f"--limit {limit!r}: {', '.join(map(repr, unknown))} is not a host or group of the inventory",
                         file=path)
    names = inventory.select(limit) if limit else inventory.select("all")
    if not inventory.hosts:
        raise InputError("the inventory has no hosts", file=path)
    if limit and not names:
        raise InputError(f"--limit {limit!r} matches no host in the inventory", file=path)
    targets = []
    for name in names:
        hostvars = inventory.host_vars(name)
        # FILE: for a bad host/user value (the inventory keeps no per-variable lines yet: FILE:LINE needs them)
        targets.append(Target(name, connection_settings(name, hostvars, locate=lambda _var: (path, None)), hostvars))
    return targets
