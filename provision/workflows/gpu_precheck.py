"""Before any GPU service is deployed (issue 14): does each host have the GPUs its services ask for, and will
each GPU service's image run on the host's driver? Called once by workflows.deploy.run, after the stack is
loaded and local images are built, before any host is changed (also under --check).

Only hosts that will run a GPU service (a service with a GPU device request: `gpus:` or
`deploy.resources.reservations.devices`) are contacted, with one probe each (facts/gpu_deploy: nvidia-smi's
GPU list, driver and CUDA version), plus, for an image the hosts pull, two or three small registry requests
through the host's SSH connection (deploy/image_cuda: manifest, then config; no layer). The decisions are
operations/gpu_requests (requests vs facts) and operations/cuda_compat (the image's NVIDIA_REQUIRE_CUDA /
CUDA_VERSION vs the driver, with forward compatibility).

When any host is refused, nothing is deployed anywhere: the refused hosts fail with every refusal (each
naming the host, what it has, and the remedy), the others are skipped ("not deployed"), and the exit code
is 2, as for any failed host. When none is, the checks' steps head each GPU host's deploy result.

Under `deploy --swarm` (workflows.swarm_deploy) the hosts are the swarm members each GPU service can be
placed on (operations.gpu_requests.swarm_candidates: its placement constraints against the members' roles);
a member without a GPU is not refused there but skipped for that service (Swarm places GPU services only on
nodes labelled provision.gpu=true, which `provision swarm init` sets on GPU hosts), and a GPU service that
no reachable candidate has a GPU for is refused on the manager (its tasks would stay pending).

Not checked (each is a "skipped" step saying so): an image built on the host (`build_on: remote`: known
only after the build), an image whose config could not be read (registry unreachable, credentials the host
has but provision does not), a host whose nvidia-smi does not print its CUDA version.
"""

from __future__ import annotations

import time
from dataclasses import replace

from provision.deploy import image_cuda
from provision.deploy import images as image_sources
from provision.errors import ProvisionError
from provision.executor.base import Executor
from provision.facts import gpu_deploy
from provision.interrupts import Interrupted
from provision.operations import cuda_compat, gpu_requests
from provision.report import HostResult, Report, StepResult
from provision.workflows.fanout import RunOptions, SharedExecutors, SilentProgress, fan_out
from provision.workflows.targets import Target

PROBE_TIMEOUT_S = 60
STEP = "gpu check"


def gpu_services(context, host: str) -> list[str]:
    """The services of HOST with a GPU device request, in deploy order."""
    services = context.playbook.services
    return [name for name in context.services_by_host.get(host, []) if services[name].gpu_request() is not None]


def _env(config: dict | None, service) -> list[str]:
    """The container's environment as the NVIDIA toolkit sees it: the image's Env, then the service's own
    (a service can set NVIDIA_DISABLE_REQUIRE or its own NVIDIA_REQUIRE_CUDA)."""
    inner = (config or {}).get("Config") or (config or {}).get("config") or {}
    env = list(inner.get("Env") or [])
    for key, value in (service.environment or {}).items():
        if value is not None:
            env.append(f"{key}={value}")
    return env


def _local_configs(context, names: set[str]) -> dict[str, dict | str]:
    """Image name → its local config (a shipped image), or the reason it cannot be read."""
    found: dict[str, dict | str] = {}
    sources = {s.name: s for s in context.sources.values()}
    client = None
    for name in sorted(names):
        source = sources.get(name)
        if source is None or source.how != image_sources.SHIP:
            continue
        ref = source.local_id or name
        try:
            client = client or image_sources.local_client()
            config = image_cuda.local_config(client, ref)
        except ProvisionError as exc:
            found[name] = str(exc)
            continue
        found[name] = config if config is not None else "the image is not built yet (--check): not checked"
    return found


def _remote_config(context, target: Target, executor: Executor, client_info: dict, name: str, arch: str):
    transport = executor.ssh_transport()
    connect = image_cuda.ssh_connect(transport) if transport is not None else image_cuda.direct_connect
    return image_cuda.remote_config(name, fetch=image_cuda.http_fetch(connect),
                                    registry_config=client_info.get("RegistryConfig"),
                                    auth=image_sources.pull_auth(context.playbook, name, context.environ), arch=arch)


def _engine_info(target: Target, executor: Executor) -> dict:
    """The host engine's `docker info` (its RegistryConfig: mirrors, insecure registries)."""
    from provision.workflows.engine import engine

    client = engine(target, executor)
    try:
        return client.info()
    finally:
        client.close()


def _host_work(context, local: dict[str, dict | str], swarm: bool = False):
    def work(target: Target, executor: Executor) -> HostResult:
        result = HostResult(target.name)
        started = time.monotonic()
        facts = gpu_deploy.parse(executor.run(gpu_deploy.probe(), timeout=PROBE_TIMEOUT_S).stdout)
        hosts: list[cuda_compat.HostCuda] = []  # one per distinct GPU brand: the toolkit checks each GPU
        if facts.gpus and facts.driver and facts.cuda:
            try:
                hosts = [cuda_compat.host_cuda(facts.driver, facts.cuda, brand) for brand in facts.brands]
            except cuda_compat.CudaCompatError:  # a version nvidia-smi printed oddly: images not checked (said)
                hosts = []
        info: dict | None = None
        remote: dict[str, dict | str] = {}
        for name in gpu_services(context, target.name):
            service = context.playbook.services[name]
            request = service.gpu_request()
            step = f"{STEP} {name}"
            if swarm and not facts.gpus:
                result.steps.append(StepResult(step, "skipped", (
                    f"host {target.name} has {facts.describe()}: Swarm does not place service {name} here "
                    f"(GPU services run only on nodes labelled provision.gpu=true, set by `provision swarm init` "
                    "on GPU hosts)")))
                continue
            decision = gpu_requests.check_request(target.name, name, request.count, request.device_ids, facts)
            if not decision.ok:
                result.steps.append(StepResult(step, "failed", decision.message, time.monotonic() - started))
                continue
            notes = [decision.message, *decision.warnings]
            source = context.sources.get(name)
            image = service.image
            if source is not None and source.how == image_sources.BUILD_REMOTE:
                result.steps.append(StepResult(step, "ok", "; ".join(notes + [
                    f"image {image} is built on the host: its CUDA requirement is not checked"])))
                continue
            if not hosts:
                result.steps.append(StepResult(step, "skipped", "; ".join(notes + [
                    f"nvidia-smi did not report a readable driver and CUDA version on {target.name} ({facts.driver}, "
                    f"{facts.cuda}): image {image} not checked"])))
                continue
            if image in local:
                config = local[image]
            else:
                if image not in remote:
                    try:
                        if info is None:
                            info = _engine_info(target, executor)
                        remote[image] = _remote_config(context, target, executor, info, image, facts.arch)
                    except Interrupted:
                        raise
                    except Exception as exc:  # registry or engine unreachable: not checked, said in the step
                        remote[image] = str(exc) if isinstance(exc, ProvisionError) else \
                            f"its config could not be read ({type(exc).__name__}: {str(exc)[:200]})"
                config = remote[image]
            if isinstance(config, str):
                result.steps.append(StepResult(step, "skipped", "; ".join(notes + [f"image {image}: {config}"])))
                continue
            try:
                requirement = cuda_compat.requirement_from_env(_env(config, service))
            except cuda_compat.CudaCompatError as exc:
                result.steps.append(StepResult(step, "failed", f"image {image} of service {name}: {exc}"))
                continue
            verdicts = [cuda_compat.check(requirement, host, f"image {image} (service {name})") for host in hosts]
            verdict = next((v for v in verdicts if not v.ok), verdicts[0])
            if not verdict.ok:
                result.steps.append(StepResult(step, "failed", f"on host {target.name}: {verdict.message}"))
                continue
            result.steps.append(StepResult(step, "ok", "; ".join(notes + [verdict.message, *verdict.warnings]),
                                           time.monotonic() - started))
        result.extra["gpus"] = [{"index": g.index, "uuid": g.uuid, "name": g.name} for g in facts.gpus]
        return result

    return work


def _swarm_placement(context, targets: list[Target], checked: Report, manager: str) -> None:
    """Under Swarm: a GPU service that no reachable candidate node has a GPU for is refused on the manager."""
    by_service: dict[str, list[str]] = {}
    for target in targets:
        for name in gpu_services(context, target.name):
            by_service.setdefault(name, []).append(target.name)
    for name, hosts in by_service.items():
        results = [checked.hosts[h] for h in hosts if h in checked.hosts]
        if any(r.extra.get("gpus") for r in results) or any(r.unreachable is not None for r in results):
            continue
        if manager not in checked.hosts:
            checked.add(HostResult(manager))
        checked.hosts[manager].steps.append(StepResult(f"{STEP} {name}", "failed", (
            f"service {name} can be placed only on {', '.join(hosts)} (its placement constraints), and none has a "
            "GPU: its tasks would stay pending. Install the driver there with `provision nvidia` (then `provision "
            "swarm init` labels the node), or change the service's placement constraints")))


def precheck(context, targets: list[Target], options: RunOptions, *, swarm_manager: str | None = None,
             executors: SharedExecutors | None = None) -> tuple[Report | None, dict[str, list[StepResult]]]:
    """(a Report that refuses the whole deploy, or None; each GPU host's check steps to head its result).
    With `executors` (the deploy's), each host's checks use the connection its deploy uses afterwards.

    SWARM_MANAGER: the deploy is `--swarm` (context.services_by_host: the GPU services each member can be
    placed on); a refusal that belongs to no node is the manager's."""
    gpu_targets = [t for t in targets if gpu_services(context, t.name)]
    if not gpu_targets:
        return None, {}
    images = {context.playbook.services[s].image for t in gpu_targets for s in gpu_services(context, t.name)}
    local = _local_configs(context, {i for i in images if i})
    checked = fan_out("deploy", gpu_targets, _host_work(context, local, swarm=swarm_manager is not None),
                      replace(options, progress=SilentProgress()), executors=executors)
    if swarm_manager is not None:
        _swarm_placement(context, gpu_targets, checked, swarm_manager)
    refused = [name for name, r in checked.hosts.items() if r.status == "failed"]
    steps = {name: r.steps for name, r in checked.hosts.items() if r.status != "unreachable"}
    if not refused:
        return None, steps
    report = Report("deploy")
    for target in targets:
        if target.name in refused:
            report.add(checked.hosts[target.name])
            continue
        reason = (f"not deployed: the GPU checks refused host{'s' if len(refused) > 1 else ''} {', '.join(refused)} "
                  "(nothing was changed on any host)")
        previous = checked.hosts.get(target.name)
        if previous is not None and previous.unreachable is not None:
            report.add(previous)
            continue
        report.add(HostResult(target.name, steps=list(steps.get(target.name, [])), skipped=reason))
    return report, steps
