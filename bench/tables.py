"""The pure parts of the side-by-side benchmark (bench/side_by_side.py): the order of interleaved runs,
medians and ratios, the markdown tables in issue 12's shape, and `python -X importtime` parsing.

No I/O here: tests/unit/test_bench_tables.py checks it on fixed inputs.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

PROVISION = "provision"
ANSIBLE = "ansible"
PYINFRA = "pyinfra"
FABRIC = "fabric"
COMPOSE = "compose"

PEERS = (ANSIBLE, PYINFRA, FABRIC, COMPOSE)
PEER_HEADERS = {ANSIBLE: "Ansible (tuned)", PYINFRA: "pyinfra", FABRIC: "Fabric", COMPOSE: "Docker Compose v2 over SSH"}

# The modules that make a start slow; issue 12 wants none of them on a path that does not need it.
HEAVY_MODULES = ("fabric", "paramiko", "docker", "pydantic", "rich", "yaml")


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    tools: tuple[str, ...]  # provision first, then the peers measured on it
    hosts: int


def scenarios(max_hosts: int) -> list[Scenario]:
    """The table's rows (and the provision-only ones), the host counts clipped to the fleet's size."""
    def n(count: int) -> int:
        return min(count, max_hosts)

    adhoc = (PROVISION, ANSIBLE, PYINFRA, FABRIC)
    rows = [
        Scenario("adhoc-1", f"ad-hoc `uname -r`, {n(1)} host", adhoc, n(1)),
        Scenario("adhoc-10", f"ad-hoc, {n(10)} hosts", adhoc, n(10)),
        Scenario("adhoc-20", f"ad-hoc, {n(20)} hosts", adhoc, n(20)),
        Scenario("docker-noop-10", f"Docker install no-op, {n(10)} hosts", (PROVISION, ANSIBLE, PYINFRA), n(10)),
        Scenario("deploy-noop-1", f"deploy no-op, {n(1)} host (hello.yml)", (PROVISION, COMPOSE), n(1)),
        Scenario("deploy-noop-10", f"deploy no-op, {n(10)} hosts (one compose per host, in parallel)",
                 (PROVISION, COMPOSE), n(10)),
        Scenario("facts-1", f"`facts`, {n(1)} host", (PROVISION,), n(1)),
        Scenario("facts-20", f"`facts`, {n(20)} hosts", (PROVISION,), n(20)),
        Scenario("help", "`provision --help`", (PROVISION,), 0),
    ]
    seen, unique = set(), []
    for row in rows:  # a small fleet folds 10 and 20 into the same row: keep the first
        name = (row.key.rsplit("-", 1)[0], row.hosts)
        if name not in seen:
            seen.add(name)
            unique.append(row)
    return unique


def interleave(tools: tuple[str, ...] | list[str], rounds: int) -> list[tuple[int, str]]:
    """(round, tool) in the order to run them: every tool once per round, the first tool rotating so no
    tool always runs first (right after another tool warmed the hosts' caches) or last."""
    order = []
    for r in range(rounds):
        shift = r % len(tools) if tools else 0
        for tool in list(tools[shift:]) + list(tools[:shift]):
            order.append((r, tool))
    return order


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(peer: float | None, ours: float | None) -> float | None:
    """peer ÷ provision: > 1 means provision is faster."""
    if peer is None or ours is None or ours <= 0:
        return None
    return peer / ours


def format_ratio(value: float | None) -> str:
    """As in the issue: two decimals (three significant figures from 10 on); bold when provision is slower."""
    if value is None:
        return "–"
    text = f"{value:.3g}" if value >= 10 else f"{value:.2f}"
    return f"**{text}**" if value < 1 else text


def format_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def ratio_table(rows: list[Scenario], times: dict[str, dict[str, list[float]]]) -> str:
    """The issue's table: one row per scenario that has a peer, one column per peer, peer ÷ provision."""
    lines = ["| scenario | " + " | ".join(PEER_HEADERS[p] for p in PEERS) + " |",
             "|---|" + "---|" * len(PEERS)]
    for row in rows:
        if len(row.tools) < 2:
            continue
        ours = median(times.get(row.key, {}).get(PROVISION, []))
        cells = []
        for peer in PEERS:
            if peer not in row.tools:
                cells.append("–")
            else:
                cells.append(format_ratio(ratio(median(times.get(row.key, {}).get(peer, [])), ours)))
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def absolute_table(rows: list[Scenario], times: dict[str, dict[str, list[float]]]) -> str:
    """Medians in seconds, provision and every peer, with the number of runs."""
    tools = (PROVISION, *PEERS)
    lines = ["| scenario | runs | " + " | ".join(PEER_HEADERS.get(t, t) for t in tools) + " |",
             "|---|---|" + "---|" * len(tools)]
    for row in rows:
        measured = times.get(row.key, {})
        runs = max((len(v) for v in measured.values()), default=0)
        cells = [format_seconds(median(measured.get(t, []))) if t in row.tools else "–" for t in tools]
        lines.append(f"| {row.label} | {runs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- python -X importtime -------------------------------------------------------------------------------
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


@dataclass(frozen=True)
class ImportRecord:
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(stderr: str) -> list[ImportRecord]:
    """The records of `python -X importtime` (stderr; other lines, such as the program's own output, are
    skipped). Depth: the nesting level (0 for a module imported at top level)."""
    records = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            depth = max(0, (len(match.group(3)) - 1) // 2)
            records.append(ImportRecord(match.group(4), int(match.group(1)), int(match.group(2)), depth))
    return records


def import_summary(records: list[ImportRecord], heavy=HEAVY_MODULES) -> dict:
    """Total import time (sum of the self times, seconds), the number of modules, which heavy packages
    were imported, and the slowest top-level imports (cumulative)."""
    imported = {r.module for r in records}
    top = sorted((r for r in records if r.depth == 0), key=lambda r: -r.cumulative_us)[:5]
    return {
        "total_s": sum(r.self_us for r in records) / 1e6,
        "modules": len(imported),
        "heavy": [h for h in heavy if h in imported or any(m.startswith(h + ".") for m in imported)],
        "slowest_top_level": [[r.module, r.cumulative_us / 1e6] for r in top],
    }


def import_table(summaries: dict[str, dict]) -> str:
    lines = ["| command path | import time (sum of self) | modules | heavy modules imported |", "|---|---|---|---|"]
    for path, s in summaries.items():
        heavy = ", ".join(s["heavy"]) if s["heavy"] else "none"
        lines.append(f"| `{path}` | {s['total_s']:.3f} s | {s['modules']} | {heavy} |")
    return "\n".join(lines)
