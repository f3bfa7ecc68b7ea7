"""Build a one-round-trip probe script from named shell snippets, in the facts script's section format.

Each snippet runs in a subshell with stdin from /dev/null and stderr merged; its exit status is
recorded. The output is read back with provision.facts.script.split_sections.
"""

from __future__ import annotations

from provision.facts.script import BEGIN_MARKER, END_MARKER, FACT_MARKER, RC_MARKER

PREAMBLE = 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'


def probe_script(sections: list[tuple[str, str]]) -> str:
    lines = [PREAMBLE, f"echo '{BEGIN_MARKER} 1'"]
    for name, snippet in sections:
        lines.append(f"echo '{FACT_MARKER}{name}'")
        # captured, then printed with a newline of its own: a file without a final newline must not
        # glue its last line to the marker
        lines.append(f"_out=$( ( {snippet}\n) </dev/null 2>&1 ); _rc=$?")
        lines.append('[ -n "$_out" ] && printf \'%s\\n\' "$_out"')
        lines.append(f"echo \"{RC_MARKER}{name} $_rc\"")
    lines.append(f"echo '{END_MARKER}'")
    return "\n".join(lines) + "\n"
