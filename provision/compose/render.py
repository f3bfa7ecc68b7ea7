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
        out["networks"] = copy.deepcopy(project.networks)
    out["services"] = {name: _without_extensions(spec) for name, spec in project.services.items()}
    if project.volumes:
        out["volumes"] = copy.deepcopy(project.volumes)
    if project.secrets:
        out["secrets"] = copy.deepcopy(project.secrets)
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
        return {k: _escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_dollars(v) for v in value]
    return value
