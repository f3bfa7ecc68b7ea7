"""Docker Swarm command lines (docs.docker.com "Create a swarm", "Add nodes", "docker node update").

Pure builders: no I/O. argv lists where one program runs, shell strings where a pipe is needed.
Join tokens are secrets: `join` takes the token as an argument and nothing here logs it.
"""

from __future__ import annotations

import shlex

MANAGER_PORT = 2377  # the swarm's cluster management port (TCP)
GPU_LABEL = "provision.gpu"  # node label set on GPU nodes: `--constraint node.labels.provision.gpu==true`
ROLES = ("manager", "worker")
TOKEN_PLACEHOLDER = "<{role}-join-token>"  # what --check shows instead of a real token


def info() -> list[str]:
    """The node's swarm state as one JSON object (LocalNodeState, NodeID, NodeAddr, ControlAvailable,
    RemoteManagers; on managers also Cluster.ID, Nodes, Managers)."""
    return ["docker", "info", "--format", "{{json .Swarm}}"]


def init(advertise_addr: str) -> list[str]:
    """Create a swarm with this node as its first manager (an IP, IP:PORT or interface name)."""
    return ["docker", "swarm", "init", "--advertise-addr", advertise_addr]


def join_token(role: str) -> list[str]:
    """Print only the token (`-q`) that joins a node as `role`; run on a manager."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    return ["docker", "swarm", "join-token", "-q", role]


def join(token: str, manager_addr: str, advertise_addr: str) -> list[str]:
    """Join the swarm managed at manager_addr (HOST:PORT); the token decides manager or worker."""
    return ["docker", "swarm", "join", "--token", token, "--advertise-addr", advertise_addr, manager_addr]


def join_address(addr: str, port: int = MANAGER_PORT) -> str:
    """HOST:PORT of a manager (IPv6 in brackets), as `docker swarm join` takes it."""
    if addr.startswith("["):
        return addr if "]:" in addr else f"{addr}:{port}"
    if addr.count(":") > 1:  # a bare IPv6 address
        return f"[{addr}]:{port}"
    return addr if ":" in addr else f"{addr}:{port}"


def node_labels() -> str:
    """Every node of the swarm, one a line: `ID ROLE {labels as JSON}`; run on a manager."""
    return ("docker node ls -q | xargs -r docker node inspect --format "
            + shlex.quote("{{.ID}} {{.Spec.Role}} {{json .Spec.Labels}}"))


def label_add(node_id: str, key: str = GPU_LABEL, value: str = "true") -> list[str]:
    return ["docker", "node", "update", "--label-add", f"{key}={value}", node_id]


def label_rm(node_id: str, key: str = GPU_LABEL) -> list[str]:
    return ["docker", "node", "update", "--label-rm", key, node_id]


def default_route() -> str:
    """The IPv4 default route(s): `default via GW dev IFACE [src ADDR] ...`."""
    return "ip -4 route show default"


def global_ipv4_addresses() -> str:
    """Every global-scope IPv4 address, one a line: `N: IFACE inet ADDR/LEN ...` (primary ones first)."""
    return "ip -o -4 addr show scope global"
