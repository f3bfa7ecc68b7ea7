"""What `provision swarm init` decides from: one probe script (one round trip, commands/probes.py) and its
pure parsers.

The probe asks the engine for its swarm state (`docker info --format '{{json .Swarm}}'`) and reads the
IPv4 default route with its interface's addresses (the default advertise address). Pure parsers below,
tested on output captured from sandbox hosts (inactive, manager, worker).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from provision.commands import probes
from provision.commands import swarm as cmd
from provision.secret import Secret
from provision.facts.script import RC_MISSING, split_sections

# LocalNodeState values of the engine (swarm.LocalNodeState in the Docker API)
INACTIVE, PENDING, ACTIVE, ERROR, LOCKED = "inactive", "pending", "active", "error", "locked"


@dataclass
class SwarmInfo:
    """The engine's `.Swarm` of `docker info`."""

    state: str = ""  # LocalNodeState: inactive | pending | active | error | locked
    node_id: str = ""
    node_addr: str = ""
    control_available: bool = False  # True on managers
    cluster_id: str = ""  # only managers see the cluster
    remote_managers: list[tuple[str, str]] = field(default_factory=list)  # (NodeID, "ADDR:PORT")
    error: str = ""  # the engine's own error (join failures, a locked swarm)
    nodes: int | None = None  # managers only
    managers: int | None = None  # managers only

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    @property
    def is_manager(self) -> bool:
        return self.active and self.control_available

    @property
    def manager_addr(self) -> str:
        """This node's own manager address (ADDR:PORT) as the swarm lists it, else NodeAddr:2377."""
        own = next((addr for node, addr in self.remote_managers if node == self.node_id), "")
        return own or (cmd.join_address(self.node_addr) if self.node_addr else "")

    def describe(self) -> str:
        if not self.active:
            return self.state or "unknown"
        role = "manager" if self.control_available else "worker"
        if self.cluster_id:
            where = f"swarm {self.cluster_id}"
        elif self.remote_managers:
            where = "the swarm managed at " + ", ".join(addr for _, addr in self.remote_managers)
        else:
            where = "a swarm"
        return f"{role} {self.node_id} of {where}"


@dataclass
class SwarmHostState:
    info: SwarmInfo | None = None  # None when the engine did not answer
    docker_error: str | None = None  # why not: "not installed", the client's error line
    default_iface: str | None = None
    default_ipv4: str | None = None  # the default route's source address, else its interface's first IPv4


def probe() -> str:
    """One round trip: swarm state, default route, IPv4 addresses (built in commands/probes.py)."""
    return probes.swarm_host()


def parse_swarm_info(text: str) -> SwarmInfo:
    """Parse `docker info --format '{{json .Swarm}}'`; raises ValueError when no JSON object is in it.

    Warnings the client prints around it (stderr is merged) are ignored: the JSON is the line that
    starts with `{`."""
    line = next((l.strip() for l in text.splitlines() if l.strip().startswith("{")), None)
    if line is None:
        raise ValueError(_first_line(text) or "no output from docker info")
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"docker info printed invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("docker info did not print a JSON object")
    cluster = data.get("Cluster") or {}
    return SwarmInfo(
        state=str(data.get("LocalNodeState") or ""),
        node_id=str(data.get("NodeID") or ""),
        node_addr=str(data.get("NodeAddr") or ""),
        control_available=bool(data.get("ControlAvailable")),
        cluster_id=str(cluster.get("ID") or "") if isinstance(cluster, dict) else "",
        remote_managers=[(str(m.get("NodeID") or ""), str(m.get("Addr") or ""))
                         for m in data.get("RemoteManagers") or [] if isinstance(m, dict)],
        error=str(data.get("Error") or ""),
        nodes=data.get("Nodes"),
        managers=data.get("Managers"),
    )


def parse_default_ipv4(route: str, addrs: str) -> tuple[str | None, str | None]:
    """(interface, IPv4) of the default route: its `src` when the route names one, else the first
    global IPv4 address of its interface (`ip -o` lists primary addresses before secondary ones).
    With several default routes the first listed (lowest metric) wins."""
    iface = src = None
    for line in route.splitlines():
        words = line.split()
        if not words or words[0] != "default":
            continue
        after = {word: words[i + 1] for i, word in enumerate(words[:-1]) if word in ("dev", "src")}
        iface, src = after.get("dev"), after.get("src")
        break
    if iface is None:
        return None, None
    if src:
        return iface, src
    for line in addrs.splitlines():
        words = line.replace("\\", " ").split()
        if len(words) >= 4 and words[1] == iface and words[2] == "inet":
            return iface, words[3].split("/")[0]
    return iface, None


def parse_node_labels(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """The output of commands.swarm.node_labels(): node ID → (role, labels)."""
    nodes: dict[str, tuple[str, dict[str, str]]] = {}
    for line in text.splitlines():
        parts = line.strip().split(" ", 2)
        if len(parts) != 3 or not parts[2].startswith("{") and parts[2] != "null":
            continue
        labels = json.loads(parts[2]) or {}
        nodes[parts[0]] = (parts[1], {str(k): str(v) for k, v in labels.items()})
    return nodes


def parse(output: str) -> SwarmHostState:
    s = split_sections(output)
    state = SwarmHostState()
    swarm = s.get("swarm")
    if swarm is None or swarm.rc is None:
        state.docker_error = "the probe's output was cut off"
    elif swarm.rc == RC_MISSING and not swarm.text.strip():
        state.docker_error = "Docker is not installed"
    else:
        try:
            info = parse_swarm_info(swarm.text)
        except ValueError as exc:
            state.docker_error = str(exc)
        else:
            if swarm.rc == 0 or info.state:
                state.info = info
            else:
                state.docker_error = _first_line(swarm.text) or f"docker info exited {swarm.rc}"
    route, addrs = s.get("route"), s.get("addrs")
    if route is not None and route.ok:
        state.default_iface, state.default_ipv4 = parse_default_ipv4(route.text, addrs.text if addrs and addrs.ok else "")
    return state


def _first_line(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if "error" in l.lower() or "cannot" in l.lower()]
    return (errors or lines or [""])[0]


# -- the leader's view of the cluster (one round trip on the leader) ---------------------------
@dataclass
class ClusterState:
    info: SwarmInfo | None = None
    nodes: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)  # node ID → (role, labels)
    error: str | None = None


def cluster_probe() -> str:
    """Run on a manager: its swarm state and every node with its labels. The join tokens are not
    read here (they would travel as a command's output): see parse_join_tokens."""
    return probes.swarm_cluster()


def parse_cluster(output: str) -> ClusterState:
    s = split_sections(output)
    state = ClusterState()
    for name, section in s.items():
        if section.rc != 0:
            state.error = f"{name}: {_first_line(section.text) or f'exit {section.rc}'}"
            return state
    try:
        state.info = parse_swarm_info(s["swarm"].text if "swarm" in s else "")
        state.nodes = parse_node_labels(s["nodes"].text if "nodes" in s else "")
    except (ValueError, AttributeError) as exc:
        state.error = str(exc)
    return state


def parse_join_tokens(inspect: object) -> dict[str, Secret]:
    """role → join token, from the Engine API's `GET /swarm` on a manager (`JoinTokens: {Worker,
    Manager}`), read over the leader's SSH connection; each wrapped in a Secret."""
    tokens = inspect.get("JoinTokens") if isinstance(inspect, dict) else None
    if not isinstance(tokens, dict):
        return {}
    return {role: Secret(str(tokens[role.capitalize()])) for role in cmd.ROLES if tokens.get(role.capitalize())}
