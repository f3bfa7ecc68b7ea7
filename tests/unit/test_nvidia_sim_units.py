"""SIMULATED NVIDIA stack of the sandbox (no GPU exists here): control texts, the stand-in nvidia-ctk's
logic, and the fake nvidia-smi's output as provision's fact parsers read it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provision.facts import parsers as p
from provision_sandbox import fake_gpu
from provision_sandbox.fake_gpu import nvidia_ctk
from provision_sandbox.upstreams import nvidia_repo as nr
from provision_sandbox.upstreams import web
from provision_sandbox.upstreams.packages import field, parse_control

SMI = str(fake_gpu.HERE / "nvidia-smi")
QUERY = "--query-gpu=index,name,uuid,memory.total,pci.bus_id,pci.device_id,driver_version"


@pytest.fixture
def gpus_file(tmp_path: Path, monkeypatch) -> Path:
    gpus = fake_gpu.default_gpus("sbx2", count=2)
    path = tmp_path / "gpus"
    path.write_text(fake_gpu.gpus_file_text(gpus))
    monkeypatch.setenv("FAKE_GPU_FILE", str(path))
    return path


def smi(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", SMI, *args], capture_output=True, text=True)


def test_simulated_list_file_is_upstreams_form_and_guide_adds_signed_by():
    assert nr.LIST_TEXT == "deb https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n"
    assert nr.signed_list_text() == ("deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] "
                                     "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /\n")


@pytest.mark.parametrize("version", nr.NVIDIA_VERSIONS)
def test_simulated_packages_have_nvidias_dependency_shape(version):
    controls = {name: nr.control(name, version, 4) for name in nr.PACKAGES}
    assert field(controls["nvidia-container-toolkit"], "Depends") == (
        f"nvidia-container-toolkit-base (= {version}), libnvidia-container-tools (= {version})")
    assert field(controls["libnvidia-container-tools"], "Depends") == f"libnvidia-container1 (= {version})"
    for name, text in controls.items():
        fields = dict(parse_control(text))
        assert fields["Package"] == name and fields["Version"] == version
        assert fields["Description"].startswith("SIMULATION:")


def test_simulated_payload_places_tools_in_usr_bin_with_the_version():
    assert set(nr.payload("nvidia-container-toolkit", "1.17.8-1")) >= {
        "usr/bin/nvidia-container-runtime-hook", "usr/bin/nvidia-container-runtime"}
    ctk, mode = nr.payload("nvidia-container-toolkit-base", "1.17.8-1")["usr/bin/nvidia-ctk"]
    assert mode == 0o755 and 'VERSION = "1.17.8"' in ctk and "SIMULATION" in ctk


def test_simulated_fake_scripts_say_simulation():
    for name in nr.FAKE_GPU_FILES:
        assert "SIMULATION" in fake_gpu.source(name)[:400], name


def test_recipe_hash_follows_the_recipe():
    assert nr.recipe_hash("a") != nr.recipe_hash("b") and len(nr.recipe_hash()) == 16


def test_web_serves_the_simulated_nvidia_site_from_its_bind_mount():
    volumes = {"/c/docker": {"bind": "/srv/www/download.docker.com"}, "/c/nv": {"bind": "/srv/www/nvidia.github.io"}}
    assert web.volumes_sites(volumes) == ["download.docker.com", "nvidia.github.io"]


# -- nvidia-ctk stand-in ---------------------------------------------------------------------------
def test_simulated_ctk_merge_keeps_other_keys_and_runtimes():
    merged = nvidia_ctk.merge_docker_config({"log-driver": "json-file", "runtimes": {"crun": {"path": "crun"}}})
    assert merged == {"log-driver": "json-file", "runtimes": {
        "crun": {"path": "crun"}, "nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
    assert "default-runtime" not in merged
    assert nvidia_ctk.merge_docker_config({}, set_as_default=True)["default-runtime"] == "nvidia"


def test_simulated_ctk_runtime_configure_writes_the_file(tmp_path: Path):
    config = tmp_path / "daemon.json"
    config.write_text('{"log-driver":"json-file"}')
    assert nvidia_ctk.main(["runtime", "configure", "--runtime=docker", f"--config={config}"]) == 0
    assert json.loads(config.read_text()) == {"log-driver": "json-file",
                                              "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
    missing = tmp_path / "new" / "daemon.json"
    assert nvidia_ctk.main(["runtime", "configure", "--runtime=docker", "--set-as-default", f"--config={missing}"]) == 0
    assert json.loads(missing.read_text())["default-runtime"] == "nvidia"
    assert nvidia_ctk.main(["runtime", "configure", "--runtime=containerd", f"--config={config}"]) == 1


def test_simulated_ctk_cdi_spec_lists_every_gpu_and_all():
    gpus = nvidia_ctk.list_gpus("GPU 0: A (UUID: GPU-a)\nGPU 1: B (UUID: GPU-b)\n")
    assert gpus == [("0", "A", "GPU-a"), ("1", "B", "GPU-b")]
    assert nvidia_ctk.spec_devices(nvidia_ctk.cdi_spec(gpus)) == [
        "nvidia.com/gpu=0", "nvidia.com/gpu=GPU-a", "nvidia.com/gpu=1", "nvidia.com/gpu=GPU-b", "nvidia.com/gpu=all"]


def test_simulated_ctk_runs_as_a_script():
    proc = subprocess.run([sys.executable, str(fake_gpu.HERE / "nvidia_ctk.py"), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("NVIDIA Container Toolkit CLI version")


# -- fake nvidia-smi, read by provision's parsers -------------------------------------------------------
def test_simulated_smi_query_parses_into_gpus(gpus_file):
    out = smi(QUERY, "--format=csv,noheader,nounits")
    assert out.returncode == 0
    rows = p.parse_nvidia_smi_query(out.stdout)
    assert [r["uuid"] for r in rows] == [fake_gpu.gpu_uuid("sbx2", 0), fake_gpu.gpu_uuid("sbx2", 1)]
    assert rows[0] == {"index": 0, "name": fake_gpu.DEFAULT_GPU_NAME, "uuid": fake_gpu.gpu_uuid("sbx2"),
                       "memory_mib": 81559, "pci_id": "10de:2330", "pci_bus_id": "0000:18:00.0",
                       "driver_version": "550.54.15"}
    assert rows[1]["pci_bus_id"] == "0000:19:00.0"


def test_simulated_smi_list_and_header_parse(gpus_file):
    assert smi("-L").stdout.splitlines() == [
        f"GPU {i}: {fake_gpu.DEFAULT_GPU_NAME} (UUID: {fake_gpu.gpu_uuid('sbx2', i)})" for i in (0, 1)]
    header = smi().stdout
    assert p.parse_nvidia_smi_header(header) == "12.4" and p.parse_nvidia_smi_driver(header) == "550.54.15"
    assert "SIMULATION" in header


def test_simulated_smi_short_query_with_units_and_header(gpus_file):
    lines = smi("--query-gpu=index,uuid,name,memory.total", "--format=csv").stdout.splitlines()
    assert lines[0] == "index, uuid, name, memory.total [MiB]"
    assert lines[1] == f"0, {fake_gpu.gpu_uuid('sbx2')}, {fake_gpu.DEFAULT_GPU_NAME}, 81559 MiB"
    bad = smi("--query-gpu=nope", "--format=csv")
    assert bad.returncode == 2 and 'Field "nope"' in bad.stdout


def test_simulated_smi_defaults_to_one_gpu_without_a_gpus_file(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FAKE_GPU_FILE", str(tmp_path / "absent"))
    listed = smi("-L").stdout.splitlines()
    assert len(listed) == 1 and listed[0].startswith(f"GPU 0: {fake_gpu.DEFAULT_GPU_NAME} (UUID: GPU-")


# ------------------------------------------------------------------------- the SIMULATED dcgmi
DCGMI = str(fake_gpu.HERE / "dcgmi")


def dcgmi(*args: str, state: str = "", tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "state").write_text(state)
    return subprocess.run(["sh", DCGMI, *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "FAKE_GPU_STATE": str(tmp_path / "state"),
                               "FAKE_GPU_FILE": str(tmp_path / "gpus")})


@pytest.mark.parametrize("state, status, needle", [
    ("", "ok", "DCGM level 1 (dcgmi diag): 9 passed on 2 GPU(s) DCGM sees"),
    ("fabric=completed\n", "ok", "on 2 GPU(s) DCGM sees and 4 NVSwitch(es)"),
    ("ecc_uncorrectable=1\n", "failed",
     "failed: Page Retirement/Row Remap; GPU 1 had uncorrectable memory errors and 2 rows were remapped"),
    ("remap_pending=0\n", "failed", "GPU 0 had memory errors and row remappings are pending"),
    ("persistence=off\n", "failed", "failed: Persistence Mode; Persistence mode for GPU 0 is currently disabled. "
                                    "The DCGM diagnostic requires peristence mode to be enabled."),
])
def test_simulated_dcgmi_follows_the_state_as_provisions_verdict_reads_it(tmp_path, state, status, needle):
    from provision.commands import gpu_verify
    from provision.operations import gpu_ladder

    (tmp_path / "gpus").write_text(fake_gpu.gpus_file_text(fake_gpu.default_gpus("sbx2", count=2)))
    listing = dcgmi("discovery", "-l", state=state, tmp_path=tmp_path)
    diag = dcgmi("diag", "-r", "1", state=state, tmp_path=tmp_path)
    assert listing.returncode == 0 and diag.returncode == (0 if status == "ok" else 226), diag.stderr
    verdict = gpu_ladder.dcgm(diag.returncode, f"{listing.stdout}{gpu_verify.DCGM_DIAG_MARKER}\n{diag.stdout}", None, 2)
    assert verdict.status == status and needle in verdict.message, verdict
    assert "SIMULATION" in diag.stdout  # the DCGM Version row says so
    assert [g.uuid for g in gpu_verify.parse_dcgm_discovery(listing.stdout).gpus] == [
        fake_gpu.gpu_uuid("sbx2", 0), fake_gpu.gpu_uuid("sbx2", 1)]
