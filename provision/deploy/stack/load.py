"""Loading a stack file: YAML with positions → the models → the cross-checks (see docs/playbook.md).

``load_playbook(path)`` parses the YAML with line numbers, validates it with the models, then runs
the named cross-checks. Any problem is ONE :class:`InputError` rendered as ``FILE:LINE: PATH: problem``
(exit 4), e.g. ``ml.yml:14: services.app.ports[0]: invalid port '80:x'``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from provision.config.positioned_yaml import type_name
from provision.deploy.stack.cross_checks import CrossChecks
from provision.deploy.stack.located import pydantic_error
from provision.deploy.stack.models import Playbook
from provision.deploy.stack.yaml_source import read_stack_yaml
from provision.errors import InputError

__all__ = ["load_playbook"]


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
