#!/usr/bin/env bash
# The main job on the local sandbox fleet: set up, start 3 fresh hosts (the last a SIMULATED GPU host),
# gather their facts, make them Docker hosts (facts → docker install → NVIDIA stage → verify), then
# deploy the ML stack (playbooks/ml-stack.yml, a Compose file; HF_TOKEN becomes its hf_token secret) onto them
# and show its status.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
.venv/bin/provision sandbox up --hosts "${HOSTS:-3}" --gpu-hosts 1
.venv/bin/provision facts -i inventories/sandbox.yml
.venv/bin/provision bootstrap -i inventories/sandbox.yml
HF_TOKEN="${HF_TOKEN:-demo-token-not-a-real-one}" .venv/bin/provision deploy -i inventories/sandbox.yml playbooks/ml-stack.yml
.venv/bin/provision status -i inventories/sandbox.yml
