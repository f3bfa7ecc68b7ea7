"""A Compose project loaded the way Docker Compose v2 loads it: the ``.env`` beside the first
file, interpolation, ``include``, ``extends``, several files merged with Compose's override
rules, the project name, profiles, env files resolved into ``environment``, default networks,
and resource names prefixed with the project name."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.compose.dotenv import read_env_file
from provision.compose.errors import ComposeError, error_at
from provision.compose.interpolation import InterpolationError, interpolate_tree
from provision.compose.merge import enforce_unicity, merge_service, merge_tree, strip_tags
from provision.compose.normalize import (
    FileContext,
    extra_hosts_printed,
    normalize_resources,
    normalize_service,
    resolve_path,
)
from provision.compose.reading import read_compose_file
from provision.compose.support import check_supported

__all__ = ["ComposeProject", "Origin", "load", "normalize_project_name"]


@dataclass(frozen=True)
class Origin:
    """Where a service was (last) defined: for FILE:LINE messages after loading."""

    file: Path
    line: int | None


@dataclass
class ComposeProject:
    """The normalized project. Services, networks, volumes and secrets hold exactly the values
    ``docker compose config --format json`` prints for them (see :func:`to_compose_json`)."""

    name: str
    working_dir: Path
    files: list[Path]
    services: dict[str, dict[str, Any]]
    networks: dict[str, dict[str, Any]]
    volumes: dict[str, dict[str, Any]]
    secrets: dict[str, dict[str, Any]]
    extensions: dict[str, Any]
    environment: dict[str, str]
    profiles: tuple[str, ...] = ()
    origins: dict[str, Origin] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def normalize_project_name(name: str) -> str:
    """Compose's rule: lower case, only ``a-z0-9_-``, starting with a letter or digit."""
    name = re.sub(r"[^a-z0-9_-]", "", name.lower())
    return name.lstrip("_-")


_KEPT_WHEN_EMPTY = {"build", "deploy", "healthcheck", "logging", "command", "entrypoint"}
_VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class _FileModel:
    name: str | None = None
    services: dict[str, dict] = field(default_factory=dict)
    networks: dict[str, dict] = field(default_factory=dict)
    volumes: dict[str, dict] = field(default_factory=dict)
    secrets: dict[str, dict] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _read(path: Path, env: Mapping[str, str], base_dir: Path | None = None,
          unset: list[str] | None = None) -> tuple[Any, FileContext]:
    tree = read_compose_file(path)
    if tree is None:
        raise ComposeError("empty compose file", file=path)
    if not isinstance(tree, dict):
        raise ComposeError("top-level object must be a mapping", file=path, line=getattr(tree, "line", 1))
    check_supported(tree, path)
    try:
        tree = interpolate_tree(tree, env, unset=lambda name: unset.append(name) if unset is not None else None)
    except InterpolationError as exc:
        raise error_at(path, tree, exc.path, exc.message) from None
    return tree, FileContext(path, tree, base_dir or path.parent, env.get("HOME"))


def _load_file(path: Path, env: Mapping[str, str], seen: tuple[Path, ...],
               base_dir: Path | None = None) -> _FileModel:
    if path in seen:
        raise ComposeError(f"include cycle: {' -> '.join(str(p) for p in seen + (path,))}", file=seen[-1])
    unset: list[str] = []
    tree, ctx = _read(path, env, base_dir, unset)
    model = _FileModel()
    for name in dict.fromkeys(unset):
        model.warnings.append(f"{path}: the {name!r} variable is not set, defaulting to a blank string")
    if "version" in tree:
        model.warnings.append(f"{path}: the attribute `version` is obsolete, it will be ignored")
    if tree.get("name") is not None:
        model.name = str(tree["name"])
    for key, value in tree.items():
        if isinstance(key, str) and key.startswith("x-"):
            model.extensions[key] = strip_tags(value)
    for kind in ("networks", "volumes", "secrets"):
        setattr(model, kind, normalize_resources(ctx, kind, strip_tags(tree.get(kind))))
    services = tree.get("services") or {}
    if not isinstance(services, dict):
        raise ctx.fail(("services",), "expected a mapping of services")
    raw = {str(name): normalize_service(ctx, str(name), spec) for name, spec in services.items()}
    for name in raw:
        model.origins[name] = Origin(path, ctx.tree["services"].line_of(name))
    for name in raw:
        model.services[name] = _extended(ctx, name, raw, env, (path,), ())
    for index, entry in enumerate(tree.get("include") or []):
        _include(ctx, index, entry, env, model, seen + (path,))
    return model


def _include(ctx: FileContext, index: int, entry: Any, env: Mapping[str, str], model: _FileModel,
             seen: tuple[Path, ...]) -> None:
    where = ("include", index)
    spec = {"path": entry} if isinstance(entry, str) else dict(entry)
    paths = spec.get("path")
    paths = [paths] if isinstance(paths, str) else list(paths or [])
    if not paths:
        raise ctx.fail(where, "an include needs a path")
    project_dir = spec.get("project_directory")
    base_dir = Path(ctx.path(str(project_dir))) if project_dir else None
    env_files = spec.get("env_file")
    env_files = [env_files] if isinstance(env_files, str) else list(env_files or [])
    included_env = dict(env)
    combined = _FileModel()
    for index_path, one in enumerate(paths):
        target = Path(ctx.path(str(one)))
        if not target.is_file():
            raise ctx.fail(where, f"included file {target} not found")
        if index_path == 0:
            # the included project's .env (or the include's env_file:), under the including environment
            candidates = [Path(ctx.path(str(f))) for f in env_files] or [(base_dir or target.parent) / ".env"]
            own: dict[str, str] = {}
            for candidate in candidates:
                if candidate.is_file():
                    own.update(read_env_file(candidate, env.get))
                elif env_files:
                    raise ctx.fail(where + ("env_file",), f"env file {candidate} not found")
            included_env = {**own, **env}
        _fold(combined, _load_file(target, included_env, seen, base_dir))
    for kind in ("services", "networks", "volumes", "secrets"):
        mine = getattr(model, kind)
        for name, value in getattr(combined, kind).items():
            if name in mine and mine[name] != value:  # Compose accepts the same definition twice
                raise ctx.fail(where, f"{kind}.{name} conflicts with imported resource")
            mine[name] = value
    for name, origin in combined.origins.items():
        model.origins.setdefault(name, origin)
    model.warnings.extend(combined.warnings)


def _fold(into: _FileModel, model: _FileModel) -> None:
    """``model`` (a later file) merged onto ``into`` with Compose's override rules."""
    into.name = model.name or into.name
    for svc, spec in model.services.items():
        into.services[svc] = merge_service(into.services[svc], spec) if svc in into.services else strip_tags(spec)
    for kind in ("networks", "volumes", "secrets"):
        store = getattr(into, kind)
        for key, value in getattr(model, kind).items():
            store[key] = merge_tree(store.get(key, {}), value)
    into.extensions = merge_tree(into.extensions, model.extensions)
    into.origins.update(model.origins)
    into.warnings.extend(model.warnings)


def _extended(ctx: FileContext, name: str, services: dict[str, dict], env: Mapping[str, str],
              files: tuple[Path, ...], chain: tuple[tuple[Path, str], ...]) -> dict:
    service = services[name]
    extends = strip_tags(service.get("extends"))
    if not extends:
        return service
    link = (ctx.file, name)
    if link in chain:
        raise ctx.fail(("services", name, "extends"), "circular extends")
    base_name = str(extends.get("service") or "")
    if not base_name:
        raise ctx.fail(("services", name, "extends"), "extends needs a service")
    if extends.get("file"):
        base_path = Path(ctx.path(str(extends["file"])))
        if not base_path.is_file():
            raise ctx.fail(("services", name, "extends", "file"), f"file {base_path} not found")
        tree, base_ctx = _read(base_path, env)
        base_services = tree.get("services") or {}
        if base_name not in base_services:
            raise ctx.fail(("services", name, "extends"), f"service {base_name!r} not found in {base_path}")
        base_all = {base_name: normalize_service(base_ctx, base_name, base_services[base_name])}
    else:
        base_ctx, base_all = ctx, services
        if base_name not in services:
            raise ctx.fail(("services", name, "extends"), f"service {base_name!r} not found")
    base = _extended(base_ctx, base_name, base_all, env, files, chain + (link,))
    own = {k: v for k, v in service.items() if k != "extends"}
    return merge_service(base, own)


def load(
    files: Sequence[Path | str],
    *,
    environ: Mapping[str, str],
    project_name: str | None = None,
    profiles: Sequence[str] = (),
    env_file: Path | str | None = None,
) -> ComposeProject:
    """Load ``files`` (later files override earlier ones) as ``docker compose -f ... config``.

    ``environ`` is the operator's environment (pass ``os.environ``); ``env_file`` replaces the
    ``.env`` beside the first file (``--env-file``). Raises ComposeError (an InputError, exit 4)
    with ``FILE:LINE: services.x.key: message``."""
    if not files:
        raise ComposeError("no Compose file given")
    paths = [Path(os.path.abspath(str(f))) for f in files]
    working_dir = paths[0].parent
    dot_env_path = Path(resolve_path(str(env_file), Path.cwd())) if env_file else working_dir / ".env"
    dot_env: dict[str, str] = {}
    if dot_env_path.is_file():
        dot_env = read_env_file(dot_env_path, environ.get)
    elif env_file:
        raise ComposeError("env file not found", file=dot_env_path)
    env = {**dot_env, **dict(environ)}

    combined = _FileModel()
    for path in paths:  # relative paths of every -f file resolve against the first file's folder
        _fold(combined, _load_file(path, env, (), working_dir))
        for svc, spec in combined.services.items():  # Compose validates after each file
            for dep, dep_spec in (spec.get("depends_on") or {}).items():
                if "condition" not in dep_spec:
                    origin = combined.origins.get(svc)
                    raise ComposeError(f"services.{svc}.depends_on.{dep}: missing property 'condition'", file=path,
                                       line=origin.line if origin and origin.file == path else None)
    name, services, networks, volumes, secrets = (combined.name, combined.services, combined.networks,
                                                  combined.volumes, combined.secrets)
    extensions, origins, warnings = combined.extensions, combined.origins, combined.warnings

    project = _project_name(project_name, env, name, working_dir, paths[0])
    active = tuple(profiles) or tuple(p for p in env.get("COMPOSE_PROFILES", "").split(",") if p)
    enabled = {svc: spec for svc, spec in services.items()
               if not spec.get("profiles") or "*" in active or set(spec["profiles"]) & set(active)}

    for svc, spec in enabled.items():
        origin = origins.get(svc)
        _finalize_service(svc, spec, (origin.file, origin.line) if origin else (paths[0], None), env=env,
                          working_dir=working_dir, services=services, enabled=enabled, networks=networks,
                          volumes=volumes, secrets=secrets)

    # like Compose, resources no enabled service uses are left out
    used_networks = {net for spec in enabled.values() for net in (spec.get("networks") or {})}
    if "default" in used_networks:
        networks.setdefault("default", {})
    networks = {key: spec for key, spec in networks.items() if key in used_networks}
    used_volumes = {m.get("source") for spec in enabled.values() for m in (spec.get("volumes") or [])
                    if m["type"] == "volume"}
    volumes = {key: spec for key, spec in volumes.items() if key in used_volumes}
    used_secrets = {ref["source"] for spec in enabled.values() for ref in (spec.get("secrets") or [])}
    secrets = {key: spec for key, spec in secrets.items() if key in used_secrets}
    return ComposeProject(
        name=project,
        working_dir=working_dir,
        files=paths,
        services=enabled,
        networks={key: _resource_name(project, key, spec, ipam=True) for key, spec in networks.items()},
        volumes={key: _resource_name(project, key, spec) for key, spec in volumes.items()},
        secrets={key: _resource_name(project, key, spec) for key, spec in secrets.items()},
        extensions=extensions,
        environment=env,
        profiles=active,
        origins={svc: origins[svc] for svc in enabled if svc in origins},
        warnings=warnings,
    )


def _project_name(explicit_name: str | None, env: Mapping[str, str], name: str | None, working_dir: Path,
                  first: Path) -> str:
    """An explicit name (-p, COMPOSE_PROJECT_NAME) must already be valid; ``name:`` and the folder
    name are normalized (lower case, invalid characters dropped), as Compose does."""
    explicit = explicit_name or env.get("COMPOSE_PROJECT_NAME")
    if explicit:
        if not _VALID_NAME.match(explicit):
            raise ComposeError(f"invalid project name {explicit!r}: must consist only of lowercase alphanumeric "
                               "characters, hyphens, and underscores as well as start with a letter or number")
        return explicit
    chosen = name or working_dir.name
    project = normalize_project_name(chosen)
    if not project:
        raise ComposeError(f"invalid project name {chosen!r} (it needs letters or digits)", file=first)
    return project


def _finalize_service(svc: str, spec: dict, where: tuple[Path, int | None], *, env: Mapping[str, str],
                      working_dir: Path, services: dict, enabled: dict, networks: dict, volumes: dict,
                      secrets: dict) -> None:
    """After merging: implied dependencies, references checked, env files and bare names resolved,
    defaults set and empty values dropped, as ``docker compose config`` prints a service."""
    for key in ("network_mode", "ipc", "pid"):  # service:NAME implies a dependency, as in Compose
        value = spec.get(key) or ""
        if value.startswith("service:"):
            spec.setdefault("depends_on", {}).setdefault(
                value[len("service:"):], {"condition": "service_started", "restart": True, "required": True})
    for dep, dep_spec in (spec.get("depends_on") or {}).items():
        if "condition" not in dep_spec:
            raise ComposeError(f"services.{svc}.depends_on.{dep}: missing property 'condition'", file=where[0],
                               line=where[1])
        dep_spec.setdefault("required", True)
        if dep not in services or (dep not in enabled and dep_spec.get("required", True)):
            raise ComposeError(f"services.{svc}.depends_on: service {svc!r} depends on undefined service "
                               f"{dep!r}" + (" (it is in a profile that is not enabled)" if dep in services
                                             else ""), file=where[0], line=where[1])
    enforce_unicity(spec)
    if spec.get("extra_hosts"):
        spec["extra_hosts"] = extra_hosts_printed(spec["extra_hosts"])
    options = spec.get("security_opt") or []
    for index, option in enumerate(options):
        if option in options[:index]:  # after merging files: Compose's schema wants unique items
            raise ComposeError(f"services.{svc}.security_opt: items at {options.index(option)} and {index} are "
                               "equal", file=where[0], line=where[1])
    _resolve_environment(spec, env, where)
    _resolve_build_args(spec, env)
    if "build" in spec:
        build = spec["build"]
        spec["build"] = {"context": build.get("context") or str(working_dir),
                         "dockerfile": build.get("dockerfile") or "Dockerfile",
                         **{k: v for k, v in build.items() if k not in ("context", "dockerfile")}}
    if "network_mode" not in spec and not spec.get("networks"):
        spec["networks"] = {"default": None}
    for net in spec.get("networks") or {}:
        if net not in networks and net != "default":
            raise ComposeError(f"services.{svc}.networks: service {svc!r} refers to undefined network {net!r}",
                               file=where[0], line=where[1])
    for mount in spec.get("volumes") or []:
        if mount["type"] == "volume" and mount.get("source") and mount["source"] not in volumes:
            raise ComposeError(f"services.{svc}.volumes: service {svc!r} refers to undefined volume "
                               f"{mount['source']!r}", file=where[0], line=where[1])
    for ref in spec.get("secrets") or []:
        if ref["source"] not in secrets:
            raise ComposeError(f"services.{svc}.secrets: service {svc!r} refers to undefined secret "
                               f"{ref['source']!r}", file=where[0], line=where[1])
    for key in [k for k, v in spec.items() if v in ("", [], {}) and k not in _KEPT_WHEN_EMPTY]:
        del spec[key]  # Compose leaves empty values out (Go's omitempty)
    spec.setdefault("command", None)
    spec.setdefault("entrypoint", None)


def _resource_name(project: str, key: str, spec: dict, ipam: bool = False) -> dict:
    result = dict(spec)
    if "name" not in result:
        result["name"] = key if result.get("external") else f"{project}_{key}"
    if ipam:
        result.setdefault("ipam", {})
    return result


def _resolve_build_args(spec: dict, env: Mapping[str, str]) -> None:
    """A bare build arg takes the operator's value, and is left out without one (as Compose)."""
    build = spec.get("build")
    if not build or "args" not in build:
        return
    args = {key: env.get(key) if value is None else value for key, value in build["args"].items()}
    args = {key: value for key, value in args.items() if value is not None}
    if args:
        build["args"] = args
    else:
        del build["args"]


def _resolve_environment(spec: dict, env: Mapping[str, str], where: tuple[Path, int | None]) -> None:
    """Env files first, then ``environment`` on top; a bare name takes the operator's value."""
    merged: dict[str, Any] = {}
    for entry in spec.pop("env_file", None) or []:
        path = Path(entry["path"])
        if not path.is_file():
            if entry.get("required", True):
                raise ComposeError(f"env file {path} not found", file=where[0], line=where[1])
            continue
        merged.update(read_env_file(path, env.get))
    for key, value in (spec.get("environment") or {}).items():
        merged[key] = env.get(key) if value is None else value
    if merged or "environment" in spec:
        spec["environment"] = merged
