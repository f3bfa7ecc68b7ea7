"""Benchmark (not a test): the Docker install no-op against `provision run 'uname -r'` on the same hosts.

  .venv/bin/python bench/docker_noop.py --inventory INV [--known-hosts KH] [--baseline OTHER_CHECKOUT] [--rounds 9]

On a fleet where Docker is already installed (e.g. `provision sandbox up --fleet NAME -n 10 --inventory-out INV`,
then `provision docker install -i INV` once), interleaved rounds (each round runs every case once, the first case
rotating) of `provision docker install` and `provision run 'uname -r'` (this checkout, and with --baseline
another checkout's, e.g. a `git archive` of main), all with --forks 10. Prints the medians of
whole-process wall time and CPU (user + sys of the process tree, getrusage(RUSAGE_CHILDREN)) and the load average.
With --fleet NAME (a `provision sandbox` fleet: its hosts are containers on this machine), also the hosts' CPU
per run: the sum over the fleet's containers of their cgroup's CPU time (cgroup v1 cpuacct.usage or v2
cpu.stat), which counts sshd, the login shell, the wrapper, the probe and what systemd does for it; steadier
than wall time when the machine is shared. Each checkout runs from its own directory (`python -m` puts the working directory first on sys.path). Target
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
    parser.add_argument("--fleet", help="sandbox fleet name: also measure the hosts' CPU (container cgroups)")
    args = parser.parse_args()
    host_cpu = _fleet_cpu_reader(args.fleet) if args.fleet else (lambda: 0.0)

    def case(tree: Path, *argv: str) -> tuple[Path, list[str]]:
        return tree, [sys.executable, "-m", "provision", *argv, "-i", str(Path(args.inventory).resolve()),
                      "--known-hosts", str(Path(args.known_hosts).resolve()), "--forks", "10"]

    cases = {"docker install (this checkout)": case(HERE, "docker", "install"),
             "run 'uname -r' (this checkout)": case(HERE, "run", "uname -r")}
    if args.baseline:  # its own `run` too: the per-command wrapper (executor.base) is part of both
        cases["docker install (baseline)"] = case(Path(args.baseline).resolve(), "docker", "install")
        cases["run 'uname -r' (baseline)"] = case(Path(args.baseline).resolve(), "run", "uname -r")
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    names = list(cases)
    loads = []
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            tree, argv = cases[name]
            env = dict(os.environ, PYTHONPATH=str(tree), COLUMNS="200")
            before, host_before = resource.getrusage(resource.RUSAGE_CHILDREN), host_cpu()
            start = time.monotonic()
            proc = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
            wall = time.monotonic() - start
            after, host_after = resource.getrusage(resource.RUSAGE_CHILDREN), host_cpu()
            if proc.returncode != 0 or (name.startswith("docker") and "changed=0" not in proc.stdout):
                sys.exit(f"{name} did not answer a no-op (exit {proc.returncode}):\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
            results[name].append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
                                  host_after - host_before))
        loads.append(os.getloadavg()[0])
    for name, runs in results.items():
        hosts = f" / hosts' CPU {statistics.median(h for _, _, h in runs):.3f} s" if args.fleet else ""
        print(f"{name}: wall {statistics.median(r[0] for r in runs):.3f} s / CPU {statistics.median(r[1] for r in runs):.3f} s"
              f"{hosts} (median of {len(runs)})")
    noop, run = (statistics.median(r[0] for r in results[n]) for n in names[:2])
    print(f"no-op ÷ run: {noop / run:.2f} (target ≤ 1.1); load average during the rounds {min(loads):.1f}-{max(loads):.1f}")
    if args.baseline:
        noop, run = (statistics.median(r[0] for r in results[n]) for n in names[2:4])
        print(f"baseline no-op ÷ baseline run: {noop / run:.2f}")


def _fleet_cpu_reader(fleet: str):
    """A function returning the CPU seconds the fleet's host containers (provision-FLEET-sbx*) have used so far."""
    ids = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"name=^provision-{fleet}-sbx"],
                         capture_output=True, text=True, check=True).stdout.split()
    if not ids:
        sys.exit(f"no running hosts of sandbox fleet {fleet!r}")
    paths = []
    for cid in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
        paths.append(v1 if v1.exists() else v2)

    def read() -> float:
        total = 0.0
        for path in paths:
            text = path.read_text()
            if path.name == "cpuacct.usage":
                total += int(text) / 1e9
            else:
                total += int(dict(l.split() for l in text.splitlines())["usage_usec"]) / 1e6
        return total
    return read


if __name__ == "__main__":
    main()
