"""The read-only probe scripts provision runs to gather facts, and the section format they print.

"Facts are a command plus a pure parser": the scripts are built here, their output is cut into
sections by :func:`provision.facts.script.split_sections` and read by the parsers of provision/facts/.

Every probe prints a sequence of sections, one per named snippet::

    @@provision-facts-begin 1
    @@provision-fact NAME
    ...the snippet's stdout and stderr...
    @@provision-rc NAME RC
    ...
    @@provision-facts-end

- :func:`facts_script` is the general facts script (one POSIX ``sh`` script, every fact of
  ``provision facts``; see provision/facts/script.py for its sections and rc conventions).
- :func:`probe_script` builds a one-round-trip probe from named snippets; :func:`docker_host`,
  :func:`nvidia_host`, :func:`swarm_host` and :func:`swarm_cluster` are the probes of the Docker
  install, the NVIDIA install and the swarm, :func:`dpkg_state` the section they share.
"""

from __future__ import annotations

from provision.commands import docker_repo, dpkg, files, gpu_health, gpu_verify, nvidia, system
from provision.commands import swarm as swarm_cmd
from provision.commands.argv import quote, url
from provision.commands.argv import shell as as_shell
from provision.commands.daemon_json import PATH as DAEMON_JSON
from provision.commands.detached import UNIT_PREFIX, running_units_snippet

FACT_MARKER = "@@provision-fact "
RC_MARKER = "@@provision-rc "
BEGIN_MARKER = "@@provision-facts-begin"
END_MARKER = "@@provision-facts-end"

NVIDIA_SMI_QUERY_FIELDS = "index,name,uuid,memory.total,pci.bus_id,pci.device_id,driver_version"

#: The facts script (sections and rc conventions: provision/facts/script.py). Cheap on the host: one fork per
#: command it runs, builtins for the rest (files and /proc read with `read`), and no command whose answer is
#: not needed (rc -1, "skipped: why"): `uname -m` only without dpkg, mokutil only on EFI, lspci only with an
#: NVIDIA PCI device, one `docker info` for the server version and the runtimes (`docker --version` and
#: `dockerd --version` only when the daemon does not answer it), dockerd's processes only without systemd,
#: neither `systemctl is-active docker` nor dockerd's processes when neither docker nor dockerd is installed;
#: the kernel release read from /proc (no `uname`); `timeout` only around a tool that can hang.
FACTS_SCRIPT: str = r"""# provision facts script, format 1: read-only, POSIX sh, never fails as a whole.
PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LC_ALL=C
export PATH LC_ALL

_pf_has() { command -v "$1" >/dev/null 2>&1; }

# _pf_emit NAME RC TEXT: print one section.
_pf_emit() {
    printf '@@provision-fact %s\n' "$1"
    if [ -n "$3" ]; then printf '%s\n' "$3"; fi
    printf '@@provision-rc %s %s\n' "$1" "$2"
}

# _pf_skip NAME WHY: a section whose command was not run, its answer not being needed (rc -1).
_pf_skip() { _pf_emit "$1" -1 "skipped: $2"; }

# _pf_run NAME SECONDS|- CMD [ARG...]: run CMD with stdin from /dev/null and stderr merged into
# stdout, under `timeout SECONDS` when that exists; rc 127 with no text when CMD is not installed.
_pf_run() {
    _pf_n=$1
    _pf_t=$2
    shift 2
    if ! _pf_has "$1"; then
        _pf_rc=127
        _pf_emit "$_pf_n" 127 ""
        return 0
    fi
    if [ "$_pf_t" != - ] && _pf_has timeout; then
        _pf_o=$(timeout "$_pf_t" "$@" </dev/null 2>&1)
    else
        _pf_o=$("$@" </dev/null 2>&1)
    fi
    _pf_rc=$?
    _pf_emit "$_pf_n" "$_pf_rc" "$_pf_o"
}

# _pf_file NAME PATH: the file's content; rc 127 with no text when it does not exist.
_pf_file() {
    if [ -e "$2" ]; then
        _pf_o=$(cat -- "$2" </dev/null 2>&1)
        _pf_rc=$?
    else
        _pf_o=
        _pf_rc=127
    fi
    _pf_emit "$1" "$_pf_rc" "$_pf_o"
}

# _pf_flag NAME TEST-ARGS...: "yes" when `test TEST-ARGS...` holds, else "no".
_pf_flag() {
    _pf_n=$1
    shift
    if test "$@"; then _pf_emit "$_pf_n" 0 yes; else _pf_emit "$_pf_n" 0 no; fi
}

# The MemTotal line of /proc/meminfo (the only one read).
_pf_memtotal() {
    while read -r _pf_k _pf_v _pf_u; do
        if [ "$_pf_k" = MemTotal: ]; then
            printf '%s %s %s\n' "$_pf_k" "$_pf_v" "$_pf_u"
            return 0
        fi
    done </proc/meminfo
    return 1
}

# The kernel release, as `uname -r` prints it (no fork).
_pf_osrelease() {
    read -r _pf_k </proc/sys/kernel/osrelease && printf '%s\n' "$_pf_k"
}

# One "ADDRESS VENDOR DEVICE CLASS" line per PCI device, read from sysfs (no lspci needed).
_pf_pci() {
    for _pf_d in /sys/bus/pci/devices/*; do
        [ -r "$_pf_d/vendor" ] || continue
        _pf_ven=
        _pf_dev=
        _pf_cls=
        {
            read -r _pf_ven <"$_pf_d/vendor"
            read -r _pf_dev <"$_pf_d/device"
            read -r _pf_cls <"$_pf_d/class"
        } 2>/dev/null
        printf '%s %s %s %s\n' "${_pf_d##*/}" "$_pf_ven" "$_pf_dev" "$_pf_cls"
    done
    return 0
}

# NVSwitch device nodes, one a line.
_pf_nvswitch() {
    for _pf_f in /dev/nvidia-nvswitch*; do
        if [ -e "$_pf_f" ]; then printf '%s\n' "$_pf_f"; fi
    done
    return 0
}

# _pf_procs COMM: PIDs of the processes whose /proc/PID/comm is COMM, one a line.
_pf_procs() {
    for _pf_c in /proc/[0-9]*/comm; do
        _pf_p=
        { read -r _pf_p <"$_pf_c"; } 2>/dev/null
        if [ "$_pf_p" = "$1" ]; then
            _pf_q=${_pf_c%/comm}
            printf '%s\n' "${_pf_q#/proc/}"
        fi
    done
    return 0
}

printf '%s\n' '@@provision-facts-begin 1'

if [ -e /etc/os-release ]; then
    _pf_file os_release /etc/os-release
else
    _pf_file os_release /usr/lib/os-release
fi
_pf_run arch_dpkg - dpkg --print-architecture
if [ "$_pf_rc" = 0 ] && [ -n "$_pf_o" ]; then
    _pf_skip uname_m "dpkg answered"
else
    _pf_run uname_m - uname -m
fi
if [ -r /proc/sys/kernel/osrelease ]; then
    _pf_run uname_r - _pf_osrelease
else
    _pf_run uname_r - uname -r
fi
if _pf_has nproc; then
    _pf_run nproc - nproc
else
    _pf_run nproc - getconf _NPROCESSORS_ONLN
fi
_pf_run meminfo - _pf_memtotal
_pf_flag systemd -d /run/systemd/system
_pf_run cloud_init 20 cloud-init status
_pf_flag reboot_required -e /var/run/reboot-required

if [ -d /sys/firmware/efi ]; then
    _pf_run mokutil 10 mokutil --sb-state
else
    _pf_skip mokutil "not EFI"
fi
_pf_flag efi -d /sys/firmware/efi
_pf_v=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
if [ -e "$_pf_v" ]; then
    _pf_run secureboot_efivar 10 od -An -tx1 -v "$_pf_v"
else
    _pf_emit secureboot_efivar 127 ""
fi

_pf_run nvidia_smi_query 20 nvidia-smi --query-gpu=index,name,uuid,memory.total,pci.bus_id,pci.device_id,driver_version --format=csv,noheader,nounits
case $_pf_rc in
124 | 137)
    # A hung driver: do not wait for it again.
    _pf_emit nvidia_smi 124 ""
    ;;
*)
    _pf_run nvidia_smi 20 nvidia-smi
    ;;
esac
_pf_run pci_devices - _pf_pci
case $_pf_o in
*" 0x10de "*)
    _pf_run lspci_nvidia 10 lspci -D -nn -d 10de:
    ;;
*)
    _pf_skip lspci_nvidia "no NVIDIA PCI device"
    ;;
esac
_pf_run nvswitch_dev - _pf_nvswitch

# One `docker info` (server version and runtimes); `docker --version` and `dockerd --version` only when
# the daemon did not answer it (else the server's version is the one reported); printed in the sections' order.
if ! _pf_has docker; then
    _pf_di_rc=127
    _pf_di=
elif _pf_has timeout; then
    _pf_di=$(timeout 15 docker info --format '{{.ServerVersion}} {{json .Runtimes}}' </dev/null 2>&1)
    _pf_di_rc=$?
else
    _pf_di=$(docker info --format '{{.ServerVersion}} {{json .Runtimes}}' </dev/null 2>&1)
    _pf_di_rc=$?
fi
if [ "$_pf_di_rc" = 0 ]; then
    _pf_skip docker_client_version "the daemon answered"
    _pf_skip dockerd_version "the daemon answered"
    _pf_emit docker_server_version 0 "${_pf_di%% *}"
    _pf_emit docker_runtimes 0 "${_pf_di#* }"
else
    _pf_run docker_client_version 10 docker --version
    _pf_run dockerd_version 10 dockerd --version
    _pf_emit docker_server_version "$_pf_di_rc" "$_pf_di"
    _pf_emit docker_runtimes "$_pf_di_rc" "$_pf_di"
fi
if ! _pf_has docker && ! _pf_has dockerd; then
    _pf_skip docker_active "docker is not installed"
    _pf_skip dockerd_processes "docker is not installed"
elif [ -d /run/systemd/system ]; then
    _pf_run docker_active 10 systemctl is-active docker
    _pf_skip dockerd_processes "systemd"
else
    _pf_emit docker_active 127 ""
    _pf_run dockerd_processes - _pf_procs dockerd
fi
_pf_file daemon_json /etc/docker/daemon.json

printf '%s\n' '@@provision-facts-end'
exit 0
"""


def facts_script() -> str:
    """The facts script: read-only, POSIX sh, works as a non-root user, always exits 0."""
    return FACTS_SCRIPT


# -- probes built from named snippets ----------------------------------------------------------
PREAMBLE = 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'


def probe_script(sections: list[tuple[str, str]], prelude: str = "") -> str:
    """One round trip running each (NAME, SNIPPET) in a subshell, with stdin from /dev/null and stderr
    merged, and recording its exit status, in the section format above. PRELUDE (shell lines) runs first,
    once, so that several sections can read what one command printed (variables named `_p*`)."""
    lines = [PREAMBLE + prelude, f"echo '{BEGIN_MARKER} 1'"]
    for name, snippet in sections:
        lines.append(f"echo '{FACT_MARKER}{name}'")
        # captured, then printed with a newline of its own: a file without a final newline must not
        # glue its last line to the marker
        lines.append(f"_out=$( ( {snippet}\n) </dev/null 2>&1 ); _rc=$?")
        lines.append('[ -n "$_out" ] && printf \'%s\\n\' "$_out"')
        lines.append(f"echo \"{RC_MARKER}{name} $_rc\"")
    lines.append(f"echo '{END_MARKER}'")
    return "\n".join(lines) + "\n"


def _sha256_of(path: str) -> str:
    """sha256 of a file provision wrote (a constant path); exit 1 when it does not exist. (One fork: the
    shell cuts sha256sum's `  -`.)"""
    return f"[ -f {path} ] || exit 1; s=$(sha256sum < {path}) && echo \"${{s%% *}}\""


def _requires(program: str) -> str:
    """Exit 127 (as for a missing command) when PROGRAM is not installed."""
    return f"command -v {program} >/dev/null || exit 127; "


#: /var/lib/dpkg/status lines of a package dpkg left half-way (what `dpkg --audit` reports as unpacked, half-
#: configured, half-installed, awaiting or pending triggers, or needing a reinstall).
DPKG_UNFINISHED = ("^Status: [a-z]+ ([a-z]+ (half-installed|unpacked|half-configured|triggers-awaited|triggers-pending)"
                   "|reinstreq [a-z-]+)$")


def dpkg_state() -> tuple[str, str]:
    """The `dpkg_state` section (parsed by provision/facts/dpkg_state.py): `interrupted=updates` /
    `interrupted=audit` when dpkg was stopped half-way, `unit=NAME` per provision apt unit still running.

    Cheap when all is well (issue 12: one `grep`, no `ls`, no `dpkg --audit`, no `systemctl`): the updates
    folder and provision's transient units (systemd keeps /run/systemd/transient/NAME while the unit is loaded;
    `--collect` unloads it when it ends) are globbed by the shell; `dpkg --audit` runs only when the status
    file holds a package left half-way (DPKG_UNFINISHED), `systemctl list-units` only when a provision unit
    is loaded."""
    return ("dpkg_state",
            "for f in /var/lib/dpkg/updates/* /var/lib/dpkg/updates/.[!.]*; do [ -e \"$f\" ] && "
            "{ echo interrupted=updates; break; }; done; "
            f"grep -Eq {quote(DPKG_UNFINISHED)} /var/lib/dpkg/status 2>/dev/null && "
            "dpkg --audit 2>/dev/null | grep -q . && echo interrupted=audit; "
            f"for f in /run/systemd/transient/{UNIT_PREFIX}*; do [ -e \"$f\" ] || continue; "
            f"for u in $({running_units_snippet()}); do echo \"unit=$u\"; done; break; done; true")


def _read_file(path: str) -> str:
    """A file's text printed by the shell itself (no `cat` to fork); exit 1 when it is not a file, 2 when it
    cannot be read."""
    path = quote(path, "file path")
    return f"[ -f {path} ] || exit 1; while IFS= read -r l || [ -n \"$l\" ]; do printf '%s\\n' \"$l\"; done < {path}"


# -- the Docker install (parsed by provision/facts/docker_host.py) -------------------------------
WATCHED_PACKAGES = sorted(set(docker_repo.PACKAGES + docker_repo.CONFLICTING + ["docker-ce-rootless-extras"]))


#: dpkg-query's lines in the Docker probe: the status format (dpkg.STATUS_FORMAT) plus the Architecture, so that
#: the `dpkg` package's line gives the host's architecture (what `dpkg --print-architecture` prints: dpkg is
#: always of the native architecture) without a second dpkg process.
DOCKER_PACKAGES_FORMAT = "${Package}\\t${Version}\\t${db:Status-Abbrev}\\t${Architecture}\\n"

#: Where systemd looks for docker.service before /usr/lib/systemd/system and /lib/systemd/system (systemd's unit
#: search path, in order): a file or link (a mask: -> /dev/null) there means the file-based answer below is not
#: certain.
_UNIT_SHADOWS = ("/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
                 "/run/systemd/generator.early", "/etc/systemd/system", "/etc/systemd/system.attached",
                 "/run/systemd/system", "/run/systemd/system.attached", "/run/systemd/generator",
                 "/usr/local/lib/systemd/system")


def service_state(unit: str = "docker.service", target: str = "multi-user.target") -> str:
    """`UnitFileState=...` and `ActiveState=...` of UNIT, as `systemctl show -p` prints them (the decision reads
    `enabled` and `active` only).

    Issue 12: `systemctl show` cost the host ~8 ms (the client ~6, PID 1 ~2.5: it computes the unit-file state).
    Without systemd running the section fails (exit 1), as `systemctl show` did. Enabled is read from the files
    `systemctl is-enabled` decides from when the answer is certain: UNIT's only file is a regular file in
    /usr/lib/systemd/system or /lib/systemd/system (nothing of that name in an earlier search-path folder: no mask, no override, no transient or generated unit) and
    /etc/systemd/system/TARGET.wants/UNIT leads to that file (a link in the persistent config's .wants folder:
    `enabled`). Otherwise `systemctl is-enabled` answers. Active always comes from `systemctl is-active` (~5.5
    ms): no file tells `active` from `activating`, `reloading` or `deactivating` (/run/systemd/units/
    invocation:UNIT exists in all four)."""
    shadows = " ".join(quote(f"{d}/{unit}", "unit path") for d in _UNIT_SHADOWS)
    files = " ".join(quote(f"{d}/{unit}", "unit path") for d in ("/usr/lib/systemd/system", "/lib/systemd/system"))
    wants, name = quote(f"/etc/systemd/system/{target}.wants/{unit}", "unit path"), quote(unit, "unit name")
    return ("[ -d /run/systemd/system ] || exit 1; "  # as `systemctl show` failed without systemd
            f"u=; for f in {files}; do "
            'if [ -L "$f" ]; then break; elif [ -f "$f" ]; then u=$f; break; elif [ -e "$f" ]; then break; fi; done; '
            f'[ {wants} -ef "$u" ] || u=; '
            f'for f in {shadows}; do [ -n "$u" ] || break; {{ [ -e "$f" ] || [ -L "$f" ]; }} && u=; done; '
            f'if [ -n "$u" ]; then e=enabled; else e=$(systemctl is-enabled {name} 2>/dev/null); fi; '
            f'echo "UnitFileState=$e"; echo "ActiveState=$(systemctl is-active {name} 2>/dev/null)"')


def docker_host(key_url: str, env: str, users: list[str], key_max_age: int = 0, record: bool = False) -> str:
    """What the Docker install decides from, in one round trip. KEY_URL is the repository key (its
    digest is fetched here, unless checked less than KEY_MAX_AGE seconds ago: docker_repo.key_digest_snippet,
    which RECORDs a matching check), ENV the `env ...` prefix of curl (apt.env_prefix), USERS those to add to
    the docker group (each printed as `NAME UID`, `NAME none` when absent). A NUL byte in a user, or a
    key URL that cannot be passed (docker_repo.key_digest_snippet), is refused with UnsafeValue.

    Issue 12 (host CPU of a no-op): one dpkg-query (in the prelude) answers the packages and, through the
    `dpkg` package's Architecture, the architecture (no `dpkg --print-architecture`); the keyring's digest is
    computed once (prelude) for the keyring and remote_key sections; the service's enabled state comes from
    files when certain (service_state)."""
    user_checks = " ; ".join(f"printf '%s %s\\n' {quote(u, 'user')} \"$(id -u {quote(u, 'user')} 2>/dev/null || echo none)\""
                             for u in users) or "true"
    stale = " ".join(quote(p) for p in docker_repo.STALE_FILES) + " " + " ".join(docker_repo.STALE_GLOBS)
    keyring = quote(docker_repo.KEYRING, "file path")
    prelude = (f"_pq=$({dpkg.query(['dpkg', *WATCHED_PACKAGES], DOCKER_PACKAGES_FORMAT)} 2>/dev/null)\n"
               f"_pk=; [ -f {keyring} ] && _pk=$(sha256sum 2>/dev/null < {keyring})\n")
    return probe_script([
        ("os_release", _read_file("/etc/os-release")),
        ("systemd", "[ -d /run/systemd/system ] && echo yes || echo no"),
        ("cloud_init", _requires("cloud-init") + "cloud-init status"),
        ("packages", "printf '%s' \"$_pq\""),
        ("snap", _requires("snap") + "snap list docker 2>/dev/null | tail -n +2"),
        ("keyring", f'[ -f {keyring} ] && [ -n "$_pk" ] || exit 1; echo "${{_pk%% *}}"'),
        ("remote_key", docker_repo.key_digest_snippet(key_url, env, key_max_age, record, keyring_digest='"$_pk"')),
        ("sources", _read_file(docker_repo.SOURCES)),
        ("stale", f"for f in {stale}; do [ -e \"$f\" ] && echo \"$f\"; done; true"),
        ("daemon_json", _read_file(DAEMON_JSON)),
        ("docker_group", "getent group docker"),
        ("users", user_checks),
        ("service", service_state()),
        dpkg_state(),
    ], prelude)


# -- the NVIDIA install (parsed by provision/facts/nvidia_host.py) -------------------------------
#: The toolkit's apt list as provision installs it (signed-by added), so its digest compares with the file's.
NVIDIA_LIST_SED = f"sed 's#deb https://#deb [signed-by={nvidia.TOOLKIT_KEYRING}] https://#g'"


#: Where provision records the last check of the toolkit's key and list (one line each: SHA256 CHECKED_EPOCH URL).
NVIDIA_KEY_STATE = "/var/lib/provision/nvidia-repo-key"
NVIDIA_LIST_STATE = "/var/lib/provision/nvidia-repo-list"


def nvidia_host(base: str | None, env: str, max_age: int = 0, record: bool = False) -> str:
    """What the NVIDIA install decides from, beyond the facts script, in one round trip. BASE is the
    toolkit repository's mirror (None: NVIDIA's), ENV the `env ...` prefix of curl (apt.env_prefix). A
    mirror URL that cannot be passed to curl (a control character, a leading `-`) is refused with UnsafeValue,
    as the install's own fetch_toolkit_key refuses it.

    MAX_AGE > 0: the key and the list are not downloaded when their last recorded check (NVIDIA_KEY_STATE,
    NVIDIA_LIST_STATE) is younger than MAX_AGE seconds, of the same URL, and matches the file on the host now
    (`cached SHA CHECKED NOW`); a download prints `fetched NOW` then the digest, and with RECORD one that
    matches the file is recorded as the new check. With neither (the defaults) only the digest is printed."""
    key = quote(url(nvidia.toolkit_key_url(base), "nvidia_repo_url"))
    listing = quote(url(nvidia.toolkit_list_url(base), "nvidia_repo_url"))
    fetch = f"{env} curl -fsSL --retry 2 --max-time 30"
    if max_age <= 0 and not record:
        remote_key = (f"t=$(mktemp); {fetch} -o \"$t\" {key} && gpg --batch --dearmor < \"$t\" | sha256sum | "
                      "cut -d' ' -f1; rc=$?; rm -f \"$t\"; exit $rc")
        remote_list = (f"t=$(mktemp); {fetch} -o \"$t\" {listing} && {NVIDIA_LIST_SED} \"$t\" | sha256sum | "
                       "cut -d' ' -f1; rc=$?; rm -f \"$t\"; exit $rc")
    else:
        remote_key = _checked_digest(key, fetch, 'gpg --batch --dearmor < "$t"', nvidia.TOOLKIT_KEYRING,
                                     NVIDIA_KEY_STATE, max_age, record)
        remote_list = _checked_digest(listing, fetch, f'{NVIDIA_LIST_SED} "$t"', nvidia.TOOLKIT_LIST,
                                      NVIDIA_LIST_STATE, max_age, record)
    return probe_script([
        ("packages", dpkg.status(nvidia.TOOLKIT_PACKAGES)),
        ("keyring", _sha256_of(nvidia.TOOLKIT_KEYRING)),
        ("remote_key", remote_key),
        ("list", _sha256_of(nvidia.TOOLKIT_LIST)),
        ("remote_list", remote_list),
        ("daemon_json", f"cat {DAEMON_JSON}"),
        ("cdi", f"[ -f {nvidia.CDI_SPEC} ] && echo yes || echo no"),
        ("boot", system.boot_marker()),
        ("gpu_cgroup", gpu_verify.cgroup_state()),
        dpkg_state(),
    ])


def _checked_digest(quoted_url: str, fetch: str, digest: str, local: str, state: str, max_age: int,
                    record: bool) -> str:
    """The digest of what QUOTED_URL serves as DIGEST reads the download "$t" (then sha256), unless the
    check recorded in STATE is younger than MAX_AGE and matches LOCAL's digest and the URL (see nvidia_host)."""
    lp = quote(local, "file path")
    head = f"url={quoted_url}; k=$(sha256sum < {lp} 2>/dev/null | cut -d' ' -f1); now=$(date +%s); "
    cached = ""
    if max_age > 0:
        cached = (f"if [ -f {lp} ] && read -r s_sha s_at s_url < {quote(state, 'state path')} 2>/dev/null; then "
                  "case $s_at in ''|*[!0-9]*) s_at=0;; esac; "
                  'if [ "$s_sha" = "$k" ] && [ "$s_url" = "$url" ] && [ $((now - s_at)) -ge 0 ] '
                  f'&& [ $((now - s_at)) -lt {int(max_age)} ]; then echo "cached $k $s_at $now"; exit 0; fi; fi; ')
    save = f'[ "$sha" = "$k" ] && {files.write_line(state, "$sha $now $url")}; ' if record else ""
    return (head + cached + f't=$(mktemp); {fetch} -o "$t" "$url" && sha=$({digest} | sha256sum | cut -d\' \' -f1); '
            'rc=$?; if [ $rc = 0 ]; then ' + save + 'echo "fetched $now"; echo "$sha"; fi; rm -f "$t"; exit $rc')


# -- the swarm (parsed by provision/facts/swarm.py) -----------------------------------------------
def swarm_host() -> str:
    """One round trip: the engine's swarm state, the IPv4 default route, the global IPv4 addresses."""
    return probe_script([
        ("swarm", _requires("docker") + as_shell(swarm_cmd.info())),
        ("route", _requires("ip") + swarm_cmd.default_route()),
        ("addrs", _requires("ip") + swarm_cmd.global_ipv4_addresses()),
    ])


# -- the GPU checks before a deploy (parsed by provision/facts/gpu_deploy.py) -----------------------
def gpu_deploy() -> str:
    """One round trip, only on hosts that will run GPU services: the GPUs (index, uuid, driver version:
    ``--query-gpu`` with the facts script's fields), the CUDA version from plain ``nvidia-smi``'s header
    (no ``--query-gpu`` field names it on every driver branch), each GPU's product brand from ``nvidia-smi
    -q -x`` (what NVIDIA_REQUIRE_CUDA's ``brand=`` alternatives are checked against) and the machine (for a
    manifest list)."""
    smi = _requires("nvidia-smi") + "timeout -k 5 20 "
    return probe_script([
        ("nvidia_smi_query", smi + as_shell(gpu_health.query_gpu())),
        ("nvidia_smi", smi + "nvidia-smi"),
        ("nvidia_smi_xml", smi + as_shell(gpu_health.query_xml())),
        ("uname_m", "uname -m"),
    ])


def swarm_cluster() -> str:
    """Run on a manager: its swarm state and every node with its labels (never the join tokens)."""
    return probe_script([("swarm", as_shell(swarm_cmd.info())), ("nodes", swarm_cmd.node_labels())])
