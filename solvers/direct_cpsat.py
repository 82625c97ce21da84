"""Direct packing model on CP-SAT: concrete GPU slots, binary member-on-slot-with-batch
variables. The same formulation as solvers.direct_milp (read its docstring), in integers;
a cross-check for small instances that does not scale (DESIGN.md, "The solver ladder").

The product cycles_per_s x on_gpu_shared is exact here through enforcement literals
(on => cycles_if_on == cycles_per_s, off => 0), and the rate rule rate x D <= U x 1000 x b
becomes the linear busy-time constraint sum_m l_m x cycles_if_on_m <= U x 1000.

Integer scaling lives in `_Units`: times in 1e-4 ms, rates and cycle rates in 1e-6 per
second, costs in micro-USD (solvers.scaling). Times that are not whole units round up and
SLOs down, so every integer solution is a valid plan; if any such rounding happened the
model is a restriction of the real problem, and the result falls back to the fluid bound
with status feasible rather than claim a bound it did not prove.
"""

from __future__ import annotations

import math
import time

from ortools.sat.python import cp_model

from planner.problem import PlacementProblem, SolveResult, SolveSettings, SolveStatus
from solvers.cpsat_params import cpsat_solver
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
from solvers.scaling import WEIGHT_UNITS, Scaling

TIME_UNITS_PER_MS = 10_000
RATE_UNITS_PER_RPS = 1_000_000  # also cycles per second
SHARE_UNITS = 1_000_000


class _Units:
    """Conversions to integers; records whether any was inexact."""

    def __init__(self):
        self.exact = True

    def _whole(self, x: float, up: bool) -> int:
        near = round(x)
        if abs(x - near) <= 1e-6 * max(1.0, abs(x)):
            return int(near)
        self.exact = False
        return int(math.ceil(x) if up else math.floor(x))

    def time_up(self, ms: float) -> int:
        return self._whole(ms * TIME_UNITS_PER_MS, up=True)

    def time_down(self, ms: float) -> int:
        return self._whole(ms * TIME_UNITS_PER_MS, up=False)

    @staticmethod
    def rate_down(rps: float) -> int:
        return int(math.floor(rps * RATE_UNITS_PER_RPS + 1e-6))

    @staticmethod
    def rate_up(rps: float) -> int:
        return int(math.ceil(rps * RATE_UNITS_PER_RPS - 1e-6))


class _Formulation:
    def __init__(self, problem: PlacementProblem, cost_cap: float):
        self.problem = problem
        self.units = _Units()
        self.kinds = slot_kinds(problem, cost_cap)
        self.model = cp_model.CpModel()
        self.used, self.shared_slot, self.cycles_per_s = {}, {}, {}
        self.on_gpu_alone, self.on_gpu_shared, self.cycles_if_on = {}, {}, {}
        self.served = {}

    def slots(self):
        for k, kind in enumerate(self.kinds):
            for s in range(kind.slots):
                yield k, kind, s

    def alone_on(self, k, s):
        return self._alone_by_slot.get((k, s), [])

    def shared_on(self, k, s):
        return self._shared_by_slot.get((k, s), [])


# ------------------------------------------------------------------------- variables


def add_variables(f: _Formulation) -> None:
    m, u = f.model, f.problem.max_utilization
    f._alone_by_slot, f._shared_by_slot = {}, {}
    for k, kind, s in f.slots():
        tag = f"{kind.gpu_type},tp{kind.tensor_parallel},{s}"
        f.used[k, s] = m.NewBoolVar(f"used[{tag}]")
        for i, o in enumerate(kind.options):
            if o.alone_ok:
                f.on_gpu_alone[k, s, i] = v = m.NewBoolVar(f"on_gpu_alone[{o.model},{tag},b{o.batch_size}]")
                f._alone_by_slot.setdefault((k, s), []).append((i, v))
        cap = cycle_rate_cap(kind, u)
        if kind.can_share and cap > 0:
            cap_units = _Units.rate_up(cap)
            f.shared_slot[k, s] = m.NewBoolVar(f"shared_slot[{tag}]")
            f.cycles_per_s[k, s] = m.NewIntVar(0, cap_units, f"cycles_per_s[{tag}]")
            for i, o in enumerate(kind.options):
                if o.shared_ok:
                    f.on_gpu_shared[k, s, i] = v = m.NewBoolVar(f"on_gpu_shared[{o.model},{tag},b{o.batch_size}]")
                    own_cap = _Units.rate_up(member_cycle_rate_cap(kind, o, u))
                    f.cycles_if_on[k, s, i] = m.NewIntVar(0, own_cap, f"cycles_if_on[{o.model},{tag},b{o.batch_size}]")
                    f._shared_by_slot.setdefault((k, s), []).append((i, v))


# ------------------------------------------------------------------ constraint families


def add_slot_modes(f: _Formulation) -> None:
    """A used slot runs one member alone, or (tp 1) two or more members shared."""
    m = f.model
    for k, kind, s in f.slots():
        alone = sum(v for _, v in f.alone_on(k, s))
        if (k, s) not in f.shared_slot:
            m.Add(alone == f.used[k, s])
            continue
        shared = f.shared_slot[k, s]
        together = sum(v for _, v in f.shared_on(k, s))
        m.Add(alone + shared == f.used[k, s])
        m.Add(together >= 2).OnlyEnforceIf(shared)
        m.Add(together == 0).OnlyEnforceIf(shared.Not())


def add_one_batch_per_model(f: _Formulation) -> None:
    for k, kind, s in f.slots():
        for model in kind.models():
            on = [v for i, v in f.alone_on(k, s) + f.shared_on(k, s) if kind.options[i].model == model]
            if len(on) > 1:
                f.model.AddAtMostOne(on)


def add_memory(f: _Formulation) -> None:
    """Memory in 1e-6 GiB, rounded up per member (conservative) and down for the GPU."""
    for k, kind, s in f.slots():
        on = f.shared_on(k, s)
        if on:
            f.model.Add(sum(math.ceil(kind.options[i].memory_gib * 1e6 - 1e-3) * v for i, v in on)
                        <= math.floor(kind.memory_gib * 1e6 + 1e-3))


def add_shared_slo(f: _Formulation) -> None:
    """A shared member waits one cycle, then runs: cycle + own batch <= its SLO."""
    for k, kind, s in f.slots():
        on = f.shared_on(k, s)
        if not on:
            continue
        cycle = sum(f.units.time_up(kind.options[i].shared_ms) * v for i, v in on)
        for i, v in on:
            o = kind.options[i]
            f.model.Add(cycle + f.units.time_up(o.shared_ms) <= f.units.time_down(o.slo_ms)).OnlyEnforceIf(v)


def add_cycle_rate(f: _Formulation) -> None:
    """cycles_if_on == cycles_per_s when the member is on (else 0); busy time <= U x 1000 ms/s."""
    budget = f.units._whole(f.problem.max_utilization * 1000.0 * TIME_UNITS_PER_MS * RATE_UNITS_PER_RPS, up=False)
    for k, kind, s in f.slots():
        on = f.shared_on(k, s)
        if not on:
            continue
        for i, v in on:
            w = f.cycles_if_on[k, s, i]
            f.model.Add(w == f.cycles_per_s[k, s]).OnlyEnforceIf(v)
            f.model.Add(w == 0).OnlyEnforceIf(v.Not())
        f.model.Add(sum(f.units.time_up(kind.options[i].shared_ms) * f.cycles_if_on[k, s, i] for i, _ in on) <= budget)


def capacity_expression(f: _Formulation, model: str):
    """Planned rate of a model over all slots, in rate units (rounded down)."""
    u = f.problem.max_utilization
    terms = []
    for (k, s, i), v in f.on_gpu_alone.items():
        o = f.kinds[k].options[i]
        if o.model == model:
            terms.append(_Units.rate_down(u * 1000.0 * o.batch_size / o.alone_ms) * v)
    for (k, s, i), w in f.cycles_if_on.items():
        o = f.kinds[k].options[i]
        if o.model == model:
            terms.append(o.batch_size * w)
    return sum(terms)


def add_demand_coverage(f: _Formulation) -> None:
    for info in f.problem.demanded_models:
        f.model.Add(capacity_expression(f, info.name) >= _Units.rate_up(info.demand_rps))


def add_served_limits(f: _Formulation) -> None:
    for info in f.problem.demanded_models:
        f.served[info.name] = v = f.model.NewIntVar(0, _Units.rate_up(info.demand_rps), f"served[{info.name}]")
        f.model.Add(v <= capacity_expression(f, info.name))


def add_inventory(f: _Formulation) -> None:
    """GPUs per type within the count; TP groups of size >= d within group_slots(d)."""
    for gpu in f.problem.gpu_types:
        if gpu.count is None:
            continue
        for degree in sorted({kind.tensor_parallel for kind in f.kinds if kind.gpu_type == gpu.name}):
            terms = [kind.tensor_parallel * f.used[k, s] for k, kind, s in f.slots()
                     if kind.gpu_type == gpu.name and kind.tensor_parallel >= degree]
            f.model.Add(sum(terms) <= (gpu.count if degree == 1 else gpu.group_slots(degree)))


def cost_expression(f: _Formulation):
    return sum(Scaling.cost(kind.cost_per_slot_usd) * f.used[k, s] for k, kind, s in f.slots())


def add_budget(f: _Formulation) -> None:
    if f.problem.budget_usd_per_hour is not None:
        f.model.Add(cost_expression(f) <= Scaling.cost(f.problem.budget_usd_per_hour))


def add_symmetry_breaking(f: _Formulation) -> None:
    """Slots of one kind are interchangeable: use them in order."""
    for k, kind, s in f.slots():
        if s + 1 < kind.slots:
            f.model.AddImplication(f.used[k, s + 1], f.used[k, s])


def build(problem: PlacementProblem, cost_cap: float = math.inf) -> _Formulation:
    require_flat_share(problem, "direct-cpsat")  # exact only where the capacity rule is max_utilization
    f = _Formulation(problem, cost_cap)
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
    add_search_order(f)
    return f


def add_search_order(f: _Formulation) -> None:
    """Decide slots and members first; the cycle rates follow. Without this a single worker
    branches value by value on the huge integer domains of the cycle rates."""
    booleans = list(f.used.values()) + list(f.shared_slot.values()) + list(f.on_gpu_alone.values()) + list(f.on_gpu_shared.values())
    f.model.AddDecisionStrategy(booleans, cp_model.CHOOSE_FIRST, cp_model.SELECT_MAX_VALUE)
    rates = list(f.cycles_per_s.values()) + list(f.served.values())
    if rates:
        f.model.AddDecisionStrategy(rates, cp_model.CHOOSE_FIRST, cp_model.SELECT_MAX_VALUE)


# ------------------------------------------------------------------------------ solve


def _solver(settings: SolveSettings, time_left_s: float) -> cp_model.CpSolver:
    return cpsat_solver(settings, time_left_s)


class DirectCpSat:
    name = "direct-cpsat"
    description = "direct per-GPU packing model on CP-SAT (cross-check, small instances)"

    def __init__(self, dump_model_to: str | None = None):
        self.dump_model_to = dump_model_to  # debugging: write the CP-SAT model as text

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        deadline = start + settings.time_limit_s
        f = build(problem, cost_cap_usd(problem, settings))
        m, note = f.model, ""
        if problem.objective == "min_cost":
            m.Minimize(cost_expression(f))
        else:
            if problem.fairness and f.served:
                share = m.NewIntVar(0, SHARE_UNITS, "fair_share")
                for name, v in f.served.items():
                    m.Add(v * SHARE_UNITS >= share * _Units.rate_up(problem.model(name).demand_rps))
                m.Maximize(share)
                first = _solver(settings, deadline - time.perf_counter())
                if first.Solve(m) == cp_model.OPTIMAL:
                    m.Add(share >= int(first.Value(share)))
                    note = f"fair share {first.Value(share) / SHARE_UNITS:.6f}"
                m.ClearObjective()
            m.Maximize(sum(Scaling.weight(problem.model(n).priority) * v for n, v in f.served.items()))
        if self.dump_model_to:
            with open(self.dump_model_to, "w", encoding="utf-8") as out:
                out.write(str(m.Proto()))
        solver = _solver(settings, deadline - time.perf_counter())
        code = solver.Solve(m)
        wall = time.perf_counter() - start
        stats = {"booleans": len(f.on_gpu_alone) + len(f.on_gpu_shared), "slots": sum(k.slots for k in f.kinds),
                 "exact_scaling": f.units.exact}
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            status = SolveStatus.INFEASIBLE if code == cp_model.INFEASIBLE else SolveStatus.TIME_LIMIT
            return SolveResult(self.name, status, problem.objective, math.nan, math.nan, (), {}, wall,
                               message=solver.StatusName(code), stats=stats)
        members = []
        for k, kind, s in f.slots():
            on = [kind.options[i] for i, v in f.alone_on(k, s) + f.shared_on(k, s) if solver.Value(v)]
            members.append((kind, [(o.model, o.batch_size) for o in on]))
        patterns = patterns_from_slots(problem, members)
        if problem.objective == "min_cost":
            bound = Scaling.cost_to_usd(solver.BestObjectiveBound())
        else:
            bound = solver.BestObjectiveBound() / (RATE_UNITS_PER_RPS * WEIGHT_UNITS)
        status = SolveStatus.OPTIMAL if code == cp_model.OPTIMAL else SolveStatus.TIME_LIMIT
        if not f.units.exact:
            bound, note = heuristic_bound(problem), (note + "; inexact time scaling: fluid bound").lstrip("; ")
            status = SolveStatus.FEASIBLE if status is SolveStatus.OPTIMAL else status
        return make_result(problem, self.name, status, patterns, bound, time.perf_counter() - start,
                           message=note, stats=stats)
