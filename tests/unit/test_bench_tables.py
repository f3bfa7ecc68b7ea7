"""The pure parts of bench/side_by_side.py (bench/tables.py): run order, ratios, tables, importtime parsing.
The benchmark itself is not a test (timed tests are not allowed)."""

from bench import tables as t

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:        80 |        200 | encodings
provision: 2 hosts ok
import time:       300 |        300 |     yaml.error
import time:       500 |        800 |   yaml
import time:      1000 |       1800 | provision.cli.app
import time:        40 |         40 | paramiko_like_but_not
"""


def test_interleave_runs_every_tool_once_per_round_rotating_the_first():
    order = t.interleave(("provision", "ansible", "pyinfra"), 4)
    assert order == [(0, "provision"), (0, "ansible"), (0, "pyinfra"),
                     (1, "ansible"), (1, "pyinfra"), (1, "provision"),
                     (2, "pyinfra"), (2, "provision"), (2, "ansible"),
                     (3, "provision"), (3, "ansible"), (3, "pyinfra")]
    assert t.interleave(("provision",), 2) == [(0, "provision"), (1, "provision")]


def test_ratio_is_peer_over_provision():
    assert t.ratio(3.0, 1.5) == 2.0
    assert t.ratio(None, 1.0) is None
    assert t.ratio(1.0, None) is None
    assert t.ratio(1.0, 0) is None
    assert t.median([3.0, 1.0, 2.0, None]) == 2.0
    assert t.median([]) is None


def test_format_ratio_bolds_when_provision_is_slower():
    assert t.format_ratio(1.78) == "1.78"
    assert t.format_ratio(0.62) == "**0.62**"
    assert t.format_ratio(12.74) == "12.7"
    assert t.format_ratio(None) == "–"


def test_scenarios_clip_to_the_fleet_and_drop_duplicate_rows():
    assert [r.key for r in t.scenarios(20)] == ["adhoc-1", "adhoc-10", "adhoc-20", "docker-noop-10", "deploy-noop-1",
                                                "deploy-noop-10", "facts-1", "facts-20", "help"]
    small = t.scenarios(2)
    assert [(r.key, r.hosts) for r in small] == [("adhoc-1", 1), ("adhoc-10", 2), ("docker-noop-10", 2),
                                                 ("deploy-noop-1", 1), ("deploy-noop-10", 2), ("facts-1", 1),
                                                 ("facts-20", 2), ("help", 0)]
    assert small[1].label == "ad-hoc, 2 hosts"


def test_ratio_table_in_the_issues_shape():
    rows = t.scenarios(20)
    times = {
        "adhoc-1": {"provision": [0.5, 0.6, 0.4], "ansible": [0.9, 0.89, 0.95], "pyinfra": [0.535], "fabric": [0.31]},
        "deploy-noop-1": {"provision": [1.0], "compose": [0.4]},
        "docker-noop-10": {"provision": [1.0], "ansible": [12.74], "pyinfra": [1.14]},
    }
    table = t.ratio_table(rows, times).splitlines()
    assert table[0] == "| scenario | Ansible (tuned) | pyinfra | Fabric | Docker Compose v2 over SSH |"
    assert table[2] == "| ad-hoc `uname -r`, 1 host | 1.80 | 1.07 | **0.62** | – |"
    assert table[3] == "| ad-hoc, 10 hosts | – | – | – | – |"  # not measured: no ratio
    assert table[5] == "| Docker install no-op, 10 hosts | 12.7 | 1.14 | – | – |"
    assert table[6] == "| deploy no-op, 1 host (hello.yml) | – | – | – | **0.40** |"
    assert len(table) == 2 + 6  # facts and --help have no peer: not in the ratio table


def test_absolute_table_has_every_scenario_with_medians():
    rows = t.scenarios(20)
    table = t.absolute_table(rows, {"help": {"provision": [0.16, 0.2, 0.15]}}).splitlines()
    assert table[0].startswith("| scenario | runs | provision | Ansible (tuned) |")
    assert table[-1] == "| `provision --help` | 3 | 0.16 s | – | – | – | – |"


def test_parse_importtime_skips_other_output_and_reads_depth():
    records = t.parse_importtime(IMPORTTIME)
    assert [(r.module, r.self_us, r.cumulative_us, r.depth) for r in records] == [
        ("_io", 120, 120, 1), ("encodings", 80, 200, 0), ("yaml.error", 300, 300, 2), ("yaml", 500, 800, 1),
        ("provision.cli.app", 1000, 1800, 0), ("paramiko_like_but_not", 40, 40, 0)]


def test_import_summary_totals_self_times_and_names_heavy_packages():
    summary = t.import_summary(t.parse_importtime(IMPORTTIME))
    assert summary["total_s"] == 0.00204
    assert summary["modules"] == 6
    assert summary["heavy"] == ["yaml"]  # not paramiko: a prefix of a longer name is not the package
    assert summary["slowest_top_level"][0] == ["provision.cli.app", 0.0018]
    assert t.import_table({"provision --help": summary}).splitlines()[-1] == \
        "| `provision --help` | 0.002 s | 6 | yaml |"


def test_shipping_table_has_the_cpu_floor_and_the_ratios():
    from bench.shipping import render

    row = {"hosts": 1, "wall_s": 10.0, "operator_sent_bytes": 2_000_000_000, "provision_reported_shipped_bytes": 2_000_000_000,
           "hosts_received_bytes": 2_000_000_000, "provision_maxrss_mib": 70, "provision_cpu_s": 5.0,
           "dockerd_cpu_s": 3.0, "hosts_cpu_s": 4.0, "cpu_floor_s": 6.0, "local_registry_bytes": 2_000_000_000}
    ten = dict(row, hosts=10, wall_s=40.0, operator_sent_bytes=2_100_000_000, hosts_cpu_s=40.0, cpu_floor_s=24.0)
    text = render({"image": "provision-bench/big:2g-10", "image_bytes": 2_000_000_000, "layers": 10, "rows": [row, ten]})
    assert "| 10 | 40.0 s | 2,100 MB | 2,000 MB | 2,000 MB | 70 MiB | 5.0 s | 3.0 s | 40.0 s | 24.0 s | 2,000 MB |" in text
    assert "bytes leaving the operator 1.05× (target ≤ 1.1), wall time 4.00× (target ≤ 2)" in text
    assert "10 hosts ÷ 1 host 4.00×" in text
