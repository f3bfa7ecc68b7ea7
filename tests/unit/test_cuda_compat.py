"""The image-CUDA vs host-driver decision (provision/operations/cuda_compat.py) as a table: native runs,
the toolkit's own NVIDIA_REQUIRE_* check, forward compatibility (cuda-compat) on data center GPUs only,
minor version compatibility when the check is disabled, legacy CUDA_VERSION-only images, and malformed
input as a clear error."""

from __future__ import annotations

import pytest

from provision.errors import EXIT_BAD_INPUT, InputError
from provision.operations import cuda_compat
from provision_sandbox.upstreams import cuda_images
from provision.operations.cuda_compat import CudaCompatError, check, host_cuda, requirement_from_config, requirement_from_env

BRANDS = ("tesla", "unknown", "nvidia", "nvidiartx", "geforce", "geforcertx", "quadro", "quadrortx", "titan", "titanrtx")


def nvidia_require(cuda: str, branches: tuple[int, ...]) -> str:
    """NVIDIA_REQUIRE_CUDA as NVIDIA's CUDA images write it: cuda>=X.Y, then one brand,driver range per
    (brand, supported forward-compat branch)."""
    return " ".join([f"cuda>={cuda}"] + [f"brand={b},driver>={d},driver<{d + 1}" for d in branches for b in BRANDS])


# nvidia/cuda-style image configs (the Env lists as `docker image inspect` shows them)
CUDA_12_4 = ["PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "NVARCH=x86_64", f"NVIDIA_REQUIRE_CUDA={nvidia_require('12.4', (470, 525, 535))}",
             "NV_CUDA_CUDART_VERSION=12.4.127-1", "CUDA_VERSION=12.4.1",
             "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
             "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"]
CUDA_11_8 = ["CUDA_VERSION=11.8.0", f"NVIDIA_REQUIRE_CUDA={nvidia_require('11.8', (450, 470))}"]
CUDA_13_0 = ["CUDA_VERSION=13.0.1", "NVIDIA_REQUIRE_CUDA=cuda>=13.0"]
LEGACY_12_6 = ["CUDA_VERSION=12.6.2"]  # CUDA_VERSION only: the toolkit checks cuda>=12.6
LEGACY_12_2 = ["CUDA_VERSION=12.2.0"]
DISABLED_12_4 = ["CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.4", "NVIDIA_DISABLE_REQUIRE=true"]
DISABLED_12_4_COMPAT = DISABLED_12_4 + ["LD_LIBRARY_PATH=/usr/local/cuda/compat/lib.real:/usr/local/cuda/compat:/usr/lib"]
NOT_DISABLED = ["CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.4", "NVIDIA_DISABLE_REQUIRE=yes"]  # not ParseBool
WITH_ARCH = CUDA_12_4 + ["NVIDIA_REQUIRE_ARCH=arch>=9.0"]
WITH_JETPACK = CUDA_12_4 + ["NVIDIA_REQUIRE_JETPACK=csv-mounts=all"]  # not a constraint; the toolkit skips it
PLAIN = ["PATH=/usr/bin", "PYTHON_VERSION=3.12.7", "EMPTY="]
SIM_IMAGES = cuda_images.IMAGES  # SIMULATION: the sandbox registry's stand-ins


ROWS = [
    # (id, image env, host driver, host CUDA, host brand, ok, how, words in the message/warnings)
    ("same-cuda", CUDA_12_4, "550.54.15", "12.4", "NVIDIA", True, "native", ["needs CUDA 12.4", "550.54.15"]),
    ("newer-driver", CUDA_12_4, "570.133.20", "12.8", "NVIDIA", True, "native", []),
    ("older-image-newer-driver", CUDA_11_8, "550.54.15", "12.4", "Tesla", True, "native", []),
    ("fwd-compat-branch-535", CUDA_12_4, "535.104.05", "12.2", "Tesla", True, "forward-compat",
     ["cuda-compat", "data center"]),
    ("fwd-compat-branch-470", CUDA_12_4, "470.256.02", "11.4", "NVIDIA", True, "forward-compat", []),
    ("fwd-compat-on-geforce", CUDA_12_4, "535.104.05", "12.2", "GeForce", False, "refused",
     ["data center GPUs", "geforce", "535.104.05", "12.2", "550.54.14"]),
    ("fwd-compat-brand-unknown", CUDA_12_4, "535.104.05", "12.2", None, True, "forward-compat",
     ["not known", "brand=tesla,driver>=535,driver<536"]),
    ("fwd-compat-brand-reported-unknown", CUDA_12_4, "535.104.05", "12.2", "Unknown", True, "forward-compat",
     ["reported as Unknown"]),
    ("disabled-compat-brand-reported-unknown", DISABLED_12_4_COMPAT, "470.256.02", "11.4", "Unknown", True,
     "forward-compat", ["not known"]),
    ("driver-too-old", CUDA_12_4, "545.23.08", "12.3", "NVIDIA", False, "refused",
     ["needs CUDA 12.4", "545.23.08", "CUDA 12.3", "cuda>=12.4", ">= 550.54.14", "image tag built for CUDA 12.3 or older"]),
    ("cuda13-on-r575", CUDA_13_0, "575.57.08", "12.9", "NVIDIA", False, "refused",
     ["needs CUDA 13.0", ">= 580.65.06", "CUDA 12.9 or older"]),
    ("legacy-cuda-version-too-new", LEGACY_12_6, "550.54.15", "12.4", "NVIDIA", False, "refused",
     ["cuda>=12.6", "CUDA_VERSION", ">= 560.28.03"]),
    ("legacy-cuda-version-ok", LEGACY_12_2, "550.54.15", "12.4", "NVIDIA", True, "native", []),
    ("disabled-minor-version", DISABLED_12_4, "535.104.05", "12.2", "NVIDIA", True, "minor-version",
     ["limited feature set", "525.60.13", ">= 550.54.14"]),
    ("disabled-minor-version-floor", DISABLED_12_4, "525.60.13", "12.0", "Tesla", True, "minor-version", []),
    ("disabled-below-minor-floor", DISABLED_12_4, "520.61.05", "11.8", "Tesla", False, "refused",
     ["CUDA driver version is insufficient", "520.61.05", ">= 550.54.14"]),
    ("disabled-compat-datacenter", DISABLED_12_4_COMPAT, "470.256.02", "11.4", "Tesla", True, "forward-compat",
     ["cuda-compat"]),
    ("disabled-compat-geforce", DISABLED_12_4_COMPAT, "470.256.02", "11.4", "GeForce RTX", False, "refused",
     ["only on data center GPUs", "geforcertx"]),
    ("disabled-no-compat-major-gap", DISABLED_12_4, "470.256.02", "11.4", "Tesla", False, "refused", []),
    ("disable-require-yes-is-not-true", NOT_DISABLED, "535.104.05", "12.2", "Tesla", False, "refused",
     ["unsatisfied condition: cuda>=12.4"]),
    ("arch-unknown-assumed", WITH_ARCH, "550.54.15", "12.4", "NVIDIA", True, "native", ["arch>=9.0", "not known"]),
    ("jetpack-ignored", WITH_JETPACK, "550.54.15", "12.4", "NVIDIA", True, "native", []),
    # the sandbox's SIMULATED CUDA images (provision_sandbox/upstreams/cuda_images.py) on its simulated driver
    ("sim-too-new", list(SIM_IMAGES["13.0.0-base-ubuntu24.04"]), "550.54.15", "12.4", None, False, "refused",
     ["needs CUDA 13.0", "supports CUDA 12.4", ">= 580.65.06"]),
    ("sim-compat-brand-unknown", list(SIM_IMAGES["12.8.0-compat-sim"]), "550.54.15", "12.4", None, True,
     "forward-compat", ["assumed met", "brand=tesla,driver>=550,driver<551"]),
    ("sim-compat-on-geforce", list(SIM_IMAGES["12.8.0-compat-sim"]), "550.54.15", "12.4", "GeForce", False,
     "refused", []),
    ("sim-compat-other-branch", list(SIM_IMAGES["12.8.0-compat-sim"]), "535.104.05", "12.2", "Tesla", False,
     "refused", [">= 570.26"]),
    ("no-cuda-image", PLAIN, "470.256.02", "11.4", None, True, "none", ["declares no CUDA requirement"]),
]


@pytest.mark.parametrize("env, driver, cuda, brand, ok, how, words", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_decision_table(env, driver, cuda, brand, ok, how, words):
    decision = check(requirement_from_env(env), host_cuda(driver, cuda, brand), "registry.example/app:1")
    assert (decision.ok, decision.how) == (ok, how), decision
    text = " ".join([decision.message, *decision.warnings])
    for word in words:
        assert word in text, (word, text)
    if not ok:
        assert "Remedy:" in decision.message and driver in decision.message and "registry.example/app:1" in decision.message


def test_refusal_message_exactly():
    decision = check(requirement_from_env(CUDA_12_4), host_cuda("545.23.08", "12.3", "NVIDIA"), "nvidia/cuda:12.4.1-base")
    assert decision.message == (
        "nvidia/cuda:12.4.1-base needs CUDA 12.4 (cuda>=12.4 from NVIDIA_REQUIRE_CUDA), but the host's driver "
        "545.23.08 supports CUDA 12.3: the NVIDIA Container Toolkit will refuse to start the container "
        "(\"unsatisfied condition: cuda>=12.4\"). Remedy: install a driver >= 550.54.14 (the driver CUDA 12.4 was "
        "released with, Linux x86_64), or use an image tag built for CUDA 12.3 or older.")


def test_requirement_parsing():
    req = requirement_from_env(CUDA_12_4)
    assert req.cuda_version == (12, 4, 1) and req.cuda == (12, 4)
    assert req.compat_libs is True  # NVIDIA's brand/driver alternatives are there because the image ships cuda-compat
    assert req.disable_require is False
    [alternatives] = req.requires
    assert len(alternatives) == 1 + 3 * len(BRANDS)
    assert [str(c) for c in alternatives[1]] == ["brand=tesla", "driver>=470", "driver<471"]
    assert requirement_from_env(LEGACY_12_6).requires == () and requirement_from_env(LEGACY_12_6).cuda == (12, 6)
    assert requirement_from_env(DISABLED_12_4).compat_libs is False
    assert requirement_from_env(DISABLED_12_4_COMPAT).compat_libs is True
    assert requirement_from_env(DISABLED_12_4, compat_libs=True).compat_libs is True  # the caller looked inside
    assert requirement_from_env(None).declared is False


def test_legacy_image_gets_the_toolkits_cuda_check():
    assert [[[str(c) for c in g] for g in alts] for alts in cuda_compat.enforced(requirement_from_env(LEGACY_12_6))] \
        == [[["cuda>=12.6"]]]
    assert cuda_compat.enforced(requirement_from_env(DISABLED_12_4)) == ()


@pytest.mark.parametrize("config", [
    {"Config": {"Env": CUDA_12_4}},  # docker image inspect
    {"config": {"Env": CUDA_12_4}, "rootfs": {}},  # registry config blob
    {"Env": CUDA_12_4},
])
def test_config_shapes(config):
    assert requirement_from_config(config) == requirement_from_env(CUDA_12_4)


# nvidia-smi -q -x <product_brand> (NVML's nvmlBrandType_t as nvidia-smi spells it) → the name the NVIDIA Container
# Toolkit compares brand= with (libnvidia-container src/driver.c; go-nvlib GetBrandAsString), lower case
@pytest.mark.parametrize("smi, toolkit", [
    ("Tesla", "tesla"), ("tesla", "tesla"), ("NVIDIA", "nvidia"), ("Quadro", "quadro"), ("NVS", "nvs"),
    ("Grid", "grid"), ("GeForce", "geforce"), ("Titan", "titan"), ("TITAN", "titan"),
    ("NVIDIA Virtual Applications", "nvidiavapps"), ("NVIDIA Virtual PC", "nvidiavpc"),
    ("NVIDIA Virtual Compute Server", "nvidiavcs"), ("NVIDIA RTX Virtual Workstation", "nvidiavws"),
    ("NVIDIA Cloud Gaming", "nvidiacloudgaming"), ("NVIDIA vGaming", "nvidiacloudgaming"),
    ("Quadro RTX", "quadrortx"), ("NVIDIA RTX", "nvidiartx"), ("GeForce RTX", "geforcertx"),
    ("Titan RTX", "titanrtx"), ("Unknown", "unknown"), ("", None),
])
def test_brand_spellings(smi, toolkit):
    assert host_cuda("550.54.15", "12.4", smi).brand == toolkit


# brand= alternatives evaluated as libnvidia-container does (src/cli/dsl.c, src/cli/configure.c): alternatives
# separated by spaces are ORed, constraints joined by commas ANDed; brand takes = and !=, compared without case;
# an empty constraint is skipped. (require, host driver, host CUDA, nvidia-smi brand, ok, how)
FWD_535 = "cuda>=12.4 brand=tesla,driver>=535,driver<536 brand=nvidia,driver>=535,driver<536"
VGPU_535 = "cuda>=12.4 brand=vcs,driver>=535,driver<536 brand=nvidiavcs,driver>=535,driver<536"


@pytest.mark.parametrize("require, driver, cuda, brand, ok, how", [
    (FWD_535, "535.104.05", "12.2", "Tesla", True, "forward-compat"),
    (FWD_535, "535.104.05", "12.2", "NVIDIA", True, "forward-compat"),
    (FWD_535, "535.104.05", "12.2", "GeForce", False, "refused"),  # no alternative holds: the toolkit refuses
    (FWD_535, "535.104.05", "12.2", "Quadro RTX", False, "refused"),
    (FWD_535, "550.54.15", "12.4", "GeForce", True, "native"),  # cuda>=12.4 holds whatever the brand
    (FWD_535, "545.23.08", "12.3", "Tesla", False, "refused"),  # the brand holds, the driver branch does not
    ("cuda>=12.4 brand=TESLA,driver>=535,driver<536", "535.104.05", "12.2", "Tesla", True, "forward-compat"),
    # NVIDIA's images write brand=vcs; the toolkit names that brand NvidiaVCS: only nvidiavcs matches it
    (VGPU_535.split(" brand=nvidiavcs")[0], "535.104.05", "12.2", "NVIDIA Virtual Compute Server", False, "refused"),
    (VGPU_535, "535.104.05", "12.2", "NVIDIA Virtual Compute Server", True, "forward-compat"),
    ("cuda>=12.4 brand!=geforce,driver>=535,driver<536", "535.104.05", "12.2", "Tesla", True, "forward-compat"),
    ("cuda>=12.4 brand!=geforce,driver>=535,driver<536", "535.104.05", "12.2", "GeForce", False, "refused"),
    ("cuda>=12.4,", "550.54.15", "12.4", "NVIDIA", True, "native"),  # the empty constraint is skipped
    ("cuda>=12.2,driver!=535.104.05", "535.104.05", "12.2", "NVIDIA", False, "refused"),
])
def test_brand_alternatives_as_the_toolkit_evaluates_them(require, driver, cuda, brand, ok, how):
    decision = check(requirement_from_env([f"NVIDIA_REQUIRE_CUDA={require}"]), host_cuda(driver, cuda, brand))
    assert (decision.ok, decision.how) == (ok, how), decision


def test_host_cuda_details():
    assert host_cuda(" 550.54.15 ", "12.4").driver == (550, 54, 15)


# NVIDIA's CUDA Toolkit release notes, Table 3 "CUDA Toolkit and Corresponding Driver Versions", column "Linux
# x86_64 Driver Version", the "CUDA X.Y GA" rows (docs.nvidia.com/cuda/cuda-toolkit-release-notes/index.html,
# CUDA 13.2 Update 2 edition), written out here by hand from that table, not from provision's code.
NVIDIA_TABLE_3_GA = {
    "11.0.2": "450.51.05", "11.1": "455.23", "11.2.0": "460.27.03", "11.3.0": "465.19.01", "11.4.0": "470.42.01",
    "11.5": "495.29.05", "11.6": "510.39.01", "11.7": "515.43.04", "11.8": "520.61.05", "12.0": "525.60.13",
    "12.1": "530.30.02", "12.2": "535.54.03", "12.3": "545.23.06", "12.4": "550.54.14", "12.5": "555.42.02",
    "12.6": "560.28.03", "12.8": "570.26", "12.9": "575.51.03", "13.0": "580.65.06", "13.1": "590.44.01",
    "13.2": "595.45.04",
}


def test_minimum_driver_table_is_nvidias_table_3():
    rows = {tuple(int(p) for p in release.split(".")[:2]): driver for release, driver in NVIDIA_TABLE_3_GA.items()}
    assert cuda_compat.FULL_FEATURE_DRIVER == rows
    assert cuda_compat.minimum_driver((12, 4, 1)) == ("550.54.14", "525.60.13")  # GA's, not Update 1's 550.54.15
    assert cuda_compat.minimum_driver((11, 8)) == ("520.61.05", "450.80.02")
    assert cuda_compat.minimum_driver((13, 2)) == ("595.45.04", "580.65.06")
    assert cuda_compat.minimum_driver((12, 7)) == (None, "525.60.13")  # never released
    assert cuda_compat.minimum_driver((13, 5)) == (None, "580.65.06")  # after the table provision holds
    assert cuda_compat.minimum_driver((14, 0)) == (None, None)


@pytest.mark.parametrize("call, says", [
    (lambda: requirement_from_env(["CUDA_VERSION=twelve"]), "CUDA_VERSION 'twelve'"),
    (lambda: requirement_from_env(["NVIDIA_REQUIRE_CUDA=cuda>>12.4"]), "in 'cuda>>12.4', the cuda version '>12.4'"),
    (lambda: requirement_from_env(["NVIDIA_REQUIRE_CUDA=cuda>=12.x"]), "the cuda version '12.x' is not a version"),
    (lambda: requirement_from_env(["NVIDIA_REQUIRE_CUDA=brand>=tesla"]), "brand takes '=' or '!='"),
    (lambda: requirement_from_env(["NVIDIA_REQUIRE_CUDA=gpu>=1"]), "'gpu>=1' is not a constraint"),
    (lambda: host_cuda("550.54.15", "N/A"), "host CUDA version 'N/A'"),
    (lambda: host_cuda("", "12.4"), "host driver version ''"),
    (lambda: host_cuda("550.54.15-beta", "12.4"), "host driver version '550.54.15-beta'"),
    (lambda: requirement_from_config({"Config": {"Env": "CUDA_VERSION=12.4"}}), "Env is not a list"),
    (lambda: requirement_from_config(["CUDA_VERSION=12.4"]), "JSON object"),
    (lambda: cuda_compat.parse_constraints("   "), "is empty"),
])
def test_malformed_input_is_a_clear_error(call, says):
    with pytest.raises(CudaCompatError) as exc:
        call()
    assert says in str(exc.value)
    assert isinstance(exc.value, InputError) and isinstance(exc.value, ValueError)
    assert exc.value.exit_code == EXIT_BAD_INPUT
