"""Exact strings of the builders that replaced commands once written in place in workflows/ and
operations/ (issue 10), the argv combinators, and the parsers beside them. Where a builder replaced a
hand-written string, the old string is spelled out: the command sent is the same."""

from __future__ import annotations

import pytest

from provision.commands import apt, argv, daemon_json, docker_engine, docker_repo, dpkg, files, system
from provision.commands.argv import UnsafeValue


# -- argv combinators ------------------------------------------------------------------------------
def test_combine_quotes_each_argv_element_and_joins_with_the_operator():
    assert argv.combine(["cp", "-p", "a b", "c"], ["rm", "-f", "$(id)"]) == "cp -p 'a b' c && rm -f '$(id)'"
    assert argv.combine(["a"], ["b"], by="||") == "a || b"
    assert argv.combine(["a"], ["b"], by=";") == "a; b"
    assert argv.pipe(["curl", "-fsSL", "http://x/?a=1&b=2"], ["gpg", "--dearmor"]) == \
        "curl -fsSL 'http://x/?a=1&b=2' | gpg --dearmor"
    assert argv.chain(["true"], ["echo", "it's"]) == "true; echo 'it'\"'\"'s'"
    assert argv.any_of(["test", "-d", "/x"], ["mkdir", "/x"]) == "test -d /x || mkdir /x"


def test_combine_keeps_a_built_command_string_as_it_is():
    built = apt.hold(["docker-ce"])
    assert argv.combine(built, ["echo", "held it"]) == "apt-mark hold docker-ce && echo 'held it'"
    assert argv.shell(["a", ""]) == "a ''"


def test_combine_refuses_an_unknown_operator_an_empty_argv_and_nul():
    with pytest.raises(ValueError, match="operator must be one of"):
        argv.combine(["a"], ["b"], by="&")
    with pytest.raises(UnsafeValue, match="an empty command"):
        argv.combine([], ["b"])
    with pytest.raises(UnsafeValue, match="NUL"):
        argv.pipe(["a", "b\0"], ["c"])


def test_script_is_the_applier_step_text():
    commands = ["apt-mark hold docker-ce", ["echo", "a b"]]
    assert argv.script(commands) == "set -e\napt-mark hold docker-ce\necho 'a b'"
    assert argv.script(commands) == "set -e\n" + "\n".join(["apt-mark hold docker-ce", "echo 'a b'"])  # as it was
    assert argv.script(["rm -f /x", "apt-get update"], errexit=False) == "rm -f /x\napt-get update"


def test_absolute_path():
    assert argv.absolute_path("/etc/x") == "/etc/x"
    with pytest.raises(UnsafeValue, match="folder path must be absolute"):
        argv.absolute_path("-rf", "folder path")


# -- files -----------------------------------------------------------------------------------------
def test_backup_restore_remove_as_the_docker_repository_step_wrote_them():
    keyring, stamp = docker_repo.KEYRING, "20261201120000"
    assert files.backup(keyring, stamp) == f"cp -p {keyring} {keyring}.provision-bak-{stamp}"
    assert files.restore(keyring, stamp) == f"mv -f {keyring}.provision-bak-{stamp} {keyring}"
    assert files.remove(keyring) == f"rm -f {keyring}"
    assert files.backup_path(keyring, stamp) == "/etc/apt/keyrings/docker.asc.provision-bak-20261201120000"
    assert files.remove(docker_repo.SOURCES, docker_repo.KEYRING) == \
        "rm -f /etc/apt/sources.list.d/docker.sources /etc/apt/keyrings/docker.asc"


def test_backup_private_keeps_one_root_only_copy():
    bak = "/etc/docker/daemon.json.provision-bak-T"
    old = (f"cp -p /etc/docker/daemon.json {bak} && chmod go-rwx {bak} && "
           f"for b in /etc/docker/daemon.json.provision-bak-*; do [ \"$b\" = {bak} ] || rm -f \"$b\"; done")
    assert files.backup_private(daemon_json.PATH, "T") == old
    assert files.backup_private("/a b", "s") == (
        "cp -p '/a b' '/a b.provision-bak-s' && chmod go-rwx '/a b.provision-bak-s' && "
        "for b in '/a b.provision-bak-'*; do [ \"$b\" = '/a b.provision-bak-s' ] || rm -f \"$b\"; done")


def test_remove_tree_and_make_dir():
    assert files.remove_tree(*docker_engine.DATA_DIRS) == "rm -rf /var/lib/docker /var/lib/containerd"
    assert files.make_dir("/var/run/cdi") == "mkdir -p /var/run/cdi"
    assert files.make_dir("/srv/a b") == "mkdir -p '/srv/a b'"


def test_file_builders_refuse_relative_paths_and_nul():
    for call in (lambda: files.backup("x", "s"), lambda: files.restore("-rf", "s"), lambda: files.remove("/a", "b"),
                 lambda: files.remove_tree("*"), lambda: files.make_dir("~root"), lambda: files.backup_private("x", "s")):
        with pytest.raises(UnsafeValue, match="must be absolute"):
            call()
    with pytest.raises(UnsafeValue, match="NUL"):
        files.remove("/a\0")


def test_daemon_json_candidate_validated_or_discarded():
    candidate = "/etc/docker/daemon.json.provision-candidate"
    assert daemon_json.CANDIDATE == candidate
    assert daemon_json.validate_or_discard() == (
        daemon_json.validate_snippet(candidate) + f" || {{ rm -f {candidate}; exit 1; }}")
    assert daemon_json.backup_path("T") == "/etc/docker/daemon.json.provision-bak-T"


# -- system ----------------------------------------------------------------------------------------
def test_units_and_groups():
    assert system.enable_unit("docker", now=True) == "systemctl enable --now docker"
    assert system.enable_unit("nvidia-persistenced") == "systemctl enable nvidia-persistenced"
    assert system.restart_unit("docker") == "systemctl restart docker"
    assert system.add_to_group("bob", "docker") == "usermod -aG docker bob"
    assert system.add_to_group("o'neil", "docker") == "usermod -aG docker 'o'\"'\"'neil'"
    for bad in ("", "-x", "--now"):
        with pytest.raises(UnsafeValue, match="unit name"):
            system.enable_unit(bad)


def test_reboot_machine_id_boot_marker_cloud_init():
    assert system.reboot_soon() == "nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 &"
    assert system.machine_id() == "cat /etc/machine-id"
    assert system.parse_machine_id("0123456789abcdef0123456789abcdef\n") == "0123456789abcdef0123456789abcdef"
    assert system.boot_marker() == "printf '%s-%s\\n' \"$(cat /proc/sys/kernel/random/boot_id)\" \"$(cut -d' ' -f22 /proc/1/stat)\""
    assert system.parse_boot_marker("6f1c2a43-8d0e-4b1a-9c52-1f1e2d3c4b5a-1234\n") == \
        "6f1c2a43-8d0e-4b1a-9c52-1f1e2d3c4b5a-1234"
    assert system.cloud_init_wait(900) == "timeout 900 cloud-init status --wait"
    assert system.cloud_init_wait(0) == "timeout 0 cloud-init status --wait"
    for bad in (-1, "900; id", 1.5, True):
        with pytest.raises(UnsafeValue, match="cloud-init timeout"):
            system.cloud_init_wait(bad)  # type: ignore[arg-type]


# -- dpkg-query ------------------------------------------------------------------------------------
def test_dpkg_query_builders_as_they_were_written():
    assert dpkg.versions(docker_repo.PACKAGES) == (
        "dpkg-query -W -f='${Package} ${Version}\\n' " + " ".join(docker_repo.PACKAGES))
    assert dpkg.status(["docker-ce", "containerd.io"]) == (
        "dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' docker-ce containerd.io 2>/dev/null; true")
    assert dpkg.query(["a b"], "${Package}") == "dpkg-query -W -f='${Package}' 'a b'"


def test_dpkg_parsers_on_realistic_output():
    # `dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n'` on a host with docker-ce held,
    # containerd.io installed, docker.io removed with its config kept (rc), and one unknown package
    status = ("docker-ce\t5:27.3.1-1~debian.12~bookworm\thi \n"
              "containerd.io\t1.7.22-1\tii \n"
              "docker.io\t20.10.24+dfsg1-1+b3\trc \n")
    assert dpkg.parse_status(status) == ({"docker-ce": "5:27.3.1-1~debian.12~bookworm", "containerd.io": "1.7.22-1"},
                                         {"docker-ce"})
    assert dpkg.parse_status("") == ({}, set())
    versions = "docker-ce 5:27.3.1-1~debian.12~bookworm\ndocker-ce-cli 5:27.3.1-1~debian.12~bookworm\n\n"
    assert dpkg.parse_versions(versions) == ["docker-ce 5:27.3.1-1~debian.12~bookworm",
                                             "docker-ce-cli 5:27.3.1-1~debian.12~bookworm"]


# -- the engine ------------------------------------------------------------------------------------
def test_docker_engine_checks():
    assert docker_engine.version() == "docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}'"
    assert docker_engine.info() == ("docker info --format 'daemon reachable: {{.ServerVersion}}, storage {{.Driver}}, "
                                    "cgroup {{.CgroupVersion}}'")
    # `--` added (was `docker run --rm IMAGE`): an image value starting with '-' was read as an option
    assert docker_engine.hello("hello-world") == "docker run --rm -- hello-world"
    assert docker_engine.hello("--privileged") == "docker run --rm -- --privileged"


HELLO = """
Hello from Docker!
This message shows that your installation appears to be working correctly.

To generate this message, Docker took the following steps:
 1. The Docker client contacted the Docker daemon.
"""


def test_parse_hello():
    assert docker_engine.parse_hello(HELLO) == (
        True, "Hello from Docker! / This message shows that your installation appears to be working correctly.")
    assert docker_engine.parse_hello("Unable to find image 'x:latest' locally\nlatest: Pulling\nDigest: sha256:1\nmore") == (
        False, "Unable to find image 'x:latest' locally / latest: Pulling / Digest: sha256:1")


def test_index_versions_and_quiet_unhold():
    assert docker_repo.parse_index_versions("5:27.3.1-1~debian.12~bookworm\n5:27.3.0-1~debian.12~bookworm\n") == [
        "5:27.3.1-1~debian.12~bookworm", "5:27.3.0-1~debian.12~bookworm"]
    assert docker_repo.parse_index_versions("\n") == []
    assert apt.unhold(["docker-ce"], quiet=True) == "apt-mark unhold docker-ce >/dev/null"
    assert apt.unhold(["docker-ce"]) == "apt-mark unhold docker-ce"
