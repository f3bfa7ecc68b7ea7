#!/usr/bin/env bash
# Everything provision's demo and tests need on a fresh Debian/Ubuntu machine, installed and started:
#   docker.io (a local Docker engine for the sandbox fleet), debootstrap (builds the host image),
#   vagrant (the Vagrantfile's machines), a Python venv in .venv with provision and its test extra.
#   Idempotent; run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_pkgs=()
[ -x /usr/sbin/dockerd ] || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need_pkgs+=(debootstrap)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
# The sandbox's offline upstreams: a signed apt repo laid out like download.docker.com (dpkg-dev,
# apt-utils, gnupg), a FROM-scratch hello-world (gcc) and the Hub mirror (docker-registry).
command -v dpkg-scanpackages >/dev/null 2>&1 || need_pkgs+=(dpkg-dev)
command -v apt-ftparchive >/dev/null 2>&1 || need_pkgs+=(apt-utils)
command -v gpg >/dev/null 2>&1 || need_pkgs+=(gnupg)
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc)
[ -x /usr/bin/docker-registry ] || need_pkgs+=(docker-registry)
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)  # the SIMULATED cuda image's shell
# Vagrant for the Vagrantfile's practice machines (docker provider); --no-install-recommends below keeps
# it to a few packages (with recommends it pulls in ~420).
[ -x /usr/bin/vagrant ] || need_pkgs+=(vagrant)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# Use Debian's docker client: another, newer `docker` may sit earlier on PATH and be only a client.
DOCKER=/usr/bin/docker
if ! $DOCKER info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl start docker
  else
    echo "install-deps: starting dockerd (no systemd here), log in /var/log/dockerd.log"
    $SUDO sh -c 'setsid nohup /usr/sbin/dockerd >/var/log/dockerd.log 2>&1 < /dev/null &'
  fi
  for _ in $(seq 1 120); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.5; done
  $DOCKER info >/dev/null 2>&1 || { echo "install-deps: dockerd did not start; see /var/log/dockerd.log" >&2; tail -20 /var/log/dockerd.log >&2 || true; exit 1; }
fi

# systemd hosts each take ~5 inotify instances; the default 128 caps a machine at ~20 hosts.
limit=$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)
if [ "$limit" -lt 512 ]; then
  $SUDO sysctl -qw fs.inotify.max_user_instances=512 || echo "install-deps: could not raise fs.inotify.max_user_instances (now $limit)"
fi

if [ ! -x .venv/bin/provision ] || [ pyproject.toml -nt .venv/.installed ]; then
  python3 -m venv .venv
  if ! .venv/bin/pip install -e '.[test]' > .venv/pip-install.log 2>&1; then
    echo "install-deps: pip install failed:" >&2; tail -30 .venv/pip-install.log >&2; exit 1
  fi
  .venv/bin/provision --help >/dev/null
  touch .venv/.installed
fi
echo "install-deps: ready (docker $($DOCKER version --format '{{.Server.Version}}'), $(.venv/bin/python --version))"
