"""The facts-gathering script and the splitter for its output.

"Facts are a command plus a pure parser": :data:`FACTS_SCRIPT` is one POSIX ``sh`` script that
gathers every fact in a single SSH round trip, and :func:`split_sections` cuts its output into
named :class:`Section` objects that the pure parsers in :mod:`provision.facts.parsers` consume.

The script is read-only, works as a non-root user, and never fails as a whole: it always exits 0
and records every section's own exit status. Its output is a sequence of sections::

    @@provision-facts-begin 1
    @@provision-fact NAME
    ...the command's stdout and stderr, trailing newlines removed...
    @@provision-rc NAME RC
    ...
    @@provision-facts-end

Conventions for RC: the command's exit status; ``127`` when the command (or the file a section
reads) does not exist on the host, with empty text; ``124`` when it ran past its ``timeout``
(or was skipped because an earlier call of the same tool did). Flag sections (``systemd``,
``reboot_required``, ``efi``) always have rc 0 and text ``yes`` or ``no``.
"""

from __future__ import annotations

from dataclasses import dataclass

FACT_MARKER = "@@provision-fact "
RC_MARKER = "@@provision-rc "
BEGIN_MARKER = "@@provision-facts-begin"
END_MARKER = "@@provision-facts-end"

RC_MISSING = 127
RC_TIMEOUT = 124

#: Every section the script emits, in order.
SECTION_NAMES: tuple[str, ...] = (
    "os_release",  # /etc/os-release (else /usr/lib/os-release)
    "arch_dpkg",  # dpkg --print-architecture
    "uname_m",  # uname -m
    "uname_r",  # uname -r
    "nproc",  # nproc (else getconf _NPROCESSORS_ONLN)
    "meminfo",  # /proc/meminfo
    "systemd",  # yes/no: /run/systemd/system is a directory
    "cloud_init",  # cloud-init status
    "reboot_required",  # yes/no: /var/run/reboot-required exists
    "mokutil",  # mokutil --sb-state
    "efi",  # yes/no: /sys/firmware/efi is a directory
    "secureboot_efivar",  # od -An -tx1 -v of the SecureBoot EFI variable
    "nvidia_smi_query",  # nvidia-smi --query-gpu=... --format=csv,noheader,nounits
    "nvidia_smi",  # plain nvidia-smi (header: driver and CUDA version)
    "pci_devices",  # "ADDRESS VENDOR DEVICE CLASS" per /sys/bus/pci/devices/*
    "lspci_nvidia",  # lspci -D -nn -d 10de:
    "nvswitch_dev",  # /dev/nvidia-nvswitch* paths, one a line
    "docker_client_version",  # docker --version
    "dockerd_version",  # dockerd --version
    "docker_server_version",  # docker version --format '{{.Server.Version}}'
    "docker_runtimes",  # docker info --format '{{json .Runtimes}}'
    "docker_active",  # systemctl is-active docker (127 when systemd is not PID 1)
    "dockerd_processes",  # PIDs of processes named dockerd, one a line
    "daemon_json",  # /etc/docker/daemon.json
)

NVIDIA_SMI_QUERY_FIELDS = "index,name,uuid,memory.total,pci.bus_id,pci.device_id,driver_version"

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
_pf_run arch_dpkg 10 dpkg --print-architecture
_pf_run uname_m - uname -m
_pf_run uname_r - uname -r
if _pf_has nproc; then
    _pf_run nproc - nproc
else
    _pf_run nproc - getconf _NPROCESSORS_ONLN
fi
_pf_file meminfo /proc/meminfo
_pf_flag systemd -d /run/systemd/system
_pf_run cloud_init 20 cloud-init status
_pf_flag reboot_required -e /var/run/reboot-required

_pf_run mokutil 10 mokutil --sb-state
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
_pf_run lspci_nvidia 10 lspci -D -nn -d 10de:
_pf_run nvswitch_dev - _pf_nvswitch

_pf_run docker_client_version 10 docker --version
_pf_run dockerd_version 10 dockerd --version
_pf_run docker_server_version 15 docker version --format '{{.Server.Version}}'
_pf_run docker_runtimes 15 docker info --format '{{json .Runtimes}}'
if [ -d /run/systemd/system ]; then
    _pf_run docker_active 10 systemctl is-active docker
else
    _pf_emit docker_active 127 ""
fi
_pf_run dockerd_processes - _pf_procs dockerd
_pf_file daemon_json /etc/docker/daemon.json

printf '%s\n' '@@provision-facts-end'
exit 0
"""


@dataclass(frozen=True)
class Section:
    """One section of the facts script's output.

    ``text`` is the command's stdout and stderr with trailing newlines removed; ``rc`` its exit
    status (127: not installed / file absent, 124: timed out), or None when the output was cut
    off before the section's rc marker.
    """

    name: str
    text: str
    rc: int | None

    @property
    def ok(self) -> bool:
        """True when the command ran and exited 0."""
        return self.rc == 0

    @property
    def missing(self) -> bool:
        """True when the command or file does not exist on the host."""
        return self.rc == RC_MISSING

    @property
    def timed_out(self) -> bool:
        """True when the command ran past its timeout (or was skipped after another did)."""
        return self.rc in (RC_TIMEOUT, 137)


def _parse_rc_marker(line: str, name: str) -> int | None:
    """The rc of ``@@provision-rc NAME RC`` when LINE closes section NAME, else None."""
    parts = line[len(RC_MARKER) :].split()
    if len(parts) != 2 or parts[0] != name:
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None


def split_sections(output: str) -> dict[str, Section]:
    """Cut the facts script's output into sections by name.

    Lines outside sections (login banners, the begin/end markers) are ignored. A section whose
    rc marker never came (truncated output) gets ``rc=None``. A repeated name keeps the last.
    """
    sections: dict[str, Section] = {}
    name: str | None = None
    body: list[str] = []
    for line in output.replace("\r\n", "\n").split("\n"):
        if line.startswith(FACT_MARKER):
            if name is not None:
                sections[name] = Section(name, "\n".join(body).rstrip("\n"), None)
            name, body = line[len(FACT_MARKER) :].strip(), []
            continue
        if name is None:
            continue
        if line.startswith(RC_MARKER):
            rc = _parse_rc_marker(line, name)
            if rc is not None:
                sections[name] = Section(name, "\n".join(body), rc)
                name, body = None, []
                continue
        body.append(line)
    if name is not None:
        sections[name] = Section(name, "\n".join(body).rstrip("\n"), None)
    return sections


def is_complete(output: str) -> bool:
    """True when the output holds the script's end marker (it ran to the end)."""
    return any(line.strip() == END_MARKER for line in output.splitlines())
