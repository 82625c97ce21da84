"""greedy-pack (solvers/greedy_pack.py): restarts when inventory strands a model, and the
fast candidate filter leaves out only GPUs the join rule refuses."""

from __future__ import annotations

import json

import pytest

import solvers.greedy_pack as greedy_pack
from planner.generate import generate_scenario
from planner.pipeline import plan_scenario
from planner.problem import SolveSettings, SolveStatus, build_problem
from planner.scenario import Scenario, parse_scenario_text
from planner.verify import verify_plan
from packing_instances import many_small_models_scenario, small_scenario


def _stranding_scenario() -> Scenario:
    """A small model with the most demand is cheapest per req/s on the one 80 GiB GPU; the
    large model fits only there. Most-unserved-first gives the small model that GPU, and the
    large one finds none left."""
    profile = {"base_ms": 4.0, "per_item_ms": 1.0, "max_batch": 8}
    raw = {
        "name": "stranding", "objective": "min_cost",
        "gpu_types": [
            {"name": "BIG", "memory_gib": 80, "cost_per_hour_usd": 2.0, "count": 1, "gpus_per_node": 1},
            {"name": "SMALL", "memory_gib": 16, "cost_per_hour_usd": 1.9, "count": 8, "gpus_per_node": 4},
        ],
        "models": [
            {"name": "small", "memory_gib": 10, "slo_ms": 200.0,
             "profiles": {"BIG": {"base_ms": 1.0, "per_item_ms": 0.2, "max_batch": 8}, "SMALL": profile}},
            {"name": "large", "memory_gib": 75, "slo_ms": 200.0, "profiles": {"BIG": profile}},
        ],
        "demand": [{"model": "small", "rate_rps": 2000.0}, {"model": "large", "rate_rps": 20.0}],
    }
    return Scenario.model_validate(raw)


def test_a_model_stranded_by_the_first_pass_is_placed_first_on_a_restart():
    scenario = _stranding_scenario()
    first_pass = greedy_pack.run_greedy(build_problem(scenario))
    assert greedy_pack._short(first_pass) == ["large"]  # the instance strands what the docstring says
    outcome = plan_scenario(scenario, "greedy-pack")
    assert outcome.result.status is SolveStatus.FEASIBLE
    assert outcome.result.stats["starts"] == 2
    assert verify_plan(scenario, outcome.plan) == []
    big = [pc for pc in outcome.result.patterns if pc.pattern.gpu_type == "BIG"]
    assert [m.model for pc in big for m in pc.pattern.members] == ["large"]


def test_when_no_plan_exists_the_greedy_says_it_found_none_without_claiming_a_proof():
    raw = json.loads(_stranding_scenario().model_dump_json())
    raw["demand"][1]["rate_rps"] = 5000.0  # far more than the one BIG GPU can serve
    problem = build_problem(Scenario.model_validate(raw))
    result = greedy_pack.GreedyPack().solve(problem, SolveSettings())
    assert result.status is SolveStatus.INFEASIBLE
    assert "does not prove" in result.message and "large" in result.message
    assert result.stats["starts"] == 2  # a start that leaves out no new model ends the restarts


@pytest.mark.parametrize("models,gpus,types,seed,mix", [
    (20, 24, 3, 3, "mixed"), (30, 40, 4, 2, "many-small"), (30, 40, 4, 3, "many-small"),
    (50, 64, 4, 3, "mixed"), (50, 64, 4, 2, "mixed"),
])
def test_generated_scenarios_get_a_plan(models, gpus, types, seed, mix):
    """The generator guarantees a plan; before restarts the greedy found none on these."""
    scenario = parse_scenario_text(json.dumps(generate_scenario(models, gpus, types, seed, mix=mix)), as_json=True)
    outcome = plan_scenario(scenario, "greedy-pack")
    assert outcome.result.status is SolveStatus.FEASIBLE
    assert verify_plan(scenario, outcome.plan) == []


def test_the_candidate_filter_leaves_out_only_gpus_the_join_rule_refuses(monkeypatch):
    """Every open single GPU the fast filter drops (memory, cycle, members' kept rates, an
    unchanged earlier refusal) is refused by the full join check, and the candidates come
    least loaded first, as the plain loop over all GPUs ordered them."""
    original = greedy_pack._join_candidates
    checked = {"dropped": 0, "calls": 0}

    def load(state, gpu):
        f = gpu.interference_factor
        return max(gpu.memory_used_gib / gpu.memory_gib,
                   f * sum(gpu.alone_ms.values()) / max(gpu.members_slack_ms(state.problem), greedy_pack._EPS))

    def checking(state, model):
        kept = original(state, model)
        every = [g for g in state.gpus if g.tensor_parallel == 1 and (model, g.gpu_type, 1) in state.choices]
        for gpu in every:
            if gpu not in kept:
                assert greedy_pack._best_join(state, gpu, model) is None, (model, gpu.index)
                checked["dropped"] += 1
        assert [g.index for g in kept] == [g.index for g in sorted(kept, key=lambda g: (load(state, g), g.index))]
        checked["calls"] += 1
        return kept

    monkeypatch.setattr(greedy_pack, "_join_candidates", checking)
    for scenario in (many_small_models_scenario(12, seed=3, cv=1.0),
                     small_scenario(5, interference=True, n_models=4, n_types=2, max_batch=6, cv=1.0),
                     parse_scenario_text(json.dumps(generate_scenario(30, 40, 4, 1)), as_json=True)):
        greedy_pack.GreedyPack().solve(build_problem(scenario), SolveSettings())
    assert checked["calls"] > 50 and checked["dropped"] > 50, checked
