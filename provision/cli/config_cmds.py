"""`provision config`: the stack as provision reads it, in the shape of `docker compose config`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli import options as opt

Files = Annotated[Optional[list[Path]], typer.Argument(
    help="Compose files, merged in order as `docker compose -f A -f B` merges them. Default: compose.yaml "
         "(or compose.yml, docker-compose.yml, docker-compose.yaml) of this folder or the nearest parent, "
         "with its compose.override.yaml.", show_default=False)]
ProjectName = Annotated[Optional[str], typer.Option("-p", "--project-name",
                                                    help="The project (stack) name. Default: `name:`, else "
                                                         "the folder of the first file. [env: COMPOSE_PROJECT_NAME]")]
Profiles = Annotated[Optional[list[str]], typer.Option("--profile", help="Enable services of this profile "
                                                                         "(repeatable). [env: COMPOSE_PROFILES]")]


def register(app: typer.Typer) -> None:
    app.command("config")(config_command)


def config_command(
    files: Files = None,
    project_name: ProjectName = None,
    profile: Profiles = None,
    json_: opt.Json = False,
) -> None:
    """Print the normalized stack (interpolated, merged, long syntax), as `docker compose config` does;
    --json in the shape of `docker compose config --format json`. Nothing is contacted."""
    import yaml

    from provision import compose
    from provision.compose import discovery
    from provision.errors import InputError

    if not files:
        found = discovery.find(environ=os.environ)
        if found is None:
            raise InputError(f"no compose file given and none found: looked for {discovery.looked_for()}")
        files = found.files
        for warning in found.warnings:
            sys.stderr.write(f"provision: warning: {warning}\n")
    project = compose.load(list(files), environ=os.environ, project_name=project_name,
                           profiles=tuple(profile or ()))
    for warning in project.warnings:
        sys.stderr.write(f"provision: warning: {warning}\n")
    document = compose.to_compose_json(project)
    if json_:
        import json

        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000))
