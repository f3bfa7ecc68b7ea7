"""The sandbox host image: Debian 12 with systemd + sshd, built with debootstrap, cached in Docker.

A sandbox host is a faithful fresh machine: systemd as PID 1, sshd, apt, sudo. Host keys and the
machine-id are NOT baked in: every container generates its own at first boot, as a new VM would.
The image carries a label with a hash of this recipe; it is rebuilt only when the recipe changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from provision.errors import EnvironmentProblem
from provision_sandbox.names import RECIPE_LABEL

IMAGE = "provision-sandbox/debian-host:12"
SUITE = "bookworm"
SUDO_USER = "sandbox"

INCLUDE = [
    "openssh-server", "systemd", "systemd-sysv", "dbus", "sudo", "ca-certificates", "curl",
    "gnupg", "iproute2", "procps", "kmod", "pciutils", "python3", "less",
]

# Runs inside the debootstrapped tree (chroot) once, at image build time.
CUSTOMIZE = f"""set -eu
useradd --create-home --shell /bin/bash --groups sudo {SUDO_USER}
install -d -m 700 /root/.ssh
install -d -m 700 -o {SUDO_USER} -g {SUDO_USER} /home/{SUDO_USER}/.ssh
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
cat > /etc/systemd/system/sandbox-ssh-keygen.service <<'UNIT'
[Unit]
Description=Generate this host's own SSH host keys at first boot (sandbox host)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/sandbox-ssh-keygen.service /etc/systemd/system/multi-user.target.wants/
ln -sf /dev/null /etc/systemd/system/getty@tty1.service
ln -sf /dev/null /etc/systemd/system/console-getty.service
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
"""


def recipe_hash() -> str:
    text = "\n".join([SUITE, ",".join(INCLUDE), CUSTOMIZE])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def image_is_current(client) -> bool:
    import docker.errors

    try:
        image = client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get(RECIPE_LABEL) == recipe_hash()


def debootstrap_argv(target: Path, mirror: str) -> list[str]:
    return [
        "debootstrap", "--variant=minbase", "--include=" + ",".join(INCLUDE),
        SUITE, str(target), mirror,
    ]


def build_host_image(client, mirror: str, log: Callable[[str], None] = print) -> str:
    """debootstrap + customise + `docker import`; returns the image name. Needs root and debootstrap."""
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem(
            "debootstrap is not installed: `apt-get install debootstrap` (scripts/install-deps.sh does it)"
        )
    with tempfile.TemporaryDirectory(prefix="provision-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        log(f"building sandbox host image {IMAGE} with debootstrap from {mirror} (about a minute, cached afterwards)")
        _run(debootstrap_argv(root, mirror), "debootstrap")
        _run(["chroot", str(root), "/bin/sh", "-c", CUSTOMIZE], "customising the host image")
        tarball = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tarball), "."], "packing the host image")
        repository, tag = IMAGE.rsplit(":", 1)
        changes = ['CMD ["/sbin/init"]', f"LABEL {RECIPE_LABEL}={recipe_hash()}", "ENV container=docker"]
        client.api.import_image(src=str(tarball), repository=repository, tag=tag, changes=changes)
    log(f"built {IMAGE}")
    return IMAGE


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode}):\n{tail}")
