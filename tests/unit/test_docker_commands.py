"""Exact command strings for the Docker install, one case per variant (Ubuntu/Debian, pins, mirrors, proxies)."""

import pytest

from provision.commands import apt, daemon_json, docker_repo, files
from provision.commands.files import write_file

LOCK = "-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"


def test_apt_get_waits_for_the_lock_and_keeps_config_files():
    assert apt.update() == f"env DEBIAN_FRONTEND=noninteractive apt-get -q -y {LOCK} update"
    assert apt.install(["docker-ce"], lock_timeout=30) == (
        "env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=30 -o Dpkg::Options::=--force-confdef "
        "-o Dpkg::Options::=--force-confold install --no-install-recommends docker-ce")


def test_proxy_passed_through_to_apt():
    assert apt.update(proxy={"http_proxy": "http://proxy:3128", "no_proxy": "localhost"}) == (
        f"env DEBIAN_FRONTEND=noninteractive http_proxy=http://proxy:3128 no_proxy=localhost apt-get -q -y {LOCK} update")


def test_pinned_install_allows_downgrade():
    assert apt.install(["docker-ce=5:27.3.1-1~ubuntu.24.04~noble", "containerd.io"], allow_downgrades=True).endswith(
        "install --no-install-recommends --allow-downgrades 'docker-ce=5:27.3.1-1~ubuntu.24.04~noble' containerd.io")


@pytest.mark.parametrize("distro, suite, arch, url, expected_uri", [
    ("ubuntu", "noble", "amd64", None, "https://download.docker.com/linux/ubuntu"),
    ("ubuntu", "jammy", "arm64", None, "https://download.docker.com/linux/ubuntu"),
    ("debian", "bookworm", "amd64", None, "https://download.docker.com/linux/debian"),
    ("debian", "trixie", "arm64", "https://mirror.corp.example/docker/debian/", "https://mirror.corp.example/docker/debian"),
])
def test_deb822_sources(distro, suite, arch, url, expected_uri):
    assert docker_repo.sources_content(distro, suite, arch, url) == (
        f"Types: deb\nURIs: {expected_uri}\nSuites: {suite}\nComponents: stable\nArchitectures: {arch}\n"
        "Signed-By: /etc/apt/keyrings/docker.asc\n")


@pytest.mark.parametrize("distro, gpg, repo, expected", [
    ("ubuntu", None, None, "https://download.docker.com/linux/ubuntu/gpg"),
    ("debian", None, "https://mirror.example/debian", "https://mirror.example/debian/gpg"),
    ("debian", "https://keys.example/docker.asc", "https://mirror.example/debian", "https://keys.example/docker.asc"),
])
def test_key_url(distro, gpg, repo, expected):
    assert docker_repo.gpg_url(distro, gpg, repo) == expected


def test_key_fetched_to_temp_then_checked_then_moved():
    assert docker_repo.fetch_key("https://download.docker.com/linux/ubuntu/gpg", docker_repo.KEYRING,
                                 "env DEBIAN_FRONTEND=noninteractive") == (
        "install -m 0755 -d /etc/apt/keyrings && env DEBIAN_FRONTEND=noninteractive curl -fsSL --retry 3 "
        "--retry-connrefused -o /etc/apt/keyrings/docker.asc.provision-new https://download.docker.com/linux/ubuntu/gpg && "
        "grep -q 'BEGIN PGP PUBLIC KEY BLOCK' /etc/apt/keyrings/docker.asc.provision-new && "
        "chmod a+r /etc/apt/keyrings/docker.asc.provision-new && "
        "mv -f /etc/apt/keyrings/docker.asc.provision-new /etc/apt/keyrings/docker.asc")


def test_madison_versions_and_pin_resolution():
    text = (" docker-ce | 5:27.3.1-1~ubuntu.24.04~noble | https://download.docker.com/linux/ubuntu noble/stable amd64 Packages\n"
            " docker-ce | 5:27.3.0-1~ubuntu.24.04~noble | https://download.docker.com/linux/ubuntu noble/stable amd64 Packages\n")
    versions = apt.parse_madison(text)
    assert versions == ["5:27.3.1-1~ubuntu.24.04~noble", "5:27.3.0-1~ubuntu.24.04~noble"]
    assert apt.resolve_version("27.3.1", versions) == "5:27.3.1-1~ubuntu.24.04~noble"
    assert apt.resolve_version("27.3", versions) is None
    assert apt.resolve_version("5:27.3.0-1~ubuntu.24.04~noble", versions) == "5:27.3.0-1~ubuntu.24.04~noble"


def test_daemon_json_merge_keeps_unknown_keys_and_merges_deeply():
    current = {"data-root": "/srv/docker", "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}},
               "log-opts": {"max-size": "50m"}}
    wanted = daemon_json.desired_config(current, {"runtimes": {"crun": {"path": "/usr/bin/crun"}}, "mtu": 1450})
    assert wanted == {
        "log-driver": "json-file",
        "data-root": "/srv/docker",
        "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}, "crun": {"path": "/usr/bin/crun"}},
        "log-opts": {"max-size": "50m"},  # the operator's own value wins over our default
        "mtu": 1450,
    }


def test_daemon_json_defaults_can_be_turned_off():
    assert daemon_json.desired_config(None, {"dns": ["10.0.0.2"]}, with_defaults=False) == {"dns": ["10.0.0.2"]}


def test_daemon_json_diff_and_clash():
    assert daemon_json.diff(None, '{\n  "mtu": 1450\n}\n') == (
        "--- /dev/null\n+++ /etc/docker/daemon.json\n@@ -0,0 +1,3 @@\n+{\n+  \"mtu\": 1450\n+}\n")
    assert daemon_json.clashes({"hosts": ["tcp://0.0.0.0:2375"]}) == [
        "daemon.json key 'hosts': docker.service already passes -H fd:// to dockerd; set hosts with a systemd drop-in instead"]


def test_files_written_atomically_with_backup():
    assert write_file("/etc/x.json", "{}\n", stamp="20260101-000000") == (
        "install -d -m 0755 \"$(dirname /etc/x.json)\" && "
        "if [ -e /etc/x.json ]; then cp -p /etc/x.json /etc/x.json.provision-bak-20260101-000000 && "
        "chmod 0644 /etc/x.json.provision-bak-20260101-000000; fi && "
        "printf %s e30K | base64 -d > /etc/x.json.provision-tmp && chmod 0644 /etc/x.json.provision-tmp && "
        "mv -f /etc/x.json.provision-tmp /etc/x.json")
    assert write_file("/etc/x.json", "{}\n", mode="0600", stamp="S", keep_one_backup=True).endswith(
        "mv -f /etc/x.json.provision-tmp /etc/x.json && "
        "for b in /etc/x.json.provision-bak-*; do [ \"$b\" = /etc/x.json.provision-bak-S ] || rm -f \"$b\"; done")


def test_check_and_json_show_a_digest_of_file_contents_never_the_contents():
    from provision.redaction import describe_command

    shown = describe_command(write_file("/etc/x.json", '{"proxies": {"http-proxy": "http://u:pw@p:3128"}}\n'))
    assert "base64 -d" not in shown and "pw" not in shown
    content = '{"proxies": {"http-proxy": "http://u:pw@p:3128"}}\n'
    assert f"<{len(content)} bytes, sha256 " in shown


def test_structural_redaction_of_json_and_text():
    from provision.redaction import MASK, holds_secrets, redact_json_text, redact_text, redact_value

    config = {"proxies": {"http-proxy": "http://bob:s3cret@proxy:3128", "no-proxy": "localhost"},
              "registry-mirrors": ["https://token123@mirror.example"], "auths": {"r.io": {"auth": "Ym9iOnB3"}},
              "password": "x", "nested": [{"apiKey": "k"}], "log-driver": "json-file"}
    shown = redact_value(config)
    assert shown["proxies"] == {"http-proxy": "http://***:***@proxy:3128", "no-proxy": "localhost"}
    assert shown["registry-mirrors"] == ["https://***:***@mirror.example"]
    assert shown["auths"]["r.io"]["auth"] == MASK and shown["password"] == MASK and shown["nested"][0]["apiKey"] == MASK
    assert shown["log-driver"] == "json-file" and holds_secrets(config) and not holds_secrets({"log-driver": "x"})
    assert "s3cret" not in redact_json_text('{"proxies": {"https-proxy": "http://a:s3cret@p"}}')
    assert redact_text("docker login --password hunter2 -u bob") == "docker login --password ******** -u bob"
    assert redact_text("token: abc def") == "token: ******** def"
    assert redact_text("invalid mirror: username/password not allowed") == "invalid mirror: username/password not allowed"
    assert redact_text("--token '<worker-join-token>'") == "--token '<worker-join-token>'"


def test_credentials_in_urls_are_redacted_wherever_shown():
    from provision.operations.base import redact

    assert redact("env https_proxy=http://bob:s3cret@proxy:3128 curl https://u:p@mirror/x") == (
        "env https_proxy=http://***:***@proxy:3128 curl https://***:***@mirror/x")


def test_restart_or_restore_puts_the_previous_daemon_json_back_and_quotes_dockerd():
    from provision.commands import daemon_json

    text = daemon_json.restart_or_restore("/etc/docker/daemon.json.provision-bak-20260101")
    assert text.startswith("if ! systemctl restart docker.service; then ")
    assert "mv -f /etc/docker/daemon.json.provision-bak-20260101 /etc/docker/daemon.json;" in text
    assert "journalctl -u docker.service" in text and text.endswith("exit 1; fi")
    assert "rm -f /etc/docker/daemon.json;" in daemon_json.restart_or_restore(None)


def test_index_versions_reads_the_packages_index_for_one_package():
    from provision.commands import docker_repo

    assert docker_repo.index_versions("https://download.docker.com/linux/debian/", "bookworm", "amd64", "env X=1") == (
        "env X=1 curl -fsSL --max-time 60 https://download.docker.com/linux/debian/dists/bookworm/stable/binary-amd64/"
        "Packages | awk '/^Package: /{p=$2} /^Version: /{if (p==\"docker-ce\") print $2}'")


def test_with_timeout_wraps_a_command_so_the_host_ends_it():
    from provision.executor.base import with_timeout

    assert with_timeout("echo 'a b'; sleep 9", 600) == "timeout -k 10 600 sh -c 'echo '\"'\"'a b'\"'\"'; sleep 9'"
    assert with_timeout(["ls", "-l"], 2.5) == "timeout -k 10 3 sh -c 'ls -l'"


# -- hostile values (tests/e2e/test_command_quoting.py drives them on a sandbox host) -------------
def test_hostile_values_are_quoted_as_one_argument():
    assert apt.install(["a'b", "$(id)"]) == (
        f"env DEBIAN_FRONTEND=noninteractive apt-get -q -y {LOCK} install --no-install-recommends 'a'\"'\"'b' '$(id)'")
    assert apt.update(proxy={"https_proxy": "http://u:p`id`@proxy"}) == (
        f"env DEBIAN_FRONTEND=noninteractive 'https_proxy=http://u:p`id`@proxy' apt-get -q -y {LOCK} update")
    assert daemon_json.validate_snippet("/etc/docker/daemon json;x") == (
        "if dockerd --help 2>/dev/null | grep -q -- '--validate'; then dockerd --validate --config-file "
        "'/etc/docker/daemon json;x'; elif command -v python3 >/dev/null; then python3 -m json.tool "
        "'/etc/docker/daemon json;x' >/dev/null; else true; fi")


def test_a_url_that_curl_would_read_as_an_option_is_refused():
    env = "env DEBIAN_FRONTEND=noninteractive"
    with pytest.raises(ValueError, match="^key URL starts with '-': it would be read as an option, not a URL$"):
        docker_repo.fetch_key("-K/etc/shadow", docker_repo.KEYRING, env)
    with pytest.raises(ValueError, match=r"^key URL contains the control character '\\n'"):
        docker_repo.key_digest_snippet("https://x/gpg\nhttps://evil/gpg", env)


def test_sources_file_refuses_a_value_that_would_add_a_field():
    assert docker_repo.sources_content("debian", "bookworm", "amd64", "https://mirror.example/d é") == (
        "Types: deb\nURIs: https://mirror.example/d é\nSuites: bookworm\nComponents: stable\nArchitectures: amd64\n"
        "Signed-By: /etc/apt/keyrings/docker.asc\n")
    with pytest.raises(ValueError, match=r"^docker_repo_url contains the control character '\\n' \(at offset 17\)"):
        docker_repo.sources_content("debian", "bookworm", "amd64", "https://mirror.x/\nTrusted: yes")
    with pytest.raises(ValueError, match="^suite contains the control character"):
        docker_repo.sources_content("debian", "bookworm\r", "amd64")


def test_write_file_refuses_relative_paths_and_non_octal_modes():
    assert write_file("/etc/a b/$(x)", "", mode="0600", backup=False) == (
        "install -d -m 0755 \"$(dirname '/etc/a b/$(x)')\" && printf %s '' | base64 -d > '/etc/a b/$(x).provision-tmp' "
        "&& chmod 0600 '/etc/a b/$(x).provision-tmp' && mv -f '/etc/a b/$(x).provision-tmp' '/etc/a b/$(x)'")
    with pytest.raises(ValueError, match="^file path must be absolute, not '-rf'$"):
        write_file("-rf", "x")
    with pytest.raises(ValueError, match=r"^file mode must be octal digits like 0644, not '0644; id'$"):
        write_file("/etc/x", "x", mode="0644; id")
    with pytest.raises(ValueError, match="NUL byte"):
        write_file("/etc/x", "x", stamp="a\0")


def test_detached_apt_units_are_named_safely_and_wait_for_their_status():
    from provision.commands import detached

    assert detached.unit_name("2026-12-01 10:00:00", "Docker packages; $(id)") == (
        "provision-apt-20261201100000-docker-packages-id")
    text = detached.run_detached("provision-apt-1-x", "set -e\napt-get install x\n", "provision: x")
    assert "systemd-run --quiet --collect --unit=provision-apt-1-x '--description=provision: x'" in text
    assert "apt-get" not in text  # the script travels base64-encoded into a 0700 file, not on the unit's command line
    assert text.startswith("install -d -m 0700 /var/lib/provision/runs && ")
    assert detached.repair_snippet([], 60, "env DEBIAN_FRONTEND=noninteractive").startswith(
        "env DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a && ")
    assert "while systemctl is-active -q \"$u\" && [ $w -lt 60 ]" in detached.repair_snippet(["provision-apt-1-x"], 60, "env")


def test_dpkg_state_parser():
    from provision.facts import dpkg_state

    assert not dpkg_state.parse("").needs_repair
    state = dpkg_state.parse("interrupted=updates\nunit=provision-apt-1-docker-packages.service\n")
    assert state.interrupted and state.units == ["provision-apt-1-docker-packages.service"] and state.needs_repair


# -- the repository key's last check (issue 12) -----------------------------------------------------
def test_the_key_digest_is_not_downloaded_within_the_max_age_of_a_matching_recorded_check():
    snippet = docker_repo.key_digest_snippet("https://x/__DISTRO__/gpg", "env", 86400, record=True)
    assert snippet == (
        '. /etc/os-release; u=https://x/__DISTRO__/gpg; case $u in *__DISTRO__*) '
        'url="${u%%__DISTRO__*}$ID${u#*__DISTRO__}";; *) url=$u;; esac; '
        "k=$(sha256sum < /etc/apt/keyrings/docker.asc 2>/dev/null); k=${k%% *}; now=$(date +%s); "
        "if [ -f /etc/apt/keyrings/docker.asc ] && read -r s_sha s_at s_url < /var/lib/provision/docker-repo-key "
        "2>/dev/null; then case $s_at in ''|*[!0-9]*) s_at=0;; esac; "
        'if [ "$s_sha" = "$k" ] && [ "$s_url" = "$url" ] && [ $((now - s_at)) -ge 0 ] && [ $((now - s_at)) -lt 86400 ]; '
        'then echo "cached $k $s_at $now"; exit 0; fi; fi; '
        't=$(mktemp) && env curl -fsSL --retry 2 --max-time 30 -o "$t" "$url"; rc=$?; '
        "if [ $rc = 0 ]; then sha=$(sha256sum < \"$t\" | cut -d' ' -f1); "
        '[ "$sha" = "$k" ] && install -d -m 0755 "$(dirname /var/lib/provision/docker-repo-key)" && '
        "printf '%s\\n' \"$sha $now $url\" > /var/lib/provision/docker-repo-key.provision-tmp && "
        "chmod 0644 /var/lib/provision/docker-repo-key.provision-tmp && "
        "mv -f /var/lib/provision/docker-repo-key.provision-tmp /var/lib/provision/docker-repo-key; "
        'echo "fetched $now"; echo "$sha"; fi; rm -f "$t"; exit $rc')
    # max age 0 (--refresh): always downloaded, still recorded; --check: nothing recorded
    refresh = docker_repo.key_digest_snippet("https://x/__DISTRO__/gpg", "env", 0, record=True)
    assert "cached" not in refresh and "docker-repo-key.provision-tmp" in refresh
    check = docker_repo.key_digest_snippet("https://x/__DISTRO__/gpg", "env", 3600, record=False)
    assert "-lt 3600 ]" in check and "provision-tmp" not in check


def test_a_replaced_key_is_recorded_with_the_hosts_clock_of_the_probe():
    assert docker_repo.key_check_record("https://x/debian/gpg", "abc", 123) == files.write_file(
        "/var/lib/provision/docker-repo-key", "abc 123 https://x/debian/gpg\n", backup=False)
    with pytest.raises(ValueError, match="key URL contains the control character"):
        docker_repo.key_check_record("https://x/\ngpg", "abc", 1)


def test_write_line_takes_plain_expansions_only():
    assert files.write_line("/var/lib/p/f", "$a $b") == (
        "install -d -m 0755 \"$(dirname /var/lib/p/f)\" && printf '%s\\n' \"$a $b\" > /var/lib/p/f.provision-tmp "
        "&& chmod 0644 /var/lib/p/f.provision-tmp && mv -f /var/lib/p/f.provision-tmp /var/lib/p/f")
    for bad in ('$a"', "$(id)", "`id`", "a\\b", "a\nb"):
        with pytest.raises(ValueError, match="plain variable expansions"):
            files.write_line("/var/lib/p/f", bad)
    with pytest.raises(ValueError):
        files.write_line("relative/f", "$a")


def test_the_key_check_runs_here_fetch_record_cached_expired_and_mismatched(tmp_path):
    """The snippet itself, run by sh with a file:// key: the first run downloads and records, the next reads the
    record, an expired record or a keyring that differs from it downloads again (and records only a match)."""
    import hashlib
    import subprocess

    key, keyring, state = tmp_path / "served.asc", tmp_path / "docker.asc", tmp_path / "state" / "docker-repo-key"
    key.write_text("KEY-1\n")
    keyring.write_text("KEY-1\n")
    digest = hashlib.sha256(b"KEY-1\n").hexdigest()

    def run(max_age=3600, record=True):
        snippet = docker_repo.key_digest_snippet(f"file://{key}", "env", max_age, record, state=str(state),
                                                 keyring=str(keyring))
        out = subprocess.run(["sh", "-c", snippet], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    first = run(record=False)  # --check: downloaded, nothing recorded
    assert first[0] == "fetched" and first[-1] == digest and not state.exists()
    second = run()
    assert second[0] == "fetched" and second[-1] == digest
    sha, at, url = state.read_text().split()
    assert (sha, url) == (digest, f"file://{key}") and oct(state.stat().st_mode & 0o777) == "0o644"
    cached = run()
    assert cached[:3] == ["cached", digest, at] and len(cached) == 4  # within the max age: not downloaded
    state.write_text(f"{digest} {int(at) - 7200} file://{key}\n")  # two hours old
    assert run()[0] == "fetched" and int(state.read_text().split()[1]) >= int(at)  # expired: checked again
    keyring.write_text("KEY-0\n")  # the keyring differs from the record: downloaded, and the mismatch not recorded
    before = state.read_text()
    assert run()[0] == "fetched" and state.read_text() == before
    assert run(max_age=0)[0] == "fetched"  # --refresh
