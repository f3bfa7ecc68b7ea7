"""Will this image's CUDA run on this host's driver? A pure decision from the image config's Env and the
host's nvidia-smi facts, with a message that names both versions and the remedy (issue 14).

Sources (NVIDIA's documentation, as of the R580 driver branch):

- The image side. CUDA images declare what they need in their config's ``Env``: ``CUDA_VERSION``
  (``12.4.1``) and ``NVIDIA_REQUIRE_CUDA`` (``cuda>=12.4 brand=tesla,driver>=470,driver<471 ...``).
  The NVIDIA Container Toolkit checks them when the container starts (container-toolkit docs,
  "Environment variables (OCI spec)" → constraints; nvidia-container-toolkit's
  internal/config/image/cuda_image.go): every ``NVIDIA_REQUIRE_*`` but ``NVIDIA_REQUIRE_JETPACK`` is
  checked, and an image with ``CUDA_VERSION`` but no ``NVIDIA_REQUIRE_CUDA`` (a "legacy" image) gets
  ``cuda>=MAJOR.MINOR``; within one variable, constraints separated by a space are ORed and
  constraints joined by a comma are ANDed; the keys are ``cuda`` (the driver's CUDA version),
  ``driver`` (the driver version), ``arch`` (compute capability) and ``brand``.
  ``NVIDIA_DISABLE_REQUIRE`` (true as Go's strconv.ParseBool reads it) switches the check off. An
  unmet requirement fails the container's start: "requirement error: unsatisfied condition:
  cuda>=12.4, please update your driver to a newer version, or use an earlier cuda container".
- Forward compatibility ("CUDA Compatibility", docs.nvidia.com/deploy/cuda-compatibility/): a CUDA
  newer than the driver's runs through the ``cuda-compat-<major>-<minor>`` package (the libraries in
  ``/usr/local/cuda/compat``), only on NVIDIA Data Center GPUs (and select NGC-Server-Ready RTX
  SKUs), and only on the driver branches that package supports. NVIDIA's CUDA images ship the package
  and list exactly those branches as the ``brand=...,driver>=B,driver<B+1`` alternatives of
  ``NVIDIA_REQUIRE_CUDA``. An image config alone cannot show an installed package; it can show those
  alternatives or ``LD_LIBRARY_PATH`` naming a ``cuda*/compat`` folder, and the caller may know more
  (``compat_libs=True``: it looked into the image).
- Minor version compatibility (same page, "Minor Version Compatibility"): from CUDA 11 on, an
  application built with any CUDA X.y runs, with a limited feature set (no JIT of newer PTX, no API
  newer than the driver), on any driver of at least the minimum for CUDA X.x:
  11.x >= 450.80.02, 12.x >= 525.60.13, 13.x >= 580. The toolkit's ``cuda>=X.y`` check does NOT
  know about it: a CUDA 12.4 image does not start on a 12.2 driver unless ``NVIDIA_DISABLE_REQUIRE``
  is set.
- Minimum driver for each CUDA release's full feature set: the CUDA Toolkit release notes, Table 3
  "CUDA Toolkit and Corresponding Driver Versions", Linux x86_64 column, GA rows (FULL_FEATURE_DRIVER,
  11.0 to 13.2, each row verified: see the comment there).

The decision (``check``):

1. No ``CUDA_VERSION`` and no ``NVIDIA_REQUIRE_*``: the image declares no CUDA need → ok ("none").
2. The toolkit will check something (``enforced``): evaluated as it does. All met through ``cuda>=``
   alternatives → ok ("native"); a check met only through a ``brand/driver`` alternative → ok
   ("forward-compat", with a note: the image's compat libraries do the work); a check not met →
   refuse (the container would not start). The toolkit evaluates every requirement once per visible GPU
   (libnvidia-container src/cli/configure.c), with that GPU's brand; a host with GPUs of several brands is
   checked once per brand (``HostCuda`` carries one; workflows.gpu_precheck asks for each). When the
   host's brand is not known to provision (no ``<product_brand>`` in the facts), a brand constraint is
   taken as met and the decision carries a warning saying so (the toolkit itself also takes a brand
   constraint as met when no GPU is visible).
3. ``NVIDIA_DISABLE_REQUIRE`` is true (nothing stops the container): CUDA's rules. Host CUDA >= image
   CUDA → ok ("native"); compat libraries + a data center GPU → ok ("forward-compat", warning); same
   major and driver >= that major's minimum → ok ("minor-version", warning: limited feature set);
   else refuse ("CUDA driver version is insufficient for CUDA runtime version" at the first CUDA call).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from provision.errors import InputError

# Linux x86_64 minimum driver of each CUDA release (GA), for its full feature set. Source: the CUDA
# Toolkit release notes, Table 3 "CUDA Toolkit and Corresponding Driver Versions", column "Linux x86_64
# Driver Version", row "CUDA X.Y GA" (https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/index.html,
# the CUDA 13.2 Update 2 edition). Later updates of a release list a newer driver (12.4 Update 1:
# 550.54.15); the GA's is the floor for the release.
# Verified row by row (issue 14, 2026-12-01) against that table as quoted in full (13.2 Update 2 back to
# 7.0) in a copy held by the project's code index (NVIDIA's page itself is indexed only up to its first
# table), and 11.0-11.6 also against older copies of the same table: every row below is the table's GA row.
# Fixed on the way: 11.0 was 450.51.06 (11.0.3 Update 1's; 11.0.2 GA's is 450.51.05). Added: 13.1, 13.2.
# 12.7 was never released. Releases after 13.2 (the docs index shows a 13.5 release notes page, without its
# table) are not in the table: the remedy then names the branch floor of minor version compatibility.
FULL_FEATURE_DRIVER: dict[tuple[int, int], str] = {
    (11, 0): "450.51.05", (11, 1): "455.23", (11, 2): "460.27.03", (11, 3): "465.19.01",
    (11, 4): "470.42.01", (11, 5): "495.29.05", (11, 6): "510.39.01", (11, 7): "515.43.04",
    (11, 8): "520.61.05",
    (12, 0): "525.60.13", (12, 1): "530.30.02", (12, 2): "535.54.03", (12, 3): "545.23.06",
    (12, 4): "550.54.14", (12, 5): "555.42.02", (12, 6): "560.28.03", (12, 8): "570.26",
    (12, 9): "575.51.03",
    (13, 0): "580.65.06", (13, 1): "590.44.01", (13, 2): "595.45.04",
}

# Minimum driver for CUDA minor version compatibility across a major release. Source: the release
# notes' table "CUDA Toolkit and Minimum Required Driver Version for CUDA Minor Version Compatibility"
# and "CUDA Compatibility" → "Minor Version Compatibility" (docs.nvidia.com/deploy/cuda-compatibility/),
# which gives 13.x as ">= 580": 13.0 GA's driver is used as the concrete floor.
MINOR_COMPAT_DRIVER: dict[int, str] = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}

# nvidia-smi's <product_brand> (the -q -x report's spelling of NVML's nvmlBrandType_t) → the brand name the
# NVIDIA Container Toolkit compares ``brand=`` with, lower case (it compares case-insensitively). The toolkit's
# names: libnvidia-container src/driver.c (driver_get_device_brand_1_svc: Quadro, Tesla, NVS, GRID, GeForce,
# TITAN, anything else "Unknown" -- the stored copies of that file; NVIDIA's maintainers say toolkit >= 1.9.0
# also recognises the RTX brands, NVIDIA/nvidia-container-toolkit#24) and go-nvlib pkg/nvlib/device/device.go
# GetBrandAsString (the Go side of the toolkit: NvidiaVApps, NvidiaVPC, NvidiaVCS, NvidiaVWS,
# NvidiaCloudGaming, QuadroRTX, NvidiaRTX, Nvidia, GeForceRTX, TitanRTX). NVIDIA's CUDA images list
# brand=vapps/vpc/vcs/vws/cloudgaming, which match none of these: as in the toolkit, they are never met.
BRANDS: dict[str, str] = {
    "unknown": "unknown", "quadro": "quadro", "tesla": "tesla", "nvs": "nvs", "grid": "grid",
    "geforce": "geforce", "titan": "titan", "nvidia virtual applications": "nvidiavapps",
    "nvidia virtual pc": "nvidiavpc", "nvidia virtual compute server": "nvidiavcs",
    "nvidia rtx virtual workstation": "nvidiavws", "nvidia cloud gaming": "nvidiacloudgaming",
    "nvidia vgaming": "nvidiacloudgaming", "quadro rtx": "quadrortx", "nvidia rtx": "nvidiartx",
    "nvidia": "nvidia", "geforce rtx": "geforcertx", "titan rtx": "titanrtx",
}
# Tesla (older data center GPUs), NVIDIA (A100, H100, ... report this brand) and vGPU Compute Server.
DATACENTER_BRANDS = frozenset({"tesla", "nvidia", "nvidiavcs"})


def datacenter(brand: str | None) -> bool | None:
    """Whether a brand (NVIDIA_REQUIRE_ spelling) is a data center GPU's; None when not known (no brand, or
    nvidia-smi's "Unknown", which NVIDIA's own images also list for forward compatibility)."""
    if brand is None or brand == "unknown":
        return None
    return brand in DATACENTER_BRANDS


Version = tuple[int, ...]
# libnvidia-container src/cli/dsl.c: the operators =, !=, <, <=, >, >=; brand takes = and != only (compared
# case-insensitively); any other key or operator is an "invalid expression" that fails the container's start.
_CONSTRAINT = re.compile(r"^(cuda|driver|arch|brand)(>=|<=|!=|>|<|=)(\S+)$")
_VERSION = re.compile(r"^\d+(?:\.\d+){0,3}$")


class CudaCompatError(InputError, ValueError):
    """A version string or a requirement that cannot be read (the message says which and why)."""


def parse_version(text: str, what: str = "version") -> Version:
    """``12.4`` → (12, 4); ``550.54.15`` → (550, 54, 15). Raises CudaCompatError when malformed."""
    if not isinstance(text, str) or not _VERSION.match(text.strip()):
        raise CudaCompatError(f"{what} {text!r} is not a version like 12.4 or 550.54.15")
    return tuple(int(part) for part in text.strip().split("."))


def _cmp(a: Version, b: Version) -> int:
    """Compare with missing parts as 0 (driver 470.57.02 >= 470, < 471)."""
    width = max(len(a), len(b))
    a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return (a > b) - (a < b)


def _holds(actual: Version, op: str, wanted: Version) -> bool:
    c = _cmp(actual, wanted)
    return {">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0, "=": c == 0, "!=": c != 0}[op]


def _show(version: Version) -> str:
    return ".".join(str(p) for p in version)


@dataclass(frozen=True)
class Constraint:
    key: Literal["cuda", "driver", "arch", "brand"]
    op: str
    value: str  # a version for cuda/driver/arch, a lower-case brand name for brand

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


@dataclass(frozen=True)
class CudaRequirement:
    """What an image's config says about CUDA."""

    cuda_version: Version | None = None  # CUDA_VERSION (12.4.1)
    requires: tuple[tuple[tuple[Constraint, ...], ...], ...] = ()  # NVIDIA_REQUIRE_*: AND of ORs of ANDs
    require_text: str | None = None  # NVIDIA_REQUIRE_CUDA as written, for messages
    disable_require: bool = False  # NVIDIA_DISABLE_REQUIRE
    compat_libs: bool = False  # the image ships cuda-compat (/usr/local/cuda/compat)

    @property
    def cuda(self) -> Version | None:
        """The CUDA (major, minor) the image needs: NVIDIA_REQUIRE_CUDA's ``cuda>=``, else CUDA_VERSION's."""
        for alternatives in self.requires:
            for group in alternatives:
                for c in group:
                    if c.key == "cuda" and c.op in (">=", ">", "="):
                        return parse_version(c.value)[:2]
        return self.cuda_version[:2] if self.cuda_version else None

    @property
    def declared(self) -> bool:
        return self.cuda_version is not None or bool(self.requires)


@dataclass(frozen=True)
class HostCuda:
    """The host's side, from nvidia-smi: driver version, the driver's highest CUDA version, GPU brand."""

    driver_version: str  # as nvidia-smi prints it: 550.54.15
    cuda_version: str  # 12.4
    brand: str | None = None  # NVIDIA_REQUIRE_* brand name (tesla, nvidia, geforce, ...), None if unknown

    @property
    def driver(self) -> Version:
        return parse_version(self.driver_version, "host driver version")

    @property
    def cuda(self) -> Version:
        return parse_version(self.cuda_version, "host CUDA version")


@dataclass(frozen=True)
class CudaDecision:
    ok: bool
    how: Literal["none", "native", "forward-compat", "minor-version", "refused"]
    message: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------------------------------ parsing
def parse_constraints(text: str, what: str = "NVIDIA_REQUIRE_CUDA") -> tuple[tuple[Constraint, ...], ...]:
    """``cuda>=12.4 brand=tesla,driver>=470,driver<471`` → alternatives (ORed) of constraints (ANDed)."""
    if not isinstance(text, str) or not text.strip():
        raise CudaCompatError(f"{what} is empty")
    alternatives = []
    for group_text in text.split():
        group = []
        for part in group_text.split(","):
            if not part.strip():
                continue  # the toolkit skips empty expressions ("cuda>=12.4," is valid there)
            match = _CONSTRAINT.match(part.strip())
            if not match:
                raise CudaCompatError(f"{what}: {part!r} is not a constraint like cuda>=12.4, driver<471 or "
                                      "brand=tesla")
            key, op, value = match.groups()
            if key == "brand":
                if op not in ("=", "!="):
                    raise CudaCompatError(f"{what}: brand takes '=' or '!=', not {op!r} ({part!r}): the NVIDIA "
                                          "Container Toolkit fails the container's start (\"invalid expression\")")
                value = value.lower()
            else:
                parse_version(value, f"{what}: in {part.strip()!r}, the {key} version")
            group.append(Constraint(key, op, value))  # type: ignore[arg-type]
        alternatives.append(tuple(group))
    return tuple(alternatives)


def _truthy(value: str) -> bool:
    """Go's strconv.ParseBool true values: the toolkit reads NVIDIA_DISABLE_REQUIRE with it."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


def requirement_from_env(env: list[str] | None, *, compat_libs: bool | None = None) -> CudaRequirement:
    """The CUDA requirement from an image config's ``Env`` list (``["CUDA_VERSION=12.4.1", ...]``).

    ``compat_libs``: whether the image ships the cuda-compat libraries, when the caller knows (it
    looked into the image); None: decided from ``LD_LIBRARY_PATH`` naming a ``cuda/compat`` folder
    (or NVIDIA_REQUIRE_CUDA's brand/driver alternatives, which NVIDIA's images declare only because
    they ship cuda-compat).
    """
    values: dict[str, str] = {}
    for item in env or []:
        if not isinstance(item, str) or "=" not in item:
            continue  # Docker allows bare names (unset): nothing to read
        name, _, value = item.partition("=")
        values[name] = value
    cuda_version = None
    if values.get("CUDA_VERSION", "").strip():
        cuda_version = parse_version(values["CUDA_VERSION"], "CUDA_VERSION")
    requires = tuple(parse_constraints(v, name) for name, v in sorted(values.items())  # the toolkit skips JETPACK
                     if name.startswith("NVIDIA_REQUIRE_") and not name.startswith("NVIDIA_REQUIRE_JETPACK") and v.strip())
    if compat_libs is None:
        compat_libs = (any(re.search(r"(^|/)cuda[^:/]*/compat/?$", p) for p in values.get("LD_LIBRARY_PATH", "").split(":"))
                       or any(c.key == "brand" for alternatives in requires for g in alternatives for c in g))
    return CudaRequirement(
        cuda_version=cuda_version,
        requires=requires,
        require_text=values.get("NVIDIA_REQUIRE_CUDA") or None,
        disable_require=_truthy(values.get("NVIDIA_DISABLE_REQUIRE", "")),
        compat_libs=compat_libs,
    )


def requirement_from_config(config: dict, *, compat_libs: bool | None = None) -> CudaRequirement:
    """From an image config: docker inspect's ``{"Config": {"Env": [...]}}``, a registry config blob's
    ``{"config": {"Env": [...]}}``, or the inner ``{"Env": [...]}`` itself."""
    if not isinstance(config, dict):
        raise CudaCompatError("an image config must be a JSON object")
    inner = config.get("Config") or config.get("config") or config
    env = inner.get("Env") if isinstance(inner, dict) else None
    if env is not None and not isinstance(env, list):
        raise CudaCompatError("the image config's Env is not a list")
    return requirement_from_env(env, compat_libs=compat_libs)


def host_cuda(driver_version: str, cuda_version: str, brand: str | None = None) -> HostCuda:
    """The host from nvidia-smi's ``driver_version`` (550.54.15), ``cuda_version`` (12.4) and, when known,
    ``product_brand`` (Tesla, NVIDIA, GeForce ...; nvidia-smi's spelling or the NVIDIA_REQUIRE_ one)."""
    parse_version(driver_version, "host driver version")
    parse_version(cuda_version, "host CUDA version")
    name = None
    if brand is not None and brand.strip():
        key = brand.strip().lower()
        name = BRANDS.get(key, key.replace(" ", ""))
    return HostCuda(driver_version.strip(), cuda_version.strip(), name)


# ----------------------------------------------------------------------------------------- deciding
def minimum_driver(cuda: Version) -> tuple[str | None, str | None]:
    """(driver for the full features of CUDA major.minor, driver for minor version compatibility)."""
    major_minor = (cuda + (0,))[:2]
    return FULL_FEATURE_DRIVER.get(major_minor), MINOR_COMPAT_DRIVER.get(major_minor[0])


def _remedy(image_cuda: Version, host: HostCuda) -> str:
    full, minor = minimum_driver(image_cuda)
    wanted = _show(image_cuda[:2])
    if full:
        driver = f"a driver >= {full} (the driver CUDA {wanted} was released with, Linux x86_64)"
    elif minor:
        driver = (f"a driver of a branch that supports CUDA {wanted} (not in provision's copy of NVIDIA's table; "
                  f"any CUDA {image_cuda[0]}.x needs at least {minor})")
    else:
        driver = f"a driver that supports CUDA {wanted}"
    return f"install {driver}, or use an image tag built for CUDA {_show(host.cuda[:2])} or older"


def _evaluate(constraint: Constraint, host: HostCuda) -> bool | None:
    """True/False, or None when the host's side is not known (brand, arch)."""
    if constraint.key == "cuda":
        return _holds(host.cuda, constraint.op, parse_version(constraint.value))
    if constraint.key == "driver":
        return _holds(host.driver, constraint.op, parse_version(constraint.value))
    if constraint.key == "brand":
        if host.brand is None:
            return None
        return (host.brand == constraint.value) == (constraint.op == "=")
    return None  # arch: the GPU's compute capability is not among the facts


def _group(group: tuple[Constraint, ...], host: HostCuda) -> bool | None:
    results = [_evaluate(c, host) for c in group]
    if False in results:
        return False
    return None if None in results else True


def enforced(requirement: CudaRequirement) -> tuple[tuple[tuple[Constraint, ...], ...], ...]:
    """What the NVIDIA Container Toolkit checks when the container starts: every NVIDIA_REQUIRE_* (but
    JETPACK), plus ``cuda>=MAJOR.MINOR`` of CUDA_VERSION for a "legacy" image (CUDA_VERSION without
    NVIDIA_REQUIRE_CUDA); nothing when NVIDIA_DISABLE_REQUIRE is true."""
    if requirement.disable_require:
        return ()
    checks = list(requirement.requires)
    if requirement.require_text is None and requirement.cuda_version is not None:
        checks.append(((Constraint("cuda", ">=", _show((requirement.cuda_version + (0,))[:2])),),))
    return tuple(checks)


def check(requirement: CudaRequirement, host: HostCuda, image: str = "the image") -> CudaDecision:
    """Can a container of IMAGE (its requirement) run CUDA on HOST? See the module docstring for the rules."""
    if not requirement.declared:
        return CudaDecision(True, "none", f"{image} declares no CUDA requirement (no CUDA_VERSION, no NVIDIA_REQUIRE_*)")
    image_cuda = requirement.cuda
    host_text = f"the host's driver {host.driver_version} supports CUDA {host.cuda_version}"
    wants = f"{image} needs CUDA {_show(image_cuda)}" if image_cuda else f"{image} has a CUDA requirement"
    checks = enforced(requirement)
    if checks:
        return _toolkit_check(checks, requirement, host, image_cuda, wants, host_text)
    return _cuda_rules(requirement, host, image, image_cuda, wants, host_text)


def _toolkit_check(checks, requirement: CudaRequirement, host: HostCuda, image_cuda: Version | None,
                   wants: str, host_text: str) -> CudaDecision:
    """The toolkit's own check, as it will run when the container starts."""
    notes: list[str] = []
    how = "native"
    for alternatives in checks:  # each NVIDIA_REQUIRE_* must hold (AND)
        results = [(g, _group(g, host)) for g in alternatives]
        met = [g for g, r in results if r is True]
        unsure = [g for g, r in results if r is None]
        if any(all(c.key == "cuda" for c in g) for g in met):
            continue
        if met:
            how = "forward-compat"
            continue
        if unsure:
            if any(c.key == "brand" for g in unsure for c in g):
                how = "forward-compat"
            notes.append("assumed met (the host's GPU brand/architecture is not known): "
                         + " ".join(",".join(map(str, g)) for g in unsure))
            continue
        first = " ".join(",".join(map(str, g)) for g in alternatives[:1])
        source = ("NVIDIA_REQUIRE_CUDA" if requirement.require_text is not None else
                  "CUDA_VERSION: the toolkit checks it for images without NVIDIA_REQUIRE_CUDA")
        remedy = _remedy(image_cuda, host) if image_cuda else f"a driver that meets {first}"
        return CudaDecision(False, "refused", (
            f"{wants} ({first} from {source}), but {host_text}: the NVIDIA Container Toolkit will refuse to start "
            f"the container (\"unsatisfied condition: {first}\"). Remedy: {remedy}."))
    if how == "forward-compat" and datacenter(host.brand) is False:
        # NVIDIA's images list consumer brands too: the toolkit lets the container start, CUDA then fails
        remedy = _remedy(image_cuda, host) if image_cuda else "a driver that meets the image's CUDA requirement"
        return CudaDecision(False, "refused", (
            f"{wants}, but {host_text}: the NVIDIA Container Toolkit starts the container through the image's "
            f"forward-compatibility alternative, yet forward compatibility works only on data center GPUs, not on "
            f"{host.brand}: CUDA fails with \"forward compatibility was attempted on non supported HW\". "
            f"Remedy: {remedy}."))
    if how == "forward-compat" and datacenter(host.brand) is None and host.brand is not None:
        notes.append("the GPU's brand is reported as Unknown: forward compatibility works only on data center GPUs")
    if how == "forward-compat":
        notes.insert(0, f"{host_text}: CUDA {_show(image_cuda) if image_cuda else ''} runs through the image's "
                        "forward-compatibility libraries (cuda-compat), which NVIDIA supports on data center GPUs "
                        "and on the driver branches the image lists")
        return CudaDecision(True, "forward-compat", f"{wants}: met through forward compatibility", tuple(notes))
    return CudaDecision(True, "native", f"{wants}; {host_text}", tuple(notes))


def _cuda_rules(requirement: CudaRequirement, host: HostCuda, image: str, image_cuda: Version | None,
                wants: str, host_text: str) -> CudaDecision:
    """NVIDIA_DISABLE_REQUIRE is true: nothing stops the container; CUDA's compatibility rules decide."""
    if image_cuda is None or _cmp(host.cuda[:2], image_cuda[:2]) >= 0:
        return CudaDecision(True, "native", f"{wants}; {host_text}", (
            () if image_cuda else ("NVIDIA_DISABLE_REQUIRE is set and the image names no CUDA version",)))
    if requirement.compat_libs:
        if datacenter(host.brand):
            return CudaDecision(True, "forward-compat", f"{wants}: met through forward compatibility", (
                f"{host_text}: CUDA {_show(image_cuda)} runs through the image's cuda-compat libraries (NVIDIA "
                "supports this on data center GPUs, on the driver branches the compat package lists)",))
        if datacenter(host.brand) is None and _cmp(host.cuda[:1], image_cuda[:1]) != 0:
            return CudaDecision(True, "forward-compat", f"{wants}: assumed met through forward compatibility", (
                f"{host_text}; the image ships cuda-compat, which works only on data center GPUs: the host's GPU "
                "brand is not known, so this was not checked",))
    minor = MINOR_COMPAT_DRIVER.get(image_cuda[0])
    if _cmp(host.cuda[:1], image_cuda[:1]) == 0 and minor and _cmp(host.driver, parse_version(minor)) >= 0:
        return CudaDecision(True, "minor-version", f"{wants}; {host_text}: runs through CUDA minor version compatibility", (
            f"CUDA {image_cuda[0]}.x minor version compatibility (driver >= {minor}) runs {image} with a limited "
            f"feature set: no JIT of PTX newer than CUDA {host.cuda_version}, no API newer than the driver; "
            f"for the full set: {_remedy(image_cuda, host)}",))
    extra = ""
    if requirement.compat_libs and datacenter(host.brand) is False:
        extra = (f" The image ships cuda-compat, but forward compatibility works only on data center GPUs, "
                 f"not on {host.brand}.")
    return CudaDecision(False, "refused", f"{wants}, but {host_text}: CUDA calls would fail with \"CUDA driver "
                                          f"version is insufficient for CUDA runtime version\".{extra} "
                                          f"Remedy: {_remedy(image_cuda, host)}.")
