"""Exact pricing of shared patterns: a MIP *relaxation* of the pricing problem per GPU type.

For one GPU type, with phi = 1/D (D the cycle) and s_i = (batch time of i)/D its share of
the cycle, the round-robin rules become linear:
- cycle:     sum_i s_i <= 1
- SLO:       D + tau_i <= slo_i   <=>   y_i + s_i <= slo_i * phi
- memory:    sum_i memory_i y_i <= GPU memory;  at least two members: sum_i y_i >= 2
- batch >= 1:  s_i >= f l_i(1) phi  when y_i = 1
- rate:      b_i <= (tau_i / f - c_k) / a_k for every segment k of the lower convex hull of
             l_i, so rate_i = U 1000 b_i / D <= U 1000 / a_k (s_i / f - c_k phi); and b_i <= max_batch
- coverage:  w_i <= demand_i y_i, w_i <= rate_i
maximise sum_i (demand dual_i w_i + presence dual_i y_i). Batch sizes are continuous and
batch times under-estimated by the convex hull, so every real pattern is feasible here with
at least its real value: the MIP's dual bound bounds every shared pattern's value (a proven
pricing bound), and its solutions, rounded down to whole batches, are real columns.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import highspy

from solvers.highs_quiet import quiet_highs
import numpy as np

from planner.problem import PlacementProblem
from solvers.colgen.columns import Column, Index, TypeItems, make_column
from solvers.packing_rules import make_pattern, pattern_violations

INF = highspy.kHighsInf


def lower_hull_segments(latency_ms: np.ndarray) -> list[tuple[float, float]]:
    """(intercept c, slope a) of the lower convex hull of b -> l(b), b = 1..len: l(b) >= c + a b."""
    n = len(latency_ms)
    xs = np.arange(1, n + 1, dtype=float)
    hull: list[int] = []
    for j in range(n):
        while len(hull) >= 2:
            i0, i1 = hull[-2], hull[-1]
            cross = (xs[i1] - xs[i0]) * (latency_ms[j] - latency_ms[i0]) - (latency_ms[i1] - latency_ms[i0]) * (xs[j] - xs[i0])
            if cross <= 0:  # i1 lies on or above the chord i0 -> j
                hull.pop()
            else:
                break
        hull.append(j)
    if len(hull) == 1:
        return [(float(latency_ms[0]), 0.0)]
    segments = []
    for i0, i1 in zip(hull[:-1], hull[1:]):
        a = (latency_ms[i1] - latency_ms[i0]) / (xs[i1] - xs[i0])
        c = latency_ms[i0] - a * xs[i0]
        segments.append((float(c), float(a)))
    return segments


@dataclass
class ExactOutcome:
    columns: list[Column]
    max_reduced_value: dict[int, float]  # type index -> upper bound on (pattern value - constant)
    complete: bool  # every type's bound was computed
    stats: dict = field(default_factory=dict)


class ExactPricer:
    def __init__(self, problem: PlacementProblem, index: Index, items: list[TypeItems]):
        self.problem = problem
        self.index = index
        self.items = [it for it in items if len(it.model_indices) >= 2]
        self.hulls = [[lower_hull_segments(lat) for lat in it.latencies_ms] for it in self.items]

    def price(self, duals, master, deadline: float) -> ExactOutcome:
        columns: list[Column] = []
        bounds: dict[int, float] = {}
        complete = True
        for n, (it, hulls) in enumerate(zip(self.items, self.hulls)):
            left = deadline - time.perf_counter()
            if left <= 0.05:
                complete = False
                break
            cost = self.problem.gpu_types[it.type_index].cost_per_hour_usd
            constant = (cost if master.min_cost else 0.0) - master.gpu_dual(it.type_index, 1, duals) - cost * duals.budget
            upper, found = self._solve_type(it, hulls, duals, constant, left / (len(self.items) - n))
            if upper is None:
                complete = False
                continue
            bounds[it.type_index] = max(0.0, upper - constant)
            for members in found:
                pattern = make_pattern(self.problem, it.gpu_type, 1, members)
                if pattern_violations(self.problem, pattern):
                    continue
                col = make_column(self.problem, self.index, pattern)
                if master.reduced_cost(col, duals) < -1e-9 * max(1.0, cost):
                    columns.append(col)
        return ExactOutcome(columns, bounds, complete)

    def _solve_type(self, it: TypeItems, hulls, duals, constant: float, time_limit_s: float):
        """Upper bound on the best shared pattern's dual value for one type, and candidate member lists."""
        u = self.problem.max_utilization
        f = it.interference_factor
        n = len(it.model_indices)
        dual_demand = duals.demand[it.model_indices]
        dual_presence = duals.presence[it.model_indices]
        useful = (dual_demand > 1e-12) | (dual_presence > 1e-12)
        if useful.sum() < 2:
            return 0.0, []
        first = np.array([lat[0] for lat in it.latencies_ms]) * f
        d_min = float(np.sort(first)[:2].sum())
        d_max = float(np.max(it.slo_ms))
        if d_max <= d_min:
            return 0.0, []
        phi_lo, phi_hi = 1.0 / d_max, 1.0 / d_min
        demand = self.index.demand_rps[it.model_indices]

        h = quiet_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("time_limit", max(0.05, time_limit_s))
        h.setOptionValue("mip_rel_gap", 1e-3)
        # columns: y (n), s (n), w (n), phi
        y = np.arange(n)
        s = n + y
        w = 2 * n + y
        phi = 3 * n
        lower = np.concatenate([np.zeros(3 * n), [phi_lo]])
        upper = np.concatenate([np.where(useful, 1.0, 0.0), np.ones(n), np.where(useful, demand, 0.0), [phi_hi]])
        cost = np.concatenate([dual_presence, np.zeros(n), dual_demand, [0.0]])
        h.addVars(3 * n + 1, lower, upper)
        h.changeColsCost(3 * n + 1, np.arange(3 * n + 1, dtype=np.int32), cost)
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        h.changeColsIntegrality(n, y.astype(np.int32), np.full(n, highspy.HighsVarType.kInteger))

        rows_lo, rows_hi, starts, index, value = [], [], [], [], []

        def row(lo, hi, cols, vals):
            starts.append(len(index))
            rows_lo.append(lo)
            rows_hi.append(hi)
            index.extend(int(c) for c in cols)
            value.extend(float(v) for v in vals)

        row(-INF, 1.0, s, np.ones(n))  # cycle shares
        row(-INF, it.memory_gib, y, it.memory_per_gpu_gib)  # memory
        row(2.0, INF, y, np.ones(n))  # shared: two members or more
        for i in range(n):
            if not useful[i]:
                row(-INF, 0.0, [s[i]], [1.0])
                continue
            row(-INF, 0.0, [s[i], y[i]], [1.0, -1.0])  # s_i <= y_i
            row(-INF, 0.0, [w[i], y[i]], [1.0, -demand[i]])  # w_i <= demand_i y_i
            row(-INF, 0.0, [y[i], s[i], phi], [1.0, 1.0, -it.slo_ms[i]])  # SLO
            big = first[i] * phi_hi
            row(-INF, big, [s[i], y[i], phi], [-1.0, big, first[i]])  # s_i >= f l(1) phi if y_i
            w_per_batch = u * 1000.0
            row(-INF, 0.0, [w[i], phi], [1.0, -w_per_batch * len(it.latencies_ms[i])])  # b <= max_batch
            for c_k, a_k in hulls[i]:
                if a_k <= 1e-12:
                    continue
                k = w_per_batch / a_k
                big_m = k * c_k * phi_hi
                # w_i <= k (s_i / f - c_k phi) + big_m (1 - y_i)
                row(-INF, big_m, [w[i], s[i], phi, y[i]], [1.0, -k / f, k * c_k, big_m])
        starts_arr = np.array(starts, dtype=np.int32)
        h.addRows(len(rows_lo), np.array(rows_lo), np.array(rows_hi), len(index), starts_arr,
                  np.array(index, dtype=np.int32), np.array(value))
        h.run()
        info = h.getInfo()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            return 0.0, []
        upper_bound = info.mip_dual_bound
        if not math.isfinite(upper_bound):
            return None, []
        found = []
        sol = h.getSolution()
        if sol.value_valid and info.objective_function_value > constant + 1e-9:
            x = np.array(sol.col_value)
            members = []
            cycle = 1.0 / x[phi]
            for i in np.nonzero(x[y] > 0.5)[0]:
                tau = x[s[i]] * cycle / f
                lat = it.latencies_ms[i]
                b = int(np.searchsorted(lat, tau + 1e-9, side="right"))
                members.append((self.index.models[it.model_indices[i]], max(1, min(b, len(lat)))))
            if len(members) >= 2:
                found.append(members)
        return float(upper_bound), found
