"""One small instance per type-level constraint family, where only that family binds,
with the optimum computed by hand (the arithmetic is in each test's comment).

Capacity arithmetic used throughout (planner/capacity.py): a replica with batch b taking
l(b) ms serves 1000 b / l(b) req/s at full load; the plan may route max_utilization (U)
times that. A profile `batch_ms: {1: 10}` therefore gives 100 req/s at full load, batch 1,
and with the default U = 0.8 here, 80 planned req/s. SLOs are generous (1 s against 10 ms
batches) so that only the family under test binds (a queueing cap on planned load, if the
capacity model has one, stays above U).
"""

from __future__ import annotations

from collections import Counter

import pytest

from planner.capacity import build_candidates
from planner.checks import check_scenario
from planner.pipeline import plan_scenario
from planner.problem import SolveSettings
from planner.scenario import Scenario
from planner.verify import verify_plan

ONE_BATCH_10MS = {"batch_ms": {1: 10.0}}  # 100 req/s at full load


def gpu(name: str, cost: float, memory: float = 80.0, count: int | None = None, per_node: int = 8) -> dict:
    entry = {"name": name, "memory_gib": memory, "cost_per_hour_usd": cost, "gpus_per_node": per_node}
    if count is not None:
        entry["count"] = count
    return entry


def model(name: str, profiles: dict, memory: float = 1.0, slo: float = 1000.0, **extra) -> dict:
    return {"name": name, "memory_gib": memory, "slo_ms": slo, "profiles": profiles, **extra}


def scenario(gpus: list[dict], models: list[dict], demand: dict[str, float], cv: float = 0.0, **top) -> Scenario:
    # Evenly spaced arrivals (cv 0) by default: the capacity rule's planned_share is then
    # max_utilization, so only the family under test binds (the rule has its own tests).
    raw = {"name": "family", "max_utilization": 0.8, "gpu_types": gpus, "models": models,
           "demand": [{"model": m, "rate_rps": r, "cv": cv} for m, r in demand.items()], **top}
    return Scenario.model_validate(raw)


def solve(sc: Scenario, solver: str = "cpsat-type"):
    outcome = plan_scenario(sc, solver, SolveSettings(time_limit_s=20))
    assert verify_plan(sc, outcome.plan) == []
    return outcome.plan


def gpus_per_type(plan) -> dict[str, int]:
    return dict(Counter(g.type for g in plan.gpus))


def assert_greedy_not_better(sc: Scenario, optimum: float) -> None:
    plan = solve(sc, "greedy-type")
    if plan.status == "infeasible":
        return
    if sc.objective == "min_cost":
        assert plan.cost_per_hour_usd >= optimum - 1e-6
    else:
        assert plan.objective.value <= optimum + 1e-6


# ------------------------------------------------------------------ demand coverage


@pytest.mark.parametrize(("demand", "expected_replicas"), [(240.0, 3), (240.001, 4), (250.0, 4)])
def test_demand_coverage_rounds_replicas_up(demand, expected_replicas):
    # U = 0.8, capacity 100 req/s -> 80 planned req/s per replica at $2/h.
    # 240 / 80 = 3 exactly -> 3 replicas ($6); 240.001 / 80 and 250 / 80 -> 4 replicas ($8).
    sc = scenario([gpu("A", 2.0)], [model("m", {"A": ONE_BATCH_10MS})], {"m": demand}, max_utilization=0.8)
    plan = solve(sc)
    assert plan.status == "optimal"
    assert gpus_per_type(plan) == {"A": expected_replicas}
    assert plan.cost_per_hour_usd == pytest.approx(2.0 * expected_replicas)
    assert plan.models["m"].served_rps == pytest.approx(demand)


def test_demand_coverage_mixes_types():
    # A: $1/h, batch 20 ms -> 50 req/s, 40 planned.  B: $3/h, 5 ms -> 200 req/s, 160 planned.
    # Demand 200 req/s: a*40 + b*160 >= 200, minimise a + 3b:  b=0 -> a=5, $5;  b=1 -> a=1, $4;  b=2 -> $6.
    # Optimum $4 with one of each. (B is cheaper per req/s, so the greedy takes 2 B: $6.)
    sc = scenario([gpu("A", 1.0), gpu("B", 3.0)],
                  [model("m", {"A": {"batch_ms": {1: 20.0}}, "B": {"batch_ms": {1: 5.0}}})], {"m": 200.0})
    plan = solve(sc)
    assert plan.status == "optimal"
    assert plan.cost_per_hour_usd == pytest.approx(4.0)
    assert gpus_per_type(plan) == {"A": 1, "B": 1}
    assert plan.objective.bound == pytest.approx(4.0)
    assert_greedy_not_better(sc, 4.0)


# ------------------------------------------------------------------------ inventory


def test_inventory_limits_the_cheap_type():
    # A: $1/h, count 2; B: $3/h, unlimited; both 80 planned req/s. Demand 360 -> 360/80 = 4.5 -> 5 replicas.
    # Without inventory: 5 x A = $5. With it: 2 x A + 3 x B = 2 + 9 = $11.
    sc = scenario([gpu("A", 1.0, count=2), gpu("B", 3.0)],
                  [model("m", {"A": ONE_BATCH_10MS, "B": ONE_BATCH_10MS})], {"m": 360.0})
    plan = solve(sc)
    assert plan.status == "optimal"
    assert gpus_per_type(plan) == {"A": 2, "B": 3}
    assert plan.cost_per_hour_usd == pytest.approx(11.0)
    assert_greedy_not_better(sc, 11.0)


def test_inventory_shortage_is_infeasible():
    # Only A (count 2, 80 planned req/s each) and demand 200 -> needs 3 GPUs: no plan.
    sc = scenario([gpu("A", 1.0, count=2)], [model("m", {"A": ONE_BATCH_10MS})], {"m": 200.0})
    plan = solve(sc)
    assert plan.status == "infeasible"
    assert plan.gpus == []


# ---------------------------------------------------------------- TP groups in nodes


@pytest.mark.parametrize(
    ("count", "per_node", "degree", "groups_on_a"),
    [
        # 8 GPUs in nodes of 6 -> nodes [6, 2]: one group of 4 fits (6 // 4 + 2 // 4 = 1),
        # although 8 GPUs would hold two groups if groups could straddle nodes.
        (8, 6, 4, 1),
        # 7 GPUs in nodes of 4 -> nodes [4, 3]: one group of 4 (the 3-GPU node holds none).
        (7, 4, 4, 1),
        # 6 GPUs in nodes of 3 -> nodes [3, 3]: groups of 2 fit once per node -> 2 groups.
        (6, 3, 2, 2),
    ],
)
def test_tp_groups_stay_inside_nodes(count, per_node, degree, groups_on_a):
    # The model (70 GiB on 40 GiB GPUs) needs tp >= 2; it may run only at `degree`, and a
    # group plans 80 req/s. A: $1/GPU (limited), B: $2/GPU, unlimited, nodes of 8.
    # Demand: 3 groups (240 req/s). Optimum: `groups_on_a` groups on A, the rest on B:
    # cost = degree * (1 * groups_on_a + 2 * (3 - groups_on_a)).
    tp_profile = {"tp": {degree: ONE_BATCH_10MS}}
    sc = scenario([gpu("A", 1.0, memory=40, count=count, per_node=per_node), gpu("B", 2.0, memory=40)],
                  [model("llm", {"A": tp_profile, "B": tp_profile}, memory=70.0, tensor_parallel=[degree])],
                  {"llm": 240.0})
    plan = solve(sc)
    expected = degree * (1.0 * groups_on_a + 2.0 * (3 - groups_on_a))
    assert plan.status == "optimal"
    assert plan.cost_per_hour_usd == pytest.approx(expected)
    assert gpus_per_type(plan) == {"A": degree * groups_on_a, "B": degree * (3 - groups_on_a)}
    groups: dict[str, set[str]] = {}
    for g in plan.gpus:
        for r in g.replicas:
            groups.setdefault(r.group, set()).add(g.node)
    assert all(len(nodes) == 1 for nodes in groups.values())
    assert_greedy_not_better(sc, expected)


# --------------------------------------------------------------------------- budget


def test_budget_limits_max_throughput():
    # max_throughput. X: $1/h replica, 80 planned req/s, demand 160. Y: $2/h, 80 req/s,
    # demand 400. Budget $5/h. Served = 80 x (replicas bought), within demand:
    # $ per req/s is lowest on X, but X is capped at 160 -> 2 X ($2) + 1 Y ($2) = 240 req/s,
    # $1 left buys nothing of Y; 1 X + 2 Y ($5) also serves 240. Optimum: 240 req/s.
    sc = scenario([gpu("GX", 1.0), gpu("GY", 2.0)],
                  [model("X", {"GX": ONE_BATCH_10MS}), model("Y", {"GY": ONE_BATCH_10MS})],
                  {"X": 160.0, "Y": 400.0}, objective="max_throughput", budget_usd_per_hour=5.0)
    plan = solve(sc)
    assert plan.status == "optimal"
    assert plan.objective.value == pytest.approx(240.0)
    assert plan.cost_per_hour_usd <= 5.0 + 1e-9
    assert plan.objective.bound == pytest.approx(240.0)
    assert_greedy_not_better(sc, 240.0)


def test_budget_makes_min_cost_infeasible():
    # min_cost needs 3 replicas at $1 = $3 for 240 req/s (80 each); a $2.5 budget allows no plan.
    sc = scenario([gpu("A", 1.0)], [model("m", {"A": ONE_BATCH_10MS})], {"m": 240.0}, budget_usd_per_hour=2.5)
    assert solve(sc).status == "infeasible"


# --------------------------------------------------------------- served caps (demand)


def test_max_throughput_serves_at_most_demand():
    # Budget $100/h is far from binding; 80 planned req/s per replica. X demand 200:
    # 3 replicas (240 req/s) serve 200 (capped at demand); Y demand 24: 1 replica serves 24.
    # Optimum 200 + 24 = 224 req/s, the bound is the total demand, 224.
    sc = scenario([gpu("A", 1.0)], [model("X", {"A": ONE_BATCH_10MS}), model("Y", {"A": ONE_BATCH_10MS})],
                  {"X": 200.0, "Y": 24.0}, objective="max_throughput", budget_usd_per_hour=100.0)
    plan = solve(sc)
    assert plan.status == "optimal"
    assert plan.objective.value == pytest.approx(224.0)
    assert plan.models["X"].served_rps == pytest.approx(200.0)
    assert plan.models["Y"].served_rps == pytest.approx(24.0)
    assert plan.objective.bound == pytest.approx(224.0)


# ------------------------------------------------------------------------- fairness


@pytest.mark.parametrize(("fairness", "expected_value", "expected_served"),
                         [(False, 240.0, {"X": 240.0, "Y": 0.0}), (True, 200.0, {"X": 160.0, "Y": 40.0})])
def test_fairness_raises_the_smallest_share_first(fairness, expected_value, expected_served):
    # Budget $3/h, every replica $1/h. X: 80 planned req/s per replica, demand 240; Y: 40
    # (batch 20 ms), demand 80. With (a, b) replicas of X and Y, a + b <= 3:
    #   without fairness: maximise 80a + 40b -> (3, 0): 240 req/s, Y gets nothing.
    #   with fairness: maximise min(80a/240, 40b/80) first:
    #   (3,0) -> 0, (2,1) -> min(0.667, 0.5) = 0.5, (1,2) -> min(0.333, 1) = 0.333, (0,3) -> 0;
    #   so (2, 1): 160 + 40 = 200 req/s.
    sc = scenario([gpu("A", 1.0)],
                  [model("X", {"A": ONE_BATCH_10MS}), model("Y", {"A": {"batch_ms": {1: 20.0}}})],
                  {"X": 240.0, "Y": 80.0}, objective="max_throughput", budget_usd_per_hour=3.0, fairness=fairness)
    plan = solve(sc)
    assert plan.status == "optimal"
    assert plan.objective.value == pytest.approx(expected_value)
    for name, served in expected_served.items():
        assert plan.models[name].served_rps == pytest.approx(served)


# ----------------------------------------------------------------------- priorities


def test_priority_decides_who_gets_the_budget():
    # Budget $1/h buys one replica (80 planned req/s). X priority 1, Y priority 3, demand 80 each.
    # Value = sum priority x served: X -> 80, Y -> 240. Optimum: Y, value 240.
    sc = scenario([gpu("A", 1.0)],
                  [model("X", {"A": ONE_BATCH_10MS}, priority=1.0), model("Y", {"A": ONE_BATCH_10MS}, priority=3.0)],
                  {"X": 80.0, "Y": 80.0}, objective="max_throughput", budget_usd_per_hour=1.0)
    plan = solve(sc)
    assert plan.status == "optimal"
    assert plan.objective.value == pytest.approx(240.0)
    assert plan.models["Y"].served_rps == pytest.approx(80.0)
    assert plan.models["X"].served_rps == pytest.approx(0.0)
    assert_greedy_not_better(sc, 240.0)


# ------------------------------------------------------------------ max_utilization


@pytest.mark.parametrize(("utilization", "replicas"), [(1.0, 3), (0.8, 3), (0.6, 4), (0.5, 5)])
def test_max_utilization_sets_planned_capacity(utilization, replicas):
    # Capacity 100 req/s, demand 240: replicas = ceil(240 / (100 U)):
    # U=1 -> ceil(2.4) = 3; U=0.8 -> 240/80 = 3; U=0.6 -> 240/60 = 4; U=0.5 -> 240/50 = 4.8 -> 5.
    sc = scenario([gpu("A", 1.0)], [model("m", {"A": ONE_BATCH_10MS})], {"m": 240.0}, max_utilization=utilization)
    plan = solve(sc)
    assert plan.status == "optimal"
    assert gpus_per_type(plan) == {"A": replicas}
    for g in plan.gpus:
        for r in g.replicas:
            assert r.rate_rps <= utilization * r.capacity_rps + 1e-6


# ------------------------------------------------------- SLO-limited batch (capacity)


@pytest.mark.parametrize(
    ("profile", "slo_ms", "batch", "batch_ms"),
    [
        # l(b) = 10 + 2b ms, b <= 32. b/l(b) grows with b, so the largest b with 2 l(b) <= SLO:
        # SLO 60 -> l <= 30 -> b <= 10 -> b = 10, l = 30 ms, capacity 1000*10/30 = 333.33 req/s.
        ({"base_ms": 10, "per_item_ms": 2, "max_batch": 32}, 60.0, 10, 30.0),
        # SLO 1000 -> every batch fits -> b = max_batch = 32, l = 74 ms, 432.43 req/s.
        ({"base_ms": 10, "per_item_ms": 2, "max_batch": 32}, 1000.0, 32, 74.0),
        # Points {1: 4, 8: 7.5, 32: 21}: between 8 and 32, l(b) = 7.5 + 0.5625 (b - 8).
        # SLO 20 -> l <= 10 -> b - 8 <= 4.44 -> b = 12, l = 9.75 ms, 1230.77 req/s.
        ({"batch_ms": {1: 4.0, 8: 7.5, 32: 21.0}}, 20.0, 12, 9.75),
        # SLO 8 -> l <= 4: only b = 1 (4 ms), 250 req/s.
        ({"batch_ms": {1: 4.0, 8: 7.5, 32: 21.0}}, 8.0, 1, 4.0),
    ],
)
def test_slo_limits_the_batch(profile, slo_ms, batch, batch_ms):
    sc = scenario([gpu("A", 1.0)], [model("m", {"A": profile}, slo=slo_ms)], {"m": 100.0})
    table = build_candidates(sc)
    assert len(table) == 1
    row = table.iloc[0]
    assert int(row.batch_size) == batch
    assert row.batch_ms == pytest.approx(batch_ms)
    assert row.capacity_rps == pytest.approx(1000.0 * batch / batch_ms)
    assert row.latency_ms == pytest.approx(2 * batch_ms)
    assert row.latency_ms <= slo_ms
    plan = solve(sc)
    assert plan.gpus[0].replicas[0].batch_size == batch
    assert plan.models["m"].predicted_latency_ms <= slo_ms


def test_slo_no_batch_fits_is_infeasible():
    # Batch 1 takes 4 ms -> worst latency 8 ms > SLO 7: no candidate, no plan.
    sc = scenario([gpu("A", 1.0)], [model("m", {"A": {"batch_ms": {1: 4.0, 8: 7.5}}}, slo=7.0)], {"m": 10.0})
    assert build_candidates(sc).empty
    assert any(f.kind == "infeasible" and f.location == "models[0].slo_ms" for f in check_scenario(sc))
    assert solve(sc).status == "infeasible"


# --------------------------------------------------------------------------- memory


def test_memory_forces_tensor_parallel():
    # 30 GiB model on 24 GiB GPUs: tp 1 does not fit, tp 2 (15 GiB per GPU) does.
    # A tp-2 group plans 80 req/s; demand 120 -> 2 groups = 4 GPUs x $1 = $4.
    sc = scenario([gpu("L4", 1.0, memory=24.0, per_node=4)],
                  [model("llm", {"L4": {"batch_ms": {1: 10.0}, "tp": {2: ONE_BATCH_10MS}}}, memory=30.0,
                         tensor_parallel=[1, 2])],
                  {"llm": 120.0})
    table = build_candidates(sc)
    assert list(table.tensor_parallel) == [2]
    assert table.memory_per_gpu_gib.iloc[0] == pytest.approx(15.0)
    plan = solve(sc)
    assert plan.status == "optimal"
    assert plan.cost_per_hour_usd == pytest.approx(4.0)
    assert {r.tensor_parallel for g in plan.gpus for r in g.replicas} == {2}


def test_memory_without_tensor_parallel_is_infeasible():
    # The same model allowed only tp 1 fits nowhere: a finding, and an infeasible plan.
    sc = scenario([gpu("L4", 1.0, memory=24.0)], [model("llm", {"L4": ONE_BATCH_10MS}, memory=30.0)], {"llm": 150.0})
    assert build_candidates(sc).empty
    assert any(f.kind == "infeasible" and f.location == "models[0]" for f in check_scenario(sc))
    assert solve(sc).status == "infeasible"
