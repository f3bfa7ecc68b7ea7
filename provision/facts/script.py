"""The facts-gathering script and the splitter for its output.

"Facts are a command plus a pure parser": :data:`FACTS_SCRIPT` (built in
:mod:`provision.commands.probes`) is one POSIX ``sh`` script that gathers every fact in a single SSH
round trip, and :func:`split_sections` cuts its output into named :class:`Section` objects that the
pure parsers in :mod:`provision.facts.parsers` consume.

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
(or was skipped because an earlier call of the same tool did); ``-1`` when the script did not run the
command because its answer was not needed (text ``skipped: WHY``, e.g. ``dockerd --version`` once the
daemon answered; the parsers read such a section as one that gave no answer). Flag sections (``systemd``,
``reboot_required``, ``efi``) always have rc 0 and text ``yes`` or ``no``.
"""

from __future__ import annotations

from dataclasses import dataclass

# The script and its markers are built in provision/commands/probes.py (a command); re-exported here
# for the parser below and for the callers that run the script.
from provision.commands.probes import BEGIN_MARKER, END_MARKER, FACT_MARKER, FACTS_SCRIPT, RC_MARKER

__all__ = ["BEGIN_MARKER", "END_MARKER", "FACT_MARKER", "FACTS_SCRIPT", "RC_MARKER", "RC_MISSING", "RC_SKIPPED", "RC_TIMEOUT",
           "SECTION_NAMES", "Section", "split_sections", "is_complete"]

RC_MISSING = 127
RC_TIMEOUT = 124
RC_SKIPPED = -1

#: Every section the script emits, in order.
SECTION_NAMES: tuple[str, ...] = (
    "os_release",  # /etc/os-release (else /usr/lib/os-release)
    "arch_dpkg",  # dpkg --print-architecture
    "uname_m",  # uname -m (only when dpkg did not answer)
    "uname_r",  # uname -r (read from /proc/sys/kernel/osrelease when it exists)
    "nproc",  # nproc (else getconf _NPROCESSORS_ONLN)
    "meminfo",  # /proc/meminfo's MemTotal line
    "systemd",  # yes/no: /run/systemd/system is a directory
    "cloud_init",  # cloud-init status
    "reboot_required",  # yes/no: /var/run/reboot-required exists
    "mokutil",  # mokutil --sb-state (only on EFI)
    "efi",  # yes/no: /sys/firmware/efi is a directory
    "secureboot_efivar",  # od -An -tx1 -v of the SecureBoot EFI variable
    "nvidia_smi_query",  # nvidia-smi --query-gpu=... --format=csv,noheader,nounits
    "nvidia_smi",  # plain nvidia-smi (header: driver and CUDA version)
    "pci_devices",  # "ADDRESS VENDOR DEVICE CLASS" per /sys/bus/pci/devices/*
    "lspci_nvidia",  # lspci -D -nn -d 10de: (only with an NVIDIA device in pci_devices)
    "nvswitch_dev",  # /dev/nvidia-nvswitch* paths, one a line
    "docker_client_version",  # docker --version (only when the daemon did not answer docker info)
    "dockerd_version",  # dockerd --version (likewise)
    "docker_server_version",  # docker info's ServerVersion (one `docker info` for this section and the next)
    "docker_runtimes",  # docker info's {{json .Runtimes}}
    "docker_active",  # systemctl is-active docker (127 when systemd is not PID 1; skipped without docker/dockerd)
    "dockerd_processes",  # PIDs of processes named dockerd, one a line (only without systemd, with docker/dockerd)
    "daemon_json",  # /etc/docker/daemon.json
)



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
