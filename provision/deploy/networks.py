"""The stack's networks, for a single-host deploy (bridge) and a Swarm deploy (attachable overlay):
which ones the services use, whether an existing one is provision's, and how one is created."""

from __future__ import annotations

from typing import Any

from provision.deploy.container_spec import LABEL_STACK

FOREIGN = (f"exists but was not created by provision (no {LABEL_STACK} label); "
           "give the playbook's network another `name:`")


def needed_networks(playbook, services: list[str]) -> list[tuple[str, Any]]:
    """(real name, NetworkSpec or None) of every network the services use, in first-use order."""
    networks = playbook.networks or {}
    out: dict[str, Any] = {}
    for name in services:
        for key in playbook.services[name].networks or ["default"]:
            real = playbook.default_network if key == "default" and key not in networks else playbook.network_name(key)
            out.setdefault(real, networks.get(key))
    return list(out.items())


def is_ours(attrs: dict) -> bool:
    """A network or volume created by provision (it carries the stack label)."""
    return (attrs.get("Labels") or {}).get(LABEL_STACK) is not None


def driver(spec: Any, *, swarm: bool) -> str:
    return getattr(spec, "driver", None) or ("overlay" if swarm else "bridge")


def create_kwargs(stack: str, spec: Any, *, swarm: bool) -> dict[str, Any]:
    """Keyword arguments for `client.networks.create(name, **kwargs)`; under Swarm always attachable
    and swarm-scoped (so `docker run` and services alike can join it)."""
    kwargs: dict[str, Any] = {
        "driver": driver(spec, swarm=swarm),
        "labels": {LABEL_STACK: stack, **(getattr(spec, "labels", None) or {})},
        "internal": bool(getattr(spec, "internal", False)),
        "options": getattr(spec, "driver_opts", None) or None,
    }
    if swarm:
        kwargs.update(attachable=True, scope="swarm")
    else:
        kwargs["attachable"] = bool(getattr(spec, "attachable", False)) or None
    return kwargs
