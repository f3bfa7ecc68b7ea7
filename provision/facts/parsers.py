"""Pure parsers, one per fact: each takes the text a command printed and returns plain data.

No I/O here: the text comes from :data:`provision.facts.script.FACTS_SCRIPT` (split by
:func:`provision.facts.script.split_sections`) or from a test fixture. Each docstring names the
command whose output the function parses. Parsers never raise on odd input: they return None
(or an empty list) for what they cannot read.
"""

from __future__ import annotations

from provision.redaction import redact_value

import csv
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

NVIDIA_VENDOR = "10de"

# uname -m -> Debian architecture name (dpkg --print-architecture).
_UNAME_TO_DPKG_ARCH: dict[str, str] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "armv6l": "armel",
    "i386": "i386",
    "i486": "i386",
    "i586": "i386",
    "i686": "i386",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- small helpers


def first_line(text: str | None) -> str | None:
    """The first non-blank line of TEXT, stripped; None when there is none."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return None


def _hex_field(value: str) -> str | None:
    """``0x10de`` / ``10DE`` -> ``10de``; None when VALUE is not hexadecimal."""
    value = value.strip().lower()
    if value.startswith("0x"):
        value = value[2:]
    if not value or not all(c in "0123456789abcdef" for c in value):
        return None
    return value


def _int_or_none(value: str) -> int | None:
    """``"81559"`` -> 81559; None for ``[N/A]``, ``N/A`` or anything else that is no integer."""
    try:
        return int(value.strip())
    except ValueError:
        return None


def normalize_pci_address(address: str) -> str | None:
    """Any PCI address form -> ``0000:18:00.0`` (4-digit domain, lower case).

    Accepts nvidia-smi's ``00000000:1B:00.0``, sysfs/lspci -D's ``0000:1b:00.0`` and lspci's
    short ``1b:00.0``. None when ADDRESS is not a PCI address.
    """
    m = re.fullmatch(r"(?:([0-9A-Fa-f]{1,8}):)?([0-9A-Fa-f]{1,2}):([0-9A-Fa-f]{1,2})\.([0-7])", address.strip())
    if not m:
        return None
    domain, bus, dev, fn = m.groups()
    return f"{int(domain or '0', 16):04x}:{int(bus, 16):02x}:{int(dev, 16):02x}.{fn}"


# --------------------------------------------------------------------------- os / kernel / cpu / memory


def parse_env_file(text: str) -> dict[str, str]:
    """Parse ``KEY=value`` lines with shell quoting (the /etc/os-release format)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        if not _ENV_KEY.match(key):
            continue
        try:
            value = " ".join(shlex.split(raw))
        except ValueError:  # unbalanced quotes: take it as it stands
            value = raw.strip().strip("\"'")
        fields[key] = value
    return fields


def parse_os_release(text: str) -> dict[str, str | None]:
    """Parse /etc/os-release into ``{id, version_id, codename, pretty_name}``.

    ``codename`` is ``UBUNTU_CODENAME`` when set, else ``VERSION_CODENAME``; absent keys are None.
    """
    fields = parse_env_file(text)
    return {
        "id": fields.get("ID") or None,
        "version_id": fields.get("VERSION_ID") or None,
        "codename": fields.get("UBUNTU_CODENAME") or fields.get("VERSION_CODENAME") or None,
        "pretty_name": fields.get("PRETTY_NAME") or None,
    }


def parse_arch(dpkg_arch: str | None, uname_m: str | None) -> str | None:
    """The Debian architecture: ``dpkg --print-architecture`` output, else ``uname -m`` mapped.

    Pass None for a command that is missing or failed. An unknown ``uname -m`` value is
    returned as it stands.
    """
    arch = first_line(dpkg_arch)
    if arch:
        return arch
    machine = first_line(uname_m)
    if not machine:
        return None
    return _UNAME_TO_DPKG_ARCH.get(machine, machine)


def parse_uname_r(text: str) -> str | None:
    """Parse ``uname -r`` (the kernel release)."""
    return first_line(text)


def parse_nproc(text: str) -> int | None:
    """Parse ``nproc`` (or ``getconf _NPROCESSORS_ONLN``): the number of usable CPUs."""
    line = first_line(text)
    return _int_or_none(line) if line else None


def parse_meminfo(text: str) -> int | None:
    """Parse /proc/meminfo: ``MemTotal`` in MiB (kB // 1024); None when absent."""
    for line in text.splitlines():
        m = re.match(r"MemTotal:\s*(\d+)\s*kB", line)
        if m:
            return int(m.group(1)) // 1024
    return None


def parse_flag(text: str) -> bool:
    """Parse a yes/no flag section of the facts script (e.g. ``systemd``, ``reboot_required``)."""
    return first_line(text) == "yes"


# --------------------------------------------------------------------------- cloud-init / secure boot


def parse_cloud_init_status(text: str) -> str:
    """Parse ``cloud-init status``: ``status: done`` -> ``"done"``.

    Values seen: done, running, disabled, error, "not started" (older: "not run"). Lines other
    than ``status:`` (stderr warnings, ``--wait`` dots) are ignored. ``"unknown"`` when no status
    line is found; the caller maps a missing cloud-init to None.
    """
    status = None
    for line in text.splitlines():
        m = re.match(r"^\s*\.*\s*status:\s*(.+?)\s*$", line)
        if m:
            status = m.group(1)
    return status or "unknown"


def parse_efivar_hex(text: str) -> bytes:
    """Parse ``od -An -tx1 -v FILE`` output (space-separated hex bytes) into bytes."""
    out = bytearray()
    for token in text.split():
        value = _hex_field(token)
        if value is None or len(value) > 2:
            return bytes(out)
        out.append(int(value, 16))
    return bytes(out)


def parse_secure_boot(mokutil_text: str | None, efivar_hex: str | None) -> bool | None:
    """Secure Boot state from ``mokutil --sb-state``, else from the SecureBoot EFI variable.

    MOKUTIL_TEXT: ``SecureBoot enabled`` / ``SecureBoot disabled`` (other texts, e.g. "EFI
    variables are not supported on this system", are no answer). EFIVAR_HEX: ``od -An -tx1`` of
    efivarfs' ``SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c``: 4 attribute bytes, then the
    value byte (1 enabled, 0 disabled). None when neither answers (not EFI, or unknown).
    """
    line = first_line(mokutil_text)
    if line is not None:
        if line.lower().startswith("secureboot enabled"):
            return True
        if line.lower().startswith("secureboot disabled"):
            return False
    if efivar_hex:
        data = parse_efivar_hex(efivar_hex)
        if len(data) >= 5 and data[4] in (0, 1):
            return data[4] == 1
    return None


# --------------------------------------------------------------------------- nvidia-smi


def parse_pci_device_id(value: str) -> str | None:
    """nvidia-smi's ``pci.device_id`` (``0x233010DE``: device high 16 bits, vendor low) -> ``10de:2330``."""
    raw = _hex_field(value)
    if raw is None or len(raw) > 8:
        return None
    combined = int(raw, 16)
    return f"{combined & 0xFFFF:04x}:{combined >> 16:04x}"


def parse_nvidia_smi_query(csv_text: str) -> list[dict[str, Any]]:
    """Parse ``nvidia-smi --query-gpu=index,name,uuid,memory.total,pci.bus_id,pci.device_id,
    driver_version --format=csv,noheader,nounits``.

    One dict per GPU: ``{index, name, uuid, memory_mib, pci_id, pci_bus_id, driver_version}``;
    ``[N/A]`` values become None. Lines that are not 7 fields (error lines) are skipped.
    """
    gpus: list[dict[str, Any]] = []
    for row in csv.reader(csv_text.splitlines(), skipinitialspace=True):
        if len(row) != 7:
            continue
        index, name, uuid, memory, bus_id, device_id, driver = (field.strip() for field in row)
        idx = _int_or_none(index)
        if idx is None:
            continue
        gpus.append(
            {
                "index": idx,
                "name": name,
                "uuid": uuid if uuid.startswith("GPU-") or uuid.startswith("MIG-") else None,
                "memory_mib": _int_or_none(memory),
                "pci_id": parse_pci_device_id(device_id),
                "pci_bus_id": normalize_pci_address(bus_id),
                "driver_version": None if "N/A" in driver else driver,
            }
        )
    return gpus


def parse_nvidia_smi_header(text: str) -> str | None:
    """The CUDA version from plain ``nvidia-smi``'s header (``CUDA Version: 12.2``)."""
    m = re.search(r"CUDA Version:\s*([0-9]+(?:\.[0-9]+)*)", text)
    return m.group(1) if m else None


def parse_nvidia_smi_driver(text: str) -> str | None:
    """The driver version from plain ``nvidia-smi``'s header (``Driver Version: 535.129.03``)."""
    m = re.search(r"Driver Version:\s*([0-9][0-9.]*)", text)
    return m.group(1) if m else None


def parse_nvidia_smi_error(text: str, rc: int | None) -> str:
    """The error of a failed ``nvidia-smi`` run: its first non-blank output line.

    E.g. "Failed to initialize NVML: Driver/library version mismatch", "No devices were found",
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. ...". When it
    printed nothing: a line naming the timeout (rc 124/137) or the exit status; RC None (output
    cut off inside the section) says so.
    """
    if rc is None:  # the facts output ended inside the section: TEXT is partial
        return "nvidia-smi output was cut off"
    line = first_line(text)
    if line:
        return line
    if rc in (124, 137):
        return "nvidia-smi timed out"
    return f"nvidia-smi exited with status {rc}"


# --------------------------------------------------------------------------- PCI


def parse_pci_devices(text: str) -> list[dict[str, str]]:
    """Parse the facts script's ``pci_devices`` section (from /sys/bus/pci/devices/*).

    Each line ``0000:18:00.0 0x10de 0x2330 0x030200`` -> ``{address, vendor, device, class}``
    with lower-case hex and no ``0x`` (``{"address": "0000:18:00.0", "vendor": "10de",
    "device": "2330", "class": "030200"}``), sorted by address. Malformed lines are skipped.
    """
    devices: list[dict[str, str]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        address = normalize_pci_address(parts[0])
        vendor, device, cls = (_hex_field(p) for p in parts[1:])
        if address is None or vendor is None or device is None or cls is None:
            continue
        devices.append({"address": address, "vendor": vendor, "device": device, "class": cls})
    return sorted(devices, key=lambda d: d["address"])


# ADDRESS CLASS-NAME [CCCC]: DEVICE-NAME [VVVV:DDDD] (rev NN)
_LSPCI_NN = re.compile(
    r"^(\S+)\s+.*?\[[0-9a-fA-F]{4}\]:\s+(.*)\s+\[[0-9a-fA-F]{4}:[0-9a-fA-F]{4}\](?:\s+\(.*\))?\s*$"
)


def parse_lspci_names(text: str) -> dict[str, str]:
    """Parse ``lspci -D -nn`` lines into ``{address: name}``.

    ``0000:18:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2330] (rev a1)``
    -> ``{"0000:18:00.0": "NVIDIA Corporation GH100 [H100 SXM5 80GB]"}``.
    """
    names: dict[str, str] = {}
    for line in text.splitlines():
        m = _LSPCI_NN.match(line)
        if not m:
            continue
        address = normalize_pci_address(m.group(1))
        if address:
            names[address] = m.group(2).strip()
    return names


def is_nvidia_gpu(device: Mapping[str, str]) -> bool:
    """An NVIDIA display controller: vendor 10de, PCI class 0x03xxxx (VGA or 3D controller)."""
    return device["vendor"] == NVIDIA_VENDOR and device["class"].zfill(6).startswith("03")


def is_nvswitch(device: Mapping[str, str]) -> bool:
    """An NVIDIA NVSwitch: vendor 10de, PCI class 0x0680xx (bridge, other)."""
    return device["vendor"] == NVIDIA_VENDOR and device["class"].zfill(6).startswith("0680")


def gpus_from_pci(devices: Iterable[Mapping[str, str]], lspci_names: Mapping[str, str]) -> list[dict[str, Any]]:
    """GPU dicts from the PCI listing when nvidia-smi cannot answer.

    Index by bus order; name from ``lspci -nn`` when known, else ``NVIDIA [10de:XXXX]``; uuid
    and memory unknown (None).
    """
    found = sorted((d for d in devices if is_nvidia_gpu(d)), key=lambda d: d["address"])
    return [
        {
            "index": index,
            "name": lspci_names.get(d["address"]) or f"NVIDIA [{d['vendor']}:{d['device']}]",
            "uuid": None,
            "memory_mib": None,
            "pci_id": f"{d['vendor']}:{d['device']}",
            "pci_bus_id": d["address"],
        }
        for index, d in enumerate(found)
    ]


def parse_nvswitch_dev(text: str) -> list[str]:
    """Parse the facts script's ``nvswitch_dev`` section (``/dev/nvidia-nvswitch*`` paths).

    Keeps the numbered switch nodes (``/dev/nvidia-nvswitch0``...); the control node
    ``/dev/nvidia-nvswitchctl`` alone says nothing about a switch being present.
    """
    return [line.strip() for line in text.splitlines() if re.fullmatch(r"/dev/nvidia-nvswitch\d+", line.strip())]


def has_nvswitch(devices: Iterable[Mapping[str, str]], dev_nodes: Iterable[str]) -> bool:
    """True when a PCI NVSwitch bridge is present or a ``/dev/nvidia-nvswitch*`` node exists."""
    return any(is_nvswitch(d) for d in devices) or any(True for _ in dev_nodes)


# --------------------------------------------------------------------------- docker


def parse_docker_version_line(text: str) -> str | None:
    """Parse ``docker --version`` / ``dockerd --version``.

    ``Docker version 20.10.24+dfsg1, build 297e128`` -> ``20.10.24+dfsg1``.
    """
    m = re.search(r"\bversion\s+v?([0-9][^\s,]*)", text, re.IGNORECASE)
    return m.group(1) if m else None


def parse_docker_server_version(text: str) -> str | None:
    """Parse ``docker version --format '{{.Server.Version}}'`` (exit 0 only): the server version."""
    line = first_line(text)
    if not line or line == "<no value>" or not line[0].isdigit():
        return None
    return line


def parse_docker_runtimes(text: str) -> list[str] | None:
    """Parse ``docker info --format '{{json .Runtimes}}'``: the sorted runtime names.

    ``{"io.containerd.runc.v2":{"path":"runc"},"runc":{"path":"runc"}}`` ->
    ``["io.containerd.runc.v2", "runc"]``. None when no JSON object is found (daemon
    unreachable prints ``null`` and an error).
    """
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return sorted(value)
    return None


def parse_daemon_json(text: str) -> dict[str, Any]:
    """Parse /etc/docker/daemon.json.

    A JSON object -> that dict; empty file -> ``{}`` (dockerd accepts it); anything else ->
    ``{"_invalid": "<error text>"}``.
    """
    body = text.lstrip("\ufeff")
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError as exc:
        return {"_invalid": str(exc)}
    if not isinstance(value, dict):
        return {"_invalid": f"top-level value is a {type(value).__name__}, not an object"}
    return value


def runtimes_from_daemon_json(daemon_json: Mapping[str, Any] | None) -> list[str]:
    """Runtime names dockerd would offer per daemon.json: its ``runtimes`` keys plus ``runc``, sorted."""
    names = {"runc"}
    runtimes = (daemon_json or {}).get("runtimes")
    if isinstance(runtimes, dict):
        names.update(str(k) for k in runtimes)
    return sorted(names)


def parse_systemctl_is_active(text: str) -> bool:
    """Parse ``systemctl is-active UNIT``: True for ``active`` only."""
    return first_line(text) == "active"


def parse_pids(text: str) -> list[int]:
    """Parse the facts script's process sections (``dockerd_processes``): one PID a line."""
    return [int(line) for line in (line.strip() for line in text.splitlines()) if line.isdigit()]


def parse_docker(
    *,
    client_version: str | None,
    dockerd_version: str | None,
    server_version: str | None,
    runtimes_json: str | None,
    systemd: bool,
    is_active: str | None,
    dockerd_pids: str | None,
    daemon_json: str | None,
    daemon_json_error: str | None = None,
) -> dict[str, Any] | None:
    """Combine the docker sections into ``{version, running, runtimes, daemon_json}``.

    Each argument is the text of a section that ran and exited 0, or None (missing, failed;
    CLIENT_VERSION and DOCKERD_VERSION are "" when installed but failing):
    CLIENT_VERSION ``docker --version``; DOCKERD_VERSION ``dockerd --version``; SERVER_VERSION
    ``docker version --format {{.Server.Version}}``; RUNTIMES_JSON ``docker info --format
    '{{json .Runtimes}}'``; IS_ACTIVE ``systemctl is-active docker``; DOCKERD_PIDS the PIDs of
    dockerd processes; DAEMON_JSON the content of /etc/docker/daemon.json, DAEMON_JSON_ERROR the
    error when it exists but cannot be read. None when neither docker nor dockerd is installed.
    """
    if client_version is None and dockerd_version is None:
        return None
    version = (
        (parse_docker_server_version(server_version) if server_version is not None else None)
        or (parse_docker_version_line(dockerd_version) if dockerd_version is not None else None)
        or (parse_docker_version_line(client_version) if client_version is not None else None)
    )
    if systemd:
        running = parse_systemctl_is_active(is_active or "")
    else:
        running = bool(parse_pids(dockerd_pids or ""))
    config: dict[str, Any] | None
    if daemon_json is not None:
        config = parse_daemon_json(daemon_json)
    elif daemon_json_error is not None:
        config = {"_unreadable": daemon_json_error}
    else:
        config = None
    runtimes = parse_docker_runtimes(runtimes_json) if runtimes_json is not None else None
    if runtimes is None:
        runtimes = runtimes_from_daemon_json(config if config and "_invalid" not in config else None)
    # facts are shown (--json, tables): proxy credentials, registry auth and the like never are
    return {"version": version, "running": running, "runtimes": runtimes, "daemon_json": redact_value(config)}
