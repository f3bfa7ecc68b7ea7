"""The stack: Compose files (docs/compose.md) or the old playbook format (docs/playbook.md, deprecated),
one concern per module:

- :mod:`.scalars`       durations, sizes, ports, volumes, text: pure parsers and the Annotated types
- :mod:`.models`        the pydantic models (Playbook, Service, ...) and their normalized views
- :mod:`.env_file`      ``env_file:`` files (``KEY=VALUE`` lines)
- :mod:`.yaml_source`   the YAML with line numbers (a :class:`PositionLoader` subclass)
- :mod:`.located`       problems as ``FILE:LINE: PATH: problem`` (pydantic errors reworded)
- :mod:`.cross_checks`  the second pass across services
- :mod:`.from_compose`  a loaded Compose project (:mod:`provision.compose`) as the models (``x-provision``)
- :mod:`.load`          :func:`load_stack` (Compose files, or one old-format playbook), the entry point;
                        :func:`load_playbook` (the old format)

The models know nothing of YAML or files' lines; :mod:`provision.deploy.playbook` re-exports the
public API.
"""
