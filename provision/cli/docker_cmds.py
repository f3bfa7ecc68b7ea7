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


def _stamp() -> str:
    """Suffix of the backups the stages write (FILE.provision-bak-<stamp>): the local time of the run."""
    import datetime

    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def _check_settings(inventory: Path, limit: str | None) -> None:
    """docker_* and nvidia_* vars validated for every host before any connection (exit 4)."""
    from provision.workflows import docker, nvidia
    from provision.workflows.targets import load_targets

    targets = load_targets(inventory, limit)
    docker.validate_settings(targets)
    nvidia.validate_settings(targets)


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
    from provision.cli.render import render_plan
    from provision.workflows.docker import install_work

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    _check_settings(inventory, limit)
    report, console = run_on_hosts("docker install", o, install_work(check, _stamp()), needs_become=True)
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
    from provision.cli.render import render_plan
    from provision.workflows.docker import uninstall_work

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    _check_settings(inventory, limit)
    report, console = run_on_hosts("docker uninstall", o, uninstall_work(check, purge_data), needs_become=True)
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
    from provision.workflows.bootstrap import verify_work

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    _check_settings(inventory, limit)
    report, console = run_on_hosts("verify", o, verify_work(check, deep), needs_become=True)
    finish(report, console, o)


def bootstrap_command(
    reboot: Reboot = False,
    inventory: opt.Inventory = Path(opt.DEFAULT_INVENTORY), limit: opt.Limit = None, forks: opt.Forks = 10,
    check: opt.Check = False, json_: opt.Json = False, verbose: opt.Verbose = 0,
    known_hosts: opt.KnownHostsPath = Path(opt.DEFAULT_KNOWN_HOSTS), accept_new_host_keys: opt.AcceptNewKeys = False,
    ask_become_pass: opt.AskBecomePass = False,
) -> None:
    """Fresh host to working container host: facts → docker install → NVIDIA stage on GPU hosts → verify
    (one SSH connection per host)."""
    from provision.cli.render import render_plan
    from provision.workflows.bootstrap import bootstrap_work

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    _check_settings(inventory, limit)
    report, console = run_on_hosts("bootstrap", o, bootstrap_work(check, _stamp(), reboot), needs_become=True)
    finish(report, console, o, render_plan)


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
    verify_gpu_image, verify_cuda_image, verify_dcgm_image, reboot_timeout, gpu."""
    from provision.cli.render import render_plan
    from provision.workflows.nvidia import install_work

    o = opt.HostOptions(inventory=inventory, limit=limit, forks=forks, check=check, json=json_, verbose=verbose,
                        known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys,
                        ask_become_pass=ask_become_pass)
    _check_settings(inventory, limit)
    report, console = run_on_hosts("nvidia install", o, install_work(check, _stamp(), reboot), needs_become=True)
    finish(report, console, o, render_plan)
