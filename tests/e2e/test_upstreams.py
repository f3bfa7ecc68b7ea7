"""Offline upstreams: from INSIDE a sandbox host, the real download.docker.com URLs and a Hub mirror work.

The fleet fixture runs `provision sandbox up`, which builds (or reuses) the signed repository and
starts the mirror and registry containers. Everything a test writes on a host is undone afterwards,
so the other tests still see a fresh host.
"""

from __future__ import annotations

import shlex

import pytest
import yaml

pytestmark = pytest.mark.e2e

HOST = "sbx1"
KEY_URL = "https://download.docker.com/linux/debian/gpg"
WRONG_KEY_URL = "https://download.docker.com/linux/debian/wrong-key.gpg"
KEYRING = "/etc/apt/keyrings/docker.asc"
SOURCES = "/etc/apt/sources.list.d/docker.sources"
VERSIONS = ("5:20.10.24-1~debian.12~bookworm", "5:20.10.23-1~debian.12~bookworm")
# apt's state files: a fresh host has none of them; the test puts back exactly what was there.
APT_STATE = "/var/lib/apt/lists /var/lib/apt/lists/partial /var/cache/apt"


def docker_sources(signed_by: str) -> str:
    """The deb822 source docs.docker.com prescribes for Debian bookworm."""
    return (f"Types: deb\nURIs: https://download.docker.com/linux/debian\nSuites: bookworm\n"
            f"Components: stable\nSigned-By: {signed_by}\n")


def _apt_state(host) -> set[str]:
    return set(host.check_output(f"find {APT_STATE} -maxdepth 1 -type f | sort").splitlines())


@pytest.fixture
def apt_host(fleet):
    """sbx1, with its apt sources, keyrings and indexes restored after the test."""
    host = fleet.testinfra(HOST)
    before = _apt_state(host)
    had_keyrings = host.file("/etc/apt/keyrings").is_directory
    yield host
    host.run_expect([0], f"rm -f {SOURCES} {KEYRING}")
    if not had_keyrings:
        host.run_expect([0], "rmdir /etc/apt/keyrings")
    added = sorted(_apt_state(host) - before)
    if added:
        host.run_expect([0], "rm -f " + " ".join(shlex.quote(path) for path in added))
    assert _apt_state(host) == before


def _write(host, path: str, text: str) -> None:
    host.run_expect([0], f"printf %s {shlex.quote(text)} > {path}")


def test_inventory_points_the_product_daemon_json_at_the_mirror(fleet):
    doc = yaml.safe_load(fleet.inventory.read_text())
    assert doc["all"]["vars"]["docker_daemon"] == {
        "registry-mirrors": ["http://sandbox-registry:5000"],
        "insecure-registries": ["sandbox-registry:5000"],
    }


def test_docker_gpg_key_over_https_with_the_trusted_sandbox_ca(fleet):
    host = fleet.testinfra(HOST)
    assert host.file("/usr/local/share/ca-certificates/provision-sandbox-ca.crt").exists
    key = host.check_output(f"curl -fsS {KEY_URL}")
    assert key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert key.rstrip().endswith("-----END PGP PUBLIC KEY BLOCK-----")
    assert host.check_output("curl -fsS http://download.docker.com/linux/debian/gpg") == key
    # the same certificate covers nvidia.github.io (its content comes later: an empty site for now)
    assert host.check_output("curl -sS -o /dev/null -w '%{http_code}' https://nvidia.github.io/") == "200"


def test_official_apt_flow_lists_both_docker_ce_versions(apt_host):
    host = apt_host
    host.run_expect([0], f"install -m 0755 -d /etc/apt/keyrings && curl -fsSL {KEY_URL} -o {KEYRING} && chmod a+r {KEYRING}")
    _write(host, SOURCES, docker_sources(KEYRING))
    update = host.run("apt-get update")
    assert update.rc == 0, update.stdout + update.stderr
    assert "https://download.docker.com/linux/debian bookworm InRelease" in update.stdout
    madison = host.check_output("apt-cache madison docker-ce")
    listed = [line.split("|")[1].strip() for line in madison.splitlines()]
    assert listed == list(VERSIONS)
    assert "https://download.docker.com/linux/debian bookworm/stable amd64 Packages" in madison
    for package in ("docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"):
        assert host.check_output(f"apt-cache madison {package}"), package


def test_a_wrong_key_fails_apt_update_with_no_pubkey(apt_host):
    host = apt_host
    # the sandbox also serves a valid key that signs nothing (for the product's wrong-key tests)
    host.run_expect([0], f"install -m 0755 -d /etc/apt/keyrings && curl -fsSL {WRONG_KEY_URL} -o {KEYRING}")
    assert host.check_output(f"cat {KEYRING}") != host.check_output(f"curl -fsS {KEY_URL}")
    _write(host, SOURCES, docker_sources(KEYRING))
    update = host.run("apt-get update")
    assert update.rc == 100
    assert "NO_PUBKEY" in update.stdout + update.stderr


def test_registry_mirror_serves_hello_world(fleet):
    host = fleet.testinfra(HOST)
    tags = host.check_output("curl -fsS http://sandbox-registry:5000/v2/library/hello-world/tags/list")
    assert yaml.safe_load(tags) == {"name": "library/hello-world", "tags": ["latest"]}


def test_upstream_containers_belong_to_the_fleet(fleet):
    """`sandbox down` removes what carries the fleet label: the mirror, the registry and its volume."""
    from provision_sandbox.engine import local_docker
    from provision_sandbox.names import FLEET_LABEL, LABEL, container_name, network_name

    client = local_docker()
    network = network_name(fleet.name)
    for role, aliases in (("upstream-web", {"download.docker.com", "nvidia.github.io"}),
                          ("upstream-registry", {"sandbox-registry"})):
        container = client.containers.get(container_name(fleet.name, role))
        assert container.status == "running"
        assert container.labels[LABEL] == role and container.labels[FLEET_LABEL] == fleet.name
        assert aliases <= set(container.attrs["NetworkSettings"]["Networks"][network]["Aliases"] or [])
    volume = client.volumes.get(container_name(fleet.name, "upstream-registry-data"))
    assert volume.attrs["Labels"][FLEET_LABEL] == fleet.name
    registry = client.containers.get(container_name(fleet.name, "upstream-registry"))
    bindings = registry.attrs["NetworkSettings"]["Ports"]["5000/tcp"]
    assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings)
