#!/usr/bin/env bash
# The main job on the bundled quickstart scenario: plan it, then simulate the plan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mkdir -p out
.venv/bin/planner plan scenarios/quickstart.yaml --out out/quickstart-plan.json
if .venv/bin/planner --help | grep -q simulate; then
  .venv/bin/planner simulate scenarios/quickstart.yaml out/quickstart-plan.json --duration 60
fi
