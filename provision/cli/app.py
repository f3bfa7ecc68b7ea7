"""The `provision` command line: parse options, call a workflow, render. No logic lives here.

Heavy modules (fabric, paramiko, docker, pydantic) are imported inside the commands so that
`provision --help` answers fast.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli import options as opt
from provision.cli.deploy_cmds import register as register_deploy
from provision.cli.ops_cmds import register as register_ops

EXIT_CODES_HELP = (
    "Exit codes: 0 all hosts ok/changed, 2 a host failed, 3 a host was unreachable (and none failed), "
    "4 bad input (nothing was touched), 1 other errors, 130 interrupted (Ctrl-C; 143 for SIGTERM)."
)

app = typer.Typer(
    name="provision",
    help="Turn fresh Ubuntu/Debian machines (cloud GPU VMs above all) into container hosts, over SSH, "
    "from an Ansible inventory.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
sandbox_app = typer.Typer(help="The local sandbox fleet: fresh Debian 12 hosts (systemd + sshd) as containers, sshd on 127.0.0.1.",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
docker_app = typer.Typer(help="Docker Engine on the hosts, the way docs.docker.com installs it.", no_args_is_help=True)
app.add_typer(docker_app, name="docker")
nvidia_app = typer.Typer(help="GPU hosts: NVIDIA driver (Ubuntu) and Container Toolkit, as NVIDIA's guides do.",
                         no_args_is_help=True)
app.add_typer(nvidia_app, name="nvidia")
from provision.cli.swarm_cmds import swarm_app
app.add_typer(swarm_app, name="swarm")
Reboot = Annotated[bool, typer.Option("--reboot", help="Reboot hosts that need it (after a driver install), wait for "
                                                        "SSH, resume and re-verify. Never the machine provision runs on.")]


def _run_on_hosts(command_name: str, o: opt.HostOptions, work, *, needs_become: bool = False):
    """Load targets (bad input → exit 4 before any connection), fan out with live progress, return the report."""
    from provision.cli.render import LiveProgress, console_for
    from provision.executor.known_hosts import KnownHosts
    from provision.workflows.fanout import RunOptions, fan_out
    from provision.workflows.targets import load_targets

    targets = load_targets(o.inventory, o.limit)
    console = console_for(o.json)
    options = RunOptions(forks=o.forks, check=o.check,
                         known_hosts=KnownHosts(o.known_hosts, accept_changed=o.accept_new_host_keys),
                         become_password=_become_password(o, needs_become or any(t.settings.become for t in targets)))
    with LiveProgress(console, command_name, len(targets)) as progress:
        options.progress = progress
        report = fan_out(command_name, targets, work, options)
    return report, console


def _become_password(o: opt.HostOptions, needed: bool):
    from provision.executor.secret import Secret

    value = os.environ.get("PROVISION_BECOME_PASSWORD")
    if value:
        return Secret(value)
    if o.ask_become_pass and needed:
        import getpass

        return Secret(getpass.getpass("BECOME password: "))
    return None


def _finish(report, console, o: opt.HostOptions, extra_render=None) -> None:
    """Render the (possibly partial) report and exit: 128+signal after an interrupt, else the report's code."""
    from provision.cli.render import emit_json, recap
    from provision.workflows.interrupt import INTERRUPT

    if extra_render:  # to the terminal, or to stderr with --json
        extra_render(console, report)
    recap(console, report, o.verbose)
    if o.json:
        emit_json(report)
    raise typer.Exit(INTERRUPT.exit_code or report.exit_code())


# -- hosts ----------------------------------------------------------------------------------
@app.command("hosts")
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
        raise InputError("inventory not found", file=inventory)
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


# -- facts ----------------------------------------------------------------------------------
@app.command("facts")
def facts_command(
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Gather facts (OS, arch, kernel, CPUs, memory, GPUs, NVIDIA driver, Docker, cloud-init) in one round trip per host.

    Read-only, so --check changes nothing either way."""
    from provision.workflows import facts

    o = opt.HostOptions.collect(locals())
    report, console = _run_on_hosts("facts", o, facts.gather)
    _finish(report, console, o, _render_facts)


def _render_facts(console, report) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="facts", title_justify="left")
    for column in ("host", "os", "arch", "kernel", "cpus", "memory", "systemd", "docker", "gpus", "nvidia"):
        table.add_column(column)
    for name, result in report.hosts.items():
        f = result.extra.get("facts")
        if not f:
            continue
        docker = f.get("docker")
        nvidia = f.get("nvidia")
        table.add_row(*map(escape, (  # remote text, not markup
            name, str((f.get("os") or {}).get("pretty_name", "?")), str(f.get("arch")), str(f.get("kernel")),
            str(f.get("cpus")), f"{f.get('memory_mib')} MiB", "yes" if f.get("systemd") else "no",
            (f"{docker['version']} ({'running' if docker.get('running') else 'stopped'})" if docker else "-"),
            str(len(f.get("gpus") or [])), (f"{nvidia['driver']} / CUDA {nvidia['cuda']}" if nvidia else "-"),
        )))
    console.print(table)


# -- run ------------------------------------------------------------------------------------
@app.command("run")
def run_command(
    command: Annotated[str, typer.Argument(help="Shell command run on each host.")],
    become: Annotated[bool, typer.Option("-b", "--become", help="Run it as root (or ansible_become_user) via sudo.")] = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Run an ad-hoc shell command on each host; show its output and exit code per host.

    With --check nothing is run (as Ansible's command module)."""
    from provision.workflows.adhoc import run_command as work

    o = opt.HostOptions.collect(locals())
    report, console = _run_on_hosts("run", o, work(command, become=become, check=check), needs_become=become)
    _finish(report, console, o, _render_output)


def _render_output(console, report) -> None:
    from rich.markup import escape

    for name, result in report.hosts.items():
        if "rc" not in result.extra:
            continue
        console.print(f"[bold]{escape(name)}[/] | rc={result.extra['rc']} >>")
        for stream in ("stdout", "stderr"):
            text = result.extra[stream].rstrip("\n")
            if text:
                console.print(escape(text))


# -- docker ---------------------------------------------------------------------------------
def _stamp() -> str:
    import datetime

    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def _docker_targets_check(o: opt.HostOptions) -> None:
    """docker_* and nvidia_* vars validated for every host before any connection (exit 4)."""
    from provision.workflows import docker, nvidia
    from provision.workflows.targets import load_targets

    targets = load_targets(o.inventory, o.limit)
    docker.validate_settings(targets)
    nvidia.validate_settings(targets)


def _render_plan(console, report) -> None:
    from rich.markup import escape

    for name, result in report.hosts.items():
        plan = result.extra.get("plan")
        if plan is None:
            continue
        if result.status == "failed":
            console.print(f"[bold]{name}[/]: [red]stopped[/] ({escape(result.message)})")
        else:
            console.print(f"[bold]{name}[/]: {len(plan)} change(s) planned" if plan else f"[bold]{name}[/]: nothing to change")
        for item in plan:
            console.print(f"  [yellow]{item['step']}[/]: {escape(item['reason'])}")
            for command in item["commands"]:
                for line in command.splitlines():
                    console.print(f"    $ {escape(line)}")
            if item["diff"]:
                for line in item["diff"].splitlines():
                    console.print(f"    {escape(line)}")
    for name, result in report.hosts.items():
        for note in result.extra.get("notes", []):
            console.print(f"[cyan]note[/] {name}: {escape(note)}")


@docker_app.command("install")
def docker_install(
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Install Docker Engine: conflicting packages removed, keyring + signed deb822 repo, pinned packages,
    daemon.json merged, users added, service running. Idempotent; --check shows commands and diffs.

    Inventory vars: docker_repo_url, docker_gpg_url, docker_version, docker_hold, docker_daemon (map),
    docker_daemon_defaults, docker_users, apt_lock_timeout, http_proxy/https_proxy/no_proxy."""
    from provision.workflows.docker import install_work

    o = opt.HostOptions.collect(locals())
    _docker_targets_check(o)
    report, console = _run_on_hosts("docker install", o, install_work(check, _stamp()), needs_become=True)
    _finish(report, console, o, _render_plan)


@docker_app.command("uninstall")
def docker_uninstall(
    purge_data: Annotated[bool, typer.Option("--purge-data", help="Also delete /var/lib/docker and /var/lib/containerd.")] = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Uninstall Docker Engine as docs.docker.com does (purge packages, remove the repo); data kept unless --purge-data."""
    from provision.workflows.docker import uninstall_work

    o = opt.HostOptions.collect(locals())
    _docker_targets_check(o)
    report, console = _run_on_hosts("docker uninstall", o, uninstall_work(check, purge_data), needs_become=True)
    _finish(report, console, o, _render_plan)


@app.command("verify")
def verify_command(
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Verify Docker: `docker version`, `docker info`, `docker run --rm hello-world` (image: verify_hello_image);
    then on GPU hosts: host nvidia-smi, the nvidia runtime in `docker info`, and a `--gpus all` container
    (verify_gpu_image) that must list the host's GPUs."""
    from provision.workflows.bootstrap import verify_all

    o = opt.HostOptions.collect(locals())
    _docker_targets_check(o)
    report, console = _run_on_hosts("verify", o, verify_all, needs_become=True)
    _finish(report, console, o)


@app.command("bootstrap")
def bootstrap_command(
    reboot: Reboot = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Fresh host to working container host: facts → docker install → NVIDIA stage on GPU hosts → verify
    (one SSH connection per host)."""
    from provision.workflows.bootstrap import bootstrap_work

    o = opt.HostOptions.collect(locals())
    _docker_targets_check(o)
    report, console = _run_on_hosts("bootstrap", o, bootstrap_work(check, _stamp(), reboot), needs_become=True)
    _finish(report, console, o, _render_plan)


@nvidia_app.command("install")
def nvidia_install(
    reboot: Reboot = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """On GPU hosts (PCI vendor 10de, or `gpu: true`): the driver where none works (Ubuntu: ubuntu-drivers
    --gpgpu; Debian: not automated), the NVIDIA Container Toolkit (signed repo, four packages pinned together),
    the nvidia runtime in daemon.json (nvidia-ctk, only when missing), the CDI spec, and a docker restart
    only on change. Other hosts are skipped with the reason.

    Inventory vars: nvidia_driver_branch, nvidia_toolkit_version, nvidia_default_runtime, nvidia_repo_url,
    verify_gpu_image, reboot_timeout, gpu."""
    from provision.workflows.nvidia import install_work

    o = opt.HostOptions.collect(locals())
    _docker_targets_check(o)
    report, console = _run_on_hosts("nvidia install", o, install_work(check, _stamp(), reboot), needs_become=True)
    _finish(report, console, o, _render_plan)


# -- sandbox --------------------------------------------------------------------------------
SandboxInventory = Annotated[Path, typer.Option("--inventory-out", help="Where to write the fleet's inventory.")]
Fleet = Annotated[str, typer.Option("--fleet", envvar="PROVISION_SANDBOX_FLEET", help="Fleet name: several fleets can live side by side.")]


@sandbox_app.command("up")
def sandbox_up(
    hosts: Annotated[int, typer.Option("--hosts", "-n", min=1, help="Number of hosts.")] = 3,
    gpu_hosts: Annotated[int, typer.Option("--gpu-hosts", min=0, help="How many of them are SIMULATED GPU hosts (no GPU exists here).")] = 0,
    inventory_out: SandboxInventory = Path("inventories/sandbox.yml"),
    mirror: Annotated[Optional[str], typer.Option("--mirror", help="Debian mirror for debootstrap (default: this machine's apt sources).")] = None,
    fleet_name: Fleet = "default",
    offline_upstreams: Annotated[bool, typer.Option(
        "--offline-upstreams/--no-offline-upstreams",
        help="Serve download.docker.com (signed apt repo, sandbox CA) and a Docker Hub mirror with hello-world "
             "on the fleet network, built locally: no internet needed.")] = True,
) -> None:
    """Start N fresh Debian 12 hosts (built once with debootstrap, cached) and write their inventory.

    Reconciles: existing hosts are kept, missing ones started, extra ones removed."""
    from provision_sandbox import fleet

    fleet.up(hosts, gpu_hosts, paths=fleet.Paths.default(fleet_name), inventory=inventory_out, mirror=mirror,
             log=lambda m: typer.echo(m, err=True), offline_upstreams=offline_upstreams)


@sandbox_app.command("status")
def sandbox_status(json_: opt.Json = False, fleet_name: Fleet = "default") -> None:
    """List the sandbox hosts with their state and loopback SSH port."""
    import json

    from provision_sandbox import fleet

    rows = [{"host": h.name, "container": h.container, "state": h.state, "ssh": f"127.0.0.1:{h.port}",
             "gpu": "simulated" if h.gpu else None} for h in fleet.status(fleet_name)]
    if json_:
        typer.echo(json.dumps({"hosts": rows}, indent=2))
        return
    if not rows:
        typer.echo("no sandbox hosts (provision sandbox up)")
    for row in rows:
        typer.echo(f"{row['host']:<8} {row['state']:<10} ssh {row['ssh']:<18} {'GPU (simulated)' if row['gpu'] else ''}".rstrip())


@sandbox_app.command("down")
def sandbox_down(inventory_out: SandboxInventory = Path("inventories/sandbox.yml"), fleet_name: Fleet = "default") -> None:
    """Remove every container, volume and network the fleet created (nothing else); the image stays cached."""
    from provision_sandbox import fleet

    count = fleet.down(paths=fleet.Paths.default(fleet_name), inventory=inventory_out, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"removed {count} sandbox host(s)", err=True)


register_deploy(app)  # deploy, rollback
register_ops(app)  # status, logs, exec, down, prune, df


# -- entry point: the one place that turns errors into messages and exit codes ---------------
def _click_exceptions():
    """Typer >= 0.2x vendors click as typer._click; older releases use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions
    return exceptions


def main(argv: list[str] | None = None) -> None:
    """The exit boundary. Interrupts: while hosts are being worked on, the first Ctrl-C/SIGTERM stops
    at step boundaries and the partial report ends with 130/143 (see workflows.fanout); otherwise,
    and at the second one, KeyboardInterrupt lands here and the process exits at once (os._exit: the
    worker threads still in flight are not waited for; what they held was released, bounded)."""
    from provision.errors import EXIT_BAD_INPUT, ProvisionError
    from provision.workflows.interrupt import INTERRUPT

    click_errors = _click_exceptions()
    if threading.current_thread() is threading.main_thread():
        INTERRUPT.install()
    try:
        code = app(args=argv, prog_name="provision", standalone_mode=False)
    except click_errors.UsageError as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except BrokenPipeError:  # output piped into head & co.
        sys.exit(0)
    except (getattr(click_errors, "Abort", typer.Abort), typer.Abort):
        sys.stderr.write("provision: aborted\n")
        sys.exit(130)
    except ProvisionError as exc:
        sys.stderr.write(f"provision: error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("provision: interrupted\n")
        _exit_now(INTERRUPT.exit_code or 128 + (INTERRUPT.raised or 2))
    sys.exit(code if isinstance(code, int) else 0)


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing more to say
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
