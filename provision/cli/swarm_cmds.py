"""`provision swarm ...`: Docker Swarm across the inventory's hosts. Parse, call the workflow, render."""

from __future__ import annotations

from pathlib import Path

import typer

from provision.cli import options as opt

swarm_app = typer.Typer(help="Docker Swarm across the hosts: managers and workers from inventory groups.",
                        no_args_is_help=True)


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
    from provision.cli.app import _become_password, _finish, _render_plan
    from provision.cli.render import LiveProgress, console_for
    from provision.executor.known_hosts import KnownHosts
    from provision.workflows import swarm
    from provision.workflows.fanout import RunOptions

    o = opt.HostOptions.collect(locals())
    targets = swarm.load_swarm_targets(o.inventory, o.limit)  # bad input: exit 4 before any connection
    console = console_for(o.json)
    options = RunOptions(forks=o.forks, check=o.check,
                         known_hosts=KnownHosts(o.known_hosts, accept_changed=o.accept_new_host_keys),
                         become_password=_become_password(o, True))
    with LiveProgress(console, "swarm init", len(targets)) as progress:
        options.progress = progress
        report = swarm.init_swarm(targets, options)
    _finish(report, console, o, _render_plan)
