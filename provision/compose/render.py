"""The normalized project in the shape of ``docker compose config --format json``."""

from __future__ import annotations

import copy
from typing import Any

from provision.compose.project import ComposeProject

__all__ = ["to_compose_json"]


def to_compose_json(project: ComposeProject) -> dict[str, Any]:
    """``name``, ``services``, and ``networks``/``volumes``/``secrets`` and top-level ``x-*``
    when present: the same values ``docker compose config --format json`` prints for them.

    Strings are printed with ``$`` written ``$$``, as Compose prints them (so the output reads
    back as the same values); the model holds the real values. Like Compose's JSON, ``x-*`` keys inside services are left out here (they stay in
    ``project.services``: that is where ``x-provision`` is read from)."""
    out: dict[str, Any] = {"name": project.name}
    if project.networks:
        out["networks"] = _without_extensions(project.networks)
    out["services"] = {name: _integral_cpus(_without_extensions(spec)) for name, spec in project.services.items()}
    if project.volumes:
        out["volumes"] = _without_extensions(project.volumes)
    if project.secrets:
        out["secrets"] = _without_extensions(project.secrets)
    out.update(copy.deepcopy(project.extensions))
    return _escape_dollars(out)


def _without_extensions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_extensions(v) for k, v in value.items() if not (isinstance(k, str) and k.startswith("x-"))}
    if isinstance(value, list):
        return [_without_extensions(v) for v in value]
    return copy.deepcopy(value)


def _escape_dollars(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {_escape_dollars(k): _escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_dollars(v) for v in value]
    return value


def _integral_cpus(service: dict[str, Any]) -> dict[str, Any]:
    """``cpus: 2.0`` printed ``2``, as Go prints a whole float."""
    for section in (service.get("deploy") or {}).get("resources", {}).values():
        cpus = section.get("cpus")
        if isinstance(cpus, float) and cpus.is_integer():
            section["cpus"] = int(cpus)
    return service
