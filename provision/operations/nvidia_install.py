"""The NVIDIA stage on GPU hosts, as NVIDIA's and Ubuntu's guides do it: each function returns a Change
(commands + reason), a NoChange (why not) or a Refusal. The same plan serves --check."""

from __future__ import annotations

import json

from provision.commands import apt, daemon_json, files, nvidia, system
from provision.config.host_settings import NvidiaSettings
from provision.facts.nvidia_host import NvidiaHostState
from provision.operations import gpu_host
from provision.operations.base import Change, NoChange, Refusal, age


def is_gpu_host(facts: dict, settings: NvidiaSettings) -> tuple[bool, str]:
    return gpu_host.is_gpu_host(settings.gpu, facts)


def driver(facts: dict, settings: NvidiaSettings) -> Change | NoChange | Refusal:
    nv = facts.get("nvidia")
    if nv:
        return NoChange("gpu driver", f"driver {nv['driver']} (CUDA {nv['cuda']}) works")
    os_id = (facts.get("os") or {}).get("id")
    if os_id != "ubuntu":
        why = facts.get("nvidia_error") or "nvidia-smi not found"
        return Refusal("gpu driver", f"no working NVIDIA driver ({why}); installing the driver is not automated on "
                                     f"{os_id or 'this OS'}: install it from NVIDIA's driver guide, then re-run")
    open_modules = settings.nvidia_open_modules
    if open_modules is None:
        open_modules = nvidia.open_modules_supported([g["pci_id"] for g in facts.get("gpus") or [] if g.get("pci_id")])
    install, extra = nvidia.driver_packages(settings.nvidia_driver_branch, nvswitch=bool(facts.get("nvswitch")),
                                            open_modules=open_modules)
    commands = [nvidia.blacklist_nouveau_if_loaded(), install,
                apt.install(extra, settings.apt_lock_timeout, settings.proxy), system.enable_unit("nvidia-persistenced")]
    if facts.get("nvswitch"):
        commands.append(system.enable_unit("nvidia-fabricmanager"))
    flavour = "open" if open_modules else "proprietary"
    return Change("gpu driver", f"installing NVIDIA driver {settings.nvidia_driver_branch}-server ({flavour} kernel "
                                f"modules; {', '.join(extra)})", commands,
                  notes=["a reboot is needed to load the new driver"], timeout=settings.apt_timeout, detached=True)


def kernel_upgrade(pending: list[str], settings: NvidiaSettings) -> Change | NoChange:
    """A newer kernel is pending: upgrade (and reboot) before the driver, whose modules must match it."""
    if not pending:
        return NoChange("gpu kernel", "the running kernel is the newest available")
    return Change("gpu kernel", f"upgrading first: a newer kernel is pending ({', '.join(pending)})",
                  [apt.apt_get("dist-upgrade", lock_timeout=settings.apt_lock_timeout, proxy=settings.proxy)],
                  notes=["a reboot into the new kernel comes before the driver install"], timeout=settings.apt_timeout,
                  detached=True)


def toolkit_repository(state: NvidiaHostState, settings: NvidiaSettings) -> Change | NoChange | Refusal:
    if state.remote_error:
        return Refusal("gpu toolkit repository", f"cannot fetch the NVIDIA repository: {state.remote_error}")
    env = apt.env_prefix(settings.proxy)
    commands, what = [], []
    if state.keyring_sha != state.remote_key_sha:
        commands.append(nvidia.fetch_toolkit_key(env, settings.nvidia_repo_url))
        what.append(f"key → {nvidia.TOOLKIT_KEYRING}")
    if state.list_sha != state.remote_list_sha:
        commands.append(nvidia.fetch_toolkit_list(env, settings.nvidia_repo_url))
        what.append(f"{nvidia.TOOLKIT_LIST} (signed-by)")
    if not commands:
        checked = ""
        if state.checked_at is not None and state.host_now is not None:
            checked = f" (checked {age(max(0, state.host_now - state.checked_at))})"
        return NoChange("gpu toolkit repository", f"{nvidia.TOOLKIT_LIST} and its key up to date{checked}")
    commands.append(apt.update(settings.apt_lock_timeout, settings.proxy))
    undo = [files.remove(nvidia.TOOLKIT_LIST), apt.update(settings.apt_lock_timeout, settings.proxy)] \
        if state.list_sha is None else []
    return Change("gpu toolkit repository", "; ".join(what), commands, undo=undo, timeout=settings.apt_timeout)


def toolkit_packages(state: NvidiaHostState, settings: NvidiaSettings) -> Change | NoChange:
    specs = nvidia.toolkit_package_specs(settings.nvidia_toolkit_version)

    def installed(spec: str) -> bool:
        name, _, version = spec.partition("=")
        return name in state.packages and (not version or state.packages[name] == version)

    missing = [s for s in specs if not installed(s)]
    if not missing:
        return NoChange("gpu toolkit packages",
                        f"nvidia-container-toolkit {state.packages['nvidia-container-toolkit']} installed")
    # pinned together: all four at once, so apt cannot mix versions
    todo = specs if settings.nvidia_toolkit_version else missing
    return Change("gpu toolkit packages", f"installing {', '.join(todo)}",
                  [apt.install(todo, settings.apt_lock_timeout, settings.proxy,
                               allow_downgrades=bool(settings.nvidia_toolkit_version))],
                  timeout=settings.apt_timeout, detached=True)


def docker_runtime(state: NvidiaHostState, settings: NvidiaSettings, stamp: str) -> Change | NoChange | Refusal:
    try:
        config = json.loads(state.daemon_json) if state.daemon_json and state.daemon_json.strip() else {}
    except json.JSONDecodeError as exc:
        return Refusal("gpu nvidia runtime", f"/etc/docker/daemon.json is not valid JSON ({exc})")
    has_runtime = "nvidia" in (config.get("runtimes") or {})
    is_default = config.get("default-runtime") == "nvidia"
    if has_runtime and (is_default or not settings.nvidia_default_runtime):
        return NoChange("gpu nvidia runtime", "daemon.json has the nvidia runtime"
                        + (" (the default)" if is_default else ""))
    # one backup, root-only: daemon.json may hold proxy credentials that must not pile up in copies
    backup = [files.backup_private(daemon_json.PATH, stamp)] if state.daemon_json is not None else []
    what = "registering the nvidia runtime in daemon.json (nvidia-ctk)"
    if settings.nvidia_default_runtime:
        what += ", as the default runtime"
    return Change("gpu nvidia runtime", what, [*backup, nvidia.runtime_configure(settings.nvidia_default_runtime)])


def cdi_spec(state: NvidiaHostState, toolkit_installed: bool) -> Change | NoChange:
    if state.cdi_spec and not toolkit_installed:
        return NoChange("gpu cdi", f"{nvidia.CDI_SPEC} present")
    return Change("gpu cdi", f"generating the CDI spec {nvidia.CDI_SPEC}",
                  [files.make_dir(nvidia.CDI_DIR), nvidia.cdi_generate()])


def docker_restart(runtime_changed: bool, toolkit_installed: bool, backup: str | None = None) -> Change | NoChange:
    """dockerd enables --gpus at start only when the hook is on its PATH: restart after a toolkit
    install or a runtime change, and only then. When nvidia-ctk's daemon.json stops dockerd from starting,
    the previous daemon.json (`backup`, None: there was none) is put back and docker started again."""
    if runtime_changed or toolkit_installed:
        restart = daemon_json.restart_or_restore(backup) if runtime_changed else system.restart_unit("docker")
        return Change("gpu docker restart", "restarting docker to load the NVIDIA runtime",
                      [restart],
                      notes=["docker was restarted for the NVIDIA runtime: running containers stopped unless live-restore"])
    return NoChange("gpu docker restart", "not needed")
