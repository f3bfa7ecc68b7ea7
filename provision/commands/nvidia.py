"""NVIDIA driver (Ubuntu) and Container Toolkit command lines, as NVIDIA's and Ubuntu's guides give them.

Pure builders: no I/O. (Groundwork for issue 4: the operations that use them are not built yet.)
"""

from __future__ import annotations

from provision.commands.argv import args, combine, join, pipe, quote, url
from provision.commands.files import write_file

TOOLKIT_KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
TOOLKIT_LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
TOOLKIT_BASE = "https://nvidia.github.io/libnvidia-container"
TOOLKIT_PACKAGES = ["nvidia-container-toolkit", "nvidia-container-toolkit-base",
                    "libnvidia-container-tools", "libnvidia-container1"]
CDI_DIR = "/var/run/cdi"
CDI_SPEC = f"{CDI_DIR}/nvidia.yaml"
DEFAULT_DRIVER_BRANCH = "580"  # a current server (production) branch; override with nvidia_driver_branch
TURING_FIRST_DEVICE_ID = 0x1E00  # PCI device ids from Turing (TU10x) on; older GPUs need proprietary modules
NOUVEAU_BLACKLIST = "/etc/modprobe.d/blacklist-nouveau.conf"
NOUVEAU_BLACKLIST_TEXT = "blacklist nouveau\noptions nouveau modeset=0\n"


def toolkit_key_url(base: str | None = None) -> str:
    return f"{(base or TOOLKIT_BASE).rstrip('/')}/gpgkey"


def toolkit_list_url(base: str | None = None) -> str:
    return f"{(base or TOOLKIT_BASE).rstrip('/')}/stable/deb/nvidia-container-toolkit.list"


def fetch_toolkit_key(env: str, base: str | None = None) -> str:
    """The key, dearmored into /usr/share/keyrings, through a temp file (never a half-written keyring)."""
    tmp = TOOLKIT_KEYRING + ".provision-new"
    curl = f"{env} " + join(["curl", "-fsSL", "--retry", "3", url(toolkit_key_url(base), "nvidia_repo_url")])
    return combine(pipe(curl, ["gpg", "--batch", "--yes", "--dearmor", "-o", tmp]),
                   ["chmod", "a+r", tmp], ["mv", "-f", tmp, TOOLKIT_KEYRING])


def fetch_toolkit_list(env: str, base: str | None = None) -> str:
    """NVIDIA's list file with signed-by added, as the install guide's sed does; written atomically."""
    tmp = TOOLKIT_LIST + ".provision-new"
    curl = f"{env} " + join(["curl", "-fsSL", "--retry", "3", url(toolkit_list_url(base), "nvidia_repo_url")])
    sed = join(["sed", f"s#deb https://#deb [signed-by={TOOLKIT_KEYRING}] https://#g"]) + " > " + quote(tmp)
    return combine(pipe(curl, sed), ["grep", "-q", "^deb ", tmp], ["mv", "-f", tmp, TOOLKIT_LIST])


def toolkit_package_specs(version: str | None) -> list[str]:
    """The four packages, pinned together when a version is given (e.g. 1.19.0-1)."""
    return args((f"{p}={version}" if version else p for p in TOOLKIT_PACKAGES), "nvidia_toolkit_version")


def runtime_configure(default_runtime: bool = False) -> str:
    """Merges runtimes.nvidia into daemon.json (keeps other keys); never restarts docker."""
    return "nvidia-ctk runtime configure --runtime=docker" + (" --set-as-default" if default_runtime else "")


def cdi_generate(output: str = CDI_SPEC) -> str:
    return join(["nvidia-ctk", "cdi", "generate", f"--output={output}"], "CDI spec path")


def open_modules_supported(pci_ids: list[str]) -> bool:
    """Open kernel modules need Turing or newer on every GPU (PCI ids like 10de:2330)."""
    try:
        return bool(pci_ids) and all(int(p.split(":")[1], 16) >= TURING_FIRST_DEVICE_ID for p in pci_ids)
    except (IndexError, ValueError):
        return False


def driver_packages(branch: str, *, nvswitch: bool, open_modules: bool = False) -> tuple[str, list[str]]:
    """(`ubuntu-drivers install --gpgpu nvidia:<branch>-server[-open]`, the matching apt packages)."""
    flavour = f"{branch}-server-open" if open_modules else f"{branch}-server"
    install = join(["ubuntu-drivers", "install", "--gpgpu", f"nvidia:{flavour}"], "nvidia_driver_branch")
    extra = args([f"nvidia-utils-{branch}-server", f"nvidia-compute-utils-{branch}-server"], "nvidia_driver_branch")  # nvidia-smi, nvidia-persistenced
    if nvswitch:  # Fabric Manager and NSCQ only where NVSwitch exists: the service fails without one
        extra += [f"nvidia-fabricmanager-{branch}", f"libnvidia-nscq-{branch}"]
    return install, extra


def pending_kernels_command(env: str) -> str:
    """Refresh the lists, then simulate a dist-upgrade: `Inst linux-image-...` lines name a newer kernel."""
    return (f"t=$(mktemp) && {env} apt-get -q update >/dev/null && "
            f"{env} apt-get -s -o Debug::NoLocking=1 dist-upgrade > \"$t\" && sed -n '/^Inst linux-image-/p' \"$t\"; "
            "rc=$?; rm -f \"$t\"; exit $rc")


def parse_pending_kernels(text: str) -> list[str]:
    """`Inst linux-image-6.8.0-51-generic (6.8.0-51.52 Ubuntu:24.04/noble-updates [amd64])` → package names."""
    return [line.split()[1] for line in text.splitlines() if line.startswith("Inst linux-image-")]


def blacklist_nouveau_if_loaded() -> str:
    """Only when nouveau is loaded: blacklist it and rebuild the initramfs (the reboot unloads it)."""
    write = write_file(NOUVEAU_BLACKLIST, NOUVEAU_BLACKLIST_TEXT, backup=False)
    return f"if grep -q '^nouveau ' /proc/modules; then {write} && update-initramfs -u; fi"


def gpu_test_command(image: str) -> str:
    """`--` before the image: an image value is never read as an option of `docker run`."""
    return join(["docker", "run", "--rm", "--gpus", "all", "--", image, "nvidia-smi",
                 "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader"], "verify_gpu_image")


def parse_gpu_test_output(text: str) -> list[dict]:
    """`index, uuid, name, memory.total` CSV rows (as `--format=csv,noheader`) → dicts."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4 and parts[0].isdigit():
            gpus.append({"index": int(parts[0]), "uuid": parts[1], "name": ", ".join(parts[2:-1]), "memory": parts[-1]})
    return gpus


def compare_gpus(host_uuids: list[str], container_uuids: list[str]) -> str | None:
    """None when the container sees exactly the host's GPUs, else what differs."""
    if sorted(host_uuids) == sorted(container_uuids):
        return None
    missing = [u for u in host_uuids if u not in container_uuids]
    extra = [u for u in container_uuids if u not in host_uuids]
    parts = [f"host has {len(host_uuids)} GPU(s), the container sees {len(container_uuids)}"]
    if missing:
        parts.append("missing in the container: " + ", ".join(missing))
    if extra:
        parts.append("not on the host: " + ", ".join(extra))
    return "; ".join(parts)


# Known failures → the fix, matched on the error text.
KNOWN_FAILURES = [
    ('could not select device driver "" with capabilities: [[gpu]]',
     "docker has no GPU support: install the NVIDIA Container Toolkit and restart docker "
     "(`provision nvidia install`)"),
    ("Driver/library version mismatch",
     "the loaded NVIDIA kernel module and the user-space driver differ (a driver upgrade without a reboot): "
     "reboot the host (`provision nvidia install --reboot`)"),
    ("No devices were found",
     "the driver sees no GPU: check the GPU is attached to this VM (lspci -d 10de:), and for MIG that instances exist"),
    ("snap",
     "Docker from snap cannot use the NVIDIA runtime the documented way: remove the snap and install docker-ce "
     "(`provision docker install`)"),
]


def advice_for(error: str) -> str | None:
    for needle, fix in KNOWN_FAILURES:
        if needle == "snap":
            if "/snap/" in error:
                return fix
        elif needle in error:
            return fix
    return None
