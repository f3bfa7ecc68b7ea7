"""Gather facts: one round trip per host (the facts script), parsed by pure functions."""

from __future__ import annotations

import time

from provision import progress
from provision.executor.base import Executor
from provision.report import HostResult, StepResult
from provision.workflows.targets import Target


def gather(target: Target, executor: Executor) -> HostResult:
    from provision.facts.model import parse_facts
    from provision.facts.script import FACTS_SCRIPT

    progress.step("gather facts")
    start = time.monotonic()
    result = executor.run(FACTS_SCRIPT, become=target.settings.become)
    duration = time.monotonic() - start
    if not result.ok:
        return HostResult(target.name, steps=[StepResult("gather facts", "failed", result.error_line(), duration)])
    facts = parse_facts(result.stdout)
    return HostResult(target.name, steps=[StepResult("gather facts", "ok", summary(facts), duration)],
                      extra={"facts": facts})


def summary(facts: dict) -> str:
    os_ = facts.get("os") or {}
    docker = facts.get("docker")
    gpus = facts.get("gpus") or []
    parts = [f"{os_.get('id', '?')} {os_.get('version_id', '?')}", facts.get("arch") or "?",
             f"docker {docker['version']}" if docker else "no docker"]
    if gpus:
        parts.append(f"{len(gpus)} GPU(s)")
    return ", ".join(parts)
