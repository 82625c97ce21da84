"""Direct packing MILP on PuLP (HiGHS, else CBC): concrete GPU slots, binary
member-on-slot-with-batch variables. A cross-check for small instances; it does not scale.

Per slot (solvers.direct_slots): either one member alone (`on_gpu_alone`, its dedicated
rate is a constant) or two or more sharing it (`on_gpu_shared`, batch times x the type's
interference factor). A shared slot runs `cycles_per_s[slot]` round-robin cycles per second;
member m gets b_m x cycles req/s, and the cycle's busy time sum_m l_m x cycles stays within
max_utilization x 1000 ms per second. The bilinear terms cycles x on_gpu_shared are
linearised exactly (binary x bounded continuous, McCormick): `cycles_if_on[...]`.
Constraint families, one function each: slot modes, one batch per model and slot, memory,
SLO under the shared cycle, cycle rate, demand or served limits, inventory and TP groups,
budget, symmetry breaking; then the objective.
"""

from __future__ import annotations

import math
import time

import pulp

from planner.problem import PlacementProblem, SolveResult, SolveSettings, SolveStatus
from solvers.direct_slots import (
    require_flat_share,
    cost_cap_usd,
    cycle_rate_cap,
    heuristic_bound,
    make_result,
    member_cycle_rate_cap,
    patterns_from_slots,
    slot_kinds,
)


class _Formulation:
    """Variables keyed by domain names; `kind` indexes solvers.direct_slots.slot_kinds()."""

    def __init__(self, problem: PlacementProblem, sense, cost_cap: float):
        self.problem = problem
        self.kinds = slot_kinds(problem, cost_cap)
        self.lp = pulp.LpProblem("direct_packing", sense)
        self.used, self.alone_slot, self.shared_slot, self.cycles_per_s = {}, {}, {}, {}
        self.on_gpu_alone, self.on_gpu_shared, self.cycles_if_on = {}, {}, {}
        self.served = {}
        self._n = 0

    def var(self, prefix: str, lo=0.0, hi=None, cat=pulp.LpContinuous):
        self._n += 1
        return pulp.LpVariable(f"{prefix}_{self._n}", lowBound=lo, upBound=hi, cat=cat)

    def slots(self):
        for k, kind in enumerate(self.kinds):
            for s in range(kind.slots):
                yield k, kind, s


# ------------------------------------------------------------------------- variables


def add_variables(f: _Formulation) -> None:
    u = f.problem.max_utilization
    for k, kind, s in f.slots():
        f.used[k, s] = f.var("used", cat=pulp.LpBinary)
        for i, o in enumerate(kind.options):
            if o.alone_ok:
                f.on_gpu_alone[k, s, i] = f.var("on_gpu_alone", cat=pulp.LpBinary)
        if kind.can_share and cycle_rate_cap(kind, u) > 0:
            cap = cycle_rate_cap(kind, u)
            f.alone_slot[k, s] = f.var("alone_slot", cat=pulp.LpBinary)
            f.shared_slot[k, s] = f.var("shared_slot", cat=pulp.LpBinary)
            f.cycles_per_s[k, s] = f.var("cycles_per_s", 0.0, cap)
            for i, o in enumerate(kind.options):
                if o.shared_ok:
                    f.on_gpu_shared[k, s, i] = f.var("on_gpu_shared", cat=pulp.LpBinary)
                    f.cycles_if_on[k, s, i] = f.var("cycles_if_on", 0.0, cap)


def _shared_on(f: _Formulation, k: int, s: int):
    return [(i, v) for (kk, ss, i), v in f.on_gpu_shared.items() if kk == k and ss == s]


def _alone_on(f: _Formulation, k: int, s: int):
    return [(i, v) for (kk, ss, i), v in f.on_gpu_alone.items() if kk == k and ss == s]


# ------------------------------------------------------------------ constraint families


def add_slot_modes(f: _Formulation) -> None:
    """A used slot runs one member alone, or (tp 1) two or more members shared."""
    for k, kind, s in f.slots():
        alone = pulp.lpSum(v for _, v in _alone_on(f, k, s))
        if (k, s) not in f.shared_slot:
            f.lp += alone == f.used[k, s]
            continue
        together = pulp.lpSum(v for _, v in _shared_on(f, k, s))
        f.lp += alone == f.alone_slot[k, s]
        f.lp += together >= 2 * f.shared_slot[k, s]
        f.lp += together <= len(kind.models()) * f.shared_slot[k, s]
        f.lp += f.alone_slot[k, s] + f.shared_slot[k, s] == f.used[k, s]


def add_one_batch_per_model(f: _Formulation) -> None:
    for k, kind, s in f.slots():
        for model in kind.models():
            on = [v for i, v in _alone_on(f, k, s) + _shared_on(f, k, s) if kind.options[i].model == model]
            if len(on) > 1:
                f.lp += pulp.lpSum(on) <= 1


def add_memory(f: _Formulation) -> None:
    for k, kind, s in f.slots():
        on = _shared_on(f, k, s)
        if on:
            f.lp += pulp.lpSum(kind.options[i].memory_gib * v for i, v in on) <= kind.memory_gib


def add_shared_slo(f: _Formulation) -> None:
    """A shared member waits one cycle, then runs: cycle + own batch <= its SLO (big-M)."""
    for k, kind, s in f.slots():
        on = _shared_on(f, k, s)
        if not on:
            continue
        cycle = pulp.lpSum(kind.options[i].shared_ms * v for i, v in on)
        longest = {}
        for i, _ in on:
            o = kind.options[i]
            longest[o.model] = max(longest.get(o.model, 0.0), o.shared_ms)
        cycle_max = sum(longest.values())
        for i, v in on:
            o = kind.options[i]
            big_m = max(0.0, cycle_max + o.shared_ms - o.slo_ms)
            f.lp += cycle + o.shared_ms <= o.slo_ms + big_m * (1 - v)


def add_cycle_rate(f: _Formulation) -> None:
    """cycles_if_on = cycles_per_s x on_gpu_shared (exact McCormick), busy time <= U x 1000 ms/s."""
    u = f.problem.max_utilization
    for k, kind, s in f.slots():
        on = _shared_on(f, k, s)
        if not on:
            continue
        cap = cycle_rate_cap(kind, u)
        cycles = f.cycles_per_s[k, s]
        for i, v in on:
            w = f.cycles_if_on[k, s, i]
            f.lp += w <= member_cycle_rate_cap(kind, kind.options[i], u) * v
            f.lp += w <= cycles
            f.lp += w >= cycles - cap * (1 - v)
        f.lp += pulp.lpSum(kind.options[i].shared_ms * f.cycles_if_on[k, s, i] for i, _ in on) <= u * 1000.0


def capacity_expression(f: _Formulation, model: str):
    """Planned req/s of a model over all slots."""
    u = f.problem.max_utilization
    terms = []
    for (k, s, i), v in f.on_gpu_alone.items():
        o = f.kinds[k].options[i]
        if o.model == model:
            terms.append(u * 1000.0 * o.batch_size / o.alone_ms * v)
    for (k, s, i), w in f.cycles_if_on.items():
        o = f.kinds[k].options[i]
        if o.model == model:
            terms.append(o.batch_size * w)
    return pulp.lpSum(terms)


def add_demand_coverage(f: _Formulation) -> None:
    for info in f.problem.demanded_models:
        f.lp += capacity_expression(f, info.name) >= info.demand_rps


def add_served_limits(f: _Formulation) -> None:
    for info in f.problem.demanded_models:
        f.served[info.name] = v = f.var("served", 0.0, info.demand_rps)
        f.lp += v <= capacity_expression(f, info.name)


def add_inventory(f: _Formulation) -> None:
    """GPUs per type within the count; TP groups of size >= d within group_slots(d)."""
    for gpu in f.problem.gpu_types:
        if gpu.count is None:
            continue
        degrees = sorted({kind.tensor_parallel for kind in f.kinds if kind.gpu_type == gpu.name})
        for degree in degrees:
            terms = [kind.tensor_parallel * f.used[k, s] for k, kind, s in f.slots()
                     if kind.gpu_type == gpu.name and kind.tensor_parallel >= degree]
            f.lp += pulp.lpSum(terms) <= (gpu.count if degree == 1 else gpu.group_slots(degree))


def cost_expression(f: _Formulation):
    return pulp.lpSum(kind.cost_per_slot_usd * f.used[k, s] for k, kind, s in f.slots())


def add_budget(f: _Formulation) -> None:
    if f.problem.budget_usd_per_hour is not None:
        f.lp += cost_expression(f) <= f.problem.budget_usd_per_hour


def add_symmetry_breaking(f: _Formulation) -> None:
    """Slots of one kind are interchangeable: use them in order."""
    for k, kind, s in f.slots():
        if s + 1 < kind.slots:
            f.lp += f.used[k, s] >= f.used[k, s + 1]


def build(problem: PlacementProblem, cost_cap: float = math.inf) -> _Formulation:
    require_flat_share(problem, "direct-milp")  # exact only where the capacity rule is max_utilization
    f = _Formulation(problem, pulp.LpMinimize if problem.objective == "min_cost" else pulp.LpMaximize, cost_cap)
    add_variables(f)
    add_slot_modes(f)
    add_one_batch_per_model(f)
    add_memory(f)
    add_shared_slo(f)
    add_cycle_rate(f)
    if problem.objective == "min_cost":
        add_demand_coverage(f)
    else:
        add_served_limits(f)
    add_inventory(f)
    add_budget(f)
    add_symmetry_breaking(f)
    return f


# ------------------------------------------------------------------------------ solve


def _backend(settings: SolveSettings, time_left_s: float):
    limit = max(1.0, time_left_s)
    if pulp.HiGHS().available():
        return pulp.HiGHS(msg=False, gapRel=settings.gap_target, timeLimit=limit,
                          random_seed=settings.seed)
    return pulp.PULP_CBC_CMD(msg=False, gapRel=settings.gap_target, timeLimit=limit, threads=settings.threads)


def _run(f: _Formulation, settings: SolveSettings, deadline: float) -> tuple[int, float]:
    """Solve; returns (PuLP status, proven dual bound in the model's sense, nan if unknown)."""
    solver = _backend(settings, deadline - time.perf_counter())
    code = f.lp.solve(solver)
    bound = math.nan
    highs = getattr(f.lp, "solverModel", None)
    if highs is not None and hasattr(highs, "getInfo"):
        dual = highs.getInfo().mip_dual_bound
        if math.isfinite(dual):
            bound = -dual if f.lp.sense == pulp.LpMaximize else dual
    elif code == pulp.LpStatusOptimal and f.lp.objective is not None:  # CBC: stopped at gapRel
        value = pulp.value(f.lp.objective)
        bound = value * (1 - settings.gap_target) if f.lp.sense == pulp.LpMinimize else value * (1 + settings.gap_target)
    return code, bound


def _has_solution(f: _Formulation, code: int) -> bool:
    variables = f.lp.variables()
    return code == pulp.LpStatusOptimal or (bool(variables) and all(v.varValue is not None for v in variables))


class DirectMilp:
    name = "direct-milp"
    description = "direct per-GPU packing MILP on PuLP/HiGHS (cross-check, small instances)"

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        deadline = start + settings.time_limit_s
        f = build(problem, cost_cap_usd(problem, settings))
        note = ""
        if problem.objective == "min_cost":
            f.lp += cost_expression(f)
        else:
            if problem.fairness and f.served:
                share = f.var("fair_share", 0.0, 1.0)
                for name, v in f.served.items():
                    f.lp += v >= share * problem.model(name).demand_rps
                f.lp.setObjective(share)
                code, _ = _run(f, settings, deadline)
                if code == pulp.LpStatusOptimal and share.varValue is not None:
                    share.lowBound = max(0.0, share.varValue - 1e-9)
                    note = f"fair share {share.varValue:.6f}"
            f.lp.setObjective(pulp.lpSum(problem.model(n).priority * v for n, v in f.served.items()))
        code, bound = _run(f, settings, deadline)
        wall = time.perf_counter() - start
        stats = {"variables": len(f.lp.variables()), "constraints": len(f.lp.constraints), "slots": sum(k.slots for k in f.kinds)}
        if code == pulp.LpStatusInfeasible or not _has_solution(f, code):
            status = SolveStatus.INFEASIBLE if code == pulp.LpStatusInfeasible else SolveStatus.TIME_LIMIT
            return SolveResult(self.name, status, problem.objective, math.nan, math.nan, (), {}, wall,
                               message=pulp.LpStatus[code], stats=stats)
        members = []
        for k, kind, s in f.slots():
            on = [kind.options[i] for i, v in _alone_on(f, k, s) + _shared_on(f, k, s) if (v.varValue or 0) > 0.5]
            members.append((kind, [(o.model, o.batch_size) for o in on]))
        patterns = patterns_from_slots(problem, members)
        status = SolveStatus.OPTIMAL if code == pulp.LpStatusOptimal else SolveStatus.TIME_LIMIT
        if not math.isfinite(bound):
            bound = heuristic_bound(problem)
        return make_result(problem, self.name, status, patterns, bound, time.perf_counter() - start,
                           message=note, stats=stats)
