"""`--inventory vagrant`: the running Vagrant machines of the current folder, read through `vagrant ssh-config`.

When `-i vagrant` names no inventory the user wrote (no `vagrant` path, no `inventories/vagrant.yml`
without this module's header, no `inventories/vagrant.yaml|.ini` or `inventories/vagrant/`) and the
current folder has a `Vagrantfile`, provision runs `vagrant ssh-config` there and (re)writes
`inventories/vagrant.yml` from it: group `vagrant`, one host per machine with ansible_host,
ansible_port, ansible_user and ansible_ssh_private_key_file from HostName, Port, User and the first
IdentityFile. It is rewritten on every use (ports change with each `vagrant up`), so it never goes
stale; as a file in `inventories/`, the usual `inventories/group_vars/vagrant.yml` (or
`group_vars/vagrant/`) applies to it, as Ansible would apply it. An `inventories/vagrant.yml` that
someone wrote by hand (without the header) is used as it is, never overwritten.

Runs a local program (vagrant) and writes one local file; no host is contacted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from provision.errors import InventoryError

NAME = "vagrant"
VAGRANTFILE = "Vagrantfile"
HEADER = ("# Written by provision from `vagrant ssh-config` (`provision ... -i vagrant`): the running Vagrant\n"
          "# machines of this folder. Rewritten on every `-i vagrant`; edit group_vars/vagrant.yml instead.\n")
TIMEOUT_S = 120.0
KEYS = {"hostname": "ansible_host", "port": "ansible_port", "user": "ansible_user",
        "identityfile": "ansible_ssh_private_key_file"}


def parse_ssh_config(text: str) -> dict[str, dict]:
    """`vagrant ssh-config` output -> {host: {ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file}}.

    Only the first IdentityFile of a host counts (as ssh tries them in order); quotes are stripped.
    Raises ValueError for a host without HostName or Port."""
    hosts: dict[str, dict] = {}
    current: dict | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if "=" in key and not value:  # `Key=Value` form
            key, _, value = key.partition("=")
        key, value = key.lower(), value.strip().strip('"')
        if key == "host":
            current = hosts.setdefault(value, {})
            continue
        if current is None or key not in KEYS or KEYS[key] in current:
            continue
        current[KEYS[key]] = int(value) if key == "port" else value
    for name, hostvars in hosts.items():
        missing = [k for k in ("ansible_host", "ansible_port") if k not in hostvars]
        if missing:
            raise ValueError(f"host {name} has no {' / '.join(missing)}")
    return hosts


def inventory_text(hosts: dict[str, dict]) -> str:
    """The YAML inventory written for `hosts` (header included)."""
    import yaml

    return HEADER + yaml.safe_dump({"all": {"children": {NAME: {"hosts": hosts}}}}, sort_keys=False)


def target(cwd: Path) -> Path:
    return cwd / "inventories" / f"{NAME}.yml"


def applies(value: str | Path, cwd: Path) -> bool:
    """Whether `-i value` means the Vagrant machines of `cwd` (see the module docstring)."""
    if str(value) != NAME or Path(value).exists() or not (cwd / VAGRANTFILE).is_file():
        return False
    folder = cwd / "inventories"
    if any((folder / f"{NAME}{suffix}").exists() for suffix in (".yaml", ".ini")) or (folder / NAME).exists():
        return False
    path = target(cwd)
    return not path.exists() or _written_here(path)


def _written_here(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(len(HEADER)) == HEADER
    except OSError:
        return False


def refresh(cwd: Path) -> Path:
    """Run `vagrant ssh-config` in `cwd` and (re)write inventories/vagrant.yml atomically; its path.

    Raises InventoryError (bad input, exit 4) when vagrant is missing, fails, or no machine runs."""
    path = target(cwd)
    try:
        proc = subprocess.run(["vagrant", "ssh-config"], cwd=cwd, capture_output=True, text=True,
                              timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise InventoryError("-i vagrant: the `vagrant` program is not installed", file=cwd / VAGRANTFILE) from None
    except subprocess.TimeoutExpired:
        raise InventoryError(f"-i vagrant: `vagrant ssh-config` did not answer in {TIMEOUT_S:.0f} s",
                             file=cwd / VAGRANTFILE) from None
    try:
        hosts = parse_ssh_config(proc.stdout)
    except ValueError as exc:
        raise InventoryError(f"-i vagrant: `vagrant ssh-config`: {exc}", file=cwd / VAGRANTFILE) from None
    if proc.returncode != 0 or not hosts:
        detail = " ".join(proc.stderr.split())[:300] or "no machine"
        raise InventoryError(f"-i vagrant: no running Vagrant machine here (`vagrant up` first): {detail}",
                             file=cwd / VAGRANTFILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(inventory_text(hosts), encoding="utf-8")
    os.replace(tmp, path)
    return path
