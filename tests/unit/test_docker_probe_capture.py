"""The Docker install's probe (commands/probes.docker_host) as a real sandbox host answered it over SSH, read by
its pure parser (facts/docker_host.parse) and planned (operations/docker_install): provenance in
tests/fixtures/docker_probe/PROVENANCE.md."""

from pathlib import Path

import pytest

from provision.config.host_settings import docker_settings
from provision.facts.docker_host import parse
from provision.operations import docker_install as op
from provision.operations.base import NoChange

CAPTURES = Path(__file__).parent.parent / "fixtures" / "docker_probe"
SANDBOX_VARS = {"docker_daemon": {"registry-mirrors": ["http://sandbox-registry:5000"],
                                  "insecure-registries": ["sandbox-registry:5000"]}}


@pytest.mark.parametrize("capture", ["debian12-docker-noop-real.txt", "debian12-docker-noop-dpkgarch-real.txt"])
def test_a_no_op_host_as_captured_plans_nothing(capture):
    """Both probes: with its arch section and `systemctl show` (before), and with the architecture from the
    packages section's `dpkg` line and the service from files + `systemctl is-active` (issue 12)."""
    state = parse((CAPTURES / capture).read_text())
    assert (state.os_id, state.version_id, state.codename, state.arch, state.systemd) == (
        "debian", "12", "bookworm", "amd64", True)
    assert state.packages["docker-ce"] == "5:20.10.24-1~debian.12~bookworm" and "docker.io" not in state.packages
    assert state.keyring_sha and state.remote_key_sha == state.keyring_sha and state.key_cached
    assert state.key_checked_at and state.host_now >= state.key_checked_at
    assert state.sources.startswith("Types: deb\n") and state.sources.endswith("\n")
    assert state.users == {"root": True, "nobodyx": False} and state.docker_group == []
    assert state.service_enabled and state.service_active and state.cloud_init is None and not state.stale_files
    assert not state.dpkg.needs_repair
    settings = docker_settings("sbx2", SANDBOX_VARS)
    plans = [op.preflight(state), op.conflicting_packages(state, settings), op.repository(state, settings, "s"),
             op.daemon_config_change(state, settings, "s"), op.packages(state, settings, None),
             op.hold(state, settings, False), op.service(state, False, False)]
    assert all(isinstance(p, NoChange) for p in plans), plans
    assert "key checked" in plans[2].reason


def test_an_interrupted_host_as_captured_needs_repair():
    """dpkg's updates folder, a half-configured package (`dpkg --audit` runs because the status file says so) and
    a provision apt unit still running (listed because /run/systemd/transient holds it)."""
    state = parse((CAPTURES / "debian12-docker-interrupted-real.txt").read_text())
    assert state.dpkg.interrupted and state.dpkg.units == ["provision-apt-9-docker-packages.service"]
    assert state.dpkg.needs_repair
    assert "docker-ce" not in state.packages  # iF: half-configured is not installed


def test_the_packages_section_gives_the_architecture_from_the_dpkg_line():
    out = ("@@provision-facts-begin 1\n@@provision-fact packages\n"
           "containerd\t\tun \t\ndocker-ce\t5:27.1\thi \tarm64\ndpkg\t1.22.6\tii \tarm64\nrunc\t1.1\trc \tarm64\n"
           "@@provision-rc packages 0\n@@provision-facts-end\n")
    state = parse(out)
    assert (state.arch, state.packages, state.held) == ("arm64", {"docker-ce": "5:27.1"}, {"docker-ce"})
    assert parse(out.replace("dpkg\t1.22.6\tii \tarm64\n", "")).arch == ""  # no dpkg: no architecture (as before)
