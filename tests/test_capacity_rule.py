"""The capacity rule, planner.capacity.planned_share: its shape, its compiled twin, and
that a replica planned at it holds its SLO in the simulator (docs/capacity.md)."""

from __future__ import annotations

import math

import numba
import pytest

from planner.capacity import QUEUE_Z, build_candidates, planned_share
from planner.errors import UsageError
from planner.problem import SolveSettings, build_problem
from planner.scenario import Scenario
from planner.simulator import SimulationSettings, simulate_plan
from solvers.registry import get_solver

U = 0.8


def share(b: int, k: int, cv: float, u: float = U) -> float:
    """planned_share for a model alone (D = own = 10 ms) with an SLO of exactly k cycles."""
    return planned_share(b, 10.0, 10.0, 10.0 + 10.0 * k, cv, u)


def test_hand_computed_value():
    # b = 8, k = 1, cv = 1: a = k b / cv^2 = 8; root = 1 - 1/72 - 1.5 / (3 sqrt 8)
    # = 1 - 0.0138889 - 0.1767767 = 0.8093344; share = root^3 = 0.530124 (< U = 0.8).
    assert QUEUE_Z == 1.5
    assert share(8, 1, 1.0) == pytest.approx(0.8093344 ** 3, rel=1e-6)
    # cv = 2 quarters a: a = 2, root = 1 - 0.0555556 - 0.3535534 = 0.5908910, share 0.206311.
    assert share(8, 1, 2.0) == pytest.approx(0.5908910 ** 3, rel=1e-6)


@pytest.mark.parametrize("cv", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_monotone_in_batch(k, cv):
    values = [share(b, k, cv) for b in (1, 2, 4, 8, 16, 32, 64, 128)]
    assert all(x <= y for x, y in zip(values, values[1:]))
    assert all(0.0 <= x <= U for x in values)


@pytest.mark.parametrize("cv", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("b", [1, 4, 16, 64])
def test_monotone_in_tolerance(b, cv):
    values = [share(b, k, cv) for k in (1, 2, 3, 4, 8, 16)]
    assert all(x <= y for x, y in zip(values, values[1:]))


def test_equals_max_utilization_for_large_batches_and_tolerance():
    assert share(64, 4, 1.0) == U
    assert share(512, 1, 2.0) == U
    assert share(64, 4, 1.0, u=0.5) == 0.5


def test_tends_to_max_utilization_as_cv_vanishes():
    values = [share(1, 1, cv) for cv in (1.0, 0.5, 0.2, 0.1, 0.05)]
    assert all(x < y for x, y in zip(values[:-2], values[1:-1]))
    assert values[-1] == U
    assert share(1, 1, 0.0) == U


def test_zero_when_the_latency_rule_fails_or_arrivals_are_too_bursty():
    assert planned_share(8, 10.0, 10.0, 19.9, 1.0, U) == 0.0  # D + own > slo: k = 0
    assert share(1, 1, 2.0) == 0.0  # a = 1/4: no rate holds 99% (reports/capacity_calibration.md)


def test_compiled_twin_is_the_same_function():
    compiled = numba.njit(planned_share)
    for b, cycle, own, slo, cv in [(1, 10.0, 10.0, 20.0, 1.0), (7, 30.5, 12.0, 100.0, 1.5), (64, 5.0, 5.0, 40.0, 2.0),
                                   (3, 10.0, 10.0, 19.0, 1.0), (16, 8.0, 4.0, 60.0, 0.0)]:
        assert compiled(b, cycle, own, slo, cv, U) == planned_share(b, cycle, own, slo, cv, U)


def _one_model(cv: float, slo_ms: float = 2500.0, rate_rps: float = 1.0) -> Scenario:
    # The shape of issue 4's miss (llm-0182): l(b) = 175 + 175 b ms up to b = 7 (l(7) = 1400),
    # so at the SLO 2500 ms the largest batch with 2 l(b) <= slo is b = 6 (l = 1225, k = 1).
    return Scenario.model_validate({
        "name": "rule", "max_utilization": U,
        "gpu_types": [{"name": "G", "memory_gib": 80, "cost_per_hour_usd": 1.0}],
        "models": [{"name": "m", "memory_gib": 10, "slo_ms": slo_ms,
                    "profiles": {"G": {"base_ms": 175.0, "per_item_ms": 175.0, "max_batch": 7}}}],
        "demand": [{"model": "m", "rate_rps": rate_rps, "cv": cv}],
    })


def test_candidates_plan_at_the_share_and_the_simulator_agrees():
    sc = _one_model(cv=1.0)
    row = build_candidates(sc).iloc[0]
    # b = 6: l = 1225 ms, k = floor((2500 - 1225) / 1225) = 1, a = 6,
    # root = 1 - 0.0185185 - 0.2041241 = 0.7773574, share = root^3 = 0.469746,
    # planned = 0.469746 x 1000 x 6 / 1225 = 2.30079 req/s (max_utilization alone: 3.918).
    assert row.batch_size == 6
    assert row.planned_rps == pytest.approx(0.7773574 ** 3 * 6000 / 1225, rel=1e-6)
    # One replica loaded to exactly its planned rate holds 99% under Poisson arrivals.
    from planner.pipeline import plan_scenario

    loaded = _one_model(cv=1.0, rate_rps=math.floor(row.planned_rps * 1000) / 1000)  # 2.300: solvers round rates down
    plan = plan_scenario(loaded, solver="cpsat-type").plan
    assert len(plan.gpus) == 1
    result = simulate_plan(loaded, plan, SimulationSettings(duration_s=20_000.0, seed=1))
    assert result.models[0].slo_attainment >= 0.99


def test_direct_solvers_refuse_when_the_share_is_below_max_utilization():
    problem = build_problem(_one_model(cv=1.0))
    for name in ("direct-milp", "direct-cpsat"):
        with pytest.raises(UsageError, match="capacity rule"):
            get_solver(name).solve(problem, SolveSettings(time_limit_s=5.0))
    even = build_problem(_one_model(cv=0.0))
    result = get_solver("direct-milp").solve(even, SolveSettings(time_limit_s=5.0))
    assert math.isfinite(result.value)
