"""Human output: live per-host progress and the recap table. Machine output: the JSON report.

Everything that comes from a host or the inventory (messages, command output, container logs,
names) is text, never rich markup: ``[bold]`` or ``[/]`` in a log line prints as written."""

from __future__ import annotations

import sys
import threading

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provision.report import HostResult, Report

STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red", "skipped": "cyan"}


def console_for(json_mode: bool) -> Console:
    """With --json, stdout carries exactly one JSON document: everything human goes to stderr."""
    return Console(stderr=json_mode, highlight=False, soft_wrap=False)


class LiveProgress:
    """Prints each host as it finishes, with a live count while hosts are still working."""

    def __init__(self, console: Console, command: str, total: int) -> None:
        self.console = console
        self.command = command
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._status = console.status(f"{command}: 0/{total} hosts done") if total and console.is_terminal else None

    def __enter__(self):
        if self._status:
            self._status.__enter__()
        return self

    def __exit__(self, *exc):
        if self._status:
            self._status.__exit__(*exc)

    def host_started(self, name: str) -> None:
        pass

    def host_finished(self, result: HostResult) -> None:
        with self._lock:
            self.done += 1
            status = result.status
            duration = sum(s.duration_s for s in result.steps)
            detail = f" - {result.message}" if result.message and status in ("failed", "unreachable", "skipped") else ""
            self.console.print(f"[{STYLE[status]}]{status:>11}[/] {escape(result.name)} ({duration:.1f}s){escape(detail)}")
            for step in result.steps:  # a key trusted on first use is news at any verbosity
                if step.name == "host key":
                    self.console.print(f"{'host key':>11} {result.name}: {step.message}", markup=False)
            if self._status:
                self._status.update(f"{self.command}: {self.done}/{self.total} hosts done")


def recap(console: Console, report: Report, verbose: int = 0) -> None:
    table = Table(title=f"provision {report.command}: recap", title_justify="left")
    for column in ("host", "status", "changed", "steps", "message"):
        table.add_column(column)
    for name, result in report.hosts.items():
        steps = ", ".join(f"{s.name}:{s.status}" for s in result.steps) if verbose else str(len(result.steps))
        table.add_row(Text(name), Text(result.status, style=STYLE[result.status]), str(result.changed), Text(steps),
                      Text(result.message))
    console.print(table)
    summary = report.summary()
    console.print(" ".join(f"{k}={v}" for k, v in summary.items()))


def emit_json(report: Report) -> None:
    sys.stdout.write(report.to_json() + "\n")
    sys.stdout.flush()


def render_plan(console: Console, report: Report) -> None:
    """Each host's planned (--check) or applied steps with their commands and diffs, then the notes
    (docker install/uninstall, bootstrap, nvidia install, swarm init)."""
    for name, result in report.hosts.items():
        plan = result.extra.get("plan")
        if plan is None:
            continue
        if result.status == "failed":
            console.print(f"[bold]{name}[/]: [red]stopped[/] ({escape(result.message)})")
        else:
            console.print(f"[bold]{name}[/]: {len(plan)} change(s) planned" if plan else f"[bold]{name}[/]: nothing to change")
        for item in plan:
            console.print(f"  [yellow]{item['step']}[/]: {escape(item['reason'])}")
            for command in item["commands"]:
                for line in command.splitlines():
                    console.print(f"    $ {escape(line)}")
            if item["diff"]:
                for line in item["diff"].splitlines():
                    console.print(f"    {escape(line)}")
    for name, result in report.hosts.items():
        for note in result.extra.get("notes", []):
            console.print(f"[cyan]note[/] {name}: {escape(note)}")
