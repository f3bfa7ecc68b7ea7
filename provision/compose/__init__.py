"""Compose files as they are: read a project's Compose files the way Docker Compose v2 does.

``load(files, environ=os.environ, project_name=None, profiles=(), env_file=None)`` returns a
:class:`ComposeProject` whose services, networks, volumes and secrets are in the long syntax
``docker compose config --format json`` prints; :func:`to_compose_json` gives that JSON shape.
Keys of the Compose Specification that provision does not support are refused (support.py holds
the one table; docs/compose.md explains it). Pure: reads files, never the network.
"""

from provision.compose.errors import ComposeError
from provision.compose.project import ComposeProject, Origin, load, normalize_project_name
from provision.compose.render import to_compose_json
from provision.compose.support import SERVICE, TOP_LEVEL

__all__ = ["SERVICE", "TOP_LEVEL", "ComposeError", "ComposeProject", "Origin", "load", "normalize_project_name",
           "to_compose_json"]
