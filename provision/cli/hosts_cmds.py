"""`provision hosts`: the hosts of an inventory, read locally (no connection is made)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli import options as opt


def register(app: typer.Typer) -> None:
    app.command("hosts")(hosts_command)


def hosts_command(
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY),
    limit: opt.Limit = None,
    list_: Annotated[bool, typer.Option("--list", help="The JSON `ansible-inventory --list` prints.")] = False,
    graph: Annotated[bool, typer.Option("--graph", help="The tree `ansible-inventory --graph` prints.")] = False,
    graph_group: Annotated[Optional[str], typer.Argument(help="With --graph: the group to start from.")] = None,
    vars_: Annotated[bool, typer.Option("--vars", help="With --graph: show variables.")] = False,
    json_: opt.Json = False,
) -> None:
    """Show the hosts of an inventory: groups and connection settings (no connection is made)."""
    import json

    from provision.config.connection import connection_settings
    from provision.config.inventory import load_inventory
    from provision.errors import InputError

    if not inventory.exists():
        from provision.config.inventory_path import not_found_hint

        raise InputError(f"inventory not found{not_found_hint(inventory)}", file=inventory)
    inv = load_inventory(inventory)
    if list_:
        typer.echo(json.dumps(inv.to_ansible_list(), indent=4, sort_keys=True))
        return
    if graph:
        typer.echo(inv.graph(graph_group or "all", with_vars=vars_))
        return
    names = inv.select(limit or "all")
    rows = []
    for name in names:
        settings = connection_settings(name, inv.host_vars(name))
        groups = [g for g, group in inv.groups.items() if g != "all" and name in _members(inv, g)]
        rows.append({"host": name, "groups": groups, "connection": settings.describe(),
                     "become": settings.become_user if settings.become else None})
    if json_:
        typer.echo(json.dumps({"hosts": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{inventory}: {len(rows)} host(s)", title_justify="left")
    for column in ("host", "groups", "connection", "become"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["host"], ",".join(row["groups"]), row["connection"], row["become"] or "")
    Console().print(table)


def _members(inv, group: str) -> set[str]:
    """Hosts of a group including those of its descendants (as Ansible's group membership)."""
    return set(inv.select(group))
