"""Fairness, stage 1 (solvers/colgen/fair_share.py): the search for the largest share of
demand every model can get within the budget, the trim that brings a plan within it, and
colgen's fair plans at fleet scale."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from packing_instances import EXACT_SETTINGS, small_scenario
from planner.pipeline import plan_scenario
from planner.plan import extract_plan
from planner.problem import PatternCount, SolveSettings, SolveStatus, build_problem, patterns_cost, planned_capacity_rps
from planner.scenario import load_scenario
from planner.verify import verify_plan
from solvers.colgen.columns import Index
from solvers.colgen.fair_share import (PLAN_SHARE_TOLERANCE, FloorsLp, fair_share_of, fair_share_upper_bound,
                                       floors_problem, inside_bracket, largest_share_within, trim_to_budget)
from solvers.colgen.pricing import singleton_columns
from solvers.colgen.progress import Progress
from solvers.colgen.rules import FAIR_MAX_PLANS, fair_share_plans
from solvers.colgen.solver import ColumnGeneration

ROOT = Path(__file__).resolve().parents[1]


def _affine_with_a_jump(fixed: float, slope: float):
    """cost(0) = 0; cost(z) = fixed + slope z above: what presence rows do to the LP."""
    calls = []

    def cost(z):
        calls.append(z)
        return 0.0 if z <= 0 else fixed + slope * z
    return cost, calls


def test_search_finds_the_share_whose_cost_meets_the_target():
    cost, calls = _affine_with_a_jump(10.0, 100.0)
    found = largest_share_within(cost, 60.0, 1.0, evaluations=12, tolerance=0.002)
    assert cost(found.share) <= 60.0
    assert 0.5 * (1 - 0.01) <= found.share <= 0.5  # the root is 0.5
    assert found.evaluations <= 12


def test_search_returns_the_top_when_it_fits():
    cost, calls = _affine_with_a_jump(1.0, 10.0)
    found = largest_share_within(cost, 100.0, 0.8)
    assert found.share == 0.8 and found.evaluations == 1 and calls == [0.8]


def test_search_finds_nothing_when_every_share_costs_too_much():
    cost, _ = _affine_with_a_jump(50.0, 10.0)
    assert largest_share_within(cost, 40.0, 1.0).share == 0.0


def test_search_halves_below_shares_the_inventory_cannot_serve():
    """cost inf above 0.3 (no plan: the LP needs its artificials)."""
    found = largest_share_within(lambda z: math.inf if z > 0.3 else 100.0 * z, 50.0, 1.0, evaluations=10)
    assert 0.25 <= found.share <= 0.3


def test_search_stops_on_a_cost_without_an_answer():
    """A nan cost (an LP cut short) ends the search with the bracket it had: `above` is
    `top` or a share seen over the target, never nan."""
    found = largest_share_within(lambda z: math.nan if z > 0.5 else 100.0 * z, 80.0, 1.0)
    assert found.share == 0.0 and found.above == 1.0
    nan_between = largest_share_within(lambda z: math.nan if 0.3 < z < 0.9 else 100.0 * z, 50.0, 1.0,
                                       tolerance=0.0, low=0.1)
    assert not math.isnan(nan_between.above) and nan_between.share <= 0.5 < nan_between.above
    assert largest_share_within(lambda z: 10.0 * z, 0.0, 1.0, low=0.2).share == 0.2  # no budget to spend


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 50.0), min_size=1, max_size=6), st.floats(0.0, 100.0), st.floats(1.0, 300.0),
       st.floats(0.05, 1.0))
def test_search_never_returns_a_share_over_the_target(steps, fixed, target, top):
    """Any nondecreasing piecewise-linear cost with cost(0) = 0: the share found costs at
    most the target, and lies in [0, top]."""
    knots = [i / len(steps) for i in range(1, len(steps) + 1)]

    def cost(z):
        if z <= 0:
            return 0.0
        value, last = fixed, 0.0
        for knot, slope in zip(knots, steps):
            value += slope * (min(z, knot) - last)
            if z <= knot:
                break
            last = knot
        return value
    found = largest_share_within(cost, target, top)
    assert 0.0 <= found.share <= top
    assert found.share == 0.0 or cost(found.share) <= target + 1e-9


def test_search_reports_the_bracket_it_ends_with():
    """`above` is a share whose cost is over the target: the root lies in [share, above]."""
    cost, _ = _affine_with_a_jump(10.0, 100.0)
    found = largest_share_within(cost, 60.0, 1.0, evaluations=20, tolerance=0.0, low=0.1, share_tolerance=0.001)
    assert found.share <= 0.5 < found.above and found.above - found.share <= 0.001 + 1e-12
    assert cost(found.above) > 60.0


@pytest.mark.parametrize("seed", range(12))
def test_fair_share_bound_is_never_below_the_exact_fair_share(seed):
    """The proven upper bound on the fair share (replica relaxation of the floors, its LP, and
    with the stronger tiers of best_cost_bound) is at least enum-milp's optimal smallest
    share, on small instances with sharing, TP and interference; and at least the share
    colgen's plan serves."""
    scenario = small_scenario(seed, "max_throughput", fairness=True, interference=seed % 2 == 1,
                              with_tp=seed % 3 == 0, n_models=2 + seed % 3, n_types=1 + seed % 2, max_batch=3)
    problem = build_problem(scenario)
    exact = plan_scenario(scenario, "enum-milp", EXACT_SETTINGS).result
    if not exact.patterns:
        pytest.skip("no plan for enum-milp to compare with")
    optimum = fair_share_of(problem, exact.served_rps)
    bound = fair_share_upper_bound(problem, 0.0)
    assert bound >= optimum - 1e-6, (bound, optimum)
    strong = fair_share_upper_bound(problem, 0.0, strong_evaluations=3)  # the replica MIP's tier
    assert optimum - 1e-6 <= strong <= bound, (strong, optimum, bound)
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=10.0))
    assert result.stats["fair_share_bound"] >= result.stats["fair_share"] - 1e-6


def test_fairness_without_a_budget_is_bound_by_the_inventory():
    """No budget, an inventory too small for every model's demand: the share search finds the
    share the inventory serves (LP costs of unservable shares are inf) and colgen plans it."""
    for seed in range(4):
        scenario = small_scenario(seed, "max_throughput", fairness=True, n_models=4, n_types=2)
        demand = [d.model_copy(update={"rate_rps": d.rate_rps * 20}) for d in scenario.demand]
        scenario = scenario.model_copy(update={"budget_usd_per_hour": None, "demand": demand})
        problem = build_problem(scenario)
        result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=10.0))
        assert result.patterns, seed
        assert verify_plan(scenario, extract_plan(problem, result)) == []
        share = fair_share_of(problem, planned_capacity_rps(problem, result.patterns))
        # (stats keep 3 decimals)
        assert 0.0 < share < 1.0 and share >= result.stats["fair_share"] - 1e-3
        assert result.stats["fair_share"] <= result.stats["fair_share_bound"] + 1e-9


def _two_model_plan():
    """m0 on one more dedicated GPU than its demand needs, m1 on one GPU."""
    problem = build_problem(small_scenario(3, "max_throughput", n_models=2, n_types=1))
    index = Index.of(problem)
    columns = {index.models[c.model_indices[0]]: c for c in singleton_columns(problem, index)}
    extra = math.ceil(index.demand_rps[0] / columns["m0"].coverage_rps[0]) + 1
    return problem, columns, (PatternCount(columns["m0"].pattern, extra), PatternCount(columns["m1"].pattern, 1))


def test_trim_takes_out_the_gpu_whose_members_keep_their_share():
    problem, columns, plan = _two_model_plan()
    budget = patterns_cost(problem, plan) - columns["m0"].cost_usd_per_hour
    trimmed = dict((pc.pattern, pc.count) for pc in trim_to_budget(problem, plan, budget))
    assert trimmed[columns["m1"].pattern] == 1  # m1 keeps its only GPU
    assert trimmed[columns["m0"].pattern] == plan[0].count - 1
    assert fair_share_of(problem, planned_capacity_rps(problem, tuple(
        PatternCount(p, n) for p, n in trimmed.items()))) > 0.99


def test_trim_keeps_the_budget_and_never_adds():
    problem, _, plan = _two_model_plan()
    for share in (0.9, 0.5, 0.1, 0.0):
        budget = share * patterns_cost(problem, plan)
        trimmed = trim_to_budget(problem, plan, budget)
        assert patterns_cost(problem, trimmed) <= budget + 1e-9
        before = dict((pc.pattern, pc.count) for pc in plan)
        assert all(pc.count <= before[pc.pattern] for pc in trimmed)


def test_floors_lp_cost_grows_with_the_share():
    """C_LP(z), evaluated from the largest share down (columns only accumulate), never
    rises as the share falls; C_LP(0) is 0."""
    problem = build_problem(small_scenario(4, "max_throughput", n_models=6, n_types=3))
    cg = ColumnGeneration()
    pool: dict = {}

    def grow(master):
        lp, _, _ = cg._generate(floors.top, floors.index, master, pool, Progress(), math.inf, prove=False, warm=None)
        return lp

    floors = FloorsLp(problem, 1.0, grow)
    cg._add(floors.master, floors.top, floors.index, pool, singleton_columns(floors.top, floors.index))
    costs = [floors.cost(z) for z in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)]
    assert all(a >= b - 1e-6 for a, b in zip(costs, costs[1:])), costs
    assert costs[-1] == 0.0 and costs[0] > 0.0


def test_floors_problem_scales_demand_and_drops_the_budget():
    problem = build_problem(small_scenario(4, "max_throughput", fairness=True, n_models=3))
    floors = floors_problem(problem, 0.25)
    assert floors.objective == "min_cost" and floors.budget_usd_per_hour is None and not floors.fairness
    assert [m.demand_rps for m in floors.models] == [0.25 * m.demand_rps for m in problem.models]


def test_fairness_on_fleet_200x512_is_deterministic_and_fairer_than_the_max_share_mip():
    """fleet-200x512 at $740/h: the max-share MIP that stage 1 used before stopped on the
    clock at a share of 44% (10 s); the share search plans at least 50% for every model,
    within the budget, on work limits only (status feasible), and twice the same plan. (A
    30 s limit, so that a slow machine does not reach the clock; the work takes about 7 s.)"""
    scenario = load_scenario(ROOT / "scenarios" / "fleet-200x512.yaml")
    scenario = scenario.model_copy(update={"objective": "max_throughput", "budget_usd_per_hour": 740.0, "fairness": True})
    problem = build_problem(scenario)
    first = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=30.0))
    second = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=30.0))
    assert first.status is SolveStatus.FEASIBLE
    assert first.patterns == second.patterns
    assert verify_plan(scenario, extract_plan(problem, first)) == []
    share = first.stats["fair_share"]
    assert share >= 0.5
    assert fair_share_of(problem, planned_capacity_rps(problem, first.patterns)) >= share - 1e-3  # stats: 3 decimals
    assert share <= first.stats["fair_share_bound"] < 0.75  # proven: no plan gives every model 75%
    assert patterns_cost(problem, first.patterns) <= 740.0 + 1e-6


def test_share_search_is_never_below_the_max_share_mip_on_small_instances():
    """Up to FAIR_MIP_MAX_MODELS models stage 1 keeps the max-share MIP as a candidate, so
    its share is at least that of the MIP alone (ColumnGeneration(share_search=False), the
    benchmark's baseline); both plans keep the budget."""
    for seed in range(3):
        scenario = small_scenario(seed, "max_throughput", fairness=True, n_models=5, n_types=2)
        problem = build_problem(scenario)
        searched = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=10.0))
        alone = ColumnGeneration(share_search=False).solve(problem, SolveSettings(time_limit_s=10.0))
        assert alone.stats["fair_attempts"] == 0
        for result in (searched, alone):
            assert patterns_cost(problem, result.patterns) <= problem.budget_usd_per_hour + 1e-6
        assert searched.stats["fair_share"] >= alone.stats["fair_share"] - 1e-3, seed


def test_search_backs_off_where_every_model_needs_a_gpu_whatever_its_share():
    """Generated 30 models (mixed: LLMs that need a whole GPU each) at $111.39/h, 40% of their
    min_cost plan: the LP's share with room for the overshoot is 0, and the plan at 9.1% cost
    $115.63, trimmed to 0. The search then aims at a quarter of what the LP alone fits: a
    positive share for every model, within the budget."""
    from planner.generate import generate_scenario
    from planner.scenario import Scenario

    raw = generate_scenario(30, 60, 3, 3, objective="min_cost", mix="mixed", interference=True)
    scenario = Scenario.model_validate(raw).model_copy(
        update={"objective": "max_throughput", "budget_usd_per_hour": 111.39, "fairness": True})
    problem = build_problem(scenario)
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=10.0))
    share = fair_share_of(problem, planned_capacity_rps(problem, result.patterns))
    assert 0.0 < share <= result.stats["fair_share_bound"]
    assert patterns_cost(problem, result.patterns) <= 111.39 + 1e-6
    assert verify_plan(scenario, extract_plan(problem, result)) == []


def test_next_plan_aims_inside_the_bracket_of_plans_made():
    tol = PLAN_SHARE_TOLERANCE
    assert inside_bracket(0.4, 0.0, math.inf) == 0.4  # nothing planned yet: as the LP aims
    assert inside_bracket(0.3, 0.0, 0.5) == 0.3  # below a plan over the budget, none fit yet
    assert inside_bracket(0.37, 0.35, 0.4) == 0.37  # inside, with room at both ends
    assert inside_bracket(0.45, 0.35, 0.4) == pytest.approx(0.375)  # aimed past a plan over the budget: the middle
    assert inside_bracket(0.35 + tol / 2, 0.35, 0.4) == pytest.approx(0.375)  # too close to a plan that fit
    assert inside_bracket(0.36, 0.35, 0.35 + 1.5 * tol) is None  # nothing left between them
    assert inside_bracket(0.34, 0.35, math.inf) is None  # a plan fit and the LP aims no higher


@pytest.mark.parametrize("models, limit_s, plans", [(50, 10.0, 2), (50, 60.0, 4), (200, 10.0, 2), (200, 60.0, 4),
                                                    (1000, 60.0, 2), (1000, 30.0, 1), (20, 600.0, FAIR_MAX_PLANS)])
def test_fair_share_plans_grow_with_the_time_limit(models, limit_s, plans):
    assert fair_share_plans(models, limit_s) == plans


def test_more_plans_raise_the_fair_share_on_fleet_50x64():
    """fleet-50x64 at $55/h with the CLI's 60 s: the first plan (46% of every model's demand)
    costs $61.93/h, and two plans ended at 24.5% (the second, at 38%, cost $56.41/h and was
    trimmed). With a plan aimed at the overshoot in dollars and plans inside the bracket of
    those made, at least 33% for every model, within the budget, on work limits only."""
    scenario = load_scenario(ROOT / "scenarios" / "fleet-50x64.yaml")
    scenario = scenario.model_copy(update={"objective": "max_throughput", "budget_usd_per_hour": 55.0, "fairness": True})
    problem = build_problem(scenario)
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=60.0))
    assert result.stats["fair_attempts"] >= 3
    assert result.status is SolveStatus.FEASIBLE
    share = fair_share_of(problem, planned_capacity_rps(problem, result.patterns))
    assert 0.33 <= share <= result.stats["fair_share_bound"]
    assert patterns_cost(problem, result.patterns) <= 55.0 + 1e-6
    assert verify_plan(scenario, extract_plan(problem, result)) == []


def test_repair_mixes_the_plans_patterns_and_singletons_anew_within_the_budget():
    """fleet-50x64 at $55/h: the plan of 36.5% of every model's demand costs about a dollar
    over the budget; taking GPUs out (the trim) leaves some model under 25%, while the
    max-share MIP over the plan's patterns and every singleton, started from the trim,
    keeps every model above 33%, within the budget."""
    import time

    from solvers.colgen.fair_share import fair_share_plan, repair_share

    scenario = load_scenario(ROOT / "scenarios" / "fleet-50x64.yaml")
    scenario = scenario.model_copy(update={"objective": "max_throughput", "budget_usd_per_hour": 55.0, "fairness": True})
    problem = build_problem(scenario)
    solver = ColumnGeneration()
    plan = fair_share_plan(solver, problem, SolveSettings(), 0.365, 4.0, time.perf_counter() + 120.0, Progress())
    assert patterns_cost(problem, plan) > 55.0  # over the budget: what the repair is for
    trimmed = trim_to_budget(problem, plan, 55.0)
    repaired = repair_share(solver, problem, plan, trimmed, 300, time.perf_counter() + 120.0)
    trimmed_share = fair_share_of(problem, planned_capacity_rps(problem, trimmed))
    repaired_share = fair_share_of(problem, planned_capacity_rps(problem, repaired))
    assert trimmed_share < 0.25 and repaired_share >= 0.33
    assert patterns_cost(problem, repaired) <= 55.0 + 1e-6
    assert verify_plan(scenario, extract_plan(problem, _as_result(repaired))) == []


def _as_result(patterns: tuple[PatternCount, ...]):
    """A max_throughput result holding `patterns`, for extract_plan."""
    from planner.problem import SolveResult

    return SolveResult("repair", SolveStatus.FEASIBLE, "max_throughput", 0.0, math.inf, patterns, {}, 0.0)


def test_stronger_bound_tiers_lower_the_proven_fair_share_on_fleet_50x64():
    """fleet-50x64 at $55/h (colgen's plan: 36.2% for every model): the replica LP proves no
    plan within the budget gives every model more than 57.1%; three evaluations of
    best_cost_bound (the replica relaxation's root with SLO classes and its LP with cycle
    bands) prove 52.4%."""
    scenario = load_scenario(ROOT / "scenarios" / "fleet-50x64.yaml")
    scenario = scenario.model_copy(update={"objective": "max_throughput", "budget_usd_per_hour": 55.0, "fairness": True})
    problem = build_problem(scenario)
    lp_only = fair_share_upper_bound(problem, 0.36)
    strong = fair_share_upper_bound(problem, 0.36, strong_evaluations=3)
    assert 0.36 <= strong <= 0.54 < 0.56 <= lp_only
