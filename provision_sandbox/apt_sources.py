"""Find the Debian archive mirror this machine already uses (never hard-code the archive host).

Pure parsers over the text of apt's source files; `machine_debian_mirror()` reads them.
"""

from __future__ import annotations

from pathlib import Path

from provision.errors import EnvironmentProblem


def _is_archive_suite(suite: str) -> bool:
    """The main archive suite ("bookworm"), not -security/-updates/-backports."""
    return "-" not in suite and "/" not in suite


def mirrors_from_deb822(text: str) -> list[str]:
    """URIs of `Types: deb` stanzas whose Suites include a main archive suite (deb822 `.sources`)."""
    found: list[str] = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split():
            continue
        if not any(_is_archive_suite(s) for s in fields.get("suites", "").split()):
            continue
        found.extend(fields.get("uris", "").split())
    return found


def mirrors_from_list(text: str) -> list[str]:
    """URIs of one-line `deb URI SUITE COMPONENTS` entries (sources.list) for a main archive suite."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        rest = words[1:]
        if rest[0].startswith("["):  # options: deb [arch=amd64 signed-by=...] URI SUITE ...
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2 and _is_archive_suite(rest[1]):
            found.append(rest[0])
    return found


def machine_debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The first Debian archive mirror configured on this machine."""
    candidates: list[str] = []
    listing = apt_dir / "sources.list"
    if listing.is_file():
        candidates += mirrors_from_list(listing.read_text(errors="replace"))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".sources":
                candidates += mirrors_from_deb822(path.read_text(errors="replace"))
            elif path.suffix == ".list":
                candidates += mirrors_from_list(path.read_text(errors="replace"))
    debian = [uri for uri in candidates if "debian" in uri and "security" not in uri]
    if not debian:
        raise EnvironmentProblem(
            f"no Debian archive mirror found in {apt_dir}/sources.list(.d): "
            "pass --mirror URL (a Debian mirror that serves bookworm)"
        )
    return debian[0].rstrip("/")
