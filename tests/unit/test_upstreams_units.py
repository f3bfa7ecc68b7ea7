"""Pure parts of the sandbox's offline upstreams: recipe hash, control files, certificates, helpers."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from provision_sandbox.names import FLEET_LABEL, LABEL, UPSTREAM_CONFIG_LABEL, Paths
from provision_sandbox.upstreams import Upstreams, cache_dir, inventory_vars
from provision_sandbox.upstreams import apt_repo, ca, containers, docker_repo, registry, web
from provision_sandbox.upstreams import packages as pk
from provision_sandbox.upstreams.static_server import site_for

# The head of Debian's docker.io control (Built-Using shortened).
DOCKER_IO_CONTROL = """Package: docker.io
Source: docker.io (20.10.24+dfsg1-1+deb12u1)
Version: 20.10.24+dfsg1-1+deb12u1+b6
Architecture: amd64
Maintainer: Debian Go Packaging Team <team+pkg-go@tracker.debian.org>
Installed-Size: 147576
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: libc6 (>= 2.34), containerd (>= 1.4~), iptables, runc (>= 1.0.0~rc8~), tini
Conflicts: docker-ce, docker-ce-cli, docker-ce-rootless-extras
Built-Using: containerd (= 1.6.20~ds1-1+deb12u3), runc (= 1.1.5+ds1-1+deb12u1)
Section: admin
Priority: optional
Homepage: https://mobyproject.org
Description: Linux container runtime
 Docker complements kernel namespacing with a high-level API.
 .
 This package contains the daemon and client.
"""


RUNC_CONTROL = """Package: runc
Version: 1.1.5+ds1-1+deb12u1
Depends: libc6 (>= 2.34), libseccomp2 (>= 2.5.0)
Description: Open Container Project - runtime
 runc is a CLI tool.
"""
CONTAINERD_CONTROL = """Package: containerd
Version: 1.6.20~ds1-1+deb12u3
Depends: runc (>= 0.1.0~), libc6 (>= 2.34)
Breaks: docker.io (<< 1.12)
Description: daemon to control runC
"""
COMPOSE_CONTROL = """Package: docker-compose
Version: 1.29.2-3
Depends: python3-docker (>= 5), python3-yaml (>= 3.10), python3:any
Provides: python3-compose
Description: define and run multi-container Docker applications with YAML
"""
APT_POLICY = """docker.io:
  Installed: 20.10.24+dfsg1-1+deb12u1+b6
  Candidate: 20.10.24+dfsg1-1+deb12u1+b6
  Version table:
 *** 20.10.24+dfsg1-1+deb12u1+b6 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
docker-compose:
  Installed: (none)
  Candidate: 1.29.2-3
gone:
  Installed: (none)
  Candidate: (none)
"""


def fields(text: str) -> dict[str, str]:
    return dict(pk.parse_control(text))


# -- recipe hash -----------------------------------------------------------------------------
def test_recipe_hash_is_stable_and_covers_recipe_and_debian_versions():
    versions = {"docker.io": "20.10.24", "runc": "1.1.5"}
    digest = docker_repo.recipe_hash("recipe", versions)
    assert digest == docker_repo.recipe_hash("recipe", dict(reversed(list(versions.items()))))
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert digest != docker_repo.recipe_hash("recipe!", versions)
    assert digest != docker_repo.recipe_hash("recipe", {**versions, "runc": "1.1.6"})
    assert digest != docker_repo.recipe_hash("recipe", {"docker.io": "20.10.24"})


def test_the_recipe_text_is_the_build_modules_themselves():
    text = docker_repo.recipe_text()
    assert "def _build(" in text and "def docker_ce_control" in text and "def sign_release(" in text


def test_candidate_versions_from_apt_cache_policy():
    assert pk.candidate_versions(APT_POLICY) == {"docker.io": "20.10.24+dfsg1-1+deb12u1+b6", "docker-compose": "1.29.2-3"}


# -- control files ---------------------------------------------------------------------------
def test_parse_and_format_control_round_trip_with_continuation_lines():
    parsed = pk.parse_control(DOCKER_IO_CONTROL)
    assert parsed[0] == ("Package", "docker.io")
    assert dict(parsed)["Description"].splitlines()[1:] == [
        " Docker complements kernel namespacing with a high-level API.", " .", " This package contains the daemon and client."]
    assert pk.format_control(parsed) == DOCKER_IO_CONTROL


def test_relation_names_and_merge_depends():
    assert pk.relation_names("python3-cached-property (>= 1.2.0) | python3 (>> 3.8)") == ["python3-cached-property", "python3"]
    assert pk.relation_names("python3:any") == ["python3"]
    merged = pk.merge_depends("runc (>= 0.1.0~), libc6 (>= 2.34)", "libc6 (>= 2.34), libseccomp2", drop=frozenset({"runc"}))
    assert merged == "libc6 (>= 2.34), libseccomp2"


def test_docker_ce_control_is_a_renamed_reversioned_docker_io_on_containerd_io():
    text = pk.docker_ce_control(DOCKER_IO_CONTROL, "5:20.10.24-1~debian.12~bookworm", 1234)
    f = fields(text)
    assert f["Package"] == "docker-ce" and f["Source"] == "docker-ce"
    assert f["Version"] == "5:20.10.24-1~debian.12~bookworm"
    assert f["Depends"] == "libc6 (>= 2.34), iptables, tini, containerd.io (>= 1.6.4), docker-ce-cli"
    assert f["Pre-Depends"] == "init-system-helpers (>= 1.54~)"
    assert f["Conflicts"] == "docker.io, docker-doc" and f["Replaces"] == "docker.io"
    assert f["Installed-Size"] == "1234"
    assert "Built-Using" not in f and "Debian Go" not in text
    assert list(pk.parse_control(text)).count(("Conflicts", "docker.io, docker-doc")) == 1
    assert f["Description"].startswith("Docker: the open-source application container engine")
    assert all(line.startswith(" ") for line in f["Description"].splitlines()[1:])


def test_docker_ce_cli_control():
    f = fields(pk.docker_ce_cli_control("5:20.10.23-1~debian.12~bookworm", 42))
    assert f["Package"] == "docker-ce-cli" and f["Version"] == "5:20.10.23-1~debian.12~bookworm"
    assert f["Conflicts"] == "docker.io" and f["Replaces"] == "docker.io"
    assert f["Architecture"] == "amd64" and f["Installed-Size"] == "42"


def test_containerd_io_replaces_debian_containerd_and_runc_like_the_real_one():
    f = fields(pk.containerd_io_control(CONTAINERD_CONTROL, RUNC_CONTROL, 99))
    assert f["Package"] == "containerd.io" and f["Version"] == pk.CONTAINERD_IO_VERSION
    assert f["Provides"] == f["Conflicts"] == f["Replaces"] == "containerd, runc"
    assert f["Depends"] == "libc6 (>= 2.34), libseccomp2 (>= 2.5.0)"
    assert "Breaks" not in f


def test_compose_plugin_needs_compose_v1_python_deps_but_not_the_docker_compose_package():
    f = fields(pk.compose_plugin_control(COMPOSE_CONTROL, 7))
    assert f["Package"] == "docker-compose-plugin"
    assert f["Depends"] == "python3-docker (>= 5), python3-yaml (>= 3.10), python3:any"
    assert "Provides" not in f and "docker-compose " not in f["Depends"] + " "
    assert fields(pk.buildx_plugin_control(3))["Depends"] == "docker-ce-cli"


@pytest.mark.parametrize("name, shim", [("docker-buildx", pk.BUILDX_SHIM), ("docker-compose", pk.COMPOSE_SHIM)])
def test_plugin_shims_answer_the_cli_plugin_metadata_call(tmp_path: Path, name, shim):
    script = tmp_path / name
    script.write_text(shim)
    out = subprocess.run(["sh", str(script), "docker-cli-plugin-metadata"], capture_output=True, text=True)
    assert out.returncode == 0 and '"SchemaVersion":"0.1.0"' in out.stdout
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0


def test_two_docker_ce_versions_newest_first_and_pool_names_drop_the_epoch():
    newest, older = pk.DOCKER_CE_VERSIONS
    compare = subprocess.run(["dpkg", "--compare-versions", newest, "gt", older])
    assert compare.returncode == 0
    assert pk.pool_name("docker-ce", newest) == "docker-ce_20.10.24-1~debian.12~bookworm_amd64.deb"
    assert pk.pool_name("containerd.io", "1.6.20-1") == "containerd.io_1.6.20-1_amd64.deb"


def test_release_fields_match_download_docker_com():
    options = pk.release_options()
    assert "APT::FTPArchive::Release::Suite=bookworm" in options
    assert "APT::FTPArchive::Release::Components=stable" in options
    assert fields(pk.component_release()) == {
        "Archive": "bookworm", "Component": "stable", "Origin": "Docker", "Label": "Docker", "Architecture": "amd64"}


def test_md5sums_and_installed_size_skip_debian_dir(tmp_path: Path):
    (tmp_path / "DEBIAN").mkdir()
    (tmp_path / "DEBIAN" / "control").write_text("Package: x\n")
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "tool").write_bytes(b"x" * 2049)
    apt_repo.write_md5sums(tmp_path)
    sums = (tmp_path / "DEBIAN" / "md5sums").read_text()
    assert sums.endswith("  usr/bin/tool\n") and sums.count("\n") == 1
    assert apt_repo.installed_size_kb(tmp_path) == 2 + 3  # two folders, a 3 KiB file


# -- certificates ----------------------------------------------------------------------------
def test_certificates_cover_both_upstream_names_and_are_reused(tmp_path: Path):
    from cryptography import x509

    first = ca.ensure_certificates(tmp_path)
    again = ca.ensure_certificates(tmp_path)
    assert again == first
    server, issuer = x509.load_pem_x509_certificates(first.server_chain_pem.encode())
    root = x509.load_pem_x509_certificate(first.ca_pem.encode())
    assert issuer == root
    assert ca.certificate_names(server) == ("download.docker.com", "nvidia.github.io")
    server.verify_directly_issued_by(root)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert (tmp_path / "sandbox-ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "sandbox-ca" / "server.key").stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in first.ca_pem + first.server_chain_pem


def test_server_certificate_is_reissued_when_the_names_change(tmp_path: Path):
    first = ca.ensure_certificates(tmp_path)
    other = ca.ensure_certificates(tmp_path, ("download.docker.com",))
    assert other.fingerprint != first.fingerprint and other.ca_pem == first.ca_pem


# -- static server, containers, registry -------------------------------------------------------
@pytest.mark.parametrize("header, site", [
    ("download.docker.com", "download.docker.com"), ("Download.Docker.com:443", "download.docker.com"),
    ("nvidia.github.io.", "nvidia.github.io"), ("evil.example", None), ("..", None), ("", None), (None, None),
    ("[::1]:80", None),
])
def test_static_server_picks_the_site_from_the_host_header(header, site):
    assert site_for(header, frozenset({"download.docker.com", "nvidia.github.io"})) == site


def test_files_tar_holds_files_with_modes_and_empty_folders():
    data = containers.files_tar([containers.File("/opt/app/key", b"k", 0o600)], folders=("/srv/www/site",))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["opt/app/key"].mode == 0o600 and members["opt/app/key"].uid == 0
    assert members["srv/www/site"].isdir()


def test_labels_make_sandbox_down_remove_the_upstreams(tmp_path: Path):
    paths = Paths(tmp_path, "e2e")
    assert containers.labels(paths, "upstream-web", "abc") == {
        LABEL: "upstream-web", FLEET_LABEL: "e2e", UPSTREAM_CONFIG_LABEL: "abc"}
    assert web.container_name(paths) == "provision-e2e-upstream-web"
    assert registry.container_name(paths) == "provision-e2e-upstream-registry"
    assert containers.config_hash("a", b"b") != containers.config_hash("ab")


def test_published_port_reads_the_loopback_binding():
    attrs = {"NetworkSettings": {"Ports": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32770"}]}}}
    assert registry.published_port(attrs) == 32770


def test_web_server_command_serves_http_and_https():
    command = web.server_command()
    assert command[0] == "python3" and "--https" in command and "443" in command


def test_cache_dir_defaults_under_provision_home(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("PROVISION_CACHE", raising=False)
    assert cache_dir(Paths(tmp_path, "x")) == tmp_path / "cache"
    monkeypatch.setenv("PROVISION_CACHE", str(tmp_path / "shared"))
    assert cache_dir(Paths(tmp_path, "x")) == tmp_path / "shared"


def test_inventory_vars_configure_the_hub_mirror():
    upstreams = Upstreams(ca_pem="", registry_alias="sandbox-registry", registry_port=5000, registry_local_port=32770,
                          site_names=("download.docker.com",), repo_dir=Path("/r"), web_container="w", registry_container="r")
    assert inventory_vars(upstreams) == {"docker_daemon": {
        "registry-mirrors": ["http://sandbox-registry:5000"], "insecure-registries": ["sandbox-registry:5000"]}}
