"""The one table of what provision supports of the Compose Specification, and the check that
refuses everything else with ``FILE:LINE: services.x.key: not supported by provision (...)``.

A schema node is ``ANY`` (the value is free: a scalar, a list or a mapping of the user's keys),
or a dict of allowed keys -> schema. ``"*"`` stands for any key (the user's names: services,
networks, depends_on targets...). A list value is checked item by item against the same schema
when its items are mappings (the long syntax of ports, volumes, devices...). ``x-*`` keys are
allowed everywhere (extensions). docs/compose.md is this table in prose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provision.compose.errors import error_at
from provision.compose.reading import Override, Reset

__all__ = ["ANY", "HINTS", "SERVICE", "SPEC_SERVICE_KEYS", "SPEC_TOP_LEVEL_KEYS", "TOP_LEVEL", "check_supported"]

ANY: dict = {}  # identity-compared: a free value

_DEVICE_REQUEST = {"driver": ANY, "count": ANY, "device_ids": ANY, "capabilities": ANY, "options": ANY}

SERVICE: dict[str, Any] = {
    "image": ANY,
    "build": {"context": ANY, "dockerfile": ANY, "args": ANY, "target": ANY},
    "command": ANY,
    "entrypoint": ANY,
    "environment": ANY,
    "env_file": {"path": ANY, "required": ANY},
    "ports": {"target": ANY, "published": ANY, "host_ip": ANY, "protocol": ANY, "mode": ANY,
              "app_protocol": ANY, "name": ANY},
    "volumes": {"type": ANY, "source": ANY, "target": ANY, "read_only": ANY,
                "bind": {"create_host_path": ANY, "propagation": ANY, "selinux": ANY},
                "volume": {"nocopy": ANY, "subpath": ANY},
                "tmpfs": {"size": ANY, "mode": ANY}},
    "networks": {"*": {"aliases": ANY}},
    "depends_on": {"*": {"condition": ANY, "restart": ANY, "required": ANY}},
    "healthcheck": {"test": ANY, "interval": ANY, "timeout": ANY, "retries": ANY, "start_period": ANY,
                    "start_interval": ANY, "disable": ANY},
    "restart": ANY,
    "gpus": _DEVICE_REQUEST,
    "deploy": {"replicas": ANY,
               "resources": {"limits": {"cpus": ANY, "memory": ANY, "pids": ANY},
                             "reservations": {"cpus": ANY, "memory": ANY, "devices": _DEVICE_REQUEST}}},
    "ipc": ANY,
    "shm_size": ANY,
    "ulimits": {"*": {"soft": ANY, "hard": ANY}},
    "security_opt": ANY,
    "cap_add": ANY,
    "cap_drop": ANY,
    "privileged": ANY,
    "devices": {"source": ANY, "target": ANY, "permissions": ANY},
    "tmpfs": ANY,
    "extra_hosts": ANY,
    "logging": {"driver": ANY, "options": ANY},
    "init": ANY,
    "expose": ANY,
    "sysctls": ANY,
    "hostname": ANY,
    "user": ANY,
    "working_dir": ANY,
    "labels": ANY,
    "stop_signal": ANY,
    "stop_grace_period": ANY,
    "container_name": ANY,
    "network_mode": ANY,
    "pid": ANY,
    "profiles": ANY,
    "secrets": {"source": ANY, "target": ANY, "uid": ANY, "gid": ANY, "mode": ANY},
    "extends": {"service": ANY, "file": ANY},
}

TOP_LEVEL: dict[str, Any] = {
    "version": ANY,  # obsolete; accepted and ignored, as Compose does
    "name": ANY,
    "include": {"path": ANY, "project_directory": ANY, "env_file": ANY},
    "services": {"*": SERVICE},
    "networks": {"*": {"name": ANY, "external": ANY, "driver": ANY, "labels": ANY}},
    "volumes": {"*": {"name": ANY, "external": ANY, "driver": ANY, "labels": ANY}},
    "secrets": {"*": {"file": ANY, "environment": ANY, "name": ANY}},
}

# Keys the Compose Specification defines that provision refuses (said "not supported by
# provision"); any other key is "not a Compose key".
SPEC_SERVICE_KEYS = frozenset({
    "annotations", "attach", "blkio_config", "cpu_count", "cpu_percent", "cpu_shares", "cpu_period", "cpu_quota",
    "cpu_rt_runtime", "cpu_rt_period", "cpus", "cpuset", "cgroup", "cgroup_parent", "configs", "credential_spec",
    "develop", "device_cgroup_rules", "dns", "dns_opt", "dns_search", "domainname", "external_links", "gpus",
    "group_add", "isolation", "label_file", "links", "mac_address", "mem_limit", "mem_reservation",
    "mem_swappiness", "memswap_limit", "models", "oom_kill_disable", "oom_score_adj", "pids_limit", "platform",
    "post_start", "pre_stop", "provider", "pull_policy", "read_only", "runtime", "scale", "stdin_open",
    "storage_opt", "tty", "use_api_socket", "userns_mode", "uts", "volumes_from", "net", "lifecycle_hooks",
    "pull_refresh_after",
} | set(SERVICE))
SPEC_TOP_LEVEL_KEYS = frozenset({"configs", "models"} | set(TOP_LEVEL))

_HINT = "see docs/compose.md for what provision supports"

# What to write instead, for the refused keys people reach for most.
HINTS: dict[str, str] = {
    "mem_limit": "use deploy.resources.limits.memory",
    "mem_reservation": "use deploy.resources.reservations.memory",
    "cpus": "use deploy.resources.limits.cpus",
    "pids_limit": "use deploy.resources.limits.pids",
    "runtime": "use gpus: or deploy.resources.reservations.devices for GPUs",
    "configs": "mount the file with a bind volume, or use secrets:",
    "scale": "use deploy.replicas",
    "links": "services reach each other by name on the project network",
}


def check_supported(tree: Any, file: Path) -> None:
    """Raise ComposeError at the first key of ``tree`` (one file's document) outside the table."""
    _check(tree, TOP_LEVEL, (), tree, file, top=True)


def _check(node: Any, schema: Any, path: tuple[Any, ...], root: Any, file: Path, top: bool = False) -> None:
    if schema is ANY or isinstance(node, Reset):
        return
    if isinstance(node, Override):
        _check(node.value, schema, path, root, file)
        return
    if isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, dict):
                _check(item, schema, path + (index,), root, file)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(key, str) and key.startswith("x-"):
            continue
        if key == "<<":
            continue
        sub = schema.get(key, schema.get("*")) if isinstance(key, str) else None
        if sub is None:
            raise error_at(file, root, path + (key,), _refusal(path, key, top))
        _check(value, sub, path + (key,), root, file)


def _refusal(path: tuple[Any, ...], key: Any, top: bool) -> str:
    in_service = len(path) == 2 and path[0] == "services"
    known = (top and key in SPEC_TOP_LEVEL_KEYS) or (in_service and key in SPEC_SERVICE_KEYS) or not (top or in_service)
    if known:
        hint = HINTS.get(key) if (top or in_service) else None
        return f"not supported by provision ({hint + '; ' if hint else ''}{_HINT})"
    return f"not a Compose key (the Compose Specification has no {key!r} here; {_HINT})"
