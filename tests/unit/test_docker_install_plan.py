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
                service_enabled=True, service_active=True, service_started="123")
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
