"""SIMULATION: the fake NVIDIA GPU stack of the sandbox (there is NO GPU on this machine).

The files of this folder are the payload of the simulated NVIDIA packages (nvidia_repo.py) and of
simulated GPU hosts (hosts labelled io.provision.sandbox.gpu=simulated):

  nvidia-smi                     fake nvidia-smi (POSIX sh); GPUs listed in /etc/provision-sandbox/fake-gpu/gpus
  nvidia-container-runtime-hook  fake OCI prestart hook: injects the fake nvidia-smi into --gpus containers
  nvidia-container-runtime       runc under the NVIDIA runtime's name
  nvidia-container-cli           fake libnvidia-container CLI (--version, info)
  nvidia_ctk.py                  stand-in nvidia-ctk (runtime configure, cdi generate/list)

`install_host` puts the fake nvidia-smi and the GPU list on a running host container.
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
SHARE_DIR = "/usr/local/share/fake-gpu"
HOST_SMI = "/usr/bin/nvidia-smi"
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
    SHARE_DIR (for the hook), and the GPU list (written only when missing, so tests may change it)."""
    smi = source("nvidia-smi").encode()
    container.put_archive("/", _tar({
        HOST_SMI: (smi, 0o755),
        f"{SHARE_DIR}/nvidia-smi": (smi, 0o755),
        f"{SHARE_DIR}/default-gpus": (gpus_file_text(default_gpus(host)).encode(), 0o644),
    }))
    unit = ("[Unit]\nDescription=SIMULATION: the simulated GPUs as PCI devices (provision sandbox)\n"
            "After=local-fs.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart={FAKE_PCI}\n\n[Install]\nWantedBy=multi-user.target\n")
    container.put_archive("/", _tar({
        FAKE_PCI: (source("fake-pci").encode(), 0o755),
        f"/etc/systemd/system/{FAKE_PCI_UNIT}": (unit.encode(), 0o644),
    }))
    code, out = container.exec_run(["sh", "-c", f"([ -e {GPUS_FILE} ] || install -D -m 0644 {SHARE_DIR}/default-gpus {GPUS_FILE}) "
                                                f"&& systemctl daemon-reload && systemctl enable --now {FAKE_PCI_UNIT}"])
    if code != 0:
        from provision.errors import EnvironmentProblem

        raise EnvironmentProblem(f"could not set up the simulated GPU on {host}: {out.decode(errors='replace').strip()}")
