#!/usr/bin/env python3
"""Write an inventory for the Vagrant machines (see the Vagrantfile) from `vagrant ssh-config`.

    scripts/vagrant-inventory.py [--out inventories/vagrant.yml]

Runs `vagrant ssh-config` in the repository root (VAGRANT_* variables pass through) and writes group
`vagrant`, one host per machine with ansible_host/ansible_port/ansible_user/ansible_ssh_private_key_file
taken from HostName/Port/User/IdentityFile. Run it again after every `vagrant up`: ports may change.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ("# Written by scripts/vagrant-inventory.py from `vagrant ssh-config`: the Vagrant machines\n"
          "# (see the Vagrantfile). Regenerate it after every `vagrant up`.\n")

KEYS = {"hostname": "ansible_host", "port": "ansible_port", "user": "ansible_user",
        "identityfile": "ansible_ssh_private_key_file"}


def parse_ssh_config(text: str) -> dict[str, dict]:
    """`vagrant ssh-config` output -> {host: {ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file}}.

    Only the first IdentityFile of a host counts (as ssh tries them in order); quotes are stripped."""
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
    for name, hv in hosts.items():
        missing = [k for k in ("ansible_host", "ansible_port") if k not in hv]
        if missing:
            raise ValueError(f"vagrant ssh-config: host {name} has no {' / '.join(missing)}")
    return hosts


def inventory_doc(hosts: dict[str, dict]) -> dict:
    return {"all": {"children": {"vagrant": {"hosts": hosts}}}}


def write_inventory(path: Path, hosts: dict[str, dict]) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(HEADER + yaml.safe_dump(inventory_doc(hosts), sort_keys=False))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "inventories" / "vagrant.yml",
                        help="inventory to write (default: inventories/vagrant.yml)")
    args = parser.parse_args(argv)
    # Debian's vagrant wants Debian's docker client, not another one earlier on PATH.
    env = {**os.environ, "PATH": "/usr/bin:" + os.environ.get("PATH", "")}
    try:
        proc = subprocess.run(["vagrant", "ssh-config"], cwd=ROOT, env=env, capture_output=True, text=True)
    except FileNotFoundError:
        print("vagrant-inventory: vagrant is not installed (scripts/install-deps.sh installs it)", file=sys.stderr)
        return 1
    hosts = parse_ssh_config(proc.stdout)
    if proc.returncode != 0 or not hosts:
        print(f"vagrant-inventory: `vagrant ssh-config` failed (exit {proc.returncode}); are the machines up "
              f"(`vagrant up --provider=docker`)?\n{proc.stderr.strip()}", file=sys.stderr)
        return 1
    write_inventory(args.out, hosts)
    print(f"vagrant-inventory: wrote {args.out} ({len(hosts)} hosts: {', '.join(hosts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
