"""Benchmark (not a test): `provision deploy` wall time on a sandbox fleet.

  .venv/bin/python bench/deploy.py [--hosts 2] [--runs 3] [--keep]

Measures, for playbooks/ml-stack.yml: the first deploy (images built here and shipped over SSH),
a no-op redeploy (median of --runs; target: nothing recreated, under 5 s for 2 hosts on the 2-core
development machine), and a redeploy after one env change (one service rolled out, health-gated).
Uses its own fleet (`bench-deploy`) with Docker installed by provision; removed unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict) -> tuple[float, dict]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "provision", *args, "--json"], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"provision {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="provision-bench-deploy-"))
    inventory = home / "inv.yml"
    env = {"PROVISION_HOME": str(home), "HF_TOKEN": "bench-token"}
    common = ["-i", str(inventory), "--known-hosts", str(home / "known_hosts")]
    subprocess.run([sys.executable, "-m", "provision", "sandbox", "up", "--hosts", str(args.hosts), "--fleet",
                    "bench-deploy", "--inventory-out", str(inventory)], check=True, env={**os.environ, **env}, cwd=ROOT)
    try:
        cli("docker", "install", *common, env=env)
        playbook = home / "playbooks" / "ml-stack.yml"
        subprocess.run(["cp", "-r", str(ROOT / "playbooks"), str(home)], check=True)
        first, _ = cli("deploy", str(playbook), *common, env=env)
        noop = []
        for _ in range(args.runs):
            elapsed, doc = cli("deploy", str(playbook), *common, env=env)
            assert all(h["changed"] == 0 for h in doc["hosts"].values()), "a no-op redeploy changed something"
            noop.append(elapsed)
        doc = yaml.safe_load(playbook.read_text())
        doc["services"]["app"].setdefault("environment", {})["BENCH"] = "1"
        playbook.write_text(yaml.safe_dump(doc, sort_keys=False))
        changed, _ = cli("deploy", str(playbook), *common, env=env)
        print(f"hosts: {args.hosts}")
        print(f"first deploy (build + ship + 2 services): {first:.1f} s")
        print(f"no-op redeploy: median {statistics.median(noop):.2f} s over {args.runs} runs (0 recreated)")
        print(f"one env change (app rolled out, health-gated): {changed:.1f} s")
    finally:
        if not args.keep:
            subprocess.run([sys.executable, "-m", "provision", "sandbox", "down", "--fleet", "bench-deploy",
                            "--inventory-out", str(inventory)], env={**os.environ, **env}, cwd=ROOT)


if __name__ == "__main__":
    main()
