"""The one-round-trip probe of a redeploy: what a host holds of a stack, read with the docker CLI on the host.

One script (run as root, read-only) prints named sections (commands.probes format), parsed by
provision.facts.deploy_state. It starts the docker CLI twice (each start of the Go binary costs the host
30-60 ms of CPU), whatever the number of names asked for:

- ``lock``: the host lock (commands.deploy_host.read_lock): ``free``, or ``held`` and its holder;
- ``objects``: first a line ``containers`` followed by the names of the containers that carry the stack's
  label or hold one of the given names (NAME, NAME.next, NAME.previous), picked by the shell from one
  ``docker ps -a`` of every container (the section's status is that of ``docker ps``: not 0, the engine did
  not answer); then one generic ``docker inspect --format '{{json .}}'`` of, in this order, those
  containers, the given networks, volumes and image references: one JSON line per object found, in the
  order asked, then one ``Error: No such object: NAME`` line per name not found (stderr is merged; docker's
  exit status is ignored). Containers that do not exist are not asked for: a name the generic inspect does
  not find costs the engine about 15 ms of CPU (measured on Docker 20.10; one it finds, under 1 ms: the
  CLI then tries every kind, the swarm ones after asking the engine whether it is a swarm manager), and a
  converged host has no NAME.next or NAME.previous. A generic inspect resolves each name to the first kind
  that has it (container, image, network, ..., volume), so the parser checks each object's kind and name
  against what was asked, and any doubt is a problem (the full path decides);
- ``markers``: one line per given bind-folder sync marker, in order: ``=`` and the first line of the
  marker file, `` ...`` appended when more follows (nothing after ``=``: never synced); read with the
  shell's ``read``, no fork;
- ``folders``: one line per given folder, in order: ``yes`` when it is a directory, else ``no``.

Nothing here writes: a no-op redeploy neither takes the host lock nor opens the Docker SSH transport.
"""

from __future__ import annotations

from provision.commands.argv import checked, quote
from provision.commands.deploy_host import read_lock
from provision.commands.probes import probe_script

__all__ = ["INSPECT_FORMAT", "LABEL_STACK", "deploy_state", "go_string"]

LABEL_STACK = "io.provision.stack"  # as deploy.container_spec.LABEL_STACK (commands/ imports nothing above it)

#: The whole object, whatever its kind (a typed template would fail on the other kinds).
INSPECT_FORMAT = "'{{json .}}'"


def go_string(value: str) -> str:
    """VALUE as a Go string literal (for a template): printable ASCII as it is, anything else escaped."""
    return '"' + "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else f"\\U{ord(c):08x}" for c in value) + '"'


def _names(items: list[str], what: str) -> list[str]:
    return [quote(item, what) for item in items]


def _marker(path: str) -> str:
    """`=` and the marker's first line (` ...` appended when more follows; nothing when it does not exist)."""
    return (f"m=; n=; {{ IFS= read -r m; IFS= read -r n || [ -n \"$n\" ]; }} 2>/dev/null < "
            f"{quote(path, 'sync marker path')} && m=\"$m ...\"; printf '=%s\\n' \"$m\"")


def deploy_state(stack: str, containers: list[str], networks: list[str], volumes: list[str], images: list[str],
                 markers: list[str], folders: list[str]) -> str:
    """The probe script for one host's part of STACK: the containers named CONTAINERS or labelled with the
    stack, the NETWORKS and VOLUMES that exist, the id each of IMAGES names, each sync MARKER's digest and
    whether each of FOLDERS is a directory."""
    listing = quote("{{if eq (.Label " + go_string(LABEL_STACK) + ") " + go_string(checked(stack, "stack name"))
                    + "}}L{{else}}-{{end}} {{.Names}}", "stack name")
    pick = "L\\ *) c=\"$c $n\";;"
    if containers:
        pick += f" *) case {quote(' ' + ' '.join(checked(n, 'name') for n in containers) + ' ')} in *\" $n \"*) c=\"$c $n\";; esac;;"
    names = _names(networks, "name") + _names(volumes, "name") + _names(images, "image reference")
    objects = (f"out=$(docker ps -a --format {listing}) || exit $?; set -f; IFS='\n'; c=; "
               f"for l in $out; do n=${{l#* }}; case $l in {pick} esac; done; unset IFS; echo containers$c; "
               + ("" if names else "[ -n \"$c\" ] || exit 0; ")
               + f"docker inspect --format {INSPECT_FORMAT} $c {' '.join(names)}; exit 0")
    return probe_script([
        ("lock", read_lock()),
        ("objects", objects),
        ("markers", "; ".join(_marker(m) for m in markers) or "true"),
        ("folders", "; ".join(f"if [ -d {quote(f, 'folder path')} ]; then echo yes; else echo no; fi"
                              for f in folders) or "true"),
    ])
