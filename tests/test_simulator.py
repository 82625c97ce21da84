"""The simulator against queueing theory, and its documented behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from simulator_helpers import one_gpu_scenario, plan_for

from planner.errors import ScenarioError
from planner.simulator import SimulationSettings, simulate_plan


def _md1(rate_rps: float, service_ms: float, duration_s: float, seed: int = 1, **settings):
    scenario = one_gpu_scenario([{"name": "m", "service_ms": service_ms, "rate_rps": rate_rps, "slo_ms": 1e6}])
    plan = plan_for(scenario, [[("m", 1)]])
    return simulate_plan(scenario, plan, SimulationSettings(duration_s=duration_s, seed=seed, **settings))


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_mean_latency_matches_pollaczek_khinchine(rho):
    service_ms = 1.0
    rate_rps = rho * 1000.0 / service_ms
    result = _md1(rate_rps, service_ms, duration_s=2000.0).model("m")
    expected_ms = service_ms + rho * service_ms / (2.0 * (1.0 - rho))  # P-K for deterministic service
    assert result.finished == result.offered > 900_000
    assert result.mean_ms == pytest.approx(expected_ms, rel=0.03)


def test_littles_law_busy_share_is_throughput_times_service_time():
    service_ms, rate_rps = 2.0, 300.0
    result = _md1(rate_rps, service_ms, duration_s=600.0)
    model = result.model("m")
    # L = lambda W for the server: the mean number in service is its busy share
    assert result.gpus[0].utilization == pytest.approx(model.completed_rps * service_ms / 1000.0, rel=0.005)
    assert result.gpus[0].utilization == pytest.approx(rate_rps * service_ms / 1000.0, rel=0.02)
    assert model.completed_rps == pytest.approx(model.offered_rps, rel=0.001)


def test_saturated_unbounded_queue_serves_at_capacity_and_latency_grows():
    service_ms, rate_rps, duration_s = 1.0, 1500.0, 100.0  # rho = 1.5
    result = _md1(rate_rps, service_ms, duration_s)
    model = result.model("m")
    assert model.dropped == 0 and model.finished == model.offered  # nothing is dropped: the queue only grows
    assert model.completed_rps == pytest.approx(1000.0 / service_ms, rel=0.002)
    assert result.gpus[0].utilization == pytest.approx(1.0, abs=1e-3)  # idle only before the first arrival
    # a request arriving at t waits for the backlog (rho - 1) t: mean latency (rho - 1) T / 2
    assert model.mean_ms == pytest.approx(0.5 * duration_s * 1000.0 * (rate_rps / 1000.0 * service_ms - 1.0), rel=0.03)


def test_saturated_queue_with_max_queue_delay_drops_the_excess():
    service_ms, rate_rps, max_queue_ms = 1.0, 1500.0, 50.0
    result = _md1(rate_rps, service_ms, 100.0, max_queue_ms=max_queue_ms)
    model = result.model("m")
    assert model.max_ms <= max_queue_ms + service_ms + 1e-6
    assert model.dropped / model.offered == pytest.approx(1.0 - 1000.0 / rate_rps, abs=0.01)
    assert model.completed_rps == pytest.approx(1000.0 / service_ms, rel=0.002)
    assert model.slo_attainment == pytest.approx(1.0 - model.dropped / model.offered, abs=1e-3)


def test_max_queue_delay_drops_nothing_below_saturation():
    result = _md1(500.0, 1.0, 60.0, max_queue_ms=100.0).model("m")
    assert result.dropped == 0


def test_same_seed_same_output_and_windows_do_not_matter():
    scenario = one_gpu_scenario([
        {"name": "a", "base_ms": 2.0, "per_item_ms": 0.5, "max_batch": 16, "rate_rps": 900.0, "cv": 2.0},
        {"name": "b", "base_ms": 5.0, "per_item_ms": 1.0, "max_batch": 8, "rate_rps": 200.0},
    ])
    plan = plan_for(scenario, [[("a", 16), ("b", 8)], [("a", 8)]])
    first = simulate_plan(scenario, plan, SimulationSettings(duration_s=30.0, seed=7))
    again = simulate_plan(scenario, plan, SimulationSettings(duration_s=30.0, seed=7))
    windowed = simulate_plan(scenario, plan, SimulationSettings(duration_s=30.0, seed=7, window_requests=997))
    other = simulate_plan(scenario, plan, SimulationSettings(duration_s=30.0, seed=8))
    assert first.to_json() == again.to_json() == windowed.to_json()
    assert first.to_json() != other.to_json()


def test_round_robin_gives_each_saturated_member_its_batch_per_cycle():
    # two saturated models on one GPU: cycle D = l_a(b_a) + l_b(b_b); member m is served 1000 b_m / D req/s
    scenario = one_gpu_scenario([
        {"name": "a", "base_ms": 4.0, "per_item_ms": 0.5, "max_batch": 8, "rate_rps": 5000.0},
        {"name": "b", "base_ms": 10.0, "per_item_ms": 1.25, "max_batch": 4, "rate_rps": 5000.0},
    ], interference_factor=1.5)
    plan = plan_for(scenario, [[("a", 8), ("b", 4)]])
    result = simulate_plan(scenario, plan, SimulationSettings(duration_s=60.0, seed=3))
    cycle_ms = 1.5 * (4.0 + 0.5 * 8) + 1.5 * (10.0 + 1.25 * 4)  # shared GPU: times x interference_factor
    assert result.model("a").completed_rps == pytest.approx(1000.0 * 8 / cycle_ms, rel=0.01)
    assert result.model("b").completed_rps == pytest.approx(1000.0 * 4 / cycle_ms, rel=0.01)


def test_dynamic_batching_takes_what_waits_up_to_the_batch_size():
    # evenly spaced arrivals (cv 0) every 1 ms, a batch takes 2.5 ms flat: the GPU never
    # idles after the start and runs batches of 2 or 3, never more than the batch size 4
    scenario = one_gpu_scenario([{"name": "m", "base_ms": 2.5, "per_item_ms": 0.0, "max_batch": 4,
                                  "rate_rps": 1000.0, "cv": 0.0}])
    result = simulate_plan(scenario, plan_for(scenario, [[("m", 4)]]), SimulationSettings(duration_s=20.0))
    model = result.model("m")
    assert model.max_ms <= 2.5 + 2.5 + 1e-9  # waits at most one batch in flight, then runs
    assert result.gpus[0].utilization == pytest.approx(1.0, abs=0.001)


def test_tensor_parallel_group_is_one_server_and_its_gpus_are_busy_together():
    scenario = one_gpu_scenario([{"name": "big", "service_ms": 10.0, "rate_rps": 50.0, "tensor_parallel": [2],
                                  "slo_ms": 1e6}])
    plan = plan_for(scenario, [[("big", 1)]], tp_groups={0: 2})
    result = simulate_plan(scenario, plan, SimulationSettings(duration_s=600.0, seed=2))
    assert len(result.gpus) == 2
    assert result.gpus[0].utilization == result.gpus[1].utilization == pytest.approx(0.5, rel=0.03)
    rho = 0.5
    assert result.model("big").mean_ms == pytest.approx(10.0 + rho * 10.0 / (2 * (1 - rho)), rel=0.04)


def test_routing_follows_the_plans_shares_and_sheds_unserved_demand():
    scenario = one_gpu_scenario([{"name": "m", "service_ms": 1.0, "rate_rps": 400.0}])
    plan = plan_for(scenario, [[("m", 1)], [("m", 1)]])
    plan.routing["m"] = {"G-0": 0.25, "G-1": 0.75}
    plan.models["m"].served_rps = 300.0  # serves 3/4 of the demand: the rest is rejected
    result = simulate_plan(scenario, plan, SimulationSettings(duration_s=200.0, seed=4))
    model = result.model("m")
    assert model.rejected / model.offered == pytest.approx(0.25, abs=0.01)
    busy = [g.utilization for g in result.gpus]  # 0.25 and 0.75 of 300 req/s at 1 ms
    assert busy[0] == pytest.approx(0.075, rel=0.05) and busy[1] == pytest.approx(0.225, rel=0.05)
    assert model.slo_attainment == pytest.approx(0.75, abs=0.01)
    assert model.admitted_slo_attainment == pytest.approx(1.0)


def test_a_plan_for_another_scenario_is_bad_input():
    scenario = one_gpu_scenario([{"name": "m", "service_ms": 1.0, "rate_rps": 100.0}])
    plan = plan_for(scenario, [[("m", 1)]])
    with pytest.raises(ScenarioError, match="for scenario"):
        simulate_plan(scenario, plan.model_copy(update={"scenario": "other"}), SimulationSettings(duration_s=1.0))
    bad = plan.model_copy(deep=True)
    bad.gpus[0].replicas[0].batch_size = 99
    with pytest.raises(ScenarioError, match="batch 99"):
        simulate_plan(scenario, bad, SimulationSettings(duration_s=1.0))
    unknown = plan.model_copy(deep=True)
    unknown.gpus[0].replicas[0].model = "ghost"
    with pytest.raises(ScenarioError, match="unknown model 'ghost'"):
        simulate_plan(scenario, unknown, SimulationSettings(duration_s=1.0))


def test_latency_percentiles_are_ordered_and_attainment_counts_late_requests():
    scenario = one_gpu_scenario([{"name": "m", "service_ms": 1.0, "rate_rps": 900.0, "slo_ms": 5.0}])
    model = simulate_plan(scenario, plan_for(scenario, [[("m", 1)]]),
                          SimulationSettings(duration_s=120.0, seed=5)).model("m")
    assert 1.0 <= model.p50_ms <= model.p95_ms <= model.p99_ms <= model.max_ms
    assert model.p99_ms > 5.0  # at rho 0.9 the tail passes 5 ms ...
    assert 0.5 < model.slo_attainment < 0.99  # ... and those requests count as missed
    assert np.isclose(model.slo_attainment, model.within_slo / model.offered)


# ----------------------------------------------------------------------- calibration of the capacity rule

def test_the_old_rule_alone_misses_the_slo_with_small_batches():
    """A known gap in the capacity rule (issue 4 report): at 80% of 1000 b / cycle with the
    SLO = cycle + own batch, small batches miss their SLO often, because the arrivals of
    one cycle often do not fit in one batch. When the rule gets a queueing term, this plan
    must stop being feasible (see test_bundled_scenario_plans_simulate_at_99_percent)."""
    scenario = one_gpu_scenario([{"name": "m", "base_ms": 50.0, "per_item_ms": 0.0, "max_batch": 4,
                                  "rate_rps": 0.8 * 1000.0 * 4 / 50.0, "slo_ms": 100.0}])
    result = simulate_plan(scenario, plan_for(scenario, [[("m", 4)]]), SimulationSettings(duration_s=2000.0, seed=1))
    assert result.model("m").slo_attainment < 0.9
