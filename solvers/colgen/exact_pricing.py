"""Exact pricing of shared patterns: a proven upper bound on the best reduced profit of any
shared pattern of a GPU type, and the knapsack picks that find columns the heuristic
pricing (solvers.colgen.pricing) misses. Used by bench/bench_pricing_gap.py; colgen's own
solve does not call it (see "Why not in colgen" below).

For the master's duals (demand pi_m >= 0, presence rho_m >= 0, MIR cut duals, and the GPU-row
and budget duals folded into a per-type constant c_t'), every plan costs at least

    LP value - sum_t N_t * max(0, best reduced profit of a shared pattern of type t)

(N_t: GPUs of type t a plan may use; every singleton is in the master, so only shared
patterns can price out), and at least LP value / (1 + max_t profit_t / price_t), Farley's
scaled dual bound (`scaled_dual_bound`). This module bounds that best profit from above.

A shared pattern's members (m, b) run round robin in a cycle D = sum of their batch times
f l_m(b) (f: the type's interference factor); member m is worth
pi_m min(r_m(b, D), d_m) + rho_m (+ its cuts' duals x g(coverage)), where the planned rate
r_m(b, D) = planned_share(b, D) 1000 b / D does not increase with D and is 0 unless
D + f l_m(b) <= slo_m. So within a band of cycles [D_lo, D_hi] every member is worth at most
its value at max(D_lo, its own batch time), and the members' times fit in D_hi. Two upper
bounds on that relaxation, both valid for every pattern whose cycle lies in the band:
- `band_lagrangian_bound`: a price lam >= 0 on time (weak duality), exact batch times;
  tight when picks have many small members;
- `band_upper_bound`: a multiple-choice knapsack over time with times rounded down to cells
  of D_hi / cells; tight when picks have few large members (LLMs).
A Lagrangian price on memory (value - mu x GiB, plus mu x the GPU's memory) keeps memory in
both. Bands are geometric; the band with the largest bound above the tolerance is halved
(geometrically) next, down to a finest ratio, within a work limit of knapsacks; the type's
bound is the largest over the final bands.

Why not in colgen (measured on 2 cores, reports/pricing_gap.md): the bound over a band of
ratio r overestimates a pattern's value by about r - 1 (capacity and rates both scale with
the cycle), so a profit near zero needs fine bands across most of the cycle range. With best
first refinement (session 11; depth first before spent the work limit on one band's
corners) and 3,000 bounds a type, six rounds of exact columns prove at 50 models a
Lagrangian bound of 91.40 and a scaled dual bound of 90.27 (the replica relaxation: 88.69)
in about 35 s; at 200 models 1,216.59 and 1,212.12 after 200 s, far under the replica's
1,288.34: types are still bounded at 2-7% of their price. As a column finder it lowers the
LP (200 models 1,299.8 -> 1,292.9, 50 models 95.55 -> 94.20) but not the plan.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numba
import numpy as np

from planner.capacity import planned_share
from solvers.colgen.mir_cuts import mir_coefficient
from solvers.colgen.pricing import add_choice_group

_planned_share = numba.njit(cache=True)(planned_share)  # the capacity rule, compiled unchanged

START_BAND_RATIO = 2.0
FINEST_BAND_RATIO = 1.0002
BOUND_CELLS = 1024  # time cells per band in the bounding knapsack (times round down: a relaxation)
MEMORY_PRICES = (0.0, 0.5, 1.0, 2.0)  # mu, x the type's constant per GiB of the GPU
LAGRANGIAN_ITERATIONS = 60  # golden-section steps on the time price


@numba.njit(cache=True)
def _member_bound(i, b, own, d_lo, slo, cv, demand, dual_demand, dual_presence, cut_start, cut_count, cut_delta,
                  cut_frac, cut_dual, utilization, memory_price, memory):
    """At least what item i with batch b (time `own`) is worth on a GPU whose cycle is at
    least d_lo: its value at max(d_lo, own), less memory_price x its memory; 0 when no such
    cycle meets its SLO or the rule gives it no rate."""
    cycle = d_lo if d_lo > own else own
    if cycle + own > slo[i] + 1e-9:
        return 0.0
    rate = _planned_share(b, cycle, own, slo[i], cv[i], utilization) * 1000.0 * b / cycle
    if rate <= 0.0:
        return 0.0
    cover = rate if rate < demand[i] else demand[i]
    value = dual_demand[i] * cover + dual_presence[i] - memory_price * memory[i]
    for k in range(cut_start[i], cut_start[i] + cut_count[i]):
        value += cut_dual[k] * mir_coefficient(cover, cut_delta[k], cut_frac[k])
    return value


@numba.njit(cache=True)
def _band_options(d_lo, d_hi, factor, raw, offsets, lengths, memory, slo, cv, demand, dual_demand, dual_presence,
                  cut_start, cut_count, cut_delta, cut_frac, cut_dual, utilization, memory_price):
    """Every (item, batch) a pattern with cycle in [d_lo, d_hi] may hold, worth more than 0 by
    `_member_bound`: (item, batch, time, value) arrays in item order, and their count."""
    total = 0
    for i in range(len(memory)):
        total += lengths[i]
    opt_i = np.zeros(total, dtype=np.int64)
    opt_b = np.zeros(total, dtype=np.int64)
    opt_t = np.zeros(total)
    opt_v = np.zeros(total)
    m = 0
    for i in range(len(memory)):
        if dual_demand[i] <= 0.0 and dual_presence[i] <= 0.0 and cut_count[i] == 0:
            continue
        for b in range(1, lengths[i] + 1):
            own = factor * raw[offsets[i] + b - 1]
            if own > d_hi:
                continue
            value = _member_bound(i, b, own, d_lo, slo, cv, demand, dual_demand, dual_presence, cut_start, cut_count,
                                  cut_delta, cut_frac, cut_dual, utilization, memory_price, memory)
            if value <= 1e-12:
                continue
            opt_i[m] = i
            opt_b[m] = b
            opt_t[m] = own
            opt_v[m] = value
            m += 1
    return opt_i, opt_b, opt_t, opt_v, m


@numba.njit(cache=True)
def band_upper_bound(d_lo, d_hi, factor, raw, offsets, lengths, memory, slo, cv, demand, dual_demand,
                     dual_presence, cut_start, cut_count, cut_delta, cut_frac, cut_dual, utilization, gpu_memory,
                     memory_price, cells, chosen_batch):
    """Upper bound on sum of member values (less memory_price x GiB, plus memory_price x the
    GPU's memory) over every shared pattern with cycle in [d_lo, d_hi]; chosen_batch gets the
    knapsack's best pick (batch per item, 0 = out). Members' MIR cuts: item i has cut_count[i]
    cuts from cut_start[i], each worth cut_dual x g(coverage) with g the MIR function of
    (cut_delta, cut_frac)."""
    opt_i, opt_b, opt_t, opt_v, m = _band_options(d_lo, d_hi, factor, raw, offsets, lengths, memory, slo, cv, demand,
                                                  dual_demand, dual_presence, cut_start, cut_count, cut_delta, cut_frac,
                                                  cut_dual, utilization, memory_price)
    return _knapsack_bound(opt_i, opt_b, opt_t, opt_v, m, len(memory), d_hi, cells, chosen_batch) \
        + memory_price * gpu_memory


@numba.njit(cache=True)
def _knapsack_bound(opt_i, opt_b, opt_t, opt_v, m, n, d_hi, cells, chosen_batch):
    """The best sum of option values, at most one option per item, whose times rounded down
    to cells of d_hi / cells fit `cells`; chosen_batch gets the pick."""
    cell_ms = d_hi / cells
    opt_c = np.zeros(m, dtype=np.int64)
    for j in range(m):
        opt_c[j] = int(math.floor(opt_t[j] / cell_ms + 1e-12))
    best = np.zeros(cells + 1)
    take = np.zeros((n, cells + 1), dtype=np.int32)
    for i in range(n):
        chosen_batch[i] = 0
    first = 0
    while first < m:  # one group per item: its options are consecutive
        last = first
        while last < m and opt_i[last] == opt_i[first]:
            last += 1
        best = add_choice_group(best, take[opt_i[first]], opt_b[first:last], opt_c[first:last], opt_v[first:last],
                                last - first, cells)
        first = last
    c = cells
    last = m
    while last > 0:  # walk the groups back, last item first
        first = last - 1
        while first > 0 and opt_i[first - 1] == opt_i[last - 1]:
            first -= 1
        b = take[opt_i[first], c]
        if b > 0:
            chosen_batch[opt_i[first]] = b
            for j in range(first, last):
                if opt_b[j] == b:
                    c -= opt_c[j]
                    break
        last = first
    return best[cells]


@numba.njit(cache=True)
def band_lagrangian_bound(d_lo, d_hi, factor, raw, offsets, lengths, memory, slo, cv, demand, dual_demand,
                          dual_presence, cut_start, cut_count, cut_delta, cut_frac, cut_dual, utilization, gpu_memory,
                          memory_price, iterations):
    """The same bound as `band_upper_bound` with exact batch times and no knapsack: for any
    price lam >= 0 on time, sum_i max(0, max_b value_ib - lam time_ib) + lam d_hi bounds every
    pick whose times fit d_hi (weak duality); minimised over lam by golden-section search (the
    function is convex in lam). Tight when picks have many small members, where rounding times
    down to cells is not."""
    opt_i, _, opt_t, opt_v, m = _band_options(d_lo, d_hi, factor, raw, offsets, lengths, memory, slo, cv, demand,
                                              dual_demand, dual_presence, cut_start, cut_count, cut_delta, cut_frac,
                                              cut_dual, utilization, memory_price)
    return _lagrangian_bound(opt_i, opt_t, opt_v, m, len(memory), d_hi, iterations) + memory_price * gpu_memory


@numba.njit(cache=True)
def _lagrangian_bound(opt_i, opt_t, opt_v, m, n, d_hi, iterations):
    """min over lam >= 0 of sum_i max(0, max over item i's options of value - lam time) + lam d_hi."""
    top_ratio = 0.0
    for j in range(m):
        if opt_v[j] / opt_t[j] > top_ratio:
            top_ratio = opt_v[j] / opt_t[j]
    best_item = np.zeros(n)

    def dual(lam):
        for i in range(n):
            best_item[i] = 0.0
        for j in range(m):
            v = opt_v[j] - lam * opt_t[j]
            if v > best_item[opt_i[j]]:
                best_item[opt_i[j]] = v
        out = lam * d_hi
        for i in range(n):
            out += best_item[i]
        return out

    lo = 0.0
    hi = top_ratio * (1.0 + 1e-9)
    golden = 0.6180339887498949
    a = hi - golden * (hi - lo)
    c = lo + golden * (hi - lo)
    fa = dual(a)
    fc = dual(c)
    best = min(dual(lo), dual(hi), fa, fc)
    for _ in range(iterations):
        if fa <= fc:
            hi = c
            c = a
            fc = fa
            a = hi - golden * (hi - lo)
            fa = dual(a)
        else:
            lo = a
            a = c
            fa = fc
            c = lo + golden * (hi - lo)
            fc = dual(c)
        best = min(best, fa, fc)
    return best


@dataclass
class TypeProof:
    """What exact pricing proved for one GPU type."""

    type_index: int
    profit_bound: float  # >= the best reduced profit (constant - value < 0 <=> profit > 0) of any shared pattern
    bands: int  # knapsacks solved
    picks: list = field(default_factory=list)  # (positions, batches) of knapsack picks worth evaluating


@dataclass(frozen=True)
class CutTerms:
    """MIR cut duals per item of one type, flattened for compiled code."""

    start: np.ndarray
    count: np.ndarray
    delta: np.ndarray
    frac: np.ndarray
    dual: np.ndarray

    @classmethod
    def none(cls, n: int) -> CutTerms:
        return cls(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.ones(1), np.ones(1), np.zeros(1))


def prove_type(it, flat, cv: np.ndarray, demand: np.ndarray, dual_demand: np.ndarray, dual_presence: np.ndarray,
               constant: float, utilization: float, tolerance: float, cuts: CutTerms | None = None,
               start_ratio: float = START_BAND_RATIO, finest_ratio: float = FINEST_BAND_RATIO,
               cells: int = BOUND_CELLS, max_knapsacks: int = 20000) -> TypeProof:
    """Bound the best reduced profit (value - constant) of any shared pattern of one type
    (`it`, `flat`: solvers.colgen.columns.TypeItems and pricing.FlatLatencies of the type;
    per item: arrival cv, demand, demand and presence duals).

    Bands start at `start_ratio`; a band whose bound is within `tolerance` of zero profit is
    done; of the others, the one with the largest bound is halved next (best first), down to
    `finest_ratio`, until none is left or `max_knapsacks` bounds were computed (a work limit).
    Returns the largest bound over the final bands and the knapsack picks of the bands left
    above the tolerance, largest bound first (candidate columns: the caller evaluates them
    as real patterns)."""
    n = len(it.model_indices)
    if n == 0:
        return TypeProof(it.type_index, -math.inf, 0)
    cuts = cuts or CutTerms.none(n)
    f = it.interference_factor
    raw = flat.raw
    firsts = np.array([raw[flat.offsets[i]] for i in range(n)]) * f  # every cycle is at least one batch
    d_min = float(np.min(firsts))
    d_max = float(np.max(it.slo_ms - firsts))
    if d_max < d_min:
        return TypeProof(it.type_index, -math.inf, 0)
    chosen = np.zeros(n, dtype=np.int64)
    prices = [q * max(constant, 0.0) / it.memory_gib for q in MEMORY_PRICES]
    solved = 0

    def bounded(lo: float, hi: float) -> tuple:
        """(-profit bound, lo, hi, knapsack pick or None) of one band: the smallest bound over
        the memory prices (Lagrangian first, the knapsack where that is above tolerance)."""
        nonlocal solved
        bound, pick = math.inf, None
        for price in prices:
            options = _band_options(lo, hi, f, raw, flat.offsets, flat.lengths, it.memory_per_gpu_gib, it.slo_ms, cv,
                                    demand, dual_demand, dual_presence, cuts.start, cuts.count, cuts.delta, cuts.frac,
                                    cuts.dual, utilization, price)
            opt_i, opt_b, opt_t, opt_v, m = options
            held = price * it.memory_gib  # the memory price's constant term
            value = _lagrangian_bound(opt_i, opt_t, opt_v, m, n, hi, LAGRANGIAN_ITERATIONS) + held
            solved += 1
            if value - constant <= tolerance:
                return (-(min(bound, value) - constant), lo, hi, None)
            value = min(value, _knapsack_bound(opt_i, opt_b, opt_t, opt_v, m, n, hi, cells, chosen) + held)
            solved += 1
            if value < bound:
                bound, pick = value, chosen.copy()
            if bound - constant <= tolerance:
                break
        return (-(bound - constant), lo, hi, pick)

    # best first: the band with the largest bound is split next, so a work limit leaves the
    # type's bound (the largest over the bands) as low as that many knapsacks can make it.
    # (Depth first, session 7: the limit went to the first wide band's corners and left the
    # rest at their first bound; fleet-50x64 at colgen's converged duals, about 3,000 bounds
    # a type: V100 at 205.8% of its price depth first, 12.4% best first.)
    heap = []
    lo = d_min
    while lo < d_max:
        heapq.heappush(heap, bounded(lo, min(lo * start_ratio, d_max * (1 + 1e-12))))
        lo *= start_ratio
    finest = []  # bands at the finest ratio, still above the tolerance
    while heap and -heap[0][0] > tolerance and solved < max_knapsacks:
        negative_profit, lo, hi, pick = heapq.heappop(heap)
        if hi / lo <= finest_ratio:
            finest.append((negative_profit, lo, hi, pick))
            continue
        mid = math.sqrt(lo * hi)
        heapq.heappush(heap, bounded(lo, mid))
        heapq.heappush(heap, bounded(mid, hi))
    bands = heap + finest
    worst = max((-band[0] for band in bands), default=-math.inf)  # no band: d_min == d_max
    picks = []
    for negative_profit, _, _, pick in sorted(bands, key=lambda band: (band[0], band[1])):
        if -negative_profit <= tolerance or pick is None:
            continue
        positions = np.nonzero(pick > 0)[0]
        if len(positions) >= 2:
            picks.append((positions, pick[positions]))
    return TypeProof(it.type_index, worst, solved, picks)


def scaled_dual_bound(lp_value: float, profit_bounds: dict[int, float], prices: dict[int, float]) -> float:
    """A proven lower bound on every plan's cost from the master LP (value `lp_value`, min_cost)
    and, per GPU type t, a bound on the best reduced profit of its shared patterns
    (`prove_type`'s profit_bound against the constant c_t' = price - GPU-row duals - price x
    budget dual) and its price: Farley's bound, lp_value / theta with
    theta = 1 + max_t max(0, profit_bound_t) / price_t.

    Why it holds: the master's duals y (demand and presence >= 0, inventory, TP slots and
    budget <= 0) give lp_value = the dual objective. For any pattern p of type t, what y
    charges it is value_p + (price_t - c_t') = price_t + profit_p <= theta price_t, and for
    the master's own columns (and slack columns) it is at most their cost already; so y / theta
    meets every column's dual row, keeps the signs, and is dual feasible for the master over
    all patterns; weak duality bounds its optimum, and so every plan, by lp_value / theta.
    The relative error is the worst type's profit share, where the Lagrangian bound
    (lp_value - sum_t count_t profit_t) pays each type's profit times its whole inventory."""
    theta = 1.0
    for t, profit in profit_bounds.items():
        if math.isinf(profit) and profit > 0:
            return 0.0
        theta = max(theta, 1.0 + max(0.0, profit) / prices[t])
    return lp_value / theta
