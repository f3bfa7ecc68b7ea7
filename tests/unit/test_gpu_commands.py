"""Exact command lines of provision/commands/gpu_health.py (issue 14)."""

from __future__ import annotations

import pytest

from provision.commands import gpu_health
from provision.commands.argv import UnsafeValue
from provision.executor.base import as_shell
from provision.facts.script import FACTS_SCRIPT


def test_xml_report():
    assert gpu_health.query_xml() == ["nvidia-smi", "-q", "-x"]


def test_query_gpu_is_the_facts_query_by_default():
    argv = gpu_health.query_gpu()
    assert argv == ["nvidia-smi",
                    "--query-gpu=index,name,uuid,memory.total,pci.bus_id,pci.device_id,driver_version",
                    "--format=csv,noheader,nounits"]
    assert " ".join(argv) in FACTS_SCRIPT  # FACT_QUERY_FIELDS and the facts script stay in step


def test_query_gpu_health_fields_with_units():
    assert gpu_health.query_gpu(gpu_health.HEALTH_QUERY_FIELDS, units=True) == [
        "nvidia-smi",
        "--query-gpu=index,uuid,persistence_mode,ecc.mode.current,ecc.errors.uncorrected.volatile.total,"
        "ecc.errors.uncorrected.aggregate.total,pcie.link.gen.current,pcie.link.gen.max,pcie.link.width.current,"
        "pcie.link.width.max",
        "--format=csv,noheader"]


@pytest.mark.parametrize("fields", [[], ["index,uuid"], ["index uuid"], ["-h"], ["uuid;id"], ["a\0b"], [""], [3],
                                    ["$(id)"]])
def test_query_gpu_refuses_what_is_not_a_field_name(fields):
    with pytest.raises(UnsafeValue):
        gpu_health.query_gpu(fields)


def test_list_topology_dcgm():
    assert gpu_health.list_gpus() == ["nvidia-smi", "-L"]
    assert gpu_health.topology_matrix() == ["nvidia-smi", "topo", "-m"]
    assert gpu_health.dcgm_discovery() == ["dcgmi", "discovery", "-l"]
    assert gpu_health.dcgm_diag() == ["dcgmi", "diag", "-r", "1"]
    assert gpu_health.dcgm_diag(3) == ["dcgmi", "diag", "-r", "3"]


@pytest.mark.parametrize("level", [0, 5, "1", True, None, 1.0])
def test_dcgm_diag_only_documented_levels(level):
    with pytest.raises(UnsafeValue):
        gpu_health.dcgm_diag(level)


def test_as_one_shell_string():
    assert as_shell(gpu_health.query_xml()) == "nvidia-smi -q -x"
    assert as_shell(gpu_health.dcgm_diag()) == "dcgmi diag -r 1"
