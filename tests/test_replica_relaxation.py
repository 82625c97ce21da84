"""The replica relaxation (solvers/replica_relaxation.py): a proven lower bound on min_cost.

- validity: its LP and its MIP never exceed the exact optimum (enum-milp, every pattern) on
  small seeded instances, nor the colgen plan on the bundled scenarios;
- strength: LP >= compact LP (solvers/compact_bound.py), MIP >= LP;
- the shared-member hull: every real (share of the cycle, planned rate) point of a member
  is dominated by the capped hull of `share_rate_points` (hypothesis);
- edge cases: no demand, max_throughput, a budget no plan fits.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packing_instances import EXACT_SETTINGS, mixed_scenario, sharing_scenario

from planner.capacity import batch_latency_ms, planned_share
from planner.generate import generate_scenario
from planner.problem import SolveSettings, SolveStatus, build_problem
from planner.scenario import Profile, Scenario, load_scenario
from solvers.bounds import REPLICA_LP_BAND_RATIO, REPLICA_MIP_BAND_RATIO, best_cost_bound
from solvers.compact_bound import compact_cost_bound
from solvers.registry import get_solver
from solvers.replica_relaxation import (
    capped_hull_vertices,
    replica_cost_bound,
    replica_throughput_bound,
    share_rate_points,
    slo_classes,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
REL = 1e-6


def _at_most(bound: float, value: float) -> bool:
    return bound <= value + REL * max(1.0, abs(value))


# ----------------------------------------------------------------- small seeded instances
FAMILIES = {"sharing": sharing_scenario, "mixed": mixed_scenario}
SEEDS = range(24)


@functools.cache
def _solved(family: str, seed: int):
    """(problem, enum-milp result, LP bound, MIP bound), computed once per instance."""
    problem = build_problem(FAMILIES[family](seed))
    exact = get_solver("enum-milp").solve(problem, EXACT_SETTINGS)
    return problem, exact, replica_cost_bound(problem), replica_cost_bound(problem, integer=True)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("seed", SEEDS)
def test_bound_with_cycle_bands_never_exceeds_the_exact_optimum(family, seed):
    """Cycle bands (every member of a shared GPU takes its point from cycles in the GPU's
    band) at the ratios solvers.bounds uses and one more: LP and MIP never past the optimum,
    and never weaker than without bands (every banded point is a point of the full hull)."""
    problem, exact, lp, mip = _solved(family, seed)
    for ratio in (REPLICA_LP_BAND_RATIO, REPLICA_MIP_BAND_RATIO, 2.0):
        banded_lp = replica_cost_bound(problem, band_ratio=ratio)
        banded_mip = replica_cost_bound(problem, integer=True, band_ratio=ratio)
        if exact.status is SolveStatus.OPTIMAL:
            assert _at_most(banded_lp.value, exact.value), (ratio, banded_lp, exact.value)
            assert _at_most(banded_mip.value, exact.value), (ratio, banded_mip, exact.value)
        if math.isfinite(lp.value):
            assert banded_lp.value >= lp.value - 1e-6 * max(1.0, lp.value), (ratio, banded_lp, lp)
            assert banded_mip.value >= banded_lp.value - 1e-6 * max(1.0, lp.value), (ratio, banded_mip, banded_lp)


def test_cycle_bands_tighten_the_bound_on_some_instances():
    """The bands must matter: on some seeded instances the banded MIP is above the plain one."""
    tighter = 0
    for family in FAMILIES:
        for seed in SEEDS:
            problem, exact, _, mip = _solved(family, seed)
            if exact.status is SolveStatus.OPTIMAL and math.isfinite(mip.value):
                banded = replica_cost_bound(problem, integer=True, band_ratio=REPLICA_MIP_BAND_RATIO)
                tighter += banded.value > mip.value * (1 + 1e-6)
    assert tighter >= 3, tighter


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("seed", SEEDS)
def test_bound_never_exceeds_the_exact_optimum(family, seed):
    problem, exact, lp, mip = _solved(family, seed)
    assert exact.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE), exact.status
    if exact.status is SolveStatus.OPTIMAL:
        assert _at_most(lp.value, exact.value), (lp, exact.value)
        assert _at_most(mip.value, exact.value), (mip, exact.value)  # nan or inf fail here too
    if math.isfinite(lp.value):
        assert lp.lp_value == lp.value  # the default bound is the LP
        # every point of the MIP with SLO classes maps to one of the one-class LP
        assert mip.value >= lp.value - 1e-9, (mip, lp)
        compact = compact_cost_bound(problem)
        assert lp.value >= compact - 1e-6 * max(1.0, compact), (lp.value, compact)


def test_the_family_exercises_sharing_slo_classes_and_bursty_arrivals():
    """The validity test proves little unless optima share GPUs across SLO classes under
    random arrivals, and the bound is tight on some instances."""
    optimal = shared = bursty_shared = classes = tight = 0
    for family in FAMILIES:
        for seed in SEEDS:
            problem, exact, _, mip = _solved(family, seed)
            if exact.status is not SolveStatus.OPTIMAL:
                continue
            optimal += 1
            shares = any(len(pc.pattern.members) > 1 for pc in exact.patterns)
            shared += shares
            bursty_shared += shares and any(m.cv > 0 for m in problem.demanded_models)
            classes += len(slo_classes([m.slo_ms for m in problem.demanded_models])) > 1
            tight += mip.value >= exact.value * (1 - 1e-6)
    counts = (optimal, shared, bursty_shared, classes)
    assert optimal >= 30 and shared >= 20 and bursty_shared >= 12 and classes >= 25, counts
    assert tight >= optimal // 2, (tight, optimal)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("seed", range(0, 24, 3))
def test_root_only_bound_lies_between_the_lp_and_the_exact_optimum(family, seed):
    """The MIP's root alone (solvers.bounds uses it on mid-size instances): a bound no
    weaker than the LP, never past the optimum, and the same numbers every run."""
    problem, exact, lp, _ = _solved(family, seed)
    if exact.status is not SolveStatus.OPTIMAL or not math.isfinite(lp.value):
        return
    for classes in (False, True):
        root = replica_cost_bound(problem, integer=True, root_only=True, slo_classes_on=classes)
        assert root.value >= lp.value - 1e-9, (root, lp)
        assert _at_most(root.value, exact.value), (root, exact.value)
        again = replica_cost_bound(problem, integer=True, root_only=True, slo_classes_on=classes)
        assert again.value == root.value


def test_root_cut_short_by_the_clock_gives_the_lp_value():
    """A root the time limit stops gives the LP value, not a clock-dependent cut bound."""
    problem = build_problem(Scenario.model_validate(generate_scenario(120, 256, 5, 3)))
    lp = replica_cost_bound(problem, slo_classes_on=False)
    cut = replica_cost_bound(problem, integer=True, root_only=True, slo_classes_on=False, time_limit_s=0.05)
    assert cut.value == cut.lp_value == pytest.approx(lp.value, rel=1e-12)
    full = replica_cost_bound(problem, integer=True, root_only=True, slo_classes_on=False, time_limit_s=60.0)
    assert full.value > lp.value  # the cuts do lift it on this fleet (else the test above proves nothing)


# ----------------------------------------------------------------- bundled scenarios
@functools.cache
def _bundled(name: str):
    """(problem, colgen result, LP bound) for a scenario in scenarios/, computed once."""
    problem = build_problem(load_scenario(SCENARIOS / f"{name}.yaml"))
    plan = get_solver("colgen").solve(problem, SolveSettings(time_limit_s=60.0, threads=2))
    assert plan.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE), plan.status
    return problem, plan, replica_cost_bound(problem)


@pytest.mark.parametrize("name", ["quickstart", pytest.param("fleet-50x64", marks=pytest.mark.slow)])
def test_bound_is_below_the_colgen_plan_and_above_the_compact_lp(name):
    problem, plan, lp = _bundled(name)
    assert math.isfinite(lp.value) and lp.value <= plan.value, (lp, plan.value)
    compact = compact_cost_bound(problem)
    assert lp.value >= compact - 1e-6, (lp.value, compact)
    # best_cost_bound, and so colgen's reported bound, include it
    assert best_cost_bound(problem) >= lp.value - 1e-9
    assert plan.bound >= lp.value - 1e-6 * lp.value, (plan.bound, lp.value)


def test_mip_on_the_quickstart_is_above_the_lp_and_below_the_plan():
    problem, plan, lp = _bundled("quickstart")
    mip = replica_cost_bound(problem, integer=True)
    assert lp.value < mip.lp_value <= mip.value <= plan.value, (lp, mip, plan.value)  # classes tighten the LP here
    assert mip.proven_optimal and mip.value == pytest.approx(mip.mip_value)
    # with cycle bands the MIP reaches the plan's cost: colgen's quickstart plan is proven optimal
    banded = replica_cost_bound(problem, integer=True, band_ratio=REPLICA_MIP_BAND_RATIO)
    assert mip.value < banded.value <= plan.value + 1e-9, (mip, banded, plan.value)
    assert banded.value == pytest.approx(plan.value, rel=1e-6)


@pytest.mark.slow
def test_mip_on_fleet_50x64_is_above_the_lp_and_below_the_plan():
    problem, plan, lp = _bundled("fleet-50x64")
    mip = replica_cost_bound(problem, integer=True, max_nodes=5)
    assert lp.value <= mip.lp_value <= mip.value <= plan.value, (lp, mip, plan.value)
    assert mip.value > lp.value + 1.0, (mip, lp)  # whole shared GPUs per SLO class cost more than their LP


# ----------------------------------------------------------------- the shared-member hull
def _hull_rate(vertices: np.ndarray, share: float) -> float:
    """The concave piecewise-linear function through the vertices, flat right of the last."""
    return float(np.interp(share, vertices[:, 0], vertices[:, 1]))


def _cycle_grid(tau: float, room: float) -> np.ndarray:
    """Cycles from tau to room: an even grid plus each k-cycle breakpoint room / k and
    both sides of it (including inside planned_share's 1e-9 floor tolerance)."""
    breaks = room / np.arange(1, int(room / tau) + 2)
    grid = np.concatenate([np.linspace(tau, room, 40), breaks, breaks * (1 + 1e-7), breaks * (1 - 1e-7),
                           breaks * (1 + 1e-10), [room]])
    # a shared member's cycle holds another member's batch too: D >= tau (1 + 1e-6) is
    # ample; at D = tau exactly see test_share_rate_points_at_a_cycle_of_one_batch
    return grid[(grid >= tau * (1 + 1e-6)) & (grid <= room)]


@settings(max_examples=250, deadline=None)
@given(base_ms=st.floats(0.1, 20.0), per_item_ms=st.floats(0.0, 5.0), max_batch=st.integers(1, 48),
       slo_ms=st.floats(1.0, 400.0), cv=st.one_of(st.just(0.0), st.floats(1e-3, 2.0)),
       utilization=st.floats(0.5, 1.0, exclude_min=True), interference=st.floats(1.0, 1.5),
       cap=st.one_of(st.just(math.inf), st.floats(0.5, 20_000.0)),
       band=st.one_of(st.just((0.0, math.inf)), st.tuples(st.floats(0.1, 300.0), st.floats(1.05, 3.0))))
def test_capped_hull_dominates_every_real_member(base_ms, per_item_ms, max_batch, slo_ms, cv, utilization,
                                                 interference, cap, band):
    """Every member's (share, rate) at every cycle in a band [lo, lo x ratio] (or any cycle) lies
    under the capped hull of share_rate_points for that band."""
    floor_ms, ceiling_ms = (band[0], band[0] * band[1]) if band[1] != math.inf else band
    latency = batch_latency_ms(Profile(base_ms=base_ms, per_item_ms=per_item_ms, max_batch=max_batch))
    points = share_rate_points(latency, slo_ms, cv, utilization, interference, min(slo_ms, ceiling_ms), floor_ms)
    vertices = capped_hull_vertices(points, cap)
    if len(vertices):  # a concave, increasing chain within (0, 1] x (0, cap]
        shares, rates = vertices[:, 0], vertices[:, 1]
        assert np.all(np.diff(shares) > 0) and np.all(np.diff(rates) > 0), vertices
        assert shares[0] > 0 and shares[-1] <= 1 + 1e-12 and rates[0] > 0 and rates[-1] <= cap, vertices
        slopes = np.diff(rates) / np.diff(shares)
        assert np.all(np.diff(slopes) <= 1e-6 * np.abs(slopes[:-1])), vertices
    best = 0.0  # the most any cycle gives: D = tau, alone
    for i, batch_ms in enumerate(latency):
        batch, tau = i + 1, float(batch_ms) * interference
        room = slo_ms - tau
        if room < tau:
            continue
        best = max(best, min(planned_share(batch, tau, tau, slo_ms, cv, utilization) * 1000.0 * batch / tau, cap))
        for cycle in _cycle_grid(tau, room):
            if not floor_ms <= cycle <= ceiling_ms:
                continue
            rate = min(planned_share(batch, cycle, tau, slo_ms, cv, utilization) * 1000.0 * batch / cycle, cap)
            if rate <= 0:
                continue  # a member given nothing: the plan without it is better
            share = tau / cycle
            assert len(vertices), (batch, cycle, rate)
            assert share >= vertices[0, 0] - 1e-9, (batch, cycle, share, vertices[0])
            assert _hull_rate(vertices, share) >= rate * (1 - 1e-9), (batch, cycle, share, rate, vertices)
    if len(vertices):  # not looser than the best real point
        assert vertices[-1, 1] <= best * (1 + 1e-9), (vertices[-1], best)


def test_share_rate_points_at_a_cycle_of_one_batch():
    latency, slo_ms, cv, utilization = np.array([1.7]), 5.1, 1.0, 0.8  # 5.1 - 1.7 = 3.3999999999999995 < 2 x 1.7
    rate = planned_share(1, 1.7, 1.7, slo_ms, cv, utilization) * 1000.0 / 1.7  # k = 2 cycles per planned_share
    vertices = capped_hull_vertices(share_rate_points(latency, slo_ms, cv, utilization, 1.0, slo_ms), math.inf)
    assert _hull_rate(vertices, 1.0) >= rate * (1 - 1e-9), (vertices, rate)


def test_capped_hull_of_hand_made_points():
    points = np.array([[0.2, 10.0], [0.4, 30.0], [0.5, 20.0], [0.6, 40.0], [1.0, 50.0], [0.2, 5.0]])
    # upper hull from the least share to the top: (0.2, 10), (0.4, 30), (0.6, 40), (1.0, 50)
    assert np.allclose(capped_hull_vertices(points, math.inf), [[0.2, 10.0], [0.4, 30.0], [0.6, 40.0], [1.0, 50.0]])
    # capped at 35: the crossing on (0.4, 30)-(0.6, 40) is share 0.5
    assert np.allclose(capped_hull_vertices(points, 35.0), [[0.2, 10.0], [0.4, 30.0], [0.5, 35.0]])
    assert np.allclose(capped_hull_vertices(points, 8.0), [[0.2, 8.0]])
    assert capped_hull_vertices(np.zeros((0, 2)), 1.0).shape == (0, 2)


def test_slo_classes_group_consecutive_slos_within_the_ratio():
    assert slo_classes([13.0, 10.0, 12.0, 20.0, 120.0, 100.0, 10.0]) == [(10.0, 13.0), (20.0, 20.0), (100.0, 120.0)]
    assert slo_classes([10.0, 12.0, 14.0], max_ratio=1.3) == [(10.0, 12.0), (14.0, 14.0)]


# ----------------------------------------------------------------- edge cases
def _quickstart() -> Scenario:
    return load_scenario(SCENARIOS / "quickstart.yaml")


def test_no_demand_costs_nothing():
    scenario = _quickstart()
    scenario = scenario.model_copy(update={"demand": [d.model_copy(update={"rate_rps": 0.0}) for d in scenario.demand]})
    for integer in (False, True):
        result = replica_cost_bound(build_problem(scenario), integer=integer)
        assert result.value == 0.0 and result.proven_optimal


def test_max_throughput_has_no_cost_bound():
    scenario = _quickstart().model_copy(update={"objective": "max_throughput", "budget_usd_per_hour": 20.0})
    result = replica_cost_bound(build_problem(scenario), integer=True)
    assert math.isnan(result.value) and math.isnan(result.lp_value) and not result.proven_optimal


def test_budget_below_the_bound_means_no_plan():
    """The budget row: below the LP bound nothing fits (inf); above it the LP is unchanged."""
    scenario = _quickstart()
    free = replica_cost_bound(build_problem(scenario)).value
    tight = build_problem(scenario.model_copy(update={"budget_usd_per_hour": 0.99 * free}))
    for integer in (False, True):
        assert replica_cost_bound(tight, integer=integer).value == math.inf
    loose = build_problem(scenario.model_copy(update={"budget_usd_per_hour": 1.01 * free}))
    assert replica_cost_bound(loose).value == pytest.approx(free, rel=1e-9)


# ----------------------------------------------------------------- max_throughput
def _throughput_scenario(family: str, seed: int) -> Scenario:
    """The same instances with a budget of 40-90% of their min_cost optimum (or of the cost
    of every GPU, where no plan serves all): the budget binds."""
    scenario = FAMILIES[family](seed)
    problem, exact, _, _ = _solved(family, seed)
    full = exact.value if exact.status is SolveStatus.OPTIMAL else sum(
        g.cost_per_hour_usd * (g.count or 0) for g in scenario.gpu_types)
    budget = round(full * (0.4 + 0.05 * (seed % 11)), 2)
    return scenario.model_copy(update={"objective": "max_throughput", "budget_usd_per_hour": budget})


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("seed", range(12))
def test_throughput_bound_is_never_below_the_exact_optimum(family, seed):
    problem = build_problem(_throughput_scenario(family, seed))
    exact = get_solver("enum-milp").solve(problem, EXACT_SETTINGS)
    assert exact.status is SolveStatus.OPTIMAL, exact.status
    everything = sum(m.priority * m.demand_rps for m in problem.demanded_models)
    for relaxed in (replica_throughput_bound(problem), replica_throughput_bound(problem, integer=True)):
        assert relaxed.value >= exact.value - REL * max(1.0, exact.value), (relaxed, exact.value)
        assert relaxed.value <= everything + REL * everything, (relaxed, everything)


def test_throughput_bound_is_tighter_than_serving_everything_when_the_budget_binds():
    tighter = 0
    for seed in range(12):
        problem = build_problem(_throughput_scenario("sharing", seed))
        everything = sum(m.priority * m.demand_rps for m in problem.demanded_models)
        tighter += replica_throughput_bound(problem).value < everything * (1 - 1e-6)
    assert tighter >= 6, tighter
