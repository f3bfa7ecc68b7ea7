"""Trust on first use without races, the default path, and re-recording (real paramiko keys, real files)."""

import multiprocessing
import threading
from pathlib import Path

import paramiko
import pytest

from provision.executor.known_hosts import KnownHosts, default_path, fingerprint, key_name

NAME = key_name("10.0.0.7", 2222)


def _key():
    return paramiko.ECDSAKey.generate()


def _entries(path: Path) -> dict:
    keys = paramiko.HostKeys(str(path)) if path.exists() else paramiko.HostKeys()
    return {name: {kind: fingerprint(key) for kind, key in keys.lookup(name).items()} for name in keys.keys()}


# -- default path ----------------------------------------------------------------------------------
def test_default_is_under_the_home_folder_whatever_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PROVISION_KNOWN_HOSTS", raising=False)
    monkeypatch.delenv("PROVISION_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    seen = set()
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
        monkeypatch.chdir(folder)
        seen.add(default_path())
        seen.add(KnownHosts().path)
    assert seen == {tmp_path / "home" / ".provision" / "known_hosts"}


def test_default_follows_provision_home_made_absolute_once(tmp_path, monkeypatch):
    monkeypatch.delenv("PROVISION_KNOWN_HOSTS", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROVISION_HOME", "state")
    assert default_path() == tmp_path / "state" / "known_hosts"
    assert default_path().is_absolute()


def test_provision_known_hosts_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVISION_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("PROVISION_KNOWN_HOSTS", str(tmp_path / "kh"))
    assert default_path() == tmp_path / "kh"


def test_importing_the_module_imports_no_paramiko():
    """The CLI's option defaults use default_path: `--help` must stay light."""
    import subprocess
    import sys

    code = "import sys, provision.executor.known_hosts as k; k.default_path(); print('paramiko' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_an_explicit_path_is_kept_as_given(tmp_path):
    assert KnownHosts(tmp_path / "x").path == tmp_path / "x"


# -- trust on first use ----------------------------------------------------------------------------
def test_first_use_records_and_says_so_then_the_same_key_is_accepted_silently(tmp_path):
    kh, key = KnownHosts(tmp_path / "known_hosts"), _key()
    note = kh.trust_first_use(NAME, key)
    assert note == f"recorded new host key {NAME} {key.get_name()} {fingerprint(key)} in {kh.path}"
    assert kh.trust_first_use(NAME, key) is None
    assert _entries(kh.path) == {NAME: {key.get_name(): fingerprint(key)}}
    assert (kh.path.stat().st_mode & 0o777) == 0o600


def test_a_different_key_recorded_meanwhile_is_refused_not_added(tmp_path):
    kh, first, second = KnownHosts(tmp_path / "known_hosts"), _key(), _key()
    kh.trust_first_use(NAME, first)
    with pytest.raises(paramiko.BadHostKeyException) as caught:
        kh.trust_first_use(NAME, second)
    assert caught.value.key is second and caught.value.expected_key == first
    assert _entries(kh.path) == {NAME: {first.get_name(): fingerprint(first)}}


def test_a_key_of_another_type_than_the_recorded_one_is_refused(tmp_path):
    kh = KnownHosts(tmp_path / "known_hosts")
    kh.trust_first_use(NAME, _key())
    with pytest.raises(paramiko.BadHostKeyException):
        kh.trust_first_use(NAME, paramiko.Ed25519Key.from_private_key_file(_ed25519(tmp_path)))


def _ed25519(tmp_path: Path) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / "ed"
    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    return str(path)


def test_the_policy_refuses_a_key_that_a_concurrent_connection_recorded_after_this_one_loaded_the_file(tmp_path):
    """The old policy added the second, unverified key to the client: the connection went through."""
    kh = KnownHosts(tmp_path / "known_hosts")
    client, notes = paramiko.SSHClient(), []
    kh.prepare(client, notes.append)  # loads the (empty) file, as each connection does when it is built
    winner, loser = _key(), _key()
    KnownHosts(kh.path).trust_first_use(NAME, winner)  # another thread or process, meanwhile
    with pytest.raises(paramiko.BadHostKeyException):
        client._policy.missing_host_key(client, NAME, loser)
    assert client.get_host_keys().lookup(NAME) is None and notes == []
    client._policy.missing_host_key(client, NAME, winner)  # the same key as recorded is fine
    assert client.get_host_keys().lookup(NAME)[winner.get_name()] == winner and notes == []


def test_threads_racing_with_two_keys_record_exactly_one_and_refuse_the_other(tmp_path):
    keys = [_key(), _key()]
    kh = KnownHosts(tmp_path / "known_hosts")
    rounds, per_key = 5, 4
    for round_ in range(rounds):
        name = key_name(f"10.0.0.{round_}", 22)
        clients = []
        for i in range(2 * per_key):
            client = paramiko.SSHClient()
            kh.prepare(client)  # every client loaded the file before anyone recorded
            clients.append((client, keys[i % 2]))
        barrier = threading.Barrier(len(clients))
        outcome: list[tuple[str, object]] = []

        def first_connect(client, key):
            barrier.wait()
            try:
                client._policy.missing_host_key(client, name, key)
                outcome.append(("accepted", key))
            except paramiko.BadHostKeyException:
                outcome.append(("refused", key))

        threads = [threading.Thread(target=first_connect, args=pair) for pair in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        recorded = paramiko.HostKeys(str(kh.path)).lookup(name)
        assert recorded is not None and len(recorded) == 1
        winner = list(recorded.values())[0]
        assert sorted(o for o, k in outcome if k == winner) == ["accepted"] * per_key
        assert sorted(o for o, k in outcome if k != winner) == ["refused"] * per_key
    assert len(kh.recorded) == rounds  # one recording per name, the losers added nothing


def _race_in_a_process(path: str, name: str, key_file: str, barrier, results) -> None:
    key = paramiko.ECDSAKey.from_private_key_file(key_file)
    client = paramiko.SSHClient()
    kh = KnownHosts(Path(path))
    kh.prepare(client)
    barrier.wait()
    try:
        client._policy.missing_host_key(client, name, key)
        results.put((key_file, "accepted"))
    except paramiko.BadHostKeyException:
        results.put((key_file, "refused"))


def test_two_processes_racing_with_two_keys_record_exactly_one(tmp_path):
    """Two runs at once (separate processes, one file): the file lock decides, the loser is refused."""
    files = []
    for i in range(2):
        key_file = str(tmp_path / f"k{i}")
        _key().write_private_key_file(key_file)
        files.append(key_file)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_race_in_a_process,
                                 args=(str(tmp_path / "known_hosts"), NAME, files[i % 2], barrier, results))
                 for i in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    outcome = [results.get(timeout=5) for _ in processes]
    recorded = paramiko.HostKeys(str(tmp_path / "known_hosts")).lookup(NAME)
    assert len(recorded) == 1
    winner_fp = fingerprint(list(recorded.values())[0])
    winner = next(f for f in files if fingerprint(paramiko.ECDSAKey.from_private_key_file(f)) == winner_fp)
    assert sorted(outcome) == sorted([(winner, "accepted")] * 2 + [(f, "refused") for f in files if f != winner] * 2)


def test_record_replace_re_records_a_changed_key(tmp_path):
    kh, old, new = KnownHosts(tmp_path / "known_hosts"), _key(), _key()
    kh.trust_first_use(NAME, old)
    kh.trust_first_use("other", old)
    note = kh.record(NAME, new, replace=True)
    assert note.startswith(f"re-recorded changed host key {NAME} ")
    assert _entries(kh.path) == {NAME: {new.get_name(): fingerprint(new)}, "other": {old.get_name(): fingerprint(old)}}
