"""/etc/docker/daemon.json: merge our keys into what is there, key by key; show a diff; validate."""

from __future__ import annotations

import copy
import difflib
import json
from provision.commands import files
from provision.commands.argv import quote

PATH = "/etc/docker/daemon.json"
CANDIDATE = PATH + ".provision-candidate"  # a new daemon.json is validated here before it replaces PATH

# Worth having on every host: json-file logs grow without bound otherwise.
DEFAULTS = {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}

# Keys that clash with flags systemd's docker.service passes to dockerd (-H fd://): dockerd refuses to start.
CLASHING_KEYS = {"hosts": "docker.service already passes -H fd:// to dockerd; set hosts with a systemd drop-in instead"}


def deep_merge(current: dict, desired: dict) -> dict:
    """desired over current, recursively for nested maps (runtimes, features, log-opts); lists replace."""
    merged = copy.deepcopy(current)
    for key, value in desired.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def desired_config(current: dict | None, managed: dict | None, with_defaults: bool = True) -> dict:
    """What daemon.json should hold: current keys kept, defaults for absent keys, inventory keys over both."""
    base = current or {}
    if with_defaults:
        base = deep_merge({k: v for k, v in DEFAULTS.items() if k not in base}, base)
    return deep_merge(base, managed or {})


def render(config: dict) -> str:
    return json.dumps(config, indent=2) + "\n"


def diff(current_text: str | None, new_text: str) -> str:
    old = (current_text or "").splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new_text.splitlines(keepends=True),
                                        fromfile=PATH if current_text is not None else "/dev/null", tofile=PATH))


def clashes(config: dict) -> list[str]:
    return [f"daemon.json key '{k}': {why}" for k, why in CLASHING_KEYS.items() if k in config]


def validate_snippet(path: str) -> str:
    """Validate a candidate config with dockerd where it can (--validate, Docker >= 23), else as JSON."""
    q = quote(path, "daemon.json candidate path")
    return (
        f"if dockerd --help 2>/dev/null | grep -q -- '--validate'; then dockerd --validate --config-file {q}; "
        f"elif command -v python3 >/dev/null; then python3 -m json.tool {q} >/dev/null; else true; fi"
    )


def validate_or_discard(path: str = CANDIDATE) -> str:
    """validate_snippet, and when the candidate is refused: remove it and fail."""
    return f"{validate_snippet(path)} || {{ {files.remove(path)}; exit 1; }}"


def backup_path(stamp: str) -> str:
    return files.backup_path(PATH, stamp)


def restart_or_restore(backup: str | None) -> str:
    """Restart docker to apply a new daemon.json; when dockerd does not come up with it, put the previous
    daemon.json back (from `backup`, or remove the file when there was none), start docker again, and fail
    quoting dockerd's own error from the journal."""
    q = quote(PATH)
    restore = f"mv -f {quote(backup, 'backup path')} {q}" if backup else f"rm -f {q}"
    return (
        "if ! systemctl restart docker.service; then "
        "err=$(journalctl -u docker.service -n 60 --no-pager -o cat 2>/dev/null "
        "| grep -iE 'failed to start daemon|unable to|error' | tail -n 2 | tr '\\n' ' '); "
        f"{restore}; systemctl reset-failed docker.service 2>/dev/null; "
        "if systemctl restart docker.service; then again='docker started again with the previous daemon.json'; "
        "else again='docker did not start again either: see journalctl -u docker.service'; fi; "
        "echo \"E: dockerd did not start with the new daemon.json: ${err:-see journalctl -u docker.service}; "
        "$again\" >&2; exit 1; fi"
    )
