"""A compact LP relaxation of the packing problem: a proven lower bound on min_cost that
sees memory and replica counts, which the fluid bound does not.

Variables, per (model m, GPU type t, degree k) option: replicas[m,t,k] >= 0 and busy[m,t,k]
>= 0 (GPU-seconds per second given to m); per type: gpus[t] >= 0. Every real plan maps to a
feasible point (gpus = GPUs used, replicas = its replicas, busy = their shares of GPU time):
- coverage:  sum_{t,k} P_mtk busy_mtk >= demand_m, P_mtk the best planned req/s of m alone on
             (t, k) (planner.capacity.dedicated_planned_rps): a member sharing a GPU plans no
             more per busy second (longer cycles tolerate fewer cycles, interference slows it);
- presence:  sum_{t,k} replicas_mtk >= ceil(demand_m / best planned rate of m);
- a replica's least share: busy_mtk >= replicas_mtk x k l_mt(1) / (slo_m - l_mt(1)) for
             k = 1 (its batch-1 time within the longest cycle its SLO allows), and
             busy_mtk >= k replicas_mtk for TP groups (whole GPUs);
- time:      sum_{m,k} busy_mtk <= gpus_t;  memory: sum_{m,k} memory_m replicas_mtk <= M_t gpus_t;
- inventory: gpus_t <= count_t (and TP groups within group_slots); budget.
minimise sum_t cost_t gpus_t.
"""

from __future__ import annotations

import math

import highspy
import numpy as np

from planner.problem import PlacementProblem, dedicated_rates
from solvers.highs_quiet import quiet_highs

INF = highspy.kHighsInf


def compact_cost_bound(problem: PlacementProblem) -> float:
    """Optimal value of the compact LP (a lower bound on every plan's cost), or nan."""
    types = {g.name: t for t, g in enumerate(problem.gpu_types)}
    options = []  # (model index, type index, degree, best rate per busy second, least share per replica)
    best_planned = []
    demanded = problem.demanded_models
    for i, info in enumerate(demanded):
        best = 0.0
        for opt in info.options:
            lat = opt.latency_ms
            planned = dedicated_rates(problem, info, opt)
            if not (planned > 0).any():
                continue
            k = opt.tensor_parallel
            best = max(best, float(np.max(planned)))
            rate = float(np.max(planned)) / k  # planned req/s per busy GPU-second (a group busies k GPUs)
            if k == 1:
                least = float(lat[0]) / max(info.slo_ms - float(lat[0]), 1e-9)
            else:
                least = float(k)
            options.append((i, types[opt.gpu_type], k, rate, min(least, float(k))))
        best_planned.append(best)
    if not options or any(b <= 0 for b in best_planned):
        return math.nan
    n_opt, n_types = len(options), len(problem.gpu_types)
    # columns: replicas (n_opt), busy (n_opt), gpus (n_types)
    rep = np.arange(n_opt)
    busy = n_opt + rep
    gpus = 2 * n_opt + np.arange(n_types)
    h = quiet_highs(random_seed=0)
    upper_gpus = np.array([INF if g.count is None else float(g.count) for g in problem.gpu_types])
    h.addVars(2 * n_opt + n_types, np.zeros(2 * n_opt + n_types), np.concatenate([np.full(2 * n_opt, INF), upper_gpus]))
    cost = np.concatenate([np.zeros(2 * n_opt), [g.cost_per_hour_usd for g in problem.gpu_types]])
    h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
    starts, index, value, lo, hi = [], [], [], [], []

    def row(low, high, cols, vals):
        starts.append(len(index))
        lo.append(low)
        hi.append(high)
        index.extend(int(c) for c in cols)
        value.extend(float(v) for v in vals)

    by_model: dict[int, list[int]] = {}
    by_type: dict[int, list[int]] = {}
    for j, (i, t, k, rate, least) in enumerate(options):
        by_model.setdefault(i, []).append(j)
        by_type.setdefault(t, []).append(j)
        row(0.0, INF, [busy[j], rep[j]], [1.0, -least])  # a replica's least share
    for i, info in enumerate(demanded):
        js = by_model.get(i, [])
        row(info.demand_rps, INF, [busy[j] for j in js], [options[j][3] for j in js])  # coverage
        row(float(math.ceil(info.demand_rps / best_planned[i] - 1e-9)), INF, [rep[j] for j in js], [1.0] * len(js))
    for t, gpu in enumerate(problem.gpu_types):
        js = by_type.get(t, [])
        row(-INF, 0.0, [busy[j] for j in js] + [gpus[t]], [1.0] * len(js) + [-1.0])  # time
        row(-INF, 0.0, [rep[j] for j in js] + [gpus[t]],
            [demanded[options[j][0]].memory_gib for j in js] + [-gpu.memory_gib])  # memory (k GPUs hold mem)
        if gpu.count is not None:
            for d in (2, 4, 8):
                group = [j for j in js if options[j][2] >= d]
                if group:
                    row(-INF, float(gpu.group_slots(d)), [busy[j] for j in group], [1.0] * len(group))
    if problem.budget_usd_per_hour is not None:
        row(-INF, problem.budget_usd_per_hour, list(gpus), [g.cost_per_hour_usd for g in problem.gpu_types])
    h.addRows(len(lo), np.array(lo), np.array(hi), len(index), np.array(starts, dtype=np.int32),
              np.array(index, dtype=np.int32), np.array(value))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return math.nan
    return float(h.getInfo().objective_function_value)
