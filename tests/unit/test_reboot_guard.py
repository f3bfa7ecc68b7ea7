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


class _ComesBackRekeyed(RecordingExecutor):
    """A host that reboots and answers again with another host key (the executor refuses it)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.respond("machine-id", stdout="0123456789abcdef0123456789abcdef\n")
        self.respond("boot_id", stdout="before\n")

    def close(self) -> None:
        self.closed = True

    def run(self, command, *, become=False, timeout=None):
        from provision.errors import HostKeyChanged

        if self.closed:
            raise HostKeyChanged("host key for [10.0.0.1]:22 has CHANGED: ...")
        return super().run(command, become=become, timeout=timeout)


def test_a_host_back_from_reboot_with_another_key_is_reported_as_that_not_as_gone():
    from provision.config.host_settings import nvidia_settings
    from provision.report import HostResult
    from provision.workflows.nvidia import _reboot

    result = HostResult("h")
    assert not _reboot(_target(), _ComesBackRekeyed(), result, nvidia_settings("h", {"reboot_timeout": 10}), check=False,
                   reboot=True)
    assert [(s.name, s.status) for s in result.steps] == [("reboot", "failed")]
    assert result.steps[0].message.startswith("the host came back with a different host key: host key for")
