"""Type-level formulation on CP-SAT: replicas per (model, GPU type, TP degree), whole GPUs.

Each replica runs one model alone on its GPU(s) (no sharing), at the best batch under
its SLO (the candidates table). Rung 1 of the solver ladder: small and exact.
Constraint families (docs/formulation.md): demand coverage or served limits, inventory,
tensor-parallel groups inside nodes, budget; then the objective.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import ortools
from ortools.sat.python import cp_model

from planner.problem import (
    Member,
    Pattern,
    PatternCount,
    PlacementProblem,
    SolveResult,
    SolveSettings,
    SolveStatus,
    patterns_cost,
    planned_capacity_rps,
)
from solvers.cpsat_params import cpsat_solver
from solvers.scaling import SHARE_UNITS, WEIGHT_UNITS, Scaling, choose_scaling


@dataclass(frozen=True)
class Replica:
    """A type-level option: one replica of `model` on `tensor_parallel` GPUs of `gpu_type`."""

    model: str
    gpu_type: str
    tensor_parallel: int
    batch_size: int
    batch_ms: float
    planned_rps: float
    cost_per_hour_usd: float

    def pattern(self) -> Pattern:
        return Pattern(self.gpu_type, self.tensor_parallel, (Member(self.model, self.batch_size, self.batch_ms),))


def replica_options(problem: PlacementProblem) -> list[Replica]:
    table = problem.candidates
    demanded = {m.name for m in problem.demanded_models}
    return [
        Replica(r.model, r.gpu_type, int(r.tensor_parallel), int(r.batch_size), float(r.batch_ms), float(r.planned_rps), float(r.cost_per_hour_usd))
        for r in table.itertuples(index=False)
        if r.model in demanded
    ]


# an integer-variable domain CP-SAT accepts: without inventory counts (the infeasibility
# explainer) and with a planned rate near zero (max_utilization 1e-308), the count above
# overflowed int64; no plan of this tool places a million replicas of one option
MAX_REPLICAS_PER_OPTION = 1_000_000


def replica_upper_bound(problem: PlacementProblem, option: Replica, demand_rps: float | None = None, count: int | None = -1) -> int:
    """No optimal plan needs more replicas of one option than it takes to serve all demand alone.
    `demand_rps` and `count` may be passed to skip the look-ups (count None: unlimited)."""
    if demand_rps is None:
        demand_rps = problem.model(option.model).demand_rps
    if count == -1:
        count = problem.gpu_type(option.gpu_type).count
    need = min(math.ceil(demand_rps / option.planned_rps - 1e-9), MAX_REPLICAS_PER_OPTION)
    if count is not None:
        need = min(need, count // option.tensor_parallel)
    return max(need, 0)


def undominated_options(options: list[Replica]) -> list[Replica]:
    """Drop options no optimal plan needs: B is dominated by A on the same model and GPU type
    when A uses fewer GPUs (smaller TP degree) and plans at least B's req/s. Swapping every
    B replica for an A replica keeps demand covered, frees GPUs in every inventory and
    node constraint, and costs no more, for both objectives. (A TP degree without its own
    `tp` profile runs at the degree-1 speed, so most such options go.)"""
    groups: dict[tuple[str, str], list[Replica]] = {}
    for opt in options:
        groups.setdefault((opt.model, opt.gpu_type), []).append(opt)
    return [
        b
        for b in options
        if not any(a.tensor_parallel < b.tensor_parallel and a.planned_rps >= b.planned_rps for a in groups[b.model, b.gpu_type])
    ]


def _by_model(replicas: dict) -> dict[str, list]:
    groups: dict[str, list] = {}
    for opt, var in replicas.items():
        groups.setdefault(opt.model, []).append((opt, var))
    return groups


def _by_gpu_type(replicas: dict) -> dict[str, list]:
    groups: dict[str, list] = {}
    for opt, var in replicas.items():
        groups.setdefault(opt.gpu_type, []).append((opt, var))
    return groups


# ------------------------------------------------------------------ constraint families


def add_demand_coverage(model, problem, scaling: Scaling, replicas: dict) -> None:
    """min_cost: planned capacity of each model's replicas covers its demand."""
    groups = _by_model(replicas)
    for info in problem.demanded_models:
        terms = [scaling.rate_down(opt.planned_rps) * var for opt, var in groups.get(info.name, [])]
        model.Add(sum(terms) >= scaling.rate_up(info.demand_rps))


def add_served_limits(model, problem, scaling: Scaling, replicas: dict) -> dict:
    """max_throughput: served <= demand and served <= planned capacity of its replicas."""
    served = {}
    groups = _by_model(replicas)
    for info in problem.demanded_models:
        demand_units = scaling.rate_up(info.demand_rps)
        served[info.name] = var = model.NewIntVar(0, demand_units, f"served[{info.name}]")
        terms = [scaling.rate_down(opt.planned_rps) * r for opt, r in groups.get(info.name, [])]
        model.Add(var <= sum(terms))
    return served


def add_inventory(model, problem, replicas: dict) -> None:
    """GPUs used per type stay within the type's count."""
    groups = _by_gpu_type(replicas)
    for gpu in problem.gpu_types:
        if gpu.count is None:
            continue
        terms = [opt.tensor_parallel * var for opt, var in groups.get(gpu.name, [])]
        if terms:
            model.Add(sum(terms) <= gpu.count)


def add_tp_groups_in_nodes(model, problem, replicas: dict) -> None:
    """Tensor-parallel groups of d or more GPUs fit in the nodes (see GpuTypeInfo.group_slots)."""
    groups = _by_gpu_type(replicas)
    for gpu in problem.gpu_types:
        if gpu.count is None:
            continue
        of_type = groups.get(gpu.name, [])
        degrees = sorted({opt.tensor_parallel for opt, _ in of_type if opt.tensor_parallel > 1})
        for degree in degrees:
            terms = [opt.tensor_parallel * var for opt, var in of_type if opt.tensor_parallel >= degree]
            model.Add(sum(terms) <= gpu.group_slots(degree))


def add_budget(model, problem, replicas: dict) -> None:
    if problem.budget_usd_per_hour is None:
        return
    terms = [Scaling.cost(opt.cost_per_hour_usd) * var for opt, var in replicas.items()]
    model.Add(sum(terms) <= Scaling.cost(problem.budget_usd_per_hour))


def cost_expression(replicas: dict):
    return sum(Scaling.cost(opt.cost_per_hour_usd) * var for opt, var in replicas.items())


def throughput_expression(problem, served: dict):
    priority = {m.name: m.priority for m in problem.models}
    return sum(Scaling.weight(priority[name]) * var for name, var in served.items())


def add_fair_share(model, problem, scaling: Scaling, served: dict):
    """Every model gets at least `share` (basis points) of its demand served."""
    share = model.NewIntVar(0, SHARE_UNITS, "fair_share")
    demand = {m.name: m.demand_rps for m in problem.models}
    for name, var in served.items():
        demand_units = scaling.rate_up(demand[name])
        model.Add(var * SHARE_UNITS >= share * demand_units)
    return share


# ------------------------------------------------------------------------------ solve


def _build(problem: PlacementProblem, scaling: Scaling):
    model = cp_model.CpModel()
    options = undominated_options(replica_options(problem))
    demand = {m.name: m.demand_rps for m in problem.models}
    count = {g.name: g.count for g in problem.gpu_types}
    replicas = {
        opt: model.NewIntVar(0, replica_upper_bound(problem, opt, demand[opt.model], count[opt.gpu_type]),
                             f"replicas[{opt.model},{opt.gpu_type},tp{opt.tensor_parallel}]")
        for opt in options
    }
    served = None
    if problem.objective == "min_cost":
        add_demand_coverage(model, problem, scaling, replicas)
    else:
        served = add_served_limits(model, problem, scaling, replicas)
    add_inventory(model, problem, replicas)
    add_tp_groups_in_nodes(model, problem, replicas)
    add_budget(model, problem, replicas)
    return model, replicas, served


def _solver(settings: SolveSettings, time_left_s: float) -> cp_model.CpSolver:
    solver = cpsat_solver(settings, time_left_s)
    # The LP relaxation of this covering problem is tight; without its full linearization
    # CP-SAT stalls far from the bound on 1,000-model instances with binding inventory
    # (bench/bench_typelevel.py: 30% gap after 60 s at level 1, optimal in <1 s at level 2).
    solver.parameters.linearization_level = 2
    return solver


_STATUS = {
    cp_model.OPTIMAL: SolveStatus.OPTIMAL,
    cp_model.FEASIBLE: SolveStatus.TIME_LIMIT,
    cp_model.INFEASIBLE: SolveStatus.INFEASIBLE,
    cp_model.UNKNOWN: SolveStatus.TIME_LIMIT,
}


class TypeLevelCpSat:
    name = "cpsat-type"
    description = "CP-SAT, one model per GPU or TP group (type level, exact)"

    def __init__(self, deterministic_time_s: float | None = None):
        """`deterministic_time_s`: also stop at this much of CP-SAT's deterministic time (a
        work limit: with one worker, the same input then gives the same plan however loaded
        the machine is); the time limit stays as a guard, and stats["stopped_by_clock"] says
        whether it, not the work limit, ended a solve short of optimal."""
        self.deterministic_time_s = deterministic_time_s

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        scaling = choose_scaling(problem)
        model, replicas, served = _build(problem, scaling)
        deadline = start + settings.time_limit_s

        if problem.objective == "min_cost":
            model.Minimize(cost_expression(replicas))
        else:
            if problem.fairness:
                share = add_fair_share(model, problem, scaling, served)
                model.Maximize(share)
                first = _solver(settings, deadline - time.perf_counter())
                if first.Solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                    model.Add(share >= int(first.Value(share)))
                model.ClearObjective()
            model.Maximize(throughput_expression(problem, served))

        solver = _solver(settings, deadline - time.perf_counter())
        if self.deterministic_time_s is not None:
            solver.parameters.max_deterministic_time = float(self.deterministic_time_s)
        code = solver.Solve(model)
        status = _STATUS.get(code)
        stopped_by_clock = code != cp_model.OPTIMAL and code != cp_model.INFEASIBLE and (
            self.deterministic_time_s is None
            or solver.ResponseProto().deterministic_time < self.deterministic_time_s * (1 - 1e-9))
        if status is None:
            raise RuntimeError(f"CP-SAT returned {solver.StatusName(code)}")
        wall = time.perf_counter() - start
        if status is SolveStatus.INFEASIBLE or (status is SolveStatus.TIME_LIMIT and code == cp_model.UNKNOWN):
            return SolveResult(self.name, SolveStatus.INFEASIBLE if code == cp_model.INFEASIBLE else SolveStatus.TIME_LIMIT,
                               problem.objective, math.nan, math.nan, (), {}, wall,
                               message="no feasible plan" if code == cp_model.INFEASIBLE else "no plan found within the time limit",
                               stats={"stopped_by_clock": stopped_by_clock})

        patterns = tuple(
            PatternCount(opt.pattern(), int(solver.Value(var)))
            for opt, var in sorted(replicas.items(), key=lambda kv: (kv[0].gpu_type, kv[0].tensor_parallel, kv[0].model))
            if solver.Value(var) > 0
        )
        capacity = planned_capacity_rps(problem, patterns)
        if problem.objective == "min_cost":
            served_rps = {m.name: m.demand_rps for m in problem.demanded_models}
            value = patterns_cost(problem, patterns)
            bound = Scaling.cost_to_usd(solver.BestObjectiveBound())
            bound = min(bound, value)
        else:
            served_rps = {m.name: min(m.demand_rps, capacity[m.name]) for m in problem.demanded_models}
            priority = {m.name: m.priority for m in problem.models}
            value = sum(priority[n] * r for n, r in served_rps.items())
            bound = solver.BestObjectiveBound() / (scaling.rate_units_per_rps * WEIGHT_UNITS)
            bound = max(bound, value)
        return SolveResult(
            solver=self.name,
            status=status,
            objective=problem.objective,
            value=value,
            bound=bound,
            patterns=patterns,
            served_rps=served_rps,
            wall_s=time.perf_counter() - start,
            stats={"variables": len(replicas), "cpsat_version": ortools.__version__, "stopped_by_clock": stopped_by_clock},
        )
