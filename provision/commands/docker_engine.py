"""The installed Docker Engine: the checks `provision docker verify` runs (and the parser of hello-world's
greeting), and the folders that hold its data. Pure: no I/O."""

from __future__ import annotations

from provision.commands.argv import join

DATA_DIRS = ("/var/lib/docker", "/var/lib/containerd")  # images, containers, volumes: --purge-data only
HELLO_GREETING = "Hello from Docker!"


def version() -> str:
    """Client and server versions in one line (fails when the daemon does not answer)."""
    return "docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}'"


def info() -> str:
    return ("docker info --format 'daemon reachable: {{.ServerVersion}}, storage {{.Driver}}, "
            "cgroup {{.CgroupVersion}}'")


def hello(image: str) -> str:
    """Run the hello-world image once (`verify_hello_image`), removed afterwards; `--` before the image: an
    image value is never read as an option of `docker run`."""
    return join(["docker", "run", "--rm", "--", image], "verify_hello_image")


def parse_hello(text: str) -> tuple[bool, str]:
    """(the container greeted, a one-line summary): its first two lines when it did, its first three when
    it printed something else."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    greeted = any(HELLO_GREETING in line for line in lines)
    return greeted, " / ".join(lines[:2] if greeted else lines[:3])
