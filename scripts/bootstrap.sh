#!/usr/bin/env bash
# Build the project's virtual environment in .venv (fresh in CI, or when pyproject.toml
# changed since it was built), then install the package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=".venv/.built-from"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $($PY --version 2>&1) ${PLANNER_EXTRAS:-test}"
if [ -n "${CI:-}" ] || [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== building a fresh virtual environment in .venv" >&2
  rm -rf .venv
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -m pip install --quiet -e ".[${PLANNER_EXTRAS:-test}]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c "import planner, solvers, ortools, pulp, highspy, pandas, typer" \
    || { echo "install failed: see the pip output above" >&2; exit 1; }
  # compile the numba kernels once now (cached next to the sources), so a user's first
  # solve does not spend seconds of its time limit compiling
  echo "== compiling the solver's numba kernels (once)" >&2
  .venv/bin/python -c "
from planner.problem import SolveSettings, build_problem
from planner.scenario import load_scenario
from solvers.registry import get_solver
get_solver('colgen').solve(build_problem(load_scenario('scenarios/quickstart.yaml')), SolveSettings(time_limit_s=60))
" || { echo "the solver failed on the bundled quickstart scenario: see above" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
