#!/usr/bin/env bash
# The main job on the local sandbox fleet: set up, start 3 fresh hosts, gather their facts, and make
# them Docker hosts (facts → docker install → verify with hello-world).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
.venv/bin/provision sandbox up --hosts "${HOSTS:-3}"
.venv/bin/provision facts -i inventories/sandbox.yml
.venv/bin/provision bootstrap -i inventories/sandbox.yml
