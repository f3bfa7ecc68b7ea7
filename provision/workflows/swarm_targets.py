"""The members of a swarm from the inventory: the selected hosts with their roles resolved (pure input:
no connection; bad input raises InputError, exit 4)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from provision.config.host_settings import SwarmSettings, swarm_settings
from provision.operations.swarm import MANAGERS_GROUP, ROLE_VAR, WORKERS_GROUP, no_manager, role_for
from provision.workflows.targets import Target, load_targets


def settings_of(target: Target) -> SwarmSettings:
    return swarm_settings(target.name, target.hostvars)


def resolve_roles(targets: list[Target], managers: list[str], workers: list[str]) -> list[Target]:
    """The targets with `swarm_role` set in their hostvars from the groups (a host var wins).

    Raises InputError for a bad swarm_role value, or a host in both groups without a swarm_role."""
    resolved = []
    for target in targets:
        role = role_for(target.name, settings_of(target), managers, workers)
        resolved.append(replace(target, hostvars={**target.hostvars, ROLE_VAR: role}) if role else target)
    return resolved


def role_of(target: Target) -> str | None:
    return settings_of(target).swarm_role


def manager_target(targets: list[Target]) -> Target:
    """The first manager in inventory order (targets from load_swarm_targets, or with swarm_role set).

    Raises InputError when there is none."""
    for target in targets:
        if role_of(target) == "manager":
            return target
    raise no_manager()


def load_swarm_targets(inventory_path: str | Path, limit: str | None = None) -> list[Target]:
    """The selected hosts, their roles resolved; raises InputError (before any connection) when the
    inventory is bad, a role is bad, or no manager is selected."""
    from provision.config.inventory import load_inventory

    targets = load_targets(inventory_path, limit)
    inventory = load_inventory(Path(inventory_path))
    members = {group: inventory.group_hosts(group) if group in inventory.groups else []
               for group in (MANAGERS_GROUP, WORKERS_GROUP)}
    targets = resolve_roles(targets, members[MANAGERS_GROUP], members[WORKERS_GROUP])
    manager_target(targets)
    return targets
