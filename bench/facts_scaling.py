"""`provision facts` at 1 host vs N hosts (issue 12: N hosts ≤ 1.5× 1 host), on an existing sandbox fleet.

Interleaved runs (1 host, N hosts, `run true` on N hosts for the login's share, repeated), whole-process wall
time and the operator process's CPU, and each host container's CPU during the run (cgroup cpuacct: sshd's
login and session, the script's forks). Medians. Targeted: it does not start or stop a fleet and measures no
peer (bench/side_by_side.py does the full table).

    python bench/facts_scaling.py --inventory /tmp/h4.yml --fleet h4 [--hosts 20] [--runs 7] [--json OUT]
        [--compare OTHER_CHECKOUT]   # the same cases with another checkout's provision, interleaved (before/after)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness as h  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", required=True, type=Path)
    parser.add_argument("--fleet", required=True)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--compare", type=Path, help="another checkout (e.g. `git archive BASE`): its cases too")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="provision-facts-bench-"))
    doc = yaml.safe_load(args.inventory.read_text())
    group = doc["all"]["children"]["sandbox"]["hosts"]
    hosts = sorted(group, key=lambda n: int("".join(c for c in n if c.isdigit()) or 0))
    fleet = h.Fleet(args.fleet, work, args.inventory, hosts, {n: group[n]["ansible_port"] for n in hosts}, Path())
    env = h.provision_env(work)
    envs = {"": env}
    if args.compare:
        envs["before:"] = dict(env, PYTHONPATH=str(args.compare.resolve()))
    inventories = {}
    for count in (1, args.hosts):
        path = work / f"inventory-{count}.yml"
        subset = json.loads(json.dumps(doc))
        subset["all"]["children"] = {"sandbox": {"hosts": {n: group[n] for n in hosts[:count]}}}
        path.write_text(yaml.safe_dump(subset, sort_keys=False))
        inventories[count] = path
    pids = fleet.pids(args.hosts)

    def argv(count: int, *command: str) -> list[str]:
        return h.provision_argv(*command, "-i", str(inventories[count]), "--known-hosts", str(work / "known_hosts"),
                                "--forks", str(max(args.hosts, 10)))

    base = {"facts-1": argv(1, "facts"), f"facts-{args.hosts}": argv(args.hosts, "facts"),
            f"run-true-{args.hosts}": argv(args.hosts, "run", "true")}
    cases = {prefix + key: (command, e) for prefix, e in envs.items() for key, command in base.items()}
    for command, e in cases.values():  # records the host keys; warms the page cache
        h.timed(command, env=e, cwd=work)
    samples: dict[str, dict[str, list[float]]] = {k: {"wall_s": [], "operator_cpu_s": [], "host_cpu_s": []}
                                                  for k in cases}
    for _ in range(args.runs):
        for key, (command, e) in cases.items():
            count = 1 if key.endswith("facts-1") else args.hosts
            ids = [cid for n, (_, cid) in pids.items() if n in hosts[:count]]
            before = {cid: h.cgroup_cpu_ns(cid) for cid in ids}
            timed = h.timed(command, env=e, cwd=work)
            after = {cid: h.cgroup_cpu_ns(cid) for cid in ids}
            deltas = [after[c] - before[c] for c in ids if before[c] is not None and after[c] is not None]
            samples[key]["wall_s"].append(timed.seconds)
            samples[key]["operator_cpu_s"].append(timed.cpu_s)
            if deltas:
                samples[key]["host_cpu_s"].append(sum(deltas) / len(deltas) / 1e9)
    result = {k: {m: round(statistics.median(v), 4) for m, v in metrics.items() if v}
              for k, metrics in samples.items()}
    for prefix in envs:
        result[prefix + "ratio"] = round(result[f"{prefix}facts-{args.hosts}"]["wall_s"]
                                         / result[f"{prefix}facts-1"]["wall_s"], 3)
    result["runs"] = args.runs
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
