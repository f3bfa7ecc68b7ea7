"""Run a root script detached from the SSH session, as a transient systemd unit, and wait for it.

apt/dpkg must never be killed half-way because the operator's connection dropped (a laptop lid, a flaky
VPN, a provision run cut by its own timeout): dpkg interrupted mid-unpack leaves a host on which apt
refuses to work until `dpkg --configure -a`. So apt work runs as `provision-apt-*.service` (not a child of
sshd), writing its log and exit status under RUN_DIR; the SSH command only waits for the status file and
prints the log. When the connection drops, the unit runs on; the next run sees it (facts/dpkg_state.py),
waits for it and repairs whatever is left (`repair_snippet`).
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


def run_detached(unit: str, script: str, description: str) -> str:
    """Start `script` as the transient unit `unit`, wait for its exit status, print its log, exit with it.

    The script is written to a 0700 directory (not the unit's command line, which any user can read with
    `systemctl show`) and removed afterwards; the log stays for the operator."""
    base = f"{RUN_DIR}/{unit}"
    q = {k: shlex.quote(f"{base}.{k}") for k in ("sh", "log", "rc")}
    data = base64.b64encode(script.encode()).decode()
    inner = f"sh {q['sh']} > {q['log']} 2>&1; echo $? > {q['rc']}.tmp && mv -f {q['rc']}.tmp {q['rc']}"
    start = shlex.join(["systemd-run", "--quiet", "--collect", f"--unit={unit}", f"--description={description}",
                        "--property=KillMode=process", "/bin/sh", "-c", inner])
    return (
        f"install -d -m 0700 {RUN_DIR} && rm -f {q['rc']} {q['log']} && "
        f"(umask 077; printf %s {shlex.quote(data)} | base64 -d > {q['sh']}) && {start} && "
        f"while [ ! -s {q['rc']} ] && systemctl is-active -q {shlex.quote(unit)}; do sleep 1; done; "
        f"rm -f {q['sh']}; cat {q['log']} 2>/dev/null; "
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
