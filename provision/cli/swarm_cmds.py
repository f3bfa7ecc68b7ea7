"""`provision swarm ...`: Docker Swarm across the inventory's hosts. Parse, call the workflow, render."""

from __future__ import annotations

from pathlib import Path

import typer

from provision.cli import options as opt
from provision.cli.runner import finish, run_options

swarm_app = typer.Typer(help="Docker Swarm across the hosts: managers and workers from inventory groups.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(swarm_app, name="swarm")


@swarm_app.command("init")
def swarm_init(
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Form a Docker Swarm from groups swarm_managers and swarm_workers (idempotent; --check changes nothing).

    The first manager initialises the swarm; the other managers join with the manager token, workers with
    the worker token. A host already in this swarm is ok; a host in another swarm fails and is left alone
    (never leave/force). GPU nodes get the node label provision.gpu=true. Docker must be installed.

    Inventory vars: swarm_role (manager|worker, overrides the groups), swarm_advertise_addr (IP or interface;
    default: the IPv4 address of the default route's interface), gpu (true/false: a GPU node or not)."""
    from provision.cli.render import LiveProgress, console_for, render_plan
    from provision.workflows import swarm

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    targets = swarm.load_swarm_targets(inventory, limit)  # bad input: exit 4 before any connection
    console = console_for(json_)
    options = run_options(o, needs_become=True)
    with LiveProgress(console, "swarm init", len(targets), names=[t.name for t in targets]) as progress:
        options.progress = progress
        report = swarm.init_swarm(targets, options)
    finish(report, console, o, render_plan)
