"""Pricing: find GPU patterns with negative reduced cost, and bound how negative any can be.

Singletons (one model alone on a GPU or TP group) are a fixed, small set: every
(model, type, degree) with the smallest batch that reaches min(best rate, demand) - its
coverage is capped at demand, so no other batch prices better. They are all added up front.

Shared patterns (2+ models on one GPU) are priced per GPU type and per *cycle target* D:
every member must fit its SLO with a cycle of D (D + own batch <= SLO) and the batch
times must add up to at most D; a member's value is demand dual x min(rate at D, demand)
+ presence dual. The greedy here (compiled with numba) fills a GPU by value per share of
time and memory; the pattern it returns is feasible and is re-evaluated at its true cycle.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from planner.capacity import dedicated_planned_rps, planned_share
from planner.problem import Member, PlacementProblem
from solvers.colgen.columns import Column, Index, TypeItems, make_column, members_pattern


def singleton_columns(problem: PlacementProblem, index: Index) -> list[Column]:
    """One column per (model, type, degree): the model alone at its demand-saturating batch."""
    u = problem.max_utilization
    cols = []
    for name, d in zip(index.models, index.demand_rps):
        info = problem.model(name)
        d = float(d)
        for opt in info.options:
            lat = opt.latency_ms
            rate = dedicated_planned_rps(lat, info.slo_ms, info.cv, u)  # planned_share x 1000 b / l(b)
            if not (rate > 0).any():
                continue
            target = min(rate.max(), d)
            b = int(np.argmax(rate >= target - 1e-12)) + 1
            pattern = members_pattern(opt.gpu_type, opt.tensor_parallel, [Member(info.name, b, float(lat[b - 1]))])
            cols.append(make_column(problem, index, pattern))
    return cols


class FlatLatencies:
    """Batch times of a type's items packed into one array for compiled code; made
    non-decreasing (running max), which only overstates times, so patterns stay feasible."""

    def __init__(self, items: TypeItems):
        lengths = np.array([len(a) for a in items.latencies_ms], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.lengths = lengths
        self.flat = (np.concatenate([np.maximum.accumulate(a) for a in items.latencies_ms])
                     if len(lengths) else np.zeros(0))


_planned_share = numba.njit(cache=True)(planned_share)  # the capacity rule, compiled unchanged


@numba.njit(cache=True)
def _greedy_fill(cycle_ms, factor, flat, offsets, lengths, memory, slo, cv, demand, dual_demand, dual_presence,
                 utilization, gpu_memory, chosen_batch):
    """Fill one GPU for a cycle target; chosen_batch[i] > 0 for picked items. Returns count.

    A member's rate is planned_share x 1000 b / cycle_ms, the share taken at the target
    cycle: the pattern's true cycle is at most the target, so its true tolerance k (and
    share) is at least the one used here."""
    n = len(memory)
    ratio = np.empty(n)
    batch = np.zeros(n, dtype=np.int64)
    for i in range(n):
        chosen_batch[i] = 0
        ratio[i] = -1.0
        limit = min(cycle_ms, slo[i] - cycle_ms) / factor
        off = offsets[i]
        length = lengths[i]
        if limit <= 0.0 or flat[off] > limit:
            continue
        lo, hi = 1, length  # largest b with time(b) <= limit
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if flat[off + mid - 1] <= limit:
                lo = mid
            else:
                hi = mid - 1
        b_max = lo
        per_batch_rps = utilization * 1000.0 / cycle_ms
        b_sat = int(math.ceil(demand[i] / per_batch_rps - 1e-9))  # at max_utilization: a lower bound
        if b_sat < 1:
            b_sat = 1
        b = 0
        rate = 0.0
        for bb in range(b_sat, b_max + 1):  # the smallest batch whose planned rate reaches demand
            own = factor * flat[off + bb - 1]
            rate = _planned_share(bb, cycle_ms, own, slo[i], cv[i], utilization) * 1000.0 * bb / cycle_ms
            if rate >= demand[i] - 1e-9:
                b = bb
                break
        if b > 0:
            value = dual_demand[i] * demand[i] + dual_presence[i]
        else:
            b = b_max
            own = factor * flat[off + b - 1]
            rate = _planned_share(b, cycle_ms, own, slo[i], cv[i], utilization) * 1000.0 * b / cycle_ms
            if rate <= 0.0:
                continue  # the rule gives this member nothing at this cycle
            value = dual_demand[i] * rate + dual_presence[i]
        if value <= 1e-12:
            continue
        share = factor * flat[off + b - 1] / cycle_ms + memory[i] / gpu_memory
        batch[i] = b
        ratio[i] = value / share
    order = np.argsort(-ratio)
    time_left = cycle_ms
    mem_left = gpu_memory + 1e-9
    picked = 0
    for k in range(n):
        i = order[k]
        if ratio[i] <= 0.0:
            break
        t = factor * flat[offsets[i] + batch[i] - 1]
        if t <= time_left + 1e-12 and memory[i] <= mem_left:
            chosen_batch[i] = batch[i]
            time_left -= t
            mem_left -= memory[i]
            picked += 1
    return picked


def cycle_targets(items: TypeItems, ratio: float = 1.35) -> np.ndarray:
    """Geometric grid of cycle targets from two fastest batches to the loosest SLO."""
    if len(items.memory_per_gpu_gib) < 2:
        return np.zeros(0)
    first = np.sort(np.array([a[0] for a in items.latencies_ms])) * items.interference_factor
    lo = first[0] + first[1]
    hi = float(np.max(items.slo_ms - first))
    if hi < lo:
        return np.zeros(0)
    n = int(math.ceil(math.log(hi / lo) / math.log(ratio))) + 1
    return lo * ratio ** np.arange(n)


class SharedPricer:
    """Greedy pricing of shared patterns, per GPU type and cycle target."""

    def __init__(self, problem: PlacementProblem, index: Index, items: list[TypeItems]):
        self.problem = problem
        self.index = index
        self.items = [it for it in items if len(it.model_indices) >= 2]
        self.flat = [FlatLatencies(it) for it in self.items]
        self.targets = [cycle_targets(it) for it in self.items]
        self.demand = [index.demand_rps[it.model_indices] for it in self.items]
        self.cv = [np.array([problem.model(index.models[i]).cv for i in it.model_indices], dtype=float)
                   for it in self.items]

    def price(self, duals, gpu_dual_of, budget_dual: float, min_cost: bool, max_columns_per_type: int = 12) -> list[tuple[float, Column]]:
        """Columns with negative reduced cost found by the greedy, most negative first."""
        u = self.problem.max_utilization
        found: dict = {}
        for it, flat, targets, demand, cv in zip(self.items, self.flat, self.targets, self.demand, self.cv):
            cost = self.problem.gpu_types[it.type_index].cost_per_hour_usd
            constant = (cost if min_cost else 0.0) - gpu_dual_of(it.type_index, 1) - cost * budget_dual
            dual_demand = duals.demand[it.model_indices]
            dual_presence = duals.presence[it.model_indices]
            chosen = np.zeros(len(it.model_indices), dtype=np.int64)
            per_type = []
            for cycle in targets:
                picked = _greedy_fill(float(cycle), it.interference_factor, flat.flat, flat.offsets, flat.lengths,
                                      it.memory_per_gpu_gib, it.slo_ms, cv, demand, dual_demand, dual_presence, u,
                                      it.memory_gib, chosen)
                if picked < 2:
                    continue
                members = [(self.index.models[it.model_indices[i]], int(chosen[i])) for i in np.nonzero(chosen)[0]]
                key = (it.gpu_type, tuple(sorted(members)))
                if key in found:
                    continue
                col = self._column(it, members)
                value = sum(duals.demand[i] * c + duals.presence[i] for i, c in zip(col.model_indices, col.coverage_rps))
                reduced = constant - value
                found[key] = None
                if reduced < -1e-9 * max(1.0, cost):
                    per_type.append((reduced, col))
            per_type.sort(key=lambda rc: rc[0])
            for rc_col in per_type[:max_columns_per_type]:
                found[(it.gpu_type, rc_col[1].pattern.members)] = rc_col
        out = [v for v in found.values() if v is not None]
        out.sort(key=lambda rc: rc[0])
        return out

    def _column(self, it: TypeItems, members: list[tuple[str, int]]) -> Column:
        from solvers.packing_rules import make_pattern

        pattern = make_pattern(self.problem, it.gpu_type, 1, members)
        return make_column(self.problem, self.index, pattern)
