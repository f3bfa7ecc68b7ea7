"""The decisions of `provision swarm init`, pure: from inventory roles and probed state to a plan.

Roles (from the groups and `swarm_role`), the leader, the advertise address, whether a node is a GPU
node, and per member a Change / NoChange / Refusal (init, join, GPU label). No connection, no I/O:
provision.workflows.swarm probes the hosts and applies these plans.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from provision.commands import swarm as cmd
from provision.config.host_settings import SwarmSettings
from provision.secret import Secret
from provision.facts import swarm as facts
from provision.errors import InputError
from provision.operations.base import Change, NoChange, Refusal
from provision.operations.gpu_host import is_gpu_host

MANAGERS_GROUP = "swarm_managers"
WORKERS_GROUP = "swarm_workers"
ROLE_VAR = "swarm_role"
STEP = "swarm"
LABEL_STEP = "gpu label"
NEVER_LEAVES = "provision never leaves or forces a swarm"


# -- roles --------------------------------------------------------------------------------------
def role_for(host: str, settings: SwarmSettings, managers: list[str], workers: list[str]) -> str | None:
    """A host's role: its `swarm_role` var, else its group; None when neither says.

    Raises InputError for a host in both groups without a swarm_role."""
    if settings.swarm_role is not None:
        return settings.swarm_role
    in_managers, in_workers = host in managers, host in workers
    if in_managers and in_workers:
        raise InputError(f"host '{host}' is in both {MANAGERS_GROUP} and {WORKERS_GROUP}: "
                         f"remove it from one, or set {ROLE_VAR}")
    return "manager" if in_managers else "worker" if in_workers else None


def no_manager() -> InputError:
    return InputError(f"no swarm manager among the selected hosts: put at least one in group {MANAGERS_GROUP} "
                      f"(or set {ROLE_VAR}: manager), and include it in --limit")


# -- decisions (pure: from probed state to Change / NoChange / Refusal) ------------------------
@dataclass
class Probed:
    """What phase 1 learned about one member."""

    state: facts.SwarmHostState
    gpu: bool
    gpu_why: str
    advertise: str | None  # what --advertise-addr gets
    advertise_why: str


@dataclass
class Cluster:
    """The swarm the members join, as seen from the leader (planned only, in --check before an init)."""

    leader: str
    join_addr: str  # HOST:PORT of the leader's manager endpoint
    cluster_id: str = ""  # "" when the swarm does not exist yet (--check)
    node_ids: set[str] = field(default_factory=set)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # node ID → labels
    tokens: dict[str, Secret] = field(default_factory=dict)

    @property
    def planned(self) -> bool:
        return not self.cluster_id


def advertise_address(settings: SwarmSettings, state: facts.SwarmHostState) -> tuple[str | None, str]:
    if settings.swarm_advertise_addr:
        return settings.swarm_advertise_addr, "swarm_advertise_addr"
    if state.default_ipv4:
        return state.default_ipv4, f"the IPv4 address of {state.default_iface}, the default route's interface"
    return None, ("no IPv4 default route to take the advertise address from: set swarm_advertise_addr "
                  "(an IP or an interface name)")


def gpu_node(settings: SwarmSettings, host_facts: dict | None) -> tuple[bool, str]:
    """Whether the node gets the GPU label: the same decision as `provision nvidia install`'s."""
    return is_gpu_host(settings.gpu, host_facts)


def choose_leader(managers: list[str], probed: dict[str, Probed]) -> str:
    """The first manager that already manages a swarm, else the first manager (inventory order)."""
    for name in managers:
        p = probed.get(name)
        if p is not None and p.state.info is not None and p.state.info.is_manager:
            return name
    return managers[0]


def engine_problem(state: facts.SwarmHostState) -> Refusal | None:
    """A refusal when the swarm state cannot be read or is neither inactive nor active."""
    if state.docker_error is not None:
        hint = ("run `provision docker install` first" if "not installed" in state.docker_error
                else "is docker running? (`provision verify` checks it)")
        return Refusal(STEP, f"cannot read the swarm state: {state.docker_error}; {hint}")
    info = state.info
    if info is not None and info.state not in (facts.INACTIVE, facts.ACTIVE):
        detail = f": {info.error}" if info.error else ""
        return Refusal(STEP, f"the node's swarm state is '{info.state}'{detail}; resolve it on the host "
                             f"({NEVER_LEAVES})")
    return None


def leader_plan(probed: Probed) -> Change | NoChange | Refusal:
    problem = engine_problem(probed.state)
    if problem:
        return problem
    info = probed.state.info
    assert info is not None
    if info.is_manager:
        size = f", {info.nodes} node(s)" if info.nodes is not None else ""
        return NoChange(STEP, f"leader: already a manager of swarm {info.cluster_id}{size}")
    if info.active:
        return Refusal(STEP, f"is a {info.describe()}, not a manager: it cannot create or lead the swarm. "
                             f"List a manager of that swarm first in {MANAGERS_GROUP}, or run `docker swarm leave` "
                             f"on this host yourself ({NEVER_LEAVES})")
    if probed.advertise is None:
        return Refusal(STEP, probed.advertise_why)
    return Change(STEP, f"leader: initialising a new swarm, advertising {probed.advertise} ({probed.advertise_why})",
                  [shlex.join(cmd.init(probed.advertise))])


def member_plan(probed: Probed, role: str, cluster: Cluster) -> tuple[Change | NoChange | Refusal, list[str]]:
    """(the step, notes) for a non-leader member."""
    problem = engine_problem(probed.state)
    if problem:
        return problem, []
    info = probed.state.info
    assert info is not None
    if info.active:
        in_this = not cluster.planned and (
            (info.is_manager and info.cluster_id == cluster.cluster_id)
            or (not info.is_manager and info.node_id in cluster.node_ids))
        if not in_this:
            return Refusal(STEP, f"already in another swarm: {info.describe()}, not the one led by {cluster.leader}"
                                 f"{' (to be created)' if cluster.planned else ''}. {NEVER_LEAVES}: run "
                                 "`docker swarm leave` on this host yourself if it should join this one"), []
        actual = "manager" if info.is_manager else "worker"
        notes = []
        if actual != role:
            fix = "docker node promote" if role == "manager" else "docker node demote"
            notes.append(f"the inventory says {role} but the node is a {actual}; provision does not change roles "
                         f"(`{fix} {info.node_id}` on a manager does)")
        return NoChange(STEP, f"already a {actual} of this swarm (node {info.node_id}, {info.node_addr})"), notes
    if probed.advertise is None:
        return Refusal(STEP, probed.advertise_why), []
    return Change(STEP, f"joining as {role} via {cluster.join_addr}, advertising {probed.advertise}",
                  [cmd.describe_join(role, cluster.join_addr, probed.advertise)]), []


def label_plan(node_id: str | None, labels: dict[str, str], gpu: bool, gpu_why: str) -> Change | NoChange | None:
    """The GPU label of one node; None when there is nothing to say (not a GPU node, no label)."""
    present = labels.get(cmd.GPU_LABEL) == "true"
    shown_id = node_id or "<node-id>"
    if gpu and present:
        return NoChange(LABEL_STEP, f"{cmd.GPU_LABEL}=true is set ({gpu_why})")
    if gpu:
        return Change(LABEL_STEP, f"adding node label {cmd.GPU_LABEL}=true ({gpu_why})",
                      [shlex.join(cmd.label_add(shown_id))])
    if cmd.GPU_LABEL in labels:
        return Change(LABEL_STEP, f"removing node label {cmd.GPU_LABEL} ({gpu_why})",
                      [shlex.join(cmd.label_rm(shown_id))])
    return None
