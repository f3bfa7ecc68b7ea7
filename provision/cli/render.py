"""Human output: the live per-host view, the step lines and the recap table. Machine output: the JSON report.

On a terminal, one live display per run: a line per host with its current step, progress (bytes and rate,
seconds of a wait) and elapsed time; a finished host collapses to its outcome. Not a terminal (CI logs,
pipes): plain lines as things happen, no cursor control, no truncation. After the run: per host, the steps
that changed or failed and the checks' evidence (`-v`: every step), then the recap with each host's most
important line.

Everything that comes from a host or the inventory (messages, command output, container logs,
names) is text, never rich markup: ``[bold]`` or ``[/]`` in a log line prints as written."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provision.progress import Update
from provision.report import HostResult, Report

if TYPE_CHECKING:  # imported where used: only a terminal's live view needs them
    from rich.live import Live
    from rich.spinner import Spinner

# colours carry meaning only: the outcome of a host or a step
STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red", "skipped": "cyan"}
MARK = {"ok": "✓", "changed": "✓", "failed": "✗", "unreachable": "✗", "skipped": "-"}
# the checks whose ok message is the evidence the operator ran the command for, most telling first
EVIDENCE = ("gpu container", "hello-world", "gpu host nvidia-smi")
NON_TERMINAL_UPDATE_EVERY_S = 30.0  # a plain line about a long wait at most this often per host


def console_for(json_mode: bool) -> Console:
    """With --json, stdout carries exactly one JSON document: everything human goes to stderr. Rich
    honours NO_COLOR (no colour, styles such as bold stay) and TERM=dumb."""
    return Console(stderr=json_mode, highlight=False, soft_wrap=False)


# -- small formatters (pure) -------------------------------------------------------------------
def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def duration(seconds: float) -> str:
    """`4.2s`, `1m05s`, `1h02m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def describe_update(update: Update | None, rate: float | None = None) -> str:
    """A progress event as a few words: `shipping, 12.0/40.0 MiB, 3.1 MiB/s, ETA 9s`,
    `check 3 of 120: health starting, 12s/60s`, `12/40 packages, docker-ce`."""
    if update is None:
        return ""
    parts = [update.detail] if update.detail else []
    if update.unit == "B" and update.done is not None:
        amount = human_bytes(update.done)
        if update.total and update.total >= update.done:  # `30.0/120.0 MiB` (the sent bytes' HTTP framing
            whole = human_bytes(update.total)              # can pass the layers' total: then no total)
            done_n, _, done_unit = amount.partition(" ")
            amount = f"{done_n}/{whole}" if whole.endswith(" " + done_unit) else f"{amount}/{whole}"
        parts.append(amount)
        if rate:
            parts.append(f"{human_bytes(rate)}/s")
            if update.total and update.total > update.done:
                left = (update.total - update.done) / rate
                parts.append(f"ETA {left:.0f}s" if left < 59.5 else f"ETA {duration(left)}")
    elif update.done is not None and len(update.unit) > 1:  # a count of things: `12/40 packages`
        total = f"/{update.total:.0f}" if update.total is not None else ""
        parts.insert(0, f"{update.done:.0f}{total} {update.unit}")
    elif update.done is not None:
        unit = update.unit
        total = f"/{update.total:.0f}{unit}" if update.total is not None else ""
        parts.append(f"{update.done:.0f}{unit}{total}")
    return ", ".join(parts)


def headline(result: HostResult) -> str:
    """The host's most important line for the recap: the reason of a failed, unreachable or skipped host;
    else the evidence of a check (GPU container, hello-world); else its last changed step; else its last step."""
    if result.status in ("failed", "unreachable", "skipped"):
        return result.message
    by_name = {s.name: s for s in result.steps if s.status == "ok"}
    for name in EVIDENCE:
        if name in by_name and by_name[name].message:
            return f"{name}: {by_name[name].message}"
    changed = [s for s in result.steps if s.changed]
    chosen = changed[-1] if changed else (result.steps[-1] if result.steps else None)
    if chosen is None:
        return ""
    return f"{chosen.name}: {chosen.message}" if chosen.message else chosen.name


def shown_steps(result: HostResult, verbose: int):
    """The steps worth a line after the run: changed, failed and the evidence; every step with -v."""
    for step in result.steps:
        if verbose or step.status in ("changed", "failed") or (step.status == "ok" and step.name in EVIDENCE) \
                or step.name == "host key":
            yield step


# -- the live view -----------------------------------------------------------------------------
@dataclass
class HostLine:
    name: str
    started: float | None = None
    step: str = "waiting"
    update: Update | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time, bytes done) for the rate
    result: HostResult | None = None
    finished: float | None = None
    last_plain: float = 0.0

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 and b1 >= b0 else None


class LiveProgress:
    """The run's progress: a fan_out Progress (host_started/host_finished) and a provision.progress
    Reporter (step/update), called from the host threads. A live display on a terminal, plain lines
    elsewhere. `clock` is injectable for tests."""

    def __init__(self, console: Console, command: str, total: int, *, names: list[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.command = command
        self.total = total
        self.done = 0
        self.clock = clock
        self.live_mode = console.is_terminal and not console.is_dumb_terminal
        self._lock = threading.RLock()
        self.hosts: dict[str, HostLine] = {name: HostLine(name) for name in names or []}
        self._spinners: dict[str, Spinner] = {}
        self._live: Live | None = None

    def __enter__(self):
        if self.live_mode and self.total:
            from rich.live import Live

            self._live = Live(console=self.console, get_renderable=self.frame, refresh_per_second=8,
                              transient=False, redirect_stdout=False, redirect_stderr=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            live, self._live = self._live, None
            live.__exit__(*exc)

    def _host(self, name: str) -> HostLine:
        line = self.hosts.get(name)
        if line is None:
            line = self.hosts[name] = HostLine(name)
        return line

    # fan_out's Progress
    def host_started(self, name: str) -> None:
        with self._lock:
            line = self._host(name)
            line.started = self.clock()
            line.step = "connecting"

    def host_finished(self, result: HostResult) -> None:
        with self._lock:
            self.done += 1
            line = self._host(result.name)
            line.result, line.finished = result, self.clock()
            if line.started is None:
                line.started = line.finished
            if not self.live_mode:  # plain lines (a terminal shows it in the live display's frame)
                self.console.print(self.finished_text(line), soft_wrap=True)

    # provision.progress's Reporter
    def step(self, host: str, name: str) -> None:
        with self._lock:
            line = self._host(host)
            line.step, line.update, line.samples = name, None, []
            if not self.live_mode:
                self.console.print(Text(f"{host}: {name}"), soft_wrap=True)

    def update(self, host: str, update: Update) -> None:
        with self._lock:
            line = self._host(host)
            now = self.clock()
            line.update = update
            if update.unit == "B" and update.done is not None:
                line.samples = (line.samples + [(now, update.done)])[-20:]
            if not self.live_mode and now - line.last_plain >= NON_TERMINAL_UPDATE_EVERY_S:
                line.last_plain = now
                self.console.print(Text(f"{host}: {line.step}: {describe_update(update, line.rate())}"),
                                   soft_wrap=True)

    # rendering
    def elapsed(self, line: HostLine) -> float:
        if line.started is None:
            return 0.0
        return (line.finished if line.finished is not None else self.clock()) - line.started

    def finished_text(self, line: HostLine) -> Text:
        """One line for a finished host: mark, name, outcome, time, its most important line."""
        result = line.result
        assert result is not None
        status = result.status
        text = Text()
        text.append(f"{MARK[status]} ", style=STYLE[status])
        text.append(f"{result.name}  ")
        text.append(status, style=STYLE[status])
        text.append(f"  {duration(self.elapsed(line))}")
        message = headline(result)
        if message:
            text.append(f"  {message}")
        return text

    def frame(self) -> Table:
        """The live display now: a line per host (running: spinner, step, elapsed, progress; finished: its
        outcome, time and most important line). One screen line per host: the last column is cut to fit."""
        with self._lock:
            width = max((len(name) for name in self.hosts), default=4)
            grid = Table.grid(padding=(0, 1))
            grid.add_column(no_wrap=True, width=1)
            grid.add_column(no_wrap=True, min_width=width)
            grid.add_column(no_wrap=True, min_width=11)
            grid.add_column(no_wrap=True, justify="right", min_width=6)
            grid.add_column()  # cut (…) rather than wrapped: one_line

            def one_line(text: str, style: str = "") -> Text:
                return Text(text, style=style, no_wrap=True, overflow="ellipsis", end="")

            for line in self.hosts.values():
                if line.result is not None:
                    status = line.result.status
                    grid.add_row(Text(MARK[status], style=STYLE[status]), Text(line.name),
                                 Text(status, style=STYLE[status]), duration(self.elapsed(line)),
                                 one_line(headline(line.result)))
                elif line.started is None:
                    grid.add_row(" ", Text(line.name), Text("waiting", style="dim"), "", "")
                else:
                    from rich.spinner import Spinner

                    spinner = self._spinners.get(line.name) or self._spinners.setdefault(line.name, Spinner("dots"))
                    progress = describe_update(line.update, line.rate())
                    grid.add_row(spinner, Text(line.name), one_line(line.step), duration(self.elapsed(line)),
                                 one_line(progress))
            return grid


# -- after the run -----------------------------------------------------------------------------
def _trace(result: HostResult, step: str, verbose: int) -> list[Text]:
    """-v: the commands a step ran (`$ …`); -vv: their output too (`| …`). Redacted where recorded."""
    lines: list[Text] = []
    if verbose < 1:
        return lines
    for ran in result.commands:
        if ran["step"] != step:
            continue
        for command in ran["commands"]:
            for number, line in enumerate(command.splitlines()):
                lines.append(Text(("$ " if number == 0 else "  ") + line, style="dim"))
        if verbose >= 2 and ran["output"]:
            lines.extend(Text("| " + line, style="dim") for line in ran["output"].splitlines())
    return lines


def step_lines(console: Console, report: Report, verbose: int = 0) -> None:
    """Per host, the steps that changed or failed and the checks' evidence, one line each with the reason
    (-v: every step and the commands it ran; -vv: their output). On a terminal a long reason wraps under
    itself; elsewhere a line is never cut."""
    terminal = console.is_terminal
    for name, result in report.hosts.items():
        steps = list(shown_steps(result, verbose))
        if not steps:
            continue
        console.print(Text(name, style="bold"), soft_wrap=True)
        if not terminal:
            width = max(len(s.name) for s in steps)
            for step in steps:
                text = Text("  ")
                text.append(f"{step.status:<8}", style=STYLE[step.status])
                text.append(f" {step.name:<{width}}  {step.message}".rstrip())
                console.print(text, soft_wrap=True)
                for line in _trace(result, step.name, verbose):
                    console.print(Text(" " * (width + 13)) + line, soft_wrap=True)
            continue
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)  # the indent
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, max_width=max(12, console.width // 3), overflow="fold")
        grid.add_column(overflow="fold", ratio=1)
        for step in steps:
            grid.add_row("", Text(step.status, style=STYLE[step.status]), Text(step.name), Text(step.message))
            for line in _trace(result, step.name, verbose):
                grid.add_row("", "", "", line)
        console.print(grid)


def recap(console: Console, report: Report, verbose: int = 0) -> None:
    """The recap table: a row per host with its most important line; then the counts."""
    step_lines(console, report, verbose)
    table = Table(title=f"provision {report.command}: recap", title_justify="left")
    table.add_column("host", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("changed", justify="right", no_wrap=True)
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("message", overflow="fold", ratio=1)
    for name, result in report.hosts.items():
        table.add_row(Text(name), Text(result.status, style=STYLE[result.status]), str(result.changed),
                      str(len(result.steps)), Text(headline(result)))
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


# -- short forms for tables (pure) --------------------------------------------------------------
def short_os(os_: dict | None) -> str:
    """`Debian 12`, `Ubuntu 22.04` (NAME's first word + VERSION_ID); the pretty name when those are missing."""
    os_ = os_ or {}
    name = str(os_.get("pretty_name") or os_.get("id") or "").split(" ")[0]
    version = os_.get("version_id")
    if name and version:
        return f"{name[:1].upper()}{name[1:]} {version}"
    return str(os_.get("pretty_name") or "?")


def short_nvidia(nvidia: dict | None) -> str:
    """`550.54 / CUDA 12.4` (the driver's major.minor); `-` without a driver."""
    if not nvidia:
        return "-"
    driver = ".".join(str(nvidia.get("driver") or "?").split(".")[:2])
    return f"{driver} / CUDA {nvidia.get('cuda') or '?'}"


def short_kernel(kernel, arch) -> str:
    """`6.1.0-26-cloud-amd64` → `6.1.0-26-cloud` when the architecture is shown beside it."""
    text = str(kernel or "?")
    return text.removesuffix(f"-{arch}") if arch else text


def short_memory(mib) -> str:
    if not isinstance(mib, (int, float)):
        return "?"
    if mib >= 10 * 1024:
        return f"{mib / 1024:.0f} GiB"
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib} MiB"


def relative_time(iso: str | None, now: float | None = None) -> str:
    """`2024-05-01T12:00:03Z` → `3m ago` (`-` when never started; the text as given when unreadable)."""
    from datetime import datetime, timezone

    if not iso or iso == "-":
        return "-"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (now if now is not None else time.time()) - when.timestamp()
    if seconds < 0:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def short_ports(ports: str) -> str:
    """`docker ps`'s `0.0.0.0:8000->8000/tcp, [::]:8000->8000/tcp, 9000/tcp` → `8000→8000, 9000`: the
    all-interfaces address and /tcp go, a specific address stays (`127.0.0.1:8000→8000`), /udp stays."""
    shown: list[str] = []
    for part in (p.strip() for p in ports.split(",")):
        if not part:
            continue
        published, arrow, target = part.rpartition("->")
        target = target.removesuffix("/tcp")
        if arrow:
            for everywhere in ("0.0.0.0:", "[::]:", ":::"):
                if published.startswith(everywhere):
                    published = published[len(everywhere):]
            text = f"{published}→{target}"
        else:
            text = target
        if text not in shown:
            shown.append(text)
    return ", ".join(shown) or "-"


def short_image(image: str, width: int) -> str:
    """An image name in at most `width` characters, cut from the left so that the tag stays:
    `…chroma-core/chroma:0.5.5`."""
    if len(image) <= width:
        return image
    return "…" + image[-(width - 1):]
