"""`provision sandbox up|status|down|image|attach`: the local sandbox fleet (provision_sandbox, imported inside the
commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from provision.cli import options as opt

sandbox_app = typer.Typer(help="The local sandbox fleet: fresh Debian 12 hosts (systemd + sshd) as containers, sshd on 127.0.0.1.",
                          no_args_is_help=True)
SandboxInventory = Annotated[Path, typer.Option("--inventory-out", help="Where to write the fleet's inventory.")]
Fleet = Annotated[str, typer.Option("--fleet", envvar="PROVISION_SANDBOX_FLEET", help="Fleet name: several fleets can live side by side.")]


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")


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


@sandbox_app.command("image")
def sandbox_image(
    mirror: Annotated[Optional[str], typer.Option("--mirror", help="Debian mirror for debootstrap (default: this machine's apt sources).")] = None,
) -> None:
    """Build the sandbox host image (Debian 12, systemd + sshd) unless it is current; `sandbox up` and the
    Vagrantfile's docker provider run it."""
    from provision_sandbox import image
    from provision_sandbox.apt_sources import machine_debian_mirror
    from provision_sandbox.engine import local_docker

    client = local_docker()
    if image.image_is_current(client):
        typer.echo(f"{image.IMAGE} is current", err=True)
        return
    image.build_host_image(client, mirror or machine_debian_mirror(), lambda m: typer.echo(m, err=True))


@sandbox_app.command("attach")
def sandbox_attach(
    container: Annotated[str, typer.Argument(help="Name or id of a running container (a Vagrant docker-provider machine).")],
    fleet_name: Annotated[str, typer.Option("--fleet", envvar="PROVISION_VAGRANT_FLEET",
                                            help="The fleet whose offline upstreams the machine uses.")] = "vagrant",
    vars_file: Annotated[Path, typer.Option("--vars-file", help="Where to write the group vars that point "
                                            "daemon.json at the registry mirror.")] = Path(
        "inventories/group_vars/vagrant/sandbox-upstreams.yml"),
) -> None:
    """Put a container host on the sandbox's offline upstreams (the Vagrantfile's docker provider runs this
    after `vagrant up`): fleet network, sandbox CA, group vars for the registry mirror."""
    from provision_sandbox import vagrant

    vagrant.attach(container, fleet_name=fleet_name, vars_file=vars_file, log=lambda m: typer.echo(m, err=True))
