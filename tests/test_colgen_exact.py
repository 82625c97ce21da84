"""colgen (the default packing solver) against the exact optimum on small seeded instances.

enum-milp enumerates every pattern, so its optimum is the packing optimum (checked against
direct-milp and direct-cpsat in test_packing_baselines.py). colgen's plan must verify, cost
no less than that optimum (serve no more, for max_throughput), its proven bound must hold,
and it must reach the optimum on most instances.
"""

from __future__ import annotations

import pytest

from planner.pipeline import plan_scenario
from planner.problem import SolveSettings, SolveStatus
from packing_instances import EXACT_SETTINGS, many_small_models_scenario, small_scenario

COLGEN_SETTINGS = SolveSettings(time_limit_s=10.0)
SEEDS = list(range(16))


def _scenario(seed: int):
    """2-3 models on 1-2 types (interference, TP, evenly spaced or Poisson arrivals), and
    every fourth seed four light models that must share one type's GPUs."""
    if seed % 4 == 3:
        return many_small_models_scenario(n_models=4, seed=seed, cv=1.0 if seed % 8 == 3 else 0.0)
    objective = "min_cost" if seed % 2 == 0 else "max_throughput"
    return small_scenario(seed, objective, interference=seed % 4 in (1, 2), with_tp=seed % 3 == 0,
                          n_models=3 if seed % 5 else 2, n_types=1 + seed % 2, max_batch=3,
                          cv=1.0 if seed % 3 == 1 else 0.0)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(b))


def _pair(seed: int):
    scenario = _scenario(seed)
    exact = plan_scenario(scenario, "enum-milp", EXACT_SETTINGS).result
    colgen = plan_scenario(scenario, "colgen", COLGEN_SETTINGS).result  # raises if the plan fails verify_plan
    return scenario, exact, colgen


@pytest.mark.parametrize("seed", SEEDS)
def test_colgen_never_beats_the_optimum_and_its_bound_holds(seed):
    scenario, exact, colgen = _pair(seed)
    if exact.status is SolveStatus.INFEASIBLE:
        assert colgen.status is SolveStatus.INFEASIBLE
        return
    assert exact.status is SolveStatus.OPTIMAL
    assert colgen.status is not SolveStatus.INFEASIBLE, "colgen found no plan where one exists"
    if scenario.objective == "min_cost":
        assert colgen.value >= exact.value * (1 - 1e-6), (colgen.value, exact.value)
        assert colgen.bound <= exact.value * (1 + 1e-6), (colgen.bound, exact.value)
    else:
        assert colgen.value <= exact.value * (1 + 1e-6), (colgen.value, exact.value)
        assert colgen.bound >= exact.value * (1 - 1e-6), (colgen.bound, exact.value)
    if colgen.status is SolveStatus.OPTIMAL:
        assert _rel(colgen.value, exact.value) <= 1e-4 + COLGEN_SETTINGS.gap_target


def test_colgen_reaches_the_optimum_on_most_small_instances():
    hits, feasible = 0, 0
    for seed in SEEDS:
        _, exact, colgen = _pair(seed)
        if exact.status is SolveStatus.INFEASIBLE:
            continue
        feasible += 1
        hits += _rel(colgen.value, exact.value) <= 1e-6
    assert feasible >= 10, feasible
    assert hits >= 0.75 * feasible, (hits, feasible)
