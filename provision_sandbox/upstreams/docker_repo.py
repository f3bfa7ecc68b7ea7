"""Builds the offline apt repository laid out exactly like https://download.docker.com/linux/debian.

    linux/debian/gpg                                   the ASCII-armored signing key
    linux/debian/wrong-key.gpg                         sandbox only: a valid key that signs nothing
                                                       here (for NO_PUBKEY tests)
    linux/debian/dists/bookworm/{InRelease,Release,Release.gpg}
    linux/debian/dists/bookworm/stable/binary-amd64/{Packages,Packages.gz,Release}
    linux/debian/pool/stable/amd64/*.deb

The packages are described in packages.py. The text of both modules is the build recipe: the
repository is built once and cached under `<cache>/docker-repo/<hash>/`, where the hash covers the
recipe and the versions of the Debian packages repacked; it is rebuilt only when one changes.
The signing key (GNUPGHOME `<cache>/docker-repo/gnupg/`) and the decoy key (`gnupg-decoy/`) are
kept across rebuilds.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from provision.errors import EnvironmentProblem
from provision_sandbox.upstreams import packages as pk

KEY_UID = "Sandbox Docker Release (CE deb) <docker@localhost>"
DECOY_KEY_UID = "Sandbox decoy key, signs nothing (provision sandbox) <decoy@localhost>"
WRONG_KEY_FILE = "wrong-key.gpg"
DEB_COMPRESSION = ["-Zgzip", "-z1"]  # fast to build; any dpkg can read it
APT_ARCHIVES = Path("/var/cache/apt/archives")

# Build tools and the Debian packages that ship them (scripts/install-deps.sh installs these).
TOOLS = {"dpkg-deb": "dpkg", "dpkg-scanpackages": "dpkg-dev", "apt-ftparchive": "apt-utils",
         "gpg": "gnupg", "gpgconf": "gnupg", "apt-get": "apt"}


@dataclass(frozen=True)
class DockerRepo:
    """A built repository: `root` is the web root of download.docker.com (it holds linux/debian/)."""

    root: Path
    recipe_hash: str

    @property
    def debian(self) -> Path:
        return self.root / "linux" / "debian"

    @property
    def public_key(self) -> str:
        return (self.debian / "gpg").read_text()


@dataclass(frozen=True)
class _Job:
    argv: list[str]
    what: str
    cwd: Path | None = None


# -- cache key ---------------------------------------------------------------------------------
def recipe_hash(recipe_text: str, debian_versions: dict[str, str]) -> str:
    """Cache key of a repository build: the recipe text and the Debian package versions it repacks."""
    digest = hashlib.sha256()
    for part in (recipe_text, *(f"{name}={debian_versions[name]}" for name in sorted(debian_versions))):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def recipe_text() -> str:
    """The build recipe is the source of this module and of packages.py."""
    return Path(__file__).read_text() + Path(pk.__file__).read_text()


def debian_versions() -> dict[str, str]:
    """The versions apt on this machine would install of the packages that are repacked."""
    found = pk.candidate_versions(_run(["apt-cache", "policy", *pk.DEBIAN_SOURCES], "asking apt for versions"))
    missing = [name for name in pk.DEBIAN_SOURCES if name not in found]
    if missing:
        raise EnvironmentProblem(f"apt knows no candidate for {', '.join(missing)} on this machine: run `apt-get update`")
    return found


# -- build ---------------------------------------------------------------------------------
def ensure_docker_repo(cache: Path, log: Callable[[str], None] = print) -> DockerRepo:
    """The cached repository for the current recipe and Debian versions, built if missing."""
    versions = debian_versions()
    digest = recipe_hash(recipe_text(), versions)
    base = cache / "docker-repo"
    repo = DockerRepo(base / digest, digest)
    if repo.root.is_dir():
        return repo
    base.mkdir(parents=True, exist_ok=True)
    with _locked(base / ".lock"):
        if repo.root.is_dir():  # another process built it while we waited
            return repo
        _check_tools()
        for stale in base.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        log(f"building the offline download.docker.com repository from docker.io {versions['docker.io']} "
            f"(once; cached in {repo.root})")
        work = Path(tempfile.mkdtemp(prefix=f".build-{digest}-", dir=base))
        try:
            _build(work, base, versions)
            os.replace(work / "www", repo.root)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _prune_other_builds(base, keep=digest)
    log("built the offline download.docker.com repository")
    return repo


def _prune_other_builds(base: Path, keep: str) -> None:
    """Builds of older recipes (about 150 MB each) are never used again: a mirror container still
    serving one is recreated by the next `sandbox up`, which sees the recipe hash change."""
    for entry in base.iterdir():
        is_build = len(entry.name) == len(keep) and set(entry.name) <= set("0123456789abcdef")
        if is_build and entry.name != keep and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise EnvironmentProblem(
            f"building the sandbox's offline Docker repository needs {', '.join(missing)}: "
            f"`apt-get install {' '.join(missing)}` (scripts/install-deps.sh does it)"
        )


def _build(work: Path, base: Path, versions: dict[str, str]) -> None:
    debian = work / "www" / "linux" / "debian"
    pool = debian / "pool" / pk.COMPONENT / pk.ARCH
    pool.mkdir(parents=True)
    debs = {name: _fetch_deb(work, name, version) for name, version in versions.items()}
    trees = work / "trees"
    trees.mkdir()
    jobs = (_docker_ce_jobs(trees, debs["docker.io"], pool)
            + [_containerd_io_job(trees, debs["containerd"], debs["runc"], pool),
               _buildx_job(trees, pool),
               _compose_job(trees, debs["docker-compose"], pool)])
    _run_parallel(jobs)
    _sign_and_index(debian, base)


def _fetch_deb(work: Path, name: str, version: str) -> Path:
    """A Debian package's .deb: from apt's local cache when there, else `apt-get download`."""
    quoted = version.replace(":", "%3a")
    cached = sorted(APT_ARCHIVES.glob(f"{name}_{quoted}_*.deb"))
    if cached:
        return cached[0]
    folder = work / "downloads"
    folder.mkdir(exist_ok=True)
    _run(["apt-get", "download", f"{name}={version}"], f"downloading {name}", cwd=folder)
    found = sorted(folder.glob(f"{name}_*.deb"))
    if not found:
        raise EnvironmentProblem(f"`apt-get download {name}` produced no .deb")
    return found[0]


def _build_job(tree: Path, control: str, target: Path, what: str) -> _Job:
    """Write the control file and md5sums of a package tree; the dpkg-deb run that packs it."""
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (tree / "DEBIAN" / "control").write_text(control)
    write_md5sums(tree)
    return _Job(["dpkg-deb", "--root-owner-group", *DEB_COMPRESSION, "-b", str(tree), str(target)], what)


def _docker_ce_jobs(trees: Path, docker_io_deb: Path, pool: Path) -> list[_Job]:
    """Unpack docker.io, split the client into docker-ce-cli, and prepare one tree per
    (package, version): hard-linked payload, own DEBIAN/."""
    ce, cli = trees / "ce", trees / "cli"
    _run(["dpkg-deb", "-R", str(docker_io_deb), str(ce)], "unpacking docker.io")
    _split_cli(ce, cli)
    base_control = (ce / "DEBIAN" / "control").read_text()
    ce_size, cli_size = installed_size_kb(ce), installed_size_kb(cli)
    jobs = []
    for version in pk.DOCKER_CE_VERSIONS:
        controls = {"docker-ce": (ce, pk.docker_ce_control(base_control, version, ce_size)),
                    "docker-ce-cli": (cli, pk.docker_ce_cli_control(version, cli_size))}
        for package, (tree, control) in controls.items():
            name = pk.pool_name(package, version)
            copy = trees / name.removesuffix(".deb")
            _link_tree(tree, copy)
            jobs.append(_build_job(copy, control, pool / name, f"building {package} {version}"))
    return jobs


def _split_cli(ce: Path, cli: Path) -> None:
    """/usr/bin/docker, shell completions and section-1 man pages go to docker-ce-cli."""
    moves = ["usr/bin/docker", "usr/share/bash-completion", "usr/share/fish", "usr/share/zsh", "usr/share/man/man1"]
    (cli / "DEBIAN").mkdir(parents=True)
    for rel in moves:
        if (ce / rel).exists():
            (cli / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(ce / rel, cli / rel)
    _rename_docs(ce, "docker.io", "docker-ce")
    (cli / "usr/share/doc/docker-ce-cli").mkdir(parents=True)
    shutil.copy2(ce / "usr/share/doc/docker-ce/copyright", cli / "usr/share/doc/docker-ce-cli/copyright")
    (ce / "DEBIAN" / "md5sums").unlink(missing_ok=True)


def _link_tree(tree: Path, copy: Path) -> None:
    """A copy of a package tree whose payload is hard-linked and whose DEBIAN/ is its own."""
    shutil.copytree(tree, copy, symlinks=True, copy_function=os.link,
                    ignore=lambda folder, names: ["DEBIAN"] if Path(folder) == tree else [])
    shutil.copytree(tree / "DEBIAN", copy / "DEBIAN")


def _containerd_io_job(trees: Path, containerd_deb: Path, runc_deb: Path, pool: Path) -> _Job:
    """containerd (with its maintainer scripts: the service is enabled and started) plus runc."""
    tree = trees / "containerd.io"
    _run(["dpkg-deb", "-R", str(containerd_deb), str(tree)], "unpacking containerd")
    _run(["dpkg-deb", "-x", str(runc_deb), str(tree)], "unpacking runc")
    containerd_control = (tree / "DEBIAN" / "control").read_text()
    runc_control = _run(["dpkg-deb", "-f", str(runc_deb)], "reading runc's control")
    _rename_docs(tree, "containerd", "containerd.io")
    shutil.rmtree(tree / "usr/share/doc/runc", ignore_errors=True)
    (tree / "usr/share/lintian/overrides/runc").unlink(missing_ok=True)
    control = pk.containerd_io_control(containerd_control, runc_control, installed_size_kb(tree))
    version = pk.CONTAINERD_IO_VERSION
    return _build_job(tree, control, pool / pk.pool_name("containerd.io", version), f"building containerd.io {version}")


def _buildx_job(trees: Path, pool: Path) -> _Job:
    tree = trees / "docker-buildx-plugin"
    _write_executable(tree / pk.CLI_PLUGIN_DIR / "docker-buildx", pk.BUILDX_SHIM)
    control = pk.buildx_plugin_control(installed_size_kb(tree))
    return _build_job(tree, control, pool / pk.pool_name("docker-buildx-plugin", pk.BUILDX_VERSION),
                      "building docker-buildx-plugin")


def _compose_job(trees: Path, compose_deb: Path, pool: Path) -> _Job:
    """compose v1's Python package in a private folder, and the CLI-plugin shim that runs it."""
    tree, unpacked = trees / "docker-compose-plugin", trees / "docker-compose"
    _run(["dpkg-deb", "-x", str(compose_deb), str(unpacked)], "unpacking docker-compose")
    shutil.copytree(unpacked / "usr/lib/python3/dist-packages/compose", tree / pk.COMPOSE_LIB_DIR / "compose")
    _write_executable(tree / pk.CLI_PLUGIN_DIR / "docker-compose", pk.COMPOSE_SHIM)
    docs = tree / "usr/share/doc/docker-compose-plugin"
    docs.mkdir(parents=True)
    shutil.copy2(unpacked / "usr/share/doc/docker-compose/copyright", docs / "copyright")
    compose_control = _run(["dpkg-deb", "-f", str(compose_deb)], "reading docker-compose's control")
    control = pk.compose_plugin_control(compose_control, installed_size_kb(tree))
    return _build_job(tree, control, pool / pk.pool_name("docker-compose-plugin", pk.COMPOSE_VERSION),
                      "building docker-compose-plugin")


def _rename_docs(tree: Path, old: str, new: str) -> None:
    docs = tree / "usr/share/doc"
    if (docs / old).is_dir():
        (docs / old).rename(docs / new)
    (tree / "usr/share/lintian/overrides" / old).unlink(missing_ok=True)


def _write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


def write_md5sums(tree: Path) -> None:
    """DEBIAN/md5sums over every regular file of the package tree."""
    lines = [f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.relative_to(tree)}\n"
             for path in sorted(_payload_files(tree))]
    (tree / "DEBIAN" / "md5sums").write_text("".join(lines))


def installed_size_kb(tree: Path) -> int:
    """Installed-Size as dpkg-gencontrol estimates it: KiB per file, rounded up, plus one per entry."""
    total = 0
    for path in tree.rglob("*"):
        if path.relative_to(tree).parts[0] == "DEBIAN":
            continue
        total += (path.lstat().st_size + 1023) // 1024 if path.is_file() and not path.is_symlink() else 1
    return total


def _payload_files(tree: Path) -> Iterator[Path]:
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.relative_to(tree).parts[0] != "DEBIAN":
            yield path


# -- indexes and signatures ------------------------------------------------------------------
def _sign_and_index(debian: Path, base: Path) -> None:
    """Both public keys, the indexes, and the signed Release files."""
    gnupghome, decoy_home = base / "gnupg", base / "gnupg-decoy"
    try:
        fingerprint = ensure_signing_key(gnupghome, KEY_UID)
        (debian / "gpg").write_text(_gpg(gnupghome, "--armor", "--export", fingerprint))
        decoy = ensure_signing_key(decoy_home, DECOY_KEY_UID)
        (debian / WRONG_KEY_FILE).write_text(_gpg(decoy_home, "--armor", "--export", decoy))
        _write_indexes(debian)
        _sign_release(gnupghome, fingerprint, debian / "dists" / pk.SUITE)
    finally:
        for home in (gnupghome, decoy_home):
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=_gpg_env(home), capture_output=True)


def _write_indexes(debian: Path) -> None:
    """Packages(.gz) of every version in the pool, the component Release, the suite Release."""
    binary = debian / "dists" / pk.SUITE / pk.COMPONENT / f"binary-{pk.ARCH}"
    binary.mkdir(parents=True)
    packages = _run(["dpkg-scanpackages", "--arch", pk.ARCH, "--multiversion", "pool", "/dev/null"],
                    "indexing the pool", cwd=debian)
    (binary / "Packages").write_text(packages)
    with open(binary / "Packages.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(packages.encode())
    (binary / "Release").write_text(pk.component_release())
    release = _run(["apt-ftparchive", *pk.release_options(), "release", f"dists/{pk.SUITE}"], "writing Release", cwd=debian)
    (debian / "dists" / pk.SUITE / "Release").write_text(release)


def _sign_release(gnupghome: Path, fingerprint: str, suite_dir: Path) -> None:
    release, sign = str(suite_dir / "Release"), ("--yes", "--local-user", fingerprint)
    _gpg(gnupghome, *sign, "--clearsign", "-o", str(suite_dir / "InRelease"), release)
    _gpg(gnupghome, *sign, "--armor", "--detach-sign", "-o", str(suite_dir / "Release.gpg"), release)


def ensure_signing_key(gnupghome: Path, uid: str = KEY_UID) -> str:
    """Fingerprint of the key in `gnupghome`, generated (signing only, no passphrase) on first use."""
    gnupghome.mkdir(mode=0o700, parents=True, exist_ok=True)
    fingerprint = _secret_key_fingerprint(gnupghome)
    if fingerprint is None:
        _gpg(gnupghome, "--passphrase", "", "--quick-gen-key", uid, "rsa4096", "sign", "never")
        fingerprint = _secret_key_fingerprint(gnupghome)
    if fingerprint is None:
        raise EnvironmentProblem(f"gpg generated no signing key in {gnupghome}")
    return fingerprint


def _secret_key_fingerprint(gnupghome: Path) -> str | None:
    out = _gpg(gnupghome, "--with-colons", "--list-secret-keys")
    for line in out.splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    return None


def _gpg_env(gnupghome: Path) -> dict[str, str]:
    return {**os.environ, "GNUPGHOME": str(gnupghome)}


def _gpg(gnupghome: Path, *args: str) -> str:
    return _run(["gpg", "--batch", "--quiet", *args], "gpg", env=_gpg_env(gnupghome))


# -- helpers ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time across processes (several fleets may come up at once)."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_parallel(jobs: list[_Job]) -> None:
    """Independent build steps, as many at once as there are CPUs."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [pool.submit(_run, job.argv, job.what, cwd=job.cwd) for job in jobs]
        for future in futures:
            future.result()


def _run(argv: list[str], what: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode}): {' '.join(argv[:3])} ...\n{tail}")
    return proc.stdout
