"""SIMULATION: the offline nvidia.github.io/libnvidia-container apt repository (NO GPU exists here).

Laid out like NVIDIA's real one (a flat repository, as `apt-ftparchive` writes it):

    libnvidia-container/gpgkey                                          ASCII-armored signing key
    libnvidia-container/stable/deb/nvidia-container-toolkit.list        the list file, upstream's text
    libnvidia-container/stable/deb/amd64/{Packages,Packages.gz,Release,InRelease,Release.gpg,*.deb}

It holds SIMULATED stand-ins (descriptions start with "SIMULATION:") of the four packages NVIDIA's
install guide installs together, each in two versions (NVIDIA_VERSIONS) so pinning can be tested:

  libnvidia-container1            docs only
  libnvidia-container-tools       fake nvidia-container-cli           Depends libnvidia-container1 (= v)
  nvidia-container-toolkit-base   stand-in nvidia-ctk (python3)
  nvidia-container-toolkit        fake nvidia-container-runtime-hook and nvidia-container-runtime (runc)
                                  Depends nvidia-container-toolkit-base (= v), libnvidia-container-tools (= v)

The payload is provision_sandbox/fake_gpu/. As with docker_repo.py, the source of this module, of
apt_repo.py (the signed-repository steps both share) and of those files is the recipe: the build is cached under `<cache>/nvidia-repo/<hash>/` (the web root of
nvidia.github.io) and signed with its own key (GNUPGHOME `<cache>/nvidia-repo/gnupg/`, not Docker's).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from provision_sandbox import fake_gpu
from provision_sandbox.upstreams import apt_repo
from provision_sandbox.upstreams.packages import format_control

KEY_UID = "Sandbox NVIDIA CORPORATION (SIMULATED Open Source Projects signing key) <cudatools@localhost>"
MAINTAINER = "Provision sandbox (SIMULATION of NVIDIA packages) <sandbox@localhost>"
ARCH = "amd64"
NVIDIA_VERSIONS = ("1.19.0-1", "1.17.8-1")  # newest first
PACKAGES = ("libnvidia-container1", "libnvidia-container-tools", "nvidia-container-toolkit-base", "nvidia-container-toolkit")
PROJECT = "libnvidia-container"
REPO_PATH = f"{PROJECT}/stable/deb"  # under the site root
KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
# NVIDIA's list file as served upstream (the install guide adds signed-by with sed).
LIST_TEXT = "deb https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n"
FAKE_GPU_FILES = ("nvidia-smi", "nvidia-container-runtime-hook", "nvidia-container-runtime",
                  "nvidia-container-cli", "nvidia_ctk.py", "__init__.py")


@dataclass(frozen=True)
class NvidiaRepo:
    """A built repository: `root` is the web root of nvidia.github.io (it holds libnvidia-container/)."""

    root: Path
    recipe_hash: str

    @property
    def flat(self) -> Path:
        return self.root / REPO_PATH / ARCH

    @property
    def public_key(self) -> str:
        return (self.root / PROJECT / "gpgkey").read_text()


def signed_list_text(keyring: str = KEYRING) -> str:
    """The list file as NVIDIA's install guide rewrites it (sed adds signed-by)."""
    return LIST_TEXT.replace("deb https://", f"deb [signed-by={keyring}] https://")


# -- control texts (pure) ------------------------------------------------------------------------
def _description(summary: str) -> tuple[str, str]:
    return ("Description", f"SIMULATION: {summary}\n Stand-in built by the provision sandbox; no GPU exists here and nothing"
                           "\n talks to a GPU driver. NOT NVIDIA's package.")


def control(package: str, version: str, installed_size_kb: int) -> str:
    """The control file of one simulated package, with NVIDIA's package relationships."""
    relations: dict[str, list[tuple[str, str]]] = {
        "libnvidia-container1": [("Section", "libs"),
                                 _description("NVIDIA container runtime library (simulated)")],
        "libnvidia-container-tools": [("Depends", f"libnvidia-container1 (= {version})"), ("Section", "utils"),
                                      _description("NVIDIA container runtime library, command-line tools (simulated)")],
        "nvidia-container-toolkit-base": [("Depends", "python3"), ("Section", "utils"),
                                          _description("NVIDIA Container Toolkit Base: nvidia-ctk (simulated)")],
        "nvidia-container-toolkit": [("Depends", f"nvidia-container-toolkit-base (= {version}), "
                                                 f"libnvidia-container-tools (= {version})"),
                                     ("Section", "utils"),
                                     _description("NVIDIA Container Toolkit: runtime hook and runtime (simulated)")],
    }
    source = "libnvidia-container" if package.startswith("libnvidia") else "nvidia-container-toolkit"
    return format_control([("Package", package), ("Source", source), ("Version", version), ("Architecture", ARCH),
                           ("Maintainer", MAINTAINER), ("Installed-Size", str(installed_size_kb)),
                           ("Priority", "optional"), ("Homepage", "https://github.com/NVIDIA/nvidia-container-toolkit"),
                           *relations[package]])


def payload(package: str, version: str) -> dict[str, tuple[str, int]]:
    """Files of one package: {path in the package: (text, mode)}."""
    readme = (f"SIMULATION: {package} {version} of the provision sandbox. There is no GPU here; this package\n"
              "only stands in for NVIDIA's so that installers can be tested end to end.\n")
    files = {f"usr/share/doc/{package}/README.simulation": (readme, 0o644)}
    if package == "libnvidia-container-tools":
        files["usr/bin/nvidia-container-cli"] = (fake_gpu.source("nvidia-container-cli").replace("@VERSION@", version), 0o755)
    elif package == "nvidia-container-toolkit-base":
        files["usr/bin/nvidia-ctk"] = (fake_gpu.source("nvidia_ctk.py").replace("@VERSION@", version.split("-")[0]), 0o755)
    elif package == "nvidia-container-toolkit":
        files["usr/bin/nvidia-container-runtime-hook"] = (fake_gpu.source("nvidia-container-runtime-hook"), 0o755)
        files["usr/bin/nvidia-container-runtime"] = (fake_gpu.source("nvidia-container-runtime"), 0o755)
    return files


def release_options() -> list[str]:
    values = {"Origin": "https://nvidia.github.io/libnvidia-container/stable/deb",
              "Label": "libnvidia-container (SIMULATED, provision sandbox)", "Architectures": ARCH}
    return [arg for key, value in values.items() for arg in ("-o", f"APT::FTPArchive::Release::{key}={value}")]


# -- cache key and build -----------------------------------------------------------------------
def recipe_text() -> str:
    return (Path(__file__).read_text() + Path(apt_repo.__file__).read_text()
            + "".join(fake_gpu.source(name) for name in FAKE_GPU_FILES))


def recipe_hash(text: str | None = None) -> str:
    return hashlib.sha256((text if text is not None else recipe_text()).encode()).hexdigest()[:16]


def ensure_nvidia_repo(cache: Path, log: Callable[[str], None] = print) -> NvidiaRepo:
    """The cached SIMULATED NVIDIA repository for the current recipe, built if missing."""
    digest = recipe_hash()
    base = cache / "nvidia-repo"
    repo = NvidiaRepo(base / digest, digest)

    def announce() -> None:
        log(f"building the SIMULATED nvidia.github.io repository (once; cached in {repo.root})")

    apt_repo.build_cached(base, digest, lambda work: _build(work, base), announce)
    return repo


def _build(work: Path, base: Path) -> None:
    site = work / "www"
    flat = site / REPO_PATH / ARCH
    flat.mkdir(parents=True)
    (site / REPO_PATH / "nvidia-container-toolkit.list").write_text(LIST_TEXT)
    jobs = []
    for version in NVIDIA_VERSIONS:
        for package in PACKAGES:
            tree = work / "trees" / f"{package}_{version}"
            for rel, (text, mode) in payload(package, version).items():
                path = tree / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                path.chmod(mode)
            jobs.append(apt_repo.build_job(tree, control(package, version, apt_repo.installed_size_kb(tree)),
                                           flat / f"{package}_{version}_{ARCH}.deb", f"building {package} {version}"))
    apt_repo.run_parallel(jobs)
    _sign_and_index(site, flat, base / "gnupg")


def _sign_and_index(site: Path, flat: Path, gnupghome: Path) -> None:
    try:
        fingerprint = apt_repo.ensure_signing_key(gnupghome, KEY_UID)
        (site / PROJECT / "gpgkey").write_text(apt_repo.export_public_key(gnupghome, fingerprint))
        packages = apt_repo.run(["apt-ftparchive", "packages", "."], "indexing the SIMULATED NVIDIA packages", cwd=flat)
        apt_repo.write_packages(flat, packages)
        release = apt_repo.run(["apt-ftparchive", *release_options(), "release", "."], "writing Release", cwd=flat)
        (flat / "Release").write_text(release)
        apt_repo.sign_release(gnupghome, fingerprint, flat)
    finally:
        apt_repo.stop_gpg_agent(gnupghome)
