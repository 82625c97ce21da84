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

from planner.capacity import capacity_rps, planned_share, shared_batch_ms
from planner.problem import Member, Pattern, PlacementProblem, dedicated_rates, derived_cache, remember_member_rates
from solvers.colgen.columns import Column, Index, TypeItems, make_column, members_pattern


def singleton_columns(problem: PlacementProblem, index: Index, gpus_left=None) -> list[Column]:
    """One column per (model, type, degree): the model alone at its demand-saturating batch;
    with `gpus_left` (type name -> GPUs still free), only options that still fit."""
    cols = []
    for name, d in zip(index.models, index.demand_rps):
        info = problem.model(name)
        d = float(d)
        for opt in info.options:
            if gpus_left is not None and opt.tensor_parallel > gpus_left[opt.gpu_type]:
                continue
            lat = opt.latency_ms
            rate = dedicated_rates(problem, info, opt)  # planned_share x 1000 b / l(b)
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


@numba.njit(cache=True)
def _dp_fill(cycle_ms, factor, flat, offsets, lengths, memory, slo, cv, demand, dual_demand, dual_presence,
             utilization, gpu_memory, memory_price, cells, chosen_batch):
    """Fill one GPU for a cycle target by dynamic programming over time; chosen_batch[i] > 0
    for picked items. Returns count.

    A multiple-choice knapsack: each model picks one batch or none, its time rounded up to
    cells of cycle_ms / cells (so the pick fits the cycle), its value demand dual x
    min(rate at the target, demand) + presence dual, less memory_price x its memory (a
    Lagrangian price for the memory the DP does not track). Picks that overflow memory are
    dropped, worst value per GiB first."""
    n = len(memory)
    cell_ms = cycle_ms / cells
    best = np.zeros(cells + 1)
    take = np.zeros((n, cells + 1), dtype=np.int32)
    value_of = np.zeros(n)
    choice_b = np.zeros(64, dtype=np.int64)
    choice_c = np.zeros(64, dtype=np.int64)
    choice_v = np.zeros(64)
    for i in range(n):
        chosen_batch[i] = 0
        limit = min(cycle_ms, slo[i] - cycle_ms) / factor
        off = offsets[i]
        if limit <= 0.0 or flat[off] > limit:
            continue
        m = 0
        last = -1.0
        for b in range(1, lengths[i] + 1):
            t = flat[off + b - 1]
            if t > limit:
                break
            own = factor * t
            rate = _planned_share(b, cycle_ms, own, slo[i], cv[i], utilization) * 1000.0 * b / cycle_ms
            if rate <= 0.0:
                continue
            capped = rate if rate < demand[i] else demand[i]
            value = dual_demand[i] * capped + dual_presence[i] - memory_price * memory[i]
            if value > last * 1.01 + 1e-12 or capped >= demand[i]:
                if value > 1e-12 and m < 64:
                    choice_b[m] = b
                    choice_c[m] = int(math.ceil(own / cell_ms - 1e-9))
                    choice_v[m] = value
                    m += 1
                last = value
            if capped >= demand[i]:
                break
        if m == 0:
            continue
        new = best.copy()
        for c in range(cells, -1, -1):
            for j in range(m):
                need = choice_c[j]
                if need <= c:
                    cand = best[c - need] + choice_v[j]
                    if cand > new[c] + 1e-12:
                        new[c] = cand
                        take[i, c] = choice_b[j]
        best = new
    c = cells
    for i in range(n - 1, -1, -1):
        b = take[i, c]
        if b > 0:
            chosen_batch[i] = b
            own = factor * flat[offsets[i] + b - 1]
            c -= int(math.ceil(own / cell_ms - 1e-9))
            rate = _planned_share(b, cycle_ms, own, slo[i], cv[i], utilization) * 1000.0 * b / cycle_ms
            capped = rate if rate < demand[i] else demand[i]
            value_of[i] = dual_demand[i] * capped + dual_presence[i]
    used = 0.0
    picked = 0
    for i in range(n):
        if chosen_batch[i] > 0:
            used += memory[i]
            picked += 1
    while used > gpu_memory + 1e-9 and picked > 0:
        worst = -1
        worst_ratio = 0.0
        for i in range(n):
            if chosen_batch[i] > 0:
                ratio = value_of[i] / max(memory[i], 1e-9)
                if worst < 0 or ratio < worst_ratio:
                    worst = i
                    worst_ratio = ratio
        chosen_batch[worst] = 0
        used -= memory[worst]
        picked -= 1
    return picked


DP_CELLS = 128  # time cells per cycle in the DP (times round up: picks always fit)
MEMORY_PRICES = (0.0, 0.5, 1.0)  # x break-even value per GiB


TIGHT_TARGETS_MAX = 600  # (model, batch) pairs of a type up to which tight cycles are targets too


def cycle_targets(items: TypeItems, ratio: float = 1.35) -> np.ndarray:
    """Cycle targets: a geometric grid from the two fastest batches to the loosest SLO, and,
    on small types (at most TIGHT_TARGETS_MAX (model, batch) pairs), every tight cycle
    slo - f l(b) at which a member with batch b just meets its SLO (a pattern whose true
    cycle falls between grid points may need its tightest member's batch at such a cycle)."""
    if len(items.memory_per_gpu_gib) < 2:
        return np.zeros(0)
    f = items.interference_factor
    first = np.sort(np.array([a[0] for a in items.latencies_ms])) * f
    lo = first[0] + first[1]
    hi = float(np.max(items.slo_ms - first))
    if hi < lo:
        return np.zeros(0)
    n = int(math.ceil(math.log(hi / lo) / math.log(ratio))) + 1
    targets = lo * ratio ** np.arange(n)
    if sum(len(a) for a in items.latencies_ms) <= TIGHT_TARGETS_MAX:
        tight = np.concatenate([slo - f * np.asarray(a, dtype=float) for slo, a in zip(items.slo_ms, items.latencies_ms)])
        tight = tight[(tight >= lo) & (tight <= hi)]
        targets = np.unique(np.concatenate([targets, tight]))
    return targets


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

    def price(self, duals, gpu_dual_of, budget_dual: float, min_cost: bool, max_columns_per_type: int = 12,
              thorough: bool = False, fills_per_cycle: int = 1) -> list[tuple[float, Column]]:
        """Columns with negative reduced cost, most negative first: found by the greedy, or
        with `thorough` by the time DP (`_dp_fill`) at memory prices 0, 1/2 and 1 x the GPU's
        break-even value per GiB (slower; used when the greedy finds nothing).

        `fills_per_cycle` > 1: after each greedy fill, the models it picked are set aside
        and the GPU is filled again from the rest, up to that many disjoint patterns per
        cycle target. A residual problem (the dive's) needs a packing of many models'
        leftovers at once; one pattern per cycle target and iteration makes its column
        generation crawl (1,000 models: residual LP 7,750 after 4 iterations with one fill,
        7,419 with 8 disjoint fills)."""
        u = self.problem.max_utilization
        found: dict = {}
        for it, flat, targets, demand, cv in zip(self.items, self.flat, self.targets, self.demand, self.cv):
            cost = self.problem.gpu_types[it.type_index].cost_per_hour_usd
            constant = (cost if min_cost else 0.0) - gpu_dual_of(it.type_index, 1) - cost * budget_dual
            dual_demand = duals.demand[it.model_indices]
            dual_presence = duals.presence[it.model_indices]
            chosen = np.zeros(len(it.model_indices), dtype=np.int64)
            per_type = []
            fills = []
            for cycle in targets:
                if not thorough:
                    fills.append((float(cycle), None))
                else:
                    fills += [(float(cycle), q * max(constant, 0.0) / it.memory_gib) for q in MEMORY_PRICES]
            for cycle, memory_price in fills:
                repeats = fills_per_cycle if memory_price is None else 1
                fill_demand, fill_presence = dual_demand, dual_presence
                for repeat in range(repeats):
                    if repeat:  # set aside the models the last fill picked
                        if repeat == 1:
                            fill_demand, fill_presence = dual_demand.copy(), dual_presence.copy()
                        fill_demand[chosen > 0] = 0.0
                        fill_presence[chosen > 0] = 0.0
                    if memory_price is None:
                        picked = _greedy_fill(cycle, it.interference_factor, flat.flat, flat.offsets, flat.lengths,
                                              it.memory_per_gpu_gib, it.slo_ms, cv, demand, fill_demand, fill_presence,
                                              u, it.memory_gib, chosen)
                    else:
                        picked = _dp_fill(cycle, it.interference_factor, flat.flat, flat.offsets, flat.lengths,
                                          it.memory_per_gpu_gib, it.slo_ms, cv, demand, fill_demand, fill_presence, u,
                                          it.memory_gib, memory_price, DP_CELLS, chosen)
                    if picked < 2:
                        break
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
        """The column of a priced pattern, built from the type's items directly (the same
        numbers as packing_rules.make_pattern and columns.make_column, which look every
        member up again: a third of pricing's time at 1,000 models), its member rates put
        in the per-problem cache (planner.problem.pattern_member_rates)."""
        where = self._item_of(it)
        n = len(members)
        picked = sorted((name, batch, where[name]) for name, batch in members)
        out = [Member(name, int(batch), shared_batch_ms(float(it.latencies_ms[pos][batch - 1]), n, it.interference_factor))
               for name, batch, pos in picked]
        pattern = Pattern(it.gpu_type, 1, tuple(out))
        cycle = pattern.cycle_ms
        if pattern not in derived_cache(self.problem, "_pattern_rates"):
            u = self.problem.max_utilization
            rates = []
            for member, (_, _, pos) in zip(out, picked):
                i = int(it.model_indices[pos])
                info = self.problem.model(self.index.models[i])
                share = planned_share(member.batch_size, cycle, member.batch_ms, info.slo_ms, info.cv, u)
                rates.append(share * capacity_rps(member.batch_size, cycle))
            remember_member_rates(self.problem, pattern, tuple(rates))
        return make_column(self.problem, self.index, pattern)

    def _item_of(self, it: TypeItems) -> dict[str, int]:
        """Model name -> position among the type's items."""
        cache = self.__dict__.setdefault("_items_by_name", {})
        where = cache.get(it.type_index)
        if where is None:
            where = {self.index.models[int(i)]: pos for pos, i in enumerate(it.model_indices)}
            cache[it.type_index] = where
        return where
