"""Greedy type-level baseline: each model on its cheapest $/req/s option, whole GPUs.

min_cost: models in order of demand (largest first) take replicas of their cheapest
option per planned req/s while inventory lasts, then the next option.
max_throughput: repeatedly add the replica that serves the most weighted req/s per
dollar, while the budget and inventory allow.
It proves nothing of its own; its bound is the fluid bound (solvers.bounds).
"""

from __future__ import annotations

import math
import time

from planner.problem import (
    PatternCount,
    PlacementProblem,
    SolveResult,
    SolveSettings,
    SolveStatus,
    patterns_cost,
    planned_capacity_rps,
)
from solvers.bounds import fluid_cost_bound, throughput_upper_bound
from solvers.typelevel_cpsat import Replica, replica_options


class _Inventory:
    """GPUs left per type, with TP groups kept inside nodes (first fit over nodes)."""

    def __init__(self, problem: PlacementProblem):
        self.free = {g.name: (None if g.count is None else list(g.node_sizes())) for g in problem.gpu_types}

    def take(self, gpu_type: str, degree: int) -> bool:
        nodes = self.free[gpu_type]
        if nodes is None:
            return True
        # best fit: the fullest node that still has room keeps large holes for large groups
        fitting = [i for i, free in enumerate(nodes) if free >= degree]
        if not fitting:
            return False
        i = min(fitting, key=lambda j: (nodes[j], j))
        nodes[i] -= degree
        return True


def _result(problem, name, start, counts: dict[Replica, int], ok: bool, message: str) -> SolveResult:
    patterns = tuple(
        PatternCount(opt.pattern(), n)
        for opt, n in sorted(counts.items(), key=lambda kv: (kv[0].gpu_type, kv[0].tensor_parallel, kv[0].model))
        if n > 0
    )
    capacity = planned_capacity_rps(problem, patterns)
    if problem.objective == "min_cost":
        value = patterns_cost(problem, patterns) if ok else math.nan
        bound = fluid_cost_bound(problem)
        served = {m.name: m.demand_rps for m in problem.demanded_models}
    else:
        served = {m.name: min(m.demand_rps, capacity[m.name]) for m in problem.demanded_models}
        value = sum(problem.model(n).priority * r for n, r in served.items())
        bound = throughput_upper_bound(problem)
    status = SolveStatus.FEASIBLE if ok else SolveStatus.INFEASIBLE
    if ok and abs(value - bound) <= 1e-9 * max(1.0, abs(value)):
        status = SolveStatus.OPTIMAL
    return SolveResult(name, status, problem.objective, value, bound, patterns if ok else (), served if ok else {},
                       time.perf_counter() - start, message=message)


class GreedyTypeLevel:
    name = "greedy-type"
    description = "greedy, one model per GPU on its cheapest $/req/s option (baseline)"

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        options = replica_options(problem)
        by_model: dict[str, list[Replica]] = {}
        for opt in options:
            by_model.setdefault(opt.model, []).append(opt)
        for opts in by_model.values():
            opts.sort(key=lambda o: (o.cost_per_hour_usd / o.planned_rps, o.gpu_type, o.tensor_parallel))
        inventory = _Inventory(problem)
        counts: dict[Replica, int] = {}
        budget = problem.budget_usd_per_hour if problem.budget_usd_per_hour is not None else math.inf
        spent = 0.0

        if problem.objective == "min_cost":
            order = sorted(problem.demanded_models, key=lambda m: (-m.demand_rps, m.name))
            for info in order:
                left = info.demand_rps
                for opt in by_model.get(info.name, []):
                    while left > 1e-9 and inventory.take(opt.gpu_type, opt.tensor_parallel):
                        counts[opt] = counts.get(opt, 0) + 1
                        left -= opt.planned_rps
                        spent += opt.cost_per_hour_usd
                    if left <= 1e-9:
                        break
                if left > 1e-9:
                    return _result(problem, self.name, start, counts, False, f"greedy could not place {info.name}")
            if spent > budget + 1e-9:
                return _result(problem, self.name, start, counts, False, "greedy plan exceeds the budget")
            return _result(problem, self.name, start, counts, True, "")

        unserved = {m.name: m.demand_rps for m in problem.demanded_models}
        while True:
            best, best_score = None, 0.0
            for name, left in unserved.items():
                if left <= 1e-9:
                    continue
                weight = problem.model(name).priority
                for opt in by_model.get(name, []):
                    if spent + opt.cost_per_hour_usd > budget + 1e-9:
                        continue
                    score = weight * min(left, opt.planned_rps) / max(opt.cost_per_hour_usd, 1e-9)
                    if score > best_score:
                        best, best_score = opt, score
            if best is None or not inventory.take(best.gpu_type, best.tensor_parallel):
                if best is None:
                    break
                by_model[best.model] = [o for o in by_model[best.model] if o != best]
                continue
            counts[best] = counts.get(best, 0) + 1
            spent += best.cost_per_hour_usd
            unserved[best.model] -= best.planned_rps
        return _result(problem, self.name, start, counts, True, "")
