"""Arbitrary strings through every remote command builder arrive literally on a real sandbox host.

A property test (hypothesis): for every public function of provision/commands/ that takes a string
an operator or a playbook can influence (paths, package names, URLs, proxies, images, file contents,
lock holders, audit entries, labels, advertise addresses ...), hostile values — quotes, `$(id)`,
backticks, `;`, `&&`, newlines, CR, backslashes, globs, `~`, a leading `-`, unicode, very long
strings — are put through the builder, and the command it returns is run on ONE sandbox host over
provision's own SSH executor (one connection), as the Applier runs it (`set -e`, as root), under both
shells a command meets: bash (a root login's shell) and dash (`sudo ... sh -c` when becoming root). Then:

- programs that must not really run here (apt-get, docker, curl, gpg, nvidia-ctk, ...) are replaced
  on PATH by a recording shim that writes the argv and proxy environment it received, NUL-separated,
  to a log: each value must be exactly one argv element (or env value), byte for byte;
- builders that work on files (write_file, make_dirs, sync_folder, the deploy lock, the audit log)
  run for real under a temp folder: the names and contents created (listed with `find -print0`) are
  exactly the values.

A value that cannot be passed (a NUL byte anywhere; for URLs and apt sources a control character
or, for URLs, a leading `-`) must be refused by the builder with UnsafeValue (a ValueError and an
InputError), before anything runs: tests/unit/test_quoting_commands.py checks that for every entry,
and that BUILDERS names every public function of provision/commands/ (a new builder cannot be
forgotten).
"""

from __future__ import annotations

import base64
import os
import hashlib
import inspect
import json
import shlex
from dataclasses import dataclass
from typing import Callable

import pytest

from provision.commands import (apt, daemon_json, deploy_host, deploy_state, docker_engine, docker_repo, dpkg, files,
                                gpu_verify, nvidia, probes, swarm, system)
from provision.commands import argv as argv_cmd
from provision.commands import relay
from provision.commands.argv import UnsafeValue
from provision.executor.base import as_shell

pytestmark = pytest.mark.e2e

META = "/tmp/sp-quoting"  # shims and per-run output (outside the work folder)
WORK = "/tmp/sp-quoting-work"  # the temp folder the file builders work in (emptied every run)
SHIMMED = ("apt-get", "apt-mark", "apt-cache", "curl", "gpg", "docker", "dockerd", "nvidia-ctk", "ubuntu-drivers",
           "stat", "systemctl", "usermod", "dpkg-query", "ssh")

# Records its name, every argument and the proxy environment, NUL-separated (tag, value), in a file of its
# own (shims in one pipeline run at once), then does just enough for the pipeline it sits in: writes
# SP_BODY to the file after `-o`, prints SP_STDOUT.
SHIM = r"""#!/bin/sh
{ printf 'A\0%s\0' "${0##*/}"
  for a in "$@"; do printf 'a\0%s\0' "$a"; done
  printf 'e\0%s\0e\0%s\0e\0%s\0Z\0' "${http_proxy-}" "${https_proxy-}" "${no_proxy-}"; } > "$SP_LOG.$(date +%s%N).$$"
out=; prev=
for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done
[ -z "$out" ] || printf '%s' "${SP_BODY-}" > "$out"
[ -z "${SP_STDOUT-}" ] || printf '%s\n' "$SP_STDOUT"
exit 0
"""

PGP = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nsp\n-----END PGP PUBLIC KEY BLOCK-----\n"


# -- what one run saw -----------------------------------------------------------------------------
@dataclass
class Call:
    prog: str
    argv: list[str]
    env: dict[str, str]


@dataclass
class Run:
    rc: int
    out: str
    err: str
    calls: list[Call]
    tree: dict[str, tuple[str, str]]  # relative path → (find %y type, %m mode)
    reads: list[bytes | None]

    def only(self, prog: str) -> Call:
        calls = [c for c in self.calls if c.prog == prog]
        assert len(calls) == 1, f"{prog}: {len(calls)} calls in {self.calls}"
        return calls[0]


def _calls(data: bytes) -> list[Call]:
    tokens, calls, i = data.split(b"\0"), [], 0
    current: Call | None = None
    envs: list[str] = []
    while i < len(tokens) - 1:
        tag = tokens[i]
        if tag == b"Z":
            assert current is not None
            current.env = dict(zip(("http_proxy", "https_proxy", "no_proxy"), envs))
            calls.append(current)
            current, envs, i = None, [], i + 1
            continue
        value = tokens[i + 1].decode("utf-8")
        if tag == b"A":
            current = Call(value, [], {})
        elif tag == b"a":
            current.argv.append(value)
        elif tag == b"e":
            envs.append(value)
        i += 2
    return calls


def _b64(text: str) -> bytes:
    return base64.b64decode(text.strip() or "")


def _parse(stdout: str, n_reads: int, shell: str) -> Run:
    fields: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith(f"@@{shell}."):
            key, _, value = line[len(shell) + 3:].partition(" ")
            fields[key] = value
    tree = {}
    for entry in _b64(fields.get("tree", "")).split(b"\0"):
        if entry:
            kind, mode, path = entry.decode("utf-8").split(" ", 2)
            tree[path] = (kind, mode)
    reads = [None if fields.get(f"f{i}", "-") == "-" else _b64(fields[f"f{i}"]) for i in range(n_reads)]
    return Run(int(fields["rc"]), _b64(fields["out"]).decode("utf-8"), _b64(fields["err"]).decode("utf-8", "replace"),
               _calls(_b64(fields["log"])), tree, reads)


def name(value: str, prefix: str = "f") -> str:
    """A file name made of the value: `/` (the one byte a name cannot hold) becomes `_`, at most about
    100 bytes (a backup name adds a second one: NAME_MAX is 255), and a prefix, so `.`/`..` never occur."""
    out, size = [], 0
    for char in value.replace("/", "_"):
        size += len(char.encode())
        if size > 100:
            break
        out.append(char)
    return prefix + "".join(out)


# -- the cases: one per builder -------------------------------------------------------------------
@dataclass
class Case:
    """How one builder is driven with a hostile value v in the work folder w."""

    command: Callable[[str, str], str]  # (v, w) → the shell command the builder returns
    check: Callable[[Run, str, str], None]  # asserts on the run
    setup: Callable[[str, str], str] = lambda v, w: ""  # test-side shell (values quoted by the test)
    after: Callable[[str, str], str] = lambda v, w: ""
    reads: Callable[[str, str], list[str]] = lambda v, w: []  # files whose bytes come back
    refuses: Callable[[str], bool] = lambda v: "\0" in v  # values the builder must refuse

    def call(self, v: str, w: str) -> str:
        return self.command(v, w)


def rel(v: str) -> str:
    """A relative name that keeps the value's first characters (a leading `-` above all)."""
    raw = name(v, "")
    return raw if raw not in ("", ".", "..") else "empty"


def control(v: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in v)


def bad_url(v: str) -> bool:
    return control(v) or v.startswith("-")


def _proxy(v: str) -> dict[str, str]:
    return {"http_proxy": v, "https_proxy": v, "no_proxy": v}


def _env_is(call: Call, v: str) -> None:
    assert call.env == _proxy(v), call.env


def _q(v: str) -> str:
    return shlex.quote(v)


APT_OPTS = ["-q", "-y", "-o", f"DPkg::Lock::Timeout={apt.DEFAULT_LOCK_TIMEOUT}", "-o",
            "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


def _ok(run: Run) -> None:
    assert run.rc == 0, f"rc {run.rc}: {run.err}"


def _sync_folder(v: str, w: str) -> str:
    kwargs = {"root": w} if "root" in inspect.signature(deploy_host.sync_folder).parameters else {}
    return deploy_host.sync_folder(f"{w}/{name(v, 'd')}", f"{w}/{name(v, 'a')}.tar", hashlib.sha256(v.encode()).hexdigest(),
                                   f"{w}/{name(v, 'm')}/marker", **kwargs)


def _check_sync(run: Run, v: str, w: str) -> None:
    _ok(run)
    assert run.out.strip() == "synced"
    assert run.tree.get(f"{name(v, 'd')}/{name(v, 'p')}") == ("f", "644")
    assert f"{name(v, 'a')}.tar" not in run.tree  # the uploaded archive is removed
    assert run.reads == [hashlib.sha256(v.encode()).hexdigest().encode() + b"\n", v.encode()]


def _check_write(run: Run, v: str, w: str) -> None:
    _ok(run)
    path, bak = name(v), f"{name(v)}.provision-bak-{name(v, 's')}"
    assert run.tree == {path: ("f", "600"), bak: ("f", "600")}  # the backup gets the new mode (secrets)
    assert run.reads == [v.encode(), b"old\n"]


def _check_sources(run: Run, v: str, w: str) -> None:
    _ok(run)
    text = run.reads[0].decode()
    assert text == docker_repo.sources_content("debian", v, v, v)
    fields = [line.split(":", 1)[0] for line in text.split("\n")[:-1]]  # apt splits lines at \n only
    assert fields == ["Types", "URIs", "Suites", "Components", "Architectures", "Signed-By"]  # no field added


BUILDERS: dict[str, Case | str] = {
    # apt
    "apt.env_prefix": Case(lambda v, w: apt.env_prefix(_proxy(v)) + " apt-get",
                           lambda r, v, w: (_ok(r), _env_is(r.only("apt-get"), v))),
    "apt.apt_get": Case(lambda v, w: apt.apt_get("install", v, proxy={"https_proxy": v}),
                        lambda r, v, w: (_ok(r), r.only("apt-get").argv == [*APT_OPTS, "install", v] or
                                         pytest.fail(r.only("apt-get").argv))),
    "apt.update": Case(lambda v, w: apt.update(proxy=_proxy(v)),
                       lambda r, v, w: (_ok(r), _env_is(r.only("apt-get"), v),
                                        r.only("apt-get").argv == [*APT_OPTS, "update"] or pytest.fail("argv"))),
    "apt.install": Case(lambda v, w: apt.install([v, v + "2"], proxy=_proxy(v)),
                        lambda r, v, w: (_ok(r), _env_is(r.only("apt-get"), v),
                                         r.only("apt-get").argv[-3:] == ["--no-install-recommends", v, v + "2"]
                                         or pytest.fail(r.only("apt-get").argv))),
    "apt.remove": Case(lambda v, w: apt.remove([v], purge=True),
                       lambda r, v, w: (_ok(r), r.only("apt-get").argv[-2:] == ["purge", v] or pytest.fail("argv"))),
    "apt.hold": Case(lambda v, w: apt.hold([v, "x"]),
                     lambda r, v, w: (_ok(r), r.only("apt-mark").argv == ["hold", v, "x"] or pytest.fail("argv"))),
    "apt.unhold": Case(lambda v, w: apt.unhold([v]),
                       lambda r, v, w: (_ok(r), r.only("apt-mark").argv == ["unhold", v] or pytest.fail("argv"))),
    "apt.madison": Case(lambda v, w: apt.madison(v),
                        lambda r, v, w: (_ok(r), r.only("apt-cache").argv == ["madison", v] or pytest.fail("argv"))),
    "apt.dpkg_lock_holder_script": Case(
        lambda v, w: apt.dpkg_lock_holder_script(f"{w}/{name(v)}"),
        lambda r, v, w: (_ok(r), r.only("stat").argv == ["-c", "%i", f"{w}/{name(v)}"] or pytest.fail("argv")),
        setup=lambda v, w: f"touch -- {_q(name(v))}"),
    "apt.parse_madison": "a parser of command output, builds no command",
    # host health probes
    "host_health.free_space": "its only string is the DockerRootDir the host's own engine reports (no operator "
                              "string); absolute, NUL-checked and quoted by argv.join (unit test)",
    "host_health.docker_units": "a fixed command, takes no string",
    "host_health.wait_dpkg_lock": "takes only an int (validated; unit test), no string",
    "apt.resolve_version": "pure version matching, builds no command",
    # daemon.json
    "daemon_json.validate_snippet": Case(
        lambda v, w: daemon_json.validate_snippet(f"{w}/{name(v)}"),
        lambda r, v, w: (_ok(r), [c.argv for c in r.calls] == [["--help"], ["--validate", "--config-file", f"{w}/{name(v)}"]]
                         or pytest.fail(r.calls)),
        setup=lambda v, w: f"export SP_STDOUT=--validate; echo '{{}}' > {_q(name(v))}"),
    "daemon_json.deep_merge": "pure merge of two dicts",
    "daemon_json.desired_config": "pure merge of two dicts",
    "daemon_json.render": "JSON text; written by files.write_file (tested there with arbitrary content)",
    "daemon_json.diff": "pure text diff, shown locally",
    "daemon_json.clashes": "pure check of keys",
    "daemon_json.backup_path": "a path from provision's own run stamp (a timestamp), no operator string",
    "daemon_json.restart_or_restore": "its only string is daemon_json.backup_path (provision's own stamp); it restarts "
                                      "docker, so exact strings in test_docker_commands and the rollback e2e in "
                                      "test_faults_hosts",
    # apt work detached from the SSH session
    "detached.unit_name": "sanitises any step name to [a-z0-9-] (unit test); no shell",
    "detached.run_detached": "the script is provision's own (base64 inside, tested as files.write_file is); unit and "
                             "description come from unit_name and provision's step names; e2e in test_faults_hosts",
    "detached.poll_detached": "the unit comes from unit_name ([a-z0-9-]), wait_s is an int; exact string in "
                              "test_apt_progress, real polls captured on a sandbox host (tests/fixtures/facts)",
    "detached.running_units_snippet": "no parameter",
    "detached.repair_snippet": "unit names come from the host's own systemctl listing (provision-apt-*); the env is "
                               "apt.env_prefix (tested above); e2e in test_faults_hosts",
    # deploy host bookkeeping (the lock dir and audit log are the real ones of the test host)
    "deploy_host.acquire_lock": Case(
        lambda v, w: deploy_host.acquire_lock({"by": v, "command": v, "token": "sp-token"}),
        lambda r, v, w: (_ok(r), json.loads(r.reads[0]) == {"by": v, "command": v, "token": "sp-token"}
                         or pytest.fail(r.reads)),
        reads=lambda v, w: [f"{deploy_host.LOCK_DIR}/holder"],
        after=lambda v, w: f"rm -rf -- {deploy_host.LOCK_DIR}",
        refuses=lambda v: False),  # JSON carries any string, NUL included (as \u0000)
    "deploy_host.make_secrets_stage": "takes no value; exact string in test_from_compose",
    "deploy_host.remove_secrets_stage": "the path is mktemp's output on the host; exact string in test_from_compose",
    "deploy_host.make_secrets_folder": "paths under SECRETS_ROOT from a validated stack and service name; "
                                       "exact string in test_from_compose",
    "deploy_host.install_secret": "paths under SECRETS_ROOT/mktemp; uid/gid/mode from the Compose file, shlex-quoted; "
                                  "exact string in test_from_compose",
    "deploy_host.secret_versions": "paths under SECRETS_ROOT; exact string in test_from_compose",
    "deploy_host.remove_secrets_folder": "a path under SECRETS_ROOT; exact string in test_from_compose",
    "deploy_host.release_lock": "the token is provision's own (uuid4 hex), never an operator's value; "
                                "exact string in test_deploy_units",
    "deploy_host.append_audit": Case(
        lambda v, w: deploy_host.append_audit({"who": v, "what": [v, v]}),
        lambda r, v, w: (_ok(r), json.loads(r.reads[0].splitlines()[-1]) == {"who": v, "what": [v, v]}
                         or pytest.fail(r.reads)),
        reads=lambda v, w: [deploy_host.AUDIT_LOG],
        refuses=lambda v: False),
    "deploy_host.sync_folder": Case(
        _sync_folder, _check_sync,
        setup=lambda v, w: (f"mkdir src && printf '%s' {_q(v)} > src/{_q(name(v, 'p'))} && "
                            f"tar --force-local -cf {_q(name(v, 'a'))}.tar -C src . && rm -rf src"),
        reads=lambda v, w: [f"{w}/{name(v, 'm')}/marker", f"{w}/{name(v, 'd')}/{name(v, 'p')}"]),
    "deploy_host.make_dirs": Case(
        # an absolute path, and a relative one that keeps a leading `-` (the `--` must hold)
        lambda v, w: deploy_host.make_dirs([f"{w}/{name(v)}", rel(v)]),
        lambda r, v, w: (_ok(r), r.tree == {name(v): ("d", "755"), rel(v): ("d", "755")} or pytest.fail(r.tree))),
    "deploy_host.folder_exists": Case(
        lambda v, w: as_shell(deploy_host.folder_exists(f"{w}/{name(v)}")), lambda r, v, w: _ok(r),
        setup=lambda v, w: f"mkdir -- {_q(name(v))}"),
    "deploy_host.docker_dial_stdio": "no operator value (sudo is a flag); exact string in test_deploy_units",
    # docker's apt repository
    "docker_repo.sources_content": Case(
        lambda v, w: files.write_file(f"{w}/docker.sources", docker_repo.sources_content("debian", v, v, v), backup=False),
        _check_sources, reads=lambda v, w: [f"{w}/docker.sources"], refuses=control),
    "docker_repo.fetch_key": Case(
        lambda v, w: docker_repo.fetch_key(v, f"{w}/{name(v)}", apt.env_prefix(_proxy(v))),
        lambda r, v, w: (_ok(r), _env_is(r.only("curl"), v),
                         r.only("curl").argv == ["-fsSL", "--retry", "3", "--retry-connrefused", "-o",
                                                 f"{w}/{name(v)}.provision-new", v] or pytest.fail(r.only("curl").argv),
                         r.reads == [PGP.encode()] or pytest.fail(r.reads)),
        setup=lambda v, w: f"export SP_BODY={_q(PGP)}", reads=lambda v, w: [f"{w}/{name(v)}"], refuses=bad_url),
    "docker_repo.key_digest_snippet": Case(
        lambda v, w: docker_repo.key_digest_snippet(v, apt.env_prefix(_proxy(v))),
        lambda r, v, w: (_ok(r), _env_is(r.only("curl"), v),
                         r.only("curl").argv[-1] == v.replace(docker_repo.DISTRO_PLACEHOLDER, "debian", 1)
                         or pytest.fail(r.only("curl").argv),
                         r.out.strip() == hashlib.sha256(PGP.encode()).hexdigest() or pytest.fail(r.out)),
        setup=lambda v, w: f"export SP_BODY={_q(PGP)}", refuses=bad_url),
    "docker_repo.key_check_record": Case(
        lambda v, w: docker_repo.key_check_record(v, "ab" * 32, 5, state=f"{w}/{name(v)}"),
        lambda r, v, w: (_ok(r), r.reads == [f"{'ab' * 32} 5 {v}\n".encode()] or pytest.fail(r.reads)),
        reads=lambda v, w: [f"{w}/{name(v)}"], refuses=bad_url),
    "docker_repo.remove_stale_files": Case(
        lambda v, w: docker_repo.remove_stale_files([f"{w}/{name(v)}", rel(v)]),
        lambda r, v, w: (_ok(r), r.tree == {"keep": ("f", "644")} or pytest.fail(r.tree)),
        setup=lambda v, w: f"touch -- {_q(name(v))} {_q(rel(v))} keep"),
    "docker_repo.index_versions": Case(
        lambda v, w: docker_repo.index_versions(v, v, v, apt.env_prefix(_proxy(v))),
        lambda r, v, w: (_ok(r), _env_is(r.only("curl"), v),
                         r.only("curl").argv == ["-fsSL", "--max-time", "60",
                                                 f"{v.rstrip('/')}/dists/{v}/stable/binary-{v}/Packages"]
                         or pytest.fail(r.only("curl").argv)),
        refuses=bad_url),
    "docker_repo.repo_url": "a URL string; what uses it is tested (sources_content, fetch_key)",
    "docker_repo.gpg_url": "a URL string; what uses it is tested (fetch_key, key_digest_snippet)",
    # files
    "files.write_file": Case(
        lambda v, w: files.write_file(f"{w}/{name(v)}", v, mode="0600", stamp=name(v, "s")),
        _check_write, setup=lambda v, w: f"echo old > {_q(name(v))}",
        reads=lambda v, w: [f"{w}/{name(v)}", f"{w}/{name(v)}.provision-bak-{name(v, 's')}"]),
    # NVIDIA
    "nvidia.fetch_toolkit_key": Case(
        lambda v, w: nvidia.fetch_toolkit_key(apt.env_prefix(_proxy(v)), v),
        lambda r, v, w: (_ok(r), _env_is(r.only("curl"), v),
                         r.only("curl").argv[-1] == nvidia.toolkit_key_url(v) or pytest.fail(r.only("curl").argv),
                         r.only("gpg").argv == ["--batch", "--yes", "--dearmor", "-o",
                                                nvidia.TOOLKIT_KEYRING + ".provision-new"] or pytest.fail("gpg")),
        setup=lambda v, w: f"export SP_BODY={_q(PGP)}", refuses=lambda v: bad_url(nvidia.toolkit_key_url(v))),
    "nvidia.fetch_toolkit_list": Case(
        lambda v, w: nvidia.fetch_toolkit_list(apt.env_prefix(_proxy(v)), v),
        lambda r, v, w: (_ok(r), _env_is(r.only("curl"), v),
                         r.only("curl").argv[-1] == nvidia.toolkit_list_url(v) or pytest.fail(r.only("curl").argv)),
        setup=lambda v, w: "export SP_STDOUT='deb https://sp.invalid/ /'",
        after=lambda v, w: f"rm -f -- {nvidia.TOOLKIT_LIST}",
        refuses=lambda v: bad_url(nvidia.toolkit_list_url(v))),
    "nvidia.toolkit_package_specs": Case(
        lambda v, w: apt.install(nvidia.toolkit_package_specs(v)),
        lambda r, v, w: (_ok(r), r.only("apt-get").argv[-4:] == [f"{p}={v}" if v else p for p in nvidia.TOOLKIT_PACKAGES]
                         or pytest.fail(r.only("apt-get").argv))),
    "nvidia.cdi_generate": Case(
        lambda v, w: nvidia.cdi_generate(f"{w}/{name(v)}"),
        lambda r, v, w: (_ok(r), r.only("nvidia-ctk").argv == ["cdi", "generate", f"--output={w}/{name(v)}"]
                         or pytest.fail("argv"))),
    "nvidia.driver_packages": Case(
        lambda v, w: (lambda install, extra: f"{install} && {apt.install(extra)}")(
            *nvidia.driver_packages(v, nvswitch=True, open_modules=True)),
        lambda r, v, w: (_ok(r), r.only("ubuntu-drivers").argv == ["install", "--gpgpu", f"nvidia:{v}-server-open"]
                         or pytest.fail("ubuntu-drivers"),
                         r.only("apt-get").argv[-4:] == [f"nvidia-utils-{v}-server", f"nvidia-compute-utils-{v}-server",
                                                         f"nvidia-fabricmanager-{v}", f"libnvidia-nscq-{v}"]
                         or pytest.fail(r.only("apt-get").argv))),
    "nvidia.pending_kernels_command": Case(
        lambda v, w: nvidia.pending_kernels_command(apt.env_prefix(_proxy(v))),
        lambda r, v, w: (_ok(r), [c.env for c in r.calls] == [_proxy(v)] * 2 or pytest.fail(r.calls))),
    "nvidia.gpu_test_command": Case(
        lambda v, w: nvidia.gpu_test_command(v),
        lambda r, v, w: (_ok(r), r.only("docker").argv[:7] == ["run", "--rm", "--gpus", "all", "--", v, "nvidia-smi"]
                         or pytest.fail(r.only("docker").argv))),
    "nvidia.runtime_configure": "no string parameter (a bool)",
    "nvidia.blacklist_nouveau_if_loaded": "no parameter",
    "nvidia.toolkit_key_url": "a URL string; what uses it is tested (fetch_toolkit_key)",
    "nvidia.toolkit_list_url": "a URL string; what uses it is tested (fetch_toolkit_list)",
    "nvidia.open_modules_supported": "pure decision on PCI ids",
    "nvidia.parse_pending_kernels": "a parser of command output",
    "nvidia.parse_gpu_test_output": "a parser of command output",
    "nvidia.compare_gpus": "pure comparison",
    "nvidia.advice_for": "pure text lookup",
    # GPU health and topology (issue 14)
    "gpu_health.query_xml": "no parameter",
    "gpu_health.query_gpu": "field names are provision's own constants, validated to [A-Za-z0-9._] (unit test in "
                            "test_gpu_commands); no operator string",
    "gpu_health.list_gpus": "no parameter",
    "gpu_health.topology_matrix": "no parameter",
    "gpu_health.dcgm_discovery": "no parameter",
    "gpu_health.dcgm_diag": "takes only an int from a fixed set (validated; unit test), no string",
    # the GPU verify ladder (issue 14)
    "gpu_verify.cuda_sample": Case(
        lambda v, w: gpu_verify.cuda_sample(v, ["GPU-1"]),
        lambda r, v, w: (_ok(r), r.only("docker").argv == ["run", "--rm", "--gpus", "device=GPU-1", "--", v]
                         or pytest.fail(r.only("docker").argv))),
    "gpu_verify.dcgm_diag_container": Case(
        lambda v, w: gpu_verify.dcgm_diag_container(v),
        lambda r, v, w: (_ok(r), r.only("docker").argv[-5:] == [v, "dcgmi", "diag", "-r", "1"]
                         or pytest.fail(r.only("docker").argv))),
    "gpu_verify.reload_check": Case(
        lambda v, w: gpu_verify.reload_check(v),
        lambda r, v, w: (_ok(r), [c.argv for c in r.calls if c.prog == "docker"][1] == [
            "run", "-d", "--gpus", "all", "--name", gpu_verify.RELOAD_CONTAINER, "--", v, "sleep", "300"]
            or pytest.fail(r.calls))),
    "gpu_verify.parse_cuda_sample": "a parser of command output",
    "gpu_verify.parse_dcgm_diag": "a parser of command output",
    "gpu_verify.parse_dcgm_discovery": "a parser of command output",
    "gpu_verify.split_dcgm": "a parser of command output",
    "gpu_verify.parse_nvbandwidth": "a parser of command output",
    "gpu_verify.parse_reload_check": "a parser of command output",
    "gpu_verify.parse_cgroup_state": "a parser of command output",
    "gpu_verify.dcgm_diag_level1": "no parameter",
    "gpu_verify.nvbandwidth": "no parameter",
    "gpu_verify.cgroup_state": "no parameter",
    "gpu_verify.create_dev_char_symlinks": "no parameter",
    "gpu_verify.install_dev_char_rule": "no parameter (NVIDIA's rule text, a constant)",
    # Swarm
    "swarm.init": Case(lambda v, w: as_shell(swarm.init(v)),
                       lambda r, v, w: (_ok(r), r.only("docker").argv == ["swarm", "init", "--advertise-addr", v]
                                        or pytest.fail(r.only("docker").argv))),
    "swarm.label_add": Case(lambda v, w: as_shell(swarm.label_add(v, v, v)),
                            lambda r, v, w: (_ok(r), r.only("docker").argv == ["node", "update", "--label-add",
                                                                               f"{v}={v}", "--", v]
                                             or pytest.fail(r.only("docker").argv))),
    "swarm.label_rm": Case(lambda v, w: as_shell(swarm.label_rm(v, v)),
                           lambda r, v, w: (_ok(r), r.only("docker").argv == ["node", "update", "--label-rm", v, "--", v]
                                            or pytest.fail(r.only("docker").argv))),
    "swarm.join_request": "the Engine API's JSON body (POST /swarm/join), no shell: the token never is in argv",
    "swarm.describe_join": "what --check shows for the API join (a placeholder token), never run",
    "swarm.join_address": "pure HOST:PORT formatting",
    "swarm.info": "no parameter",
    "swarm.node_labels": "no parameter",
    "swarm.default_route": "no parameter",
    "swarm.global_ipv4_addresses": "no parameter",
    # the quoting primitives themselves (tests/unit/test_quoting_commands.py)
    "argv.checked": "a quoting primitive, used by every builder above",
    "argv.one_line": "a quoting primitive, used by every builder above",
    "argv.url": "a quoting primitive, used by every builder above",
    "argv.quote": "a quoting primitive, used by every builder above",
    "argv.join": "a quoting primitive, used by every builder above",
    "argv.args": "a quoting primitive, used by every builder above",
}

def _argv_is(prog: str, *argvs: list[str]) -> Callable[[Run, str, str], None]:
    """The run succeeded and PROG was called once with each of ARGVS, in that order (argv after the name)."""
    def check(run: Run, v: str, w: str) -> None:
        _ok(run)
        got = [c.argv for c in run.calls if c.prog == prog]
        assert got == list(argvs), got
    return check


def _argvs(calls: list[tuple[str, list[str]]]) -> Callable[[Run, str, str], None]:
    """The run succeeded and the shimmed programs were called exactly so, in this order."""
    def check(run: Run, v: str, w: str) -> None:
        _ok(run)
        assert [(c.prog, c.argv) for c in run.calls] == calls, run.calls
    return check


RELAY_MARKER = "provision-relay-0123456789abcdef"
RELAY_DIR = f"/dev/shm/{RELAY_MARKER}"
RELAY_SSH_OPTS = ["-T", "-i", f"{RELAY_DIR}/key", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o",
                  "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={RELAY_DIR}/known_hosts",
                  "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=10",
                  "-o", "ServerAliveCountMax=3", "-o", f"Ciphers={relay.CIPHERS}", "-o", "Compression=no", "-p", "22"]


def _relay_ok(v: str) -> bool:
    """A value relay.receive takes both as the ssh user and as the seed's address."""
    try:
        relay.receive(RELAY_MARKER, v, v, 22, 10)
        return True
    except UnsafeValue:
        return False


def _unit_refused(v: str) -> bool:
    return "\0" in v or not v or v.startswith("-")


# issue 10: every remote command built in provision/commands/ (argv combinators, files, system, dpkg, the engine)
BUILDERS.update({
    # combining argv lists (each element quoted) with shell operators
    "argv.shell": Case(lambda v, w: argv_cmd.shell(["apt-get", v, v]), lambda r, v, w: _argv_is("apt-get", [v, v])(r, v, w)),
    "argv.combine": Case(lambda v, w: argv_cmd.combine(["apt-get", v], ["apt-mark", v, "x"], by="&&"),
                         lambda r, v, w: _argvs([("apt-get", [v]), ("apt-mark", [v, "x"])])(r, v, w)),
    "argv.chain": Case(lambda v, w: argv_cmd.chain(["apt-get", v], ["apt-mark", v]),
                       lambda r, v, w: _argvs([("apt-get", [v]), ("apt-mark", [v])])(r, v, w)),
    "argv.any_of": Case(lambda v, w: argv_cmd.any_of(["apt-get", v], ["apt-mark", v]),  # the first succeeds
                        lambda r, v, w: _argvs([("apt-get", [v])])(r, v, w)),
    "argv.pipe": Case(lambda v, w: argv_cmd.pipe(["curl", v], ["gpg", "--", v]),
                      lambda r, v, w: (_ok(r), sorted((c.prog, c.argv) for c in r.calls) == [("curl", [v]), ("gpg", ["--", v])]
                                       or pytest.fail(r.calls))),
    "argv.script": Case(lambda v, w: argv_cmd.script([["apt-get", v], apt.hold([v])]),
                        lambda r, v, w: _argvs([("apt-get", [v]), ("apt-mark", ["hold", v])])(r, v, w)),
    "argv.absolute_path": "a quoting primitive (refuses a relative path), used by the files builders below",
    # files: backup, restore, remove, folders (run for real under the work folder)
    "files.backup": Case(
        lambda v, w: files.backup(f"{w}/{name(v)}", name(v, "s")),
        lambda r, v, w: (_ok(r), r.tree == {name(v): ("f", "640"), f"{name(v)}.provision-bak-{name(v, 's')}": ("f", "640")}
                         or pytest.fail(r.tree), r.reads == [b"old\n"] or pytest.fail(r.reads)),
        setup=lambda v, w: f"echo old > {_q(name(v))} && chmod 640 {_q(name(v))}",
        reads=lambda v, w: [f"{w}/{name(v)}.provision-bak-{name(v, 's')}"]),
    "files.backup_private": Case(
        lambda v, w: files.backup_private(f"{w}/{name(v)}", name(v, "s")),
        lambda r, v, w: (_ok(r), r.tree == {name(v): ("f", "644"), f"{name(v)}.provision-bak-{name(v, 's')}": ("f", "600"),
                                            "keep": ("f", "644")} or pytest.fail(r.tree),
                         r.reads == [b"new\n"] or pytest.fail(r.reads)),
        # an older backup (removed: only one is kept), and a file the glob must not reach
        setup=lambda v, w: (f"echo new > {_q(name(v))} && echo older > {_q(name(v) + '.provision-bak-0')} "
                            f"&& touch keep && chmod 644 {_q(name(v))} keep"),
        reads=lambda v, w: [f"{w}/{name(v)}.provision-bak-{name(v, 's')}"]),
    "files.restore": Case(
        lambda v, w: files.restore(f"{w}/{name(v)}", name(v, "s")),
        lambda r, v, w: (_ok(r), list(r.tree) == [name(v)] or pytest.fail(r.tree), r.reads == [b"old\n"] or pytest.fail(r.reads)),
        setup=lambda v, w: f"echo new > {_q(name(v))} && echo old > {_q(name(v) + '.provision-bak-' + name(v, 's'))}",
        reads=lambda v, w: [f"{w}/{name(v)}"]),
    "files.write_line": Case(  # the expansion is the builder's constant; the value travels in a variable
        lambda v, w: files.write_line(f"{w}/{name(v)}/{name(v, 's')}", "$SP_X $SP_X"),
        lambda r, v, w: (_ok(r), r.reads == [f"{v} {v}\n".encode()] or pytest.fail(r.reads),
                         r.tree == {name(v): ("d", "755"), f"{name(v)}/{name(v, 's')}": ("f", "644")} or pytest.fail(r.tree)),
        setup=lambda v, w: f"export SP_X={_q(v)}", reads=lambda v, w: [f"{w}/{name(v)}/{name(v, 's')}"]),
    "files.remove": Case(
        lambda v, w: files.remove(f"{w}/{name(v)}", f"{w}/{name(v, 'g')}"),
        lambda r, v, w: (_ok(r), r.tree == {"keep": ("f", "644")} or pytest.fail(r.tree)),
        setup=lambda v, w: f"touch -- {_q(name(v))} keep && chmod 644 keep"),  # the second one is absent: fine
    "files.remove_tree": Case(
        lambda v, w: files.remove_tree(f"{w}/{name(v)}"),
        lambda r, v, w: (_ok(r), r.tree == {"keep": ("d", "755")} or pytest.fail(r.tree)),
        setup=lambda v, w: f"mkdir -p -m 755 {_q(name(v))}/sub keep && touch {_q(name(v))}/sub/f"),
    "files.make_dir": Case(
        lambda v, w: files.make_dir(f"{w}/{name(v)}/{name(v, 's')}"),
        lambda r, v, w: (_ok(r), r.tree == {name(v): ("d", "755"), f"{name(v)}/{name(v, 's')}": ("d", "755")}
                         or pytest.fail(r.tree)),
        setup=lambda v, w: "umask 022"),
    "files.backup_path": "a path string; backup, restore and backup_private use it (tested above)",
    # daemon.json candidate: validated, or removed and the step failed
    "daemon_json.validate_or_discard": Case(
        lambda v, w: daemon_json.validate_or_discard(f"{w}/{name(v)}"),
        lambda r, v, w: (_ok(r), [c.argv for c in r.calls] == [["--help"], ["--validate", "--config-file", f"{w}/{name(v)}"]]
                         or pytest.fail(r.calls), name(v) in r.tree or pytest.fail(r.tree)),
        setup=lambda v, w: f"export SP_STDOUT=--validate; echo '{{}}' > {_q(name(v))}"),
    # the machine: units, groups, reboot, cloud-init
    "system.enable_unit": Case(lambda v, w: system.enable_unit(v, now=True),
                               lambda r, v, w: _argv_is("systemctl", ["enable", "--now", v])(r, v, w), refuses=_unit_refused),
    "system.restart_unit": Case(lambda v, w: system.restart_unit(v),
                                lambda r, v, w: _argv_is("systemctl", ["restart", v])(r, v, w), refuses=_unit_refused),
    "system.add_to_group": Case(lambda v, w: system.add_to_group(v, v + "g"),
                                lambda r, v, w: _argv_is("usermod", ["-aG", v + "g", v])(r, v, w)),
    "system.reboot_soon": "no parameter (and it reboots: e2e in test_nvidia_simulated)",
    "system.boot_marker": "no parameter",
    "system.parse_boot_marker": "a parser of command output",
    "system.machine_id": "no parameter",
    "system.parse_machine_id": "a parser of command output",
    "system.cloud_init_wait": "takes only an int (validated; unit test), no string",
    # dpkg-query probes
    "dpkg.query": Case(lambda v, w: dpkg.query([v, "x"], v),
                       lambda r, v, w: _argv_is("dpkg-query", ["-W", f"-f={v}", v, "x"])(r, v, w)),
    "dpkg.versions": Case(lambda v, w: dpkg.versions([v]),
                          lambda r, v, w: _argv_is("dpkg-query", ["-W", f"-f={dpkg.VERSIONS_FORMAT}", v])(r, v, w)),
    "dpkg.status": Case(lambda v, w: dpkg.status([v, v]),
                        lambda r, v, w: _argv_is("dpkg-query", ["-W", f"-f={dpkg.STATUS_FORMAT}", v, v])(r, v, w)),
    "dpkg.parse_versions": "a parser of command output",
    "dpkg.parse_status": "a parser of command output",
    # the installed engine
    "docker_engine.hello": Case(lambda v, w: docker_engine.hello(v),
                                lambda r, v, w: _argv_is("docker", ["run", "--rm", "--", v])(r, v, w)),
    "docker_engine.version": "no parameter",
    "docker_engine.info": "no parameter",
    "docker_engine.parse_hello": "a parser of command output",
    "docker_repo.parse_index_versions": "a parser of command output",
})

def _probe_section(run: Run, name: str) -> str:
    """The text of section NAME of a probe's output, cut by its markers (a value may hold newlines)."""
    _ok(run)
    start = run.out.index(f"{probes.FACT_MARKER}{name}\n") + len(probes.FACT_MARKER) + len(name) + 1
    return run.out[start:run.out.index(f"{probes.RC_MARKER}{name} ", start)]


def _check_docker_probe(run: Run, v: str, w: str) -> None:
    _env_is(run.only("curl"), v)
    users = _probe_section(run, "users")
    # `id -u VALUE` may name a real user or uid (`0`, `-u`): then a number, else `none`
    head, _, rest = users.rpartition("\nroot 0\n")
    assert rest == "" and head.startswith(f"{v} ") and (head[len(v) + 1:] == "none" or head[len(v) + 1:].isdigit()), users


def _check_nvidia_probe(run: Run, v: str, w: str) -> None:
    curls = [c for c in run.calls if c.prog == "curl"]
    assert [c.argv[-1] for c in curls] == [nvidia.toolkit_key_url(v), nvidia.toolkit_list_url(v)], curls
    assert all(c.env == _proxy(v) for c in curls), curls
    assert _probe_section(run, "cdi") in ("yes\n", "no\n")


# issue 10: the probes (commands/probes.py). A probe runs without `set -e` (executor.run, not the Applier):
# `set +e` first, so a failing section (a file that is absent) does not end it.
BUILDERS.update({
    "probes.docker_host": Case(
        lambda v, w: "set +e\n" + probes.docker_host("http://sp.invalid/__DISTRO__/gpg", apt.env_prefix(_proxy(v)),
                                                     [v, "root"]),
        _check_docker_probe),
    "probes.nvidia_host": Case(
        lambda v, w: "set +e\n" + probes.nvidia_host(v, apt.env_prefix(_proxy(v))), _check_nvidia_probe,
        refuses=lambda v: bad_url(nvidia.toolkit_key_url(v))),
    "probes.facts_script": "no parameter (run on real hosts by every e2e module; unit test in test_facts_script)",
    "probes.probe_script": "section names and snippets are provision's own (the probes above), never an operator "
                           "string; exact string in test_probe_commands",
    "probes.dpkg_state": "no parameter",
    "probes.service_state": "unit and target names are provision's own constants (docker.service, multi-user.target), "
                            "never an operator string (quoted all the same); exact string in test_probe_commands, run in every Docker probe",
    "probes.swarm_host": "no parameter",
    "probes.swarm_cluster": "no parameter",
    "probes.gpu_deploy": "no parameter (exact string in tests/unit/test_gpu_deploy_checks.py; run by test_gpu_deploy_checks)",
    # host-to-host image relay (issue 12): only the seed's address and ssh user come from an inventory
    "relay.receive": Case(
        lambda v, w: relay.receive(RELAY_MARKER, v, v, 22, 10),
        lambda r, v, w: _argvs([("ssh", [*RELAY_SSH_OPTS, "--", f"{v}@{v}"]), ("docker", ["load"])])(r, v, w)
        if [c.prog for c in r.calls] == ["ssh", "docker"] else
        _argvs([("docker", ["load"]), ("ssh", [*RELAY_SSH_OPTS, "--", f"{v}@{v}"])])(r, v, w),
        refuses=lambda v: not _relay_ok(v)),
    "relay.address": "a validator: refuses (UnsafeValue) every value outside [A-Za-z0-9_.:%-] or with a leading "
                     "'-' (test_relay.py); builds no command",
    "relay.known_hosts_line": "the text of a file put by SFTP, not a command; its address goes through "
                              "relay.address (refused unless [A-Za-z0-9_.:%-]), the host key through a strict "
                              "pattern (test_relay.py)",
    "relay.authorized_line": "an authorized_keys line built only from values provision generates (key, marker, "
                             "image id, expiry), each checked against a strict pattern (test_relay.py)",
    "relay.authorize": "appends a line of relay.authorized_line only (refuses anything else, and any quote or "
                       "newline); exact string in test_relay.py",
    "relay.revoke": "its only value is a generated marker checked against provision-relay-[0-9a-f]{16}",
    "relay.count_lines": "a fixed prefix, takes no operator string",
    "relay.relay_processes": "a fixed prefix, takes no operator string",
    "relay.folder": "a path from a generated marker (checked), builds no command",
    "relay.make_folder": "its only value is a generated marker (checked)",
    "relay.remove_folder": "its only value is a generated marker (checked)",
})


def _check_deploy_state(run: Run, v: str, w: str) -> None:
    docker = [c.argv for c in run.calls if c.prog == "docker"]
    listing = ('{{if eq (.Label "io.provision.stack") ' + deploy_state.go_string(v)
               + "}}L{{else}}-{{end}} {{.Names}}")
    # the listing (the shim lists no container, so none is picked), then one inspect of network, volume, image
    assert docker == [["ps", "-a", "--format", listing], ["inspect", "--format", "{{json .}}", v, v, v]], docker
    assert _probe_section(run, "markers") == f"={v}\n" if "\n" not in v else True
    assert _probe_section(run, "folders") == "yes\n"


# issue 12: the one-round-trip probe of a redeploy (commands/deploy_state.py)
BUILDERS.update({
    "deploy_state.deploy_state": Case(
        lambda v, w: "set +e\n" + deploy_state.deploy_state(v, [v], [v], [v], [v], [f"{w}/{name(v)}"],
                                                            [f"{w}/{name(v, 'd')}"]),
        _check_deploy_state,
        setup=lambda v, w: f"printf '%s' {_q(v)} > {_q(name(v))} && mkdir -p {_q(name(v, 'd'))}"),
    "deploy_state.go_string": "a Go template string literal (every character but printable ASCII other than '\"' "
                              "and '\\' escaped as \\UXXXXXXXX); builds no command; its output is checked byte "
                              "for byte in the deploy_state.deploy_state case above and tests/unit/test_deploy_noop.py",
})


# Builders of the host-lock work (issue 9, another branch): in the table as soon as they exist.
if hasattr(deploy_host, "break_lock"):
    def _check_break(run: Run, v: str, w: str) -> None:
        # the holder is compared as `$(cat holder)`, which drops trailing newlines: such a text never
        # matches, and the lock is then kept (exit LOCK_CHANGED_RC), never broken by mistake
        if v.endswith("\n"):
            assert (run.rc, run.reads[0]) == (deploy_host.LOCK_CHANGED_RC, v.encode() + b"\n"), (run.rc, run.err)
        else:
            assert (run.rc, run.reads[0]) == (0, None), (run.rc, run.err)

    BUILDERS.update({
        "deploy_host.read_lock": "no parameter",
        "deploy_host.break_lock": Case(
            lambda v, w: deploy_host.break_lock(v), _check_break,
            setup=lambda v, w: f"mkdir -p {deploy_host.LOCK_DIR} && printf '%s\\n' {_q(v)} > {deploy_host.LOCK_DIR}/holder",
            reads=lambda v, w: [f"{deploy_host.LOCK_DIR}/holder"],
            after=lambda v, w: f"rm -rf -- {deploy_host.LOCK_DIR}"),
        "deploy_host.read_sync_marker": Case(
            lambda v, w: deploy_host.read_sync_marker(f"{w}/{name(v)}"),
            lambda r, v, w: (_ok(r), r.out == v or pytest.fail(repr(r.out))),
            setup=lambda v, w: f"printf '%s' {_q(v)} > {_q(name(v))}"),
        "deploy_host.make_temp": Case(
            lambda v, w: deploy_host.make_temp(f"{w}/{name(v)}."),
            lambda r, v, w: (_ok(r), r.out.startswith(f"{w}/{name(v)}.") and list(r.tree) == [r.out[len(w) + 1:-1]]
                             or pytest.fail((r.out, r.tree)))),
    })

CASES = {key: case for key, case in BUILDERS.items() if isinstance(case, Case)}


SHELLS = ("bash", "sh")  # the login shell of a root login (bash here), and `sudo ... sh -c` of become (dash)


def harness(case: Case, v: str) -> tuple[str, int]:
    """The one script a run sends: for each shell, setup, the builder's command as the Applier runs it
    (`set -e` + the command; under sudo's `sh -c` for become), then the evidence, tagged with the shell."""
    reads = case.reads(v, WORK)
    command = "set -e\n" + case.call(v, WORK)
    lines = [f"M={META}; W={WORK}"]
    for shell in SHELLS:
        run = f"( {command}\n)" if shell == "bash" else f"sh -c {_q(command)}"
        lines += [
            'rm -rf "$W" "$M/run" && mkdir -p "$W" "$M/run" && cd "$W" || exit 99',
            'export PATH="$M/shims:$PATH" SP_LOG="$M/run/log"',
            case.setup(v, WORK) or ":",
            f'{run} > "$M/run/out" 2> "$M/run/err"; rc=$?',
            "cd /",
            f'printf "@@{shell}.rc %s\\n" "$rc"',
            f'for f in out err; do printf "@@{shell}.%s " "$f"; base64 -w0 "$M/run/$f"; echo; done',
            f'printf "@@{shell}.log "; cat "$M/run"/log.* 2>/dev/null | base64 -w0; echo',  # in time order
            f"printf '@@{shell}.tree '; (cd \"$W\" && find . -mindepth 1 -printf '%y %m %P\\0') | base64 -w0; echo",
        ]
        for i, path in enumerate(reads):
            lines.append(f"printf '@@{shell}.f{i} '; base64 -w0 -- {_q(path)} 2>/dev/null || printf -- -; echo")
        lines.append(case.after(v, WORK) or ":")
    return "\n".join(lines) + "\n", len(reads)


# -- hostile strings -------------------------------------------------------------------------------
NASTY = ["'", '"', "$(id)", "`id`", ";", "&&", "||", "|", "\n", "\r", "\t", "\\", "\\n", "*", "?", "[a]", "~", "~root",
         "-", "--", "-rf", " ", "  ", "$HOME", "${IFS}", "$'x'", "#", "!", "%s", "%", "{a,b}", ">", "<", "=", "&",
         "é", "中", "🚀", "\u202e", "\x1b[31m", "\x7f", "__DISTRO__"]

EXAMPLES = [
    "'\"$(id)`id`;&&\n\r\\*~é中🚀",  # every class at once
    "-rf --help",  # a leading dash
    r"C:\\new\table\\",  # backslash escapes that programs (tar -C, echo) might unquote
    "x" * 5000,  # very long
    "",  # empty
]


def hostile():
    from hypothesis import strategies as st

    text = st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))
    return st.one_of(
        st.lists(st.one_of(st.sampled_from(NASTY), st.text(text, max_size=3)), min_size=1, max_size=8).map("".join),
        st.text(text, max_size=40),
        # very long (up to ~3 KB: a quote grows 17-fold through two layers of quoting, and one command,
        # `bash -c SCRIPT` at sshd, must stay under the kernel's 128 KiB limit for one argument)
        st.tuples(st.sampled_from(NASTY), st.integers(200, 800)).map(lambda t: t[0] * t[1]),
    )


# -- the sandbox host ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """ONE sandbox host, reached by provision's own SSH executor (one connection for the module)."""
    from provision.executor.known_hosts import KnownHosts
    from provision.executor.ssh import SSHExecutor
    from provision.workflows.targets import load_targets
    from tests.e2e.conftest import start_fleet

    fleet, down = start_fleet(tmp_path_factory, "e2e-quoting", 1)
    executor = None
    try:
        target = load_targets(fleet.inventory)[0]
        executor = SSHExecutor(target.settings, KnownHosts(fleet.home / "known_hosts"))
        shims = " && ".join(f"ln -sf .shim {META}/shims/{prog}" for prog in SHIMMED)
        ready = executor.run(f"rm -rf {META} && mkdir -p {META}/shims && printf '%s' {_q(SHIM)} > {META}/shims/.shim "
                             f"&& chmod 0755 {META}/shims/.shim && {shims}", become=True)
        assert ready.ok, ready.stderr
        yield executor
    finally:
        if executor is not None:
            executor.close()
        down()


@pytest.mark.parametrize("key", sorted(CASES))
def test_arbitrary_strings_arrive_literally(host, key):
    from hypothesis import HealthCheck, example, given, settings

    case = CASES[key]

    @settings(max_examples=int(os.environ.get("SP_EXAMPLES", "12")), deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(hostile())
    def prop(v: str) -> None:
        if case.refuses(v):
            with pytest.raises(UnsafeValue):
                case.call(v, WORK)
            return
        script, n_reads = harness(case, v)
        result = host.run(script, become=True, timeout=60)
        assert result.ok, f"harness failed ({result.exit_code}): {result.stderr}"
        for shell in SHELLS:
            run = _parse(result.stdout, n_reads, shell)
            try:
                case.check(run, v, WORK)
            except BaseException as exc:
                exc.add_note(f"under {shell}: rc {run.rc}, stderr {run.err!r}")
                raise

    for value in EXAMPLES:
        prop = example(value)(prop)
    prop()
