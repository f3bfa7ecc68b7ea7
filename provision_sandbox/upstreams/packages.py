"""What goes into the offline download.docker.com repository: package names, versions, control files,
CLI-plugin shims. Pure text builders (unit-tested); docker_repo.py does the building.

Every package is a repack of Debian bookworm's own binaries under Docker's package names, with
Docker's package relationships, so the product sees what it would see on download.docker.com:

  docker-ce              dockerd & co. from docker.io; Depends containerd.io; Conflicts docker.io
  docker-ce-cli          /usr/bin/docker from docker.io
  containerd.io          containerd + runc binaries; Provides/Conflicts/Replaces containerd, runc
                         (so, as with the real one, no Debian `containerd`/`runc` package is installed)
  docker-buildx-plugin   a CLI-plugin shim: `docker buildx build` -> `DOCKER_BUILDKIT=1 docker build`
  docker-compose-plugin  a CLI-plugin shim running Debian's compose v1 code, kept in a private folder
                         (no `docker-compose` package is installed, as with the real plugin)

docker-ce and docker-ce-cli come in two versions with the same payload, so pinning can be exercised.
"""

from __future__ import annotations

import re

SUITE = "bookworm"
COMPONENT = "stable"
ARCH = "amd64"
MAINTAINER = "Provision sandbox <sandbox@localhost>"

# Newest first: both carry the same docker.io payload, only the version differs.
DOCKER_CE_VERSIONS = ("5:20.10.24-1~debian.12~bookworm", "5:20.10.23-1~debian.12~bookworm")
CONTAINERD_IO_VERSION = "1.6.20-1"
BUILDX_VERSION = "0.10.5-1~debian.12~bookworm"
COMPOSE_VERSION = "2.0.0~v1shim-1~debian.12~bookworm"

# The Debian packages whose binaries are repacked (their versions are part of the cache key).
DEBIAN_SOURCES = ("docker.io", "containerd", "runc", "docker-compose")

CLI_PLUGIN_DIR = "usr/libexec/docker/cli-plugins"
COMPOSE_LIB_DIR = "usr/libexec/docker/compose-v1"  # compose v1's Python package, private to the plugin

BUILDX_SHIM = """#!/bin/sh
# Docker CLI plugin shim (provision sandbox): `docker buildx build ...` -> `DOCKER_BUILDKIT=1 docker build ...`
if [ "$1" = "docker-cli-plugin-metadata" ]; then
  printf '{"SchemaVersion":"0.1.0","Vendor":"provision sandbox (shim)","Version":"v0.0.0-shim","ShortDescription":"Docker Buildx (shim over docker build)"}\\n'
  exit 0
fi
shift  # the CLI passes the plugin name ("buildx") first
case "$1" in
  version) echo "github.com/docker/buildx v0.0.0-shim (delegates to docker build)";;
  build) shift; DOCKER_BUILDKIT=1 exec docker build "$@";;
  *) echo "docker-buildx shim: unsupported subcommand: $*" >&2; exit 1;;
esac
"""

COMPOSE_SHIM = f"""#!/bin/sh
# Docker CLI plugin shim (provision sandbox): `docker compose ...` runs Debian's compose v1 (1.29)
if [ "$1" = "docker-cli-plugin-metadata" ]; then
  printf '{{"SchemaVersion":"0.1.0","Vendor":"provision sandbox (shim over compose v1)","Version":"v1.29.2","ShortDescription":"Docker Compose (v1 shim)"}}\\n'
  exit 0
fi
shift  # the CLI passes the plugin name ("compose") first
PYTHONPATH=/{COMPOSE_LIB_DIR}${{PYTHONPATH:+:$PYTHONPATH}} PYTHONDONTWRITEBYTECODE=1 exec python3 -c \\
  'import sys; from compose.cli.main import main; sys.argv[0] = "docker compose"; sys.exit(main())' "$@"
"""


# -- deb822 control text ---------------------------------------------------------------------
def parse_control(text: str) -> list[tuple[str, str]]:
    """Fields of one control stanza, in order; continuation lines stay in the value."""
    fields: list[tuple[str, str]] = []
    for line in text.rstrip("\n").splitlines():
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + "\n" + line)
        elif line.strip():
            name, _, value = line.partition(":")
            fields.append((name.strip(), value.strip()))
    return fields


def format_control(fields: list[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\n" for name, value in fields)


def field(text: str, name: str) -> str:
    """One field's value ('' when absent)."""
    return dict(parse_control(text)).get(name, "")


def relation_names(item: str) -> list[str]:
    """Package names of one Depends item, alternatives included: 'a (>= 1) | b:any' -> ['a', 'b']."""
    return [re.split(r"[\s(:\[]", alt.strip(), maxsplit=1)[0] for alt in item.split("|") if alt.strip()]


def merge_depends(*depends: str, drop: frozenset[str] = frozenset()) -> str:
    """Depends fields joined, duplicates and items naming a package in `drop` left out."""
    seen: list[str] = []
    for value in depends:
        for item in (i.strip() for i in value.split(",")):
            if item and item not in seen and not set(relation_names(item)) & drop:
                seen.append(item)
    return ", ".join(seen)


def pool_name(package: str, version: str, arch: str = ARCH) -> str:
    """Debian file name of a package (the epoch is not part of it)."""
    return f"{package}_{version.split(':', 1)[-1]}_{arch}.deb"


def candidate_versions(policy_text: str) -> dict[str, str]:
    """`apt-cache policy A B ...` output -> {package: candidate version} (packages with none left out)."""
    found: dict[str, str] = {}
    package = None
    for line in policy_text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            package = line.rstrip()[:-1]
        elif package and line.strip().startswith("Candidate:"):
            candidate = line.split(":", 1)[1].strip()
            if candidate and candidate != "(none)":
                found[package] = candidate
    return found


def _description(summary: str, *body: str) -> tuple[str, str]:
    return ("Description", summary + "".join(f"\n {line}" for line in body))


# -- the packages ----------------------------------------------------------------------------
def docker_ce_control(docker_io_control: str, version: str, installed_size_kb: int) -> str:
    """docker.io's control turned into docker-ce's: renamed, re-versioned, on containerd.io."""
    dropped = {"Built-Using", "Conflicts", "Breaks", "Installed-Size", "Description", "Maintainer"}
    renamed = {"Package": "docker-ce", "Source": "docker-ce", "Version": version}
    fields: list[tuple[str, str]] = []
    for name, value in parse_control(docker_io_control):
        if name == "Depends":
            value = merge_depends(value, "containerd.io (>= 1.6.4), docker-ce-cli", drop=frozenset({"containerd", "runc"}))
        if name in renamed:
            fields.append((name, renamed[name]))
        elif name not in dropped:
            fields.append((name, value))
    return format_control(fields + [
        ("Maintainer", MAINTAINER),
        ("Conflicts", "docker.io, docker-doc"),
        ("Replaces", "docker.io"),
        ("Installed-Size", str(installed_size_kb)),
        _description("Docker: the open-source application container engine (repack of Debian docker.io)",
                     "Offline stand-in for download.docker.com's docker-ce, built from Debian's docker.io",
                     "by the provision sandbox."),
    ])


def docker_ce_cli_control(version: str, installed_size_kb: int) -> str:
    """docker-ce-cli: /usr/bin/docker and its completions/man pages, split out of docker.io."""
    return format_control([
        ("Package", "docker-ce-cli"), ("Source", "docker-ce"), ("Version", version), ("Architecture", ARCH),
        ("Maintainer", MAINTAINER), ("Installed-Size", str(installed_size_kb)), ("Depends", "libc6 (>= 2.34)"),
        ("Conflicts", "docker.io"), ("Replaces", "docker.io"), ("Section", "admin"), ("Priority", "optional"),
        _description("Docker CLI: the open-source application container engine (repack of Debian docker.io)",
                     "Offline stand-in for download.docker.com's docker-ce-cli: /usr/bin/docker from",
                     "Debian's docker.io, built by the provision sandbox."),
    ])


def containerd_io_control(containerd_control: str, runc_control: str, installed_size_kb: int) -> str:
    """containerd.io: Debian's containerd and runc in one package, related to them as the real one is."""
    depends = merge_depends(field(containerd_control, "Depends"), field(runc_control, "Depends"),
                            drop=frozenset({"containerd", "runc"}))
    return format_control([
        ("Package", "containerd.io"), ("Version", CONTAINERD_IO_VERSION), ("Architecture", ARCH),
        ("Maintainer", MAINTAINER), ("Installed-Size", str(installed_size_kb)), ("Depends", depends),
        ("Provides", "containerd, runc"), ("Conflicts", "containerd, runc"), ("Replaces", "containerd, runc"),
        ("Section", "devel"), ("Priority", "optional"), ("Homepage", "https://containerd.io"),
        _description("An open and reliable container runtime (repack of Debian containerd + runc)",
                     "Offline stand-in for download.docker.com's containerd.io, built by the provision sandbox."),
    ])


def buildx_plugin_control(installed_size_kb: int) -> str:
    return format_control([
        ("Package", "docker-buildx-plugin"), ("Version", BUILDX_VERSION), ("Architecture", ARCH),
        ("Maintainer", MAINTAINER), ("Installed-Size", str(installed_size_kb)), ("Depends", "docker-ce-cli"),
        ("Enhances", "docker-ce-cli"), ("Section", "admin"), ("Priority", "optional"),
        _description("Docker Buildx CLI plugin (sandbox shim: buildx build -> docker build with BuildKit)",
                     "Offline stand-in for download.docker.com's docker-buildx-plugin, built by the provision sandbox."),
    ])


def compose_plugin_control(compose_control: str, installed_size_kb: int) -> str:
    """docker-compose-plugin: Debian compose v1's Python dependencies, not the docker-compose package."""
    return format_control([
        ("Package", "docker-compose-plugin"), ("Version", COMPOSE_VERSION), ("Architecture", ARCH),
        ("Maintainer", MAINTAINER), ("Installed-Size", str(installed_size_kb)),
        ("Depends", merge_depends(field(compose_control, "Depends"), drop=frozenset({"docker-compose"}))),
        ("Enhances", "docker-ce-cli"), ("Section", "admin"), ("Priority", "optional"),
        _description("Docker Compose CLI plugin (sandbox shim over Debian's compose v1)",
                     "Offline stand-in for download.docker.com's docker-compose-plugin, built by the provision sandbox."),
    ])


def release_options() -> list[str]:
    """apt-ftparchive options giving the suite's Release file the fields download.docker.com's has."""
    values = {"Origin": "Docker", "Label": "Docker", "Suite": SUITE, "Codename": SUITE,
              "Architectures": ARCH, "Components": COMPONENT}
    return [arg for key, value in values.items() for arg in ("-o", f"APT::FTPArchive::Release::{key}={value}")]


def component_release() -> str:
    """dists/SUITE/COMPONENT/binary-ARCH/Release."""
    return format_control([("Archive", SUITE), ("Component", COMPONENT), ("Origin", "Docker"),
                           ("Label", "Docker"), ("Architecture", ARCH)])
