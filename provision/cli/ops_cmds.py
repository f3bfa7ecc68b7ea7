"""Day-2 commands on deployed stacks: status, logs, exec, down, prune, df; and unlock.

Registered on the main app by `register(app)`. As in every command module, heavy modules are
imported inside the commands; the per-host work lives in provision.workflows.ops, the docker calls
in provision.deploy.ops.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli import options as opt
from provision.cli.runner import finish, run_on_hosts

Stack = Annotated[Optional[str], typer.Option("--stack", "-s", help="Only this stack (default: every provision stack).")]
Service = Annotated[str, typer.Argument(help="SERVICE or STACK/SERVICE.", show_default=False)]
ForksLong = Annotated[int, typer.Option("--forks", min=1, help="Hosts worked on in parallel (-f means --follow here).")]
Replica = Annotated[Optional[int], typer.Option("--replica", min=1, help="Only this replica (default: all; exec: the first).")]


def _service_spec(service: str, stack: str | None) -> str:
    from provision.errors import InputError

    if stack:
        if "/" in service and service.split("/", 1)[0] != stack:
            raise InputError(f"--stack {stack} contradicts {service!r}")
        return service if "/" in service else f"{stack}/{service}"
    return service


# -- status ---------------------------------------------------------------------------------
def status_command(
    stack: Stack = None,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Show the deployed containers on each host: service, replica, image, state, health, ports, start.

    Retained `.previous` versions (kept for rollback) are listed too, dimmed."""
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=False, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("status", o, lambda s: api.status(inventory, stack=stack, limit=limit, settings=s))
    finish(report, console, o, render_status)


def render_status(console, report, now: float | None = None) -> None:
    """A table per host (titled with its name; no host column): ports as `8000→8000`, image names cut
    from the left keeping the tag (as wide as the terminal allows), health beside the state, start times
    relative (`3m ago`); cells wrap at spaces rather than being cut. The full values are in --json."""
    from rich.markup import escape
    from rich.table import Table

    from provision.cli.render import relative_time, short_image, short_ports

    for name, result in report.hosts.items():
        rows = result.extra.get("services")
        if rows is None:
            continue
        if not rows:
            console.print(f"[bold]{escape(name)}[/]: no provision containers")
            continue
        several = len({r["stack"] for r in rows}) > 1
        replicas = any(str(r["replica"]) not in ("1", "None") for r in rows)
        table = Table(title=name, title_justify="left")
        columns = ["service"] + (["#"] if replicas else []) + ["image", "state", "ports", "started"]
        ports = [short_ports(r["ports"]).replace(", ", "\n") for r in rows]  # a published port a line
        for column in columns:
            table.add_column(column, overflow="fold", no_wrap=column in ("service", "image", "ports"))
        # the image gets what the other columns leave at their narrowest (3 a column for the borders)
        services = [f"{r['stack']}/{r['service']}" if several else r["service"] for r in rows]
        narrowest = (max(map(len, ("service", *services))) + len("(previous)") + len("started") + 3 * (len(columns) + 1)
                     + max(len(line) for text in ("ports", *ports) for line in text.splitlines()))
        image_width = min(48, max(16, console.width - narrowest), max(len(r["image"]) for r in rows))
        for r in rows:
            service = f"{r['stack']}/{r['service']}" if several else r["service"]
            state = r["state"] + (f" ({r['role']})" if r["role"] != "serving" else "")
            style = {"running": "green", "exited": "red", "dead": "red", "restarting": "yellow"}.get(r["state"], "")
            health = {"healthy": " [green](healthy)[/]", "unhealthy": " [red](unhealthy)[/]", "-": "", "": ""}.get(
                r["health"], f" ({escape(r['health'])})")
            cells = [escape(service)] + ([str(r["replica"])] if replicas else []) + [
                escape(short_image(r["image"], image_width)),
                (f"[{style}]{escape(state)}[/]" if style and r["role"] == "serving" else escape(state)) + health,
                escape(ports[rows.index(r)]), escape(relative_time(str(r["started"]), now))]
            table.add_row(*cells, style="dim" if r["role"] != "serving" else None)
        console.print(table)


# -- logs -----------------------------------------------------------------------------------
def logs_command(
    service: Service,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep streaming new lines from every selected host until Ctrl-C.")] = False,
    tail: Annotated[int, typer.Option("--tail", "-n", min=-1, help="Lines from the end of each container's log (-1: all).")] = 100,
    stack: Stack = None, replica: Replica = None,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: ForksLong = 10,
    json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Print a service's logs from each host as `host | container | line` (-f: follow).

    stdout and stderr of every replica. Hosts that do not run the service are skipped. With -f the lines of every host's containers are
    streamed as they come, until Ctrl-C (exit 0)."""
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=False, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    spec = _service_spec(service, stack)
    tail_lines = None if tail < 0 else tail
    if not follow:
        report, console = run_on_hosts("logs", o, lambda s: api.logs(inventory, spec, tail=tail_lines, replica=replica,
                                                                       limit=limit, settings=s))
        finish(report, console, o, render_logs)
        return
    report, console = _follow(o, spec, tail_lines, replica)
    finish(report, console, o)


def _follow(o, spec: str, tail: int | None, replica: int | None):
    from provision import api
    from provision.cli.render import console_for
    from provision.workflows.ops import logs_work
    from provision.workflows.targets import load_targets

    load_targets(o.inventory, o.limit)  # bad input: exit 4 here, before any thread
    console = console_for(o.json)
    lock = threading.Lock()
    stop = threading.Event()

    def sink(host: str, container: str, line: str) -> None:
        with lock:
            console.out(f"{host} | {container} | {line}", highlight=False)

    outcome: dict = {}
    finished = threading.Event()

    def run() -> None:
        try:
            work = logs_work(spec, tail=tail, follow=True, sink=sink, stop=stop, replica=replica)
            outcome["result"] = run_on_hosts("logs", o, lambda s: api.run_work("logs", o.inventory, work, limit=o.limit,
                                                                               settings=s))
        except BaseException as exc:  # re-raised in the main thread
            outcome["error"] = exc
        finally:
            finished.set()

    # Ctrl-C reaches the main thread only: it sets `stop`, the hosts' streams close, the report follows.
    # (An Event, not Thread.join: a join interrupted by Ctrl-C can leave is_alive() wrong on 3.11.)
    threading.Thread(target=run, name="provision-logs-follow", daemon=True).start()
    interrupts = 0
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            interrupts += 1
            stop.set()
            if interrupts > 1:
                raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def render_logs(console, report) -> None:
    for name, result in report.hosts.items():
        for entry in result.extra.get("logs", []):
            console.out(f"{name} | {entry['container']} | {entry['line']}", highlight=False)


# -- exec -----------------------------------------------------------------------------------
def exec_command(
    service: Service,
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after `--`).", show_default=False)],
    stack: Stack = None, replica: Replica = None,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Run a command in a service's container on each host: `provision exec app -- ls -l /`.

    Runs in the first replica unless --replica; no TTY, no stdin. Output and exit code per host;
    a non-zero exit fails that host (exit 2)."""
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=False, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    spec = _service_spec(service, stack)
    report, console = run_on_hosts("exec", o, lambda s: api.exec_(inventory, spec, list(command), replica=replica,
                                                                       limit=limit, settings=s))
    finish(report, console, o, render_exec)


def render_exec(console, report) -> None:
    for name, result in report.hosts.items():
        if "exit_code" not in result.extra:
            continue
        console.out(f"{name} | {result.extra['container']} | exit {result.extra['exit_code']} >>", highlight=False)
        text = result.extra["output"].rstrip("\n")
        if text:
            console.out(text, highlight=False)


# -- down -----------------------------------------------------------------------------------
def down_command(
    stack: Stack = None,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also remove the stack's volumes (their data is lost).")] = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Remove a stack's containers and networks from each host (volumes only with --volumes).

    Without --stack: every provision stack on the host. Containers include the retained `.previous`
    versions. Only objects labelled io.provision.stack are touched. --check lists what would be removed."""
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("down", o, lambda s: api.down(inventory, stack=stack, volumes=volumes, limit=limit,
                                                                       check=check, settings=s))
    finish(report, console, o, render_down)


def render_down(console, report) -> None:
    from rich.markup import escape

    for name, result in report.hosts.items():
        for key, verb in (("would_remove", "would remove"), ("removed", "removed")):
            for item in result.extra.get(key, []):
                console.print(f"[bold]{escape(name)}[/]: {verb} {escape(item)}")


# -- prune ----------------------------------------------------------------------------------
def prune_command(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Also every unused image (not only dangling ones), all build "
                                                           "cache, and unused volumes without provision's label.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed for --all with --json).")] = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Reclaim disk space on each host (`docker system prune`), sparing what provision manages.

    Stopped containers, unused networks, dangling images and build cache; with --all also every unused
    image and unused volumes (after confirmation, or --yes). Never a container, network or volume labelled io.provision.stack: the
    `.previous` versions kept for rollback and the stack volumes stay."""
    from provision import api
    from provision.errors import InputError
    from provision.workflows.targets import load_targets

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=False, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    targets = load_targets(inventory, limit)  # bad input: exit 4 here, before the question
    if all_ and not yes:
        if json_:
            raise InputError("prune --all removes every unused image and volume: pass --yes to confirm (--json never prompts)")
        hosts = ", ".join(t.name for t in targets)
        if not typer.confirm(f"prune --all on {len(targets)} host(s) ({hosts}): remove every unused image, stopped "
                             "container, unused network and unused volume that provision does not manage?", err=True):
            typer.echo("not confirmed: nothing was pruned", err=True)
            raise typer.Exit(1)
    report, console = run_on_hosts("prune", o, lambda s: api.prune(inventory, all=all_, limit=limit, settings=s))
    finish(report, console, o, render_prune)


def render_prune(console, report) -> None:
    from rich.markup import escape

    from provision.deploy.ops import human_size

    for name, result in report.hosts.items():
        reclaimed, deleted = result.extra.get("reclaimed"), result.extra.get("deleted")
        if reclaimed is None:
            continue
        parts = []
        for kind in ("containers", "images", "networks", "volumes", "build_cache"):
            if kind not in deleted:
                continue
            size = f", {human_size(reclaimed[kind])}" if kind in reclaimed else ""
            parts.append(f"{kind.replace('_', ' ')} {len(deleted[kind])}{size}")
        console.print(f"[bold]{escape(name)}[/]: reclaimed {human_size(reclaimed['total'])} ({'; '.join(parts)})")


# -- df -------------------------------------------------------------------------------------
def df_command(
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Docker disk usage on each host (`docker system df`): size and reclaimable space per kind.

    Images, containers, volumes and build cache, each with count, active, size and reclaimable bytes."""
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=False, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("df", o, lambda s: api.df(inventory, limit=limit, settings=s))
    finish(report, console, o, render_df)


def render_df(console, report) -> None:
    from rich.table import Table

    from provision.deploy.ops import human_size

    table = Table(title="disk usage", title_justify="left")
    for column in ("host", "type", "total", "active", "size", "reclaimable"):
        table.add_column(column)
    for name, result in report.hosts.items():
        usage = result.extra.get("df")
        if not usage:
            continue
        for kind, row in usage.items():
            table.add_row(name, kind.replace("_", " "), str(row["count"]), str(row["active"]), human_size(row["size"]),
                          human_size(row["reclaimable"]))
    console.print(table)


# -- unlock ---------------------------------------------------------------------------------
def unlock_command(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed with --json).")] = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Break a stale host lock left by a run that was killed (a deploy, rollback, down, prune, ...).

    Shows each host's lock holder and since when first, asks (or --yes), then removes the lock only
    if it still holds exactly what was shown, and records the break in the host's audit log.
    Never break the lock of a run that is still going."""
    from rich.markup import escape

    from provision import api
    from provision.errors import InputError
    from provision.workflows.ops import lock_holder_work, unlock_work
    from provision.workflows.targets import load_targets

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=False, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    load_targets(inventory, limit)  # bad input: exit 4 here
    if json_ and not yes:
        raise InputError("unlock breaks host locks: pass --yes to confirm (--json never prompts)")
    report, console = run_on_hosts("unlock", o, lambda s: api.run_work("unlock", inventory, lock_holder_work,
                                                                       limit=limit, settings=s))
    seen = {name: r.extra["lock"] for name, r in report.hosts.items() if "lock" in r.extra}
    held = {name: lock for name, lock in seen.items() if lock["held"]}
    for name, result in report.hosts.items():
        if "lock" in result.extra:
            console.print(f"[bold]{escape(name)}[/]: {escape(result.steps[0].message)}")
    if not held or report.exit_code():
        finish(report, console, o)
    if not yes and not typer.confirm(f"break the lock on {len(held)} host(s) ({', '.join(held)})? Only if no run "
                                     "is still going on them", err=True):
        typer.echo("not confirmed: no lock was broken", err=True)
        raise typer.Exit(1)
    report, console = run_on_hosts("unlock", o, lambda s: api.run_work("unlock", inventory, unlock_work(held),
                                                                       limit=",".join(held), settings=s))
    finish(report, console, o)


def register(app: typer.Typer) -> None:
    """Add the day-2 commands to the `provision` app."""
    app.command("status")(status_command)
    app.command("logs")(logs_command)
    app.command("exec")(exec_command)
    app.command("down")(down_command)
    app.command("prune")(prune_command)
    app.command("df")(df_command)
    app.command("unlock")(unlock_command)
