"""Vagrant's docker-provider machines on the sandbox's offline upstreams (`provision sandbox attach`).

The Vagrantfile's docker provider runs `provision sandbox attach <container>` after each machine is
up (a Vagrant trigger). That makes the machine what a sandbox host is, minus the fleet bookkeeping:

* the fleet (`vagrant` unless `--fleet`) network and its offline upstreams run (download.docker.com,
  the SIMULATED nvidia.github.io and the Docker Hub mirror; see provision_sandbox.upstreams), and the
  machine is connected to that network, so the real upstream names resolve there;
* the machine trusts the sandbox CA, as a cloud image with a corporate CA would;
* the key recorded for the machine's loopback SSH port is forgotten (a new machine on a reused port
  is not a changed key);
* `inventories/group_vars/vagrant/sandbox-upstreams.yml` tells the product's daemon.json to use the
  mirror, as `provision sandbox up` writes into the inventory it generates.

Nothing here is known to the product: `provision bootstrap -i vagrant` reads the machines through
`vagrant ssh-config` (provision.config.vagrant_inventory) and the vars as any group_vars file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable

import yaml

from provision.errors import InputError
from provision_sandbox import fleet
from provision_sandbox import upstreams as offline
from provision_sandbox.engine import local_docker
from provision_sandbox.names import Paths

DEFAULT_FLEET = "vagrant"
VARS_FILE = Path("inventories/group_vars/vagrant/sandbox-upstreams.yml")
VARS_HEADER = ("# Written by `provision sandbox attach` (the Vagrantfile's docker provider runs it after `vagrant up`):\n"
               "# the sandbox's offline upstreams for the docker-provider machines. Not for real machines.\n")


def attach(container_ref: str, *, fleet_name: str = DEFAULT_FLEET, vars_file: Path = VARS_FILE,
           log: Callable[[str], None] = print) -> None:
    import docker.errors

    client = local_docker()
    try:
        container = client.containers.get(container_ref)
    except docker.errors.NotFound:
        raise InputError(f"sandbox attach: no container {container_ref!r}") from None
    paths = Paths.default(fleet_name)
    paths.dir.mkdir(parents=True, exist_ok=True)
    # Vagrant brings machines up in parallel: one attach at a time builds/starts the fleet's upstreams.
    with open(paths.dir / "attach.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fleet.ensure_network(client, paths)
        upstreams = offline.ensure_upstreams(client, paths, log)
    networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if paths.network not in networks:
        client.networks.get(paths.network).connect(container)
        log(f"connected {container.name} to {paths.network}")
    offline.trust_ca(container, upstreams)
    for port in _loopback_ssh_ports(container):
        fleet.forget_host_key(paths, port)
    _write_vars(vars_file, offline.inventory_vars(upstreams))
    log(f"{container.name}: on the offline upstreams of fleet {fleet_name}; vars in {vars_file}")


def _loopback_ssh_ports(container) -> list[int]:
    container.reload()
    bindings = ((container.attrs.get("NetworkSettings") or {}).get("Ports") or {}).get("22/tcp") or []
    return [int(b["HostPort"]) for b in bindings if b.get("HostIp") == "127.0.0.1" and b.get("HostPort")]


def _write_vars(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(VARS_HEADER + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)
