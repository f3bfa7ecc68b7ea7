"""`provision run`: one shell command on each host, output and exit code per host."""

from __future__ import annotations

import time
from typing import Callable

from provision.executor.base import Executor
from provision.report import HostResult, StepResult
from provision.workflows.targets import Target


def run_command(command: str, *, become: bool, check: bool) -> Callable[[Target, Executor], HostResult]:
    def work(target: Target, executor: Executor) -> HostResult:
        if check:  # as Ansible's command module: arbitrary commands are not run in check mode
            return HostResult(target.name, steps=[StepResult("run", "skipped", f"check mode: would run {command!r}")])
        start = time.monotonic()
        result = executor.run(command, become=become or target.settings.become)
        duration = time.monotonic() - start
        status = "changed" if result.ok else "failed"
        message = f"rc={result.exit_code}" if result.ok else f"rc={result.exit_code}: {result.error_line()}"
        return HostResult(target.name, steps=[StepResult("run", status, message, duration)],
                          extra={"rc": result.exit_code, "stdout": result.stdout, "stderr": result.stderr})

    return work
