"""GPU health from ``nvidia-smi -q -x``: a pure parser and the rules that say what an operator must act on.

The input is NVIDIA's XML report (root ``<nvidia_smi_log>``, DTD ``nvsmi_device_v11.dtd`` /
``nvsmi_device_v12.dtd``; the command is ``provision.commands.gpu_health.query_xml``). The element
names differ across driver branches, and every branch prints ``N/A`` for what a GPU does not
support; the parser reads all of these spellings and turns ``N/A`` and missing elements into None
(never into 0 or "healthy"):

- ECC error counts: ``<ecc_errors><volatile|aggregate>`` holds ``<single_bit>``/``<double_bit>``
  blocks with a ``<total>`` in older drivers (R510 reports show it), or flat ``<dram_uncorrectable>``,
  ``<sram_uncorrectable>`` counters in newer ones, with ``<sram_uncorrectable>`` split into
  ``<sram_uncorrectable_parity>`` + ``<sram_uncorrectable_secded>`` in the newest (a 575.51.02 report shows it).
- ``<clocks_event_reasons>`` / ``<clocks_event_reason_*>`` (newer drivers) and the older
  ``<clocks_throttle_reasons>`` / ``<clocks_throttle_reason_*>``.
- ``<remapped_rows>`` is a plain ``N/A`` before Ampere; ``<retired_pages>`` may be ``N/A`` after it.
- ``<fabric>`` (``<state>``/``<status>``) exists only in newer drivers and says ``N/A`` where the GPU
  reports no NVSwitch fabric state (no NVSwitch, or a GPU generation that does not report it: on
  A100 HGX boards a stopped Fabric Manager is therefore not visible here, only to a CUDA workload).

Nothing here runs a command: ``parse`` takes the text, ``findings``/``problems``/``warnings`` take
what ``parse`` returned.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

NOT_AVAILABLE = {"", "n/a", "not supported", "[n/a]", "[not supported]", "unknown error", "none",
                 "requested functionality has been deprecated", "insufficient permissions"}

# Clock event (throttle) reasons that mean the hardware itself is slowing the GPU down: a warning.
HW_SLOWDOWN_REASONS = ("hw_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown", "sw_thermal_slowdown")

# Fabric states as nvidia-smi prints NVML's NVML_GPU_FABRIC_STATE_*: Not Started → In Progress → Completed.
FABRIC_COMPLETED = "Completed"


class GpuHealthParseError(ValueError):
    """The text is not an ``nvidia-smi -q -x`` report (nvidia-smi failed, or the output was cut off)."""


@dataclass(frozen=True)
class PcieLink:
    """PCIe link of one GPU. ``max_gen``/``max_width`` are what the GPU and its slot can do together
    (nvidia-smi's ``max_link_gen``/``max_link_width``); ``current_*`` what the link runs at now."""

    max_gen: int | None = None
    current_gen: int | None = None
    max_width: int | None = None
    current_width: int | None = None


@dataclass(frozen=True)
class GpuHealth:
    """One ``<gpu>`` of the report. None everywhere means "not reported" (N/A or absent), never "zero"."""

    index: int  # position in the report (nvidia-smi's order: PCI bus order)
    pci_bus_id: str  # the ``id`` attribute, e.g. 00000000:1B:00.0
    uuid: str | None = None
    product_name: str | None = None
    product_brand: str | None = None  # Tesla, NVIDIA, GeForce, Quadro, NVIDIA RTX, ...
    persistence_mode: bool | None = None
    ecc_enabled: bool | None = None  # <ecc_mode><current_ecc>
    volatile_correctable: int | None = None
    volatile_uncorrectable: int | None = None
    aggregate_correctable: int | None = None
    aggregate_uncorrectable: int | None = None
    retired_pages: int | None = None  # single-bit + double-bit retired page counts
    retired_pages_pending: bool | None = None  # <pending_retirement> or <pending_blacklist>
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remapping_pending: bool | None = None
    remapping_failed: bool | None = None
    pcie: PcieLink = PcieLink()
    clock_event_reasons: tuple[str, ...] = ()  # the Active ones, without prefix: gpu_idle, sw_power_cap, ...
    idle: bool | None = None  # the gpu_idle reason: True Active, False Not Active, None not reported
    performance_state: str | None = None  # P0 .. P12
    gpu_utilization: int | None = None  # percent
    fabric_state: str | None = None  # Not Started / In Progress / Completed; None when N/A
    fabric_status: str | None = None  # Success or NVML's error text; None when N/A

    @property
    def label(self) -> str:
        """How messages name the GPU: index, bus id and UUID (the UUID is what nvidia-smi -L prints)."""
        uuid = f", {self.uuid}" if self.uuid else ""
        return f"GPU {self.index} ({self.pci_bus_id}{uuid})"


@dataclass(frozen=True)
class HostGpuHealth:
    driver_version: str | None = None
    cuda_version: str | None = None  # the highest CUDA version the driver supports, e.g. "12.4"
    gpus: tuple[GpuHealth, ...] = ()


@dataclass(frozen=True)
class Finding:
    severity: Literal["fail", "warn"]
    gpu: str | None  # GpuHealth.label, None for the host as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.gpu}: {self.message}" if self.gpu else self.message


# ----------------------------------------------------------------------------------------- parsing
def _text(element: ET.Element | None) -> str | None:
    """The stripped text of an element; None when missing, empty or any N/A spelling."""
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    return None if text.lower() in NOT_AVAILABLE else text


def _find(parent: ET.Element | None, *paths: str) -> str | None:
    """The first of several spellings (paths) that has a value."""
    if parent is None:
        return None
    for path in paths:
        value = _text(parent.find(path))
        if value is not None:
            return value
    return None


def _int(value: str | None) -> int | None:
    """``16x`` → 16, ``4`` → 4, ``30 %`` → 30; None for None or anything else."""
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)\s*(?:x|%)?", value.strip(), flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


def _flag(value: str | None, yes: tuple[str, ...], no: tuple[str, ...]) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in yes:
        return True
    if lowered in no:
        return False
    return None


def _enabled(value: str | None) -> bool | None:
    return _flag(value, ("enabled", "on"), ("disabled", "off"))


def _yes(value: str | None) -> bool | None:
    return _flag(value, ("yes", "true", "active"), ("no", "false", "not active"))


def _sum(values: list[int | None]) -> int | None:
    """Sum of the reported values; None when none was reported."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _ecc_counts(block: ET.Element | None) -> tuple[int | None, int | None]:
    """(correctable, uncorrectable) of a ``<volatile>`` or ``<aggregate>`` block, in any driver's layout."""
    if block is None:
        return None, None
    single, double = block.find("single_bit"), block.find("double_bit")
    if single is not None or double is not None:  # up to R525: <single_bit>/<double_bit> with a <total>
        def total(part: ET.Element | None) -> int | None:
            if part is None:
                return None
            value = _int(_text(part.find("total")))
            if value is not None:
                return value
            return _sum([_int(_text(child)) for child in part])
        return total(single), total(double)
    # R530+: flat counters; R570+ splits the SRAM uncorrectable count into parity and SEC-DED
    sram_unc = _int(_text(block.find("sram_uncorrectable")))
    if sram_unc is None:
        sram_unc = _sum([_int(_text(block.find("sram_uncorrectable_parity"))),
                         _int(_text(block.find("sram_uncorrectable_secded")))])
    uncorrectable = _sum([sram_unc, _int(_text(block.find("dram_uncorrectable")))])
    correctable = _sum([_int(_text(block.find("sram_correctable"))), _int(_text(block.find("dram_correctable")))])
    return correctable, uncorrectable


def _clock_reasons(gpu: ET.Element) -> tuple[tuple[str, ...], bool | None]:
    """(the Active reasons without their prefix, the gpu_idle reason) from either spelling."""
    block = gpu.find("clocks_event_reasons")
    prefix = "clocks_event_reason_"
    if block is None:
        block, prefix = gpu.find("clocks_throttle_reasons"), "clocks_throttle_reason_"
    if block is None:
        return (), None
    active, idle = [], None
    for child in block:
        if not child.tag.startswith(prefix):
            continue
        name, state = child.tag[len(prefix):], _yes(_text(child))
        if name == "gpu_idle":
            idle = state
        if state:
            active.append(name)
    return tuple(active), idle


def _gpu(index: int, gpu: ET.Element) -> GpuHealth:
    ecc = gpu.find("ecc_errors")
    volatile_corr, volatile_unc = _ecc_counts(ecc.find("volatile") if ecc is not None else None)
    aggregate_corr, aggregate_unc = _ecc_counts(ecc.find("aggregate") if ecc is not None else None)

    retired = gpu.find("retired_pages")
    retired_count = _sum([_int(_find(retired, "multiple_single_bit_retirement/retired_count")),
                          _int(_find(retired, "double_bit_retirement/retired_count"))])
    pending = [_yes(_find(retired, "pending_retirement")), _yes(_find(retired, "pending_blacklist"))]
    retired_pending = True if True in pending else (False if False in pending else None)

    remap = gpu.find("remapped_rows")
    link = gpu.find("pci/pci_gpu_link_info")
    reasons, idle = _clock_reasons(gpu)
    fabric = gpu.find("fabric")
    return GpuHealth(
        index=index,
        pci_bus_id=gpu.get("id") or _find(gpu, "pci/pci_bus_id") or f"#{index}",
        uuid=_find(gpu, "uuid"),
        product_name=_find(gpu, "product_name"),
        product_brand=_find(gpu, "product_brand"),
        persistence_mode=_enabled(_find(gpu, "persistence_mode")),
        ecc_enabled=_enabled(_find(gpu, "ecc_mode/current_ecc")),
        volatile_correctable=volatile_corr,
        volatile_uncorrectable=volatile_unc,
        aggregate_correctable=aggregate_corr,
        aggregate_uncorrectable=aggregate_unc,
        retired_pages=retired_count,
        retired_pages_pending=retired_pending,
        remapped_rows_correctable=_int(_find(remap, "remapped_row_corr")),
        remapped_rows_uncorrectable=_int(_find(remap, "remapped_row_unc")),
        remapping_pending=_yes(_find(remap, "remapped_row_pending")),
        remapping_failed=_yes(_find(remap, "remapped_row_failure")),
        pcie=PcieLink(
            max_gen=_int(_find(link, "pcie_gen/max_link_gen")),
            current_gen=_int(_find(link, "pcie_gen/current_link_gen")),
            max_width=_int(_find(link, "link_widths/max_link_width")),
            current_width=_int(_find(link, "link_widths/current_link_width")),
        ),
        clock_event_reasons=reasons,
        idle=idle,
        performance_state=_find(gpu, "performance_state"),
        gpu_utilization=_int(_find(gpu, "utilization/gpu_util")),
        fabric_state=_find(fabric, "state"),
        fabric_status=_find(fabric, "status"),
    )


def parse(text: str) -> HostGpuHealth:
    """``nvidia-smi -q -x`` output → HostGpuHealth. Raises GpuHealthParseError when it is not that report."""
    if not isinstance(text, str) or not text.strip():
        raise GpuHealthParseError("nvidia-smi -q -x printed nothing")
    if "<!ENTITY" in text:  # nvidia-smi never declares entities; refuse entity-expansion tricks outright
        raise GpuHealthParseError("nvidia-smi -q -x output declares XML entities: not nvidia-smi's report")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        first = text.strip().splitlines()[0][:200]
        raise GpuHealthParseError(f"nvidia-smi -q -x output is not XML ({exc}); it starts with: {first!r}") from None
    if root.tag != "nvidia_smi_log":
        raise GpuHealthParseError(f"nvidia-smi -q -x output has root <{root.tag}>, not <nvidia_smi_log>")
    return HostGpuHealth(
        driver_version=_find(root, "driver_version"),
        cuda_version=_find(root, "cuda_version"),
        gpus=tuple(_gpu(i, gpu) for i, gpu in enumerate(root.findall("gpu"))),
    )


# ------------------------------------------------------------------------------------------- rules
def gpu_findings(gpu: GpuHealth) -> list[Finding]:
    """What one GPU's health says an operator must act on ("fail") or should look at ("warn").

    The rules:

    - uncorrectable ECC errors: volatile (since the driver loaded) or aggregate (over the GPU's life) > 0 → fail;
    - row remapping failed → fail (the GPU is out of spare rows: NVIDIA's guidance is to replace it);
      row remapping pending → fail (takes effect only after a GPU reset or reboot);
    - retired pages pending → fail (same: a GPU reset or reboot retires them);
    - PCIe link below its maximum (``max_link_gen``/``max_link_width`` are what the GPU and the slot can
      do together): nvidia-smi documents that the current generation and width "may be reduced when the
      GPU is not in use" (power saving), so the rule depends on whether the GPU is known busy, i.e. its
      ``gpu_idle`` clock event reason is reported "Not Active":
        - busy: generation or width below the maximum → fail;
        - idle or not reported: width below the maximum → warn (re-check under load); a lower generation
          → nothing (GPUs drop to gen 1 at idle all the time);
    - NVSwitch fabric (where nvidia-smi reports a fabric state, i.e. not N/A): a state other than
      Completed → fail (Fabric Manager is not running or has not initialised the fabric; CUDA then fails
      with "system not yet initialized"); Completed with a status other than Success → fail;
    - persistence mode off → warn (the driver tears down and re-initialises the GPU for every client:
      slow first calls, lost state; nvidia-persistenced keeps it loaded);
    - hardware slowdown reasons active (hw_slowdown, hw_thermal_slowdown, hw_power_brake_slowdown,
      sw_thermal_slowdown) → warn.
    """
    out: list[Finding] = []

    def fail(message: str) -> None:
        out.append(Finding("fail", gpu.label, message))

    def warn(message: str) -> None:
        out.append(Finding("warn", gpu.label, message))

    if gpu.volatile_uncorrectable:
        fail(f"{gpu.volatile_uncorrectable} uncorrectable ECC error(s) since the driver was loaded (volatile): "
             "drain the GPU, reset it (nvidia-smi -r) or reboot, and replace it if they come back")
    if gpu.aggregate_uncorrectable:
        fail(f"{gpu.aggregate_uncorrectable} uncorrectable ECC error(s) over the GPU's lifetime (aggregate): "
             "check that the affected memory was retired/remapped (nvidia-smi -q -d PAGE_RETIREMENT,ROW_REMAPPER) "
             "and replace the GPU if errors keep being added")
    if gpu.remapping_failed:
        fail("row remapping failed (no spare rows left): the GPU must be replaced")
    if gpu.remapping_pending:
        fail("a row remapping is pending: it takes effect after a GPU reset (nvidia-smi -r) or a reboot")
    if gpu.retired_pages_pending:
        fail("page retirement is pending: it takes effect after a GPU reset (nvidia-smi -r) or a reboot")

    link, busy = gpu.pcie, gpu.idle is False
    if link.max_width is not None and link.current_width is not None and link.current_width < link.max_width:
        if busy:
            fail(f"PCIe link runs at x{link.current_width} while the GPU is busy, below its x{link.max_width} "
                 "maximum: reseat the GPU or check its riser/slot")
        else:
            warn(f"PCIe link runs at x{link.current_width}, below its x{link.max_width} maximum, while the GPU is "
                 "idle (or its idle state is not reported): re-check under load")
    if link.max_gen is not None and link.current_gen is not None and link.current_gen < link.max_gen and busy:
        fail(f"PCIe link runs at gen {link.current_gen} while the GPU is busy, below its gen {link.max_gen} maximum: "
             "check the slot's PCIe setting in the BIOS, the riser and the seating")

    if gpu.fabric_state is not None and gpu.fabric_state != FABRIC_COMPLETED:
        fail(f"NVSwitch fabric state is {gpu.fabric_state!r}, not Completed: Fabric Manager is not running or has "
             "not finished (systemctl enable --now nvidia-fabricmanager; its version must match the driver's); "
             "CUDA fails with 'system not yet initialized' until it is Completed")
    elif (gpu.fabric_state == FABRIC_COMPLETED and gpu.fabric_status is not None
          and gpu.fabric_status.lower() != "success"):
        fail(f"NVSwitch fabric registration finished with status {gpu.fabric_status!r}: see the Fabric Manager log "
             "(/var/log/fabricmanager.log)")

    if gpu.persistence_mode is False:
        warn("persistence mode is off: enable nvidia-persistenced (systemctl enable --now nvidia-persistenced) so the "
             "driver keeps the GPU initialised between jobs")
    slowed = [r for r in gpu.clock_event_reasons if r in HW_SLOWDOWN_REASONS]
    if slowed:
        warn("clocks are being slowed down by " + ", ".join(slowed) + ": check cooling and power delivery")
    return out


def findings(health: HostGpuHealth) -> list[Finding]:
    """Every GPU's findings, in report order."""
    return [finding for gpu in health.gpus for finding in gpu_findings(gpu)]


def problems(health: HostGpuHealth) -> list[str]:
    """What an operator must act on before the host runs GPU jobs (the "fail" findings), one line each."""
    return [str(f) for f in findings(health) if f.severity == "fail"]


def warnings(health: HostGpuHealth) -> list[str]:
    """What an operator should look at, but that does not make GPU jobs fail (the "warn" findings)."""
    return [str(f) for f in findings(health) if f.severity == "warn"]
