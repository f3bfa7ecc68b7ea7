"""Shared by the tests/unit/test_workflow_*.py sequencing tests: a frozen host lock (so its commands can be
built exactly), the script the Applier sends for a Change, a probe's output rendered from a state (the
inverse of the probe's parser), and a way to drive a per-host work function through fan_out with a
RecordingExecutor."""

from __future__ import annotations

import uuid

from provision.commands import deploy_host, detached, docker_repo
from provision.config.connection import connection_settings
from provision.executor.fake import RecordingExecutor
from provision.facts.docker_host import WATCHED_PACKAGES, DockerHostState
from provision.facts.script import BEGIN_MARKER, END_MARKER, FACT_MARKER, RC_MARKER
from provision.operations.base import Change
from provision.workflows import host_lock
from provision.workflows.fanout import RunOptions, fan_out
from provision.workflows.targets import Target

TOKEN = uuid.UUID(int=1).hex[:12]
BY = "tester@workstation"
NOW = "2026-12-01T10:00:00+0000"


def freeze_lock(monkeypatch) -> None:
    """Fix the host lock's token, operator and clock, so its commands are known in advance (call it from an
    autouse fixture)."""
    monkeypatch.setattr(host_lock, "operator", lambda: BY)
    monkeypatch.setattr(host_lock, "now", lambda: NOW)
    monkeypatch.setattr(host_lock.uuid, "uuid4", lambda: uuid.UUID(int=1))


def take(action: str, stack: str = "*", token: str = TOKEN) -> str:
    import os

    return deploy_host.acquire_lock({"token": token, "by": BY, "pid": os.getpid(), "stack": stack,
                                     "action": action, "since": NOW})


def audit(action: str, result: str = "ok", stack: str = "*", token: str = TOKEN, **details) -> str:
    return deploy_host.append_audit({"time": NOW, "action": action, "stack": stack, "by": BY, "run": token,
                                     "result": result, **details})


def release(token: str = TOKEN) -> str:
    return deploy_host.release_lock(token)


def locked(action: str, *commands: str, result: str = "ok", stack: str = "*", **details) -> list[str]:
    """The lock taken, the commands, the audit line and the release."""
    return [take(action, stack), *commands, audit(action, result, stack, **details), release()]


def script(change: Change, stamp: str = "T") -> str:
    """What the Applier sends for a Change: its commands under `set -e`, detached for apt work."""
    assert isinstance(change, Change), change
    text = "set -e\n" + "\n".join(change.commands)
    if change.detached:
        text = detached.run_detached(detached.unit_name(stamp, change.step), text, f"provision: {change.step}")
    return text


def sections(**named: str | tuple[str, int]) -> str:
    """A probe's output: each section's text (rc 0) or (text, rc)."""
    lines = [f"{BEGIN_MARKER} 1"]
    for name, value in named.items():
        text, rc = (value, 0) if isinstance(value, str) else value
        lines.append(f"{FACT_MARKER}{name}")
        if text:
            lines.append(text)
        lines.append(f"{RC_MARKER}{name} {rc}")
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"


MISSING = ("", 1)
NOT_INSTALLED = ("", 127)


def _remote_key(state: DockerHostState) -> str | tuple[str, int]:
    """The remote_key section: the recorded check (`cached`), a download (`fetched NOW`, digest), or an error."""
    if state.key_cached:
        return f"cached {state.keyring_sha} {state.key_checked_at} {state.host_now}"
    if not state.remote_key_sha:
        return (state.remote_key_error or "curl: (22) 404", 22)
    return f"fetched {state.host_now}\n{state.remote_key_sha}" if state.host_now is not None else state.remote_key_sha


def docker_probe_output(state: DockerHostState) -> str:
    """The Docker probe's output for a host in `state` (provision.facts.docker_host.parse reads it back)."""
    # as probes.DOCKER_PACKAGES_FORMAT prints them; the `dpkg` line carries the architecture (issue 12)
    lines = [f"{name}\t{state.packages[name]}\t{'hi' if name in state.held else 'ii'} \t{state.arch or 'amd64'}"
             for name in WATCHED_PACKAGES if name in state.packages]
    if state.arch:
        lines.append(f"dpkg\t1.21.22\tii \t{state.arch}")
    packages = "\n".join(sorted(lines))
    service = [f"UnitFileState={'enabled' if state.service_enabled else 'disabled'}",
               f"ActiveState={'active' if state.service_active else 'inactive'}"]
    dpkg = (["interrupted=updates"] if state.dpkg.interrupted else []) + [f"unit={u}" for u in state.dpkg.units]
    return sections(
        os_release=f"ID={state.os_id}\nVERSION_ID=\"{state.version_id}\"\nVERSION_CODENAME={state.codename}",
        systemd="yes" if state.systemd else "no",
        cloud_init=f"status: {state.cloud_init}" if state.cloud_init else NOT_INSTALLED,
        packages=packages,
        snap="docker  20.10  x1  latest/stable" if state.snap_docker else NOT_INSTALLED,
        keyring=state.keyring_sha or MISSING,
        remote_key=_remote_key(state),
        sources=state.sources.rstrip("\n") if state.sources is not None else MISSING,
        stale="\n".join(state.stale_files),
        daemon_json=state.daemon_json.rstrip("\n") if state.daemon_json is not None else MISSING,
        docker_group=("docker:x:999:" + ",".join(state.docker_group)) if state.docker_group is not None else ("", 2),
        users="\n".join(f"{u} {1000 + i if exists else 'none'}" for i, (u, exists) in enumerate(state.users.items())),
        service="\n".join(service),
        dpkg_state="\n".join(dpkg),
    )


def target(name: str = "h1", **hostvars) -> Target:
    return Target(name, connection_settings(name, {"ansible_host": "127.0.0.1", **hostvars}), hostvars)


def drive(command: str, work, executor: RecordingExecutor, **hostvars):
    """Run `work` on one host through fan_out, as the CLI does, with `executor` as the host's executor;
    returns that host's HostResult."""
    report = fan_out(command, [target(executor.name, **hostvars)], work, RunOptions(),
                     executor_factory=lambda t, o: executor)
    return report.hosts[executor.name]


KEYRING, SOURCES = docker_repo.KEYRING, docker_repo.SOURCES


def inspected_objects(*, have_containers=(), networks: list[str] = (), volumes: list[str] = (),
                      images: list[str] = (), have_networks: dict | None = None, have_volumes: dict | None = None,
                      have_images: dict | None = None) -> str:
    """The redeploy probe's `objects` section (commands.deploy_state) for a host holding HAVE_CONTAINERS
    (ContainerState: all listed, as labelled or wanted), networks and volumes (name → labels) and images
    (reference → id), in the shapes a real engine's `docker inspect --format '{{json .}}'` prints them
    (tests/fixtures/facts/deploy-state-real-*), cut to the fields the parser reads or tells the kind by:
    the objects in the order asked, then one "No such object" line per name not found."""
    import json

    def container(c) -> dict:
        state = {"Status": c.status, "ExitCode": c.exit_code}
        if c.health is not None:
            state["Health"] = {"Status": c.health, "FailingStreak": 0, "Log": []}
        return {"Id": c.id, "Name": "/" + c.name, "State": state, "Image": c.image, "Driver": "overlay2",
                "Config": {"Labels": c.labels}, "HostConfig": {"NetworkMode": "default"}}

    lines = [" ".join(["containers", *(c.name for c in have_containers)])]
    lines += [json.dumps(container(c)) for c in have_containers]
    missing = []
    for kind, names, have in (("network", networks, have_networks), ("volume", volumes, have_volumes),
                              ("image", images, have_images)):
        for name in names:
            if name not in (have or {}):
                missing.append(f"Error: No such object: {name}")
            elif kind == "network":
                lines.append(json.dumps({"Name": name, "Id": "f" * 64, "Scope": "local", "Driver": "bridge",
                                         "IPAM": {"Driver": "default"}, "Labels": have[name]}))
            elif kind == "volume":
                lines.append(json.dumps({"Name": name, "Driver": "local", "Scope": "local",
                                         "Mountpoint": f"/var/lib/docker/volumes/{name}/_data", "Labels": have[name]}))
            else:
                lines.append(json.dumps({"Id": have[name], "RepoTags": [name], "Config": {},
                                         "RootFS": {"Type": "layers"}}))
    return "\n".join(lines + missing)
