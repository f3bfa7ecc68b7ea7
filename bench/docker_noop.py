"""Benchmark (not a test): the Docker install no-op against `provision run 'uname -r'` on the same hosts.

  .venv/bin/python bench/docker_noop.py --inventory INV [--known-hosts KH] [--baseline OTHER_CHECKOUT] [--rounds 9]

On a fleet where Docker is already installed (e.g. `provision sandbox up --fleet NAME -n 10 --inventory-out INV`,
then `provision docker install -i INV` once), interleaved rounds (each round runs every case once, the first case
rotating) of `provision docker install` (this checkout, and with --baseline another checkout's, e.g. a
`git archive` of main) and `provision run 'uname -r'` (this checkout), all with --forks 10. Prints the medians of
whole-process wall time and CPU (user + sys of the process tree, getrusage(RUSAGE_CHILDREN)) and the load average.
Each checkout runs from its own directory (`python -m` puts the working directory first on sys.path). Target
(issue 12): the no-op ≤ 1.1× `provision run` on the same hosts.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--known-hosts", default=str(HERE / ".provision" / "known_hosts"))
    parser.add_argument("--baseline", help="another checkout of provision to compare (before)")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    def case(tree: Path, *argv: str) -> tuple[Path, list[str]]:
        return tree, [sys.executable, "-m", "provision", *argv, "-i", str(Path(args.inventory).resolve()),
                      "--known-hosts", str(Path(args.known_hosts).resolve()), "--forks", "10"]

    cases = {"docker install (this checkout)": case(HERE, "docker", "install"),
             "run 'uname -r' (this checkout)": case(HERE, "run", "uname -r")}
    if args.baseline:
        cases["docker install (baseline)"] = case(Path(args.baseline).resolve(), "docker", "install")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    names = list(cases)
    loads = []
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            tree, argv = cases[name]
            env = dict(os.environ, PYTHONPATH=str(tree), COLUMNS="200")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.monotonic()
            proc = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
            wall = time.monotonic() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode != 0 or (name.startswith("docker") and "changed=0" not in proc.stdout):
                sys.exit(f"{name} did not answer a no-op (exit {proc.returncode}):\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
            results[name].append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
        loads.append(os.getloadavg()[0])
    for name, runs in results.items():
        print(f"{name}: wall {statistics.median(w for w, _ in runs):.3f} s / CPU {statistics.median(c for _, c in runs):.3f} s"
              f" (median of {len(runs)})")
    noop, run = (statistics.median(w for w, _ in results[n]) for n in names[:2])
    print(f"no-op ÷ run: {noop / run:.2f} (target ≤ 1.1); load average during the rounds {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
    main()
