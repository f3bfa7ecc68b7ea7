"""Moved: the probe-script builder is provision.commands.probes.probe_script (a command), read back with
provision.facts.script.split_sections. This name stays for callers not yet moved."""

from __future__ import annotations

from provision.commands.probes import PREAMBLE, probe_script

__all__ = ["PREAMBLE", "probe_script"]
