"""Options shared by every host-acting command (typed once, reused by each command)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.executor.known_hosts import default_path as default_known_hosts

DEFAULT_INVENTORY = os.environ.get("PROVISION_INVENTORY", "inventories/sandbox.yml")
DEFAULT_KNOWN_HOSTS = str(default_known_hosts())  # $PROVISION_KNOWN_HOSTS, $PROVISION_HOME/, ~/.provision/


def _inventory_path(value: str | Path) -> Path:
    """An empty --inventory is bad input (Path('') would silently be the current folder); a NAME that is
    not a path means the project's inventories/NAME.yml|.yaml|.ini or inventories/NAME/."""
    from provision.config import inventory_path

    if isinstance(value, str) and not value.strip():
        raise typer.BadParameter("the inventory path is empty")
    from provision.config import vagrant_inventory

    if vagrant_inventory.applies(value, Path.cwd()):  # -i vagrant: the running Vagrant machines, fresh
        return vagrant_inventory.refresh(Path.cwd())
    return inventory_path.resolve(value)


def _limit_pattern(value: Optional[str]) -> Optional[str]:
    """`-l ''` must never mean "all hosts": an empty or separator-only pattern is bad input."""
    if value is not None and not value.strip().strip(",:").strip():
        raise typer.BadParameter(f"empty host pattern {value!r} (use 'all' to mean every host)")
    return value


def _known_hosts_path(value: str | Path) -> Path:
    if isinstance(value, str) and not value.strip():
        raise typer.BadParameter("the known_hosts path is empty")
    if Path(value).is_dir():
        raise typer.BadParameter(f"{str(value)!r} is a directory; give the known_hosts file")
    return Path(value)


Inventory = Annotated[Path, typer.Option("-i", "--inventory", parser=_inventory_path, metavar="<path>",
                                         help="Inventory file or directory (Ansible INI/YAML), or a NAME for "
                                              "inventories/NAME.yml|.yaml|.ini or inventories/NAME/; `vagrant`: the running "
                                              "Vagrant machines of this folder (`vagrant ssh-config`). "
                                              "[env: PROVISION_INVENTORY]")]
Limit = Annotated[Optional[str], typer.Option("-l", "--limit", callback=_limit_pattern,
                                              help="Ansible host pattern: web, 'gpu:&prod', 'all:!db', 'node-*'.")]
Forks = Annotated[int, typer.Option("-f", "--forks", min=1, help="Hosts worked on in parallel.")]
Check = Annotated[bool, typer.Option("--check", help="Dry run: show what would change, change nothing.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (human output goes to stderr).")]
Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail (repeatable).")]
KnownHostsPath = Annotated[Path, typer.Option("--known-hosts", parser=_known_hosts_path, metavar="<path>", help="Project-local known_hosts (trust on first use). [env: PROVISION_KNOWN_HOSTS]")]
AcceptNewKeys = Annotated[bool, typer.Option("--accept-new-host-keys", help="Re-record host keys that CHANGED (after a host was rebuilt).")]
AskBecomePass = Annotated[bool, typer.Option("-K", "--ask-become-pass", help="Prompt for the sudo password (else PROVISION_BECOME_PASSWORD).")]


@dataclass(frozen=True, kw_only=True)
class HostOptions:
    """The shared options of a host-acting command, as given on its command line.

    Each command builds it field by field from its own parameters (commands without --check pass
    check=False); provision.cli.runner reads it to load the targets, fan out and render."""

    inventory: Path  # -i/--inventory: the targets, with limit (workflows.targets.load_targets)
    limit: str | None  # -l/--limit
    forks: int  # -f/--forks: RunOptions.forks
    check: bool  # --check: RunOptions.check (and the command's own work)
    json: bool  # --json: console on stderr, JSON report on stdout
    verbose: int  # -v: recap detail
    known_hosts: Path  # --known-hosts: RunOptions.known_hosts
    accept_new_host_keys: bool  # --accept-new-host-keys: RunOptions.known_hosts
    ask_become_pass: bool  # -K: RunOptions.become_password
