"""Each infeasibility cause: the explanation names the models and the cause, gives the
smallest fix, and applying that fix (and nothing less) makes the scenario feasible.

The scenarios are tiny and hand-computed. One L4 replica of `m` (base 5 ms + 1 ms per
item, batches up to 16, slo 100 ms) runs batches of 16 in 21 ms: 761.9 req/s at full
load, 609.5 planned at max_utilization 0.8; 3,000 req/s need ceil(4.92) = 5 replicas.
"""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.infeasibility import Change, all_changes, apply_changes, explain_infeasibility
from planner.pipeline import plan_scenario
from planner.problem import SolveSettings
from planner.scenario import Scenario
from planner.verify import verify_plan

SETTINGS = SolveSettings(time_limit_s=20.0, seed=0)


def base(**top) -> dict:
    raw = {
        "format": "scenario/v1",
        "name": "tiny",
        "objective": "min_cost",
        "gpu_types": [{"name": "L4", "memory_gib": 24, "cost_per_hour_usd": 1.0, "gpus_per_node": 4}],
        "models": [{"name": "m", "memory_gib": 10, "slo_ms": 100,
                    "profiles": {"L4": {"base_ms": 5, "per_item_ms": 1, "max_batch": 16}}}],
        "demand": [{"model": "m", "rate_rps": 3000}],
    }
    raw.update(top)
    return raw


def solve(raw: dict):
    return plan_scenario(Scenario.model_validate(raw), "cpsat-type", SETTINGS)


def explained(raw: dict) -> list[dict]:
    outcome = solve(raw)
    assert outcome.plan.status == "infeasible"
    assert outcome.plan.explanation, "an infeasible plan says why"
    return outcome.plan.explanation


def assert_fix_works(raw: dict, explanation: list[dict]) -> Scenario:
    fixed = apply_changes(Scenario.model_validate(raw), all_changes(explanation))
    outcome = solve(fixed.model_dump())
    assert outcome.plan.status == "optimal", outcome.plan.explanation
    assert verify_plan(fixed, outcome.plan) == []
    return fixed


def test_inventory_short_says_plus_three_l4_and_the_fix_works():
    raw = base()
    raw["gpu_types"][0]["count"] = 2
    explanation = explained(raw)
    assert [e["cause"] for e in explanation] == ["inventory_short"]
    item = explanation[0]
    assert item["location"] == "gpu_types[0].count"
    assert item["models"] == ["m"]
    assert "+3 L4" in item["fix"]
    assert item["changes"] == [{"path": "gpu_types[0].count", "from": 2, "to": 5}]
    assert_fix_works(raw, explanation)
    # the smallest: one GPU fewer is still infeasible
    short = copy.deepcopy(raw)
    short["gpu_types"][0]["count"] = 4
    assert solve(short).plan.status == "infeasible"


def test_budget_short_min_cost_says_plus_dollars_and_the_fix_works():
    raw = base(budget_usd_per_hour=3.0)
    explanation = explained(raw)
    assert [e["cause"] for e in explanation] == ["budget_short"]
    item = explanation[0]
    assert "+$2.00/h budget" in item["fix"]
    assert "$5.00/h" in item["problem"]
    assert item["changes"] == [{"path": "budget_usd_per_hour", "from": 3.0, "to": 5.0}]
    assert_fix_works(raw, explanation)
    assert solve(base(budget_usd_per_hour=4.99)).plan.status == "infeasible"


def test_slo_unreachable_even_at_batch_one_says_raise_slo_and_the_fix_works():
    raw = base()
    raw["models"][0]["slo_ms"] = 10  # batch 1 takes 6 ms: 2 x 6 = 12 ms at best
    explanation = explained(raw)
    assert [e["cause"] for e in explanation] == ["slo_unreachable"]
    item = explanation[0]
    assert item["location"] == "models[0].slo_ms"
    assert "raise slo_ms to 12" in item["fix"]
    assert item["changes"] == [{"path": "models[0].slo_ms", "from": 10.0, "to": 12.0}]
    assert_fix_works(raw, explanation)
    just_below = copy.deepcopy(raw)
    just_below["models"][0]["slo_ms"] = 11.99
    assert solve(just_below).plan.status == "infeasible"


def test_model_too_big_for_one_gpu_suggests_tensor_parallel_and_the_fix_works():
    raw = base()
    raw["models"][0]["memory_gib"] = 40  # > 24 GiB of one L4; 20 GiB per GPU at tp 2
    explanation = explained(raw)
    assert [e["cause"] for e in explanation] == ["no_fit"]
    item = explanation[0]
    assert item["models"] == ["m"]
    assert "tensor_parallel 2" in item["fix"]
    assert item["changes"] == [{"path": "models[0].tensor_parallel", "from": [1], "to": [1, 2]}]
    assert_fix_works(raw, explanation)


def test_model_too_big_for_any_node_suggests_memory_and_the_fix_works():
    raw = base()
    raw["gpu_types"][0]["gpus_per_node"] = 1  # no tensor-parallel group fits a node
    raw["models"][0]["memory_gib"] = 40
    explanation = explained(raw)
    item = explanation[0]
    assert item["cause"] == "no_fit" and item["location"] == "models[0].memory_gib"
    assert "reduce memory_gib to at most 24" in item["fix"]
    assert_fix_works(raw, explanation)


def test_tensor_parallel_groups_inside_nodes_are_counted_in_the_fix():
    # tp-2 replicas on nodes of 3 L4s: 3 GPUs hold one group, 4 still one, 5 hold two.
    raw = base()
    raw["gpu_types"][0].update(count=3, gpus_per_node=3)
    raw["models"][0].update(memory_gib=40, tensor_parallel=[2])
    raw["demand"][0]["rate_rps"] = 1000  # two groups of 609.5 planned req/s
    explanation = explained(raw)
    assert [e["cause"] for e in explanation] == ["inventory_short"]
    assert "+2 L4" in explanation[0]["fix"]
    assert_fix_works(raw, explanation)
    naive = copy.deepcopy(raw)
    naive["gpu_types"][0]["count"] = 4  # enough GPUs, not enough whole groups in nodes
    assert solve(naive).plan.status == "infeasible"


def test_max_throughput_budget_below_any_replica_is_explained_and_the_fix_works():
    raw = base(objective="max_throughput", budget_usd_per_hour=0.5)
    explanation = explained(raw)
    assert [e["cause"] for e in explanation] == ["budget_short"]
    assert "+$0.50/h budget" in explanation[0]["fix"]
    fixed = assert_fix_works(raw, explanation)
    assert solve(fixed.model_dump()).plan.models["m"].served_rps > 0


def test_max_throughput_with_a_budget_short_of_all_demand_is_not_infeasible():
    outcome = solve(base(objective="max_throughput", budget_usd_per_hour=2.0))
    assert outcome.plan.status == "optimal"
    assert 0 < outcome.plan.models["m"].served_rps < 3000


def test_several_causes_together_and_all_fixes_applied_make_it_feasible():
    raw = base(budget_usd_per_hour=1000.0)  # not binding: only slo and inventory are short
    raw["gpu_types"][0]["count"] = 2
    raw["gpu_types"].append({"name": "A100", "memory_gib": 80, "cost_per_hour_usd": 4.0, "count": 0})
    raw["models"].append({"name": "big", "memory_gib": 60, "slo_ms": 50,
                          "profiles": {"A100": {"base_ms": 30, "per_item_ms": 2, "max_batch": 8}}})
    raw["demand"].append({"model": "big", "rate_rps": 50})
    explanation = explained(raw)
    causes = {e["cause"]: e for e in explanation}
    assert set(causes) == {"slo_unreachable", "inventory_short"}
    assert causes["slo_unreachable"]["models"] == ["big"]
    assert "raise slo_ms to 64" in causes["slo_unreachable"]["fix"]
    fixes = [e["fix"] for e in explanation if e["cause"] == "inventory_short"]
    assert any("+3 L4" in f for f in fixes) and any("A100" in f for f in fixes)
    assert_fix_works(raw, explanation)


def test_infeasible_scenarios_that_checks_pass_explain_the_empty_inventory():
    raw = base()
    raw["gpu_types"][0]["count"] = 0
    causes = explain_infeasibility(Scenario.model_validate(raw))
    assert [c.cause for c in causes] == ["inventory_short"]
    assert causes[0].changes == (Change("gpu_types[0].count", 0, 5),)


@pytest.mark.parametrize("solver", ["cpsat-type", "greedy-type"])
def test_cli_writes_an_infeasible_plan_with_the_explanation_and_exits_1(tmp_path, solver):
    raw = base()
    raw["gpu_types"][0]["count"] = 2
    path = tmp_path / "s.json"
    path.write_text(json.dumps(raw))
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(app, ["plan", str(path), "--out", str(out), "--solver", solver])
    assert result.exit_code == 1, result.output
    plan = json.loads(out.read_text())
    assert plan["status"] == "infeasible"
    assert plan["explanation"][0]["cause"] == "inventory_short"
    assert "+3 L4" in plan["explanation"][0]["fix"]
    assert "+3 L4" in result.output
    assert "Traceback" not in result.output


def test_demand_beyond_any_fleet_at_a_tiny_max_utilization_blames_max_utilization():
    """max_utilization 1e-6: one L4 plans 1e-6 x 761.9 = 7.6e-4 req/s, so 3,000 req/s need
    about 3.9 million replicas, more than the relaxation allows (1,000,000 per option). Before, the explainer
    found no slack plan, listed no cause and claimed a plan exists (raise --time-limit)."""
    raw = base(max_utilization=1e-6)
    raw["gpu_types"][0]["count"] = 2
    explanation = explained(raw)
    assert [e["cause"] for e in explanation] == ["demand_unservable"]
    assert explanation[0]["location"] == "max_utilization"
    assert "raise max_utilization" in explanation[0]["fix"]
    # at a planned share where a million replicas would do, the inventory is blamed instead
    raw["max_utilization"] = 0.01
    assert [e["cause"] for e in explained(raw)] == ["inventory_short"]
