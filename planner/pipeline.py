"""One function per user job, shared by the CLI, benchmarks and tests:
scenario -> checks -> problem -> solve -> plan -> verify."""

from __future__ import annotations

from dataclasses import dataclass

from planner.checks import Finding, check_scenario, raise_input_errors
from planner.infeasibility import explain_infeasibility, explanation_dicts
from planner.plan import Plan, extract_plan, infeasible_plan
from planner.problem import PlacementProblem, SolveResult, SolveSettings, SolveStatus, build_problem
from planner.scenario import Scenario
from planner.verify import verify_plan
from solvers.registry import get_solver


EXPLAIN_TIME_LIMIT_S = 10.0  # the slack relaxation's own limit, at most the solve's


@dataclass(frozen=True)
class PlanOutcome:
    plan: Plan
    result: SolveResult
    problem: PlacementProblem
    findings: list[Finding]


class PlanVerificationError(RuntimeError):
    """A solver produced a plan that fails verify_plan: a bug, never shown as a valid plan."""


def _infeasible_outcome(scenario: Scenario, problem: PlacementProblem, result: SolveResult,
                        settings: SolveSettings, findings: list[Finding]) -> PlanOutcome:
    """An `infeasible` plan whose explanation names the models, the causes and the smallest fix
    (planner.infeasibility); falls back to the checks' findings if the explanation finds none."""
    causes = explain_infeasibility(scenario, time_limit_s=min(EXPLAIN_TIME_LIMIT_S, settings.time_limit_s), seed=settings.seed)
    explanation = explanation_dicts(causes)
    if not explanation:
        explanation = [{"location": f.location, "problem": f.problem, "fix": f.fix} for f in findings if f.kind == "infeasible"]
    return PlanOutcome(infeasible_plan(problem, result, settings.seed, explanation), result, problem, findings)


def plan_scenario(scenario: Scenario, solver: str = "auto", settings: SolveSettings | None = None) -> PlanOutcome:
    settings = settings or SolveSettings()
    findings = check_scenario(scenario)
    raise_input_errors(findings)
    problem = build_problem(scenario)
    blocking = [f for f in findings if f.kind == "infeasible"]
    if blocking:
        result = SolveResult(get_solver(solver).name, SolveStatus.INFEASIBLE, problem.objective,
                             float("nan"), float("nan"), (), {}, 0.0, message="some demand cannot be served")
        return _infeasible_outcome(scenario, problem, result, settings, findings)
    result = get_solver(solver).solve(problem, settings)
    if result.status is SolveStatus.INFEASIBLE or (not result.patterns and problem.demanded_models):
        return _infeasible_outcome(scenario, problem, result, settings, findings)
    plan = extract_plan(problem, result, settings.seed)
    violations = verify_plan(scenario, plan)
    if violations:
        raise PlanVerificationError("the solver's plan fails verification:\n  " + "\n  ".join(violations[:20]))
    return PlanOutcome(plan, result, problem, findings)
