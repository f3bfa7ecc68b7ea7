import json

import pytest

from provision.report import HostResult, Report, StepResult


def _report(*results):
    report = Report("demo")
    for r in results:
        report.add(r)
    return report


def test_json_contract():
    report = _report(
        HostResult("a", steps=[StepResult("install", "changed", "installed docker-ce", 1.23456)]),
        HostResult("b", unreachable="connection refused by 127.0.0.1:2"),
    )
    doc = json.loads(report.to_json())
    assert doc == {
        "command": "demo",
        "hosts": {
            "a": {"status": "changed", "changed": 1, "steps": [
                {"name": "install", "status": "changed", "changed": True, "message": "installed docker-ce", "duration_s": 1.235}]},
            "b": {"status": "unreachable", "changed": 0, "steps": [], "message": "connection refused by 127.0.0.1:2"},
        },
        "summary": {"ok": 0, "changed": 1, "failed": 0, "unreachable": 1, "skipped": 0},
    }


@pytest.mark.parametrize("results, code", [
    ([HostResult("a", steps=[StepResult("s", "ok")])], 0),
    ([HostResult("a", steps=[StepResult("s", "changed")]), HostResult("b", skipped="no GPU")], 0),
    ([HostResult("a", steps=[StepResult("s", "failed")]), HostResult("b", unreachable="x")], 2),
    ([HostResult("a", steps=[StepResult("s", "ok")]), HostResult("b", unreachable="x")], 3),
])
def test_exit_codes(results, code):
    assert _report(*results).exit_code() == code


def test_host_status_precedence():
    assert HostResult("h", steps=[StepResult("a", "changed"), StepResult("b", "failed")]).status == "failed"
    assert HostResult("h", steps=[StepResult("a", "skipped")]).status == "skipped"
    assert HostResult("h", steps=[StepResult("a", "ok"), StepResult("b", "skipped")]).status == "ok"
