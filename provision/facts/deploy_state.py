"""What a host holds of a stack, from the one-round-trip redeploy probe (commands.deploy_state): a pure parser.

`parse_deploy_state(output, networks=..., volumes=..., images=..., markers=..., folders=...)`
gives a :class:`DeployState`; when the output cannot be read with certainty its `problem` says why and the
caller takes the full path. Uncertain is: a section missing or failed (the engine did not answer), a line
that is neither JSON nor docker's "No such object" message for a name asked, a count of objects that does
not match the names asked less the missing ones, and an object whose kind (told by its shape: containers
have State/Config/HostConfig, images RepoTags/RootFS, networks IPAM/Driver/Scope, volumes Mountpoint/Driver)
or name is not what was asked for at its place, e.g. a volume whose name a container or network also has
(the generic ``docker inspect`` returns the first kind it finds).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from provision.facts.script import split_sections

__all__ = ["ContainerState", "DeployState", "kind_of", "parse_deploy_state"]

_MISSING = "Error: No such object: "
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # a container name, as docker allows it


@dataclass(frozen=True)
class ContainerState:
    """One container as `docker inspect` shows it (the fields a redeploy decides from)."""

    id: str
    name: str  # without docker's leading "/"
    labels: dict = field(default_factory=dict)
    status: str = ""  # created | running | paused | restarting | removing | exited | dead
    exit_code: int = 0
    health: str | None = None  # starting | healthy | unhealthy; None: no healthcheck
    image: str = ""  # the image id it runs


@dataclass
class DeployState:
    lock_held: bool = False
    lock_holder: str = ""
    containers: dict[str, ContainerState] = field(default_factory=dict)  # by name
    networks: dict[str, dict] = field(default_factory=dict)  # name → labels
    volumes: dict[str, dict] = field(default_factory=dict)  # name → labels
    images: dict[str, str | None] = field(default_factory=dict)  # reference → id (None: not on the host)
    markers: dict[str, str] = field(default_factory=dict)  # sync marker → digest ("" never synced)
    folders: dict[str, bool] = field(default_factory=dict)  # folder → is a directory
    problem: str | None = None  # set when the output could not be read with certainty

    def with_label(self, key: str, value: str) -> list[ContainerState]:
        return [c for c in self.containers.values() if (c.labels or {}).get(key) == value]


_SHAPES = {
    "container": ("State", "Config", "HostConfig"),
    "image": ("RepoTags", "RootFS"),
    "network": ("IPAM", "Driver", "Scope"),
    "volume": ("Mountpoint", "Driver", "Scope"),
}


def kind_of(item: dict) -> str | None:
    """The kind of a `docker inspect` object, told by its shape; None when no kind or more than one fits."""
    kinds = [kind for kind, keys in _SHAPES.items() if all(key in item for key in keys)]
    return kinds[0] if len(kinds) == 1 else None


class _Uncertain(Exception):
    pass


def _a(kind: str) -> str:
    return ("an " if kind == "image" else "a ") + kind


def _container(item: dict) -> ContainerState:
    state, config = item["State"], item["Config"] or {}
    health = state.get("Health")
    return ContainerState(id=str(item["Id"]), name=str(item["Name"]).lstrip("/"), labels=dict(config.get("Labels") or {}),
                          status=str(state["Status"]), exit_code=int(state.get("ExitCode") or 0),
                          health=str(health["Status"]) if health else None, image=str(item.get("Image") or ""))


def _objects(text: str, state: DeployState, networks: list[str], volumes: list[str], images: list[str]) -> None:
    first, _, rest = text.partition("\n")
    listed = first.split(" ")
    if listed[0] != "containers" or not all(_NAME.match(n) for n in listed[1:]):
        raise _Uncertain(f"unexpected first line {first[:120]!r}")
    asked = ([("container", n) for n in listed[1:]] + [("network", n) for n in networks]
             + [("volume", n) for n in volumes] + [("image", n) for n in images])
    found: list[dict] = []
    missing: Counter = Counter()
    for line in rest.splitlines():
        if line.startswith(_MISSING):
            missing[line[len(_MISSING):]] += 1
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise _Uncertain(f"unexpected output {line[:120]!r}") from None
        if not isinstance(item, dict):
            raise _Uncertain(f"unexpected output {line[:120]!r}")
        found.append(item)
    unknown = set(missing) - {name for _, name in asked}
    if unknown:
        raise _Uncertain(f"docker names {sorted(unknown)[0]!r} missing, which was not asked for")
    if len(found) + sum(missing.values()) != len(asked):
        raise _Uncertain(f"{len(found)} objects and {sum(missing.values())} missing for {len(asked)} names")
    # the objects come in the order asked, without the missing ones
    objects = iter(found)
    for kind, name in asked:
        if missing[name]:
            missing[name] -= 1
            if kind == "image":
                state.images[name] = None
            continue
        item = next(objects)
        got = kind_of(item)
        if got != kind:
            raise _Uncertain(f"{name!r} was asked for as {_a(kind)} and is {_a(got) if got else 'of no known kind'}")
        try:
            if kind == "container":
                container = _container(item)
                if container.name != name:
                    raise _Uncertain(f"{name!r} was asked for and {item.get('Name')!r} ({item.get('Id')}) came back")
                state.containers[container.name] = container
            elif kind == "image":
                if not isinstance(item["Id"], str) or not item["Id"]:
                    raise _Uncertain(f"image {name!r}: no id")
                state.images[name] = item["Id"]
            else:
                if item["Name"] != name:
                    raise _Uncertain(f"{kind} {name!r} was asked for and {item['Name']!r} came back")
                (state.networks if kind == "network" else state.volumes)[name] = dict(item.get("Labels") or {})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _Uncertain(f"{kind} {name!r}: unexpected object ({exc!r})") from None


def _ordered(text: str, keys: list[str], what: str) -> tuple[list[str], str | None]:
    lines = text.splitlines()
    if len(lines) != len(keys):
        return [], f"{what}: {len(lines)} lines for {len(keys)} items"
    return lines, None


def parse_deploy_state(output: str, *, networks: list[str], volumes: list[str],
                       images: list[str], markers: list[str], folders: list[str]) -> DeployState:
    """The probe's output, read back; the names as given to the probe, in order (not the container names: the
    probe's output names the containers it inspected)."""
    state = DeployState()
    sections = split_sections(output)
    for name in ("lock", "objects", "markers", "folders"):
        section = sections.get(name)
        if section is None or section.rc is None:
            state.problem = f"the probe's {name} section is missing (output cut short?)"
            return state
        if section.rc != 0:
            state.problem = f"{name}: exit status {section.rc}: {section.text.strip()[:200]}"
            return state
    first, _, rest = sections["lock"].text.partition("\n")
    if first.strip() not in ("held", "free"):
        state.problem = f"lock: unexpected output {first[:120]!r}"
        return state
    state.lock_held, state.lock_holder = first.strip() == "held", rest.strip()
    try:
        _objects(sections["objects"].text, state, networks, volumes, images)
    except _Uncertain as why:
        state.problem = f"objects: {why}"
        return state

    problem = None
    lines, more = _ordered(sections["markers"].text, markers, "markers")
    problem = problem or more
    for marker, line in zip(markers, lines):
        if not line.startswith("="):
            problem = problem or f"markers: unexpected output {line[:120]!r}"
        state.markers[marker] = line[1:].strip()
    lines, more = _ordered(sections["folders"].text, folders, "folders")
    problem = problem or more
    for folder, line in zip(folders, lines):
        if line.strip() not in ("yes", "no"):
            problem = problem or f"folders: unexpected output {line[:120]!r}"
        state.folders[folder] = line.strip() == "yes"
    state.problem = problem
    return state
