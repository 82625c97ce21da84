from planner.pipeline import plan_scenario
from planner.scenario import load_scenario
from planner.verify import verify_plan


def test_quickstart_plans_and_verifies(scenarios_dir):
    scenario = load_scenario(scenarios_dir / "quickstart.yaml")
    outcome = plan_scenario(scenario)
    assert outcome.plan.status == "optimal"
    assert verify_plan(scenario, outcome.plan) == []
    assert outcome.plan.cost_per_hour_usd > 0
