"""The probe builders of provision/commands/probes.py, by exact string.

tests/unit/probe_strings_before.py holds every probe as the code built it before issue 10 moved the
snippets out of provision/facts/ (captured by running the old builders): the builders must reproduce them
byte for byte, and the fact modules must send what the builders build.
"""

from __future__ import annotations

import subprocess

from provision.commands import apt, probes
from provision.facts import docker_host, dpkg_state, nvidia_host, script, swarm
from provision.facts.script import split_sections
from tests.unit import probe_strings_before as before

DOCKER_KEY = "https://download.docker.com/linux/__DISTRO__/gpg"


def test_the_markers_are_unchanged():
    assert (probes.FACT_MARKER, probes.RC_MARKER, probes.BEGIN_MARKER, probes.END_MARKER) == before.MARKERS
    assert (script.FACT_MARKER, script.RC_MARKER, script.BEGIN_MARKER, script.END_MARKER) == before.MARKERS


def test_facts_script_is_byte_identical():
    assert probes.facts_script() == before.FACTS_SCRIPT
    assert script.FACTS_SCRIPT == before.FACTS_SCRIPT  # the name the workflows run


def test_probe_script():
    assert probes.PREAMBLE == before.PREAMBLE
    assert probes.probe_script([("file", "cat /etc/x.json"), ("fails", "echo oops >&2; exit 3")]) == before.PROBE_SCRIPT
    assert probes.probe_script([]) == before.PROBE_SCRIPT_EMPTY
    assert probes.probe_script([("a", "true")]) == (
        'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
        "\n"
        "echo '@@provision-facts-begin 1'\n"
        "echo '@@provision-fact a'\n"
        "_out=$( ( true\n"
        ") </dev/null 2>&1 ); _rc=$?\n"
        "[ -n \"$_out\" ] && printf '%s\\n' \"$_out\"\n"
        'echo "@@provision-rc a $_rc"\n'
        "echo '@@provision-facts-end'\n")


def test_dpkg_state_section():
    assert probes.dpkg_state() == before.DPKG_STATE_SECTION
    assert dpkg_state.SECTION == before.DPKG_STATE_SECTION
    # issue 12: dpkg --audit and systemctl only when the status file or /run/systemd/transient say so
    assert probes.dpkg_state() == (
        "dpkg_state",
        "for f in /var/lib/dpkg/updates/* /var/lib/dpkg/updates/.[!.]*; do [ -e \"$f\" ] && "
        "{ echo interrupted=updates; break; }; done; "
        "grep -Eq '^Status: [a-z]+ ([a-z]+ (half-installed|unpacked|half-configured|triggers-awaited|triggers-pending)"
        "|reinstreq [a-z-]+)$' /var/lib/dpkg/status 2>/dev/null && "
        "dpkg --audit 2>/dev/null | grep -q . && echo interrupted=audit; "
        "for f in /run/systemd/transient/provision-apt-*; do [ -e \"$f\" ] || continue; "
        "for u in $(systemctl list-units --plain --no-legend --state=active,activating 'provision-apt-*' 2>/dev/null "
        "| awk '{print $1}'); do echo \"unit=$u\"; done; break; done; true")


def test_docker_host_probe():
    assert probes.docker_host(DOCKER_KEY, before.PROXY_ENV, ["alice", "o'brien"]) == before.DOCKER_HOST_PROBE
    assert probes.docker_host("http://mirror.invalid/docker/gpg", apt.env_prefix(None), []) == \
        before.DOCKER_HOST_PROBE_NO_USERS
    assert docker_host.probe(DOCKER_KEY, before.PROXY_ENV, ["alice", "o'brien"]) == before.DOCKER_HOST_PROBE
    assert probes.WATCHED_PACKAGES == docker_host.WATCHED_PACKAGES == before.WATCHED_PACKAGES


def test_docker_host_probe_sections():
    text = probes.docker_host(DOCKER_KEY, "env", ["o'brien"])
    assert "_out=$( ( printf '%s %s\\n' 'o'\"'\"'brien' \"$(id -u 'o'\"'\"'brien' 2>/dev/null || echo none)\"\n" in text
    assert "_out=$( ( command -v cloud-init >/dev/null || exit 127; cloud-init status\n" in text
    assert "_out=$( ( command -v snap >/dev/null || exit 127; snap list docker 2>/dev/null | tail -n +2\n" in text
    assert "_pk=; [ -f /etc/apt/keyrings/docker.asc ] && _pk=$(sha256sum 2>/dev/null < /etc/apt/keyrings/docker.asc)\n" in text
    assert '_out=$( ( [ -f /etc/apt/keyrings/docker.asc ] && [ -n "$_pk" ] || exit 1; echo "${_pk%% *}"\n' in text
    assert "dpkg --print-architecture" not in text and text.count("dpkg-query") == 1  # issue 12: one dpkg process
    assert "cat " not in text and "sed " not in text and "cut " not in text.split("curl")[0]  # issue 12: no forks
    assert "systemctl show" not in text and "_out=$( ( " + probes.service_state() + "\n" in text
    assert "_out=$( ( true\n" in probes.docker_host(DOCKER_KEY, "env", [])  # no users: an empty section


def test_nvidia_host_probe():
    assert probes.nvidia_host(None, apt.env_prefix(None)) == before.NVIDIA_HOST_PROBE
    assert probes.nvidia_host("http://mirror.invalid/nvidia", before.PROXY_ENV) == before.NVIDIA_HOST_PROBE_MIRROR
    assert nvidia_host.probe(None, apt.env_prefix(None)) == before.NVIDIA_HOST_PROBE
    assert probes.NVIDIA_LIST_SED == before.NVIDIA_SED == (
        "sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g'")


def test_swarm_probes():
    assert probes.swarm_host() == swarm.probe() == before.SWARM_PROBE
    assert probes.swarm_cluster() == swarm.cluster_probe() == before.SWARM_CLUSTER_PROBE
    assert "_out=$( ( command -v ip >/dev/null || exit 127; ip -4 route show default\n" in probes.swarm_host()


def test_probe_script_runs_and_splits(tmp_path):
    (tmp_path / "f").write_text("x")
    out = subprocess.run(["sh", "-c", probes.probe_script([("f", f"cat {tmp_path}/f"), ("gone", "exit 127")])],
                         capture_output=True, text=True, check=True).stdout
    sections = split_sections(out)
    assert (sections["f"].text, sections["f"].rc, sections["gone"].missing) == ("x", 0, True)


def test_values_that_cannot_travel_are_refused():
    import pytest

    from provision.commands.argv import UnsafeValue

    with pytest.raises(UnsafeValue, match="user contains a NUL"):
        probes.docker_host(DOCKER_KEY, "env", ["a\0b"])
    with pytest.raises(UnsafeValue):
        probes.docker_host("-K /etc/shadow", "env", [])
    with pytest.raises(UnsafeValue, match="nvidia_repo_url starts with '-'"):
        probes.nvidia_host("-K /etc/shadow", "env")
    with pytest.raises(UnsafeValue, match="nvidia_repo_url contains the control character"):
        probes.nvidia_host("http://m.invalid/\nx", "env")


def test_nvidia_probe_with_a_max_age_reads_the_recorded_checks_first():
    text = probes.nvidia_host(None, "env", 3600, record=True)
    assert text.count("-lt 3600 ]") == 2  # the key and the list
    for state, local in ((probes.NVIDIA_KEY_STATE, "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"),
                         (probes.NVIDIA_LIST_STATE, "/etc/apt/sources.list.d/nvidia-container-toolkit.list")):
        assert f"read -r s_sha s_at s_url < {state} 2>/dev/null" in text
        assert f"k=$(sha256sum < {local} 2>/dev/null | cut -d' ' -f1)" in text
        assert f'> {state}.provision-tmp && chmod 0644 {state}.provision-tmp && mv -f {state}.provision-tmp {state}' in text
    assert 'sha=$(gpg --batch --dearmor < "$t" | sha256sum' in text
    check = probes.nvidia_host(None, "env", 3600, record=False)
    assert "provision-tmp" not in check and "cached" in check
