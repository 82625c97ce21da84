"""Exact pricing (solvers.colgen.exact_pricing): on small instances with every shared pattern
enumerated, both band bounds and the type's bound are at least what any real pattern is worth,
with random duals and random MIR cuts, and the knapsack's picks become real patterns."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from planner.problem import build_problem, pattern_member_rates
from solvers.colgen.columns import Index, type_items
from solvers.colgen.exact_pricing import (CutTerms, band_lagrangian_bound, band_upper_bound, prove_type,
                                          scaled_dual_bound)
from solvers.colgen.mir_cuts import mir_coefficient
from solvers.colgen.pricing import SharedPricer
from solvers.enumerate_patterns import enumerate_patterns
from solvers.packing_rules import pattern_violations
from packing_instances import EXACT_SETTINGS, many_small_models_scenario, mixed_scenario, sharing_scenario, small_scenario

SCENARIOS = [small_scenario(seed, "min_cost", interference=seed % 2 == 1, n_models=4, n_types=1 + seed % 2,
                            max_batch=6, cv=1.0) for seed in range(6)]
SCENARIOS += [many_small_models_scenario(n_models=5, seed=seed, cv=1.0) for seed in range(3)]


def _setup(number: int, seed: int):
    """Problem, index, pricer, random duals, random cuts (one or two per model) per type."""
    problem = build_problem(SCENARIOS[number])
    index = Index.of(problem)
    pricer = SharedPricer(problem, index, type_items(problem, index))
    rng = np.random.default_rng(seed)
    n = len(index.models)
    scale = np.array([problem.gpu_types[0].cost_per_hour_usd / max(d, 1e-9) for d in index.demand_rps])
    dual_demand = rng.uniform(0.0, 2.0, n) * scale
    dual_presence = rng.uniform(0.0, 0.3, n) * problem.gpu_types[0].cost_per_hour_usd
    cuts = {i: [(float(rng.uniform(0.2, 1.0) * index.demand_rps[i]), float(rng.uniform(0.1, 0.9)),
                 float(rng.uniform(0.0, 0.5)) * problem.gpu_types[0].cost_per_hour_usd)
                for _ in range(int(rng.integers(0, 3)))] for i in range(n)}
    return problem, index, pricer, dual_demand, dual_presence, cuts


def _cut_terms(it, cuts) -> CutTerms:
    start, count, delta, frac, dual = [], [], [], [], []
    for i in it.model_indices:
        start.append(len(delta))
        count.append(len(cuts[int(i)]))
        for d, f, y in cuts[int(i)]:
            delta.append(d)
            frac.append(f)
            dual.append(y)
    return CutTerms(np.array(start, dtype=np.int64), np.array(count, dtype=np.int64),
                    np.array(delta or [1.0]), np.array(frac or [1.0]), np.array(dual or [0.0]))


def _value(problem, index, pattern, dual_demand, dual_presence, cuts) -> float:
    """What a real pattern's members are worth at these duals (rates at its true cycle)."""
    by_name = index.model_index()
    value = 0.0
    for member, rate in zip(pattern.members, pattern_member_rates(problem, pattern)):
        i = by_name[member.model]
        cover = min(rate, float(index.demand_rps[i]))
        value += dual_demand[i] * cover + dual_presence[i]
        value += sum(y * mir_coefficient(cover, d, f) for d, f, y in cuts[i])
    return value


@pytest.mark.parametrize("number", range(len(SCENARIOS)))
@pytest.mark.parametrize("seed", [0, 1])
def test_band_bounds_hold_for_every_real_pattern_in_the_band(number, seed):
    problem, index, pricer, dual_demand, dual_presence, cuts = _setup(number, seed)
    shared = [p for p in enumerate_patterns(problem) if p.tensor_parallel == 1 and len(p.members) >= 2]
    checked = 0
    for it, flat, demand, cv in zip(pricer.items, pricer.flat, pricer.demand, pricer.cv):
        terms = _cut_terms(it, cuts)
        chosen = np.zeros(len(it.model_indices), dtype=np.int64)
        of_type = [p for p in shared if p.gpu_type == it.gpu_type]
        for pattern in of_type[::max(1, len(of_type) // 200)]:  # up to ~200 a type, spread over the list
            value = _value(problem, index, pattern, dual_demand, dual_presence, cuts)
            cycle = pattern.cycle_ms
            for lo, hi in ((cycle, cycle), (cycle / 1.3, cycle * 1.01), (cycle * 0.999, cycle * 2.0)):
                args = (lo, hi, it.interference_factor, flat.raw, flat.offsets, flat.lengths, it.memory_per_gpu_gib,
                        it.slo_ms, cv, demand, dual_demand[it.model_indices], dual_presence[it.model_indices],
                        terms.start, terms.count, terms.delta, terms.frac, terms.dual, problem.max_utilization,
                        it.memory_gib)
                for price in (0.0, value / it.memory_gib):
                    lagrangian = band_lagrangian_bound(*args, price, 60)
                    knapsack = band_upper_bound(*args, price, 64, chosen)
                    assert lagrangian >= value - 1e-9 * max(1.0, value), (pattern, lo, hi, lagrangian, value)
                    assert knapsack >= value - 1e-9 * max(1.0, value), (pattern, lo, hi, knapsack, value)
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("number", range(len(SCENARIOS)))
def test_the_type_bound_is_at_least_the_best_real_profit_and_picks_are_real(number):
    problem, index, pricer, dual_demand, dual_presence, cuts = _setup(number, number)
    shared = [p for p in enumerate_patterns(problem) if p.tensor_parallel == 1 and len(p.members) >= 2]
    for it, flat, demand, cv in zip(pricer.items, pricer.flat, pricer.demand, pricer.cv):
        constant = problem.gpu_types[it.type_index].cost_per_hour_usd
        best = max((_value(problem, index, p, dual_demand, dual_presence, cuts) - constant
                    for p in shared if p.gpu_type == it.gpu_type), default=-math.inf)
        proof = prove_type(it, flat, cv, demand, dual_demand[it.model_indices], dual_presence[it.model_indices],
                           constant, problem.max_utilization, 1e-3 * constant, _cut_terms(it, cuts),
                           finest_ratio=1.01, cells=256, max_knapsacks=4000)
        assert proof.profit_bound >= best - 1e-9 * constant, (it.gpu_type, proof.profit_bound, best)
        for positions, batches in proof.picks:
            column = pricer._column_of_fill(it, positions, batches)
            assert len(column.pattern.members) == len(positions) >= 2
            # a relaxation's pick: only the cycle (latency) or memory may fail at its true cycle
            for problem_text in pattern_violations(problem, column.pattern):
                assert "over SLO" in problem_text or "memory" in problem_text, problem_text


def test_a_pattern_worth_more_than_its_gpu_is_found():
    """Duals that make sharing pay: the type's bound is positive and some pick, as a real
    pattern, prices out (reduced cost below zero)."""
    problem, index, pricer, _, _, _ = _setup(6, 0)
    it, flat, demand, cv = pricer.items[0], pricer.flat[0], pricer.demand[0], pricer.cv[0]
    constant = problem.gpu_types[it.type_index].cost_per_hour_usd
    dual_demand = np.full(len(index.models), constant / float(np.min(index.demand_rps)))
    dual_presence = np.zeros(len(index.models))
    no_cuts = {i: [] for i in range(len(index.models))}
    proof = prove_type(it, flat, cv, demand, dual_demand[it.model_indices], dual_presence[it.model_indices],
                       constant, problem.max_utilization, 1e-3 * constant, finest_ratio=1.01, cells=256)
    assert proof.profit_bound > 0
    values = []
    for positions, batches in proof.picks:
        column = pricer._column_of_fill(it, positions, batches)
        if not pattern_violations(problem, column.pattern):
            values.append(_value(problem, index, column.pattern, dual_demand, dual_presence, no_cuts))
    assert values and max(values) > constant


def _scaled_dual_bound(problem) -> tuple[float, float]:
    """(scaled dual bound, LP value) at the duals of colgen's pattern LP run until its own
    pricing finds no column, with every type's best reduced profit bounded by prove_type."""
    from solvers.colgen.master import Master
    from solvers.colgen.pricing import singleton_columns
    from solvers.colgen.solver import ColumnGeneration, Progress

    index = Index.of(problem)
    solver, pool = ColumnGeneration(), {}
    master = Master(problem, index)
    solver._add(master, problem, index, pool, singleton_columns(problem, index))
    lp, _, _ = solver._generate(problem, index, master, pool, Progress(), math.inf, prove=True, warm=None,
                                tail_iterations=10**9)
    pricer = SharedPricer(problem, index, type_items(problem, index))
    profits, prices = {}, {}
    for it, flat, demand, cv in zip(pricer.items, pricer.flat, pricer.demand, pricer.cv):
        price = problem.gpu_types[it.type_index].cost_per_hour_usd
        constant = master.shared_gpu_constant(it.type_index, lp.duals)
        proof = prove_type(it, flat, cv, demand, lp.duals.demand[it.model_indices],
                           lp.duals.presence[it.model_indices], constant, problem.max_utilization, 1e-3 * price,
                           finest_ratio=1.001, cells=256, max_knapsacks=2000)
        profits[it.type_index], prices[it.type_index] = proof.profit_bound, price
    return scaled_dual_bound(lp.value, profits, prices), lp.value


@functools.cache
def _with_optimum(family: str, seed: int):
    from solvers.registry import get_solver

    problem = build_problem({"sharing": sharing_scenario, "mixed": mixed_scenario}[family](seed))
    exact = get_solver("enum-milp").solve(problem, EXACT_SETTINGS)
    return problem, exact, _scaled_dual_bound(problem)


@pytest.mark.parametrize("family", ["sharing", "mixed"])
@pytest.mark.parametrize("seed", range(12))
def test_the_scaled_dual_bound_never_exceeds_the_exact_optimum(family, seed):
    """Farley's bound (scaled_dual_bound) holds for every plan: at most the enum-milp
    optimum (every pattern) on seeded instances with sharing, interference, TP and bursty
    arrivals (tests/test_replica_relaxation.py's families), and at most the LP it scales."""
    from planner.problem import SolveStatus

    problem, exact, (bound, lp_value) = _with_optimum(family, seed)
    assert bound <= lp_value + 1e-9 * max(1.0, lp_value)
    if exact.status is SolveStatus.OPTIMAL:
        assert bound <= exact.value + 1e-6 * max(1.0, exact.value), (bound, exact.value)


def test_the_scaled_dual_bound_is_the_lp_where_pricing_proves_it_converged():
    """The bound must bite: on some of those instances exact pricing proves the pattern LP
    (the bound is the LP value to 0.1%), and on some it is above the replica relaxation's LP."""
    from planner.problem import SolveStatus
    from solvers.replica_relaxation import replica_cost_bound

    at_lp = above_replica = 0
    for family in ("sharing", "mixed"):
        for seed in range(12):
            problem, exact, (bound, lp_value) = _with_optimum(family, seed)
            if exact.status is not SolveStatus.OPTIMAL:
                continue
            at_lp += bound >= lp_value * (1 - 1e-3)
            above_replica += bound > replica_cost_bound(problem).value * (1 + 1e-6)
    assert at_lp >= 3 and above_replica >= 3, (at_lp, above_replica)
