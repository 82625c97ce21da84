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

import bisect
import math
from dataclasses import dataclass, field

import numba
import numpy as np

from planner.capacity import capacity_rps, planned_share, shared_batch_ms
from planner.problem import (Member, Pattern, PlacementProblem, dedicated_rates, derived_cache, pattern_member_rates,
                             remember_member_rates)
from solvers.colgen.columns import Column, Index, TypeItems, members_pattern


def singleton_columns(problem: PlacementProblem, index: Index, gpus_left=None) -> list[Column]:
    """One column per (model, type, degree): the model alone at its demand-saturating batch
    (the smallest batch whose planned rate reaches min(best rate, demand)); with `gpus_left`
    (type name -> GPUs still free), only options that still fit."""
    cols = []
    for i, (name, d) in enumerate(zip(index.models, index.demand_rps)):
        d = float(d)
        for option in _singleton_options(problem, name):
            if gpus_left is not None and option.tensor_parallel > gpus_left[option.gpu_type]:
                continue
            target = min(option.best_rps, d)
            b = bisect.bisect_left(option.running_best_rps, target - 1e-12) + 1
            pattern = option.pattern(b)
            rate = pattern_member_rates(problem, pattern)[0]
            cols.append(Column(pattern, option.type_index, option.tensor_parallel, option.cost_usd_per_hour, (i,),
                               (min(rate, d),)))
    return cols


@dataclass
class _SingletonOption:
    """One (model, type, degree) a model can run alone on, with what singleton_columns needs."""

    model: str
    gpu_type: str
    type_index: int
    tensor_parallel: int
    cost_usd_per_hour: float
    latency_ms: np.ndarray
    best_rps: float
    running_best_rps: list[float]  # running max of the planned rate over b = 1..max_batch
    patterns: dict = field(default_factory=dict)  # batch -> Pattern

    def pattern(self, batch: int) -> Pattern:
        found = self.patterns.get(batch)
        if found is None:
            found = members_pattern(self.gpu_type, self.tensor_parallel,
                                    [Member(self.model, batch, float(self.latency_ms[batch - 1]))])
            self.patterns[batch] = found
        return found


def _singleton_options(problem: PlacementProblem, name: str) -> list[_SingletonOption]:
    """A model's options with a positive planned rate alone, made once per problem (the
    dive asks for every residual model's singletons each round: 6 s at 1,000 models)."""
    cache = derived_cache(problem, "_singleton_options")
    found = cache.get(name)
    if found is None:
        info = problem.model(name)
        type_of = {g.name: t for t, g in enumerate(problem.gpu_types)}
        found = []
        for opt in info.options:
            rate = dedicated_rates(problem, info, opt)  # planned_share x 1000 b / l(b)
            if not (rate > 0).any():
                continue
            gpu = problem.gpu_types[type_of[opt.gpu_type]]
            found.append(_SingletonOption(info.name, opt.gpu_type, type_of[opt.gpu_type], opt.tensor_parallel,
                                          gpu.cost_per_hour_usd * opt.tensor_parallel, opt.latency_ms, float(rate.max()),
                                          np.maximum.accumulate(rate).tolist()))
        cache[name] = found
    return found


class FlatLatencies:
    """Batch times of a type's items packed into one array for compiled code; made
    non-decreasing (running max), which only overstates times, so patterns stay feasible."""

    def __init__(self, items: TypeItems):
        lengths = np.array([len(a) for a in items.latencies_ms], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.lengths = lengths
        self.flat = (np.concatenate([np.maximum.accumulate(a) for a in items.latencies_ms])
                     if len(lengths) else np.zeros(0))
        # the profile's own times: a priced pattern's members run at these (x the factor)
        self.raw = (np.concatenate([np.asarray(a, dtype=float) for a in items.latencies_ms])
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
def _greedy_fills(targets, fills_per_cycle, factor, flat, raw, offsets, lengths, memory, slo, cv, demand,
                  dual_demand, dual_presence, utilization, gpu_memory, name_order, constant,
                  out_items, out_batches, out_rates, out_start, out_count, out_reduced):
    """Every greedy fill of one GPU type: per cycle target, up to `fills_per_cycle` disjoint
    fills (each sets aside the models the fills before it picked). Records each fill of 2+
    members in name order (items, batches, planned rates at the pattern's true cycle) with
    its reduced cost `constant` - sum(demand dual x min(rate, demand) + presence dual).
    Returns the number of fills recorded.

    The same arithmetic, in the same order, as the pattern's own numbers
    (planner.problem.member_planned_rps, Pattern.cycle_ms: members by name), so the rates
    are those numbers exactly (tests/test_colgen_pricing.py)."""
    n = len(memory)
    chosen = np.zeros(n, dtype=np.int64)
    fill_demand = np.empty(n)
    fill_presence = np.empty(n)
    fills = 0
    pos = 0
    for cycle in targets:
        for i in range(n):
            fill_demand[i] = dual_demand[i]
            fill_presence[i] = dual_presence[i]
        for repeat in range(fills_per_cycle):
            if repeat:  # set aside the models the last fill picked
                for i in range(n):
                    if chosen[i] > 0:
                        fill_demand[i] = 0.0
                        fill_presence[i] = 0.0
            picked = _greedy_fill(cycle, factor, flat, offsets, lengths, memory, slo, cv, demand, fill_demand,
                                  fill_presence, utilization, gpu_memory, chosen)
            if picked < 2:
                break
            start = pos
            true_cycle = 0.0
            for q in range(n):
                i = name_order[q]
                if chosen[i] > 0:
                    out_items[pos] = i
                    out_batches[pos] = chosen[i]
                    true_cycle += raw[offsets[i] + chosen[i] - 1] * factor
                    pos += 1
            value = 0.0
            for p in range(start, pos):
                i = out_items[p]
                b = out_batches[p]
                own = raw[offsets[i] + b - 1] * factor
                share = _planned_share(b, true_cycle, own, slo[i], cv[i], utilization)
                rate = share * (1000.0 * b / true_cycle)
                out_rates[p] = rate
                covered = rate if rate <= demand[i] else demand[i]
                value += dual_demand[i] * covered + dual_presence[i]
            out_start[fills] = start
            out_count[fills] = pos - start
            out_reduced[fills] = constant - value
            fills += 1
    return fills


@numba.njit(cache=True)
def add_choice_group(best, take_row, choice_b, choice_c, choice_v, m, cells):
    """One group of a multiple-choice knapsack over time cells: `best[c]` (the best value
    within c cells over the groups so far) with at most one of the group's m choices (batch,
    cells, value) added; `take_row[c]` records the batch taken at c. Returns the new best."""
    new = best.copy()
    for c in range(cells, -1, -1):
        for j in range(m):
            need = choice_c[j]
            if need <= c:
                cand = best[c - need] + choice_v[j]
                if cand > new[c] + 1e-12:
                    new[c] = cand
                    take_row[c] = choice_b[j]
    return new


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
        best = add_choice_group(best, take[i], choice_b, choice_c, choice_v, m, cells)
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
        # positions of each type's items in model-name order (a pattern's member order)
        self._name_order = [np.array(sorted(range(len(it.model_indices)), key=lambda p, it=it: index.models[it.model_indices[p]]),
                                     dtype=np.int64) for it in self.items]

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
        out = []
        for k, (it, flat, targets, demand, cv) in enumerate(zip(self.items, self.flat, self.targets, self.demand, self.cv)):
            cost = self.problem.gpu_types[it.type_index].cost_per_hour_usd
            constant = (cost if min_cost else 0.0) - gpu_dual_of(it.type_index, 1) - cost * budget_dual
            if thorough:
                per_type = self._dp_columns(k, it, flat, targets, demand, cv, duals, constant)
            else:
                per_type = self._greedy_columns(k, it, flat, targets, demand, cv, duals, constant, fills_per_cycle,
                                                max_columns_per_type)
            per_type = [rc_col for rc_col in per_type if rc_col[0] < -1e-9 * max(1.0, cost)]
            per_type.sort(key=lambda rc: rc[0])
            out += per_type[:max_columns_per_type]
        out.sort(key=lambda rc: rc[0])
        return out

    def _greedy_columns(self, k, it, flat, targets, demand, cv, duals, constant, fills_per_cycle, keep):
        """(reduced cost, column) of the greedy fills of one type, each pattern once, in the
        order found; columns are built only for the `keep` most negative (and their ties):
        the compiled loop (`_greedy_fills`) prices every fill, Python builds what is kept."""
        n = len(it.model_indices)
        most = len(targets) * fills_per_cycle
        items = np.zeros(len(targets) * n, dtype=np.int64)
        batches = np.zeros(len(targets) * n, dtype=np.int64)
        rates = np.zeros(len(targets) * n)
        starts = np.zeros(most, dtype=np.int64)
        counts = np.zeros(most, dtype=np.int64)
        reduced = np.zeros(most)
        recorded = _greedy_fills(np.asarray(targets, dtype=float), fills_per_cycle, it.interference_factor, flat.flat,
                                 flat.raw, flat.offsets, flat.lengths, it.memory_per_gpu_gib, it.slo_ms, cv, demand,
                                 duals.demand[it.model_indices], duals.presence[it.model_indices],
                                 self.problem.max_utilization, it.memory_gib, self._name_order[k], constant,
                                 items, batches, rates, starts, counts, reduced)
        threshold = -1e-9 * max(1.0, self.problem.gpu_types[it.type_index].cost_per_hour_usd)
        seen: set = set()
        fresh = []  # fill numbers of first occurrences with a negative reduced cost
        for f in range(recorded):
            lo, hi = starts[f], starts[f] + counts[f]
            key = (items[lo:hi].tobytes(), batches[lo:hi].tobytes())
            if key in seen:
                continue
            seen.add(key)
            if reduced[f] < threshold:
                fresh.append(f)
        if len(fresh) > keep:
            cutoff = np.sort(reduced[fresh])[keep - 1]
            fresh = [f for f in fresh if reduced[f] <= cutoff]
        out = []
        for f in fresh:
            lo, hi = starts[f], starts[f] + counts[f]
            out.append((float(reduced[f]), self._column_of_fill(it, items[lo:hi], batches[lo:hi], rates[lo:hi])))
        return out

    def _dp_columns(self, k, it, flat, targets, demand, cv, duals, constant):
        """(reduced cost, column) of the DP fills of one type at each memory price, each
        pattern once, in the order found."""
        u = self.problem.max_utilization
        dual_demand = duals.demand[it.model_indices]
        dual_presence = duals.presence[it.model_indices]
        chosen = np.zeros(len(it.model_indices), dtype=np.int64)
        order = self._name_order[k]
        seen: set = set()
        out = []
        for cycle in targets:
            for q in MEMORY_PRICES:
                memory_price = q * max(constant, 0.0) / it.memory_gib
                picked = _dp_fill(float(cycle), it.interference_factor, flat.flat, flat.offsets, flat.lengths,
                                  it.memory_per_gpu_gib, it.slo_ms, cv, demand, dual_demand, dual_presence, u,
                                  it.memory_gib, memory_price, DP_CELLS, chosen)
                if picked < 2:
                    continue
                positions = order[chosen[order] > 0]
                key = (positions.tobytes(), chosen[positions].tobytes())
                if key in seen:
                    continue
                seen.add(key)
                col = self._column_of_fill(it, positions, chosen[positions])
                value = sum(duals.demand[i] * c + duals.presence[i] for i, c in zip(col.model_indices, col.coverage_rps))
                out.append((constant - value, col))
        return out

    def _column_of_fill(self, it: TypeItems, positions: np.ndarray, batches: np.ndarray,
                        rates: np.ndarray | None = None) -> Column:
        """The column of a fill: members (in name order) at the type's positions, built from
        the type's items directly (packing_rules.make_pattern and columns.make_column look
        every member up again: a third of pricing's time at 1,000 models). Its member rates
        go to planner.problem.pattern_member_rates' cache: `rates` as the compiled loop
        computed them, or computed here (the DP's fills); a pattern already cached keeps its
        numbers, the same ones (tests/test_colgen_pricing.py)."""
        n = len(positions)
        f = it.interference_factor
        members = tuple(Member(self.index.models[it.model_indices[p]], int(b),
                               shared_batch_ms(float(it.latencies_ms[p][b - 1]), n, f))
                        for p, b in zip(positions.tolist(), batches.tolist()))
        pattern = Pattern(it.gpu_type, 1, members)
        indices = tuple(int(it.model_indices[p]) for p in positions.tolist())
        cached = derived_cache(self.problem, "_pattern_rates").get(pattern)
        if cached is None:
            if rates is None:
                u = self.problem.max_utilization
                cycle = pattern.cycle_ms
                infos = [self.problem.model(self.index.models[i]) for i in indices]
                cached = tuple(planned_share(m.batch_size, cycle, m.batch_ms, info.slo_ms, info.cv, u)
                               * capacity_rps(m.batch_size, cycle) for m, info in zip(members, infos))
            else:
                cached = tuple(rates.tolist())
            remember_member_rates(self.problem, pattern, cached)
        demand = self.index.demand_rps
        cost = self.problem.gpu_types[it.type_index].cost_per_hour_usd
        return Column(pattern, it.type_index, 1, cost, indices,
                      tuple(min(rate, float(demand[i])) for rate, i in zip(cached, indices)))
