"""The host as a machine: systemd units, reboot and the boot marker that tells a reboot happened, the
machine id, cloud-init's first-boot work. Pure builders: no I/O."""

from __future__ import annotations

from provision.commands.argv import UnsafeValue, join

MACHINE_ID = "/etc/machine-id"


def _unit(unit: str) -> str:
    if not isinstance(unit, str) or not unit or unit.startswith("-"):
        raise UnsafeValue(f"unit name must not be empty or start with '-', not {unit!r}")
    return unit


def enable_unit(unit: str, *, now: bool = False) -> str:
    """`systemctl enable [--now] UNIT` (`--now` starts it too)."""
    return join(["systemctl", "enable", *(["--now"] if now else []), _unit(unit)], "unit name")


def restart_unit(unit: str) -> str:
    return join(["systemctl", "restart", _unit(unit)], "unit name")


def add_to_group(user: str, group: str) -> str:
    """`usermod -aG GROUP USER` (the user must exist: the docker probe checks that first)."""
    return join(["usermod", "-aG", group, user], "user or group name")


def reboot_soon() -> str:
    """Reboot one second after the command returns, detached from the SSH session, so that the command
    itself ends cleanly (exit 0) before sshd goes down."""
    return "nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 &"


def boot_marker() -> str:
    """Changes on every boot: the kernel's boot_id (a VM) and PID 1's start time (a container)."""
    return "printf '%s-%s\\n' \"$(cat /proc/sys/kernel/random/boot_id)\" \"$(cut -d' ' -f22 /proc/1/stat)\""


def parse_boot_marker(text: str) -> str:
    return text.strip()


def machine_id() -> str:
    """The host's /etc/machine-id (the same on the host provision runs on means: that is this machine)."""
    return join(["cat", MACHINE_ID])


def parse_machine_id(text: str) -> str:
    return text.strip()


def cloud_init_wait(timeout: int) -> str:
    """Wait up to TIMEOUT seconds for cloud-init's first-boot work; exit 124 when it is still running then
    (0: no limit, as `timeout 0`)."""
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise UnsafeValue(f"cloud-init timeout must be a whole number of seconds >= 0, not {timeout!r}")
    return join(["timeout", str(timeout), "cloud-init", "status", "--wait"])
