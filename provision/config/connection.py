"""How to reach a host, from its merged inventory vars (Ansible's connection variables)."""

from __future__ import annotations

import contextlib
import getpass
import shlex
from dataclasses import dataclass
from typing import Callable, Optional

from provision.config.timeouts import Timeouts, timeouts
from provision.errors import InventoryError

# Where a host's variable is written, for `FILE:LINE:` in messages: locate(var) -> (file, line) or None.
# "inventory_hostname" stands for the host's own declaration. Supplied by whoever loaded the inventory.
Locate = Callable[[str], Optional[tuple]]

# Host names, addresses (IPv4, IPv6 with a %zone) and user names: letters, digits and these only.
# Everything else (shell metacharacters, quotes, whitespace, control characters, '@' or '/' in a
# host, ...) can never name a host or a login, and a value that starts with '-' reads as an option.
_HOST_EXTRA = frozenset("._-:%")
_USER_EXTRA = frozenset("._-@")

# Ansible's names, first wins; the ansible_ssh_* forms are Ansible's older aliases.
_ALIASES = {
    "host": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user", "ansible_remote_user"),
    "key_file": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
    "become": ("ansible_become", "ansible_sudo"),
    "become_user": ("ansible_become_user", "ansible_sudo_user"),
    "common_args": ("ansible_ssh_common_args",),
    "extra_args": ("ansible_ssh_extra_args",),
    "connection": ("ansible_connection",),
    "timeout": ("ansible_ssh_timeout", "ansible_timeout"),
}
# Every connection var provision reads, in its Ansible spelling (the first of each alias list).
CONNECTION_VARS = tuple(names[0] for names in _ALIASES.values())

_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f", ""}


@dataclass(frozen=True)
class Jump:
    """A bastion to hop through (`ProxyJump user@host:port`)."""

    host: str
    port: int = 22
    user: str | None = None


@dataclass(frozen=True)
class ConnectionSettings:
    name: str
    host: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    become: bool = False
    become_user: str = "root"
    connection: str = "ssh"  # "ssh" or "local"
    jumps: tuple[Jump, ...] = ()
    proxy_command: str | None = None
    timeout: float = 10.0
    timeouts: Timeouts = Timeouts()  # per-command timeout and keepalive (config/timeouts.py)

    @property
    def needs_sudo(self) -> bool:
        """Whether a become step must go through sudo (not when already the target user)."""
        return self.become_user != self.user

    def describe(self) -> str:
        if self.connection == "local":
            return "local"
        via = ""
        if self.jumps:
            via = " via " + ",".join(_jump_text(j) for j in self.jumps)
        elif self.proxy_command:
            via = " via ProxyCommand"
        return f"ssh://{self.user}@{self.host}:{self.port}{via}"


def _jump_text(jump: Jump) -> str:
    user = f"{jump.user}@" if jump.user else ""
    return f"{user}{jump.host}:{jump.port}"


def _first(hostvars: dict, field_name: str):
    for key in _ALIASES[field_name]:
        if key in hostvars and hostvars[key] is not None:
            return hostvars[key]
    return None


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def as_bool(value, *, name: str, what: str) -> bool:
    """Ansible's boolean coercion (yes/no/true/false/on/off/1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InventoryError(f"host '{name}': {what} must be a boolean, got {_short(value)}")


def _as_port(value, *, name: str, what: str) -> int:
    try:
        port = int(str(value).strip()) if not isinstance(value, (list, dict)) else -1
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise InventoryError(f"host '{name}': {what} must be a port number, got {_short(value)}")
    return port


def bad_value(value: str, *, user: bool) -> str | None:
    """Why `value` cannot be a host name/address (user=False) or a login name (user=True); None if fine."""
    what = "user name" if user else "host name or address"
    if not value:
        return f"an empty {what}"
    if value.startswith("-"):
        return f"a {what} may not start with '-'"
    extra = _USER_EXTRA if user else _HOST_EXTRA
    for ch in value:
        if not (ch.isalnum() or ch in extra):
            kind = ("a control character" if not ch.isprintable() else
                    "whitespace" if ch.isspace() else f"{ch!r}")
            return f"{kind} is not allowed in a {what} (shell metacharacters, whitespace and control characters are refused)"
    return None


def _checked(value: str, *, name: str, var: str, user: bool, locate: Locate | None = None) -> str:
    problem = bad_value(value, user=user)
    if problem:
        where = locate(var) if locate else None
        file, line = where if where else (None, None)
        raise InventoryError(f"host '{name}': {var} {value!r}: {problem}", file=file, line=line)
    return value


def parse_jump(spec: str, *, name: str, locate: Locate | None = None, var: str = "ProxyJump") -> tuple[Jump, ...]:
    """`[user@]host[:port][,[user@]host[:port]...]` as in ssh's ProxyJump / -J."""
    jumps = []
    for part in spec.split(","):
        user, _, hostport = part.strip().rpartition("@")
        host, port = hostport, 22
        if hostport.startswith("["):  # [ipv6]:port
            host, _, rest = hostport[1:].partition("]")
            if rest.startswith(":"):
                port = _as_port(rest[1:], name=name, what="ProxyJump port")
        elif hostport.count(":") == 1:
            host, port_text = hostport.split(":")
            port = _as_port(port_text, name=name, what="ProxyJump port")
        if not host:
            raise InventoryError(f"host '{name}': invalid ProxyJump {spec!r}")
        _checked(host, name=name, var=f"{var} host", user=False, locate=_as(locate, var))
        if user:
            _checked(user, name=name, var=f"{var} user", user=True, locate=_as(locate, var))
        jumps.append(Jump(host=host, port=port, user=user or None))
    return tuple(jumps)


def _as(locate: Locate | None, var: str) -> Locate | None:
    """A locate that answers for `var` whatever it is asked (a jump host's position is its variable's)."""
    return (lambda _: locate(var)) if locate else None


def parse_ssh_args(args: str, *, name: str, locate: Locate | None = None,
                   var: str = "ansible_ssh_common_args") -> tuple[tuple[Jump, ...], str | None]:
    """ProxyJump (`-J x`, `-o ProxyJump=x`) and ProxyCommand from ansible_ssh_common_args.

    Every other option is ignored, as is the operator's ~/.ssh/config: provision never runs ssh,
    so `LocalCommand`, `PermitLocalCommand`, `Match exec`, `StrictHostKeyChecking`, `-F` and the
    like have no effect. ProxyCommand here is the inventory's own (run without a shell)."""
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise InventoryError(f"host '{name}': {var}: {exc}") from None
    jumps: tuple[Jump, ...] = ()
    proxy_command = None
    i = 0
    while i < len(words):
        word = words[i]
        option = None
        if word == "-J" and i + 1 < len(words):
            jumps = parse_jump(words[i + 1], name=name, locate=_as(locate, var), var="ProxyJump")
            i += 2
            continue
        if word.startswith("-J") and len(word) > 2:
            jumps = parse_jump(word[2:], name=name, locate=_as(locate, var), var="ProxyJump")
        elif word == "-o" and i + 1 < len(words):
            option = words[i + 1]
            i += 1
        elif word.startswith("-o") and len(word) > 2:
            option = word[2:]
        if option:
            key, value = _split_option(option)
            if key.lower() == "proxyjump" and value.lower() != "none":
                jumps = parse_jump(value, name=name, locate=_as(locate, var), var="ProxyJump")
            elif key.lower() == "proxycommand" and value.lower() != "none":
                proxy_command = value
        i += 1
    return jumps, proxy_command


def _split_option(option: str) -> tuple[str, str]:
    """`Key=value` or `Key value`, split at whichever separator comes first (as ssh -o)."""
    import re

    match = re.match(r"\s*([^=\s]+)\s*(?:=\s*|\s+)?(.*)", option, re.S)
    return (match.group(1), match.group(2).strip()) if match else (option, "")


def where(hostvars: dict, key) -> tuple[str | None, int | None]:
    """(file, line) where ``key`` of a host's merged vars was set, when the inventory knows it."""
    origins = getattr(hostvars, "origins", None) or {}
    return origins.get(key, (None, None))


def setting_error(host: str, hostvars: dict, key, message: str) -> InventoryError:
    """``FILE:LINE: host 'h': message`` at the place the var was set."""
    file, line = where(hostvars, key)
    return InventoryError(f"host '{host}': {message}", file=file, line=line)


def refuse_vaulted(host: str, hostvars: dict, keys) -> None:
    """A var provision uses that holds an ansible-vault value: it cannot be decrypted here."""
    from provision.config.yaml_inventory import VaultedText

    for key in keys:
        if isinstance(hostvars.get(key), VaultedText):
            raise setting_error(host, hostvars, key, f"{key} is an ansible-vault encrypted value; provision cannot "
                                "decrypt it (give it in plain text, e.g. in a host_vars file kept private)")


def _first_key(hostvars: dict, field_name: str) -> str | None:
    for key in _ALIASES[field_name]:
        if key in hostvars and hostvars[key] is not None:
            return key
    return None


@contextlib.contextmanager
def _at(hostvars: dict, *field_names: str):
    """An InventoryError raised inside names the file and line where the var was set."""
    try:
        yield
    except InventoryError as exc:
        if exc.file is not None:
            raise
        for field_name in field_names:
            key = _first_key(hostvars, field_name)
            file, line = where(hostvars, key) if key else (None, None)
            if file is not None:
                raise InventoryError(exc.message, file=file, line=line) from None
        raise


def _source_of(hostvars: dict, field_name: str) -> str:
    """The variable a setting came from (the first alias that is set), for messages."""
    for key in _ALIASES[field_name]:
        if key in hostvars and hostvars[key] is not None:
            return key
    return _ALIASES[field_name][0]


def connection_settings(name: str, hostvars: dict, locate: Locate | None = None) -> ConnectionSettings:
    """Connection settings for one host from its merged vars (defaults as Ansible's); a bad value
    is an InventoryError naming the file and line where it was set.

    Host and user values that could never name a host or a login (shell metacharacters, whitespace,
    control characters, a leading '-') are refused as bad input; `locate(var)` gives the error its
    FILE:LINE (default: where the inventory recorded the var)."""
    if locate is None:
        def locate(var: str):
            file, line = where(hostvars, var)
            return (file, line) if file else None
    refuse_vaulted(name, hostvars, [key for keys in _ALIASES.values() for key in keys])
    with _at(hostvars, "connection"):
        connection = str(_first(hostvars, "connection") or "ssh")
        if connection in ("paramiko", "smart"):
            connection = "ssh"
        if connection not in ("ssh", "local"):
            raise InventoryError(f"host '{name}': ansible_connection {connection!r} is not supported (ssh or local)")
    port_value = _first(hostvars, "port")
    with _at(hostvars, "port"):
        port = _as_port(port_value, name=name, what="ansible_port") if port_value is not None else 22
    become_value = _first(hostvars, "become")
    with _at(hostvars, "become"):
        become = as_bool(become_value, name=name, what="ansible_become") if become_value is not None else False
    common = " ".join(str(v) for v in (_first(hostvars, "common_args"), _first(hostvars, "extra_args")) if v)
    jumps: tuple[Jump, ...] = ()
    proxy_command = None
    with _at(hostvars, "common_args", "extra_args"):
        for field_name in ("common_args", "extra_args"):  # extra args come later, as on ssh's command line
            args = _first(hostvars, field_name)
            if args:
                more_jumps, more_proxy = parse_ssh_args(str(args), name=name, locate=locate,
                                                        var=_source_of(hostvars, field_name))
                jumps, proxy_command = more_jumps or jumps, more_proxy or proxy_command
    timeout_value = _first(hostvars, "timeout")
    with _at(hostvars, "timeout"):
        try:
            timeout = float(timeout_value) if timeout_value is not None else 10.0
        except (TypeError, ValueError):
            raise InventoryError(f"host '{name}': ansible_timeout must be a number, got {_short(timeout_value)}") from None
    key_file = _first(hostvars, "key_file")
    host_value = _first(hostvars, "host")  # empty values mean "not set", as before
    host = _checked(str(host_value or name), name=name, user=False, locate=locate,
                    var=_source_of(hostvars, "host") if host_value else "inventory_hostname")
    user_value = _first(hostvars, "user")
    user = (_checked(str(user_value), name=name, var=_source_of(hostvars, "user"), user=True, locate=locate)
            if user_value else getpass.getuser())
    become_user_value = _first(hostvars, "become_user")
    become_user = (_checked(str(become_user_value), name=name, var=_source_of(hostvars, "become_user"), user=True,
                            locate=locate) if become_user_value else "root")
    return ConnectionSettings(
        name=name,
        host=host,
        port=port,
        user=user,
        key_file=str(key_file) if key_file else None,
        become=become,
        become_user=become_user,
        connection=connection,
        jumps=jumps,
        proxy_command=proxy_command,
        timeout=timeout,
        timeouts=timeouts(name, hostvars, common),
    )
