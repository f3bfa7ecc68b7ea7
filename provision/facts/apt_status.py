"""How far a detached apt run is: the poll's output (commands/detached.py) and a pure parser of apt's
machine-readable status lines (`APT::Status-Fd`), for the live view's "12/40 packages".

apt writes, one line per event:
  dlstatus:FILE:PERCENT:Retrieving file N of M      (downloads: `apt-get update`'s indexes, then packages)
  pmstatus:PACKAGE:PERCENT:ACTION PACKAGE (ARCH)    (dpkg: Preparing, Unpacking, Installing, Preparing to
                                                   configure, Configuring, Installed, ... Removed)
  pmstatus:dpkg-exec:PERCENT:Running dpkg           (each dpkg invocation)
PERCENT restarts at 0 with each apt-get invocation (a unit's script may run several: update, then install).
ACTION is translated in the host's locale, so done packages are counted from PERCENT (each package's actions
weigh the same) and from the English final states when the locale is English (exact), whichever is more.
The number of packages: those named so far, or, known from the first step, PERCENT's step: apt counts
4 actions per installed package plus one (17 packages: steps of 100/69, as captured), so (100/step - 1)/4;
a removal counts 2 per package, which this undercounts until the packages are named. A download's
"of M" is not used for it: `apt-get update`'s index files read the same.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from provision.commands.detached import RUNNING_MARKER

FINAL_ACTIONS = ("Installed ", "Removed ", "Completely removed ", "Purged ")


@dataclass(frozen=True)
class AptProgress:
    done: int
    total: int
    unit: str  # "packages" (dpkg at work) or "files" (downloading: package files, or update's indexes)
    detail: str  # the package dpkg is at, or "downloading"


def is_running(stdout: str) -> bool:
    """Whether a run_detached/poll_detached output says the unit still runs."""
    return stdout.split("\n", 1)[0].strip() == RUNNING_MARKER


def status_text(stdout: str) -> str:
    """The apt status lines of a running unit's poll output."""
    return stdout.split("\n", 1)[1] if is_running(stdout) and "\n" in stdout else ""


# the name may hold a colon (a foreign-architecture package, `libc6:i386`): it ends at the first `:PERCENT:`
_LINE = re.compile(r"^(?P<kind>dlstatus|pmstatus):(?P<name>.*?):(?P<percent>\d+(?:\.\d+)?):(?P<message>.*)$")


def parse(text: str) -> AptProgress | None:
    """The progress of the latest apt-get invocation in `text` (apt status lines, oldest first), or None
    when it says nothing yet. Lines that are not status lines (pmconffile:, pmerror:, a cut first line)
    are skipped."""
    dl_file = dl_total = 0
    dl_percent = -1.0
    pm_packages: list[str] = []  # in first-seen order
    pm_final: set[str] = set()
    pm_percent = -1.0
    pm_current = ""
    pm_step = 0.0  # the smallest rise of PERCENT between two lines: one action
    for line in text.splitlines():
        match = _LINE.match(line.rstrip("\r"))
        if match is None:
            continue
        kind, name, message = match["kind"], match["name"], match["message"]
        percent = float(match["percent"])
        if kind == "dlstatus":
            if pm_packages or percent < dl_percent:  # a new apt-get invocation
                pm_packages, pm_final, pm_percent, pm_current, pm_step = [], set(), -1.0, "", 0.0
                dl_file = dl_total = 0
            words = message.split()
            numbers = [w for w in words if w.isdigit()]
            if len(numbers) >= 2:
                dl_file, dl_total = int(numbers[-2]), int(numbers[-1])
            dl_percent = percent
        elif kind == "pmstatus":
            if percent < pm_percent:  # a new apt-get invocation without downloads
                pm_packages, pm_final, pm_current, pm_step = [], set(), "", 0.0
                dl_file = dl_total = 0
                dl_percent = -1.0
            if pm_percent >= 0 and percent - pm_percent > 1e-3:
                rise = percent - pm_percent
                pm_step = rise if not pm_step else min(pm_step, rise)
            pm_percent = percent
            if name == "dpkg-exec":
                continue
            if name not in pm_packages:
                pm_packages.append(name)
            pm_current = name
            if message.startswith(FINAL_ACTIONS):
                pm_final.add(name)
    if pm_packages:
        estimate = int((round(100 / pm_step) - 1) // 4) if pm_step else 0
        total = max(len(pm_packages), estimate)
        done = max(len(pm_final), math.floor(max(pm_percent, 0.0) / 100 * total + 1e-6))
        return AptProgress(min(done, total), total, "packages", pm_current)
    if dl_total:
        done = dl_total if dl_percent >= 100 else max(dl_file - 1, 0)
        return AptProgress(done, dl_total, "files", "downloading")
    return None
