"""Builds the offline apt repository laid out exactly like https://download.docker.com/linux/debian.

    linux/debian/gpg                                   the ASCII-armored signing key
    linux/debian/wrong-key.gpg                         sandbox only: a valid key that signs nothing
                                                       here (for NO_PUBKEY tests)
    linux/debian/dists/bookworm/{InRelease,Release,Release.gpg}
    linux/debian/dists/bookworm/stable/binary-amd64/{Packages,Packages.gz,Release}
    linux/debian/pool/stable/amd64/*.deb

The packages are described in packages.py; the steps every signed apt repository needs are in
apt_repo.py. The text of these three modules is the build recipe: the repository is built once and
cached under `<cache>/docker-repo/<hash>/`, where the hash covers the recipe and the versions of the
Debian packages repacked; it is rebuilt only when one changes.
The signing key (GNUPGHOME `<cache>/docker-repo/gnupg/`) and the decoy key (`gnupg-decoy/`) are
kept across rebuilds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from provision.errors import EnvironmentProblem
from provision_sandbox.upstreams import apt_repo
from provision_sandbox.upstreams import packages as pk
from provision_sandbox.upstreams.apt_repo import Job, build_job, installed_size_kb, run

KEY_UID = "Sandbox Docker Release (CE deb) <docker@localhost>"
DECOY_KEY_UID = "Sandbox decoy key, signs nothing (provision sandbox) <decoy@localhost>"
WRONG_KEY_FILE = "wrong-key.gpg"
APT_ARCHIVES = Path("/var/cache/apt/archives")


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


# -- cache key ---------------------------------------------------------------------------------
def recipe_hash(recipe_text: str, debian_versions: dict[str, str]) -> str:
    """Cache key of a repository build: the recipe text and the Debian package versions it repacks."""
    digest = hashlib.sha256()
    for part in (recipe_text, *(f"{name}={debian_versions[name]}" for name in sorted(debian_versions))):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def recipe_text() -> str:
    """The build recipe is the source of this module, of packages.py and of apt_repo.py."""
    return Path(__file__).read_text() + Path(pk.__file__).read_text() + Path(apt_repo.__file__).read_text()


def debian_versions() -> dict[str, str]:
    """The versions apt on this machine would install of the packages that are repacked."""
    found = pk.candidate_versions(run(["apt-cache", "policy", *pk.DEBIAN_SOURCES], "asking apt for versions"))
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

    def announce() -> None:
        log(f"building the offline download.docker.com repository from docker.io {versions['docker.io']} "
            f"(once; cached in {repo.root})")

    if apt_repo.build_cached(base, digest, lambda work: _build(work, base, versions), announce):
        log("built the offline download.docker.com repository")
    return repo


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
    apt_repo.run_parallel(jobs)
    _sign_and_index(debian, base)


def _fetch_deb(work: Path, name: str, version: str) -> Path:
    """A Debian package's .deb: from apt's local cache when there, else `apt-get download`."""
    quoted = version.replace(":", "%3a")
    cached = sorted(APT_ARCHIVES.glob(f"{name}_{quoted}_*.deb"))
    if cached:
        return cached[0]
    folder = work / "downloads"
    folder.mkdir(exist_ok=True)
    run(["apt-get", "download", f"{name}={version}"], f"downloading {name}", cwd=folder)
    found = sorted(folder.glob(f"{name}_*.deb"))
    if not found:
        raise EnvironmentProblem(f"`apt-get download {name}` produced no .deb")
    return found[0]


def _docker_ce_jobs(trees: Path, docker_io_deb: Path, pool: Path) -> list[Job]:
    """Unpack docker.io, split the client into docker-ce-cli, and prepare one tree per
    (package, version): hard-linked payload, own DEBIAN/."""
    ce, cli = trees / "ce", trees / "cli"
    run(["dpkg-deb", "-R", str(docker_io_deb), str(ce)], "unpacking docker.io")
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
            jobs.append(build_job(copy, control, pool / name, f"building {package} {version}"))
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


def _containerd_io_job(trees: Path, containerd_deb: Path, runc_deb: Path, pool: Path) -> Job:
    """containerd (with its maintainer scripts: the service is enabled and started) plus runc."""
    tree = trees / "containerd.io"
    run(["dpkg-deb", "-R", str(containerd_deb), str(tree)], "unpacking containerd")
    run(["dpkg-deb", "-x", str(runc_deb), str(tree)], "unpacking runc")
    containerd_control = (tree / "DEBIAN" / "control").read_text()
    runc_control = run(["dpkg-deb", "-f", str(runc_deb)], "reading runc's control")
    _rename_docs(tree, "containerd", "containerd.io")
    shutil.rmtree(tree / "usr/share/doc/runc", ignore_errors=True)
    (tree / "usr/share/lintian/overrides/runc").unlink(missing_ok=True)
    control = pk.containerd_io_control(containerd_control, runc_control, installed_size_kb(tree))
    version = pk.CONTAINERD_IO_VERSION
    return build_job(tree, control, pool / pk.pool_name("containerd.io", version), f"building containerd.io {version}")


def _buildx_job(trees: Path, pool: Path) -> Job:
    tree = trees / "docker-buildx-plugin"
    _write_executable(tree / pk.CLI_PLUGIN_DIR / "docker-buildx", pk.BUILDX_SHIM)
    control = pk.buildx_plugin_control(installed_size_kb(tree))
    return build_job(tree, control, pool / pk.pool_name("docker-buildx-plugin", pk.BUILDX_VERSION),
                      "building docker-buildx-plugin")


def _compose_job(trees: Path, compose_deb: Path, pool: Path) -> Job:
    """compose v1's Python package in a private folder, and the CLI-plugin shim that runs it."""
    tree, unpacked = trees / "docker-compose-plugin", trees / "docker-compose"
    run(["dpkg-deb", "-x", str(compose_deb), str(unpacked)], "unpacking docker-compose")
    shutil.copytree(unpacked / "usr/lib/python3/dist-packages/compose", tree / pk.COMPOSE_LIB_DIR / "compose")
    _write_executable(tree / pk.CLI_PLUGIN_DIR / "docker-compose", pk.COMPOSE_SHIM)
    docs = tree / "usr/share/doc/docker-compose-plugin"
    docs.mkdir(parents=True)
    shutil.copy2(unpacked / "usr/share/doc/docker-compose/copyright", docs / "copyright")
    compose_control = run(["dpkg-deb", "-f", str(compose_deb)], "reading docker-compose's control")
    control = pk.compose_plugin_control(compose_control, installed_size_kb(tree))
    return build_job(tree, control, pool / pk.pool_name("docker-compose-plugin", pk.COMPOSE_VERSION),
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


# -- indexes and signatures ------------------------------------------------------------------
def _sign_and_index(debian: Path, base: Path) -> None:
    """Both public keys, the indexes, and the signed Release files."""
    gnupghome, decoy_home = base / "gnupg", base / "gnupg-decoy"
    try:
        fingerprint = apt_repo.ensure_signing_key(gnupghome, KEY_UID)
        (debian / "gpg").write_text(apt_repo.export_public_key(gnupghome, fingerprint))
        decoy = apt_repo.ensure_signing_key(decoy_home, DECOY_KEY_UID)
        (debian / WRONG_KEY_FILE).write_text(apt_repo.export_public_key(decoy_home, decoy))
        _write_indexes(debian)
        apt_repo.sign_release(gnupghome, fingerprint, debian / "dists" / pk.SUITE)
    finally:
        for home in (gnupghome, decoy_home):
            apt_repo.stop_gpg_agent(home)


def _write_indexes(debian: Path) -> None:
    """Packages(.gz) of every version in the pool, the component Release, the suite Release."""
    binary = debian / "dists" / pk.SUITE / pk.COMPONENT / f"binary-{pk.ARCH}"
    binary.mkdir(parents=True)
    packages = run(["dpkg-scanpackages", "--arch", pk.ARCH, "--multiversion", "pool", "/dev/null"],
                   "indexing the pool", cwd=debian)
    apt_repo.write_packages(binary, packages)
    (binary / "Release").write_text(pk.component_release())
    release = run(["apt-ftparchive", *pk.release_options(), "release", f"dists/{pk.SUITE}"], "writing Release", cwd=debian)
    (debian / "dists" / pk.SUITE / "Release").write_text(release)
