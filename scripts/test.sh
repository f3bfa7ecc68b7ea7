#!/usr/bin/env bash
# The whole test suite: unit tests and the end-to-end tests on a real sandbox fleet.
# Sets up everything it needs first (scripts/install-deps.sh). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec .venv/bin/python -m pytest "$@"
