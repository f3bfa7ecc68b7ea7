"""Benchmark (not a test): shipping a large image (issue 12), the common ML case of multi-GB CUDA images.

  .venv/bin/python bench/shipping.py [--image-gb 2] [--layers 10] [--ship-sizes 1,4,10] [--keep]
  (or as part of the side-by-side run: bench/side_by_side.py --shipping)

Builds, on the local engine, a synthetic image of `--layers` layers of random data (`head -c N
/dev/urandom`, so compression cannot shrink it) totalling `--image-gb`, then for each host count
deploys a one-service stack using it (`provision deploy`, the image shipped registry-less) to hosts
that do not have it, and records:
- wall time of the provision process;
- bytes leaving the operator: iptables byte counters (mangle OUTPUT) of TCP to the fleet's sshd ports
  on 127.0.0.1, i.e. everything the operator's SSH transports send, framing and headers included
  (traffic between hosts never crosses these ports); also provision's own count (`shipped_bytes` of
  --json) and the bytes the hosts received from anywhere (their containers' /proc/PID/net/dev), which
  includes traffic between hosts;
- peak memory (maxrss) and CPU (user+sys) of the provision process and the children it waited for
  (os.wait4 of that process: its local registry subprocess included), and the local dockerd's CPU
  over the same time (it compresses layers when pushing into the local registry; shared with anyone
  else using this engine, so indicative only);
- the local registry's disk use (du of <cwd>/.provision/registry after the deploy).
Every host count starts from a fresh working folder (so an empty local registry: each row pays the
push/compression again) and from hosts cleaned of the image (`provision down --stack bench-ship
--volumes`, then `docker image rm` and `docker system prune -af --volumes` on each host's engine,
checked).
Uses its own fleet (`bench-ship`) when run alone; the fleet and the image are removed on exit unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness as h  # noqa: E402

IMAGE_REPO = "provision-bench/big"
STACK = "bench-ship"


def build_image(gb: float, layers: int) -> tuple[str, int]:
    """The synthetic image (tag names its size and layer count; the build cache keeps it between runs)."""
    from provision_sandbox.base_image import IMAGE as BASE, ensure_busybox_image
    from provision_sandbox.engine import local_docker

    ensure_busybox_image(local_docker(), log=lambda m: None)
    per_layer = int(gb * 1024 ** 3 / layers)
    tag = f"{IMAGE_REPO}:{gb:g}g-{layers}"
    lines = [f"FROM {BASE}"] + [f"RUN head -c {per_layer} /dev/urandom > /data{i}" for i in range(layers)]
    lines += ["LABEL io.provision.bench=shipping", 'CMD ["sleep", "2147483647"]']
    h.log(f"building {tag}: {layers} layers of {per_layer / 1024 ** 2:.0f} MiB random data")
    start = time.perf_counter()
    import subprocess

    subprocess.run([h.DOCKER, "build", "-q", "-t", tag, "-"], input="\n".join(lines) + "\n", text=True, check=True,
                   capture_output=True, env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin"})
    size = int(h.run([h.DOCKER, "image", "inspect", "-f", "{{.Size}}", tag]).stdout.strip())
    h.log(f"image ready in {time.perf_counter() - start:.0f} s ({size / 1e9:.2f} GB)")
    return tag, size


def stack_file(folder: Path, image: str) -> Path:
    path = folder / "ship.yml"
    path.write_text(f"name: {STACK}\nx-provision:\n  hosts: all\nservices:\n  big:\n    image: {image}\n"
                    "    stop_grace_period: 1s\n")
    return path


def clean_hosts(fleet: h.Fleet, count: int, env: dict, image: str, cwd: Path) -> None:
    """The stack removed (provision down) and the image gone from the hosts' engines, checked."""
    h.run(h.provision_argv("down", "--stack", STACK, "--volumes", "-i", str(fleet.subset(count)), "--known-hosts",
                           str(fleet.known_hosts), "--forks", "20"), env=env, cwd=cwd, timeout=600)
    for name in fleet.hosts[:count]:
        container = fleet.container(name)
        h.run([h.DOCKER, "exec", container, "docker", "image", "rm", "-f", image], check=False, timeout=600)
        h.run([h.DOCKER, "exec", container, "docker", "system", "prune", "-af", "--volumes"], check=False, timeout=600)
        left = h.run([h.DOCKER, "exec", container, "docker", "images", "-q", image], timeout=60).stdout.strip()
        if left:
            raise h.Failed(f"{name} still has {image} after the clean-up")


def ship(fleet: h.Fleet, work: Path, count: int, image: str) -> dict:
    env = h.provision_env(fleet.home)
    cwd = work / f"ship-{count}"
    if cwd.exists():
        shutil.rmtree(cwd)
    cwd.mkdir(parents=True)
    stack = stack_file(cwd, image)
    clean_hosts(fleet, count, env, image, cwd)
    pids = fleet.pids(count)
    with h.OperatorBytes(fleet.name.replace("-", "")[:12], list(fleet.ports.values())) as counter:
        rx_before = {n: h.net_rx_bytes(pid) for n, (pid, _) in pids.items()}
        sent_before = counter.read()
        dockerd_before = h.dockerd_cpu_s()
        hosts_cpu_before = {n: h.cgroup_cpu_ns(cid) for n, (_, cid) in pids.items()}
        h.log(f"shipping to {count} host(s)")
        run = h.timed(h.provision_argv("deploy", str(stack), "-i", str(fleet.subset(count)), "--known-hosts",
                                       str(fleet.known_hosts), "--forks", "20", "--json"),
                      env=env, cwd=cwd, timeout=3600)
        sent_after = counter.read()
        dockerd_after = h.dockerd_cpu_s()
        hosts_cpu_after = {n: h.cgroup_cpu_ns(cid) for n, (_, cid) in pids.items()}
        rx_after = {n: h.net_rx_bytes(pid) for n, (pid, _) in pids.items()}
    doc = json.loads(run.stdout)
    hosts_cpu = None
    if all(v is not None for v in (*hosts_cpu_before.values(), *hosts_cpu_after.values())):
        hosts_cpu = sum(hosts_cpu_after[n] - hosts_cpu_before[n] for n in pids) / 1e9
    dockerd_cpu = None if dockerd_before is None else dockerd_after - dockerd_before
    # every process here shares this machine's cores: the CPU all of them spent, spread over every core,
    # is a lower bound for the wall time on this machine, whatever the tool does
    cpu_floor = None if hosts_cpu is None else (hosts_cpu + run.cpu_s + (dockerd_cpu or 0.0)) / (os.cpu_count() or 1)
    reported = sum(sum((r.get("shipped_bytes") or {}).values()) for r in (doc.get("hosts") or {}).values()
                   if isinstance(r, dict))
    result = {
        "hosts": count,
        "wall_s": round(run.seconds, 2),
        "operator_sent_bytes": None if sent_before is None else sent_after - sent_before,
        "provision_reported_shipped_bytes": reported,
        "hosts_received_bytes": sum(rx_after[n] - rx_before[n] for n in pids
                                    if rx_before[n] is not None and rx_after[n] is not None),
        "provision_maxrss_mib": round(run.maxrss_kib / 1024, 1),
        "provision_cpu_s": round(run.cpu_s, 2),
        "dockerd_cpu_s": None if dockerd_cpu is None else round(dockerd_cpu, 2),
        "hosts_cpu_s": None if hosts_cpu is None else round(hosts_cpu, 2),
        "cpu_floor_s": None if cpu_floor is None else round(cpu_floor, 2),
        "local_registry_bytes": h.du_bytes(cwd / ".provision" / "registry"),
    }
    h.log(f"shipped to {count}: {json.dumps(result)}")
    clean_hosts(fleet, count, env, image, cwd)
    shutil.rmtree(cwd, ignore_errors=True)
    return result


def run_sizes(fleet: h.Fleet, work: Path, sizes: list[int], gb: float, layers: int, keep_image: bool = False) -> dict:
    """Docker on the hosts needed (a no-op where it is there), the image built, then each size."""
    env = h.provision_env(fleet.home)
    h.run(h.provision_argv("docker", "install", "-i", str(fleet.subset(max(sizes))), "--known-hosts",
                           str(fleet.known_hosts), "--forks", "20"), env=env, cwd=work, timeout=1800)
    image, size = build_image(gb, layers)
    try:
        return {"image": image, "image_bytes": size, "layers": layers, "rows": [ship(fleet, work, n, image) for n in sizes]}
    finally:
        if not keep_image:  # GBs of random data: not left on the local engine
            h.run([h.DOCKER, "image", "rm", "-f", image], check=False)


def _mb(value) -> str:
    return "–" if value is None else f"{value / 1e6:,.0f} MB"


def _seconds(value) -> str:
    return "–" if value is None else f"{value:.1f} s"


def render(shipping: dict) -> str:
    rows = shipping["rows"]
    lines = [f"Large-image shipping: `{shipping['image']}`, {shipping['image_bytes'] / 1e9:.2f} GB in "
             f"{shipping['layers']} random-data layers, each row from an empty local registry and clean hosts:", "",
             "| hosts | wall | bytes leaving the operator (iptables) | provision's own count | received by the hosts "
             "(any source) | provision peak RSS | provision CPU | local dockerd CPU | hosts' CPU (sum) | CPU floor "
             "on this machine | local registry disk |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        dockerd = "–" if r["dockerd_cpu_s"] is None else f"{r['dockerd_cpu_s']:.1f} s"
        lines.append(f"| {r['hosts']} | {r['wall_s']:.1f} s | {_mb(r['operator_sent_bytes'])} | "
                     f"{_mb(r['provision_reported_shipped_bytes'])} | {_mb(r['hosts_received_bytes'])} | "
                     f"{r['provision_maxrss_mib']:.0f} MiB | {r['provision_cpu_s']:.1f} s | "
                     f"{dockerd} | {_seconds(r.get('hosts_cpu_s'))} | {_seconds(r.get('cpu_floor_s'))} | "
                     f"{_mb(r['local_registry_bytes'])} |")
    first, last = rows[0], rows[-1]
    if first["operator_sent_bytes"] and last["operator_sent_bytes"]:
        lines.append(f"\n{last['hosts']} hosts ÷ {first['hosts']} host: bytes leaving the operator "
                     f"{last['operator_sent_bytes'] / first['operator_sent_bytes']:.2f}× (target ≤ 1.1), "
                     f"wall time {last['wall_s'] / first['wall_s']:.2f}× (target ≤ 2).")
    if first.get("cpu_floor_s") and last.get("cpu_floor_s"):
        lines.append(f"CPU floor (all CPU spent during the row — hosts, provision, local dockerd — over this machine's "
                     f"{os.cpu_count()} cores): {last['hosts']} hosts ÷ {first['hosts']} host "
                     f"{last['cpu_floor_s'] / first['cpu_floor_s']:.2f}×. The hosts share these cores (and one disk), so "
                     "their `docker load`s cannot overlap here as they would on separate machines.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-gb", type=float, default=2.0)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--ship-sizes", default="1,4,10")
    parser.add_argument("--fleet", default="bench-ship")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.ship_sizes.split(",") if x]
    work = Path(tempfile.mkdtemp(prefix="provision-bench-ship-"))
    with h.Cleanup() as cleanup:
        if not args.keep:
            cleanup.callback(shutil.rmtree, work, True)
            cleanup.callback(h.fleet_down, args.fleet, work)
        fleet = h.fleet_up(args.fleet, max(sizes), work)
        h.run(h.provision_argv("run", "true", "-i", str(fleet.inventory), "--known-hosts", str(fleet.known_hosts),
                               "--forks", "20"), env=h.provision_env(fleet.home), cwd=work)
        result = run_sizes(fleet, work, sizes, args.image_gb, args.layers, args.keep)
    print(json.dumps(result, indent=1) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
