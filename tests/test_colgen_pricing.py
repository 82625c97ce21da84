"""Pricing of shared patterns (solvers.colgen.pricing) and the per-problem caches it uses.

- Disjoint fills (`fills_per_cycle` > 1, the dive's residual pricing): every column is a
  feasible pattern with the reduced cost pricing says, the first fill of each cycle target
  is the single-fill pricing's column, so nothing single-fill finds is lost.
- pattern_member_rates (cache) equals member_planned_rps; the fluid bound's per-model
  cheapest $/req/s equals a row-by-row minimum over the candidates table.
- Cached singleton columns equal make_column's; a dive out of time still returns a whole
  plan; colgen's bound on the MIP-root tier (second thread) equals best_cost_bound's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.problem import SolveSettings, build_problem, member_planned_rps, pattern_member_rates
from planner.generate import generate_scenario
from planner.scenario import Scenario
from solvers.bounds import fluid_cost_bound
from solvers.colgen.columns import Index, type_items
from solvers.colgen.master import Master
from solvers.colgen.pricing import SharedPricer, singleton_columns
from solvers.colgen.solver import ColumnGeneration
from solvers.packing_rules import make_pattern, pattern_violations
from packing_instances import many_small_models_scenario


def _priced(problem, fills: int = 1, max_columns: int = 10_000, thorough: bool = False):
    """Columns priced at the LP duals of a master over the singleton columns only (the
    greedy's, or with `thorough` the DP's)."""
    index = Index.of(problem)
    master = Master(problem, index)
    master.add_columns(singleton_columns(problem, index))
    lp = master.solve_lp()
    assert lp is not None
    pricer = SharedPricer(problem, index, type_items(problem, index))
    found = pricer.price(lp.duals, lambda t, k: master.gpu_dual(t, k, lp.duals), lp.duals.budget, True,
                         max_columns_per_type=max_columns, fills_per_cycle=fills, thorough=thorough)
    return master, lp, found


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_disjoint_fills_give_feasible_columns_with_the_reduced_cost_they_claim(seed):
    problem = build_problem(many_small_models_scenario(n_models=24, seed=seed, cv=1.0))
    master, lp, found = _priced(problem, fills=6)
    assert found, "24 light models on one type: sharing must price out against singletons"
    keys = [(c.pattern.gpu_type, c.pattern.members) for _, c in found]
    assert len(set(keys)) == len(keys), "a pattern was returned twice"
    for reduced, col in found:
        assert pattern_violations(problem, col.pattern) == []
        # pricing builds patterns and rates from its own arrays: the same as the rules' own
        members = [(m.model, m.batch_size) for m in col.pattern.members]
        assert make_pattern(problem, col.pattern.gpu_type, 1, members) == col.pattern
        assert pattern_member_rates(problem, col.pattern) == tuple(
            member_planned_rps(problem, col.pattern, m) for m in col.pattern.members)
        assert len(col.pattern.members) >= 2
        assert reduced < 0
        assert math.isclose(reduced, master.reduced_cost(col, lp.duals), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("seed", [0, 3])
def test_disjoint_fills_keep_every_single_fill_column(seed):
    problem = build_problem(many_small_models_scenario(n_models=24, seed=seed, cv=1.0))
    _, _, single = _priced(problem, fills=1)
    _, _, multi = _priced(problem, fills=6)
    single_keys = {c.pattern for _, c in single}
    multi_keys = {c.pattern for _, c in multi}
    assert single_keys <= multi_keys
    assert len(multi_keys) > len(single_keys), "set-aside fills found no further pattern on 24 light models"


def test_disjoint_fills_at_one_cycle_share_no_model():
    """With one cycle target, the fills are disjoint: no model is in two of its patterns."""
    problem = build_problem(many_small_models_scenario(n_models=24, seed=5, cv=1.0))
    index = Index.of(problem)
    master = Master(problem, index)
    master.add_columns(singleton_columns(problem, index))
    lp = master.solve_lp()
    pricer = SharedPricer(problem, index, type_items(problem, index))
    pricer.targets = [targets[len(targets) // 2: len(targets) // 2 + 1] for targets in pricer.targets]
    found = pricer.price(lp.duals, lambda t, k: master.gpu_dual(t, k, lp.duals), lp.duals.budget, True,
                         max_columns_per_type=10_000, fills_per_cycle=8)
    assert len(found) >= 2
    seen: set[str] = set()
    for _, col in found:
        names = {m.model for m in col.pattern.members}
        assert not names & seen
        seen |= names


def test_pattern_member_rates_equal_member_planned_rps():
    problem = build_problem(many_small_models_scenario(n_models=12, seed=1, cv=1.0))
    plan = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=10.0))
    assert plan.patterns
    for pc in plan.patterns:
        expected = tuple(member_planned_rps(problem, pc.pattern, m) for m in pc.pattern.members)
        assert pattern_member_rates(problem, pc.pattern) == expected
        assert pattern_member_rates(problem, pc.pattern) == expected  # from the cache now


def test_fluid_bound_is_the_per_model_cheapest_rate_over_the_candidates():
    scenario = Scenario.model_validate(generate_scenario(models=30, gpus=48, gpu_types=4, seed=7))
    problem = build_problem(scenario)
    rows = problem.candidates
    expected = 0.0
    for info in problem.demanded_models:
        mine = rows[rows.model == info.name]
        expected += info.demand_rps * float(np.min(mine.cost_per_hour_usd.to_numpy() / mine.planned_rps.to_numpy()))
    assert math.isclose(fluid_cost_bound(problem), expected, rel_tol=1e-12)


@pytest.mark.parametrize("seed", [0, 4])
def test_singleton_columns_are_the_rules_own_columns(seed):
    """singleton_columns (cached options, running-best search) gives, per option, the column
    make_column builds for the smallest batch reaching min(best rate, demand), also on a
    residual index whose demands sit between batch sizes' rates."""
    from planner.problem import Member, dedicated_rates
    from solvers.colgen.columns import make_column, members_pattern

    problem = build_problem(Scenario.model_validate(generate_scenario(30, 64, 4, seed)))
    full = Index.of(problem)
    for index in (full, full.residual(full.demand_rps * np.linspace(0.1, 0.9, len(full.models)))):
        expected = []
        for name, d in zip(index.models, index.demand_rps):
            info = problem.model(name)
            for opt in info.options:
                rate = dedicated_rates(problem, info, opt)
                if not (rate > 0).any():
                    continue
                b = int(np.argmax(rate >= min(rate.max(), float(d)) - 1e-12)) + 1
                member = Member(name, b, float(opt.latency_ms[b - 1]))
                expected.append(make_column(problem, index, members_pattern(opt.gpu_type, opt.tensor_parallel, [member])))
        assert singleton_columns(problem, index) == expected
        assert len({c.pattern.members[0].batch_size for c in expected}) > 1


@pytest.mark.parametrize("seed", [1, 5])
def test_a_dive_out_of_time_still_returns_a_whole_plan(seed):
    """A dive whose deadline has passed (a slow machine) stops pricing and finishes with
    rounds over the columns it knows, rounding fractions up only where a member still lacks
    demand: a feasible plan on fleets whose inventory sharing must stretch. Rounding every
    fraction up at once and completing with dedicated replicas found none on seeds 1-5; this
    finds one on seeds 1 and 5 (on 2-4 the known columns cannot cover the rest without
    pricing, and the solver falls back to its MIP over every column)."""
    import time

    from solvers.colgen.dive import dive

    from solvers.colgen.solver import Progress

    problem = build_problem(Scenario.model_validate(generate_scenario(120, 256, 5, seed)))
    index = Index.of(problem)
    master = Master(problem, index)
    master.add_columns(singleton_columns(problem, index))
    lp, _, _ = ColumnGeneration()._generate(problem, index, master, {}, Progress(), time.perf_counter() + 600,
                                            prove=False, warm=None, max_iterations=40)
    support = [c.pattern for c, v in zip(master.columns, lp.x) if v > 1e-9 and len(c.pattern.members) > 1]
    assert support
    priced = []

    def generate(rest, sub, columns, stop_at, hurry):
        priced.append(len(rest.models))

    plan = dive(problem, index, support, generate, time.perf_counter() - 1.0, finish_grace_s=600.0)
    assert plan is not None
    assert not priced, "out of time, the dive must not price"
    assert ColumnGeneration._feasible(problem, plan)
    assert all(pattern_violations(problem, pc.pattern) == [] for pc in plan)


def test_a_dive_whose_round_ups_exhaust_the_inventory_backtracks():
    """On a small fleet (20 models, 24 GPUs of 3 types) the careful dive's round-ups take the
    last GPUs of the cheap types, and the residual LP has no plan. Before backtracking the dive
    gave up there (None); it now goes back a round, fixes whole GPUs or one round-up, and
    ends with a whole plan."""
    import time

    from solvers.colgen.dive import dive
    from solvers.colgen.solver import CAREFUL_DIVE, DIVE_FILLS_PER_CYCLE, Progress

    problem = build_problem(Scenario.model_validate(generate_scenario(20, 24, 3, 0, mix="mixed")))
    index = Index.of(problem)
    master = Master(problem, index)
    master.add_columns(singleton_columns(problem, index))
    solver = ColumnGeneration()
    lp, _, _ = solver._generate(problem, index, master, {}, Progress(), time.perf_counter() + 600, prove=False, warm=None)
    support = [c.pattern for c, v in zip(master.columns, lp.x) if v > 1e-9 and len(c.pattern.members) > 1]

    def generate(rest, sub, columns, stop_at, hurry):
        solver._add(sub, problem, rest, {}, columns)
        solver._generate(problem, rest, sub, {}, Progress(), stop_at, prove=False, warm=None,
                         max_iterations=CAREFUL_DIVE.iterations_per_round, fills_per_cycle=DIVE_FILLS_PER_CYCLE,
                         max_columns_per_type=CAREFUL_DIVE.columns_per_type)

    plan = dive(problem, index, support, generate, time.perf_counter() + 600, CAREFUL_DIVE.round_up_share)
    assert plan is not None
    assert ColumnGeneration._feasible(problem, plan)
    assert all(pattern_violations(problem, pc.pattern) == [] for pc in plan)


@pytest.mark.slow
def test_colgen_bound_on_the_root_tier_is_best_cost_bound_from_either_thread():
    """On mid-size fleets colgen computes solvers.bounds.best_cost_bound (the relaxation's MIP
    root) on a second thread while it plans: the same number as computed alone, above the
    relaxation's LP and below the plan."""
    from solvers.bounds import best_cost_bound, replica_tier
    from solvers.replica_relaxation import replica_cost_bound

    problem = build_problem(Scenario.model_validate(generate_scenario(40, 48, 4, 2)))
    assert replica_tier(problem) == "root"
    result = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=60.0))
    alone = best_cost_bound(problem, time_limit_s=60.0)
    assert result.bound == alone
    assert replica_cost_bound(problem).value < alone <= result.value


def test_dp_pricing_columns_carry_the_rules_own_rates():
    """The DP's fills (thorough pricing) go through the same column builder: feasible
    patterns, member rates equal to member_planned_rps, the reduced cost they claim."""
    problem = build_problem(many_small_models_scenario(n_models=24, seed=2, cv=1.0))
    master, lp, found = _priced(problem, thorough=True)
    assert found
    for reduced, col in found:
        assert pattern_violations(problem, col.pattern) == []
        assert pattern_member_rates(problem, col.pattern) == tuple(
            member_planned_rps(problem, col.pattern, m) for m in col.pattern.members)
        assert math.isclose(reduced, master.reduced_cost(col, lp.duals), rel_tol=1e-9, abs_tol=1e-9)
