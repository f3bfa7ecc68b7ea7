"""Cross-checks of a stack (second pass, named in docs/playbook.md): what one service says about the
others (networks, volumes, depends_on), what it needs from the operator (secrets, env files, build
contexts), and combinations the engine cannot run (published ports with replicas or start-first).

Each problem is located in the loaded YAML (``raw``) at the value's line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable

from provision.deploy.stack.env_file import read_env_file
from provision.deploy.stack.located import located
from provision.deploy.stack.models import MountSpec, Playbook, Service
from provision.deploy.stack.scalars import is_relative_path, split_volume
from provision.deploy.stack.yaml_source import Loc, raw_get
from provision.errors import InputError

__all__ = ["ENV_NAME_RE", "NAME_RE", "CrossChecks"]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # services, network and volume keys
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CrossChecks:
    """The second pass over a validated stack: references, secrets, ports, build contexts, env files, cycles."""

    def __init__(self, playbook: Playbook, raw: Any, environ: Mapping[str, str], require_secrets: bool,
                 require_build_contexts: bool = False,
                 locate: Callable[[Loc, str], InputError] | None = None) -> None:
        self.p = playbook
        self.raw = raw
        self.environ = environ
        self.require_secrets = require_secrets
        self.require_build_contexts = require_build_contexts
        self.locate = locate  # a Compose project: its own FILE:LINE finder (several files)

    def fail(self, loc: Loc, message: str) -> InputError:
        if self.locate is not None:
            return self.locate(loc, message)
        return located(message, loc, self.raw, self.p.path)

    def run(self) -> None:
        self.names()
        for name, service in self.p.services.items():
            base = ("services", name)
            self.networks(base, service)
            self.volumes(base, service)
            self.depends_on(base, service)
            self.secrets(base, service)
            self.file_secrets(base, service)
            self.ports(base, service)
            self.build(base, service)
            self.env_files(base, service)
        self.cycles()
        self.registry()

    def names(self) -> None:
        for section in ("networks", "volumes", "services"):
            for key in getattr(self.p, section):
                if not NAME_RE.fullmatch(key):
                    raise self.fail((section, key), f"invalid name {key!r} (letters, digits, '_', '.' and '-')")

    def networks(self, base: Loc, service: Service) -> None:
        for index, key in enumerate(service.networks):
            if key not in self.p.networks and key != "default":
                raise self.fail((*base, "networks", index),
                                f"undeclared network {key!r} (declare it under networks:)")

    def volumes(self, base: Loc, service: Service) -> None:
        for index, entry in enumerate(service.volumes):
            if isinstance(entry, MountSpec):
                if entry.type == "volume" and entry.source not in self.p.volumes:
                    raise self.fail((*base, "volumes", index),
                                    f"undeclared volume {entry.source!r} (declare it under volumes:)")
                continue
            source = split_volume(entry)[0]
            if not source.startswith("/") and not is_relative_path(source) and source not in self.p.volumes:
                raise self.fail((*base, "volumes", index),
                                f"undeclared volume {source!r} (declare it under volumes:)")

    def depends_on(self, base: Loc, service: Service) -> None:
        for index, name in enumerate(service.depends_on):
            if name not in self.p.services:
                raise self.fail((*base, "depends_on", index), f"unknown service {name!r}")

    def secrets(self, base: Loc, service: Service) -> None:
        for index, name in enumerate(service.secrets):
            loc = (*base, "secrets", index)
            if not ENV_NAME_RE.fullmatch(name):
                raise self.fail(loc, f"invalid secret name {name!r} (must be an environment variable name)")
            if self.require_secrets and name not in self.environ:
                raise self.fail(loc, f"secret {name!r} is not set in the environment")

    def file_secrets(self, base: Loc, service: Service) -> None:
        """Compose secrets: declared, their variable set / file readable (deploy), one target each."""
        targets: set[str] = set()
        for index, secret in enumerate(service.file_secrets):
            loc = (*base, "secrets", index)
            source = self.p.secret_sources.get(secret.source)
            if source is None:
                raise self.fail(loc, f"undeclared secret {secret.source!r} (declare it under secrets:)")
            if secret.target in targets:
                raise self.fail(loc, f"two secrets mounted at {secret.target}")
            targets.add(secret.target)
            if not self.require_secrets:
                continue
            if source.environment is not None and source.environment not in self.environ:
                raise self.fail(("secrets", secret.source, "environment"),
                                f"environment variable {source.environment!r} is not set")
            if source.file is not None and source.value(self.environ) is None:
                raise self.fail(("secrets", secret.source, "file"), f"cannot read {source.file} (a UTF-8 file)")

    def ports(self, base: Loc, service: Service) -> None:
        if service.container_name is not None and service.replicas > 1:
            raise self.fail((*base, "container_name"), f"container_name {service.container_name!r} would collide "
                                                       f"between {service.replicas} replicas (use replicas: 1)")
        published = service.published_ports()
        if not published:
            return
        index = service.ports.index(published[0])
        if service.replicas > 1:
            raise self.fail((*base, "ports", index),
                            f"published port {published[0].published} would collide between "
                            f"{service.replicas} replicas (drop the published port or use replicas: 1)")
        if service.deploy.update_config.order == "start-first":
            raise self.fail((*base, "deploy", "update_config", "order"),
                            f"start-first cannot be used with published port {published[0].published} "
                            "(the new container could not bind it; use stop-first)")

    def build(self, base: Loc, service: Service) -> None:
        if service.build_on == "remote" and service.build is None:
            raise self.fail((*base, "build_on"), "build_on: remote needs 'build'")
        if service.build is None or not self.require_build_contexts:
            return
        context = service.build.context
        if "://" in context or context.startswith("git@"):
            return  # a remote context: the engine fetches it
        short = isinstance(raw_get(self.raw, (*base, "build")), str)
        loc = (*base, "build") if short else (*base, "build", "context")
        folder = self.p.base_dir / context
        if not folder.exists():
            raise self.fail(loc, f"build context {context!r} not found (relative to the playbook)")
        if not folder.is_dir():
            raise self.fail(loc, f"build context {context!r} is not a folder")
        dockerfile = service.build.dockerfile
        if dockerfile and "://" not in dockerfile and not (folder / dockerfile).is_file():
            raise self.fail((*base, "build", "dockerfile"),
                            f"dockerfile {dockerfile!r} not found (relative to the build context)")

    def env_files(self, base: Loc, service: Service) -> None:
        written_as_list = isinstance(raw_get(self.raw, (*base, "env_file")), list)
        for index, name in enumerate(service.env_file):
            env_path = self.p.base_dir / name
            loc = (*base, "env_file", index) if written_as_list else (*base, "env_file")
            if not env_path.exists():
                raise self.fail(loc, f"env file {name!r} not found (relative to the playbook)")
            try:
                read_env_file(env_path)
            except InputError as exc:
                if exc.line is None:  # the file as a whole (a directory, a pipe, too large): at the playbook's line
                    raise self.fail(loc, f"env file {name!r}: {exc.message}") from None
                raise

    def cycles(self) -> None:
        state: dict[str, str] = {}

        def visit(name: str, trail: list[str]) -> None:
            state[name] = "open"
            for dep in self.p.services[name].depends_on:
                if state.get(dep) == "open":
                    cycle = [*trail[trail.index(dep):], dep]
                    raise self.fail(("services", dep, "depends_on"), f"dependency cycle {' -> '.join(cycle)}")
                if dep not in state:
                    visit(dep, [*trail, dep])
            state[name] = "done"

        for name in self.p.services:
            if name not in state:
                visit(name, [name])

    def registry(self) -> None:
        registry = self.p.registry
        if registry is None:
            return
        loc = ("registry", "password_env")
        if not ENV_NAME_RE.fullmatch(registry.password_env):
            raise self.fail(loc, f"invalid environment variable name {registry.password_env!r}")
        if self.require_secrets and registry.password_env not in self.environ:
            raise self.fail(loc, f"environment variable {registry.password_env!r} is not set")
