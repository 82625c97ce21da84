"""colgen's pool MIP (solvers/colgen/rules.py, `pool_mip_nodes`): a MIP over every pattern
the solve generated, on small pools with long time limits."""

from __future__ import annotations

from planner.pipeline import plan_scenario
from planner.problem import SolveSettings, build_problem
from planner.verify import verify_plan
from solvers.colgen.solver import (POOL_MIP_MAX_COLUMNS, POOL_MIP_NODES_PER_S, POOL_MIP_S_PER_MODEL,
                                   ColumnGeneration, pool_mip_nodes)
from packing_instances import many_small_models_scenario, small_scenario


def test_the_rule_needs_a_small_pool_and_a_long_enough_limit():
    enough = POOL_MIP_S_PER_MODEL * 50
    assert pool_mip_nodes(50, POOL_MIP_MAX_COLUMNS, enough) == int(POOL_MIP_NODES_PER_S * enough)
    assert pool_mip_nodes(50, POOL_MIP_MAX_COLUMNS + 1, enough) == 0
    assert pool_mip_nodes(50, 100, enough * 0.99) == 0
    assert pool_mip_nodes(50, 100, 2 * enough) == 2 * pool_mip_nodes(50, 100, enough)  # more time, more nodes


def test_the_pool_mip_plan_verifies_is_never_dearer_and_repeats():
    scenario = many_small_models_scenario(12, seed=5, cv=1.0)
    settings = SolveSettings(time_limit_s=12 * POOL_MIP_S_PER_MODEL + 8)
    problem = build_problem(scenario)
    without = ColumnGeneration(pool_mip=False).solve(problem, settings)
    first, second = (plan_scenario(scenario, "colgen", settings) for _ in range(2))  # raises on a bad plan
    assert verify_plan(scenario, first.plan) == []
    with_mip = first.result
    assert with_mip.stats["pool_mip_value"] == with_mip.stats["pool_mip_value"]  # it ran (not nan)
    assert with_mip.value <= without.value + 1e-9
    assert first.result.patterns == second.result.patterns


def test_no_pool_mip_under_the_rules_limit():
    problem = build_problem(small_scenario(3, n_models=4, n_types=2, max_batch=4, cv=1.0))
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=4 * POOL_MIP_S_PER_MODEL * 0.5))
    assert result.stats["pool_mip_s"] == 0.0
    assert result.stats["pool_mip_value"] != result.stats["pool_mip_value"]  # nan: it did not run
