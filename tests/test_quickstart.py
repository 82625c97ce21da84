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


def test_a_solve_stopped_before_any_plan_says_time_limit_not_infeasible(scenarios_dir):
    """Running out of time proves nothing: the plan file must not claim infeasibility."""
    from planner.plan import infeasible_plan
    from planner.problem import SolveResult, SolveStatus, build_problem

    problem = build_problem(load_scenario(scenarios_dir / "quickstart.yaml"))
    stopped = SolveResult("colgen", SolveStatus.TIME_LIMIT, "min_cost", float("nan"), 9.0, (), {}, 1.0)
    plan = infeasible_plan(problem, stopped, 0, [{"problem": "no plan found within the time limit"}])
    assert plan.status == "time_limit" and plan.gpus == []
    proven = SolveResult("colgen", SolveStatus.INFEASIBLE, "min_cost", float("nan"), float("nan"), (), {}, 1.0)
    assert infeasible_plan(problem, proven, 0, []).status == "infeasible"
