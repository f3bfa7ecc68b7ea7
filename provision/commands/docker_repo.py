"""Docker's apt repository, the way docs.docker.com installs it (keyring + deb822 sources with Signed-By)."""

from __future__ import annotations

import shlex

from provision.commands import files
from provision.commands.argv import combine, join, one_line, quote, url as checked_url

KEYRING_DIR = "/etc/apt/keyrings"
KEYRING = "/etc/apt/keyrings/docker.asc"
SOURCES = "/etc/apt/sources.list.d/docker.sources"
DEFAULT_BASE = "https://download.docker.com/linux"

# Older definitions of the same repo: apt fails with "Conflicting values set for option Signed-By"
# when one of them is left next to docker.sources.
STALE_FILES = (
    "/etc/apt/sources.list.d/docker.list",
    "/etc/apt/trusted.gpg.d/docker.asc",
    "/etc/apt/trusted.gpg.d/docker.gpg",
    "/usr/share/keyrings/docker-archive-keyring.gpg",
)
STALE_GLOBS = ("/etc/apt/sources.list.d/download_docker_com_linux_*.list",)

PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"]
PINNED = ("docker-ce", "docker-ce-cli")

# Installed from other sources, they conflict with docker-ce (docs.docker.com "Uninstall old versions").
CONFLICTING = ["docker.io", "docker-doc", "docker-compose", "docker-compose-v2", "podman-docker", "containerd", "runc"]

SUPPORTED = {
    "ubuntu": {"20.04": "focal", "22.04": "jammy", "24.04": "noble"},
    "debian": {"11": "bullseye", "12": "bookworm", "13": "trixie"},
}
ARCHES = ("amd64", "arm64")


def repo_url(distro: str, override: str | None = None) -> str:
    return override.rstrip("/") if override else f"{DEFAULT_BASE}/{distro}"


def gpg_url(distro: str, override: str | None = None, repo_override: str | None = None) -> str:
    if override:
        return override
    return f"{repo_url(distro, repo_override)}/gpg"


def sources_content(distro: str, suite: str, arch: str, url: str | None = None) -> str:
    """The deb822 docker.sources file of docs.docker.com, with Architectures.

    Every value must be one line: a newline in a URL would add a field of its own (`Trusted: yes`)."""
    for value, what in ((distro, "distribution"), (suite, "suite"), (arch, "architecture"),
                        (repo_url(distro, url), "docker_repo_url")):
        one_line(value, what)
    return (
        "Types: deb\n"
        f"URIs: {repo_url(distro, url)}\n"
        f"Suites: {suite}\n"
        "Components: stable\n"
        f"Architectures: {arch}\n"
        f"Signed-By: {KEYRING}\n"
    )


def fetch_key(url: str, dest: str, env: str) -> str:
    """Download the repository key to a temp file, check it is an OpenPGP key, then move it into place."""
    tmp = dest + ".provision-new"
    curl = f"{env} " + join(["curl", "-fsSL", "--retry", "3", "--retry-connrefused", "-o", tmp,
                             checked_url(url, "key URL")], "key path")
    return combine(["install", "-m", "0755", "-d", KEYRING_DIR], curl, ["grep", "-q", "BEGIN PGP PUBLIC KEY BLOCK", tmp],
                   ["chmod", "a+r", tmp], ["mv", "-f", tmp, dest])


DISTRO_PLACEHOLDER = "__DISTRO__"


#: Where provision records the last check of the repository key against its URL (one line: KEY_SHA256
#: CHECKED_EPOCH URL), so that a run within docker_repo_key_max_age of it need not download the key.
KEY_CHECK_STATE = "/var/lib/provision/docker-repo-key"


def key_digest_snippet(url: str, env: str, max_age: int = 0, record: bool = False,
                       state: str = KEY_CHECK_STATE, keyring: str = KEYRING, keyring_digest: str | None = None) -> str:
    """sha256 of the key the URL serves now (fetched in the probe, so a no-op run needs no extra trip).

    A __DISTRO__ in the URL is replaced on the host by os-release's ID (ubuntu/debian).

    MAX_AGE > 0: the key is not downloaded when STATE records a check of this URL younger than MAX_AGE
    seconds whose digest is KEYRING's digest now; the section then prints `cached SHA CHECKED NOW` (host
    epoch seconds). Otherwise it downloads and prints `fetched NOW` then the digest (its last line, as
    without MAX_AGE). RECORD: a fetched digest equal to KEYRING's is recorded in STATE (atomically), as
    the new last check. With neither (the defaults) only the digest is printed. KEYRING_DIGEST: a shell word
    holding `sha256sum`'s output for KEYRING, computed once by the caller (the Docker probe's prelude), instead
    of a sha256sum here."""
    fetch = f't=$(mktemp) && {env} curl -fsSL --retry 2 --max-time 30 -o "$t" "$url"; rc=$?; '
    # the first __DISTRO__ replaced by os-release's ID with the shell's own expansions (no sed to fork)
    head = (f'. /etc/os-release; u={quote(checked_url(url, "key URL"))}; case $u in *{DISTRO_PLACEHOLDER}*) '
            f'url="${{u%%{DISTRO_PLACEHOLDER}*}}$ID${{u#*{DISTRO_PLACEHOLDER}}}";; *) url=$u;; esac; ')
    if max_age <= 0 and not record:
        return head + fetch + "[ $rc = 0 ] && sha256sum < \"$t\" | cut -d' ' -f1; rm -f \"$t\"; exit $rc"
    st, kr = quote(state, "state path"), quote(keyring, "keyring path")
    digest = keyring_digest if keyring_digest is not None else f"$(sha256sum < {kr} 2>/dev/null)"
    local = f"k={digest}; k=${{k%% *}}; now=$(date +%s); "
    cached = ""
    if max_age > 0:
        cached = (f"if [ -f {kr} ] && read -r s_sha s_at s_url < {st} 2>/dev/null; then "
                  "case $s_at in ''|*[!0-9]*) s_at=0;; esac; "
                  f'if [ "$s_sha" = "$k" ] && [ "$s_url" = "$url" ] && [ $((now - s_at)) -ge 0 ] '
                  f'&& [ $((now - s_at)) -lt {int(max_age)} ]; then echo "cached $k $s_at $now"; exit 0; fi; fi; ')
    save = ""
    if record:
        save = f'[ "$sha" = "$k" ] && {files.write_line(state, "$sha $now $url")}; '
    return (head + local + cached + fetch +
            'if [ $rc = 0 ]; then sha=$(sha256sum < "$t" | cut -d\' \' -f1); '
            + save + 'echo "fetched $now"; echo "$sha"; fi; rm -f "$t"; exit $rc')


def key_check_record(url: str, sha: str, checked: int, state: str = KEY_CHECK_STATE) -> str:
    """Record (atomically) that the key at URL, with digest SHA, was checked at CHECKED (epoch seconds)."""
    return files.write_file(state, f"{sha} {int(checked)} {one_line(checked_url(url, 'key URL'), 'key URL')}\n",
                            backup=False)


def remove_stale_files(paths: list[str]) -> str:
    return join(["rm", "-f", "--", *paths], "stale file path")


def index_versions(url: str, suite: str, arch: str, env: str, package: str = "docker-ce") -> str:
    """The versions of PACKAGE in the repository's Packages index (one per line), read with curl before
    the repository is configured: planning only (apt still verifies what it installs)."""
    index = f"{url.rstrip('/')}/dists/{suite}/stable/binary-{arch}/Packages"
    awk = f'/^Package: /{{p=$2}} /^Version: /{{if (p=="{package}") print $2}}'
    return f"{env} curl -fsSL --max-time 60 {quote(checked_url(index, 'repository URL'))} | awk {shlex.quote(awk)}"


def parse_index_versions(text: str) -> list[str]:
    """The versions index_versions printed, one a line (empty when it printed none)."""
    return text.split()
