"""The throughput dive (solvers/colgen/throughput_dive.py): max_throughput plans at fleet scale.

Its plans must keep the budget and the inventory (rounding never breaks them) and serve no
more than the exact optimum; with fairness, stage 2 keeps a plan that serves every fair share."""

from __future__ import annotations

import math

import pytest

from packing_instances import EXACT_SETTINGS, small_scenario
from planner.generate import generate_scenario
from planner.pipeline import plan_scenario
from planner.plan import extract_plan
from planner.problem import PatternCount, SolveSettings, build_problem, patterns_cost, planned_capacity_rps
from planner.scenario import Scenario
from planner.verify import verify_plan
from solvers.bounds import throughput_upper_bound
from solvers.colgen import solver as colgen
from solvers.colgen import fair_share
from solvers.colgen.columns import Index
from solvers.colgen.master import Master
from solvers.colgen.solver import ColumnGeneration
from solvers.colgen.throughput_dive import throughput_dive


def _served(problem, patterns) -> float:
    capacity = planned_capacity_rps(problem, patterns)
    return sum(m.priority * min(m.demand_rps, capacity[m.name]) for m in problem.demanded_models)


def _within_limits(problem, patterns) -> bool:
    return ColumnGeneration._feasible(problem, patterns)  # inventory, nodes, budget (demand not needed)


def _singletons_only(rest, sub, columns, stop_at, hurry):
    """A dive without pricing: each residual master gets its first columns only."""
    sub.add_columns(columns)


@pytest.mark.parametrize("seed", range(1, 24, 2))
def test_dive_plans_keep_every_limit_and_serve_no_more_than_the_optimum(seed):
    """Small max_throughput instances (sharing, interference, TP, bursty arrivals): the dive's
    plan, over singletons alone and with colgen's pricing, keeps the budget and inventory and
    serves at most enum-milp's optimum."""
    scenario = small_scenario(seed, "max_throughput", interference=seed % 4 in (1, 2), with_tp=seed % 3 == 0,
                              n_models=3 if seed % 5 else 2, n_types=1 + seed % 2, max_batch=3,
                              cv=1.0 if seed % 3 == 1 else 0.0)
    problem = build_problem(scenario)
    optimum = plan_scenario(scenario, "enum-milp", EXACT_SETTINGS).result.value
    plan = throughput_dive(problem, Index.of(problem), [], _singletons_only, math.inf)
    assert _within_limits(problem, plan)
    assert _served(problem, plan) <= optimum * (1 + 1e-6) + 1e-6
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=10.0))
    assert result.stats["dive_rule"] == "throughput-careful"
    assert result.value <= optimum * (1 + 1e-6) + 1e-6
    assert result.value >= result.stats["dive_value"] - 1e-3  # stats are rounded to 3 decimals


def _generated(models: int, gpus: int, types: int, seed: int) -> Scenario:
    return Scenario.model_validate(generate_scenario(models, gpus, types, seed, objective="max_throughput"))


@pytest.mark.parametrize("seed", [0, 1])
def test_dive_on_a_generated_fleet_stays_within_budget_and_never_serves_less(seed, monkeypatch):
    """60 models on 96 GPUs, budget 50-70% of the fluid cost (it binds): the dive alone over
    singletons stays within budget; colgen's plan verifies, is the better of the dive's and
    the integer master's, and serves at least what colgen serves without the dive (measured:
    2.2% -> 1.1% and 3.6% -> 2.9% from the bound)."""
    scenario = _generated(60, 96, 4, seed)
    problem = build_problem(scenario)
    alone = throughput_dive(problem, Index.of(problem), [], _singletons_only, math.inf)
    assert alone and _within_limits(problem, alone)
    assert patterns_cost(problem, alone) <= problem.budget_usd_per_hour + 1e-6
    settings = SolveSettings(time_limit_s=30.0)
    result = ColumnGeneration().solve(problem, settings)
    assert verify_plan(scenario, extract_plan(problem, result)) == []
    assert result.value == pytest.approx(max(result.stats["dive_value"], result.stats["mip_value"]), abs=1e-2)
    assert result.bound <= throughput_upper_bound(problem) + 1e-6
    monkeypatch.setattr(ColumnGeneration, "_throughput_dive", lambda self, *args: ())
    without = ColumnGeneration().solve(problem, settings)
    assert math.isnan(without.stats["dive_value"])
    assert without.stats["mip_value"] == pytest.approx(result.stats["mip_value"])  # the same search
    assert result.value >= without.value - 1e-6
    assert result.value > without.value  # on these two the dive serves more


def test_dive_beats_the_integer_master_alone_on_a_200_model_fleet():
    """200 models on 512 GPUs: with the dive colgen serves more than the integer master over
    the root's columns did before it (measured at 10 s: 1.3-2.1% from the bound without it,
    0.36-0.97% with it) and stays within 1% of its proven bound."""
    scenario = _generated(200, 512, 6, 3)
    problem = build_problem(scenario)
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=30.0))
    assert result.stats["dive_rule"] == "throughput-careful"
    assert math.isnan(result.stats["mip_value"])  # a large master: the dive's plan is the plan
    assert (result.bound - result.value) / result.bound < 0.01
    assert verify_plan(scenario, extract_plan(problem, result)) == []


def test_presolve_off_in_residual_masters():
    """Residual masters solve without HiGHS's presolve (47 s on one 444-row LP)."""
    scenario = small_scenario(3, "max_throughput")
    problem = build_problem(scenario)
    master = Master(problem, Index.of(problem), presolve=False)
    assert master.highs.getOptionValue("presolve")[1] == "off"


def test_the_dive_prices_like_the_careful_dive_then_the_fast_one():
    assert colgen.throughput_dive_settings(colgen.CAREFUL_DIVE_MAX_MODELS) is colgen.CAREFUL_DIVE
    assert colgen.throughput_dive_settings(colgen.CAREFUL_DIVE_MAX_MODELS + 1) is colgen.FAST_DIVE


def test_the_dive_keeps_its_start_plan():
    """`start` (fairness: a plan serving every fair share) stays in the dive's plan, whole."""
    scenario = _generated(40, 64, 4, 2)
    problem = build_problem(scenario)
    index = Index.of(problem)
    start = throughput_dive(problem, index, [], _singletons_only, math.inf)[:3]
    plan = dict((pc.pattern, pc.count) for pc in throughput_dive(problem, index, [], _singletons_only, math.inf, start))
    assert all(plan.get(pc.pattern, 0) >= pc.count for pc in start)
    whole = tuple(PatternCount(p, n) for p, n in plan.items())
    assert _within_limits(problem, whole) and patterns_cost(problem, whole) <= problem.budget_usd_per_hour + 1e-6


def test_fairness_keeps_a_plan_and_every_fair_share_on_fleet_50x64():
    """fleet-50x64 at $85/h with fairness: stage 2's master used to start without stage 1's
    patterns, its LP with the fair-share floors was infeasible and colgen answered
    `infeasible`. Now stage 2 starts from stage 1's plan (its patterns and the plan itself)
    and dives from it: a verified plan that serves every model at least the fair share."""
    from pathlib import Path

    from planner.scenario import load_scenario

    scenario = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "fleet-50x64.yaml")
    scenario = scenario.model_copy(update={"objective": "max_throughput", "budget_usd_per_hour": 85.0, "fairness": True})
    problem = build_problem(scenario)
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=10.0))
    assert result.patterns and math.isfinite(result.value)
    assert verify_plan(scenario, extract_plan(problem, result)) == []
    capacity = planned_capacity_rps(problem, result.patterns)
    share = result.stats["fair_share"]
    assert share > 0.5
    assert all(capacity[m.name] >= (share - 1e-3) * m.demand_rps for m in problem.demanded_models)  # stats: 3 decimals
    assert result.stats["dive_rule"] == "throughput-careful" and math.isfinite(result.stats["dive_value"])


def test_fairness_without_a_fair_share_plan_still_plans(monkeypatch):
    """When the share search gets no min_cost plan of the floors, stage 1's max-share MIP
    (up to FAIR_MIP_MAX_MODELS models) gives the fair plan, and stage 2 dives from it: a
    fair, verified plan all the same."""
    scenario = small_scenario(5, "max_throughput", fairness=True, n_models=4, n_types=2)
    problem = build_problem(scenario)
    monkeypatch.setattr(fair_share, "fair_share_plan", lambda *args: ())
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=10.0))
    assert result.patterns and result.stats["fair_share"] > 0
    assert verify_plan(scenario, extract_plan(problem, result)) == []
    capacity = planned_capacity_rps(problem, result.patterns)
    share = result.stats["fair_share"] - 1e-3  # (stats keep 3 decimals)
    assert all(capacity[m.name] >= share * m.demand_rps for m in problem.demanded_models)
