"""The dive's round-ups (solvers/colgen/dive.py): with disjoint round-ups a round rounds up
only columns that share no model, largest LP value first, and the solver takes that dive
where its rule says so (solvers/colgen/rules.py, CAREFUL_DISJOINT_DIVE)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.generate import generate_scenario
from planner.plan import extract_plan
from planner.problem import SolveSettings, build_problem
from planner.scenario import Scenario
from planner.verify import verify_plan
from solvers.colgen import solver as colgen
from solvers.colgen.dive import disjoint_by_value
from solvers.colgen.solver import ColumnGeneration


@st.composite
def fractional_columns(draw):
    n = draw(st.integers(1, 12))
    models_of = [draw(st.lists(st.integers(0, 7), min_size=1, max_size=4, unique=True)) for _ in range(n)]
    x = np.array([draw(st.floats(0.05, 0.99)) for _ in range(n)])
    round_up = set(draw(st.lists(st.integers(0, n - 1), min_size=1, unique=True)))
    return round_up, x, models_of


@settings(max_examples=200, deadline=None)
@given(fractional_columns())
def test_disjoint_round_ups_share_no_model_and_leave_out_only_overlaps(case):
    """The chosen columns come from `round_up`, hold no model twice, include the largest LP
    value, and every column left out shares a model with a chosen one of no smaller value."""
    round_up, x, models_of = case
    chosen = disjoint_by_value(round_up, x, models_of)
    assert set(chosen) <= round_up
    held = [m for j in chosen for m in models_of[j]]
    assert len(held) == len(set(held))
    top = max(round_up, key=lambda j: (x[j], -j))
    assert top in chosen
    for j in round_up - set(chosen):
        assert any(set(models_of[j]) & set(models_of[k]) and x[k] >= x[j] for k in chosen)


def test_disjoint_round_ups_keep_the_order_of_lp_values():
    x = np.array([0.6, 0.9, 0.7, 0.8])
    models_of = [[0], [0, 1], [2], [1, 3]]
    # 1 (0.9) first; 3 shares model 1, 0 shares model 0; 2 is free
    assert disjoint_by_value({0, 1, 2, 3}, x, models_of) == [1, 2]


def test_the_dive_rule_goes_by_model_count_and_time_limit():
    """Disjoint round-ups only where no polish follows and the time limit gives each model
    DISJOINT_DIVE_S_PER_MODEL; the careful dive elsewhere up to CAREFUL_DIVE_MAX_MODELS."""
    per_model = colgen.DISJOINT_DIVE_S_PER_MODEL
    assert colgen.dive_settings(50, 10.0) is colgen.CAREFUL_DIVE  # polish follows
    assert colgen.dive_settings(colgen.POLISH_MAX_MODELS, 1000.0) is colgen.CAREFUL_DIVE
    assert colgen.dive_settings(200, 200 * per_model) is colgen.CAREFUL_DISJOINT_DIVE
    assert colgen.dive_settings(200, 0.9 * 200 * per_model) is colgen.CAREFUL_DIVE
    assert colgen.dive_settings(colgen.CAREFUL_DIVE_MAX_MODELS, 1000.0) is colgen.CAREFUL_DISJOINT_DIVE
    assert colgen.dive_settings(1000, 60.0) is colgen.FAST_DIVE
    assert colgen.dive_settings(1000, 1000 * colgen.FAST_DISJOINT_S_PER_MODEL) is colgen.FAST_DISJOINT_DIVE
    assert colgen.FAST_DISJOINT_DIVE.disjoint_round_ups and not colgen.FAST_DIVE.disjoint_round_ups
    assert colgen.dive_settings(1000, 30.0) is colgen.HASTY_DIVE
    assert colgen.CAREFUL_DISJOINT_DIVE.disjoint_round_ups and not colgen.CAREFUL_DIVE.disjoint_round_ups


@pytest.mark.slow
def test_disjoint_dive_plans_pass_verify_plan_and_repeat():
    """Above POLISH_MAX_MODELS with time enough, colgen dives with disjoint round-ups; its
    plan passes verify_plan, no baseline in the run is cheaper, and a second run gives the
    same plan."""
    from solvers.registry import get_solver

    models = colgen.POLISH_MAX_MODELS + 20
    scenario = Scenario.model_validate(generate_scenario(models, 256, 5, 1))
    problem = build_problem(scenario)
    limit_s = 4 * colgen.DISJOINT_DIVE_S_PER_MODEL * models + 10
    first = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=limit_s))
    assert first.stats["dive_rule"].startswith("careful-disjoint")
    assert not first.stats["hit_time_limit"]
    assert verify_plan(scenario, extract_plan(problem, first)) == []
    second = ColumnGeneration().solve(build_problem(scenario), SolveSettings(time_limit_s=limit_s))
    assert second.patterns == first.patterns
    one_per_gpu = get_solver("one-per-gpu").solve(problem, SolveSettings(time_limit_s=5))
    if one_per_gpu.patterns:
        assert first.value <= one_per_gpu.value + 1e-6


def test_the_portfolio_adds_a_second_dive_only_to_the_careful_disjoint_dive_with_time():
    per_model = colgen.PORTFOLIO_S_PER_MODEL
    assert colgen.dive_portfolio(200, 200 * per_model) == [colgen.CAREFUL_DISJOINT_DIVE, colgen.SECOND_DIVE]
    assert colgen.dive_portfolio(200, 10.0) == [colgen.CAREFUL_DISJOINT_DIVE]
    assert colgen.dive_portfolio(50, 1000.0) == [colgen.CAREFUL_DIVE]  # polish follows
    assert colgen.dive_portfolio(1000, 1000.0) == [colgen.FAST_DISJOINT_DIVE]
    assert colgen.SECOND_DIVE.first_round_dedicated_only and colgen.SECOND_DIVE.disjoint_round_ups


@pytest.mark.slow
def test_the_portfolio_keeps_the_cheaper_of_its_two_dives():
    """With time for the portfolio, colgen's plan costs exactly the cheaper of the plans the two
    dives make alone (each dive starts from the same root LP), and it passes verify_plan."""
    models = colgen.POLISH_MAX_MODELS + 20
    scenario = Scenario.model_validate(generate_scenario(models, 256, 5, 1))
    problem = build_problem(scenario)
    limit_s = colgen.PORTFOLIO_S_PER_MODEL * models + 10
    both = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=limit_s))
    assert both.stats["dive_rule"] == "careful-disjoint+dedicated-first"
    alone = [ColumnGeneration(dive=how).solve(problem, SolveSettings(time_limit_s=limit_s)).value
             for how in (colgen.CAREFUL_DISJOINT_DIVE, colgen.SECOND_DIVE)]
    assert not both.stats["hit_time_limit"]
    assert both.value == pytest.approx(min(alone), abs=1e-6)
    assert verify_plan(scenario, extract_plan(problem, both)) == []


def test_when_no_phase_leaves_a_plan_colgen_returns_the_greedy_packing_plan(monkeypatch):
    """A dive that runs out of time on a large, tight fleet can end without a plan, and the
    type-level warm start finds none where only sharing fits the inventory (generated 1,000
    models on 4,096 GPUs, seed 1, at 60 s: no plan at all). colgen then returns the greedy
    packing baseline's plan rather than none. Here every phase is made to fail; the greedy
    is the real one."""
    from solvers.colgen.master import Master
    from solvers.greedy_pack import GreedyPack

    scenario = Scenario.model_validate(generate_scenario(30, 48, 4, 1))
    problem = build_problem(scenario)
    greedy = GreedyPack().solve(problem, SolveSettings(time_limit_s=5))
    assert greedy.patterns
    normal = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=5))
    assert np.isnan(normal.stats["fallback_value"])  # not needed when a phase found a plan

    monkeypatch.setattr(colgen, "_warm_start", lambda problem, settings: (None, False))
    monkeypatch.setattr(colgen, "dive", lambda *args, **kwargs: None)
    monkeypatch.setattr(Master, "solve_mip", lambda self, *args, **kwargs: (None, float("nan"), False))
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=5))
    assert result.patterns
    assert result.value == pytest.approx(greedy.value, abs=1e-9)
    assert result.stats["fallback_value"] == pytest.approx(greedy.value, abs=1e-3)  # stats are rounded
    assert result.value >= normal.value - 1e-9
    assert verify_plan(scenario, extract_plan(problem, result)) == []


def test_residual_problem_leaves_what_the_fixed_gpus_do_not_take():
    from solvers.colgen.columns import Index
    from solvers.colgen.dive import FixedGpus, residual_problem

    problem = build_problem(Scenario.model_validate(generate_scenario(40, 48, 4, 0)))
    index = Index.of(problem)
    fixed = FixedGpus()
    limited = next(t for t, g in enumerate(problem.gpu_types) if g.count)
    fixed.used_gpus[limited] = 1
    fixed.used_usd_per_hour = problem.gpu_types[limited].cost_per_hour_usd
    rest = index.residual(0.25 * index.demand_rps)
    left = residual_problem(problem, rest, fixed)
    assert [m.demand_rps for m in left.demanded_models] == pytest.approx([0.75 * d for d in index.demand_rps])
    assert left.gpu_types[limited].count == problem.gpu_types[limited].count - 1
    assert [g.count for t, g in enumerate(left.gpu_types) if t != limited] == \
        [g.count for t, g in enumerate(problem.gpu_types) if t != limited]


@pytest.mark.parametrize("seed", [0, 2])
def test_out_of_time_the_dive_completes_by_greedy_packing_where_dedicated_replicas_do_not_fit(seed):
    """When the dive is out of time it covers what is left with the cheaper of dedicated
    replicas and greedy packing of the rest. On these tight fleets (40 models, 48 GPUs)
    dedicated replicas alone cannot cover the demand; packing the rest can, from scratch and
    from a half-fixed plan, and the merged plan keeps the fixed GPUs and is feasible."""
    from solvers.colgen.columns import Index
    from solvers.colgen.dive import FixedGpus, complete, complete_with_singletons
    from solvers.packing_rules import pattern_violations

    problem = build_problem(Scenario.model_validate(generate_scenario(40, 48, 4, seed)))
    index = Index.of(problem)
    assert complete_with_singletons(problem, index, FixedGpus()) is None
    plan = complete(problem, index, FixedGpus())
    assert plan is not None and ColumnGeneration._feasible(problem, plan)
    assert all(pattern_violations(problem, pc.pattern) == [] for pc in plan)

    # half of that plan fixed, the rest left to cover
    fixed = FixedGpus()
    type_index = {g.name: t for t, g in enumerate(problem.gpu_types)}
    covered = np.zeros(len(index.models))
    full = index.model_index()
    from solvers.colgen.columns import make_column
    for pc in plan[: len(plan) // 2]:
        col = make_column(problem, index, pc.pattern)
        fixed.add(pc.pattern, type_index[pc.pattern.gpu_type], col.gpus, col.cost_usd_per_hour, pc.count)
        for i, cov in zip(col.model_indices, col.coverage_rps):
            covered[full[index.models[i]]] += cov * pc.count
    rest = index.residual(np.minimum(covered, index.demand_rps))
    finished = complete(problem, rest, fixed)
    assert finished is not None and ColumnGeneration._feasible(problem, finished)
    counts = dict((pc.pattern, pc.count) for pc in finished)
    assert all(counts.get(p, 0) >= n for p, n in fixed.counts.items())


def test_the_dives_second_round_prices_first_residual_iterations_times(monkeypatch):
    """The second round of a dive (the first residual one) runs `first_residual_iterations`
    pricing iterations, every other round `iterations_per_round` (one when hurried); the
    fast dives use it, the careful ones do not."""
    from dataclasses import replace as replace_settings

    assert colgen.FAST_DIVE.first_residual_iterations > colgen.FAST_DIVE.iterations_per_round
    assert colgen.FAST_DISJOINT_DIVE.first_residual_iterations == colgen.FAST_DIVE.first_residual_iterations
    assert colgen.CAREFUL_DIVE.first_residual_iterations == 0 == colgen.HASTY_DIVE.first_residual_iterations

    asked = []
    original = ColumnGeneration._generate

    def spy(self, *args, **kwargs):
        if not kwargs.get("prove", True) and kwargs.get("fills_per_cycle") == colgen.DIVE_FILLS_PER_CYCLE:
            asked.append(kwargs["max_iterations"])  # a dive round's residual pricing
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ColumnGeneration, "_generate", spy)
    how = replace_settings(colgen.CAREFUL_DIVE, first_residual_iterations=7)
    scenario = Scenario.model_validate(generate_scenario(60, 128, 4, 3))
    problem = build_problem(scenario)
    result = ColumnGeneration(dive=how).solve(problem, SolveSettings(time_limit_s=30))  # no pool MIP (1 s a model)
    # the dive's rounds come first (polish, which follows at 60 models, prices after them)
    assert len(asked) >= 3 and asked[0] == how.iterations_per_round and asked[1] == 7
    assert verify_plan(scenario, extract_plan(problem, result)) == []
