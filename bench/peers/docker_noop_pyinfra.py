"""The pyinfra side of "Docker install no-op" (bench/side_by_side.py): the same state as
bench/peers/docker_noop.yml (keyring, deb822 repository, the five packages, daemon.json, the service),
run against hosts where `provision docker install` already did it. The repository file and daemon.json
come, as provision wrote them, from the file named by $BENCH_DOCKER_VARS (JSON)."""

import io
import json
import os

from pyinfra.operations import apt, files, systemd

VARS = json.loads(open(os.environ["BENCH_DOCKER_VARS"]).read())

files.directory(name="keyrings folder", path="/etc/apt/keyrings", mode="755")
files.download(name="Docker's apt key", src=VARS["docker_gpg_url"], dest="/etc/apt/keyrings/docker.asc")
files.put(name="Docker's apt repository (deb822)", src=io.StringIO(VARS["docker_sources"]),
          dest="/etc/apt/sources.list.d/docker.sources")
apt.packages(name="Docker's packages",
             packages=["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"])
files.put(name="daemon.json", src=io.StringIO(VARS["docker_daemon_json"]), dest="/etc/docker/daemon.json")
systemd.service(name="the docker service", service="docker", running=True, enabled=True)
