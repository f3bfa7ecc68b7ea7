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


# -- the workflows that use them, with the recording executor ----------------------------------------------
def _target(name: str, **hostvars):
    from provision.config.connection import connection_settings
    from provision.workflows.targets import Target

    return Target(name, connection_settings(name, {"ansible_user": "root"}), hostvars)


class _Client:
    """The docker SDK's client as far as the free-space check asks it (no image on the host)."""

    def __init__(self, root: str = "/var/lib/docker") -> None:
        self.root = root
        self.images = self

    def info(self) -> dict:
        return {"DockerRootDir": self.root}

    def get(self, name):
        import docker.errors

        raise docker.errors.ImageNotFound(name)


def _host_deploy(fake, target):
    from provision.report import HostResult
    from provision.workflows.deploy import DeployContext
    from provision.workflows.deploy_host import HostDeploy

    context = DeployContext(playbook=None, services_by_host={target.name: ["web"]},
                            sources={"web": images.ImageSource("example/web:1", images.PULL)}, secrets={},
                            environ={}, check=False)
    return HostDeploy(context, target, fake, _Client(), HostResult(target.name))


def test_deploy_refuses_before_fetching_any_image_when_the_docker_root_is_nearly_full():
    from provision.executor.fake import RecordingExecutor

    fake = RecordingExecutor("h1")
    fake.respond(r"^df ", DF)
    host = _host_deploy(fake, _target("h1", deploy_min_free_mb=16))
    host.images()
    assert [c for c, _ in fake.commands] == ["df -P -k -- /var/lib/docker"]
    [step] = host.result.steps
    assert (step.name, step.status) == ("disk space", "failed") and host.failed
    assert step.message.startswith("h1: /var/lib/docker has 5.4 MiB free, the image(s) need about 16.0 MiB")


def test_deploy_goes_on_when_there_is_room():
    from provision.executor.fake import RecordingExecutor

    fake = RecordingExecutor("h1")
    fake.respond(r"^df ", DF)
    host = _host_deploy(fake, _target("h1", deploy_min_free_mb=4))
    assert host.enough_space() is True
    assert host.result.steps[0].message == "/var/lib/docker: 5.4 MiB free (about 4.0 MiB needed)"


def test_verify_says_the_daemon_is_stopped_and_how_to_start_it():
    from provision.executor.fake import RecordingExecutor
    from provision.workflows.docker import verify_work

    fake = RecordingExecutor("h1")
    fake.respond(r"^docker version", exit_code=1,
                 stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    fake.respond(r"^systemctl show", UNITS)
    result = verify_work(_target("h1"), fake)
    assert [c for c, _ in fake.commands][1] == cmd.docker_units()
    [step] = result.steps
    assert step.name == "docker version" and step.status == "failed"
    assert step.message.startswith("the Docker daemon on h1 is not running")
