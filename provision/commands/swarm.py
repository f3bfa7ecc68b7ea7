"""Docker Swarm command lines (docs.docker.com "Create a swarm", "Add nodes", "docker node update").

Pure builders: no I/O. argv lists where one program runs, shell strings where a pipe is needed.
Join tokens are secrets: they never appear on a command line (argv is visible in /proc, `ps` and
sudo's log). They are read on the leader (`GET /swarm`) and used on a member (`POST /swarm/join`)
through the Docker Engine API over the host's SSH connection; the request body is built here.
"""

from __future__ import annotations

import json
import shlex

from provision.commands.argv import args

MANAGER_PORT = 2377  # the swarm's cluster management port (TCP)
GPU_LABEL = "provision.gpu"  # node label set on GPU nodes: `--constraint node.labels.provision.gpu==true`
ROLES = ("manager", "worker")
TOKEN_PLACEHOLDER = "<{role}-join-token>"  # what --check and the report show instead of a real token
LISTEN_ADDR = "0.0.0.0:2377"  # `docker swarm join`'s default --listen-addr


def info() -> list[str]:
    """The node's swarm state as one JSON object (LocalNodeState, NodeID, NodeAddr, ControlAvailable,
    RemoteManagers; on managers also Cluster.ID, Nodes, Managers)."""
    return ["docker", "info", "--format", "{{json .Swarm}}"]


def init(advertise_addr: str) -> list[str]:
    """Create a swarm with this node as its first manager (an IP, IP:PORT or interface name)."""
    return args(["docker", "swarm", "init", "--advertise-addr", advertise_addr], "swarm_advertise_addr")


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    return role


def join_request(token: str, manager_addr: str, advertise_addr: str) -> dict:
    """The body of the Engine API's `POST /swarm/join` (what `docker swarm join --token T
    --advertise-addr A MANAGER` sends): the token travels in the request body, never in argv."""
    return {"RemoteAddrs": [manager_addr], "ListenAddr": LISTEN_ADDR, "JoinToken": token,
            "AdvertiseAddr": advertise_addr}


def describe_join(role: str, manager_addr: str, advertise_addr: str) -> str:
    """The join as --check, --json and the report show it: the API request, the token a placeholder."""
    body = join_request(TOKEN_PLACEHOLDER.format(role=_role(role)), manager_addr, advertise_addr)
    return "docker API: POST /swarm/join " + json.dumps(body, sort_keys=True)


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
    """`--` before the node: a node ID is never read as an option."""
    return args(["docker", "node", "update", "--label-add", f"{key}={value}", "--", node_id], "node label")


def label_rm(node_id: str, key: str = GPU_LABEL) -> list[str]:
    return args(["docker", "node", "update", "--label-rm", key, "--", node_id], "node label")


def default_route() -> str:
    """The IPv4 default route(s): `default via GW dev IFACE [src ADDR] ...`."""
    return "ip -4 route show default"


def global_ipv4_addresses() -> str:
    """Every global-scope IPv4 address, one a line: `N: IFACE inet ADDR/LEN ...` (primary ones first)."""
    return "ip -o -4 addr show scope global"
