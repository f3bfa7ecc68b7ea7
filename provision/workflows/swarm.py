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

Where things are: roles and the members from the inventory in workflows.swarm_targets, every
decision (leader, init/join/label plans, advertise address, GPU node) in operations.swarm, the
command lines and the join request body in commands.swarm, the Engine API calls (tokens, join) in
workflows.swarm_join; this module only probes and applies, phase by phase.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Callable

from provision.commands import swarm as cmd
from provision.executor.base import Command, CommandResult, Executor
from provision.secret import Secret
from provision.facts import swarm as facts
from provision.operations.base import Change
from provision.operations.swarm import (
    LABEL_STEP,
    MANAGERS_GROUP,
    NEVER_LEAVES,
    ROLE_VAR,
    STEP,
    WORKERS_GROUP,
    Cluster,
    Probed,
    advertise_address,
    choose_leader,
    engine_problem,
    gpu_node,
    label_plan,
    leader_plan,
    member_plan,
)
from provision.report import HostResult, Report, StepResult
from provision.workflows.applier import Applier
from provision.workflows.fanout import RunOptions, SilentProgress, fan_out, make_executor, run_on_host
from provision.workflows.swarm_join import DockerFactory, docker_error, join, read_tokens
from provision.workflows.swarm_targets import load_swarm_targets, manager_target, role_of, settings_of
from provision.workflows.targets import Target

# re-exported: the CLI and callers name them from here
__all__ = ["LABEL_STEP", "MANAGERS_GROUP", "NEVER_LEAVES", "ROLE_VAR", "STEP", "WORKERS_GROUP",
           "DockerFactory", "init_swarm", "load_swarm_targets", "manager_target", "role_of"]



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
    settings = settings_of(target)
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
    quiet = replace(options, progress=SilentProgress())
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
                problem = engine_problem(probed[target.name].state)
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
                    tokens = read_tokens(docker_factory, target, executor)
                except Exception as exc:
                    why = docker_error(exc, [])
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
            joined = join(applier, step, docker_factory, target, executor, cluster.tokens.get(role), cluster.join_addr,
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
