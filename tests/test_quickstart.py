from planner.pipeline import plan_scenario
from planner.scenario import load_scenario
from planner.verify import verify_plan


def test_quickstart_plans_and_verifies(scenarios_dir):
    scenario = load_scenario(scenarios_dir / "quickstart.yaml")
    outcome = plan_scenario(scenario)  # the default solver: colgen
    assert outcome.plan.status in {"optimal", "feasible"}
    assert verify_plan(scenario, outcome.plan) == []
    assert 0 < outcome.plan.objective.bound <= outcome.plan.cost_per_hour_usd


def test_default_packing_is_no_dearer_than_one_model_per_gpu(scenarios_dir):
    """Packing generalises the type level: its plan never costs more, and on the quickstart
    sharing a GPU between bert-base and resnet50 leftovers saves money."""
    scenario = load_scenario(scenarios_dir / "quickstart.yaml")
    packed = plan_scenario(scenario).plan
    dedicated = plan_scenario(scenario, "cpsat-type").plan
    assert packed.cost_per_hour_usd < dedicated.cost_per_hour_usd
    assert any(len(g.replicas) > 1 for g in packed.gpus)
