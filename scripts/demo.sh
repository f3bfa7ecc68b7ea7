#!/usr/bin/env bash
# The main job on the local sandbox fleet: set up, start 3 fresh hosts, gather their facts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
.venv/bin/provision sandbox up --hosts "${HOSTS:-3}"
.venv/bin/provision facts -i inventories/sandbox.yml
