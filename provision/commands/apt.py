"""apt-get command lines: non-interactive, keep local config files, wait for the dpkg lock."""

from __future__ import annotations


from provision.commands.argv import join, quote

DEFAULT_LOCK_TIMEOUT = 600  # fresh cloud VMs hold the dpkg lock for minutes during first-boot upgrades

PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy")


def env_prefix(proxy: dict[str, str] | None = None) -> str:
    """`env DEBIAN_FRONTEND=noninteractive [http_proxy=...]` for apt-get and curl."""
    pairs = ["DEBIAN_FRONTEND=noninteractive"]
    for key in PROXY_VARS:
        if proxy and proxy.get(key):
            pairs.append(f"{key}={proxy[key]}")
    return join(["env", *pairs], "proxy setting")


def apt_get(*args: str, lock_timeout: int = DEFAULT_LOCK_TIMEOUT, proxy: dict[str, str] | None = None) -> str:
    """`apt-get` with the dpkg lock waited for (not retried blindly) and config files kept."""
    options = [
        "-o", f"DPkg::Lock::Timeout={lock_timeout}",
        "-o", "Dpkg::Options::=--force-confdef",
        "-o", "Dpkg::Options::=--force-confold",
    ]
    return env_prefix(proxy) + " " + join(["apt-get", "-q", "-y", *options, *args], "apt-get argument")


def update(lock_timeout: int = DEFAULT_LOCK_TIMEOUT, proxy: dict[str, str] | None = None) -> str:
    return apt_get("update", lock_timeout=lock_timeout, proxy=proxy)


def install(packages: list[str], lock_timeout: int = DEFAULT_LOCK_TIMEOUT, proxy: dict[str, str] | None = None,
            allow_downgrades: bool = False) -> str:
    extra = ["--allow-downgrades"] if allow_downgrades else []
    return apt_get("install", "--no-install-recommends", *extra, *packages, lock_timeout=lock_timeout, proxy=proxy)


def remove(packages: list[str], lock_timeout: int = DEFAULT_LOCK_TIMEOUT, purge: bool = False) -> str:
    return apt_get("purge" if purge else "remove", *packages, lock_timeout=lock_timeout)


def hold(packages: list[str]) -> str:
    return join(["apt-mark", "hold", *packages], "package name")


def unhold(packages: list[str], *, quiet: bool = False) -> str:
    """quiet: apt-mark's `Canceled hold on ...` lines not printed."""
    return join(["apt-mark", "unhold", *packages], "package name") + (" >/dev/null" if quiet else "")


def madison(package: str) -> str:
    return join(["apt-cache", "madison", package], "package name")


def parse_madison(text: str) -> list[str]:
    """Versions from `apt-cache madison PKG` (` docker-ce | 5:27.3.1-1~ubuntu.24.04~noble | URL ...`)."""
    versions = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and parts[1] and parts[1] not in versions:
            versions.append(parts[1])
    return versions


def resolve_version(wanted: str, available: list[str]) -> str | None:
    """`27.3.1` → the full apt version `5:27.3.1-1~debian.12~bookworm`; a full version passes through."""
    if wanted in available:
        return wanted
    for version in available:
        upstream = version.split(":", 1)[-1]
        if upstream == wanted or upstream.startswith(wanted + "-") or upstream.startswith(wanted + "~"):
            return version
    return None


def dpkg_lock_holder_script(path: str = "/var/lib/dpkg/lock-frontend") -> str:
    """Print `PID COMMAND` of the process holding dpkg's lock (read from /proc/locks), or nothing."""
    quoted = quote(path, "dpkg lock path")
    return (
        f"[ -e {quoted} ] || exit 0; inode=$(stat -c %i {quoted}); "
        "awk -v ino=\"$inode\" '{split($6, a, \":\"); if (a[3] == ino) print $5}' /proc/locks | "
        "while read -r pid; do [ -r /proc/$pid/cmdline ] && "
        "printf '%s %s\\n' \"$pid\" \"$(tr '\\0' ' ' < /proc/$pid/cmdline)\"; done | head -n 1"
    )
