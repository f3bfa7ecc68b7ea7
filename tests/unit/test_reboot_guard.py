"""provision never reboots the machine it runs on."""

from pathlib import Path

from provision.config.connection import connection_settings
from provision.executor.fake import RecordingExecutor
from provision.workflows.nvidia import _is_this_machine
from provision.workflows.targets import Target


def _target(**hostvars):
    return Target("h", connection_settings("h", {"ansible_user": "root", **hostvars}), {})


def test_local_connection_is_this_machine():
    assert _is_this_machine(_target(ansible_connection="local"), RecordingExecutor())


def test_same_machine_id_is_this_machine():
    fake = RecordingExecutor()
    fake.respond("machine-id", stdout=Path("/etc/machine-id").read_text())
    assert _is_this_machine(_target(), fake)
    other = RecordingExecutor()
    other.respond("machine-id", stdout="0123456789abcdef0123456789abcdef\n")
    assert not _is_this_machine(_target(), other)
