"""Building a signed apt repository: the parts the offline Docker and (SIMULATED) NVIDIA repositories share.

- a cached build: ``<base>/<recipe hash>/`` built once under a lock, in a temporary folder moved into
  place, older builds pruned (:func:`build_cached`);
- packages: DEBIAN/md5sums, Installed-Size, ``dpkg-deb -b`` jobs run in parallel;
- indexes: Packages and Packages.gz;
- signing: a key generated once per GNUPGHOME (signing only, no passphrase), its armored export, and
  InRelease / Release.gpg next to a Release file.

The build tools come from Debian packages (TOOLS; scripts/install-deps.sh installs them). Each failed
tool run is an :class:`EnvironmentProblem` with the tail of its output.
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

__all__ = [
    "DEB_COMPRESSION", "TOOLS", "Job", "build_cached", "build_job", "check_tools", "ensure_signing_key",
    "export_public_key", "gpg", "gpg_env", "installed_size_kb", "locked", "payload_files", "prune_other_builds",
    "run", "run_parallel", "secret_key_fingerprint", "sign_release", "stop_gpg_agent", "write_md5sums",
    "write_packages",
]

DEB_COMPRESSION = ["-Zgzip", "-z1"]  # fast to build; any dpkg can read it

# Build tools and the Debian packages that ship them (scripts/install-deps.sh installs these).
TOOLS = {"dpkg-deb": "dpkg", "dpkg-scanpackages": "dpkg-dev", "apt-ftparchive": "apt-utils",
         "gpg": "gnupg", "gpgconf": "gnupg", "apt-get": "apt"}


@dataclass(frozen=True)
class Job:
    """One tool run of a build, independent of the others (see :func:`run_parallel`)."""

    argv: list[str]
    what: str
    cwd: Path | None = None


# -- the cached build ----------------------------------------------------------------------------
def build_cached(base: Path, digest: str, build: Callable[[Path], None], announce: Callable[[], None]) -> bool:
    """``<base>/<digest>/`` built by ``build(work)`` (which fills ``work/www``) unless it exists.

    One builder at a time across processes; ``announce`` is called just before a build starts.
    Returns whether this call built it."""
    root = base / digest
    if root.is_dir():
        return False
    base.mkdir(parents=True, exist_ok=True)
    with locked(base / ".lock"):
        if root.is_dir():  # another process built it while we waited
            return False
        check_tools()
        for stale in base.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        announce()
        work = Path(tempfile.mkdtemp(prefix=f".build-{digest}-", dir=base))
        try:
            build(work)
            os.replace(work / "www", root)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        prune_other_builds(base, keep=digest)
    return True


def prune_other_builds(base: Path, keep: str) -> None:
    """Builds of older recipes (about 150 MB each) are never used again: a mirror container still
    serving one is recreated by the next `sandbox up`, which sees the recipe hash change."""
    for entry in base.iterdir():
        is_build = len(entry.name) == len(keep) and set(entry.name) <= set("0123456789abcdef")
        if is_build and entry.name != keep and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise EnvironmentProblem(
            f"building the sandbox's offline apt repositories needs {', '.join(missing)}: "
            f"`apt-get install {' '.join(missing)}` (scripts/install-deps.sh does it)"
        )


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One builder at a time across processes (several fleets may come up at once)."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- packages ------------------------------------------------------------------------------------
def build_job(tree: Path, control: str, target: Path, what: str) -> Job:
    """Write the control file and md5sums of a package tree; the dpkg-deb run that packs it."""
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (tree / "DEBIAN" / "control").write_text(control)
    write_md5sums(tree)
    return Job(["dpkg-deb", "--root-owner-group", *DEB_COMPRESSION, "-b", str(tree), str(target)], what)


def write_md5sums(tree: Path) -> None:
    """DEBIAN/md5sums over every regular file of the package tree."""
    lines = [f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.relative_to(tree)}\n"
             for path in sorted(payload_files(tree))]
    (tree / "DEBIAN" / "md5sums").write_text("".join(lines))


def installed_size_kb(tree: Path) -> int:
    """Installed-Size as dpkg-gencontrol estimates it: KiB per file, rounded up, plus one per entry."""
    total = 0
    for path in tree.rglob("*"):
        if path.relative_to(tree).parts[0] == "DEBIAN":
            continue
        total += (path.lstat().st_size + 1023) // 1024 if path.is_file() and not path.is_symlink() else 1
    return total


def payload_files(tree: Path) -> Iterator[Path]:
    """The regular files of a package tree, DEBIAN/ excluded."""
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.relative_to(tree).parts[0] != "DEBIAN":
            yield path


# -- indexes and signatures ----------------------------------------------------------------------
def write_packages(folder: Path, packages: str) -> None:
    """``Packages`` and a reproducible ``Packages.gz`` of an index text in ``folder``."""
    (folder / "Packages").write_text(packages)
    with open(folder / "Packages.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(packages.encode())


def sign_release(gnupghome: Path, fingerprint: str, folder: Path) -> None:
    """``InRelease`` (clearsigned) and ``Release.gpg`` (detached) of ``folder/Release``."""
    release, sign = str(folder / "Release"), ("--yes", "--local-user", fingerprint)
    gpg(gnupghome, *sign, "--clearsign", "-o", str(folder / "InRelease"), release)
    gpg(gnupghome, *sign, "--armor", "--detach-sign", "-o", str(folder / "Release.gpg"), release)


def ensure_signing_key(gnupghome: Path, uid: str) -> str:
    """Fingerprint of the key in `gnupghome`, generated (signing only, no passphrase) on first use."""
    gnupghome.mkdir(mode=0o700, parents=True, exist_ok=True)
    fingerprint = secret_key_fingerprint(gnupghome)
    if fingerprint is None:
        gpg(gnupghome, "--passphrase", "", "--quick-gen-key", uid, "rsa4096", "sign", "never")
        fingerprint = secret_key_fingerprint(gnupghome)
    if fingerprint is None:
        raise EnvironmentProblem(f"gpg generated no signing key in {gnupghome}")
    return fingerprint


def export_public_key(gnupghome: Path, fingerprint: str) -> str:
    """The ASCII-armored public key (what apt's signed-by keyring is made from)."""
    return gpg(gnupghome, "--armor", "--export", fingerprint)


def secret_key_fingerprint(gnupghome: Path) -> str | None:
    out = gpg(gnupghome, "--with-colons", "--list-secret-keys")
    for line in out.splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    return None


def stop_gpg_agent(gnupghome: Path) -> None:
    """gpg starts an agent per GNUPGHOME: stop it once the signing is done (errors ignored)."""
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=gpg_env(gnupghome), capture_output=True)


def gpg_env(gnupghome: Path) -> dict[str, str]:
    return {**os.environ, "GNUPGHOME": str(gnupghome)}


def gpg(gnupghome: Path, *args: str) -> str:
    return run(["gpg", "--batch", "--quiet", *args], "gpg", env=gpg_env(gnupghome))


# -- running the tools ---------------------------------------------------------------------------
def run_parallel(jobs: list[Job]) -> None:
    """Independent build steps, as many at once as there are CPUs."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [pool.submit(run, job.argv, job.what, cwd=job.cwd) for job in jobs]
        for future in futures:
            future.result()


def run(argv: list[str], what: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """A build tool's stdout; an EnvironmentProblem with the tail of its output when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode}): {' '.join(argv[:3])} ...\n{tail}")
    return proc.stdout
