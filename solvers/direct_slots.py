"""Data shared by the direct packing formulations (direct-cpsat, direct-milp): concrete GPU
slots per (GPU type, TP degree), the (model, batch) members each slot may hold, and the
conversion of a slot assignment back to patterns and a SolveResult.

Slot counts: no optimal plan needs more GPUs (groups) of one kind than it takes to serve
every model that can run there on dedicated replicas at their best batch, because a
member's planned rate on a shared GPU never exceeds its dedicated rate: replacing all GPUs
of that kind by dedicated ones serves at least as much, on no more GPUs.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace

from planner.capacity import planned_share
from planner.errors import UsageError
from planner.problem import (
    PatternCount,
    PlacementProblem,
    SolveResult,
    SolveStatus,
    patterns_cost,
    planned_capacity_rps,
)
from solvers.bounds import fluid_cost_bound, throughput_upper_bound
from solvers.packing_rules import make_pattern, member_choices


@dataclass(frozen=True)
class MemberOption:
    """Model `model` with batches of `batch_size` on a slot: times alone and when shared."""

    model: str
    batch_size: int
    alone_ms: float
    shared_ms: float
    memory_gib: float
    slo_ms: float

    @property
    def alone_ok(self) -> bool:
        return 2.0 * self.alone_ms <= self.slo_ms + 1e-9

    @property
    def shared_ok(self) -> bool:
        return 2.0 * self.shared_ms <= self.slo_ms + 1e-9


@dataclass(frozen=True)
class SlotKind:
    """`slots` interchangeable GPUs (tp 1) or TP groups (tp > 1) of one type."""

    gpu_type: str
    tensor_parallel: int
    slots: int
    cost_per_slot_usd: float
    memory_gib: float
    interference_factor: float
    options: tuple[MemberOption, ...]

    @property
    def can_share(self) -> bool:
        return self.tensor_parallel == 1

    def models(self) -> list[str]:
        return sorted({o.model for o in self.options})


def dedicated_planned_rps(problem: PlacementProblem) -> dict[tuple[str, str, int], float]:
    """Best dedicated planned rate per (model, GPU type, degree), from the candidates table."""
    return {
        (r.model, r.gpu_type, int(r.tensor_parallel)): float(r.planned_rps)
        for r in problem.candidates.itertuples(index=False)
    }


def slot_upper_bound(problem: PlacementProblem, gpu_type: str, degree: int) -> int:
    """Most slots of (type, degree) an optimal plan needs (see the module docstring)."""
    planned = dedicated_planned_rps(problem)
    need = 0
    for info in problem.demanded_models:
        rate = planned.get((info.name, gpu_type, degree))
        if rate:
            need += math.ceil(info.demand_rps / rate - 1e-9)
    gpu = problem.gpu_type(gpu_type)
    if gpu.count is not None:
        need = min(need, gpu.group_slots(degree) // degree if degree > 1 else gpu.count)
    return need


def cost_cap_usd(problem: PlacementProblem, settings) -> float:
    """The most an optimal plan can cost: the budget, and for min_cost also the cost of the
    one-model-per-GPU optimum (a feasible packing plan), which caps the slots per kind."""
    from solvers.typelevel_cpsat import TypeLevelCpSat

    cap = problem.budget_usd_per_hour if problem.budget_usd_per_hour is not None else math.inf
    if problem.objective == "min_cost":
        quick = TypeLevelCpSat().solve(problem, replace(settings, time_limit_s=min(5.0, settings.time_limit_s / 10)))
        if math.isfinite(quick.value):
            cap = min(cap, quick.value)
    return cap


def slot_kinds(problem: PlacementProblem, cost_cap: float = math.inf) -> list[SlotKind]:
    """Every (type, degree) with at least one member option, with its slot count (no more
    slots than `cost_cap` USD/h pays for)."""
    choices = member_choices(problem)
    kinds = []
    for gpu in problem.gpu_types:
        degrees = sorted({d for (_, t, d) in choices if t == gpu.name})
        for degree in degrees:
            options = []
            for (model, t, d), mc in sorted(choices.items()):
                if t != gpu.name or d != degree:
                    continue
                for b in range(1, len(mc.latency_ms) + 1):
                    alone = float(mc.latency_ms[b - 1])
                    shared = mc.batch_ms(b, 2, gpu.interference_factor)
                    opt = MemberOption(model, b, alone, shared, mc.memory_per_gpu_gib, mc.slo_ms)
                    if opt.alone_ok or (degree == 1 and opt.shared_ok):
                        options.append(opt)
            slots = slot_upper_bound(problem, gpu.name, degree)
            cost = gpu.cost_per_hour_usd * degree
            if cost > 0 and math.isfinite(cost_cap):
                slots = min(slots, int(math.floor(cost_cap / cost + 1e-9)))
            if options and slots > 0:
                kinds.append(SlotKind(gpu.name, degree, slots, gpu.cost_per_hour_usd * degree, gpu.memory_gib,
                                      gpu.interference_factor, tuple(options)))
    return kinds


def require_flat_share(problem: PlacementProblem, solver: str) -> None:
    """Refuse a problem the direct formulations cannot model exactly.

    They model a member's planned rate as max_utilization x 1000 b / D. The capacity rule
    (planner.capacity.planned_share) gives less where k b / cv^2 is small (k: the cycles
    the SLO tolerates). Its smallest value for a (model, batch) is at k = 1; when that is
    max_utilization for every member a slot may hold, the formulation is exact, else the
    solver refuses with a clear error instead of planning rates the rule does not allow."""
    u = problem.max_utilization
    short = []
    for info in problem.demanded_models:
        for opt in info.options:
            for i, alone in enumerate(opt.latency_ms):
                own = float(alone) * max(1.0, problem.gpu_type(opt.gpu_type).interference_factor)
                if 2.0 * float(alone) > info.slo_ms + 1e-9:
                    continue
                if planned_share(i + 1, info.slo_ms - float(alone), float(alone), info.slo_ms, info.cv, u) < u - 1e-12 \
                        or planned_share(i + 1, max(info.slo_ms - own, 1e-9), own, info.slo_ms, info.cv, u) < u - 1e-12:
                    short.append(f"{info.name} (batch {i + 1} on {opt.gpu_type}, cv {info.cv:g})")
                    break
    if short:
        listed = ", ".join(short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
        raise UsageError(
            f"{solver} models every member's rate as max_utilization x 1000 b / D, but the capacity rule plans less "
            f"for {listed} (small batches under random arrivals; docs/capacity.md)\n"
            "  fix: use --solver colgen, enum-milp, greedy-pack or cpsat-type for this scenario")


def cycle_rate_cap(kind: SlotKind, max_utilization: float) -> float:
    """Upper bound on planned cycles per second of a shared slot: two members at their fastest."""
    fastest: dict[str, float] = {}
    for o in kind.options:
        if o.shared_ok:
            fastest[o.model] = min(fastest.get(o.model, math.inf), o.shared_ms)
    two = sorted(fastest.values())[:2]
    if len(two) < 2:
        return 0.0
    return max_utilization * 1000.0 / sum(two)


def member_cycle_rate_cap(kind: SlotKind, option: MemberOption, max_utilization: float) -> float:
    """Upper bound on a shared slot's planned cycles per second while `option` is on it:
    the cycle holds the option's batch and at least the fastest batch of another model."""
    others = [o.shared_ms for o in kind.options if o.shared_ok and o.model != option.model]
    if not others:
        return 0.0
    return max_utilization * 1000.0 / (option.shared_ms + min(others))


def patterns_from_slots(problem: PlacementProblem, slot_members: list[tuple[SlotKind, list[tuple[str, int]]]]) -> tuple[PatternCount, ...]:
    """Count identical slots as one pattern (sorted, so the result is deterministic)."""
    counts: Counter = Counter()
    for kind, members in slot_members:
        if members:
            counts[make_pattern(problem, kind.gpu_type, kind.tensor_parallel, members)] += 1
    return tuple(PatternCount(p, n) for p, n in sorted(counts.items(), key=lambda kv: kv[0]))


def evaluate_patterns(problem: PlacementProblem, patterns: tuple[PatternCount, ...]) -> tuple[float, dict[str, float]]:
    """(objective value, served req/s per model) of a set of patterns, from the rules alone."""
    capacity = planned_capacity_rps(problem, patterns)
    if problem.objective == "min_cost":
        return patterns_cost(problem, patterns), {m.name: m.demand_rps for m in problem.demanded_models}
    served = {m.name: min(m.demand_rps, capacity[m.name]) for m in problem.demanded_models}
    return sum(problem.model(n).priority * r for n, r in served.items()), served


def heuristic_bound(problem: PlacementProblem) -> float:
    """The cheap proven bound (solvers.bounds) for the problem's objective."""
    return fluid_cost_bound(problem) if problem.objective == "min_cost" else throughput_upper_bound(problem)


def make_result(problem: PlacementProblem, solver: str, status: SolveStatus, patterns: tuple[PatternCount, ...],
                bound: float, wall_s: float, message: str = "", stats: dict | None = None) -> SolveResult:
    """A SolveResult whose value and served rates are recomputed from the patterns; the bound
    is clipped to the value (a bound past the value only reflects solver tolerances)."""
    if status is SolveStatus.INFEASIBLE or (not patterns and problem.objective == "min_cost" and problem.demanded_models):
        return SolveResult(solver, status if status is not SolveStatus.OPTIMAL else SolveStatus.INFEASIBLE,
                           problem.objective, math.nan, bound, (), {}, wall_s, message=message or "no feasible plan",
                           stats=stats or {})
    value, served = evaluate_patterns(problem, patterns)
    bound = min(bound, value) if problem.objective == "min_cost" else max(bound, value)
    if math.isnan(bound):
        bound = heuristic_bound(problem)
    return SolveResult(solver, status, problem.objective, value, bound, patterns, served, wall_s,
                       message=message, stats=stats or {})
