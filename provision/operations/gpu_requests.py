"""Does a host have the GPUs a service asks for? A pure decision from the service's device request
(`gpus:`, `deploy.resources.reservations.devices`) and the host's GPU facts (facts/gpu_deploy), made
before anything is deployed (issue 14).

- ``count: all`` (or ``gpus: all``): the host needs at least one GPU.
- ``count: N``: the host needs at least N GPUs (Docker starts the container with N of them; with fewer the
  NVIDIA runtime fails the start with "could not select device driver" / "insufficient GPUs").
- ``device_ids``: each id must name one of the host's GPUs: an index (``0``) or a UUID (``GPU-...``, as
  ``nvidia-smi -L`` prints it). MIG device ids (``MIG-...``, ``0:1``) are not among the facts and are not
  checked (the decision says so).
- A GPU service on a host without a GPU (nvidia-smi missing or failing) is refused, with nvidia-smi's own
  error when it has one. Under Swarm (`deploy --swarm`) such a host is not refused: Swarm never places a GPU
  service there (workflows.gpu_precheck); ``swarm_candidates`` says which members a service can be placed on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from provision.facts.gpu_deploy import GpuFacts


@dataclass(frozen=True)
class RequestDecision:
    ok: bool
    message: str
    warnings: tuple[str, ...] = ()


def _is_mig(device_id: str) -> bool:
    return device_id.upper().startswith("MIG-") or ":" in device_id


def _asked(count: int, device_ids: Sequence[str]) -> str:
    if device_ids:
        return f"GPU{'s' if len(device_ids) != 1 else ''} {', '.join(device_ids)}"
    return "all GPUs" if count < 0 else f"{count} GPU{'s' if count != 1 else ''}"


def check_request(host: str, service: str, count: int, device_ids: Sequence[str], facts: GpuFacts) -> RequestDecision:
    """COUNT: -1 all, N >= 1, 0 with DEVICE_IDS (a service's GpuRequest)."""
    device_ids = [str(d).strip() for d in device_ids]
    asked = _asked(count, device_ids)
    has = facts.describe()
    if not facts.gpus:
        return RequestDecision(False, f"service {service} asks for {asked}, but host {host} has {has}: it cannot run "
                                      "a GPU service (install the driver with `provision nvidia`, or select the "
                                      "service onto GPU hosts)")
    if device_ids:
        indexes = {str(g.index) for g in facts.gpus}
        uuids = {g.uuid.lower() for g in facts.gpus if g.uuid}
        unknown = [d for d in device_ids if not _is_mig(d) and d not in indexes and d.lower() not in uuids]
        if unknown:
            return RequestDecision(False, f"service {service} asks for {asked}, but host {host} has no GPU "
                                          f"{', '.join(unknown)}; it has {has}")
        mig = [d for d in device_ids if _is_mig(d)]
        return RequestDecision(True, f"{asked} present on {host}",
                               (f"MIG device ids are not checked against the host's facts: {', '.join(mig)}",)
                               if mig else ())
    if count > len(facts.gpus):
        return RequestDecision(False, f"service {service} asks for {asked}, but host {host} has {has} (lower the "
                                      f"count, or select the service onto a host with {count} GPUs)")
    return RequestDecision(True, f"{asked} of {host}'s {len(facts.gpus)}")


# ------------------------------------------------------------------------------------- Swarm placement
_CONSTRAINT = re.compile(r"^\s*([A-Za-z0-9_.\-/]+)\s*(==|!=)\s*(.*?)\s*$")


def swarm_candidates(constraints: Sequence[str], members: Sequence[tuple[str, str | None]]) -> list[str]:
    """The swarm members (name, role) a service with these placement CONSTRAINTS can be placed on, as far as
    the inventory tells: ``node.role`` is decided from each member's role; ``node.labels.provision.gpu`` is not
    decided here (the GPU facts decide it: `provision swarm init` sets that label on exactly the hosts with
    GPUs); any other constraint (``node.hostname``, other labels, ``node.platform``, ``engine.labels``) is
    not known before connecting, so it does not remove a member (the check then covers more nodes than
    Swarm may use, never fewer)."""
    chosen = []
    for name, role in members:
        fits = True
        for text in constraints:
            match = _CONSTRAINT.match(text)
            if not match:
                continue  # Swarm itself rejects a malformed constraint at create time
            key, op, value = match.groups()
            if key == "node.role" and role in ("manager", "worker"):
                fits = fits and ((role == value.strip()) == (op == "=="))
        if fits:
            chosen.append(name)
    return chosen
