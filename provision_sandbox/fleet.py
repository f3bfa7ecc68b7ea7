"""The sandbox fleet: N fresh Debian 12 hosts (systemd + sshd) as containers on this machine.

Every object created carries the label io.provision.sandbox (see names.py); `down` removes those and nothing else.
sshd of each host is published on 127.0.0.1 only. The inventory written is an ordinary Ansible
inventory: the product code never knows it is talking to a sandbox.
"""

from __future__ import annotations

import io
import os
import secrets
import socket
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from provision.errors import EnvironmentProblem, InputError
from provision_sandbox import image as host_image
from provision_sandbox.engine import local_docker
from provision_sandbox.names import (DEFAULT_FLEET, FLEET_LABEL, GPU_LABEL, GPU_SIMULATED, HOST_PREFIX, LABEL,
                                     PORT_LABEL, Paths, host_name)

FIRST_PORT = 22201
SUDO_UID = 1000  # the first user useradd creates in the image: sandbox

# Every capability but CAP_SYS_RESOURCE, which this kind of VM lacks (so --privileged fails here).
CAPABILITIES = [
    "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "MKNOD", "NET_RAW", "SETFCAP",
    "SETPCAP", "AUDIT_WRITE", "AUDIT_CONTROL", "SYS_NICE", "SYS_TIME", "IPC_LOCK", "IPC_OWNER",
    "LINUX_IMMUTABLE", "DAC_READ_SEARCH", "SYS_BOOT", "SYSLOG", "NET_BROADCAST", "LEASE", "WAKE_ALARM",
    "BLOCK_SUSPEND", "MAC_ADMIN", "MAC_OVERRIDE", "AUDIT_READ", "SYS_PACCT", "SYS_TTY_CONFIG",
]
INOTIFY_PER_HOST = 5  # systemd takes about five inotify instances per host


@dataclass
class SandboxHost:
    name: str
    container: str
    port: int
    gpu: bool
    state: str = "unknown"


# -- keys and secrets ---------------------------------------------------------------------
def ensure_keypair(paths: Paths) -> str:
    """An ed25519 key pair for root/sandbox logins; returns the public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    paths.dir.mkdir(parents=True, exist_ok=True)
    if not paths.key.exists():
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        fd = os.open(paths.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private)
        paths.key.with_suffix(".pub").write_bytes(public + b" provision-sandbox\n")
    return paths.key.with_suffix(".pub").read_text().strip()


def ensure_become_password(paths: Paths) -> str:
    """The sudo password of the non-root `sandbox` user (kept in a 0600 file, never printed)."""
    paths.dir.mkdir(parents=True, exist_ok=True)
    if not paths.become_password.exists():
        fd = os.open(paths.become_password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(18))
    return paths.become_password.read_text().strip()


# -- checks -------------------------------------------------------------------------------
def check_inotify(new_hosts: int, running_hosts: int, limit_file: Path = Path("/proc/sys/fs/inotify/max_user_instances")) -> None:
    """systemd hosts share the VM-wide inotify instance limit; refuse clearly instead of a silent init crash."""
    try:
        limit = int(limit_file.read_text().strip())
    except (OSError, ValueError):
        return
    needed = (new_hosts + running_hosts) * INOTIFY_PER_HOST + 20
    if needed > limit:
        raise EnvironmentProblem(
            f"{new_hosts + running_hosts} systemd hosts need about {needed} inotify instances, but "
            f"fs.inotify.max_user_instances is {limit}: raise it (`sysctl -w fs.inotify.max_user_instances=1024`) "
            "or start fewer hosts"
        )


def free_port(start: int, taken: set[int]) -> int:
    for port in range(start, start + 2000):
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise EnvironmentProblem(f"no free loopback port from {start} on")


def _create_on_a_free_port(client, paths: Paths, name: str, gpu: bool, public_key: str, taken: set[int]):
    """A host on the first free loopback port. Another fleet started at the same time (parallel test
    runs) may take the port between the probe and the container's start: then the next one is tried."""
    import docker.errors

    for _attempt in range(20):
        port = free_port(FIRST_PORT, taken)
        taken.add(port)
        forget_host_key(paths, port)
        try:
            return _create_host(client, paths, name, port, gpu, public_key)
        except docker.errors.APIError as exc:
            if "port is already allocated" not in str(exc) and "address already in use" not in str(exc):
                raise
            _remove_partial(client, paths, name)
    raise EnvironmentProblem(f"no free loopback port for {name}: each one tried was taken meanwhile")


# -- fleet --------------------------------------------------------------------------------
def list_hosts(client, fleet: str = DEFAULT_FLEET) -> list[SandboxHost]:
    hosts = []
    for c in client.containers.list(all=True, filters={"label": f"{FLEET_LABEL}={fleet}"}):
        labels = c.labels or {}
        name = labels.get(LABEL, c.name)
        if name == "host" or not name.startswith(HOST_PREFIX):
            continue
        hosts.append(SandboxHost(name, c.name, int(labels.get(PORT_LABEL, 0)), labels.get(GPU_LABEL) == GPU_SIMULATED, c.status))
    return sorted(hosts, key=lambda h: int(h.name[len(HOST_PREFIX):]))


def up(count: int, gpu_hosts: int = 0, *, paths: Paths | None = None, inventory: Path = Path("inventories/sandbox.yml"),
       mirror: str | None = None, log: Callable[[str], None] = print,
       offline_upstreams: bool = True) -> list[SandboxHost]:
    """Reconcile the fleet to exactly `count` running hosts, the last `gpu_hosts` of them simulated GPU hosts.

    With `offline_upstreams`, the fleet network also answers as download.docker.com (and hosts trust
    its CA) and has a Docker Hub mirror; see provision_sandbox.upstreams."""
    if count < 1:
        raise InputError("--hosts must be at least 1")
    if not 0 <= gpu_hosts <= count:
        raise InputError(f"--gpu-hosts must be between 0 and --hosts ({count})")
    paths = paths or Paths.default()
    client = local_docker()
    existing = {h.name: h for h in list_hosts(client, paths.fleet)}
    wanted = [host_name(i) for i in range(1, count + 1)]
    check_inotify(len([n for n in wanted if n not in existing]), len(list_hosts_all(client)))
    if not host_image.image_is_current(client):
        from provision_sandbox.apt_sources import machine_debian_mirror

        host_image.build_host_image(client, mirror or machine_debian_mirror(), log)
    public_key = ensure_keypair(paths)
    password = ensure_become_password(paths)
    ensure_network(client, paths)
    upstreams = None
    if offline_upstreams:
        from provision_sandbox import upstreams as offline

        upstreams = offline.ensure_upstreams(client, paths, log)
    for name, host in existing.items():
        if name not in wanted:
            log(f"removing {name} (not in the requested {count} hosts)")
            _remove_host(client, host, paths)
    hosts: list[SandboxHost] = []
    taken = {int((c.labels or {})[PORT_LABEL]) for c in list_hosts_all(client, stopped=True)}
    gpu_names = set(wanted[count - gpu_hosts:]) if gpu_hosts else set()
    for name in wanted:
        host = existing.get(name)
        gpu = name in gpu_names
        if host is not None and host.gpu != gpu:
            log(f"recreating {name} (GPU simulation {'on' if gpu else 'off'})")
            _remove_host(client, host, paths)
            host = None
        if host is None:
            host = _create_on_a_free_port(client, paths, name, gpu, public_key, taken)
            log(f"started {name} (ssh on 127.0.0.1:{host.port}{', simulated GPU host' if gpu else ''})")
        elif host.state != "running":
            client.containers.get(host.container).start()
        hosts.append(host)
    for host in hosts:
        _wait_ready(client, host)
        if upstreams is not None:
            offline.trust_ca(client.containers.get(host.container), upstreams)
        _set_password(client, host, password)
        if host.gpu:  # SIMULATION: fake nvidia-smi and GPU list (provision_sandbox.fake_gpu); no GPU exists
            from provision_sandbox import fake_gpu

            fake_gpu.install_host(client.containers.get(host.container), host.name)
        host.state = "running"
    write_inventory(inventory, hosts, paths, offline.inventory_vars(upstreams) if upstreams else None)
    log(f"wrote {inventory} ({len(hosts)} hosts)")
    return hosts


def down(*, paths: Paths | None = None, inventory: Path = Path("inventories/sandbox.yml"),
         log: Callable[[str], None] = print) -> int:
    """Remove every container, volume and network the sandbox created; nothing else."""
    paths = paths or Paths.default()
    client = local_docker()
    hosts = list_hosts(client, paths.fleet)
    for host in hosts:
        _remove_host(client, host, paths)
        log(f"removed {host.name}")
    mine = {"label": f"{FLEET_LABEL}={paths.fleet}"}
    for c in client.containers.list(all=True, filters=mine):
        c.remove(force=True, v=True)
    for volume in client.volumes.list(filters=mine):
        volume.remove(force=True)
    for network in client.networks.list(filters=mine):
        network.remove()
    if inventory.exists() and written_for(inventory.read_text(), paths):
        inventory.unlink()
    return len(hosts)


def status(fleet: str = DEFAULT_FLEET) -> list[SandboxHost]:
    return list_hosts(local_docker(), fleet)


def list_hosts_all(client, *, stopped: bool = False) -> list:
    """Every sandbox host container of every fleet (they share the inotify limit and the port range)."""
    return [c for c in client.containers.list(all=stopped, filters={"label": LABEL}) if (c.labels or {}).get(PORT_LABEL)]


def ensure_network(client, paths: Paths) -> None:
    if not client.networks.list(names=[paths.network], filters={"label": f"{FLEET_LABEL}={paths.fleet}"}):
        client.networks.create(paths.network, driver="bridge", labels={LABEL: "network", FLEET_LABEL: paths.fleet})


def _create_host(client, paths: Paths, name: str, port: int, gpu: bool, public_key: str) -> SandboxHost:
    container = paths.container(name)
    volume = f"{container}-docker"
    labels = {LABEL: name, FLEET_LABEL: paths.fleet, PORT_LABEL: str(port)}
    if gpu:
        labels[GPU_LABEL] = GPU_SIMULATED
    client.volumes.create(volume, labels={LABEL: name, FLEET_LABEL: paths.fleet})
    c = client.containers.create(
        host_image.IMAGE, command="/sbin/init", name=container, hostname=name, detach=True,
        labels=labels, network=paths.network, ports={"22/tcp": ("127.0.0.1", port)},
        cap_add=CAPABILITIES, security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        device_cgroup_rules=["a *:* rwm"], cgroupns="host",
        volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                 volume: {"bind": "/var/lib/docker", "mode": "rw"}},
        tmpfs={"/run": "", "/run/lock": ""}, stop_signal="SIGRTMIN+3",
        restart_policy={"Name": "unless-stopped"},  # `reboot` inside the host comes back, as a VM does
    )
    c.put_archive("/", _authorized_keys_tar(public_key))
    c.start()
    return SandboxHost(name, container, port, gpu, "starting")


def _remove_partial(client, paths: Paths, name: str) -> None:
    """The container of a host that could not start (its port was taken): removed, its volume kept."""
    import docker.errors

    try:
        client.containers.get(paths.container(name)).remove(force=True)
    except docker.errors.NotFound:
        pass


def _authorized_keys_tar(public_key: str) -> bytes:
    buffer = io.BytesIO()
    data = (public_key + "\n").encode()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, uid in (("root/.ssh/authorized_keys", 0), (f"home/{host_image.SUDO_USER}/.ssh/authorized_keys", SUDO_UID)):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o600, uid, uid, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _wait_ready(client, host: SandboxHost, timeout: float = 90) -> None:
    """Until systemd runs and sshd answers with its banner on the published loopback port."""
    deadline = time.monotonic() + timeout
    container = client.containers.get(host.container)
    state = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            raise EnvironmentProblem(f"sandbox host {host.name} exited during boot (exit {container.attrs['State']['ExitCode']})")
        code, out = container.exec_run(["systemctl", "is-system-running"])
        state = out.decode().strip()
        if state in ("running", "degraded") and _ssh_banner(host.port):
            return
        time.sleep(0.3)
    raise EnvironmentProblem(f"sandbox host {host.name} did not become ready in {timeout:g}s (systemd: {state})")


def _ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _set_password(client, host: SandboxHost, password: str) -> None:
    container = client.containers.get(host.container)
    code, out = container.exec_run(
        ["sh", "-c", f'printf "%s:%s\\n" {host_image.SUDO_USER} "$PW" | chpasswd'], environment={"PW": password}
    )
    if code != 0:
        raise EnvironmentProblem(f"could not set the sudo password on {host.name}: {out.decode().strip()}")


def _remove_host(client, host: SandboxHost, paths: Paths) -> None:
    import docker.errors

    try:
        client.containers.get(host.container).remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    for volume in client.volumes.list(filters={"label": f"{FLEET_LABEL}={paths.fleet}"}):
        if (volume.attrs.get("Labels") or {}).get(LABEL) == host.name:
            volume.remove(force=True)
    forget_host_key(paths, host.port)


def forget_host_key(paths: Paths, port: int) -> None:
    """A sandbox host on this port is gone: its recorded key must not be mistaken for a changed key."""
    from provision.executor.known_hosts import KnownHosts, default_path, key_name

    for known_hosts in {paths.known_hosts, default_path()}:  # the fleet's, and the CLI's default
        KnownHosts(known_hosts).forget(key_name("127.0.0.1", port))


INVENTORY_HEADER = "# Written by `provision sandbox up`"


def written_for(text: str, paths: Paths) -> bool:
    """Whether an inventory's text is the one `sandbox up` wrote for this fleet (its header names the
    fleet's become-password file): `sandbox down --fleet X` never removes another fleet's inventory."""
    return text.startswith(INVENTORY_HEADER) and f"# {paths.become_password}." in text.split("\nall:", 1)[0]


def write_inventory(path: Path, hosts: list[SandboxHost], paths: Paths, extra_vars: dict | None = None) -> None:
    import yaml

    doc = {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(paths.key),
                **(extra_vars or {}),
            },
            "children": {
                # ship_address: how the other hosts reach this one (the fleet network), for image relays
                "sandbox": {"hosts": {h.name: {"ansible_host": "127.0.0.1", "ansible_port": h.port,
                                               "ship_address": h.container} for h in hosts}},
            },
        }
    }
    gpu = [h for h in hosts if h.gpu]
    if gpu:
        from provision_sandbox.upstreams.gpu_image import SAMPLE_REFERENCE

        # SIMULATION: the CUDA workload of `provision verify` is the sandbox's stand-in vectorAdd image (the Hub
        # mirror cannot serve NVIDIA's nvcr.io default)
        doc["all"]["children"]["gpu"] = {"hosts": {h.name: {"gpu": True, "gpu_simulated": True,
                                                            "verify_cuda_image": SAMPLE_REFERENCE} for h in gpu}}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (f"{INVENTORY_HEADER}: the local sandbox fleet (containers on this machine,\n"
            "# sshd on 127.0.0.1). The non-root sudo user is `sandbox`; its become password is in\n"
            f"# {paths.become_password}. Regenerated on every `sandbox up`.\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)
