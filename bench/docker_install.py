"""Benchmark (not a test): Docker install wall time and SSH round trips on a sandbox fleet.

  .venv/bin/python bench/docker_install.py [--fresh 1,5] [--noop 1,10]

Measures: a fresh install on 1 and 5 hosts in parallel; a no-op re-run on 1 and 10 hosts, with the
SSH round trips per host counted after connecting. Targets (issue 3): a no-op re-run needs at most
2 round trips per host, and takes under 1 s for 10 hosts on the 2-core development machine.
Uses its own fleet (`bench`), removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path

from provision.executor.known_hosts import KnownHosts
from provision.workflows.docker import install_work
from provision.workflows.fanout import RunOptions, fan_out, make_executor
from provision.workflows.targets import load_targets
from provision_sandbox import fleet as sandbox
from provision_sandbox.names import Paths, host_name


def run_install(inventory: Path, limit: str, known_hosts: Path) -> tuple[float, list[int], dict]:
    executors = []

    def factory(target, options):
        executor = make_executor(target, options)
        executors.append(executor)
        return executor

    targets = load_targets(inventory, limit)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    start = time.monotonic()
    report = fan_out("docker install", targets, install_work(False, stamp), RunOptions(known_hosts=KnownHosts(known_hosts)),
                     executor_factory=factory)
    elapsed = time.monotonic() - start
    return elapsed, [e.round_trips for e in executors], report.summary()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fresh", default="1,5")
    parser.add_argument("--noop", default="1,10")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    fresh = [int(x) for x in args.fresh.split(",") if x]
    noop = [int(x) for x in args.noop.split(",") if x]
    hosts = max(fresh + noop)
    home = Path(tempfile.mkdtemp(prefix="provision-bench-"))
    os.environ["PROVISION_HOME"] = str(home)
    paths = Paths.default("bench")
    inventory = home / "bench.yml"
    known = home / "known_hosts"
    sandbox.up(hosts, paths=paths, inventory=inventory, log=lambda m: None)
    names = [host_name(i) for i in range(1, hosts + 1)]
    try:
        done = 0
        for n in fresh:  # fresh installs on hosts not installed yet
            group = names[done:done + n]
            elapsed, trips, summary = run_install(inventory, ":".join(group), known)
            print(f"fresh install, {n} host(s) in parallel: {elapsed:6.1f} s  ({summary})")
            done += n
        _, _, summary = run_install(inventory, "all", known)  # the rest, so every host has Docker
        for n in noop:
            runs = [run_install(inventory, ":".join(names[:n]), known) for _ in range(3)]
            times = [r[0] for r in runs]
            trips = max(max(r[1]) for r in runs)
            print(f"no-op re-run, {n:2d} host(s): median {statistics.median(times):5.2f} s, "
                  f"max {trips} round trip(s) per host after connecting  ({runs[-1][2]})")
    finally:
        if not args.keep:
            sandbox.down(paths=paths, inventory=inventory, log=lambda m: None)


if __name__ == "__main__":
    main()
