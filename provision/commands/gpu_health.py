"""Command lines that read a GPU host's health and topology (issue 14): nvidia-smi's XML report and CSV
query, its topology matrix, and DCGM's discovery and level-1 diagnostics. Pure builders: argv lists,
no I/O. ``provision.facts.gpu_health`` parses the XML report; ``provision.executor.base.as_shell`` (or
``argv.join``) turns a list into the one string an executor runs.
"""

from __future__ import annotations

from provision.commands.argv import UnsafeValue, args

# The --query-gpu fields provision's facts script reads (provision/commands/probes.py, parsed by
# provision.facts.parsers), in that order: keep the two in step.
FACT_QUERY_FIELDS = ("index", "name", "uuid", "memory.total", "pci.bus_id", "pci.device_id", "driver_version")

# Health fields for a quick CSV view (documented in `nvidia-smi --help-query-gpu`).
HEALTH_QUERY_FIELDS = ("index", "uuid", "persistence_mode", "ecc.mode.current",
                       "ecc.errors.uncorrected.volatile.total", "ecc.errors.uncorrected.aggregate.total",
                       "pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current", "pcie.link.width.max")

DCGM_DIAG_LEVELS = (1, 2, 3, 4)


def query_xml() -> list[str]:
    """The full report as XML (``<nvidia_smi_log>``), parsed by provision.facts.gpu_health.parse."""
    return ["nvidia-smi", "-q", "-x"]


def query_gpu(fields: tuple[str, ...] | list[str] = FACT_QUERY_FIELDS, *, units: bool = False) -> list[str]:
    """``nvidia-smi --query-gpu=F1,F2,... --format=csv,noheader[,nounits]``: one CSV line per GPU.

    Field names are nvidia-smi's (``nvidia-smi --help-query-gpu``): letters, digits, ``.`` and ``_``;
    anything else is refused (a comma would split the list, a space or option would change the command).
    """
    fields = list(fields)
    if not fields:
        raise UnsafeValue("nvidia-smi --query-gpu needs at least one field")
    for field in fields:
        if not isinstance(field, str) or not field or not all(c.isalnum() or c in "._" for c in field) \
                or not field[0].isalpha():
            raise UnsafeValue(f"not an nvidia-smi --query-gpu field name: {field!r}")
    fmt = "csv,noheader" if units else "csv,noheader,nounits"
    return args(["nvidia-smi", f"--query-gpu={','.join(fields)}", f"--format={fmt}"], "query field")


def list_gpus() -> list[str]:
    """``nvidia-smi -L``: one line per GPU (and MIG device) with its UUID."""
    return ["nvidia-smi", "-L"]


def topology_matrix() -> list[str]:
    """``nvidia-smi topo -m``: the GPU/NIC interconnect matrix (NV#, PIX, PHB, SYS ...) and CPU/NUMA affinity."""
    return ["nvidia-smi", "topo", "-m"]


def dcgm_discovery() -> list[str]:
    """``dcgmi discovery -l``: the GPUs (and NVSwitches) DCGM's host engine sees."""
    return ["dcgmi", "discovery", "-l"]


def dcgm_diag(level: int = 1) -> list[str]:
    """``dcgmi diag -r LEVEL``: DCGM diagnostics (1: quick deployment checks, seconds; 2: ~minutes;
    3 and 4: long stress runs). Only the documented levels are accepted."""
    if type(level) is not int or level not in DCGM_DIAG_LEVELS:
        raise UnsafeValue(f"dcgmi diag level must be one of {DCGM_DIAG_LEVELS}, not {level!r}")
    return ["dcgmi", "diag", "-r", str(level)]
