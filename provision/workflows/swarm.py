"""Docker Swarm from inventory groups: `provision swarm init`, idempotent, with --check.

Roles: hosts in group `swarm_managers` are managers, those in `swarm_workers` workers; a host var
`swarm_role: manager|worker` sets (and overrides) a host's role. Selected hosts with neither are skipped.

Order of work:
1. probe every member in parallel (one round trip: swarm state, default route; the facts script too
   when the `gpu` var does not decide whether it is a GPU node);
2. the leader: the first manager (inventory order) that already manages a swarm, else the first
   manager. It initialises the swarm when it has none, then, in the same connection, one round trip
   reads the cluster: its ID, the manager address, every node and its labels; when a member must
   join, the join tokens are read through the Docker Engine API (`GET /swarm`) over the same SSH
   connection;
3. every other member in parallel: joins with the manager or worker token when it is in no swarm,
   is ok when it is already in THIS swarm, fails (and is left alone) when it is in another one:
   provision never leaves or forces. The join is the Engine API's `POST /swarm/join` over the
   member's own SSH connection: the token travels in the request body, never on a command line
   (where /proc, `ps` and sudo's log would show it); --check and --json show a placeholder;
4. GPU nodes get the node label `provision.gpu=true` (removed from nodes that are not GPU nodes),
   set from the leader, so services can be constrained with `node.labels.provision.gpu==true`.

Advertise address: `swarm_advertise_addr` (an IP, IP:PORT or interface name, passed to docker as
given), else the IPv4 address of the default route's interface, resolved on the host. The address
rather than the interface name: docker refuses an interface that carries several IPv4 addresses, the
plan shown by --check names the exact address, and interface names differ between hosts and images.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict

from provision.commands import swarm as cmd
from provision.config.host_settings import _validated
from provision.errors import InputError
from provision.executor.base import Command, CommandResult, Executor
from provision.executor.secret import Secret
from provision.facts import swarm as facts
from provision.operations.base import Change, NoChange, Refusal, redact
from provision.report import HostResult, Report, StepResult
from provision.workflows.applier import Applier
from provision.workflows.fanout import RunOptions, _Silent, fan_out, make_executor, run_on_host
from provision.workflows.targets import Target, load_targets

DockerFactory = Callable[[Target, Executor], Any]  # a host → its docker.DockerClient (over its SSH connection)

MANAGERS_GROUP = "swarm_managers"
WORKERS_GROUP = "swarm_workers"
ROLE_VAR = "swarm_role"
STEP = "swarm"
LABEL_STEP = "gpu label"
NEVER_LEAVES = "provision never leaves or forces a swarm"


class SwarmSettings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    swarm_role: Literal["manager", "worker"] | None = None
    swarm_advertise_addr: str | None = None
    gpu: bool | None = None  # true/false forces a node to count as a GPU node (or not)


def swarm_settings(target: Target) -> SwarmSettings:
    return _validated(SwarmSettings, target.name, target.hostvars)


# -- roles (pure input: no connection) --------------------------------------------------------
def resolve_roles(targets: list[Target], managers: list[str], workers: list[str]) -> list[Target]:
    """The targets with `swarm_role` set in their hostvars from the groups (a host var wins).

    Raises InputError for a bad swarm_role value, or a host in both groups without a swarm_role."""
    resolved = []
    for target in targets:
        settings = swarm_settings(target)
        role = settings.swarm_role
        if role is None:
            in_managers, in_workers = target.name in managers, target.name in workers
            if in_managers and in_workers:
                raise InputError(f"host '{target.name}' is in both {MANAGERS_GROUP} and {WORKERS_GROUP}: "
                                 f"remove it from one, or set {ROLE_VAR}")
            role = "manager" if in_managers else "worker" if in_workers else None
        resolved.append(replace(target, hostvars={**target.hostvars, ROLE_VAR: role}) if role else target)
    return resolved


def role_of(target: Target) -> str | None:
    return swarm_settings(target).swarm_role


def manager_target(targets: list[Target]) -> Target:
    """The first manager in inventory order (targets from load_swarm_targets, or with swarm_role set).

    Raises InputError when there is none."""
    for target in targets:
        if role_of(target) == "manager":
            return target
    raise InputError(f"no swarm manager among the selected hosts: put at least one in group {MANAGERS_GROUP} "
                     f"(or set {ROLE_VAR}: manager), and include it in --limit")


def load_swarm_targets(inventory_path: str | Path, limit: str | None = None) -> list[Target]:
    """The selected hosts, their roles resolved; raises InputError (before any connection) when the
    inventory is bad, a role is bad, or no manager is selected."""
    from provision.config.inventory import load_inventory

    targets = load_targets(inventory_path, limit)
    inventory = load_inventory(Path(inventory_path))
    members = {group: inventory.group_hosts(group) if group in inventory.groups else []
               for group in (MANAGERS_GROUP, WORKERS_GROUP)}
    targets = resolve_roles(targets, members[MANAGERS_GROUP], members[WORKERS_GROUP])
    manager_target(targets)
    return targets


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
    if settings.gpu is not None:
        return settings.gpu, f"inventory sets gpu: {'true' if settings.gpu else 'false'}"
    gpus = (host_facts or {}).get("gpus") or []
    return (True, f"{len(gpus)} NVIDIA GPU(s) found") if gpus else (False, "no NVIDIA GPU")


def choose_leader(managers: list[str], probed: dict[str, Probed]) -> str:
    """The first manager that already manages a swarm, else the first manager (inventory order)."""
    for name in managers:
        p = probed.get(name)
        if p is not None and p.state.info is not None and p.state.info.is_manager:
            return name
    return managers[0]


def _engine_problem(state: facts.SwarmHostState) -> Refusal | None:
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
    problem = _engine_problem(probed.state)
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
    problem = _engine_problem(probed.state)
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


# -- running it -------------------------------------------------------------------------------
class _Kept:
    """An executor shared across the phases: close() is deferred to the end; run() is serialized
    (the leader's connection also labels the other nodes, from several threads)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.name = executor.name
        self._lock = threading.Lock()

    def run(self, command: Command, *, become: bool = False, timeout: float | None = None) -> CommandResult:
        with self._lock:
            return self.executor.run(command, become=become, timeout=timeout)

    def close(self) -> None:
        pass

    def __getattr__(self, name):  # host_key_notes, round_trips
        return getattr(self.executor, name)


def _probe(executor: Executor, target: Target) -> Probed:
    settings = swarm_settings(target)
    state = facts.parse(executor.run(facts.probe(), become=True).stdout)
    host_facts = None
    if settings.gpu is None:
        from provision.facts.model import parse_facts
        from provision.facts.script import FACTS_SCRIPT

        host_facts = parse_facts(executor.run(FACTS_SCRIPT, become=target.settings.become).stdout)
    gpu, gpu_why = gpu_node(settings, host_facts)
    advertise, advertise_why = advertise_address(settings, state)
    return Probed(state, gpu, gpu_why, advertise, advertise_why)


def _read_cluster(executor: Executor) -> facts.ClusterState:
    return facts.parse_cluster(executor.run(facts.cluster_probe(), become=True).stdout)


def _docker_error(exc: Exception, secrets: list[Secret]) -> str | None:
    """One line for an error of the docker SDK or its transport (never a token); None for others."""
    import docker.errors
    import requests.exceptions

    if not isinstance(exc, (docker.errors.DockerException, requests.exceptions.RequestException)):
        return None
    text = str(getattr(exc, "explanation", None) or exc or type(exc).__name__).strip()
    for secret in secrets:
        if secret:
            text = text.replace(secret.reveal(), "********")
    line = text.splitlines()[0][:300] if text else type(exc).__name__
    if isinstance(exc, requests.exceptions.ConnectionError):
        line = f"the Docker engine does not answer over SSH: {line}"
    return redact(line)


def _read_tokens(docker_factory: DockerFactory, target: Target, executor: Executor) -> dict[str, Secret]:
    """The join tokens, through the leader's Engine API (`GET /swarm`) over its SSH connection."""
    client = docker_factory(target, executor)
    try:
        return facts.parse_join_tokens(client.api.inspect_swarm())
    finally:
        client.close()


def _join(applier: Applier, step: Change, docker_factory: DockerFactory, target: Target, executor: Executor, token: Secret | None,
          manager_addr: str, advertise: str) -> bool:
    """Apply the join step: the Engine API's `POST /swarm/join` on the member (the token in the body).

    The step as the Applier records it (changed or failed, with the duration); True when joined."""
    if applier.check or applier.failed:
        return applier.apply(step)
    start = time.monotonic()
    if not token:
        applier.result.steps.append(StepResult(step.step, "failed", "the leader gave no join token for this role"))
        applier.failed = True
        return False
    body = cmd.join_request(token.reveal(), manager_addr, advertise)
    client = docker_factory(target, executor)
    try:
        client.api.join_swarm(remote_addrs=body["RemoteAddrs"], join_token=body["JoinToken"],
                              listen_addr=body["ListenAddr"], advertise_addr=body["AdvertiseAddr"])
    except Exception as exc:
        message = _docker_error(exc, [token])
        if message is None:
            raise
        applier.result.steps.append(StepResult(step.step, "failed", f"swarm join (Engine API): {message}",
                                               time.monotonic() - start))
        applier.failed = True
        return False
    finally:
        client.close()
    applier.result.steps.append(StepResult(step.step, "changed", redact(step.reason), time.monotonic() - start))
    return True


def init_swarm(targets: list[Target], options: RunOptions,
               executor_factory: Callable[[Target, RunOptions], Executor] = make_executor,
               docker_factory: DockerFactory | None = None) -> Report:
    """Form (or check) the swarm of the targets' roles; one HostResult per target, in inventory order."""
    manager_target(targets)  # bad input before any connection
    if docker_factory is None:
        from provision.deploy.remote_docker import client_for

        def docker_factory(target: Target, executor: Executor):
            return client_for(executor, target.settings)
    progress = options.progress
    quiet = replace(options, progress=_Silent())
    roles = {t.name: role_of(t) for t in targets}
    members = [t for t in targets if roles[t.name]]
    final: dict[str, HostResult] = {}
    for target in targets:
        if not roles[target.name]:
            final[target.name] = HostResult(target.name, skipped=f"not in {MANAGERS_GROUP} or {WORKERS_GROUP} "
                                                                 f"and no {ROLE_VAR}")
    executors: dict[str, _Kept] = {}
    lock = threading.Lock()

    def kept(target: Target, opts: RunOptions) -> Executor:
        with lock:
            if target.name not in executors:
                executors[target.name] = _Kept(executor_factory(target, opts))
            return executors[target.name]

    try:
        # 1. probe every member
        probed: dict[str, Probed] = {}

        def probe_work(target: Target, executor: Executor) -> HostResult:
            probed[target.name] = _probe(executor, target)
            return HostResult(target.name)

        for name, result in fan_out("swarm probe", members, probe_work, quiet, kept).hosts.items():
            if name not in probed:  # unreachable, or the probe itself broke
                final[name] = result
        # 2. the leader
        managers = [t.name for t in members if roles[t.name] == "manager"]
        leader = choose_leader(managers, probed)
        by_name = {t.name: t for t in targets}
        cluster: Cluster | None = None
        if leader not in final:
            token_roles = sorted({roles[n] for n, p in probed.items()
                                  if n != leader and p.state.info is not None and p.state.info.state == facts.INACTIVE})
            holder: dict[str, Cluster] = {}
            result = run_on_host(by_name[leader], _leader_work(probed[leader], token_roles, options.check, holder,
                                                               docker_factory), quiet, kept)
            final[leader] = result
            cluster = holder.get("cluster")
        # 3. the others
        rest = [t for t in members if t.name not in final]
        if cluster is None:
            why = final[leader].message or "failed"
            for target in rest:
                problem = _engine_problem(probed[target.name].state)
                final[target.name] = (HostResult(target.name, steps=[StepResult(STEP, "failed", problem.reason)])
                                      if problem else HostResult(target.name, skipped=f"the swarm leader {leader} "
                                                                                      f"is not available ({why})"))
        elif rest:
            leader_executor = executors[leader]
            work = _member_work(probed, roles, cluster, leader_executor, options.check, docker_factory)
            final.update(fan_out("swarm join", rest, work, quiet, kept).hosts)
    finally:
        for executor in executors.values():
            executor.executor.close()
    report = Report("swarm init")
    for target in targets:
        result = final[target.name]
        result.extra.setdefault(STEP, {"role": roles[target.name]})
        report.add(result)
        progress.host_finished(result)
    return report


def _leader_work(probed: Probed, token_roles: list[str], check: bool, holder: dict[str, Cluster],
                 docker_factory: DockerFactory):
    def work(target: Target, executor: Executor) -> HostResult:
        result = HostResult(target.name)
        applier = Applier(executor, result, check)
        initialised = applier.apply(leader_plan(probed))
        info = probed.state.info
        if applier.failed or info is None:
            _finish(result, applier, {"role": "manager", "leader": True})
            return result
        if check and initialised:  # the swarm is only planned
            cluster = Cluster(target.name, cmd.join_address(probed.advertise or "<advertise-addr>"))
        else:
            read = _read_cluster(executor)
            why = read.error or (None if read.info is not None and read.info.is_manager
                                 else "the node is not a manager after init")
            tokens: dict[str, Secret] = {}
            if why is None and token_roles and not check:
                try:
                    tokens = _read_tokens(docker_factory, target, executor)
                except Exception as exc:
                    why = _docker_error(exc, [])
                    if why is None:
                        raise
                    why = f"reading the join tokens: {why}"
                missing = [role for role in token_roles if role not in tokens]
                if why is None and missing:
                    why = f"the engine gave no {' or '.join(missing)} join token"
            if why is not None:
                result.steps.append(StepResult(STEP, "failed", f"cannot read the swarm from {target.name}: {why}"))
                _finish(result, applier, {"role": "manager", "leader": True})
                return result
            info = read.info
            cluster = Cluster(target.name, info.manager_addr, info.cluster_id, set(read.nodes),
                              {node: labels for node, (_, labels) in read.nodes.items()},
                              {role: tokens[role] for role in token_roles})
        holder["cluster"] = cluster
        node_id = info.node_id if info.active else None
        label = label_plan(node_id, cluster.labels.get(node_id or "", {}), probed.gpu, probed.gpu_why)
        if label is not None:
            applier.apply(label)
        _finish(result, applier, {"role": "manager", "leader": True, "node_id": node_id,
                                  "cluster_id": cluster.cluster_id or None, "manager_addr": cluster.join_addr,
                                  "advertise_addr": info.node_addr or probed.advertise, "gpu": probed.gpu})
        return result

    return work


def _member_work(probed: dict[str, Probed], roles: dict[str, str | None], cluster: Cluster, leader_executor: Executor,
                 check: bool, docker_factory: DockerFactory):
    def work(target: Target, executor: Executor) -> HostResult:
        p = probed[target.name]
        role = roles[target.name] or "worker"
        result = HostResult(target.name)
        applier = Applier(executor, result, check)
        step, notes = member_plan(p, role, cluster)
        applier.notes.extend(notes)
        if isinstance(step, Change):
            joined = _join(applier, step, docker_factory, target, executor, cluster.tokens.get(role), cluster.join_addr,
                           p.advertise or "")
        else:
            joined = applier.apply(step)
        info = p.state.info
        extra = {"role": role, "leader": False, "cluster_id": cluster.cluster_id or None, "gpu": p.gpu}
        if applier.failed or info is None:
            _finish(result, applier, extra)
            return result
        if joined and not check:  # the node ID exists only now
            state = facts.parse(executor.run(facts.probe(), become=True).stdout)
            info = state.info or info
        node_id = info.node_id if info.active else None
        extra.update(node_id=node_id, advertise_addr=info.node_addr or p.advertise)
        label = label_plan(node_id, cluster.labels.get(node_id or "", {}), p.gpu, p.gpu_why)
        if label is not None:  # node labels are set on a manager: through the leader's connection
            labeller = Applier(leader_executor, result, check)
            labeller.apply(label)
            applier.plan.extend(labeller.plan)
        _finish(result, applier, extra)
        return result

    return work


def _finish(result: HostResult, applier: Applier, extra: dict) -> None:
    result.extra[STEP] = extra
    if applier.notes:
        result.extra["notes"] = applier.notes
    if applier.check:
        result.extra["plan"] = applier.plan
