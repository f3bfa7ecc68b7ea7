"""Command lines of the GPU verify ladder (issue 14): a CUDA sample in a container on every GPU, the optional
deep checks (DCGM level 1, nvbandwidth), the systemd-cgroup GPU-loss check (a running GPU container across a
`systemctl daemon-reload`) and NVIDIA's documented remedy for it (/dev/char symlinks + a udev rule), and the
pure parsers of what they print. No I/O.

The remedy follows NVIDIA's notice "Containers losing access to GPUs with error: Failed to initialize NVML:
Unknown Error" (https://github.com/NVIDIA/nvidia-docker/issues/1730, repeated in the NVIDIA Container
Toolkit troubleshooting guide,
https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/troubleshooting.html): with the
systemd cgroup driver, runc needs /dev/char symlinks to every device node it injects, which the NVIDIA driver
does not create; `nvidia-ctk system create-dev-char-symlinks --create-all` creates them, and a udev rule runs
it again whenever the driver binds (a reboot, a driver reload).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.commands.argv import UnsafeValue, checked, join, quote
from provision.commands.files import write_file

RUN_MARKER = "@@provision-gpu-run "  # one per GPU: `@@provision-gpu-run UUID RC MILLISECONDS`, after its output
RELOAD_MARKER = "@@provision-gpu-reload "  # `@@provision-gpu-reload before|after RC`, after that listing
RELOAD_CONTAINER = "provision-gpu-reload-check"
DEV_CHAR_RULE = "/lib/udev/rules.d/71-nvidia-dev-char.rules"
# The rule as NVIDIA's troubleshooting guide gives it: on the driver binding, create the symlinks.
DEV_CHAR_RULE_TEXT = ('# provision: NVIDIA Container Toolkit troubleshooting, "Containers losing access to GPUs"\n'
                      '# This will create /dev/char symlinks to all device nodes\n'
                      'ACTION=="add", DEVPATH=="/bus/pci/drivers/nvidia", '
                      'RUN+="/usr/bin/nvidia-ctk system create-dev-char-symlinks --create-all"\n')
SAMPLE_TIMEOUT_S = 300  # one GPU's sample run (the pull of the image included)
DEEP_TIMEOUT_S = 900


def _device(uuid: str) -> str:
    checked(uuid, "GPU UUID")
    if not re.fullmatch(r"(GPU|MIG)-[0-9A-Za-z-]+", uuid):
        raise UnsafeValue(f"not a GPU UUID: {uuid!r}")
    return f"device={uuid}"


def cuda_sample(image: str, uuids: list[str]) -> str:
    """The CUDA sample image (`verify_cuda_image`) run once per GPU, each container given that one GPU
    (`--gpus device=UUID`), one after the other, timed: the output of each run, then
    `@@provision-gpu-run UUID RC MS`. The image runs its own default command (vectorAdd in NVIDIA's
    cuda-sample images). `--` before the image: it is never read as an option of `docker run`."""
    parts = []
    for uuid in uuids:
        run = join(["timeout", str(SAMPLE_TIMEOUT_S), "docker", "run", "--rm", "--gpus", _device(uuid), "--", image],
                   "verify_cuda_image")
        parts.append(f"s=$(date +%s%N); {run} 2>&1; rc=$?; e=$(date +%s%N); "
                     f"printf '\\n{RUN_MARKER}%s %s %s\\n' {quote(uuid)} \"$rc\" \"$(( (e - s) / 1000000 ))\"")
    return "\n".join(parts)


@dataclass(frozen=True)
class SampleRun:
    uuid: str
    exit_code: int
    milliseconds: int
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and "Test PASSED" in self.output


def parse_cuda_sample(text: str) -> list[SampleRun]:
    """`cuda_sample`'s output → one SampleRun per GPU, in order."""
    runs, lines = [], []
    for line in text.splitlines():
        if line.startswith(RUN_MARKER):
            fields = line[len(RUN_MARKER):].split()
            if len(fields) == 3 and fields[1].lstrip("-").isdigit() and fields[2].lstrip("-").isdigit():
                runs.append(SampleRun(fields[0], int(fields[1]), int(fields[2]), "\n".join(lines).strip()))
            lines = []
        else:
            lines.append(line)
    return runs


DCGM_DIAG_MARKER = "@@provision-dcgm-diag"


def dcgm_diag_level1() -> str:
    """`dcgmi discovery -l` (the GPUs DCGM's host engine sees), a marker line, then `dcgmi diag -r 1`, when dcgmi
    is installed; exit 127 (nothing printed) when it is not. The exit status is diag's."""
    return ("command -v dcgmi >/dev/null 2>&1 || exit 127; timeout 60 dcgmi discovery -l; "
            f"echo {DCGM_DIAG_MARKER}; timeout 600 dcgmi diag -r 1")


def dcgm_diag_container(image: str) -> str:
    """`dcgmi diag -r 1` in NVIDIA's DCGM container (`verify_dcgm_image`), given every GPU; the image's
    dcgmi runs in embedded mode (`--host` not given: DCGM starts its own host engine in the container)."""
    return join(["timeout", "600", "docker", "run", "--rm", "--gpus", "all", "--cap-add", "SYS_ADMIN", "--", image,
                 "dcgmi", "diag", "-r", "1"], "verify_dcgm_image")


def nvbandwidth() -> str:
    """NVIDIA's nvbandwidth (github.com/NVIDIA/nvbandwidth, built from source: no package) when it is on
    PATH; exit 127 (nothing printed) when it is not."""
    return "command -v nvbandwidth >/dev/null 2>&1 || exit 127; timeout 600 nvbandwidth"


_DIAG_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*(Pass|Fail|Skip|Warn)\b", re.IGNORECASE)


def _chunk(raw: str) -> str:
    """One piece of a detail's text from its cell: dcgmi prints a detail in a 46-column cell cut every 45
    characters, mid-word (`| ... is currently disab  |` then `| led. The DCGM ...`), so a piece is the cell's
    first 45 columns and the pieces join exactly as printed. RAW is the cell with its padding (` text  `)."""
    return raw[1:-2] if len(raw) >= 3 else raw.strip()


def parse_dcgm_diag(text: str) -> dict[str, list[str]]:
    """`dcgmi diag` table → {"Pass": [tests], "Fail": [...], "Skip": [...], "Warn": [...], "details": [...]}.

    The layout of DCGM 3.x (published `dcgmi diag -r 1` outputs): `| Test | Pass |` rows (integration and
    hardware rows read `Pass - All`), and after a failed or warned test a `| Error | text |` (or Warning, Info)
    row whose text continues on rows with an empty first cell, cut every 45 characters: the continuation rows
    are joined back into one detail."""
    out: dict[str, list[str]] = {"Pass": [], "Fail": [], "Skip": [], "Warn": [], "details": []}
    detail: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        match = _DIAG_ROW.match(stripped)
        if match:
            out[match.group(2).capitalize()].append(match.group(1))
            detail = None
            continue
        parts = stripped.split("|")
        if len(parts) == 4 and parts[0] == "" and parts[3] == "":  # | first | second |
            first, second = parts[1].strip(), _chunk(parts[2])
            if first.lower() in ("warning", "error", "info") and second.strip():
                detail = [second]
                out["details"].append(second)
                continue
            if not first and detail is not None and second.strip():
                detail.append(second)
                out["details"][-1] = "".join(detail)
                continue
        detail = None
    out["details"] = [" ".join(d.split()) for d in out["details"]]
    return out


@dataclass(frozen=True)
class DcgmGpu:
    gpu_id: int
    name: str | None
    bus_id: str | None
    uuid: str | None


@dataclass(frozen=True)
class DcgmDiscovery:
    gpus: tuple[DcgmGpu, ...]
    nvswitches: int | None  # None: the listing has no NvSwitch count line


_FOUND = re.compile(r"^(\d+) (GPU|GPUs|NvSwitch|NvSwitches) found")


def parse_dcgm_discovery(text: str) -> DcgmDiscovery:
    """`dcgmi discovery -l` → the GPUs (id, name, PCI bus id, UUID) and the NVSwitch count, from the layout of
    DCGM's published listings: `N GPUs found.`, then per GPU a `| 0 | Name: ... |` row and `| | PCI Bus ID: ... |`,
    `| | Device UUID: ... |` rows; then `N NvSwitches found.` and a Switch ID table. Newer DCGM versions may
    omit the UUID row or print `<<<NULL>>>` for a name (NVIDIA/DCGM#229): such a name is None."""
    gpus: list[dict] = []
    nvswitches = None
    in_gpus = False
    for line in text.splitlines():
        stripped = line.strip()
        found = _FOUND.match(stripped)
        if found:
            in_gpus = found.group(2).startswith("GPU")
            if not in_gpus:
                nvswitches = int(found.group(1))
            continue
        parts = stripped.split("|")
        if not in_gpus or len(parts) != 4 or parts[0] or parts[3]:
            continue
        first, second = parts[1].strip(), parts[2].strip()
        if first.isdigit():
            gpus.append({"gpu_id": int(first), "name": None, "bus_id": None, "uuid": None})
        if not gpus or (first and not first.isdigit()):
            continue
        key, _, value = second.partition(": ")
        field = {"Name": "name", "PCI Bus ID": "bus_id", "Device UUID": "uuid"}.get(key.strip())
        if field and value.strip() and value.strip() != "<<<NULL>>>":
            gpus[-1][field] = value.strip()
    return DcgmDiscovery(tuple(DcgmGpu(**g) for g in gpus), nvswitches)


def split_dcgm(text: str) -> tuple[str | None, str]:
    """`dcgm_diag_level1`'s output → (the discovery listing, or None when the marker is absent; diag's output)."""
    before, marker, after = text.partition(DCGM_DIAG_MARKER)
    return (before, after) if marker else (None, text)


def parse_nvbandwidth(text: str) -> list[str]:
    """nvbandwidth's `SUM <testcase> <GB/s>` summary lines, e.g. `SUM host_to_device_memcpy_ce 55.2`."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("SUM ")]


def reload_check(image: str) -> str:
    """The systemd-cgroup GPU-loss check: start a GPU container (`verify_gpu_image`, kept alive by
    `sleep`), list its GPUs, `systemctl daemon-reload`, list them again, remove the container. Prints each
    listing followed by `@@provision-gpu-reload before|after RC`; exit 3 when the container did not start."""
    name = RELOAD_CONTAINER
    rm = join(["docker", "rm", "-f", name])
    start = join(["docker", "run", "-d", "--gpus", "all", "--name", name, "--", image, "sleep", "300"], "verify_gpu_image")
    listing = join(["docker", "exec", name, "nvidia-smi", "-L"])
    return (f"{rm} >/dev/null 2>&1; {start} >/dev/null || exit 3\n"
            f"{listing} 2>&1; printf '{RELOAD_MARKER}before %s\\n' \"$?\"\n"
            "timeout 120 systemctl daemon-reload\n"
            f"{listing} 2>&1; printf '{RELOAD_MARKER}after %s\\n' \"$?\"\n"
            f"{rm} >/dev/null 2>&1; exit 0")


def parse_reload_check(text: str) -> dict[str, tuple[int, str]]:
    """`reload_check`'s output → {"before": (rc, listing), "after": (rc, listing)}."""
    out, lines = {}, []
    for line in text.splitlines():
        if line.startswith(RELOAD_MARKER):
            fields = line[len(RELOAD_MARKER):].split()
            if len(fields) == 2 and fields[1].isdigit():
                out[fields[0]] = (int(fields[1]), "\n".join(lines).strip())
            lines = []
        else:
            lines.append(line)
    return out


def cgroup_state() -> str:
    """What the GPU-loss trap depends on, one `key=value` per line: docker's cgroup driver
    (`docker info`), whether the udev rule is there, how many /dev/char symlinks point at NVIDIA devices."""
    return ("printf 'cgroup_driver=%s\\n' \"$(timeout 30 docker info --format '{{.CgroupDriver}}' 2>/dev/null)\"; "
            f"[ -f {DEV_CHAR_RULE} ] && echo udev_rule=yes || echo udev_rule=no; "
            "printf 'dev_char_links=%s\\n' \"$(find /dev/char -maxdepth 1 -lname '*nvidia*' 2>/dev/null | wc -l)\"")


def parse_cgroup_state(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in text.splitlines()) if _ == "="}


def create_dev_char_symlinks() -> str:
    """NVIDIA's documented remedy, first half: the /dev/char symlinks for every NVIDIA device node now."""
    return "nvidia-ctk system create-dev-char-symlinks --create-all"


def install_dev_char_rule() -> str:
    """NVIDIA's documented remedy, second half: the udev rule that recreates them when the driver binds."""
    return write_file(DEV_CHAR_RULE, DEV_CHAR_RULE_TEXT, backup=False)
