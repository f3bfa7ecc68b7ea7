"""Which stack files a deploy means: the files given, else Compose's default files, else the inventory.

`provision deploy --inventory prod` with no file argument deploys the Compose project of the current
folder (`compose.yaml` ... and its override file: compose/discovery.py, Docker Compose's own rule),
else the file the inventory names in the var `provision_stack_file` (relative to the current folder;
every selected host must name the same file). Nothing is contacted; bad input raises InputError (exit 4)
saying what was looked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provision.compose import discovery
from provision.errors import InputError

STACK_FILE_VAR = "provision_stack_file"


@dataclass(frozen=True)
class StackFiles:
    files: list[Path]
    warnings: list[str] = field(default_factory=list)


def resolve(files: Sequence[Path] | None, inventory: Path, limit: str | None, *,
            cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> StackFiles:
    if files:
        return StackFiles([Path(f) for f in files])
    found = discovery.find(cwd, environ)
    if found is not None:
        return StackFiles(found.files, found.warnings)
    from provision.workflows.targets import load_targets

    named = {}
    for target in load_targets(inventory, limit):
        value = target.hostvars.get(STACK_FILE_VAR)
        if value not in (None, ""):
            named.setdefault(str(value), []).append(target.name)
    if len(named) > 1:
        which = "; ".join(f"{value} ({', '.join(hosts)})" for value, hosts in named.items())
        raise InputError(f"the selected hosts name different stack files in {STACK_FILE_VAR}: {which} "
                         "(give the file, or --limit the hosts of one stack)", file=inventory)
    if named:
        value = next(iter(named))
        path = Path(value) if cwd is None or Path(value).is_absolute() else cwd / value
        return StackFiles([path])
    raise InputError(f"no stack file given and none found: looked for {discovery.looked_for(cwd)}, "
                     f"and for the inventory var {STACK_FILE_VAR}", file=inventory)
