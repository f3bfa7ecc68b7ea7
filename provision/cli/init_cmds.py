"""`provision init`: the first hour. Writes an annotated inventory (inventories/prod.yml) and a starter
Compose file (compose.yaml) into a project folder, never over an existing file, and prints the next steps.

The texts are package data (provision/cli/templates/): the inventory template is the same text as the
repository's inventories/prod.example.yml, and names every inventory var provision reads
(tests/unit/test_init.py checks both, and that ansible-inventory and docker compose accept the files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TEMPLATES = Path(__file__).parent / "templates"
INVENTORY = Path("inventories") / "prod.yml"
COMPOSE = Path("compose.yaml")

NEXT_STEPS = """\
Next steps:{cd}
  1. edit {inventory}: your hosts' addresses, the login user and key, the bastion (or remove it)
  2. provision facts --inventory prod       # reach every host, see what they are
  3. provision bootstrap --inventory prod   # Docker Engine; on GPU hosts the NVIDIA driver and toolkit, verified
  4. provision deploy --inventory prod      # {compose}
"""


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)


def template_text(name: str) -> str:
    """A template's text: "inventory.yml" or "compose.yaml"."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def planned_files(folder: Path) -> dict[Path, str]:
    """What init writes into `folder`: path -> text."""
    return {folder / INVENTORY: template_text("inventory.yml"), folder / COMPOSE: template_text("compose.yaml")}


def in_the_way(folder: Path) -> list[Path]:
    """Files that stop init: its own two, and any Compose file Docker Compose would pick up instead."""
    from provision.compose.discovery import DEFAULT_NAMES

    names = [INVENTORY, *(Path(n) for n in DEFAULT_NAMES)]
    return [folder / name for name in names if (folder / name).exists() or (folder / name).is_symlink()]


def write_project(folder: Path) -> list[Path]:
    """Write the starter files into `folder` (created if missing); refuse, writing nothing, when one is
    already there (InputError: exit 4). Returns the files written."""
    from provision.errors import InputError

    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    existing = in_the_way(folder)
    if existing:
        raise InputError(f"refusing to overwrite {', '.join(map(str, existing))}: nothing was written "
                         f"(move it away, or run `provision init` in another folder)")
    written = []
    for path, text in planned_files(folder).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as out:  # "x": never over a file that appeared meanwhile
            out.write(text)
        written.append(path)
    return written


def init_command(
    folder: Annotated[Path, typer.Argument(help="The project folder (created if missing).")] = Path("."),
) -> None:
    """Start a project: an annotated inventories/prod.yml and a starter compose.yaml (never overwritten).

    The inventory has GPU and CPU groups, become, a bastion through ProxyJump and every inventory var
    provision reads, commented; compose.yaml runs a GPU worker on the `gpu` hosts. An existing file (or
    another Compose file in the folder) is never overwritten: exit 4, nothing written."""
    written = write_project(folder)
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo("")
    cd = "" if folder.resolve() == Path.cwd().resolve() else f"\n  0. cd {folder}"
    typer.echo(NEXT_STEPS.format(cd=cd, inventory=written[0], compose=written[1]), nl=False)
