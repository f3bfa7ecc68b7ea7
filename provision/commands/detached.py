"""Run a root script detached from the SSH session, as a transient systemd unit, and wait for it.

apt/dpkg must never be killed half-way because the operator's connection dropped (a laptop lid, a flaky
VPN, a provision run cut by its own timeout): dpkg interrupted mid-unpack leaves a host on which apt
refuses to work until `dpkg --configure -a`. So apt work runs as `provision-apt-*.service` (not a child of
sshd), writing its log and exit status under RUN_DIR; the SSH command only waits for the status file and
prints the log. When the connection drops, the unit runs on; the next run sees it (facts/dpkg_state.py),
waits for it and repairs whatever is left (`repair_snippet`).

The wait is a poll, not one blocking command: `run_detached` starts the unit and waits up to POLL_WAIT_S
for it; while the unit runs, each `poll_detached` waits up to POLL_WAIT_S again. A poll of a unit still
running prints RUNNING_MARKER and the tail of the unit's apt status file (apt's `APT::Status-Fd` lines,
`dlstatus:`/`pmstatus:`, set for every apt-get of the script through `APT_CONFIG`; facts/apt_status.py
reads them): the live view's "12/40 packages" costs no round trip beyond the poll. A poll of a finished
unit prints its log and exits with its exit status, as the blocking wait did.
"""

from __future__ import annotations

import base64
import re
import shlex

RUN_DIR = "/var/lib/provision/runs"
UNIT_PREFIX = "provision-apt-"


def unit_name(stamp: str, step: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-") or "step"
    return f"{UNIT_PREFIX}{re.sub(r'[^0-9A-Za-z]+', '', stamp)}-{slug}"


POLL_WAIT_S = 2  # each poll waits on the host up to this long for the unit to end
RUNNING_MARKER = "@@provision-detached-running@@"  # first line of a poll's output while the unit runs
STATUS_FD = 3  # apt writes its machine-readable progress here (APT::Status-Fd), the unit's .status file
STATUS_LINES = 400  # of the status file, a poll prints at most this many last (distinct) lines


def _files(unit: str) -> dict[str, str]:
    base = f"{RUN_DIR}/{unit}"
    return {k: shlex.quote(f"{base}.{k}") for k in ("sh", "log", "rc", "status", "aptconf")}


def run_detached(unit: str, script: str, description: str, wait_s: int = POLL_WAIT_S) -> str:
    """Start `script` as the transient unit `unit`, then poll it once (`poll_detached`).

    The script is written to a 0700 directory (not the unit's command line, which any user can read with
    `systemctl show`) and removed at the end; the log stays for the operator. Every apt-get of the script
    reads `APT::Status-Fd "3";` from the unit's own APT_CONFIG file (read before apt's own configuration,
    which still applies) and fd 3 is the unit's status file."""
    q = _files(unit)
    data = base64.b64encode(script.encode()).decode()
    aptconf = base64.b64encode(f'APT::Status-Fd "{STATUS_FD}";\n'.encode()).decode()
    inner = (f"APT_CONFIG={q['aptconf']} sh {q['sh']} > {q['log']} 2>&1 {STATUS_FD}>> {q['status']}; "
             f"echo $? > {q['rc']}.tmp && mv -f {q['rc']}.tmp {q['rc']}")
    start = shlex.join(["systemd-run", "--quiet", "--collect", f"--unit={unit}", f"--description={description}",
                        "--property=KillMode=process", "/bin/sh", "-c", inner])
    return (
        f"install -d -m 0700 {RUN_DIR} && rm -f {q['rc']} {q['log']} {q['status']} && "
        f"(umask 077; printf %s {shlex.quote(data)} | base64 -d > {q['sh']} && "
        f"printf %s {aptconf} | base64 -d > {q['aptconf']}) && {start} && "
        + poll_detached(unit, wait_s)
    )


def poll_detached(unit: str, wait_s: int = POLL_WAIT_S) -> str:
    """Wait up to wait_s for the unit started by `run_detached`. Still running: print RUNNING_MARKER and the
    last STATUS_LINES distinct lines of its apt status file, exit 0. Ended: print its log and exit with its
    exit status (1, and why, when it ended without one: killed)."""
    q = _files(unit)
    u = shlex.quote(unit)
    return (
        f"w=0; while [ ! -s {q['rc']} ] && systemctl is-active -q {u} && [ $w -lt {int(wait_s)} ]; do "
        f"sleep 1; w=$((w+1)); done; "
        f"if [ ! -s {q['rc']} ] && systemctl is-active -q {u}; then echo {RUNNING_MARKER}; "
        f"uniq {q['status']} 2>/dev/null | tail -n {STATUS_LINES}; exit 0; fi; "
        f"rm -f {q['sh']} {q['aptconf']} {q['status']}; cat {q['log']} 2>/dev/null; "
        f"if [ -s {q['rc']} ]; then exit \"$(cat {q['rc']})\"; fi; "
        f"echo 'E: {unit} ended without an exit status (killed?): re-run to repair' >&2; exit 1"
    )


def running_units_snippet() -> str:
    """provision's apt units still running on the host (one per line)."""
    return (f"systemctl list-units --plain --no-legend --state=active,activating '{UNIT_PREFIX}*' 2>/dev/null "
            "| awk '{print $1}'")


def repair_snippet(units: list[str], wait_s: int, env: str) -> str:
    """Wait (up to wait_s) for provision's unfinished apt units, then repair an interrupted dpkg."""
    waits = " ".join(shlex.quote(u) for u in units)
    wait = (f"for u in {waits}; do w=0; while systemctl is-active -q \"$u\" && [ $w -lt {wait_s} ]; do "
            f"sleep 1; w=$((w+1)); done; if systemctl is-active -q \"$u\"; then "
            f"echo \"E: $u still running after {wait_s}s\" >&2; exit 1; fi; done; " if units else "")
    return (wait + f"{env} dpkg --force-confdef --force-confold --configure -a && "
            f"{env} apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -f install")
