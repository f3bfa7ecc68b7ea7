"""Host-to-host image relay: who gets an image from whom, so this machine sends each image once.

Shipping (provision.deploy.shipping) sends an image's missing layers from the operator's machine to
each host. With the relay (on unless `ship_between_hosts: false`), the first host that needs an
image gets it from this machine; every host that has it then serves as a seed: the others get it
from a seed over the hosts' own network (commands.relay: a temporary ed25519 key on the seed, good
for one forced `docker save <image id>` only and expiring by itself, the private key in a 0700 tmpfs
folder on the peer, the seed's host key as provision verified it, `ssh seed | docker load` on the
peer; the private key is a provision.secret.Secret until it is written there, so it never reaches a log,
--json or a plan). Each seed serves at most MAX_PEERS_PER_SEED peers at a time, so the hosts that have the
image grow like a tree. A relay that fails (the seed unreachable from the peer, a refused key, an
old sshd) falls back to shipping from this machine, and that seed is not used again. A host that
already has most of an image's layers (less than MIN_MISSING_SHARE of its bytes missing, e.g. only
the top layer changed) gets the missing layers from this machine instead: a seed's `docker save`
would send the whole image.

`Relay` is the per-deploy coordinator, shared by the hosts' threads: `claim` says where one host
gets one image from (waiting, while another host is still receiving it from this machine, for it
to become a seed), `done` records the outcome. Pure parts (`choose_seed`, `seed_endpoint`,
`expiry`) are unit-tested; the keys come from `new_keypair`.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field

from provision.commands import relay as relay_cmd
from provision.commands.argv import UnsafeValue
from provision.config.connection import as_bool
from provision.errors import InventoryError
from provision.secret import Secret

ENABLE_VAR = "ship_between_hosts"
ADDRESS_VAR = "ship_address"
PORT_VAR = "ship_port"
MAX_PEERS_PER_SEED = 2
# a seed sends the whole image (`docker save`), this machine only the layers a host lacks: a host that
# lacks less than this share of the image's bytes gets it from this machine
MIN_MISSING_SHARE = 0.5
WAIT_S = 3600.0  # how long a host waits for a seed while another host receives the image from this machine
POLL_S = 0.5
RELAY_TIMEOUT_S = 3600  # one `ssh seed | docker load`
KEY_LIFETIME_S = RELAY_TIMEOUT_S + 600  # the authorized_keys line's expiry-time, a backstop to its removal

OPERATOR = "operator"
SEED = "seed"


@dataclass(frozen=True)
class Seed:
    """How the other hosts reach one host's sshd for a relay."""

    name: str
    address: str
    port: int
    user: str


def enabled(name: str, hostvars: dict) -> bool:
    """`ship_between_hosts` (default true): may this host get images from other hosts and serve them?"""
    return as_bool(hostvars.get(ENABLE_VAR, True), name=name, what=ENABLE_VAR)


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def seed_endpoint(name: str, hostvars: dict, settings) -> tuple[Seed | None, str]:
    """(Seed, "") when other hosts can reach this host for a relay, else (None, why not).

    The address is `ship_address` (port `ship_port`, default 22) when set, else the inventory address
    (ansible_host, ansible_port) unless that is a loopback address or the host is reached through a
    jump host or ProxyCommand (which other hosts may not have)."""
    if not enabled(name, hostvars):
        return None, f"{ENABLE_VAR} is false"
    if settings.connection == "local":
        return None, "connection=local"
    if hostvars.get(ADDRESS_VAR) not in (None, ""):
        address, port = str(hostvars[ADDRESS_VAR]), hostvars.get(PORT_VAR, 22)
    elif _loopback(settings.host):
        return None, f"its inventory address {settings.host} is this machine's loopback (set {ADDRESS_VAR})"
    elif settings.jumps or settings.proxy_command:
        return None, f"it is reached through a jump host or ProxyCommand (set {ADDRESS_VAR})"
    else:
        address, port = settings.host, hostvars.get(PORT_VAR, settings.port)
    try:
        relay_cmd.address(address)
        port = int(port)
    except (UnsafeValue, TypeError, ValueError):
        raise InventoryError(f"host '{name}': {ADDRESS_VAR}/{PORT_VAR} must be a host name or IP address and "
                             "a port number") from None
    if not 0 < port < 65536:
        raise InventoryError(f"host '{name}': {PORT_VAR} must be a port number, got {port}")
    return Seed(name, address, port, settings.user), ""


def expiry(now: float, lifetime_s: float = KEY_LIFETIME_S) -> str:
    """The authorized_keys expiry-time (UTC, YYYYMMDDHHMMZ), `lifetime_s` after `now` rounded up to a minute."""
    return time.strftime("%Y%m%d%H%MZ", time.gmtime(now + lifetime_s + 60))


def new_keypair() -> tuple[Secret, str]:
    """A fresh ed25519 key: (private key in OpenSSH format, wrapped: it never prints; public key as
    `ssh-ed25519 AAAA...`)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return Secret(private.decode()), public.decode()


def choose_seed(holders: list[Seed], active: dict[str, int], failed: set[str], peer: str,
                limit: int = MAX_PEERS_PER_SEED) -> Seed | None:
    """The seed a peer gets an image from: among the hosts that have it (in the order they got it),
    not failed, not the peer, with a free slot, the least busy; None when none is free."""
    free = [s for s in holders if s.name != peer and s.name not in failed and active.get(s.name, 0) < limit]
    return min(free, key=lambda s: active.get(s.name, 0)) if free else None


@dataclass
class Claim:
    """Where one host gets one image from: this machine (`operator`) or a seed."""

    image_id: str
    host: str
    kind: str
    seed: Seed | None = None
    waited: float = 0.0


@dataclass
class _Image:
    holders: list[Seed] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    shipping: int = 0  # hosts receiving it from this machine now


class Relay:
    """One deploy's relay state, shared by every host's thread."""

    def __init__(self, seeds: dict[str, Seed | None], connect=None, *, limit: int = MAX_PEERS_PER_SEED,
                 wait_s: float = WAIT_S, poll_s: float = POLL_S, interrupted=lambda: False,
                 pin=lambda name: None) -> None:
        self.seeds = seeds  # host name → how peers reach it (None: it cannot serve)
        # host name → an Executor for it (the seed's side of a relay), closed after use: in a deploy, a lease on
        # the seed's own executor (workflows.fanout.SharedExecutors: the seed's one SSH connection)
        self.connect = connect
        self.pin = pin  # called with a host's name when it becomes a seed: keep its executor open till the end
        self.limit = limit
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.interrupted = interrupted
        self._images: dict[str, _Image] = {}
        self._cond = threading.Condition()
        self._seed_locks: dict[str, threading.Lock] = {}

    def seed_lock(self, name: str) -> threading.Lock:
        """Serialises edits of one seed's authorized_keys (two peers may relay from it at once)."""
        with self._cond:
            return self._seed_locks.setdefault(name, threading.Lock())

    def offer(self, image_id: str, host: str) -> None:
        """`host` has the image (it had it already, or just got it): it may serve it from now on."""
        seed = self.seeds.get(host)
        if seed is not None:
            self.pin(host)  # before any peer can claim it
        with self._cond:
            state = self._images.setdefault(image_id, _Image())
            if seed is not None and all(s.name != host for s in state.holders):
                state.holders.append(seed)
            self._cond.notify_all()

    def claim(self, image_id: str, host: str, *, receive: bool = True) -> Claim:
        """Where `host` gets the image from. A free seed if there is one; else this machine if no host is
        receiving it from this machine now (or `receive` is false); else wait for a seed (or for that
        host to fail, then take over), at most `wait_s`. Raises what `interrupted` raises."""
        started = time.monotonic()
        with self._cond:
            state = self._images.setdefault(image_id, _Image())
            while True:
                seed = choose_seed(state.holders, state.active, state.failed, host, self.limit) if receive else None
                if seed is not None:
                    state.active[seed.name] = state.active.get(seed.name, 0) + 1
                    return Claim(image_id, host, SEED, seed, time.monotonic() - started)
                busy = any(state.active.get(s.name, 0) for s in state.holders if s.name not in state.failed)
                if not receive or (not state.shipping and not busy) or time.monotonic() - started > self.wait_s:
                    state.shipping += 1
                    return Claim(image_id, host, OPERATOR, None, time.monotonic() - started)
                self._cond.wait(self.poll_s)
                self.interrupted()

    def done(self, claim: Claim, ok: bool) -> None:
        """The claim ended: a seed that failed is not used again; a host that got the image serves it."""
        with self._cond:
            state = self._images.setdefault(claim.image_id, _Image())
            if claim.kind == OPERATOR:
                state.shipping -= 1
            elif claim.seed is not None:
                state.active[claim.seed.name] -= 1
                if not ok:
                    state.failed.add(claim.seed.name)
            self._cond.notify_all()
        if ok:
            self.offer(claim.image_id, claim.host)

    def abandon_seed(self, claim: Claim) -> None:
        """The relay from claim.seed failed: the seed is not used again; the host turns to this machine."""
        with self._cond:
            state = self._images.setdefault(claim.image_id, _Image())
            if claim.seed is not None:
                state.active[claim.seed.name] -= 1
                state.failed.add(claim.seed.name)
            state.shipping += 1
            claim.kind, claim.seed = OPERATOR, claim.seed
            self._cond.notify_all()
