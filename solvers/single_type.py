"""Best single GPU type baseline (the homogeneous fleet Kairos and Mélange compare against):
solve the problem once per GPU type alone (planner.problem.restrict_to_gpu_types) with an
inner packing solver and keep the best plan.

The inner solver's bound holds for the restricted problem only; it is the full problem's
bound only when the full problem has a single GPU type. Otherwise the result carries the
full problem's fluid bound (solvers.bounds).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from planner.problem import PlacementProblem, SolveResult, SolveSettings, SolveStatus, restrict_to_gpu_types
from solvers.direct_slots import heuristic_bound


def default_inner_solver() -> str:
    """The registry's best packing solver: colgen when registered, else greedy-pack."""
    from solvers.registry import SOLVERS

    return "colgen" if "colgen" in SOLVERS else "greedy-pack"


def _models_it_cannot_run(problem: PlacementProblem) -> list[str]:
    names = set(problem.candidates.model)
    return [m.name for m in problem.demanded_models if m.name not in names]


def _better(problem: PlacementProblem, a: SolveResult, b: SolveResult | None) -> bool:
    if b is None:
        return True
    if problem.objective == "min_cost":
        return a.value < b.value - 1e-9
    return a.value > b.value + 1e-9


class BestSingleType:
    name = "best-single-type"
    description = "best fleet of one GPU type, each packed by the inner solver (baseline)"

    def __init__(self, inner: str | None = None):
        self.inner = inner

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        from solvers.registry import get_solver

        start = time.perf_counter()
        inner_name = self.inner or default_inner_solver()
        inner = get_solver(inner_name)
        per_type: dict[str, float] = {}
        why_not: list[str] = []  # per type that gave no plan, why
        best: SolveResult | None = None
        types = [g.name for g in problem.gpu_types]
        for i, gpu_type in enumerate(types):
            sub = restrict_to_gpu_types(problem, {gpu_type})
            missing = _models_it_cannot_run(sub)
            if problem.objective == "min_cost" and missing:
                why_not.append(f"{gpu_type} runs no option of {len(missing)} model(s) ({missing[0]}"
                               f"{', ...' if len(missing) > 1 else ''})")
                continue
            left = settings.time_limit_s - (time.perf_counter() - start)
            result = inner.solve(sub, replace(settings, time_limit_s=max(0.1, left / (len(types) - i))))
            if not math.isfinite(result.value) or (not result.patterns and problem.demanded_models
                                                   and problem.objective == "min_cost"):
                why_not.append(f"{gpu_type}: {inner_name} {result.status.value}"
                               + (f" ({result.message})" if result.message else ""))
                continue
            per_type[gpu_type] = result.value
            if _better(problem, result, best):
                best = result
        wall = time.perf_counter() - start
        stats = {"inner": inner_name, "value_per_type": per_type}
        if best is None:
            return SolveResult(self.name, SolveStatus.INFEASIBLE, problem.objective, math.nan, heuristic_bound(problem),
                               (), {}, wall, stats=stats,
                               message="no single GPU type can serve every model: " + "; ".join(why_not))
        proven_for_full = len(types) == 1 and best.status is SolveStatus.OPTIMAL
        bound = best.bound if len(types) == 1 else heuristic_bound(problem)
        if problem.objective == "min_cost":
            bound = min(bound, best.value)
        else:
            bound = max(bound, best.value)
        status = SolveStatus.OPTIMAL if proven_for_full else SolveStatus.FEASIBLE
        if not proven_for_full and abs(best.value - bound) <= 1e-9 * max(1.0, abs(best.value)):
            status = SolveStatus.OPTIMAL
        return replace(best, solver=self.name, status=status, bound=bound, wall_s=wall, stats={**best.stats, **stats},
                       served_rps={m.name: best.served_rps.get(m.name, 0.0) for m in problem.demanded_models})
