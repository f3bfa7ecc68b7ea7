"""Where `--inventory NAME` points: a path as given, else a named inventory of the project.

Like a Kamal destination, `provision deploy --inventory prod` means the project's production
inventory: when `prod` is not an existing path, `inventories/prod.yml`, `inventories/prod.yaml`,
`inventories/prod.ini` and the folder `inventories/prod/` are tried, in that order, relative to
the current folder. Pure path logic: no file is read here.
"""

from __future__ import annotations

from pathlib import Path

INVENTORIES_DIR = "inventories"
SUFFIXES = (".yml", ".yaml", ".ini")


def candidates(value: str | Path, cwd: Path | None = None) -> list[Path]:
    """Every path `value` may mean, in the order they are tried (the value itself first)."""
    given = Path(value)
    base = cwd or Path()
    tried = [given]
    name = str(value)
    if given.is_absolute() or "/" in name or name in ("", ".", ".."):
        return tried
    folder = base / INVENTORIES_DIR
    tried += [folder / f"{name}{suffix}" for suffix in SUFFIXES]
    tried.append(folder / name)
    return tried


def resolve(value: str | Path, cwd: Path | None = None) -> Path:
    """The first candidate that exists; the value as given when none does (the loader then says
    `inventory not found` and lists what was tried, see `not_found_hint`)."""
    for path in candidates(value, cwd):
        if path.exists():
            return path
    return Path(value)


def not_found_hint(value: str | Path, cwd: Path | None = None) -> str:
    """`(tried: a, b, c)` for the error of an inventory that does not exist."""
    tried = candidates(value, cwd)
    if len(tried) == 1:
        return ""
    return " (tried: " + ", ".join(str(p) + ("/" if p.suffix == "" and p != Path(value) else "")
                                   for p in tried) + ")"
