"""dpkg-query: which packages are installed, at which version, held or not; and the parsers of what it
prints (beside the command they read). Pure: no I/O."""

from __future__ import annotations

from provision.commands.argv import join, quote

VERSIONS_FORMAT = "${Package} ${Version}\\n"  # dpkg-query expands \n itself
STATUS_FORMAT = "${Package}\\t${Version}\\t${db:Status-Abbrev}\\n"


def query(packages: list[str], fmt: str) -> str:
    """`dpkg-query -W -f='FMT' PACKAGE...` (exit 1 when one of them is unknown)."""
    return "dpkg-query -W -f=" + quote(fmt, "dpkg-query format") + " " + join(packages, "package name")


def versions(packages: list[str]) -> str:
    """`PACKAGE VERSION` a line, for the report of what was installed."""
    return query(packages, VERSIONS_FORMAT)


def parse_versions(text: str) -> list[str]:
    """`docker-ce 5:27.3.1-1~debian.12~bookworm` lines, blank ones dropped."""
    return [line for line in text.split("\n") if line.strip()]


def status(packages: list[str]) -> str:
    """`PACKAGE<TAB>VERSION<TAB>ii` a line for each package dpkg knows (a probe section: never fails)."""
    return query(packages, STATUS_FORMAT) + " 2>/dev/null; true"


def parse_status(text: str) -> tuple[dict[str, str], set[str]]:
    """(installed package → version, the held ones) from `status`: `ii`/`hi` is installed (`h`: held);
    `rc` (removed, config files left) and unknown packages are not."""
    installed: dict[str, str] = {}
    held: set[str] = set()
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip()[1:2] == "i":
            installed[parts[0]] = parts[1]
            if parts[2].startswith("h"):
                held.add(parts[0])
    return installed, held
