"""The Docker install decides from probed state: each case one variant of a host."""

from provision.commands import daemon_json, docker_repo
from provision.config.host_settings import DockerSettings
from provision.facts.docker_host import DockerHostState
from provision.operations import docker_install as op
from provision.operations.base import Change, NoChange, Refusal

KEY = "ab" * 32
SOURCES = docker_repo.sources_content("debian", "bookworm", "amd64")
INSTALLED = {p: "5:20.10.24-1~debian.12~bookworm" if p in docker_repo.PINNED else "1" for p in docker_repo.PACKAGES}


def fresh(**kw) -> DockerHostState:
    base = dict(os_id="debian", version_id="12", codename="bookworm", arch="amd64", systemd=True, remote_key_sha=KEY)
    base.update(kw)
    return DockerHostState(**base)


def configured(**kw) -> DockerHostState:
    base = dict(packages=dict(INSTALLED), keyring_sha=KEY, sources=SOURCES, docker_group=[],
                daemon_json='{\n  "log-driver": "json-file",\n  "log-opts": {\n    "max-size": "10m",\n    "max-file": "3"\n  }\n}\n',
                service_enabled=True, service_active=True)
    base.update(kw)
    return fresh(**base)


S = DockerSettings()


def test_preflight_refuses_unsupported_releases_and_arches():
    assert isinstance(op.preflight(fresh()), NoChange)
    assert op.preflight(fresh(os_id="ubuntu", version_id="23.10", codename="mantic")).reason.startswith(
        "ubuntu 23.10 is not supported (supported: ubuntu 20.04, 22.04, 24.04; debian 11, 12, 13)")
    assert op.preflight(fresh(arch="armhf")).reason == "architecture armhf is not supported (amd64, arm64); nothing was changed"
    assert "snap" in op.preflight(fresh(snap_docker=True)).reason
    assert isinstance(op.preflight(fresh(os_id="centos", version_id="9")), Refusal)


def test_fresh_host_gets_repo_packages_and_service():
    repo = op.repository(fresh(), S, "T")
    assert isinstance(repo, Change)
    assert repo.reason == ("key https://download.docker.com/linux/debian/gpg → /etc/apt/keyrings/docker.asc; "
                           "/etc/apt/sources.list.d/docker.sources (https://download.docker.com/linux/debian bookworm stable)")
    assert repo.commands[-1].endswith(" update")
    assert repo.undo[0] == "rm -f /etc/apt/keyrings/docker.asc"  # a failed update leaves nothing behind
    pkgs = op.packages(fresh(), S, None)
    assert pkgs.reason == "installing docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin"
    assert op.service(fresh(), config_changed=True, engine_installed=True).commands == ["systemctl enable --now docker"]
    assert isinstance(op.conflicting_packages(fresh(), S), NoChange)


def test_configured_host_needs_nothing():
    state = configured()
    plan = [op.conflicting_packages(state, S), op.repository(state, S, "T"), op.daemon_config_change(state, S, "T"),
            op.packages(state, S, None), op.hold(state, S, False), op.users(state, S), op.service(state, False, False)]
    assert all(isinstance(item, NoChange) for item in plan), plan


def test_docker_io_is_converted():
    state = fresh(packages={"docker.io": "20.10.24+dfsg1-1", "containerd": "1.6.20", "runc": "1.1.5"})
    change = op.conflicting_packages(state, S)
    assert change.reason == "removing docker.io, containerd, runc (Docker from other sources; /var/lib/docker is kept)"
    assert change.commands[0].endswith("remove docker.io containerd runc")


def test_stale_repo_definitions_removed_first():
    state = configured(stale_files=["/etc/apt/sources.list.d/docker.list"])
    change = op.repository(state, S, "T")
    assert change.commands[0] == "rm -f -- /etc/apt/sources.list.d/docker.list"


def test_daemon_json_keeps_unknown_keys_and_restarts_only_on_change():
    state = configured(daemon_json='{"data-root": "/srv/docker"}')
    change = op.daemon_config_change(state, DockerSettings(docker_daemon={"mtu": 1450}), "T")
    assert change.reason == ("/etc/docker/daemon.json: set log-driver, log-opts, mtu "
                             "(backup /etc/docker/daemon.json.provision-bak-T)")
    assert '-  "data-root": "/srv/docker"' not in change.diff and '"mtu": 1450' in change.diff
    assert "live-restore" in change.notes[0]
    assert op.service(state, config_changed=True, engine_installed=False, stamp="T").commands == [
        daemon_json.restart_or_restore("/etc/docker/daemon.json.provision-bak-T")]


def test_invalid_daemon_json_is_refused_not_overwritten():
    refusal = op.daemon_config_change(configured(daemon_json="{oops"), S, "T")
    assert isinstance(refusal, Refusal) and refusal.reason.startswith("/etc/docker/daemon.json is not valid JSON")


def test_pin_resolved_from_madison_or_listed_when_missing():
    available = ["5:20.10.24-1~debian.12~bookworm", "5:20.10.23-1~debian.12~bookworm"]
    pinned = DockerSettings(docker_version="20.10.23")
    change = op.packages(configured(), pinned, available)
    assert change.reason == ("installing docker-ce=5:20.10.23-1~debian.12~bookworm, "
                             "docker-ce-cli=5:20.10.23-1~debian.12~bookworm")
    assert "--allow-downgrades" in change.commands[-1]
    missing = op.packages(configured(), DockerSettings(docker_version="27.3.1"), available)
    assert missing.reason == ("docker_version 27.3.1 is not in the repository; available: "
                              "5:20.10.24-1~debian.12~bookworm, 5:20.10.23-1~debian.12~bookworm")
    assert isinstance(op.packages(configured(), DockerSettings(docker_version="20.10.24"), None), NoChange)
    planned = op.packages(fresh(), pinned, None)  # check mode on a fresh host: resolved once the repo exists
    assert "docker-ce=<20.10.23, resolved with apt-cache madison>" in planned.reason


def test_users_added_with_relogin_note():
    state = configured(users={"alice": True, "bob": True}, docker_group=["alice"])
    change = op.users(state, DockerSettings(docker_users=["alice", "bob"]))
    assert change.commands == ["usermod -aG docker bob"]
    assert change.notes == ["bob: log out and in again for the docker group to apply (the group is root-equivalent)"]
    assert isinstance(op.users(configured(users={"eve": False}), DockerSettings(docker_users=["eve"])), Refusal)


# -- the repository key's last check (issue 12) -----------------------------------------------------
def test_the_probe_output_says_whether_the_key_was_downloaded_and_when_it_was_checked():
    from provision.facts.docker_host import parse
    from tests.unit.workflow_support import sections

    def remote(text, rc=0):
        return parse(sections(remote_key=(text, rc))) 

    cached = remote(f"cached {KEY} 1000 4600")
    assert (cached.remote_key_sha, cached.key_cached, cached.key_checked_at, cached.host_now) == (KEY, True, 1000, 4600)
    fetched = remote(f"fetched 4600\n{KEY}")
    assert (fetched.remote_key_sha, fetched.key_cached, fetched.key_checked_at, fetched.host_now) == (KEY, False, 4600, 4600)
    bare = remote(KEY)  # the probe without a max age or a record
    assert (bare.remote_key_sha, bare.key_checked_at) == (KEY, None)
    failed = remote("curl: (6) Could not resolve host: x", 6)
    assert failed.remote_key_sha is None and failed.remote_key_error == "curl: (6) Could not resolve host: x"


def test_the_repository_step_says_when_the_key_was_checked():
    assert op.repository(configured(key_checked_at=0, host_now=59), S, "T").reason.endswith("(key checked 59s ago)")
    assert op.repository(configured(key_checked_at=0, host_now=2 * 86400 + 5), S, "T").reason.endswith(
        "(key checked 2d ago)")
    assert op.repository(configured(key_checked_at=9, host_now=9), S, "T").reason.endswith("(key checked now)")
    assert op.repository(configured(), S, "T").reason.endswith("up to date")
    assert [op.age(s) for s in (0, 1, 60, 3599, 3600, 86399, 86400)] == [
        "now", "1s ago", "1m ago", "59m ago", "1h ago", "23h ago", "1d ago"]


def test_docker_repo_key_max_age_accepts_seconds_and_units_and_nothing_else():
    import pytest

    from provision.errors import InputError

    assert DockerSettings().docker_repo_key_max_age == 86400
    for value, seconds in ((0, 0), (3600, 3600), ("90s", 90), ("30m", 1800), ("12h", 43200), ("1d", 86400), ("600", 600)):
        assert DockerSettings(docker_repo_key_max_age=value).docker_repo_key_max_age == seconds
    from provision.config.host_settings import docker_settings

    for bad in (-1, "1w", "soon", True, 1.5):
        with pytest.raises(InputError, match="docker_repo_key_max_age"):
            docker_settings("h1", {"docker_repo_key_max_age": bad})
