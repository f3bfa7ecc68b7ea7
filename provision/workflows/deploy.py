"""`provision deploy`: a stack (Compose files, or an old-format playbook) onto the selected hosts through
the docker SDK over SSH.

Before any connection: the stack is loaded and validated (deploy.stack.load_stack; exit 4), the
hosts of each service are selected, secrets are read from the operator's environment, and locally
built images are built (or not, when nothing they are built from changed: deploy.local_engine). Then, per
host in parallel: one read-only probe (workflows.deploy_noop); a host that already holds what the stack wants
is done there (every step ok, no lock, no audit line, no docker SDK). Otherwise, under the host's deploy
lock (the shipping registry started by the first such host): networks and
volumes (created once), bind folders, images (shipped registry-less, pulled, or built on the host),
Compose secrets (files on a tmpfs), then each service in dependency order (waiting for depends_on
conditions) is reconciled by its labels (keep / create / replace with a health-gated rollout) and
containers of services no longer in the playbook are removed. Every run appends a line to the
host's audit log. `--check` computes the same plan and changes nothing.

GPU services (issue 14): before any host is changed (and under --check), workflows.gpu_precheck checks
each GPU service's device request against its host's GPUs and its image's CUDA requirement against the
host's driver; one refusal stops the whole deploy, every refusal shown.

Where things are: the image step (ship/pull/build, disk space) in workflows.deploy_images, one
host's steps in workflows.deploy_host, the engine check in workflows.engine, `provision rollback` in
workflows.deploy_rollback, the deploy lock and audit log in workflows.host_lock, the health-gated
rollout in deploy.rollout.

Faults: after Ctrl-C/SIGTERM a host in flight stops at its next step boundary (a health wait in
progress rolls back: NAME.next removed, the old container serving) and releases its lock; hosts
not yet started are reported "not started: interrupted"; the shipping registry is stopped after the
last host (workflows.interrupt). A same-named container that is not this stack's is refused, never
touched (deploy.rollout). A bind-folder sync that fails is a failed step and stops the host before
any service; relative bind mounts stay inside the playbook's folder and remote_dir.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from provision.deploy import images as image_sources
from provision.errors import InputError
from provision.executor.base import Executor
from provision.report import HostResult, Report
from provision.workflows import deploy_noop
from provision.workflows.deploy_host import HostDeploy
from provision.workflows.deploy_images import ImageJob, make_relay, staged_images
from provision.workflows.deploy_rollback import rollback_work
from provision.workflows.engine import engine
from provision.workflows.fanout import RunOptions, SharedExecutors, fan_out
from provision.workflows.host_lock import HostLock
from provision.interrupts import INTERRUPT
from provision.workflows.targets import Target

__all__ = ["DeployContext", "check_bind_sources", "deploy", "host_work", "load", "read_secrets", "rollback_work",
           "run"]  # rollback_work: re-exported for the CLI (`provision rollback`)


@dataclass
class DeployContext:
    """Everything decided on the operator's machine, shared read-only by the per-host works."""

    playbook: object
    services_by_host: dict[str, list[str]]
    sources: dict[str, image_sources.ImageSource]
    secrets: dict[str, str]
    environ: Mapping[str, str]
    check: bool
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    registry_port: int | None = None
    staged: dict[str, object] = field(default_factory=dict)  # image name → shipping.StagedImage
    log: Callable[[str], None] = lambda line: None
    file_secrets: dict[str, object] = field(default_factory=dict)  # Compose secret name → Secret (wrapped)
    relay: object = None  # deploy.relay.Relay: hosts get shipped images from each other
    staging: Staging | None = None  # starts the shipping registry for the first host that needs it

    def image_job(self) -> ImageJob:
        return ImageJob(self.playbook, self.sources, self.environ, self.check, self.registry_port, self.staged,
                        self.log, self.relay)


# -- before any connection ------------------------------------------------------------------------
def load(playbook_path: str | Path | Sequence[str | Path], inventory_path: str | Path, limit: str | None, *,
         environ: Mapping[str, str], require_secrets: bool = True, project_name: str | None = None,
         profiles: Sequence[str] = ()):
    """(playbook, targets, services_by_host); raises InputError before any host is contacted.

    ``playbook_path``: one stack file or several Compose files (merged as ``docker compose -f``)."""
    from provision.config.inventory import load_inventory
    from provision.deploy.playbook import load_stack
    from provision.workflows.targets import load_targets

    playbook = load_stack(playbook_path, environ=environ, project_name=project_name, profiles=profiles,
                          require_secrets=require_secrets, require_build_contexts=True)
    targets = load_targets(inventory_path, limit)
    inventory = load_inventory(inventory_path)
    selected = {t.name for t in targets}
    services_by_host: dict[str, list[str]] = {t.name: [] for t in targets}
    for name in playbook.ordered_services():
        pattern = playbook.service_hosts(playbook.services[name])
        for host in inventory.select(pattern):
            if host in selected:
                services_by_host[host].append(name)
    check_bind_sources(playbook)
    for target in targets:  # bad per-host settings are bad input, found before any connection
        image_sources.min_free_mb(target.name, target.hostvars)
    stack_hosts = set(inventory.select(playbook.hosts)) | {h for h, s in services_by_host.items() if s}
    targets = [t for t in targets if t.name in stack_hosts]
    if not targets:
        raise InputError(f"no selected host runs any service of stack {playbook.stack!r} "
                         f"(hosts: {playbook.hosts!r}{', --limit ' + repr(limit) if limit else ''})",
                         file=playbook.path)
    return playbook, targets, services_by_host


def check_bind_sources(playbook) -> None:
    """Relative bind mounts stay inside the playbook's folder here and inside remote_dir on the host
    (`./a/../../etc` is refused as bad input, before any connection)."""
    import posixpath

    root = posixpath.normpath(playbook.remote_dir)
    base = Path(os.path.normpath(playbook.base_dir))
    for name in playbook.ordered_services():
        for mount in playbook.services[name].mounts(playbook):
            if mount.kind != "bind" or mount.local_source is None:
                continue
            inside_remote = (mount.source.rstrip("/") + "/").startswith(root.rstrip("/") + "/")
            if not inside_remote or not Path(mount.local_source).is_relative_to(base):
                raise InputError(f"services.{name}.volumes: a relative bind mount must name a folder inside the "
                                 f"playbook's folder ({base}) and so inside remote_dir ({root}) on the host; "
                                 f"it resolves to {mount.local_source} here and {mount.source} there",
                                 file=playbook.path)


def read_secrets(playbook, environ: Mapping[str, str]) -> dict[str, str]:
    names = {s for service in playbook.services.values() for s in (service.secrets or [])}
    return {name: environ[name] for name in sorted(names) if name in environ}


def deploy(playbook_path: str | Path, inventory_path: str | Path, limit: str | None, options: RunOptions, *,
           environ: Mapping[str, str] | None = None, log: Callable[[str], None] = lambda line: None) -> Report:
    environ = os.environ if environ is None else environ
    return run(load(playbook_path, inventory_path, limit, environ=environ), options, environ=environ, log=log)


def run(loaded, options: RunOptions, *, environ: Mapping[str, str],
        log: Callable[[str], None] = lambda line: None) -> Report:
    """Deploy what `load` returned: build local images, stage them, then every host in parallel."""
    playbook, targets, services_by_host = loaded
    sources = image_sources.sources(playbook, check=options.check)
    context = DeployContext(playbook, services_by_host, sources, read_secrets(playbook, environ), environ,
                            options.check, log=log, file_secrets=playbook.file_secret_values(environ))
    refusal, gpu_steps = None, {}
    gpu = any(service.gpu_request() is not None for service in playbook.services.values())
    if gpu:
        from provision.workflows import gpu_precheck  # only for GPU services: bad input exits before it is imported
    # one executor (one SSH connection) per host for the whole deploy: the GPU precheck, the deploy, and
    # the relay's commands on a seed host from another host's thread
    with SharedExecutors(targets, options) as executors:
        if gpu:
            for target in targets:
                if gpu_precheck.gpu_services(context, target.name):
                    executors.expect(target.name, 2)  # the precheck's lease, then the deploy's: open in between
            refusal, gpu_steps = gpu_precheck.precheck(context, targets, options, executors=executors)
        if refusal is not None:  # before any host is changed
            return refusal
        if not options.check and any(s.how == image_sources.SHIP for s in sources.values()):
            context.relay = make_relay(targets, options, log, executors=executors)
        with Staging(sources, options.check) as context.staging:
            report = fan_out("deploy", targets, host_work(context), options, executors=executors)
    for name, steps in gpu_steps.items():  # the GPU checks head each GPU host's result
        if name in report.hosts:
            report.hosts[name].steps[0:0] = steps
    return report


class Staging:
    """The shipping registry with the images to ship pushed to it (workflows.deploy_images.staged_images),
    started by the first host that takes the full path: a redeploy where no host must change anything
    (workflows.deploy_noop) never starts it. A staging error is every full-path host's error.

    The registry lives in a thread of its own, from start to stop: it is started with PR_SET_PDEATHSIG
    (deploy.local_registry), which fires when the *thread* that started it ends, and the fan-out's worker
    threads end before the deploy is over (the registry must still answer when it is stopped: its garbage
    collection deletes manifests through it)."""

    def __init__(self, sources, check: bool) -> None:
        self.sources, self.check = sources, check
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._staged: tuple | None = None
        self._error: BaseException | None = None
        self._exit: tuple = (None, None, None)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc) -> None:
        self._exit = exc
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _serve(self) -> None:
        stack = contextlib.ExitStack()
        try:
            self._staged = stack.enter_context(staged_images(self.sources, self.check))
        except BaseException as exc:  # handed to the hosts that wait for it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._done.wait()
        stack.__exit__(*self._exit)

    def ensure(self, context: DeployContext) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="provision-staging", daemon=True)
                self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        context.registry_port, context.staged = self._staged


# -- per host ----------------------------------------------------------------------------------------
def host_work(context: DeployContext):
    def work(target: Target, executor: Executor) -> HostResult:
        result = HostResult(target.name)
        noop, _why = deploy_noop.probe(context, target, executor)  # one round trip: nothing to change?
        if noop is not None:  # no lock, no SDK, no registry: the steps, all "ok"
            HostDeploy(context, target, executor, None, result).record_noop(noop)
            return result
        if context.staging is not None:
            context.staging.ensure(context)
        client = engine(target, executor)
        host = HostDeploy(context, target, executor, client, result)
        if context.check:
            host.run()
            return result
        with HostLock(executor, "deploy", stack=context.playbook.stack, run_id=context.run_id,
                      result=result) as lock:
            try:
                host.run()
            finally:
                lock.note(playbook=str(context.playbook.path), services=host.actions,
                          **({"result": "interrupted"} if host.was_interrupted or INTERRUPT.requested else {}))
        return result

    return work
