"""Which Compose files a command means when it is given none: Docker Compose v2's own rule.

``COMPOSE_FILE`` when it is set; else the first of ``compose.yaml``, ``compose.yml``, ``docker-compose.yml``, ``docker-compose.yaml`` in the
current folder, else in the nearest parent folder that has one; then the first override file of
``compose.override.yaml``, ``compose.override.yml``, ``docker-compose.override.yml``,
``docker-compose.override.yaml`` beside it. (Compose warns when a folder holds several of one kind
and uses the first; so does provision.) Pure path logic: nothing is read here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_NAMES", "OVERRIDE_NAMES", "Found", "find", "looked_for"]

DEFAULT_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_NAMES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yml",
                  "docker-compose.override.yaml")


@dataclass(frozen=True)
class Found:
    files: list[Path]
    warnings: list[str] = field(default_factory=list)


def _first(folder: Path, names: tuple[str, ...], kind: str) -> tuple[Path | None, list[str]]:
    present = [folder / name for name in names if (folder / name).is_file()]
    if not present:
        return None, []
    warnings = []
    if len(present) > 1:
        warnings.append(f"found multiple {kind} files with supported names: {', '.join(map(str, present))}; "
                        f"using {present[0]}")
    return present[0], warnings


def find(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Found | None:
    """The default files for `cwd` (the main file, then its override when there is one), or None.
    `COMPOSE_FILE` in `environ` names them instead (separated by `COMPOSE_PATH_SEPARATOR`, default
    the OS's path separator), relative to `cwd`, as Compose reads it."""
    start = (cwd or Path.cwd()).absolute()
    env = os.environ if environ is None else environ
    if env.get("COMPOSE_FILE"):
        separator = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        return Found([start / name for name in env["COMPOSE_FILE"].split(separator) if name])
    for folder in (start, *start.parents):
        main, warnings = _first(folder, DEFAULT_NAMES, "config")
        if main is None:
            continue
        override, more = _first(folder, OVERRIDE_NAMES, "override")
        return Found([main] + ([override] if override else []), warnings + more)
    return None


def looked_for(cwd: Path | None = None) -> str:
    """What `find` looked for, for the error when it found nothing."""
    return f"{', '.join(DEFAULT_NAMES)} in {(cwd or Path.cwd()).absolute()} and its parent folders"
