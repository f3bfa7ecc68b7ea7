"""Options shared by every host-acting command (typed once, reused by each command)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

DEFAULT_INVENTORY = os.environ.get("PROVISION_INVENTORY", "inventories/sandbox.yml")
DEFAULT_KNOWN_HOSTS = os.environ.get(
    "PROVISION_KNOWN_HOSTS", os.path.join(os.environ.get("PROVISION_HOME", ".provision"), "known_hosts"))

Inventory = Annotated[Path, typer.Option("-i", "--inventory", help="Inventory file or directory (Ansible INI/YAML). [env: PROVISION_INVENTORY]")]
Limit = Annotated[Optional[str], typer.Option("-l", "--limit", help="Ansible host pattern: web, 'gpu:&prod', 'all:!db', 'node-*'.")]
Forks = Annotated[int, typer.Option("-f", "--forks", min=1, help="Hosts worked on in parallel.")]
Check = Annotated[bool, typer.Option("--check", help="Dry run: show what would change, change nothing.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (human output goes to stderr).")]
Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail (repeatable).")]
KnownHostsPath = Annotated[Path, typer.Option("--known-hosts", help="Project-local known_hosts (trust on first use). [env: PROVISION_KNOWN_HOSTS]")]
AcceptNewKeys = Annotated[bool, typer.Option("--accept-new-host-keys", help="Re-record host keys that CHANGED (after a host was rebuilt).")]
AskBecomePass = Annotated[bool, typer.Option("-K", "--ask-become-pass", help="Prompt for the sudo password (else PROVISION_BECOME_PASSWORD).")]


@dataclass
class HostOptions:
    inventory: Path
    limit: str | None
    forks: int
    check: bool
    json: bool
    verbose: int
    known_hosts: Path
    accept_new_host_keys: bool
    ask_become_pass: bool

    @classmethod
    def collect(cls, params: dict) -> "HostOptions":
        """From a command's locals(): the shared options (json_ is the parameter behind --json)."""
        values = dict(params, json=params.get("json_", False))
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})
