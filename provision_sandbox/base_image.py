"""The sandbox's base image for locally built application images: `provision-sandbox/busybox:latest`.

No registry can be reached here, so the playbooks' images (playbooks/*/Dockerfile) start FROM a tiny
FROM-scratch image holding Debian's static busybox (sh, httpd, wget, nc, ...), built on this
machine. `provision sandbox up` builds it (cached by recipe). On a machine with registry access,
`FROM busybox` is the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from provision.errors import EnvironmentProblem
from provision_sandbox.upstreams import containers
from provision_sandbox.upstreams.registry import cached_image

BUSYBOX = Path("/bin/busybox")
IMAGE = "provision-sandbox/busybox:latest"
DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/usr/sbin", "/sbin", "/tmp", "/var/www", "/etc"]
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'root:x:0:' > /etc/group"]
LABEL org.opencontainers.image.description="busybox from Debian's busybox-static, built locally by provision's sandbox"
CMD ["/bin/sh"]
"""


def ensure_busybox_image(client, log: Callable[[str], None] = print):
    """Build (once per recipe) and return the local base image."""
    if not BUSYBOX.exists():
        raise EnvironmentProblem("the sandbox's base image needs a static busybox: "
                                 "`apt-get install busybox-static` (scripts/install-deps.sh does it)")
    binary = BUSYBOX.read_bytes()
    return cached_image(client, IMAGE, containers.config_hash(DOCKERFILE, binary),
                        lambda: {"Dockerfile": (DOCKERFILE, 0o644), "busybox": (binary, 0o755)},
                        log, "the base of the sample playbooks' images")
