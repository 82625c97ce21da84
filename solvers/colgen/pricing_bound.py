"""A fast proven bound on the value of every shared pattern of a GPU type (for the
Lagrangian bound of the master), by a Lagrangian relaxation of the pricing problem in
bands of cycle length; see `PatternValueBound` for the relaxation.

It is valid but weak today (1.2-2x the pricing constant on the fleet scenarios), so the
compact LP (solvers/compact_bound.py) is usually the binding bound. Known ways to tighten
it: an exact DP over (memory, batch-1 time) per band instead of the memory multiplier, and
per-member batch choices instead of the best rate per busy second.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from solvers.colgen.columns import TypeItems

GRID_CELLS = 400


@numba.njit(cache=True)
def _knapsack(weight, value, capacity_ms, cell_ms):
    """0-1 knapsack: max sum value with sum weight <= capacity; weights rounded DOWN to cells
    (a relaxation: every real set stays feasible)."""
    cells = int(math.floor(capacity_ms / cell_ms + 1e-9))
    dp = np.zeros(cells + 1)
    for i in range(len(weight)):
        if value[i] <= 0.0:
            continue
        w = int(math.floor(weight[i] / cell_ms))
        for c in range(cells, w - 1, -1):
            cand = dp[c - w] + value[i]
            if cand > dp[c]:
                dp[c] = cand
    return dp[cells]


BAND_RATIO = 1.15


class PatternValueBound:
    """Upper bounds on shared-pattern values of one GPU type, given master duals.

    Cycles are split into bands [D_lo, D_hi]. In a band, member i takes at least the share
    s0_i = f l_i(1) / D_hi of the cycle and covers at most U R_i s_i / f req/s with share s_i,
    R_i its best rate per busy second among batches that meet its SLO with a cycle of D_lo.
    Pricing shares at lambda and memory at mu (Lagrangian relaxation), member i is worth
        v_i = presence_i - lambda s0_i + demand dual_i min(d_i, c0_i)
              + max(0, demand dual_i - lambda t_i) max(0, d_i - c0_i) - mu memory_i,
    t_i = f / (U R_i) the share per req/s, c0_i = s0_i / t_i, and the band's patterns are
    worth at most lambda + mu M + knapsack(batch-1 times within D_hi, v). The minimum over
    a grid of (lambda, mu), maximised over the bands, bounds every shared pattern.
    """

    def __init__(self, items: TypeItems, demand_rps: np.ndarray, utilization: float):
        f = items.interference_factor
        self.items = items
        self.f = f
        self.u = utilization
        self.first_ms = np.array([lat[0] for lat in items.latencies_ms]) * f
        self.demand = demand_rps[items.model_indices]
        lo = float(np.sort(self.first_ms)[:2].sum()) if len(self.first_ms) >= 2 else 1.0
        hi = float(np.max(items.slo_ms)) if len(self.first_ms) else 1.0
        n = max(1, int(math.ceil(math.log(max(hi / lo, 1.0 + 1e-9)) / math.log(BAND_RATIO))))
        self.bands = lo * BAND_RATIO ** np.arange(n)
        # best rate per busy second of each member, per band (batches meeting the SLO at D_lo)
        self.best_rate = np.zeros((len(self.bands), len(self.first_ms)))
        for j, lat in enumerate(items.latencies_ms):
            rates = 1000.0 * np.arange(1, len(lat) + 1) / lat
            running = np.maximum.accumulate(rates)
            for k, d_lo in enumerate(self.bands):
                fits = int(np.searchsorted(lat * f, items.slo_ms[j] - d_lo, side="right"))
                self.best_rate[k, j] = running[fits - 1] if fits > 0 else 0.0

    def bound(self, dual_demand: np.ndarray, dual_presence: np.ndarray) -> float:
        it = self.items
        if len(it.model_indices) < 2:
            return 0.0
        pi = dual_demand[it.model_indices]
        sigma = dual_presence[it.model_indices]
        mem = it.memory_per_gpu_gib
        overall = 0.0
        for k, d_lo in enumerate(self.bands):
            d_hi = d_lo * BAND_RATIO
            rate = self.best_rate[k]
            ok = (rate > 0) & (self.first_ms <= d_hi) & ((pi > 1e-12) | (sigma > 1e-12))
            if ok.sum() < 2:
                continue
            share0 = self.first_ms[ok] / d_hi
            per_rps = self.f / (self.u * rate[ok])
            free = np.minimum(self.demand[ok], share0 / per_rps)
            rest = np.maximum(0.0, self.demand[ok] - free)
            weight = self.first_ms[ok]
            p_, s_, m_ = pi[ok], sigma[ok], mem[ok]
            switch = p_ / per_rps
            lambdas = np.unique(np.concatenate([[0.0], np.quantile(switch, np.linspace(0.0, 1.0, 11))]))
            band_best = math.inf
            for lam in lambdas:
                gain = s_ - lam * share0 + p_ * free + np.maximum(0.0, p_ - lam * per_rps) * rest
                ratios = gain / np.maximum(m_, 1e-9)
                mus = np.unique(np.concatenate([[0.0], np.quantile(ratios, [0.5, 0.75, 0.9, 0.97])]))
                for mu in mus:
                    inner = _knapsack(weight, gain - mu * m_, d_hi, d_hi / GRID_CELLS)
                    band_best = min(band_best, lam + mu * it.memory_gib + inner)
            overall = max(overall, band_best)
        return overall
