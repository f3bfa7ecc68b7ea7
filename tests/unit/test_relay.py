"""Host-to-host image relay: the commands as exact strings, the planning (which host seeds which),
and the workflow's steps on recording executors (the private key only ever travels by `put`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from provision.commands import relay as r
from provision.commands.argv import UnsafeValue
from provision.config.connection import ConnectionSettings
from provision.deploy import relay as relays
from provision.errors import InventoryError, ProvisionError
from provision.executor.fake import RecordingExecutor

M = "provision-relay-0123456789abcdef"
ID = "sha256:" + "ab" * 32
PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv"
LINE = (f'restrict,expiry-time="202612012200Z",command="docker save {ID}" {PUB} {M}')
D = f"/dev/shm/{M}"


# -- commands --------------------------------------------------------------------------------------
def test_authorized_line_allows_one_forced_command_until_it_expires():
    assert r.authorized_line(PUB, M, ID, "202612012200Z") == LINE


def test_authorize_appends_the_line():
    assert r.authorize(LINE) == (f"umask 077 && mkdir -p ~/.ssh && printf '%s\\n' '{LINE}' >> ~/.ssh/authorized_keys")


def test_revoke_replaces_authorized_keys_atomically_without_the_marker():
    assert r.revoke(M) == (
        f"if grep -qF {M} ~/.ssh/authorized_keys 2>/dev/null; then f=$(readlink -f ~/.ssh/authorized_keys) && "
        f't=$(mktemp "$f.provision-relay.XXXXXX") && {{ grep -vF {M} "$f" > "$t"; rc=$?; '
        f'[ "$rc" -le 1 ] && chmod --reference="$f" "$t" && chown --reference="$f" "$t" && mv -f "$t" "$f" '
        f'|| {{ rm -f "$t"; false; }}; }}; fi')


def test_revoke_in_a_real_shell_keeps_other_keys_mode_and_never_truncates(tmp_path):
    import subprocess

    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    keys = ssh / "authorized_keys"
    keys.write_text(f"ssh-ed25519 AAAA mine\nrestrict ssh-ed25519 BBBB {M}\nssh-rsa CCCC other\n")
    keys.chmod(0o600)
    run = subprocess.run(["sh", "-c", r.revoke(M)], env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert keys.read_text() == "ssh-ed25519 AAAA mine\nssh-rsa CCCC other\n"
    assert keys.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in ssh.iterdir()] == ["authorized_keys"]  # no temporary file left
    again = subprocess.run(["sh", "-c", r.revoke(M)], env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert again.returncode == 0 and keys.read_text() == "ssh-ed25519 AAAA mine\nssh-rsa CCCC other\n"


def test_peer_folder_and_receive():
    assert r.make_folder(M) == f"umask 077 && mkdir -m 700 {D}"
    assert r.remove_folder(M) == f"rm -rf {D}"
    assert r.receive(M, "root", "hh-ship-a", 22, 3600) == (
        f"trap 'rm -rf {D}' EXIT; trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP; "
        f"timeout 3600 ssh -T -i {D}/key -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes "
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={D}/known_hosts -o GlobalKnownHostsFile=/dev/null "
        "-o ConnectTimeout=10 -o ServerAliveInterval=10 -o ServerAliveCountMax=3 -o Ciphers=aes128-gcm@openssh.com,"
        "aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr -o Compression=no -p 22 -- root@hh-ship-a "
        "< /dev/null | timeout 3600 docker load")


def test_known_hosts_line_names_the_port_unless_22():
    assert r.known_hosts_line("hh-ship-a", 22, "ssh-ed25519 AAAA") == "hh-ship-a ssh-ed25519 AAAA\n"
    assert r.known_hosts_line("10.0.0.7", 2222, "ecdsa-sha2-nistp256 AAAA=") == "[10.0.0.7]:2222 ecdsa-sha2-nistp256 AAAA=\n"


def test_checks():
    assert r.count_lines() == "grep -cF provision-relay- ~/.ssh/authorized_keys 2>/dev/null || true"
    assert r.relay_processes() == "pgrep -af '/dev/shm/[p]rovision-relay-' || true"


@pytest.mark.parametrize("call", [
    lambda: r.authorized_line(PUB, M, "sha256:abc", "202612012200Z"),
    lambda: r.authorized_line(PUB + "'; id", M, ID, "202612012200Z"),
    lambda: r.authorized_line(PUB, "provision-relay-x", ID, "202612012200Z"),
    lambda: r.authorized_line(PUB, M, ID, "tomorrow"),
    lambda: r.authorize("command=\"sh\" " + PUB),
    lambda: r.folder("../etc"),
    lambda: r.receive(M, "-oProxyCommand=id", "a", 22, 10),
    lambda: r.receive(M, "root", "-oProxyCommand=id", 22, 10),
    lambda: r.receive(M, "root", "a b", 22, 10),
    lambda: r.known_hosts_line("a", 22, "ssh-ed25519 AAAA\nevil"),
])
def test_unexpected_values_are_refused(call):
    with pytest.raises(UnsafeValue):
        call()


# -- where a seed is reached -----------------------------------------------------------------------
def settings(host="10.0.0.5", port=22, **kw) -> ConnectionSettings:
    return ConnectionSettings(name="h", host=host, port=port, user="deploy", **kw)


def test_seed_endpoint():
    assert relays.seed_endpoint("h", {}, settings()) == (relays.Seed("h", "10.0.0.5", 22, "deploy"), "")
    assert relays.seed_endpoint("h", {}, settings(port=2200))[0].port == 2200
    assert relays.seed_endpoint("h", {"ship_address": "h.lan"}, settings("127.0.0.1", 22201))[0] == \
        relays.Seed("h", "h.lan", 22, "deploy")
    assert relays.seed_endpoint("h", {"ship_address": "h.lan", "ship_port": "2222"}, settings())[0].port == 2222
    seed, why = relays.seed_endpoint("h", {}, settings("127.0.0.1", 22201))
    assert seed is None and "loopback" in why and "ship_address" in why
    assert relays.seed_endpoint("h", {"ship_between_hosts": "no"}, settings())[0] is None
    assert relays.seed_endpoint("h", {}, settings(connection="local"))[0] is None
    assert relays.seed_endpoint("h", {}, settings(proxy_command="ssh -W %h:%p j"))[0] is None
    for bad in ({"ship_address": "a;b"}, {"ship_address": "a", "ship_port": 0}, {"ship_address": "a", "ship_port": "x"}):
        with pytest.raises(InventoryError):
            relays.seed_endpoint("h", bad, settings())


def test_expiry_is_utc_and_after_the_relay_timeout():
    assert relays.expiry(0.0, 3600) == "197001010101Z"


def test_new_keypair_is_a_fresh_openssh_ed25519_key():
    private, public = relays.new_keypair()
    assert private.reveal().startswith("-----BEGIN OPENSSH PRIVATE KEY-----") and public.startswith("ssh-ed25519 ")
    assert "PRIVATE" not in repr(private) and "PRIVATE" not in f"{private}" and "PRIVATE" not in str(private)
    assert relays.new_keypair()[1] != public
    r.authorized_line(public, M, ID, "202612012200Z")  # the public key passes the builder's check


# -- planning: who seeds whom ----------------------------------------------------------------------
def seeds(*names):
    return {n: relays.Seed(n, f"{n}.lan", 22, "root") for n in names}


def test_choose_seed_prefers_the_least_busy_free_seed():
    s = seeds("a", "b", "c")
    holders = [s["a"], s["b"]]
    assert relays.choose_seed(holders, {}, set(), "c") == s["a"]
    assert relays.choose_seed(holders, {"a": 1}, set(), "c") == s["b"]
    assert relays.choose_seed(holders, {"a": 2, "b": 2}, set(), "c") is None  # every slot taken
    assert relays.choose_seed(holders, {}, {"a"}, "c") == s["b"]  # a failed: not used again
    assert relays.choose_seed([s["c"]], {}, set(), "c") is None  # never itself


def test_the_first_host_ships_from_here_and_seeds_the_rest_as_a_tree():
    """Rounds of a 7-host deploy with 2 peers per seed: 1 host from this machine, then 2 from it, then 4
    from the 3 that have it (the least busy seed first)."""
    names = [f"h{i}" for i in range(7)]
    relay = relays.Relay(seeds(*names), wait_s=0.0)
    first = relay.claim(ID, "h0")
    assert first.kind == relays.OPERATOR
    relay.done(first, ok=True)
    got_from = {}
    pending = names[1:]
    while pending:
        claims = []
        for name in list(pending):
            relay_state = relay._images[ID]
            if relays.choose_seed(relay_state.holders, relay_state.active, relay_state.failed, name) is None:
                break
            claims.append(relay.claim(ID, name))
            pending.remove(name)
        for claim in claims:
            assert claim.kind == relays.SEED
            got_from[claim.host] = claim.seed.name
        for claim in claims:
            relay.done(claim, ok=True)
    assert got_from == {"h1": "h0", "h2": "h0", "h3": "h0", "h4": "h1", "h5": "h2", "h6": "h0"}


def test_waiters_wait_for_the_first_host_then_get_it_from_it():
    relay = relays.Relay(seeds("a", "b", "c"), poll_s=0.01)
    first = relay.claim(ID, "a")
    results = {}

    def peer(name):
        results[name] = relay.claim(ID, name)

    threads = [threading.Thread(target=peer, args=(n,)) for n in ("b", "c")]
    for t in threads:
        t.start()
    assert not results  # they wait while a receives it from this machine
    relay.done(first, ok=True)
    for t in threads:
        t.join(5)
    assert {n: (c.kind, c.seed.name) for n, c in results.items()} == {"b": ("seed", "a"), "c": ("seed", "a")}


def test_when_the_first_host_fails_a_waiter_ships_from_here():
    relay = relays.Relay(seeds("a", "b"), poll_s=0.01)
    first = relay.claim(ID, "a")
    got = []
    t = threading.Thread(target=lambda: got.append(relay.claim(ID, "b")))
    t.start()
    relay.done(first, ok=False)
    t.join(5)
    assert got[0].kind == relays.OPERATOR


def test_a_failed_seed_is_dropped_and_the_host_turns_to_this_machine():
    relay = relays.Relay(seeds("a", "b", "c"), wait_s=0.0)
    relay.done(relay.claim(ID, "a"), ok=True)
    claim = relay.claim(ID, "b")
    relay.abandon_seed(claim)
    assert claim.kind == relays.OPERATOR and claim.seed.name == "a"
    relay.done(claim, ok=True)  # b got it from this machine: b serves, a does not
    assert relay.claim(ID, "c").seed.name == "b"


def test_a_host_that_cannot_serve_still_receives():
    relay = relays.Relay({"a": None, "b": seeds("b")["b"]}, wait_s=0.0)
    relay.done(relay.claim(ID, "a"), ok=True)  # a has it but cannot serve: b ships from here
    assert relay.claim(ID, "b").kind == relays.OPERATOR


def test_waiting_stops_at_an_interrupt():
    class Stop(Exception):
        pass

    def interrupted():
        raise Stop

    relay = relays.Relay(seeds("a", "b"), poll_s=0.01, interrupted=interrupted)
    relay.claim(ID, "a")
    with pytest.raises(Stop):
        relay.claim(ID, "b")


# -- the workflow's steps ----------------------------------------------------------------------------
@dataclass
class FakeKey:
    def get_name(self):
        return "ssh-ed25519"

    def get_base64(self):
        return "AAAAseedkey"


class FakeTransport:
    def get_remote_server_key(self):
        return FakeKey()


class SeedExecutor(RecordingExecutor):
    closed: bool = False

    def ssh_transport(self):
        return FakeTransport()

    def close(self):
        self.closed = True


class FakeImages:
    def __init__(self, has):
        self.has = has
        self.tags = []

    def inspect_image(self, image_id):
        if not self.has:
            import docker.errors

            raise docker.errors.NotFound("no")
        return {"Id": image_id}

    def tag(self, image_id, repository, tag):
        self.tags.append((repository, tag))


class FakeClient:
    def __init__(self, has):
        self.api = FakeImages(has)


@dataclass
class Staged:
    name: str = "app:1"
    image_id: str = ID
    size: int = 1000


def test_relay_image_puts_the_key_by_sftp_and_removes_every_trace():
    from provision.workflows.deploy_images import relay_image

    seed_ex, peer = SeedExecutor("a"), RecordingExecutor("b")
    relay = relays.Relay(seeds("a", "b"), lambda name: seed_ex)
    sent = relay_image(relay, seeds("a")["a"], Staged(), peer, FakeClient(has=True))
    assert sent == 1000 and seed_ex.closed
    authorize, revoke = seed_ex.shells
    marker = revoke.split()[3]
    assert authorize.startswith("umask 077 && mkdir -p ~/.ssh && printf") and f'docker save {ID}' in authorize
    assert revoke == r.revoke(marker)
    assert peer.shells == [r.make_folder(marker), r.receive(marker, "root", "a.lan", 22, relays.RELAY_TIMEOUT_S),
                           r.remove_folder(marker)]
    (key_path, key, key_mode), (kh_path, kh, _) = peer.puts
    assert key_path == f"/dev/shm/{marker}/key" and key_mode == 0o600 and b"PRIVATE KEY" in key
    assert kh == b"a.lan ssh-ed25519 AAAAseedkey\n"
    assert not any(b"PRIVATE" in s.encode() or key.decode() in s for s in seed_ex.shells + peer.shells)


def test_a_failed_relay_still_removes_the_key_and_raises():
    from provision.workflows.deploy_images import relay_image

    seed_ex, peer = SeedExecutor("a"), RecordingExecutor("b")
    peer.respond("docker load", exit_code=1, stderr="ssh: connect to host a.lan port 22: No route to host")
    relay = relays.Relay(seeds("a", "b"), lambda name: seed_ex)
    with pytest.raises(ProvisionError, match="No route to host"):
        relay_image(relay, seeds("a")["a"], Staged(), peer, FakeClient(has=False))
    assert seed_ex.shells[-1].startswith("if grep -qF provision-relay-") and seed_ex.closed
    assert peer.shells[-1].startswith("rm -rf /dev/shm/provision-relay-")


# -- how much of an image a host lacks -----------------------------------------------------------------
class LayeredClient:
    def __init__(self, images: dict[str, list[str]]):
        outer = self

        class API:
            def images(self):
                return [{"Id": i} for i in outer.images]

            def inspect_image(self, image_id):
                return {"Id": image_id, "RootFS": {"Layers": outer.images[image_id]}}

        self.images = images
        self.api = API()


def test_missing_share_weighs_the_layers_a_host_lacks_by_their_size():
    from provision.deploy.shipping import StagedImage, missing_share

    staged = StagedImage("app:2", ID, 0, "provision/app", "2", None, (("sha256:base", 900), ("sha256:top2", 100)))
    assert missing_share(LayeredClient({}), staged) == 1.0
    assert missing_share(LayeredClient({"sha256:v1": ["sha256:base", "sha256:top1"]}), staged) == 0.1
    assert missing_share(LayeredClient({"x": ["sha256:top2"]}), staged) == 0.9
    unknown = StagedImage("app:2", ID, 0, "provision/app", "2")
    assert missing_share(LayeredClient({"sha256:v1": ["sha256:base"]}), unknown) == 1.0


# -- one executor per host: the precheck, the deploy and the relay's seed side share it (issue 12) ------
class CountingSeedExecutor(SeedExecutor):
    """A recording executor that counts its closes (a second close would be a second connection's)."""

    closes: int = 0

    def close(self):
        self.closes += 1
        self.closed = True


def _targets(*names):
    from provision.config.connection import connection_settings
    from provision.workflows.targets import Target

    return [Target(n, connection_settings(n, {"ansible_host": f"{n}.lan", "ansible_user": "root"}),
                   {"ansible_host": f"{n}.lan", "ansible_user": "root"}) for n in names]


def test_precheck_deploy_and_relay_use_one_executor_per_host():
    """A GPU precheck on b, then the deploy: a gets the image (it becomes a seed) and its worker ends; then b
    gets the image from a. Each host's one executor ran everything that touched it (the relay's key commands
    on a ran on a's executor, from b's thread, after a's own work was over), and was closed once, at the end."""
    from provision.workflows.deploy_images import make_relay, relay_image
    from provision.workflows.fanout import RunOptions, SharedExecutors, fan_out
    from provision.report import HostResult

    made: dict[str, CountingSeedExecutor] = {}

    def make(target, options):
        assert target.name not in made, f"a second executor for {target.name}"
        made[target.name] = CountingSeedExecutor(target.name)
        return made[target.name]

    targets = _targets("a", "b")
    options = RunOptions(forks=2)
    with SharedExecutors(targets, options, make) as executors:
        executors.expect("b", 2)  # the GPU host: the precheck's lease and the deploy's

        def precheck(target, executor):
            executor.run("nvidia-smi --query-gpu=uuid --format=csv")
            return HostResult(target.name)

        fan_out("deploy", [targets[1]], precheck, options, executors=executors)
        assert made["b"].closes == 0
        relay = make_relay(targets, options, executors=executors)

        def seed_work(target, executor):
            executor.run("docker load")
            relay.offer(ID, target.name)
            return HostResult(target.name)

        fan_out("deploy", [targets[0]], seed_work, options, executors=executors)
        assert made["a"].closes == 0  # a seed: still open for the peers

        def peer_work(target, executor):
            claim = relay.claim(ID, target.name)
            assert claim.kind == relays.SEED and claim.seed.name == "a"
            relay_image(relay, claim.seed, Staged(), executor, FakeClient(has=True))
            relay.done(claim, True)
            return HostResult(target.name)

        report = fan_out("deploy", [targets[1]], peer_work, options, executors=executors)
        assert report.hosts["b"].status != "failed", report.hosts["b"]
        assert made["b"].closes == 0 and made["a"].closes == 0  # b has the image now: a seed too
    assert sorted(made) == ["a", "b"] and executors.made == {"a": 1, "b": 1}
    assert made["a"].closes == 1 and made["b"].closes == 1
    a_shells, b_shells = made["a"].shells, made["b"].shells
    assert a_shells[0] == "docker load" and a_shells[1].startswith("umask 077 && mkdir -p ~/.ssh && printf")
    assert a_shells[2].startswith("if grep -qF provision-relay-")
    assert b_shells[0].startswith("nvidia-smi") and b_shells[1].startswith("umask 077 && mkdir -m 700 /dev/shm/")
    assert len(made["b"].puts) == 2  # the key and known_hosts, by put: in no command


def test_a_shared_executor_without_more_users_closes_when_released():
    from provision.workflows.fanout import RunOptions, SharedExecutors

    made = []
    executors = SharedExecutors(_targets("a"), RunOptions(), lambda t, o: made.append(CountingSeedExecutor(t.name))
                                or made[-1])
    first, second = executors.lease("a"), executors.lease("a")
    assert first.executor is second.executor and len(made) == 1
    first.close()
    first.close()  # a lease is given back once
    assert made[0].closes == 0
    second.close()
    assert made[0].closes == 1
    executors.lease("a").close()  # a later lease is a new executor (the old one was closed)
    assert len(made) == 2
