"""The one-round-trip probe of a redeploy: what a host holds of a stack, read with the docker CLI on the host.

One script (run as root, read-only) prints named sections (commands.probes format), parsed by
provision.facts.deploy_state:

- ``lock``: the host lock (commands.deploy_host.read_lock): ``free``, or ``held`` and its holder;
- ``containers``: one JSON line per container that carries the stack's label or holds one of the given
  names (NAME, NAME.next, NAME.previous): id, name, labels, state, exit code, health, image id; the
  section's status is that of ``docker ps`` (not 0: the engine did not answer);
- ``networks`` / ``volumes``: one JSON line (name, labels) per given name that exists;
- ``images``: one line per given reference, in order: the image id the name resolves to, or ``-``;
- ``markers``: one line per given bind-folder sync marker, in order: ``=`` and the digest it holds
  (nothing after ``=``: never synced);
- ``folders``: one line per given folder, in order: ``yes`` when it is a directory, else ``no``.

Missing names make docker print ``Error: No such ...`` lines (stderr is merged); the parser skips them.
Nothing here writes: a no-op redeploy neither takes the host lock nor opens the Docker SSH transport.
"""

from __future__ import annotations

import shlex

from provision.commands.argv import quote
from provision.commands.deploy_host import read_lock
from provision.commands.probes import probe_script

__all__ = ["CONTAINER_FORMAT", "LABEL_STACK", "NAMED_FORMAT", "deploy_state"]

LABEL_STACK = "io.provision.stack"  # as deploy.container_spec.LABEL_STACK (commands/ imports nothing above it)

#: One JSON object per container (health: null when the container has no healthcheck).
CONTAINER_FORMAT = ('{"id":{{json .Id}},"name":{{json .Name}},"labels":{{json .Config.Labels}},'
                    '"status":{{json .State.Status}},"exit_code":{{json .State.ExitCode}},'
                    '"health":{{with index .State "Health"}}{{json .Status}}{{else}}null{{end}},'
                    '"image":{{json .Image}}}')
#: One JSON object per network or volume.
NAMED_FORMAT = '{"name":{{json .Name}},"labels":{{json .Labels}}}'


def _names(items: list[str], what: str = "name") -> str:
    return " ".join(quote(item, what) for item in items)


def deploy_state(stack: str, containers: list[str], networks: list[str], volumes: list[str], images: list[str],
                 markers: list[str], folders: list[str]) -> str:
    """The probe script for one host's part of STACK: the containers named CONTAINERS or labelled with the
    stack, the NETWORKS and VOLUMES that exist, the id each of IMAGES names, each sync MARKER's digest and
    whether each of FOLDERS is a directory."""
    fmt = shlex.quote(CONTAINER_FORMAT)
    label = quote(f"label={LABEL_STACK}={stack}", "stack name")
    listed = (f"ids=$(docker ps -aq --no-trunc --filter {label}) || exit $?; "
              + ("" if containers else "[ -n \"$ids\" ] || exit 0; ") +
              f"docker container inspect --format {fmt} $ids {_names(containers)}; exit 0")
    sections = [("lock", read_lock()), ("containers", listed)]
    named = shlex.quote(NAMED_FORMAT)
    sections.append(("networks", f"docker network inspect --format {named} {_names(networks)}; exit 0"
                     if networks else "true"))
    sections.append(("volumes", f"docker volume inspect --format {named} {_names(volumes)}; exit 0"
                     if volumes else "true"))
    sections.append(("images", "; ".join(f"i=$(docker image inspect --format '{{{{.Id}}}}' {quote(ref, 'image reference')} "
                                         "2>/dev/null) && [ -n \"$i\" ] || i=-; printf '%s\\n' \"$i\""
                                         for ref in images) or "true"))
    sections.append(("markers", "; ".join(f"printf '=%s\\n' \"$(cat {quote(m, 'sync marker path')} 2>/dev/null)\""
                                          for m in markers) or "true"))
    sections.append(("folders", "; ".join(f"if [ -d {quote(f, 'folder path')} ]; then echo yes; else echo no; fi"
                                          for f in folders) or "true"))
    return probe_script(sections)
