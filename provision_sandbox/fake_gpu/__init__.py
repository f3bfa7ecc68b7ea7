"""SIMULATION: the fake NVIDIA GPU stack of the sandbox (there is NO GPU on this machine).

The files of this folder are the payload of the simulated NVIDIA packages (nvidia_repo.py) and of
simulated GPU hosts (hosts labelled io.provision.sandbox.gpu=simulated):

  nvidia-smi                     fake nvidia-smi (POSIX sh); GPUs listed in /etc/provision-sandbox/fake-gpu/gpus
  dcgmi                          fake DCGM CLI (POSIX sh): `discovery -l` and `diag -r N` in DCGM 3.x's layout,
                                 passing or failing as the state says; off PATH until install_dcgmi_command
  nvidia-container-runtime-hook  fake OCI prestart hook: injects the fake nvidia-smi into --gpus containers
  nvidia-container-runtime       runc under the NVIDIA runtime's name
  nvidia-container-cli           fake libnvidia-container CLI (--version, info)
  nvidia_ctk.py                  stand-in nvidia-ctk (runtime configure, cdi generate/list,
                                 system create-dev-char-symlinks)
  vectorAdd                      fake CUDA vectorAdd sample (the simulated cuda-sample image's command)
  reload-generator               systemd generator: the simulated daemon-reload GPU loss

Failure injection (TEST-ONLY, sandbox only): STATE_FILE on a simulated GPU host, `key=value` lines read by
the fake nvidia-smi (its -q -x report), the fake dcgmi, the fake vectorAdd (copied into containers by the fake hook) and the
reload generator; STATE_KEYS says what each key does. `set_state` writes it.

`install_host` puts the fake nvidia-smi, the fake dcgmi and the GPU list on a running host container.
"""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
CONFIG_DIR = "/etc/provision-sandbox/fake-gpu"
GPUS_FILE = f"{CONFIG_DIR}/gpus"
CONTAINER_SMI_OVERRIDE = f"{CONFIG_DIR}/container-nvidia-smi"
STATE_FILE = f"{CONFIG_DIR}/state"  # SIMULATION, test-only failure injection (STATE_KEYS)
STATE_KEYS = {
    "driver": "the driver version nvidia-smi reports (default 550.54.15)",
    "cuda": "the CUDA version the driver supports, as nvidia-smi reports it (default 12.4); the fake vectorAdd "
            "fails with cudaErrorInsufficientDriver's text below its image's NVIDIA_REQUIRE_CUDA",
    "fabric": "none (default: <fabric> N/A, no NVSwitch), completed, or down (Fabric Manager not running: "
              "fabric state 'Not Started', vectorAdd fails with 'system not yet initialized')",
    "brand": "the <product_brand> of every GPU in `nvidia-smi -q -x` (default NVIDIA, as an H100 reports it; "
             "e.g. GeForce: NVIDIA_REQUIRE_CUDA's brand= alternatives for data center GPUs then do not hold)",
    "persistence": "off: persistence mode Disabled (and the fake dcgmi's Persistence Mode check fails)",
    "ecc_uncorrectable": "a GPU index: 2 volatile/aggregate uncorrectable DRAM ECC errors on it, and vectorAdd "
                         "fails on it with 'uncorrectable ECC error encountered'; the fake dcgmi's Page "
                         "Retirement/Row Remap check fails (2 rows remapped)",
    "remap_pending": "a GPU index: a row remapping pending on it (the fake dcgmi's Page Retirement/Row Remap "
                     "check fails)",
    "pcie_degraded": "a GPU index: busy, its link at gen 3 x8 of gen 5 x16",
    "nvml_loss_on_reload": "1: running GPU containers lose their GPUs on `systemctl daemon-reload` unless "
                           "/dev/char has symlinks to NVIDIA devices (the systemd-cgroup trap), even with the "
                           "cgroupfs driver (with docker's systemd cgroup driver it happens without this key)",
}
RELOAD_GENERATOR = "/etc/systemd/system-generators/provision-sandbox-fake-gpu-reload"
SHARE_DIR = "/usr/local/share/fake-gpu"
HOST_SMI = "/usr/bin/nvidia-smi"
SHARE_DCGMI = f"{SHARE_DIR}/dcgmi"  # SIMULATION: fake dcgmi, kept off PATH (dcgmi "not installed")...
HOST_DCGMI = "/usr/bin/dcgmi"  # ...until a test installs it here (install_dcgmi_command)
FAKE_PCI = "/usr/local/sbin/provision-sandbox-fake-pci"  # SIMULATION: GPUs seen on the PCI bus
FAKE_PCI_UNIT = "provision-sandbox-fake-pci.service"
DRIVER_VERSION = "550.54.15"
CUDA_VERSION = "12.4"
DEFAULT_GPU_NAME = "NVIDIA H100 80GB HBM3 (simulated)"
DEFAULT_MEMORY_MIB = 81559
DEFAULT_PCI_DEVICE_ID = "0x233010DE"  # H100 SXM5 80GB (device 2330, vendor 10de)
_NAMESPACE = uuid.UUID("5f3c1e0a-6d1b-4c1e-9a57-70726f766973")  # "provis": UUIDs of simulated GPUs


@dataclass(frozen=True)
class SimulatedGpu:
    index: int
    name: str
    uuid: str
    memory_mib: int
    bus_id: str
    pci_device_id: str = DEFAULT_PCI_DEVICE_ID

    def line(self) -> str:
        return "|".join((str(self.index), self.name, self.uuid, str(self.memory_mib), self.bus_id, self.pci_device_id))


def source(name: str) -> str:
    """Text of one fake script of this folder."""
    return (HERE / name).read_text()


def gpu_uuid(host: str, index: int = 0) -> str:
    """A stable UUID for simulated GPU `index` of `host`."""
    return f"GPU-{uuid.uuid5(_NAMESPACE, f'{host}/{index}')}"


def default_gpus(host: str, count: int = 1) -> list[SimulatedGpu]:
    return [SimulatedGpu(i, DEFAULT_GPU_NAME, gpu_uuid(host, i), DEFAULT_MEMORY_MIB, f"00000000:{0x18 + i:02X}:00.0")
            for i in range(count)]


def gpus_file_text(gpus: list[SimulatedGpu]) -> str:
    header = ("# SIMULATION: the GPUs the fake nvidia-smi reports (provision sandbox; no GPU exists here)\n"
              "# index|name|uuid|memory_mib|bus_id|pci_device_id\n")
    return header + "".join(g.line() + "\n" for g in gpus)


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, (data, mode) in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def install_host(container, host: str) -> None:
    """Make a running host container a SIMULATED GPU host: the fake nvidia-smi in /usr/bin and in
    SHARE_DIR (for the hook), the fake dcgmi in SHARE_DIR only (DCGM is not installed until a test says so:
    install_dcgmi_command), and the GPU list (written only when missing, so tests may change it)."""
    smi = source("nvidia-smi").encode()
    container.put_archive("/", _tar({
        HOST_SMI: (smi, 0o755),
        f"{SHARE_DIR}/nvidia-smi": (smi, 0o755),
        SHARE_DCGMI: (source("dcgmi").encode(), 0o755),
        f"{SHARE_DIR}/default-gpus": (gpus_file_text(default_gpus(host)).encode(), 0o644),
    }))
    unit = ("[Unit]\nDescription=SIMULATION: the simulated GPUs as PCI devices (provision sandbox)\n"
            "After=local-fs.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart={FAKE_PCI}\n\n[Install]\nWantedBy=multi-user.target\n")
    container.put_archive("/", _tar({
        RELOAD_GENERATOR: (source("reload-generator").encode(), 0o755),
        FAKE_PCI: (source("fake-pci").encode(), 0o755),
        f"/etc/systemd/system/{FAKE_PCI_UNIT}": (unit.encode(), 0o644),
    }))
    code, out = container.exec_run(["sh", "-c", f"([ -e {GPUS_FILE} ] || install -D -m 0644 {SHARE_DIR}/default-gpus {GPUS_FILE}) "
                                                f"&& systemctl daemon-reload && systemctl enable --now {FAKE_PCI_UNIT}"])
    if code != 0:
        from provision.errors import EnvironmentProblem

        raise EnvironmentProblem(f"could not set up the simulated GPU on {host}: {out.decode(errors='replace').strip()}")


def install_dcgmi_command() -> str:
    """SIMULATION: the shell command a test runs on a simulated GPU host to "install DCGM" (the fake dcgmi on PATH);
    `rm -f HOST_DCGMI` takes it away again."""
    return f"install -m 0755 {SHARE_DCGMI} {HOST_DCGMI}"


def state_text(**values: str | int) -> str:
    """SIMULATION: the text of STATE_FILE for the given keys (STATE_KEYS); tests write it on a host."""
    unknown = set(values) - set(STATE_KEYS)
    if unknown:
        raise ValueError(f"not simulation state keys: {sorted(unknown)}")
    return "# SIMULATION: test-only failure injection (provision sandbox)\n" + "".join(
        f"{key}={value}\n" for key, value in values.items())
