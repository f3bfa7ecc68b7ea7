"""What `provision deploy` needs to know about a host before it runs a GPU service there (issue 14): the
GPUs (index, UUID, name, product brand from `nvidia-smi -q -x`), the driver version and the highest CUDA
version the driver supports, and the machine. One probe (commands/probes.gpu_deploy), run only on hosts that will run GPU services, and this
pure parser of its output."""

from __future__ import annotations

from dataclasses import dataclass

from provision.commands import probes
from provision.facts import gpu_health
from provision.facts import parsers as p
from provision.facts.script import split_sections

# uname -m → the platform architecture of an OCI image index (manifest list)
OCI_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "ppc64le": "ppc64le",
            "s390x": "s390x"}


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str | None
    name: str
    brand: str | None = None  # nvidia-smi -q -x <product_brand>: Tesla, NVIDIA, GeForce, ...; None: not read


@dataclass(frozen=True)
class GpuFacts:
    gpus: tuple[Gpu, ...] = ()
    driver: str | None = None  # 550.54.15
    cuda: str | None = None  # 12.4: the highest CUDA version the driver supports
    error: str | None = None  # nvidia-smi's own error when it is installed but failed
    nvidia_smi: bool = False  # nvidia-smi is installed
    arch: str = "amd64"  # the OCI architecture name of the host

    @property
    def brands(self) -> tuple[str | None, ...]:
        """The distinct product brands of the GPUs, in GPU order (None: not read)."""
        return tuple(dict.fromkeys(g.brand for g in self.gpus))

    def describe(self) -> str:
        """What the host has, for messages: "2 GPUs: 0 (GPU-...), 1 (GPU-...)"."""
        if not self.gpus:
            if self.error:
                return f"no usable GPU (nvidia-smi: {self.error})"
            return "no GPU (nvidia-smi is not installed)" if not self.nvidia_smi else "no GPU"
        listed = ", ".join(f"{g.index} ({g.uuid})" if g.uuid else str(g.index) for g in self.gpus)
        return f"{len(self.gpus)} GPU{'s' if len(self.gpus) != 1 else ''}: {listed}"


def probe() -> str:
    return probes.gpu_deploy()


def parse(output: str) -> GpuFacts:
    sections = split_sections(output)
    query = sections.get("nvidia_smi_query")
    machine = sections.get("uname_m")
    arch = OCI_ARCH.get(machine.text.strip(), machine.text.strip()) if machine is not None and machine.ok \
        and machine.text.strip() else "amd64"
    if query is None or query.missing:
        return GpuFacts(arch=arch)
    if not query.ok:
        return GpuFacts(error=p.parse_nvidia_smi_error(query.text, query.rc), nvidia_smi=True, arch=arch)
    rows = p.parse_nvidia_smi_query(query.text)
    header = sections.get("nvidia_smi")
    header_text = header.text if header is not None and header.ok else ""
    driver = next((r["driver_version"] for r in rows if r["driver_version"]), None) \
        or p.parse_nvidia_smi_driver(header_text)
    brands = _brands(sections.get("nvidia_smi_xml"))
    gpus = tuple(Gpu(r["index"], r["uuid"], r["name"], brands.get((r["uuid"] or "").lower())) for r in rows)
    return GpuFacts(gpus=gpus, driver=driver, cuda=p.parse_nvidia_smi_header(header_text), nvidia_smi=True,
                    arch=arch)


def _brands(section) -> dict[str, str]:
    """GPU UUID (lower case) → <product_brand>, from the `nvidia-smi -q -x` section; {} when it is absent or
    unreadable (the brand is then not known: NVIDIA_REQUIRE_CUDA's brand= alternatives are assumed met)."""
    if section is None or not section.ok or not section.text.strip():
        return {}
    try:
        health = gpu_health.parse(section.text)
    except gpu_health.GpuHealthParseError:
        return {}
    return {g.uuid.lower(): g.product_brand for g in health.gpus if g.uuid and g.product_brand}


__all__ = ["Gpu", "GpuFacts", "OCI_ARCH", "parse", "probe"]
