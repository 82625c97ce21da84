#!/usr/bin/env bash
# Run the test suite in the project's virtual environment (built if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
