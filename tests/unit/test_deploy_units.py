"""Pure parts of the deploy: host bookkeeping commands, image sources, rollout decisions, the SSH dial."""

from __future__ import annotations

import json
import shlex
from types import SimpleNamespace

import pytest

from provision.commands import deploy_host
from provision.deploy import images, rollout
from provision.commands.deploy_host import docker_dial_stdio


def test_docker_dial_stdio_plain_and_sudo():
    assert docker_dial_stdio() == "docker system dial-stdio"
    assert docker_dial_stdio(sudo=True) == "sudo -n docker system dial-stdio"


def test_acquire_lock_is_an_atomic_mkdir_that_reports_the_holder():
    holder = {"by": "ana@laptop", "since": "2026-11-22T10:00:00+0000", "stack": "ml", "token": "t1"}
    assert deploy_host.acquire_lock(holder) == (
        "mkdir -p /var/lib/provision && if mkdir /var/lib/provision/deploy.lock 2>/dev/null; then "
        "printf '%s\\n' '" + json.dumps(holder, sort_keys=True) + "' > /var/lib/provision/deploy.lock/holder; "
        "else cat /var/lib/provision/deploy.lock/holder 2>/dev/null || echo '{}'; exit 17; fi")


def test_release_lock_only_with_our_token():
    assert deploy_host.release_lock("abc") == (
        "if grep -qF abc /var/lib/provision/deploy.lock/holder 2>/dev/null; then rm -rf /var/lib/provision/deploy.lock; fi")


def test_audit_line_is_quoted_and_appended():
    command = deploy_host.append_audit({"stack": "it's"})
    assert command == ("mkdir -p /var/log/provision && ( umask 077; printf '%s\\n' "
                       + shlex.quote('{"stack": "it\'s"}') + " >> /var/log/provision/audit.log )")


def test_sync_folder_unpacks_only_on_a_new_digest_and_fails_as_a_step():
    # inside remote_dir only; owners and setuid bits not kept; any failure is the exit status; archive always removed
    assert deploy_host.sync_folder("/srv/p/ml/data", "/tmp/a.tar", "d1", "/srv/p/ml/.provision-sync/x", "/srv/p/ml") == (
        "rc=0; case \"$(realpath -m -- /srv/p/ml/data)/\" in \"$(realpath -m -- /srv/p/ml)\"/*) { "
        "mkdir -p /srv/p/ml/data /srv/p/ml/.provision-sync && if [ \"$(cat /srv/p/ml/.provision-sync/x 2>/dev/null)\" = d1 ]; "
        "then echo unchanged; else tar --no-unquote --no-same-owner --no-same-permissions -xf /tmp/a.tar -C /srv/p/ml/data "
        "&& printf '%s\\n' d1 > /srv/p/ml/.provision-sync/x && echo synced; fi; } || rc=$? ;; "
        "*) echo '/srv/p/ml/data resolves outside /srv/p/ml (through .. or a symlink): refusing to write there' >&2; "
        "rc=3 ;; esac; rm -f /tmp/a.tar; exit $rc")


def test_lock_read_and_deliberate_break_commands():
    assert deploy_host.read_lock() == (
        "if [ -d /var/lib/provision/deploy.lock ]; then echo held; cat /var/lib/provision/deploy.lock/holder "
        "2>/dev/null || true; else echo free; fi")
    assert deploy_host.break_lock('{"by": "ana"}') == (
        "if [ -d /var/lib/provision/deploy.lock ] && [ \"$(cat /var/lib/provision/deploy.lock/holder 2>/dev/null)\" = "
        "'{\"by\": \"ana\"}' ]; then rm -rf /var/lib/provision/deploy.lock; else exit 18; fi")
    assert deploy_host.read_sync_marker("/srv/p/.provision-sync/x") == "cat /srv/p/.provision-sync/x 2>/dev/null || true"
    assert deploy_host.make_temp() == "mktemp /tmp/provision-sync.XXXXXXXXXX"


def test_folder_exists_command():
    assert deploy_host.folder_exists("/srv/app/conf") == ["test", "-d", "/srv/app/conf"]
    assert deploy_host.folder_exists("/srv/my app") == ["test", "-d", "/srv/my app"]


@pytest.mark.parametrize("name,domain", [
    ("myapp:v1", "docker.io"), ("chromadb/chroma:0.5.0", "docker.io"), ("ghcr.io/org/app:1", "ghcr.io"),
    ("localhost/app", "localhost"), ("127.0.0.1:5000/x/y:2", "127.0.0.1:5000"), ("nvidia/cuda:12.4.1-base-ubuntu22.04", "docker.io"),
])
def test_registry_domain(name, domain):
    assert images.registry_domain(name) == domain


@pytest.mark.parametrize("name,expected", [
    ("myapp", ("myapp", "latest")), ("myapp:v1", ("myapp", "v1")), ("host:5000/a/b", ("host:5000/a/b", "latest")),
    ("host:5000/a/b:3", ("host:5000/a/b", "3")), ("a/b@sha256:00ff", ("a/b", "sha256:00ff")),
])
def test_split_reference(name, expected):
    assert images.split_reference(name) == expected


def test_pull_auth_only_for_the_playbooks_registry():
    playbook = SimpleNamespace(registry=SimpleNamespace(server="ghcr.io", username="bot", password_env="TOKEN"))
    assert images.pull_auth(playbook, "ghcr.io/org/app:1", {"TOKEN": "s3"}) == {
        "username": "bot", "password": "s3", "serveraddress": "ghcr.io"}
    assert images.pull_auth(playbook, "myapp:v1", {"TOKEN": "s3"}) is None
    assert images.pull_auth(SimpleNamespace(registry=None), "ghcr.io/org/app:1", {}) is None


def _desired(hash_="h1"):
    return rollout.Desired(name="ml-app-1", service="app", replica=1, spec_hash=hash_, create_kwargs=lambda n: {})


def _container(hash_="h1", status="running"):
    return SimpleNamespace(labels={"io.provision.spec-hash": hash_}, status=status, id="c1")


@pytest.mark.parametrize("current,action", [
    (None, "create"), (_container("h0"), "replace"), (_container("h1", "exited"), "start"), (_container(), "keep"),
])
def test_decide(current, action):
    assert rollout.decide(current, _desired())[0] == action


class _FakeAPI:
    def __init__(self, states):
        self.states = list(states)

    def inspect_container(self, _id):
        return {"State": self.states.pop(0) if len(self.states) > 1 else self.states[0]}


def test_wait_ready_healthy_and_unhealthy_and_exit():
    rollout.wait_ready(SimpleNamespace(api=_FakeAPI([{"Status": "running", "Health": {"Status": "starting"}},
                                                     {"Status": "running", "Health": {"Status": "healthy"}}])),
                       "c", 5, poll=0)
    with pytest.raises(rollout.RolloutFailed, match="unhealthy"):
        rollout.wait_ready(SimpleNamespace(api=_FakeAPI([{"Status": "running", "Health": {"Status": "unhealthy"}}])),
                           "c", 5, poll=0)
    with pytest.raises(rollout.RolloutFailed, match="exited with code 3"):
        rollout.wait_ready(SimpleNamespace(api=_FakeAPI([{"Status": "exited", "ExitCode": 3}])), "c", 5, poll=0)
    with pytest.raises(rollout.RolloutFailed, match="not ready after 0s"):
        rollout.wait_ready(SimpleNamespace(api=_FakeAPI([{"Status": "created"}])), "c", 0, poll=0)


def test_health_waits_report_each_check_as_n_of_m(monkeypatch):
    from provision import progress

    seen = []

    class Recorder:
        def step(self, host, name):
            pass

        def update(self, host, update):
            seen.append((update.unit, update.total, update.detail))

    monkeypatch.setattr(rollout.time, "sleep", lambda s: None)
    assert rollout.most_checks(60, 0.5) == 121 and rollout.most_checks(0, 0.5) == 1
    with progress.reporting(Recorder(), "h1"):
        rollout.wait_ready(SimpleNamespace(api=_FakeAPI([{"Status": "running", "Health": {"Status": "starting"}},
                                                         {"Status": "running", "Health": {"Status": "healthy"}}])),
                           "c", 60, poll=0.5)
        rollout.wait_healthy(SimpleNamespace(api=_FakeAPI([{"Status": "running", "Health": {"Status": "starting"}},
                                                           {"Status": "running", "Health": {"Status": "healthy"}}])),
                             "db", 10, poll=0.5)
    assert seen == [("s", 60, "check 1 of 121: health starting"), ("s", 60, "check 2 of 121: health healthy"),
                    ("s", 10, "waiting for db, check 1 of 21")]


def test_wait_ready_without_healthcheck_needs_a_steady_run():
    rollout.wait_ready(SimpleNamespace(api=_FakeAPI([{"Status": "running"}])), "c", 5, settle=0, poll=0)


def test_wait_ready_fails_fast_on_a_restart_loop():
    with pytest.raises(rollout.RolloutFailed, match="keeps restarting"):
        rollout.wait_ready(SimpleNamespace(api=_FakeAPI([{"Status": "restarting", "Restarting": True, "ExitCode": 1}])),
                           "c", 5, poll=0)


def test_docker_client_uses_one_ssh_pool_for_every_url():
    """Each pooled connection is an SSH session (sshd allows 10): never a pool per URL."""
    from provision.deploy.remote_docker import docker_client

    class Transport:
        def is_active(self):
            return True

    opened = []
    client = docker_client(lambda: opened.append(1) or Transport())
    adapter = client.api._custom_adapter
    first = adapter.get_connection("http+docker://ssh/v1.41/containers/json")
    second = adapter.get_connection("http+docker://ssh/v1.41/images/abc/json")
    assert first is second and opened == [1]


class _Container:
    def __init__(self, client, cid, name, start_error=None):
        self.client, self.id, self.name, self.start_error = client, cid, name, start_error
        self.labels, self.status, self.events = {}, "running", []

    def start(self):
        self.events.append("start")
        if self.start_error:
            raise self.start_error

    def stop(self):
        self.events.append("stop")

    def remove(self, force=False):
        self.client.removed.append(self.name)
        self.client.by_name.pop(self.name, None)

    def rename(self, name):
        self.client.by_name.pop(self.name, None)
        self.name = name
        self.client.by_name[name] = self

    def logs(self, tail=None):
        return b"boom: cannot bind\n"


class _Client:
    """Just enough of docker.DockerClient for a rollout."""

    def __init__(self, start_error=None):
        import docker.errors

        self.by_name, self.removed, self.start_error, self._errors = {}, [], start_error, docker.errors
        outer = self

        class Containers:
            def get(self, key):
                for c in outer.by_name.values():
                    if key in (c.name, c.id):
                        return c
                raise outer._errors.NotFound("no such container")

        class API:
            def create_container(self, name, **kwargs):
                outer.by_name[name] = _Container(outer, "new-id", name, outer.start_error)
                return {"Id": "new-id"}

        self.containers, self.api = Containers(), API()


def test_roll_out_start_refused_by_the_engine_keeps_the_old_container_serving():
    import docker.errors

    client = _Client(start_error=docker.errors.APIError("500", explanation="error setting rlimits"))
    old = _Container(client, "old-id", "ml-app-1")
    client.by_name["ml-app-1"] = old
    outcome = rollout.roll_out(client, old, rollout.Desired("ml-app-1", "app", 1, "h2", lambda n: {"name": n},
                                                            order="stop-first"))
    assert outcome.failed and outcome.action == "rolled back"
    assert "cannot start: error setting rlimits" in outcome.message and "the old container keeps serving" in outcome.message
    assert old.events == ["stop", "start"]  # stop-first: restarted at once
    assert client.removed == ["ml-app-1.next"] and client.by_name == {"ml-app-1": old}


def test_roll_out_success_keeps_the_old_one_as_previous():
    client = _Client()
    old = _Container(client, "old-id", "ml-app-1")
    client.by_name["ml-app-1"] = old
    original = rollout.wait_ready
    rollout.wait_ready = lambda *a, **k: None
    try:
        outcome = rollout.roll_out(client, old, rollout.Desired("ml-app-1", "app", 1, "h2", lambda n: {"name": n}))
    finally:
        rollout.wait_ready = original
    assert not outcome.failed and outcome.container_id == "new-id"
    assert set(client.by_name) == {"ml-app-1", "ml-app-1.previous"}
    assert client.by_name["ml-app-1"].id == "new-id" and old.events == ["stop"]  # start-first: stopped after
