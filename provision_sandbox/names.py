"""The sandbox's names: Docker labels, container/network names and where a fleet keeps its state.

One place for what the fleet, the offline upstreams and the tests must agree on. Pure: no Docker,
no I/O (``Paths.default`` reads only the environment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BECOME_PASSWORD_FILE", "DEFAULT_FLEET", "FLEET_LABEL", "GPU_LABEL", "GPU_SIMULATED", "HOST_PREFIX", "KEY_FILE",
    "LABEL", "PORT_LABEL", "RECIPE_LABEL", "UPSTREAM_CONFIG_LABEL", "Paths", "container_name", "host_name",
    "network_name",
]

# -- Docker labels: every object the sandbox creates carries LABEL (and FLEET_LABEL); `down` removes those
LABEL = "io.provision.sandbox"  # value: the host name, or the object's role ("network", "upstream-web", ...)
FLEET_LABEL = f"{LABEL}.fleet"  # value: the fleet's name
GPU_LABEL = f"{LABEL}.gpu"  # value: GPU_SIMULATED on simulated GPU hosts
GPU_SIMULATED = "simulated"
PORT_LABEL = f"{LABEL}.ssh-port"  # value: the host's sshd port on 127.0.0.1
RECIPE_LABEL = f"{LABEL}.recipe"  # images: the hash of the recipe they were built from
UPSTREAM_CONFIG_LABEL = f"{LABEL}.upstream-config"  # upstream containers: the hash of their configuration

DEFAULT_FLEET = "default"
HOST_PREFIX = "sbx"  # hosts are sbx1, sbx2, ...

# -- files of a fleet, under <PROVISION_HOME>/sandbox/<fleet>/
KEY_FILE = "id_ed25519"
BECOME_PASSWORD_FILE = "become_password"


def host_name(index: int) -> str:
    """The inventory name of the fleet's host number ``index`` (from 1)."""
    return f"{HOST_PREFIX}{index}"


def network_name(fleet: str) -> str:
    """The fleet's Docker network."""
    return f"provision-{fleet}"


def container_name(fleet: str, name: str) -> str:
    """The container of a fleet's host or upstream ``name`` (``provision-<fleet>-<name>``)."""
    return f"provision-{fleet}-{name}"


@dataclass
class Paths:
    """Where a fleet keeps its state: under the project's .provision/ (PROVISION_HOME).

    Several fleets can live side by side (the demo's `default`, the tests' `e2e`): each has its
    own containers, network, key pair and sudo password."""

    home: Path
    fleet: str = DEFAULT_FLEET

    @classmethod
    def default(cls, fleet: str = DEFAULT_FLEET) -> "Paths":
        return cls(Path(os.environ.get("PROVISION_HOME", ".provision")).absolute(), fleet)

    @property
    def dir(self) -> Path:
        return self.home / "sandbox" / self.fleet

    @property
    def network(self) -> str:
        return network_name(self.fleet)

    def container(self, name: str) -> str:
        return container_name(self.fleet, name)

    @property
    def key(self) -> Path:
        return self.dir / KEY_FILE

    @property
    def become_password(self) -> Path:
        return self.dir / BECOME_PASSWORD_FILE

    @property
    def known_hosts(self) -> Path:
        return self.home / "known_hosts"
