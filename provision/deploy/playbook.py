"""Deploy playbooks (``playbooks/*.yml``): load, validate, and normalize (see docs/playbook.md).

The public API of :mod:`provision.deploy.stack` in one place. ``load_stack(files)`` reads Compose files
(docs/compose.md) or one old-format playbook; ``load_playbook(path)`` (the old format) parses the YAML
with line numbers, validates it with the models, then runs the named cross-checks. Any problem is ONE
:class:`InputError` rendered as ``FILE:LINE: PATH: problem`` (exit 4), e.g.
``ml.yml:14: services.app.ports[0]: invalid port '80:x'``.
"""

from __future__ import annotations

from provision.deploy.stack.cross_checks import ENV_NAME_RE, NAME_RE
from provision.deploy.stack.env_file import read_env_file
from provision.deploy.stack.load import load_playbook, load_stack
from provision.deploy.stack.models import (DEFAULT_HEALTH_TIMEOUT_S, MAX_REPLICAS, STACK_RE, BuildSpec, DeploySpec,
                                           GpuRequest, GpuSpec, HealthcheckSpec, Mount, NetworkSpec, PlacementSpec,
                                           Playbook, PortSpec, RegistrySpec, Service, UlimitSpec, UpdateConfig,
                                           VolumeSpec)
from provision.deploy.stack.scalars import parse_duration, parse_size

__all__ = [
    "DEFAULT_HEALTH_TIMEOUT_S", "ENV_NAME_RE", "MAX_REPLICAS", "NAME_RE", "STACK_RE",
    "BuildSpec", "DeploySpec", "GpuRequest", "GpuSpec", "HealthcheckSpec", "Mount", "NetworkSpec",
    "PlacementSpec", "Playbook", "PortSpec", "RegistrySpec", "Service", "UlimitSpec", "UpdateConfig",
    "VolumeSpec", "load_playbook", "load_stack", "parse_duration", "parse_size", "read_env_file",
]
