"""What a host holds of a stack, from the one-round-trip redeploy probe (commands.deploy_state): a pure parser.

`parse_deploy_state(output, images=..., markers=..., folders=...)` gives a :class:`DeployState`; when the
output cannot be read with certainty (the engine did not answer, a line that is neither JSON nor docker's
"No such ..." message, a section missing) its `problem` says why and the caller takes the full path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from provision.facts.script import split_sections

__all__ = ["ContainerState", "DeployState", "parse_deploy_state"]

_MISSING = ("Error: No such container:", "Error: No such object:", "Error: No such network:",
            "Error: No such volume:", "Error response from daemon: No such", "Error: no such")


@dataclass(frozen=True)
class ContainerState:
    """One container as `docker container inspect` shows it (the fields a redeploy decides from)."""

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


def _json_lines(text: str, what: str) -> tuple[list[dict], str | None]:
    found: list[dict] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(_MISSING):
            continue
        try:
            item = json.loads(line)
        except ValueError:
            return [], f"{what}: unexpected output {line[:120]!r}"
        if not isinstance(item, dict):
            return [], f"{what}: unexpected output {line[:120]!r}"
        found.append(item)
    return found, None


def _ordered(text: str, keys: list[str], what: str) -> tuple[list[str], str | None]:
    lines = text.splitlines()
    if len(lines) != len(keys):
        return [], f"{what}: {len(lines)} lines for {len(keys)} items"
    return lines, None


def parse_deploy_state(output: str, *, images: list[str], markers: list[str], folders: list[str]) -> DeployState:
    """The probe's output, read back; `images`, `markers` and `folders` as given to the probe, in order."""
    state = DeployState()
    sections = split_sections(output)
    for name in ("lock", "containers", "networks", "volumes", "images", "markers", "folders"):
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

    items, problem = _json_lines(sections["containers"].text, "containers")
    for item in items:
        try:
            container = ContainerState(id=str(item["id"]), name=str(item["name"]).lstrip("/"),
                                       labels=dict(item.get("labels") or {}), status=str(item["status"]),
                                       exit_code=int(item.get("exit_code") or 0), health=item.get("health"),
                                       image=str(item.get("image") or ""))
        except (KeyError, TypeError, ValueError):
            problem = problem or f"containers: unexpected item {str(item)[:120]}"
            break
        state.containers[container.name] = container
    for section, target in (("networks", state.networks), ("volumes", state.volumes)):
        found, more = _json_lines(sections[section].text, section)
        problem = problem or more
        for item in found:
            target[str(item.get("name"))] = dict(item.get("labels") or {})

    lines, more = _ordered(sections["images"].text, images, "images")
    problem = problem or more
    for ref, line in zip(images, lines):
        state.images[ref] = None if line.strip() in ("-", "") else line.strip()
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
