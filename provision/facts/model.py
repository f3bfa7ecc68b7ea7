"""Turn the facts script's whole output into the facts dict (``provision facts --json``).

The dict's keys, in this order::

    os, arch, kernel, cpus, memory_mib, systemd, cloud_init, reboot_required, secure_boot,
    gpus, nvswitch, nvidia, nvidia_error, docker

See :func:`parse_facts`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provision.facts import parsers as p
from provision.facts.script import Section, split_sections

FACT_KEYS: tuple[str, ...] = (
    "os",
    "arch",
    "kernel",
    "cpus",
    "memory_mib",
    "systemd",
    "cloud_init",
    "reboot_required",
    "secure_boot",
    "gpus",
    "nvswitch",
    "nvidia",
    "nvidia_error",
    "docker",
)


def _ok(sections: Mapping[str, Section], name: str) -> str | None:
    """The text of section NAME when its command ran and exited 0, else None."""
    section = sections.get(name)
    return section.text if section is not None and section.ok else None


def _installed(sections: Mapping[str, Section], name: str) -> bool:
    """True when section NAME came and its command (or file) exists on the host."""
    section = sections.get(name)
    return section is not None and not section.missing


def _installed_text(sections: Mapping[str, Section], name: str) -> str | None:
    """Section NAME's text when its command exited 0, "" when it exists but failed, None when missing."""
    if not _installed(sections, name):
        return None
    return _ok(sections, name) or ""


def _os(sections: Mapping[str, Section]) -> dict[str, str | None]:
    """The ``os`` fact from the ``os_release`` section."""
    return p.parse_os_release(_ok(sections, "os_release") or "")


def _cloud_init(sections: Mapping[str, Section]) -> str | None:
    """The ``cloud_init`` fact: None when cloud-init is absent; it exits non-zero on error/degraded."""
    section = sections.get("cloud_init")
    if section is None or section.missing:
        return None
    return p.parse_cloud_init_status(section.text)


def _nvidia(sections: Mapping[str, Section]) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None, str | None]:
    """From nvidia-smi: (GPUs, ``nvidia`` fact, ``nvidia_error`` fact).

    GPUs is None when nvidia-smi is missing or failed (the caller falls back to PCI).
    """
    query = sections.get("nvidia_smi_query")
    if query is None or query.missing:
        return None, None, None
    if not query.ok:
        return None, None, p.parse_nvidia_smi_error(query.text, query.rc)
    rows = p.parse_nvidia_smi_query(query.text)
    header = _ok(sections, "nvidia_smi") or ""
    driver = next((r["driver_version"] for r in rows if r["driver_version"]), None)
    nvidia = {
        "driver": driver or p.parse_nvidia_smi_driver(header),
        "cuda": p.parse_nvidia_smi_header(header),
    }
    gpus = [{k: r[k] for k in ("index", "name", "uuid", "memory_mib", "pci_id", "pci_bus_id")} for r in rows]
    return gpus, nvidia, None


def _fill_pci_ids(gpus: list[dict[str, Any]], devices: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Fill a GPU's missing ``pci_id`` from the PCI listing, matched by bus id."""
    by_address = {d["address"]: d for d in devices}
    for gpu in gpus:
        device = by_address.get(gpu["pci_bus_id"] or "")
        if gpu["pci_id"] is None and device is not None:
            gpu["pci_id"] = f"{device['vendor']}:{device['device']}"
    return gpus


def _docker(sections: Mapping[str, Section], systemd: bool) -> dict[str, Any] | None:
    """The ``docker`` fact from the docker sections."""
    daemon_json = sections.get("daemon_json")
    daemon_json_error = None
    if daemon_json is not None and not daemon_json.ok and not daemon_json.missing:
        daemon_json_error = p.first_line(daemon_json.text) or f"cat exited with status {daemon_json.rc}"
    return p.parse_docker(
        client_version=_installed_text(sections, "docker_client_version"),
        dockerd_version=_installed_text(sections, "dockerd_version"),
        server_version=_ok(sections, "docker_server_version"),
        runtimes_json=_ok(sections, "docker_runtimes"),
        systemd=systemd,
        is_active=(sections["docker_active"].text if "docker_active" in sections else None),
        dockerd_pids=_ok(sections, "dockerd_processes"),
        daemon_json=_ok(sections, "daemon_json"),
        daemon_json_error=daemon_json_error,
    )


def facts_from_sections(sections: Mapping[str, Section]) -> dict[str, Any]:
    """Build the facts dict from split sections (see :func:`parse_facts`)."""
    systemd = p.parse_flag(_ok(sections, "systemd") or "")
    devices = p.parse_pci_devices(_ok(sections, "pci_devices") or "")
    smi_gpus, nvidia, nvidia_error = _nvidia(sections)
    if smi_gpus:
        gpus = _fill_pci_ids(smi_gpus, devices)
    else:
        gpus = p.gpus_from_pci(devices, p.parse_lspci_names(_ok(sections, "lspci_nvidia") or ""))
    mokutil = sections.get("mokutil")
    facts: dict[str, Any] = {
        "os": _os(sections),
        "arch": p.parse_arch(_ok(sections, "arch_dpkg"), _ok(sections, "uname_m")),
        "kernel": p.parse_uname_r(_ok(sections, "uname_r") or ""),
        "cpus": p.parse_nproc(_ok(sections, "nproc") or ""),
        "memory_mib": p.parse_meminfo(_ok(sections, "meminfo") or ""),
        "systemd": systemd,
        "cloud_init": _cloud_init(sections),
        "reboot_required": p.parse_flag(_ok(sections, "reboot_required") or ""),
        # mokutil --sb-state exits non-zero on "EFI variables are not supported": pass its text anyway.
        "secure_boot": p.parse_secure_boot(
            mokutil.text if mokutil is not None and not mokutil.missing else None,
            _ok(sections, "secureboot_efivar"),
        ),
        "gpus": gpus,
        "nvswitch": p.has_nvswitch(devices, p.parse_nvswitch_dev(_ok(sections, "nvswitch_dev") or "")),
        "nvidia": nvidia,
        "nvidia_error": nvidia_error,
        "docker": _docker(sections, systemd),
    }
    assert tuple(facts) == FACT_KEYS
    return facts


def parse_facts(output: str) -> dict[str, Any]:
    """Parse the whole output of :data:`provision.facts.script.FACTS_SCRIPT` into the facts dict.

    A plain JSON-able dict with the keys of :data:`FACT_KEYS`, in that order. Sections that are
    missing (truncated output) count as commands that did not answer.
    """
    return facts_from_sections(split_sections(output))
