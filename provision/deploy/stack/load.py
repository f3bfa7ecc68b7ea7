"""Loading a stack: Compose files (docs/compose.md) or the old format (docs/playbook.md), as the models,
then the cross-checks.

``load_stack(files)`` is the entry point: one file whose top level has the old ``stack:`` key is read
by ``load_playbook`` (a deprecated alias: a warning is added to ``Playbook.warnings``); otherwise the
files are one Compose project (:func:`provision.compose.load` → :func:`.from_compose.from_compose`).

``load_playbook(path)`` parses the YAML with line numbers, validates it with the models, then runs
the named cross-checks. Any problem is ONE :class:`InputError` rendered as ``FILE:LINE: PATH: problem``
(exit 4), e.g. ``ml.yml:14: services.app.ports[0]: invalid port '80:x'``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import ValidationError

from provision.config.positioned_yaml import type_name
from provision.deploy.stack.cross_checks import CrossChecks
from provision.deploy.stack.located import pydantic_error
from provision.deploy.stack.models import Playbook
from provision.deploy.stack.yaml_source import read_stack_yaml
from provision.errors import InputError

__all__ = ["DEPRECATED_FORMAT", "load_playbook", "load_stack"]

DEPRECATED_FORMAT = ("{file}: the provision playbook format (top-level 'stack:') is deprecated; write a Compose "
                     "file with provision's settings under x-provision (see docs/compose.md)")


def load_stack(files: str | Path | Sequence[str | Path], *, environ: Mapping[str, str] | None = None,
               project_name: str | None = None, profiles: Sequence[str] = (), require_secrets: bool = True,
               require_build_contexts: bool = False) -> Playbook:
    """A stack from Compose files (merged as Compose merges ``-f`` files) or one old-format playbook.

    One InputError (``FILE:LINE: PATH: problem``, exit 4) on the first problem; Compose's warnings and
    the deprecation of the old format are in the returned ``Playbook.warnings``.
    """
    from provision import compose
    from provision.deploy.stack.from_compose import from_compose, locator

    paths = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]
    if not paths:
        raise InputError("no stack file given")
    environ = os.environ if environ is None else environ
    stack_error: InputError | None = None
    if len(paths) == 1:
        try:  # provision's own strict reader first (vault values, nesting, pipes...)
            raw = read_stack_yaml(paths[0])
        except InputError as exc:
            if not paths[0].is_file():
                raise
            stack_error, raw = exc, {}
        if raw is None:
            raise InputError("the stack file is empty", file=paths[0], line=1)
        if not isinstance(raw, dict):
            raise InputError(f"a stack file must be a mapping, got {type_name(raw)}", file=paths[0],
                             line=getattr(raw, "line", None) or 1)
        if "stack" in raw:
            playbook = load_playbook(paths[0], environ=environ, require_secrets=require_secrets,
                                     require_build_contexts=require_build_contexts)
            playbook.warnings.append(DEPRECATED_FORMAT.format(file=paths[0]))
            return playbook
    else:
        for path in paths:
            if not path.is_file():
                read_stack_yaml(path)  # the reader's own "not found" / "not a regular file" error
    try:
        project = compose.load(paths, environ=environ, project_name=project_name, profiles=tuple(profiles))
    except InputError:
        if stack_error is not None:  # e.g. a Compose !reset tag the strict reader does not know
            raise stack_error from None
        raise
    playbook = from_compose(project)
    locate = locator(project)
    playbook.set_locator(locate)
    CrossChecks(playbook, None, environ, require_secrets, require_build_contexts, locate=locate).run()
    return playbook


def load_playbook(path: str | Path, *, environ: Mapping[str, str] | None = None,
                  require_secrets: bool = True, require_build_contexts: bool = False) -> Playbook:
    """Read and validate a playbook; one InputError (``FILE:LINE: PATH: problem``) on the first problem.

    Secrets and ``registry.password_env`` are checked against ``environ`` (default os.environ) only
    when ``require_secrets`` (deploy needs them, ops commands do not); build contexts (and their
    Dockerfiles) must exist when ``require_build_contexts`` (deploy, --check included).
    """
    path = Path(path)
    raw = read_stack_yaml(path)
    if raw is None:
        raise InputError("the playbook is empty", file=path, line=1)
    if not isinstance(raw, dict):
        raise InputError(f"a playbook must be a mapping, got {type_name(raw)}", file=path,
                         line=getattr(raw, "line", None) or 1)
    data = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, raw, path) from None
    playbook.set_path(path)
    CrossChecks(playbook, raw, os.environ if environ is None else environ, require_secrets,
                require_build_contexts).run()
    return playbook
