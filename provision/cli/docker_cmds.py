"""Host setup stages: `provision docker install|uninstall`, `provision nvidia install`, `provision verify`
and `provision bootstrap` (all of them at once). Parse, validate the docker_*/nvidia_* inventory vars,
call the workflow, render the plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provision.cli import options as opt
from provision.cli.runner import finish, run_on_hosts

docker_app = typer.Typer(help="Docker Engine on the hosts, the way docs.docker.com installs it.", no_args_is_help=True)
nvidia_app = typer.Typer(help="GPU hosts: NVIDIA driver (Ubuntu) and Container Toolkit, as NVIDIA's guides do.",
                         no_args_is_help=True)
Refresh = Annotated[bool, typer.Option("--refresh", help="Download the repository keys (Docker's; the NVIDIA toolkit's "
                                                          "key and list) to compare digests even if they were checked "
                                                          "within docker_repo_key_max_age / nvidia_repo_key_max_age.")]
Reboot = Annotated[bool, typer.Option("--reboot", help="Reboot hosts that need it (after a driver install), wait for "
                                                        "SSH, resume and re-verify. Never the machine provision runs on.")]


def register_commands(app: typer.Typer) -> None:
    """The top-level commands: verify, bootstrap."""
    app.command("verify")(verify_command)
    app.command("bootstrap")(bootstrap_command)


def register_groups(app: typer.Typer) -> None:
    """The command groups: docker, nvidia."""
    app.add_typer(docker_app, name="docker")
    app.add_typer(nvidia_app, name="nvidia")


@docker_app.command("install")
def docker_install(
    refresh: Refresh = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Install Docker Engine: conflicting packages removed, keyring + signed deb822 repo, pinned packages,
    daemon.json merged, users added, service running. Idempotent; --check shows commands and diffs.

    The repository key is downloaded to compare digests only when its last check (recorded on the host)
    is older than docker_repo_key_max_age (default 1d), or with --refresh.

    Inventory vars: docker_repo_url, docker_gpg_url, docker_repo_key_max_age, docker_version, docker_hold,
    docker_daemon (map), docker_daemon_defaults, docker_users, apt_lock_timeout, http_proxy/https_proxy/no_proxy."""
    from provision import api
    from provision.cli.render import render_plan

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("docker install", o,
                                   lambda s: api.docker_install(inventory, limit=limit, check=check, refresh=refresh,
                                                                   settings=s))
    finish(report, console, o, render_plan)


@docker_app.command("uninstall")
def docker_uninstall(
    purge_data: Annotated[bool, typer.Option("--purge-data", help="Also delete /var/lib/docker and /var/lib/containerd.")] = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Uninstall Docker Engine as docs.docker.com does (purge packages, remove the repo); data kept unless --purge-data."""
    from provision import api
    from provision.cli.render import render_plan

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("docker uninstall", o, lambda s: api.docker_uninstall(
        inventory, purge_data=purge_data, limit=limit, check=check, settings=s))
    finish(report, console, o, render_plan)


def verify_command(
    deep: Annotated[bool, typer.Option("--deep", help="Also run DCGM diagnostics level 1 (dcgmi diag -r 1, or the "
                                                      "verify_dcgm_image container) and nvbandwidth on GPU hosts; each "
                                                      "is skipped with the reason where not available.")] = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Verify Docker: `docker version`, `docker info`, `docker run --rm hello-world` (image: verify_hello_image);
    then on GPU hosts, as a ladder: host nvidia-smi, the nvidia runtime in `docker info`, a `--gpus all`
    container (verify_gpu_image) that must list the host's GPUs, the health report (nvidia-smi -q -x: ECC,
    row remapping, PCIe link, persistence, Fabric Manager, throttling), a CUDA workload on every GPU
    (verify_cuda_image, vectorAdd), and a running GPU container across `systemctl daemon-reload`.
    --deep adds DCGM level 1 and nvbandwidth. With --check the CUDA workload, the daemon-reload check and
    --deep are not run (shown as skipped, with what they would do); the other checks run as without it.
    Exit 2 when a host fails."""
    from provision import api

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("verify", o, lambda s: api.verify(inventory, limit=limit, check=check, deep=deep,
                                                                   settings=s))
    finish(report, console, o)


def bootstrap_command(
    reboot: Reboot = False, refresh: Refresh = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Fresh host to working container host: facts → docker install → NVIDIA stage on GPU hosts → verify
    (one SSH connection per host)."""
    from provision import api
    from provision.cli.render import render_plan

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("bootstrap", o, lambda s: api.bootstrap(inventory, reboot=reboot, limit=limit,
                                                                         check=check, refresh=refresh,
                                                                         settings=s))
    finish(report, console, o, render_plan)


@nvidia_app.command("install")
def nvidia_install(
    reboot: Reboot = False, refresh: Refresh = False,
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
    nvidia_repo_key_max_age, verify_gpu_image, verify_cuda_image, verify_dcgm_image, reboot_timeout, gpu."""
    from provision import api
    from provision.cli.render import render_plan

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    report, console = run_on_hosts("nvidia install", o, lambda s: api.nvidia_install(
        inventory, reboot=reboot, limit=limit, check=check, refresh=refresh, settings=s))
    finish(report, console, o, render_plan)
