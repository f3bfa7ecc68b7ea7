"""The `nvidia-smi -q -x` parser and its health rules (provision/facts/gpu_health.py), on the synthetic
fixtures of tests/fixtures/gpu/ (every driver layout the parser reads) and on every real capture folder
there (scripts/capture-gpu-fixtures.sh; none yet: those tests are then simply not generated)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.commands import gpu_verify
from provision.facts import gpu_health, parsers
from provision.operations import cuda_compat
from provision_sandbox import fake_gpu
from provision.facts.gpu_health import GpuHealth, GpuHealthParseError, HostGpuHealth, PcieLink

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"
SYNTHETIC = sorted(FIXTURES.glob("synthetic-*.xml"))
CAPTURES = sorted(p for p in FIXTURES.iterdir() if p.is_dir() and (p / "PROVENANCE").is_file())


def load(name: str) -> HostGpuHealth:
    return gpu_health.parse((FIXTURES / name).read_text())


# ------------------------------------------------------------------------------- fixture hygiene
def test_synthetic_fixtures_exist_and_say_they_are_synthetic():
    assert len(SYNTHETIC) >= 4
    for path in SYNTHETIC:
        assert "SYNTHETIC: written by hand" in path.read_text(), path.name
        assert path.name in (FIXTURES / "README.md").read_text(), f"{path.name} is not described in the README"


def test_every_file_in_the_fixtures_folder_is_synthetic_or_in_a_capture_folder():
    for path in FIXTURES.iterdir():
        assert path.is_dir() or path.name == "README.md" or path.name.startswith("synthetic-"), (
            f"{path.name}: a real capture lives in its own folder with a PROVENANCE file; a hand-written "
            "fixture is named synthetic-*")


@pytest.mark.parametrize("path", SYNTHETIC, ids=lambda p: p.name)
def test_every_synthetic_fixture_parses_to_complete_gpus(path):
    health = gpu_health.parse(path.read_text())
    assert health.driver_version and health.cuda_version
    assert health.gpus
    for gpu in health.gpus:
        assert gpu.uuid and gpu.uuid.startswith("GPU-")
        assert re.fullmatch(r"[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-7]", gpu.pci_bus_id)
        assert gpu.pcie.max_gen and gpu.pcie.max_width
        assert gpu.persistence_mode is not None and gpu.ecc_enabled is True
        assert gpu.volatile_uncorrectable is not None and gpu.aggregate_uncorrectable is not None
        assert gpu.idle is not None
    # findings never crash and are all worded for an operator
    for finding in gpu_health.findings(health):
        assert finding.severity in ("fail", "warn") and finding.message and ":" in finding.message


# ------------------------------------------------------------------------------- real captures
def check_capture(folder: Path) -> None:
    """The parsers agree with each other on one capture folder: the XML report, the facts' CSV query and
    `nvidia-smi -L` name the same GPUs (UUIDs, in order), and the driver versions match."""
    provenance = (folder / "PROVENANCE").read_text()
    assert "nvidia-smi -q -x" in provenance
    health = gpu_health.parse((folder / "nvidia-smi-q.xml").read_text())
    assert health.gpus, "the capture has no GPU"
    uuids = [g.uuid for g in health.gpus]
    assert all(uuids)
    if (folder / "query-gpu.csv").is_file():
        rows = parsers.parse_nvidia_smi_query((folder / "query-gpu.csv").read_text())
        assert [r["uuid"] for r in rows] == uuids
        assert {r["driver_version"] for r in rows} == {health.driver_version}
        assert [r["pci_bus_id"] for r in rows] == [parsers.normalize_pci_address(g.pci_bus_id) for g in health.gpus]
    if (folder / "nvidia-smi-L.txt").is_file():
        listed = re.findall(r"\(UUID: (GPU-[0-9a-fA-F-]+)\)", (folder / "nvidia-smi-L.txt").read_text())
        assert listed == uuids  # `nvidia-smi -L` lists the same GPUs, in the same order
    if (folder / "nvidia-smi.txt").is_file():
        text = (folder / "nvidia-smi.txt").read_text()
        assert parsers.parse_nvidia_smi_driver(text) == health.driver_version
        assert parsers.parse_nvidia_smi_header(text) == health.cuda_version
    gpu_health.findings(health)  # the rules run on real data
    if (folder / "nvidia-container-cli-info.txt").is_file():  # the toolkit's brand names vs provision's mapping
        brands = re.findall(r"^Brand:\s*(\S.*?)\s*$", (folder / "nvidia-container-cli-info.txt").read_text(), re.M)
        mapped = [cuda_compat.host_cuda("1.0", "1.0", g.product_brand).brand for g in health.gpus]
        assert not brands or [b.lower() for b in brands] == mapped
    if (folder / "dcgmi-discovery.txt").is_file():
        seen = gpu_verify.parse_dcgm_discovery((folder / "dcgmi-discovery.txt").read_text())
        assert [g.uuid for g in seen.gpus if g.uuid] in ([], uuids)  # newer DCGM may omit the UUID rows
        assert len(seen.gpus) == len(uuids)
    if (folder / "dcgmi-diag-r1.txt").is_file():
        rows = gpu_verify.parse_dcgm_diag((folder / "dcgmi-diag-r1.txt").read_text())
        assert rows["Pass"] + rows["Fail"] + rows["Skip"] + rows["Warn"], "no test row read from dcgmi diag -r 1"


@pytest.mark.parametrize("folder", CAPTURES, ids=lambda p: p.name)
def test_parsers_on_real_capture(folder):
    check_capture(folder)


def test_the_capture_check_itself_on_a_folder_built_from_a_synthetic_report(tmp_path):
    """The check above works (it runs on a folder laid out as the capture script writes it), so a real
    capture that disagrees with the parsers fails loudly."""
    folder = tmp_path / "host-20261201T000000Z"
    folder.mkdir()
    (folder / "PROVENANCE").write_text("- `nvidia-smi -q -x` → nvidia-smi-q.xml, exit 0\n")
    (folder / "nvidia-smi-q.xml").write_text((FIXTURES / "synthetic-hgx-h100-r535-healthy.xml").read_text())
    (folder / "query-gpu.csv").write_text(
        "0, NVIDIA H100 80GB HBM3, GPU-00000000-aaaa-bbbb-cccc-000000000000, 81559, 00000000:18:00.0, 0x233010DE, 535.129.03\n"
        "1, NVIDIA H100 80GB HBM3, GPU-00000000-aaaa-bbbb-cccc-000000000001, 81559, 00000000:2A:00.0, 0x233010DE, 535.129.03\n")
    (folder / "nvidia-smi-L.txt").write_text(
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-aaaa-bbbb-cccc-000000000000)\n"
        "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-aaaa-bbbb-cccc-000000000001)\n")
    (folder / "nvidia-smi.txt").write_text(
        "| NVIDIA-SMI 535.129.03    Driver Version: 535.129.03   CUDA Version: 12.2     |\n")
    # the toolkit's view of the brands (`nvidia-container-cli info`) and DCGM's of the GPUs, as captured
    (folder / "nvidia-container-cli-info.txt").write_text(
        "NVRM version:   535.129.03\nCUDA version:   12.2\n\nDevice Index:   0\nModel:          NVIDIA H100 80GB HBM3\n"
        "Brand:          Nvidia\nGPU UUID:       GPU-00000000-aaaa-bbbb-cccc-000000000000\n\nDevice Index:   1\n"
        "Brand:          Nvidia\n")
    (folder / "dcgmi-discovery.txt").write_text(
        "2 GPUs found.\n| GPU ID | Device Information |\n"
        "| 0      | Name: NVIDIA H100 80GB HBM3 |\n|        | Device UUID: GPU-00000000-aaaa-bbbb-cccc-000000000000 |\n"
        "| 1      | Name: NVIDIA H100 80GB HBM3 |\n|        | Device UUID: GPU-00000000-aaaa-bbbb-cccc-000000000001 |\n")
    check_capture(folder)
    (folder / "nvidia-container-cli-info.txt").write_text("Brand:          Tesla\nBrand:          Tesla\n")
    with pytest.raises(AssertionError):  # the XML says NVIDIA: provision's mapping would disagree with the toolkit
        check_capture(folder)
    (folder / "nvidia-container-cli-info.txt").unlink()
    (folder / "nvidia-smi-L.txt").write_text("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-other)\n")
    with pytest.raises(AssertionError):
        check_capture(folder)


# ------------------------------------------------------------------------------- field parsing
def test_r510_v11_layout():
    health = load("synthetic-p100-r510-v11.xml")
    assert (health.driver_version, health.cuda_version) == ("510.47.03", "11.6")
    [gpu] = health.gpus
    assert gpu == GpuHealth(
        index=0, pci_bus_id="00000000:00:04.0", uuid="GPU-00000000-1111-2222-3333-000000000001",
        product_name="Tesla P100-PCIE-16GB", product_brand="Tesla", persistence_mode=False, ecc_enabled=True,
        volatile_correctable=0, volatile_uncorrectable=0, aggregate_correctable=3, aggregate_uncorrectable=0,
        retired_pages=0, retired_pages_pending=False,
        remapped_rows_correctable=None, remapped_rows_uncorrectable=None, remapping_pending=None, remapping_failed=None,
        pcie=PcieLink(max_gen=3, current_gen=3, max_width=16, current_width=16),
        clock_event_reasons=("gpu_idle",), idle=True, performance_state="P0", gpu_utilization=0,
        fabric_state=None, fabric_status=None)


def test_r535_layout_healthy_idle_hgx():
    health = load("synthetic-hgx-h100-r535-healthy.xml")
    assert len(health.gpus) == 2
    gpu = health.gpus[1]
    assert gpu.index == 1 and gpu.pci_bus_id == "00000000:2A:00.0"
    assert gpu.product_brand == "NVIDIA" and gpu.persistence_mode is True
    assert (gpu.volatile_uncorrectable, gpu.aggregate_uncorrectable, gpu.volatile_correctable) == (0, 0, 0)
    assert gpu.retired_pages is None and gpu.retired_pages_pending is False  # counts N/A, pending No
    assert (gpu.remapped_rows_correctable, gpu.remapped_rows_uncorrectable) == (0, 0)
    assert (gpu.remapping_pending, gpu.remapping_failed) == (False, False)
    assert gpu.pcie == PcieLink(max_gen=5, current_gen=1, max_width=16, current_width=16)
    assert (gpu.fabric_state, gpu.fabric_status) == ("Completed", "Success")
    assert gpu.idle is True
    assert gpu_health.problems(health) == [] and gpu_health.warnings(health) == []


def test_r570_split_sram_counters_are_summed():
    health = load("synthetic-hgx-h100-r570-faults.xml")
    gpu = health.gpus[0]
    assert (gpu.volatile_uncorrectable, gpu.aggregate_uncorrectable) == (2, 2)
    assert gpu.remapped_rows_uncorrectable == 1 and gpu.remapping_pending is True
    text = (FIXTURES / "synthetic-hgx-h100-r570-faults.xml").read_text().replace(
        "<sram_uncorrectable_secded>0</sram_uncorrectable_secded>",
        "<sram_uncorrectable_secded>3</sram_uncorrectable_secded>", 1).replace(
        "<sram_uncorrectable_parity>0</sram_uncorrectable_parity>",
        "<sram_uncorrectable_parity>1</sram_uncorrectable_parity>", 1)
    assert gpu_health.parse(text).gpus[0].volatile_uncorrectable == 2 + 3 + 1


def test_mixed_spellings_old_throttle_reasons_and_no_fabric():
    [gpu] = load("synthetic-a100-mixed-remap-failure.xml").gpus
    assert gpu.clock_event_reasons == ("gpu_idle",) and gpu.idle is True
    assert gpu.fabric_state is None and gpu.retired_pages is None and gpu.retired_pages_pending is None
    assert gpu.remapping_failed is True and gpu.remapped_rows_uncorrectable == 512


def _one_gpu(body: str, *, root_extra: str = "") -> str:
    return (f"<nvidia_smi_log><driver_version>550.54.15</driver_version><cuda_version>12.4</cuda_version>{root_extra}"
            f'<gpu id="00000000:01:00.0"><uuid>GPU-x</uuid>{body}</gpu></nvidia_smi_log>')


@pytest.mark.parametrize("body, field, value", [
    ("<persistence_mode>N/A</persistence_mode>", "persistence_mode", None),  # Windows / unsupported
    ("<persistence_mode>Enabled</persistence_mode>", "persistence_mode", True),
    ("", "persistence_mode", None),  # element missing (older drivers)
    ("<ecc_mode><current_ecc>Disabled</current_ecc></ecc_mode>", "ecc_enabled", False),
    ("<ecc_errors>N/A</ecc_errors>", "volatile_uncorrectable", None),
    ("<ecc_errors><volatile><double_bit><device_memory>2</device_memory><l1_cache>N/A</l1_cache></double_bit>"
     "</volatile></ecc_errors>", "volatile_uncorrectable", 2),  # no <total>: the parts are summed
    ("<ecc_errors><volatile><dram_uncorrectable>N/A</dram_uncorrectable><sram_uncorrectable>N/A</sram_uncorrectable>"
     "</volatile></ecc_errors>", "volatile_uncorrectable", None),  # all N/A is unknown, not zero
    ("<retired_pages><pending_blacklist>Yes</pending_blacklist></retired_pages>", "retired_pages_pending", True),
    ("<retired_pages><pending_blacklist>No</pending_blacklist><pending_retirement>Yes</pending_retirement>"
     "</retired_pages>", "retired_pages_pending", True),
    ("<retired_pages><multiple_single_bit_retirement><retired_count>2</retired_count></multiple_single_bit_retirement>"
     "<double_bit_retirement><retired_count>1</retired_count></double_bit_retirement></retired_pages>",
     "retired_pages", 3),
    ("<remapped_rows>N/A</remapped_rows>", "remapping_pending", None),
    ("<pci><pci_gpu_link_info><pcie_gen><max_link_gen>N/A</max_link_gen></pcie_gen></pci_gpu_link_info></pci>",
     "pcie", PcieLink()),
    ("<utilization><gpu_util>97 %</gpu_util></utilization>", "gpu_utilization", 97),
    ("<clocks_event_reasons><clocks_event_reason_gpu_idle>Not Active</clocks_event_reason_gpu_idle>"
     "<clocks_event_reason_sw_power_cap>Active</clocks_event_reason_sw_power_cap></clocks_event_reasons>",
     "clock_event_reasons", ("sw_power_cap",)),
    ("<clocks_event_reasons><clocks_event_reason_gpu_idle>Not Active</clocks_event_reason_gpu_idle>"
     "</clocks_event_reasons>", "idle", False),
    ("<clocks_event_reasons><clocks_event_reason_gpu_idle>N/A</clocks_event_reason_gpu_idle>"
     "</clocks_event_reasons>", "idle", None),
    ("<fabric><state>N/A</state><status>N/A</status></fabric>", "fabric_state", None),
    ("<fabric><state>In Progress</state><status>N/A</status></fabric>", "fabric_state", "In Progress"),
])
def test_field_spellings_and_not_available(body, field, value):
    [gpu] = gpu_health.parse(_one_gpu(body)).gpus
    assert getattr(gpu, field) == value


def test_no_gpu_element_is_an_empty_host_and_bus_id_falls_back():
    assert gpu_health.parse("<nvidia_smi_log><driver_version>N/A</driver_version></nvidia_smi_log>") == HostGpuHealth()
    health = gpu_health.parse("<nvidia_smi_log><gpu><pci><pci_bus_id>00000000:3B:00.0</pci_bus_id></pci></gpu>"
                              "<gpu/></nvidia_smi_log>")
    assert [g.pci_bus_id for g in health.gpus] == ["00000000:3B:00.0", "#1"]


@pytest.mark.parametrize("text, says", [
    ("", "printed nothing"),
    ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", "not XML"),
    ("Failed to initialize NVML: Driver/library version mismatch", "Driver/library version mismatch"),
    ("<nvidia_smi_log><gpu id='0'>", "not XML"),  # cut off
    ("<other/>", "not <nvidia_smi_log>"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><nvidia_smi_log>&a;</nvidia_smi_log>', "entities"),
])
def test_not_a_report_is_a_clear_error(text, says):
    with pytest.raises(GpuHealthParseError) as exc:
        gpu_health.parse(text)
    assert says in str(exc.value)
    assert isinstance(exc.value, ValueError)


# ------------------------------------------------------------------------------- the rules
def test_faults_fixture_findings_exactly():
    found = [(f.severity, f.gpu.split(" (")[0], f.message.split(":")[0])
             for f in gpu_health.findings(load("synthetic-hgx-h100-r570-faults.xml"))]
    assert found == [
        ("fail", "GPU 0", "2 uncorrectable ECC error(s) since the driver was loaded (volatile)"),
        ("fail", "GPU 0", "2 uncorrectable ECC error(s) over the GPU's lifetime (aggregate)"),
        ("fail", "GPU 0", "a row remapping is pending"),
        ("fail", "GPU 1", "NVSwitch fabric state is 'Not Started', not Completed"),
        ("warn", "GPU 1", "persistence mode is off"),
        ("fail", "GPU 2", "page retirement is pending"),
        ("fail", "GPU 2", "PCIe link runs at x8 while the GPU is busy, below its x16 maximum"),
        ("fail", "GPU 2", "PCIe link runs at gen 4 while the GPU is busy, below its gen 5 maximum"),
        ("warn", "GPU 2", "clocks are being slowed down by hw_thermal_slowdown"),
        ("warn", "GPU 3", "PCIe link runs at x8, below its x16 maximum, while the GPU is idle (or its idle state "
                          "is not reported)"),
    ]


def test_problems_and_warnings_name_the_gpu_by_index_bus_and_uuid():
    health = load("synthetic-hgx-h100-r570-faults.xml")
    problems, warnings = gpu_health.problems(health), gpu_health.warnings(health)
    assert len(problems) == 7 and len(warnings) == 3
    assert problems[3].startswith("GPU 1 (00000000:2A:00.0, GPU-00000000-dddd-eeee-ffff-000000000001): NVSwitch fabric")
    assert "nvidia-fabricmanager" in problems[3] and "system not yet initialized" in problems[3]
    assert "nvidia-persistenced" in warnings[0]


def test_remap_failure_means_replacement():
    assert gpu_health.problems(load("synthetic-a100-mixed-remap-failure.xml")) == [
        "GPU 0 (00000000:07:00.0, GPU-00000000-1234-5678-9abc-000000000000): row remapping failed (no spare rows "
        "left): the GPU must be replaced"]


def test_persistence_off_is_a_warning_not_a_problem():
    health = load("synthetic-p100-r510-v11.xml")
    assert gpu_health.problems(health) == []
    assert [w.split(": ", 1)[1].split(":")[0] for w in gpu_health.warnings(health)] == ["persistence mode is off"]


def _gpu(**kw) -> GpuHealth:
    return GpuHealth(index=0, pci_bus_id="00000000:01:00.0", **kw)


@pytest.mark.parametrize("gpu, problems, warnings", [
    # idle GPUs drop their link generation: not flagged, whatever the gap
    (_gpu(pcie=PcieLink(5, 1, 16, 16), idle=True), 0, 0),
    (_gpu(pcie=PcieLink(5, 1, 16, 16), idle=None), 0, 0),
    (_gpu(pcie=PcieLink(5, 4, 16, 16), idle=False), 1, 0),
    (_gpu(pcie=PcieLink(5, 5, 16, 16), idle=False), 0, 0),
    (_gpu(pcie=PcieLink(5, 5, 16, 8), idle=False), 1, 0),
    (_gpu(pcie=PcieLink(5, 5, 16, 8), idle=True), 0, 1),
    (_gpu(pcie=PcieLink(None, 1, None, 8), idle=False), 0, 0),  # maximum not reported: nothing to compare
    (_gpu(fabric_state="Completed", fabric_status="Success"), 0, 0),
    (_gpu(fabric_state="Completed", fabric_status="NVML_ERROR_INSUFFICIENT_RESOURCES"), 1, 0),
    (_gpu(fabric_state="In Progress"), 1, 0),
    (_gpu(volatile_uncorrectable=0, aggregate_uncorrectable=0), 0, 0),
    (_gpu(volatile_uncorrectable=None, aggregate_uncorrectable=None), 0, 0),  # unknown is not a finding
    (_gpu(persistence_mode=None), 0, 0),
    (_gpu(clock_event_reasons=("sw_power_cap", "gpu_idle")), 0, 0),  # normal under load / at idle
    (_gpu(clock_event_reasons=("hw_power_brake_slowdown",)), 0, 1),
])
def test_rule_table(gpu, problems, warnings):
    found = gpu_health.gpu_findings(gpu)
    assert (sum(f.severity == "fail" for f in found), sum(f.severity == "warn" for f in found)) == (problems, warnings)


# ------------------------------------------------------------------------------- the capture script
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "capture-gpu-fixtures.sh"
FAKE_SMI = """#!/bin/sh
# SIMULATION: a fake nvidia-smi answering the capture script's commands from a synthetic report
case "$*" in
"-q -x") cat "$SP_XML" ;;
"-L") printf '%s\\n' "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-aaaa-bbbb-cccc-000000000000)" \\
                     "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-aaaa-bbbb-cccc-000000000001)" ;;
--query-gpu=name\\ *) printf 'NVIDIA H100 80GB HBM3\\nNVIDIA H100 80GB HBM3\\n' ;;
--query-gpu=driver_version\\ *) echo 535.129.03 ;;
--query-gpu=index,*) printf '%s\\n' \\
    "0, NVIDIA H100 80GB HBM3, GPU-00000000-aaaa-bbbb-cccc-000000000000, 81559, 00000000:18:00.0, 0x233010DE, 535.129.03" \\
    "1, NVIDIA H100 80GB HBM3, GPU-00000000-aaaa-bbbb-cccc-000000000001, 81559, 00000000:2A:00.0, 0x233010DE, 535.129.03" ;;
"topo -m") echo "GPU0 X NV18"; echo "topology warning" >&2 ;;
"-q") printf '    Product Brand                         : NVIDIA\n%.0s' 1 2 ;;
"") echo "| NVIDIA-SMI 535.129.03    Driver Version: 535.129.03   CUDA Version: 12.2     |" ;;
*) echo "unexpected: $*" >&2; exit 9 ;;
esac
"""


def test_capture_script_writes_a_folder_the_parsers_accept(tmp_path):
    """SIMULATION (no GPU here): the script against a fake nvidia-smi, then the same check as real captures get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(FAKE_SMI)
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 1\n")  # no usable docker: the CUDA sample is skipped
    # SIMULATION: the sandbox's fake dcgmi, on the report's two GPUs
    (bin_dir / "dcgmi").write_text((Path(fake_gpu.__file__).parent / "dcgmi").read_text())
    (tmp_path / "gpus").write_text("".join(
        f"{i}|NVIDIA H100 80GB HBM3|GPU-00000000-aaaa-bbbb-cccc-00000000000{i}|81559|00000000:18:00.0|0x233010DE\n"
        for i in (0, 1)))
    for tool in ("nvidia-smi", "docker", "dcgmi"):
        (bin_dir / tool).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SP_XML": str(FIXTURES / "synthetic-hgx-h100-r535-healthy.xml"),
           "FAKE_GPU_FILE": str(tmp_path / "gpus"), "FAKE_GPU_STATE": str(tmp_path / "no-state")}
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    [folder] = list((tmp_path / "out").iterdir())
    check_capture(folder)
    provenance = (folder / "PROVENANCE").read_text()
    assert "GPU model(s): 2 NVIDIA H100 80GB HBM3" in provenance and "driver: 535.129.03" in provenance
    assert "`nvidia-smi topo -m` → topo-m.txt, exit 0" in provenance
    assert (folder / "topo-m.txt.stderr").read_text() == "topology warning\n"
    assert not (folder / "nvidia-smi-q.xml.stderr").exists()  # empty stderr files are removed
    assert "product brand(s): 2 NVIDIA" in provenance
    assert "`dcgmi discovery -l` → dcgmi-discovery.txt, exit 0" in provenance  # checked by check_capture
    assert "`dcgmi diag -r 1` → dcgmi-diag-r1.txt, exit 0" in provenance
    assert "skipped: nvidia-container-cli info" in provenance
    assert "skipped: CUDA sample" in provenance
    assert os.access(SCRIPT, os.X_OK)


def test_capture_script_is_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
