"""Host health probes (commands/host_health.py) as exact strings, and their parsers and messages
(facts/host_health.py): free space under Docker's data root, the daemon's units, the dpkg-lock wait."""

from __future__ import annotations

import pytest

from provision.commands import host_health as cmd
from provision.commands.argv import UnsafeValue
from provision.deploy import images
from provision.errors import InventoryError
from provision.facts import host_health as facts


def test_free_space_command():
    assert cmd.free_space("/var/lib/docker") == "df -P -k -- /var/lib/docker"
    assert cmd.free_space("/srv/docker data") == "df -P -k -- '/srv/docker data'"
    with pytest.raises(UnsafeValue):
        cmd.free_space("var/lib/docker")


def test_docker_units_command():
    assert cmd.docker_units() == ("systemctl show -p Id -p LoadState -p ActiveState -p UnitFileState "
                                  "docker.service docker.socket")


def test_wait_dpkg_lock_command():
    holder = cmd.dpkg_lock_holder_script()
    assert cmd.wait_dpkg_lock(5) == (
        f"waited=0; who=''; state=free; while h=$({holder}); [ -n \"$h\" ]; do who=$h; "
        "if [ $waited -ge 5 ]; then state=held; break; fi; sleep 1; waited=$((waited+1)); done; "
        "printf '%s|%s|%s\\n' \"$waited\" \"$state\" \"$who\"")
    with pytest.raises(UnsafeValue):
        cmd.wait_dpkg_lock("5; rm -rf /")  # type: ignore[arg-type]


DF = """Filesystem     1024-blocks     Used Available Capacity Mounted on
tmpfs                65536    60000      5536      92% /var/lib/docker
"""


def test_parse_free_space():
    free = facts.parse_free_space(DF)
    assert free == facts.FreeSpace(mount="/var/lib/docker", available=5536 * 1024)
    assert facts.parse_free_space("") is None
    assert facts.parse_free_space("df: /nope: No such file or directory\n") is None


def test_space_shortfall_message():
    free = facts.FreeSpace("/var/lib/docker", 5 * 1024 * 1024)
    assert facts.space_shortfall("sbx1", "/var/lib/docker", free, 4 * 1024 * 1024) is None
    message = facts.space_shortfall("sbx1", "/var/lib/docker", free, 512 * 1024 * 1024)
    assert message.startswith("sbx1: /var/lib/docker has 5.0 MiB free, the image(s) need about 512.0 MiB")
    assert "nothing was changed" in message


def test_space_needed_and_min_free_setting():
    assert images.space_needed([None], 512) == 512 * 1024 * 1024
    assert images.space_needed([1024 * 1024 * 1024, None], 512) == int(1.5 * 1024 * 1024 * 1024)
    assert images.min_free_mb("h", {}) == images.DEFAULT_MIN_FREE_MB
    assert images.min_free_mb("h", {"deploy_min_free_mb": "100"}) == 100
    for bad in (-1, "lots", True, 1.5):
        with pytest.raises(InventoryError, match="deploy_min_free_mb"):
            images.min_free_mb("h", {"deploy_min_free_mb": bad})


UNITS = """Id=docker.service
LoadState=loaded
ActiveState=inactive
UnitFileState=enabled

Id=docker.socket
LoadState=loaded
ActiveState=inactive
UnitFileState=enabled
"""


def test_docker_units_stopped_missing_running():
    units = facts.parse_docker_units(UNITS)
    assert units == facts.DockerUnits(installed=True, service_active="inactive", socket_active="inactive")
    assert facts.daemon_problem("sbx1", units) == (
        "the Docker daemon on sbx1 is not running (docker.service inactive, docker.socket inactive): start it "
        "with `systemctl start docker` on the host, or run `provision docker install`, which enables and starts it")
    missing = facts.parse_docker_units("Id=docker.service\nLoadState=not-found\nActiveState=inactive\n")
    assert facts.daemon_problem("sbx1", missing) == "Docker is not installed on sbx1: run `provision docker install`"
    running = facts.parse_docker_units(UNITS.replace("ActiveState=inactive", "ActiveState=active", 1))
    assert facts.daemon_problem("sbx1", running) is None


def test_lock_wait_messages():
    held = facts.parse_lock_wait("5|held|4242 flock /var/lib/dpkg/lock-frontend sleep 600 \n")
    assert held == facts.LockWait(5, True, "4242 flock /var/lib/dpkg/lock-frontend sleep 600")
    assert facts.lock_message(held, 5) == (
        "dpkg's lock is still held by pid 4242 (flock /var/lib/dpkg/lock-frontend sleep 600) after 5s "
        "(apt_lock_timeout): wait for it to finish (or stop it), then re-run; nothing was changed")
    waited = facts.parse_lock_wait("3|free|77 apt-get install foo\n")
    assert facts.lock_message(waited, 600) == "waited 3s for the dpkg lock held by pid 77 (apt-get install foo)"
    assert facts.lock_message(facts.parse_lock_wait("0|free|\n"), 600) == "free"
