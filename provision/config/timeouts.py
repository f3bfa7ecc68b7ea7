"""How long provision waits on a host: the default per-command timeout and the SSH keepalive.

Every remote command has a timeout (no provision command can hang forever on a host that stopped
answering), and a connection that stops answering keepalives is declared dead, so a host that
vanished without a TCP reset (a cut network, a frozen VM) is reported unreachable within about
`interval × count_max` seconds instead of hanging.

Vars (host or group vars):
- `provision_command_timeout` (seconds, default 600): any single remote command. apt work has its
  own, more generous `apt_timeout` (see config/host_settings.py).
- `provision_keepalive_interval` (seconds, default 15; 0 turns the watchdog off) and
  `provision_keepalive_count_max` (default 3), as OpenSSH's ServerAliveInterval/ServerAliveCountMax.
  Those two ssh options in `ansible_ssh_common_args`/`ansible_ssh_extra_args` are honoured too (the
  vars win).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from provision.errors import InventoryError

DEFAULT_COMMAND_TIMEOUT = 600.0
DEFAULT_KEEPALIVE_INTERVAL = 15.0
DEFAULT_KEEPALIVE_COUNT_MAX = 3


@dataclass(frozen=True)
class Timeouts:
    command: float = DEFAULT_COMMAND_TIMEOUT
    keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL
    keepalive_count_max: int = DEFAULT_KEEPALIVE_COUNT_MAX

    @property
    def dead_after(self) -> float:
        """Seconds without an answer after which the connection counts as dead."""
        return self.keepalive_interval * self.keepalive_count_max


def _number(value, *, name: str, var: str, minimum: float, integer: bool = False) -> float:
    try:
        number = int(str(value).strip()) if integer else float(str(value).strip())
    except ValueError:
        number = None
    if number is None or number < minimum or number != number or number == float("inf"):
        kind = "an integer" if integer else "a number of seconds"
        raise InventoryError(f"host '{name}': {var} must be {kind} >= {minimum:g}, got {value!r}")
    return number


def server_alive_options(args: str) -> dict[str, str]:
    """ServerAliveInterval / ServerAliveCountMax given as `-o Key=value` or `-o Key value` in ssh args."""
    try:
        words = shlex.split(args)
    except ValueError:
        return {}  # connection.py reports the malformed args
    found: dict[str, str] = {}
    for i, word in enumerate(words):
        option = None
        if word == "-o" and i + 1 < len(words):
            option = words[i + 1]
        elif word.startswith("-o") and len(word) > 2:
            option = word[2:]
        if not option:
            continue
        key, _, value = option.replace("=", " ", 1).partition(" ")
        if key.lower() in ("serveraliveinterval", "serveralivecountmax"):
            found[key.lower()] = value.strip()
    return found


TIMEOUT_VARS = ("provision_command_timeout", "provision_keepalive_interval", "provision_keepalive_count_max")


def timeouts(name: str, hostvars: dict, ssh_args: str = "") -> Timeouts:
    options = server_alive_options(ssh_args) if ssh_args else {}
    command = hostvars.get("provision_command_timeout")
    interval = hostvars.get("provision_keepalive_interval", options.get("serveraliveinterval"))
    count = hostvars.get("provision_keepalive_count_max", options.get("serveralivecountmax"))
    return Timeouts(
        command=_number(command, name=name, var="provision_command_timeout", minimum=1)
        if command is not None else DEFAULT_COMMAND_TIMEOUT,
        keepalive_interval=_number(interval, name=name, var="provision_keepalive_interval", minimum=0)
        if interval is not None else DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_count_max=int(_number(count, name=name, var="provision_keepalive_count_max", minimum=1,
                                        integer=True)) if count is not None else DEFAULT_KEEPALIVE_COUNT_MAX,
    )
