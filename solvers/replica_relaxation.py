"""The replica relaxation: a compact MIP whose optimum is a proven lower bound on min_cost
that sees whole GPUs, whole replicas and what sharing a GPU costs each member.

Why: the compact LP (solvers.compact_bound) prices every request at the model's best
dedicated efficiency, so a model's last, partial replica costs a fraction of a GPU for free.
Real plans pay a whole GPU for it, or share one, where the member gets a smaller batch and
less rate per share of the cycle. This relaxation keeps dedicated GPUs integer, prices
shared membership by the best rate any batch and cycle can give per share of the cycle, and
relaxes only how shared GPUs are packed (time and memory summed per type and SLO class).

Every plan maps to a feasible point, so the optimum (and the MIP's dual bound) is a lower
bound on every plan's cost. Variables:
- dedicated[m, t, k], integer: GPUs (k = 1) or TP groups of k GPUs of type t running m
  alone; each covers at most min(P, demand_m), P the best planned rate alone
  (planner.capacity.dedicated_planned_rps).
- member[m, t, c, v] >= 0: memberships of m in shared GPUs of type t and SLO class c, at
  vertex v of `shared_vertices`: share sigma_v of the cycle, coverage r_v. A member with
  batch b in a cycle D has share tau / D (tau its batch time) and planned rate
  planned_share(b, D) x 1000 b / D; the vertices span the upper concave hull of every such
  (share, rate), so any real membership is a mix of vertices with no more share and no
  less rate.
- sharedgpus[t, c], integer: shared GPUs of type t whose tightest member SLO lies in class
  c (classes: `slo_classes`); on them every cycle is under the class's highest SLO. With
  `band_ratio`, each class is split by the GPU's cycle into bands (`cycle_bands`), and a
  member's vertices come from cycles in its GPU's band only.
- with `integer`, memberships[m, t, c] = sum_v member[m, t, c, v], integer.
Rows (one function each below):
- coverage: sum min(P, d) dedicated + sum r_v member >= demand_m;
- presence: dedicated + memberships >= ceil(demand_m / best planned rate);
- shared GPUs (per t, c): sum sigma member <= sharedgpus (a cycle is its members' times);
  sum memory x member <= M_t sharedgpus; memberships of each model <= sharedgpus (a model
  once per GPU); memberships >= 2 sharedgpus (two members or more); memberships of
  models whose SLO is in class c >= sharedgpus (the tightest member);
- inventory: dedicated GPUs + sharedgpus <= count_t; TP groups within group_slots; budget.
minimise sum cost x GPUs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import highspy
import numba
import numpy as np

from planner.capacity import planned_share
from planner.problem import PlacementProblem, dedicated_rates
from solvers.highs_quiet import quiet_highs

INF = highspy.kHighsInf
# Consecutive SLOs within this ratio share a class. Classes tighten the MIP (50 models:
# 85.9 -> 87.8) but barely the LP (200 models: 1282.5 -> 1282.6) and make it 14x slower at
# 1,000 models, so the default bound (LP, `integer=False`) uses one class.
SLO_CLASS_RATIO = 1.3
MAX_NODES = 200  # MIP work limit (deterministic); the LP alone is already a bound

_planned_share = numba.njit(cache=True)(planned_share)  # the capacity rule, compiled unchanged


@numba.njit(cache=True)
def share_rate_points(latency_ms: np.ndarray, slo_ms: float, cv: float, max_utilization: float,
                      interference_factor: float, cycle_cap_ms: float, cycle_floor_ms: float = 0.0) -> np.ndarray:
    """(share, planned rate) points whose upper hull bounds a shared member's rate.

    A member with batch b (time tau = f l(b)) in a cycle D has share sigma = tau / D and
    planned rate planned_share(b, D) x 1000 b / D = planned_share x (1000 b / tau) x sigma:
    for D in a range where k = floor((slo - tau) / D) is constant, a segment on a ray through
    the origin. The segments' end points, for tau <= D <= min(slo - tau, cycle_cap_ms), span
    every feasible (sigma, rate); once planned_share reaches max_utilization the rest of the
    ray ends at D = tau. With `cycle_floor_ms` (a cycle band, see `cycle_bands`) only cycles
    from max(tau, cycle_floor_ms) count.
    """
    out = np.zeros((256, 2))
    n = 0
    for i in range(len(latency_ms)):
        b = i + 1
        tau = latency_ms[i] * interference_factor
        room = slo_ms - tau
        longest = min(room, cycle_cap_ms)
        if longest < tau - 1e-12:
            continue
        k_first = max(1, int(math.floor(room / longest + 1e-9)))
        k_last = int(math.floor(room / tau + 1e-9))
        for k in range(k_first, k_last + 1):
            # planned_share floors room / D with a 1e-9 tolerance: k cycles hold for D in
            # (room / (k + 1 - 1e-9), room / (k - 1e-9)]; the ends are taken a hair wide
            d_long = min(room / (k - 1e-9), longest)
            d_short = max(room / (k + 1 - 1e-9), tau, cycle_floor_ms)
            if d_short > d_long:
                continue
            share = _planned_share(b, room / k, tau, slo_ms, cv, max_utilization)
            if share <= 0.0:
                continue
            saturated = share >= max_utilization - 1e-12
            if saturated:
                d_short = max(tau, cycle_floor_ms)
            if n + 2 > out.shape[0]:
                bigger = np.zeros((2 * out.shape[0], 2))
                bigger[:n] = out[:n]
                out = bigger
            out[n, 0] = tau / d_long
            out[n, 1] = share * 1000.0 * b / d_long
            out[n + 1, 0] = tau / d_short
            out[n + 1, 1] = share * 1000.0 * b / d_short
            n += 2
            if saturated:
                break
    return out[:n]


@numba.njit(cache=True)
def capped_hull_vertices(points: np.ndarray, cap: float) -> np.ndarray:
    """Vertices of the upper concave hull of `points` from the smallest share to the highest
    rate, with rates capped at `cap` (the crossing added as a vertex). Every point (s, r) is
    then a mix of vertices with share <= s and capped rate >= min(r, cap)."""
    n = len(points)
    if n == 0:
        return np.zeros((0, 2))
    order = np.argsort(points[:, 0], kind="mergesort")
    hx = np.zeros(n)
    hy = np.zeros(n)
    m = 0
    for j in range(n):
        x = points[order[j], 0]
        y = points[order[j], 1]
        if m >= 1 and abs(x - hx[m - 1]) <= 1e-12:
            if y <= hy[m - 1]:
                continue
            x = hx[m - 1]  # keep the smaller share of the two
            m -= 1
        while m >= 2 and (hx[m - 1] - hx[m - 2]) * (y - hy[m - 2]) - (hy[m - 1] - hy[m - 2]) * (x - hx[m - 2]) >= 0:
            m -= 1
        hx[m] = x
        hy[m] = y
        m += 1
    out = np.zeros((m + 1, 2))
    count = 0
    for j in range(m):
        if j > 0 and hy[j] <= hy[j - 1]:
            break  # past the highest rate: more share for less rate is never needed
        if hy[j] >= cap:
            if j == 0:
                out[0, 0] = hx[0]
                out[0, 1] = cap
                return out[:1]
            x = hx[j - 1] + (cap - hy[j - 1]) * (hx[j] - hx[j - 1]) / (hy[j] - hy[j - 1])
            out[count, 0] = x
            out[count, 1] = cap
            return out[: count + 1]
        out[count, 0] = hx[j]
        out[count, 1] = hy[j]
        count += 1
    return out[:count]


def slo_classes(slos_ms: list[float], max_ratio: float = SLO_CLASS_RATIO) -> list[tuple[float, float]]:
    """Classes of shared GPUs by their tightest member's SLO: (lowest, highest) SLO of each,
    consecutive distinct SLOs grouped while highest / lowest <= max_ratio."""
    classes: list[tuple[float, float]] = []
    for slo in sorted(set(slos_ms)):
        if classes and slo <= classes[-1][0] * max_ratio:
            classes[-1] = (classes[-1][0], slo)
        else:
            classes.append((slo, slo))
    return classes


@dataclass(frozen=True)
class ReplicaBound:
    value: float  # proven lower bound on min_cost (nan: none; inf: no plan exists)
    lp_value: float
    mip_value: float  # best integer point of the relaxation (not a plan)
    proven_optimal: bool  # the MIP closed its gap, so value is the relaxation's optimum


@dataclass
class _Model:
    """Columns and rows collected before one addVars/addRows call."""

    cost: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    integer: list[int] = field(default_factory=list)
    row_lower: list[float] = field(default_factory=list)
    row_upper: list[float] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def var(self, cost: float, upper: float = INF, integer: bool = False) -> int:
        self.cost.append(cost)
        self.lower.append(0.0)
        self.upper.append(upper)
        if integer:
            self.integer.append(len(self.cost) - 1)
        return len(self.cost) - 1

    def row(self, lower: float, upper: float, cols, vals) -> None:
        self.starts.append(len(self.index))
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        self.index.extend(int(c) for c in cols)
        self.value.extend(float(v) for v in vals)


@dataclass
class _Terms:
    """Linear terms per row key, filled while columns are made."""

    terms: dict = field(default_factory=dict)

    def add(self, key, col: int, coef: float) -> None:
        cols, vals = self.terms.setdefault(key, ([], []))
        cols.append(col)
        vals.append(coef)

    def get(self, key) -> tuple[list[int], list[float]]:
        return self.terms.get(key, ([], []))


def replica_cost_bound(problem: PlacementProblem, integer: bool = False, slo_classes_on: bool | None = None,
                       max_nodes: int = MAX_NODES, time_limit_s: float = 30.0, seed: int = 0,
                       root_only: bool = False, band_ratio: float | None = None) -> ReplicaBound:
    """Solve the relaxation: its LP, then (with `integer`) a node-limited MIP. SLO classes
    are on with `integer` unless `slo_classes_on` says otherwise. The time limit is a guard;
    a MIP stopped by it still gives a bound, maybe a weaker one.

    `root_only` (with `integer`): only the MIP's root, its cutting planes, without primal
    heuristics (RINS, RENS, restarts: HiGHS otherwise keeps searching for an incumbent
    until its time limit); a root the time limit cuts short gives the LP value, so the
    bound is the same every run wherever the root finishes. 200 models: 1282.51 -> 1288.34
    in 3.7 s (2 cores). `band_ratio`: cycle bands of that ratio (`cycle_bands`; None: none)."""
    return _relaxation(problem, "min_cost", integer, slo_classes_on, 1 if root_only else max_nodes, time_limit_s,
                       seed, root_only, band_ratio)


def replica_throughput_bound(problem: PlacementProblem, integer: bool = False, slo_classes_on: bool | None = None,
                             max_nodes: int = MAX_NODES, time_limit_s: float = 30.0, seed: int = 0) -> ReplicaBound:
    """For max_throughput: the most weighted req/s any plan within the budget and inventory
    serves (an upper bound; `value` is it). The same columns and rows, GPUs cost nothing in
    the objective, served_m in [0, demand_m] is worth its priority and needs coverage >=
    served_m; no presence rows (a model may go unserved)."""
    return _relaxation(problem, "max_throughput", integer, slo_classes_on, max_nodes, time_limit_s, seed)


def _relaxation(problem: PlacementProblem, objective: str, integer: bool, slo_classes_on: bool | None,
                max_nodes: int, time_limit_s: float, seed: int, root_only: bool = False,
                band_ratio: float | None = None) -> ReplicaBound:
    if problem.objective != objective:
        return ReplicaBound(math.nan, math.nan, math.nan, False)
    if not problem.demanded_models:
        return ReplicaBound(0.0, 0.0, 0.0, True)
    throughput = objective == "max_throughput"
    started = time.perf_counter()
    built = _build(problem, integer, slo_classes_on, throughput, band_ratio)
    if isinstance(built, ReplicaBound):
        return built
    # the time limit covers building too (30 models with cycle bands: 2.3 s of Python)
    solved = _solve(built, integer, max_nodes, time_limit_s - (time.perf_counter() - started), seed, root_only)
    if not throughput:
        return solved
    if not math.isfinite(solved.value):  # the model minimised -served
        return ReplicaBound(math.nan, math.nan, math.nan, False)
    return ReplicaBound(-solved.value, -solved.lp_value, -solved.mip_value, solved.proven_optimal)


def cycle_bands(problem: PlacementProblem, ratio: float | None) -> list[tuple[float, float]]:
    """Cycle bands of shared GPUs: one band (every cycle) when `ratio` is None, else a
    geometric partition [lo r^q, lo r^(q+1)] from the shortest shared batch to the loosest SLO.
    A shared GPU's members then take their (share, rate) points from cycles in its band
    only, as on a real GPU, where all of them share one cycle."""
    if ratio is None:
        return [(0.0, math.inf)]
    shortest = min((min(o.latency_ms) * problem.gpu_type(o.gpu_type).interference_factor
                    for m in problem.demanded_models for o in m.options if o.tensor_parallel == 1), default=1.0)
    longest = max(m.slo_ms for m in problem.demanded_models)
    lo = 2.0 * shortest  # two members at least
    bands = [(0.0, lo)]
    while lo < longest:
        bands.append((lo, lo * ratio))
        lo *= ratio
    bands[-1] = (bands[-1][0], math.inf)
    return bands


def _build(problem: PlacementProblem, integer: bool, slo_classes_on: bool | None, throughput: bool,
           band_ratio: float | None = None):
    """The relaxation's columns and rows (a _Model), or a ReplicaBound when nothing is left
    to solve."""
    u = problem.max_utilization
    demanded = problem.demanded_models
    types = {g.name: t for t, g in enumerate(problem.gpu_types)}
    use_classes = integer if slo_classes_on is None else slo_classes_on
    slos = [m.slo_ms for m in demanded]
    slo_groups = slo_classes(slos) if use_classes else [(min(slos), max(slos))]
    # classes of shared GPUs: (SLO class of the tightest member, cycle band), see cycle_bands
    bands = cycle_bands(problem, band_ratio)
    classes = [(c, lo, hi) for c in range(len(slo_groups)) for lo, hi in bands]
    model = _Model()
    terms = _Terms()
    shared_gpus = {}
    for t, gpu in enumerate(problem.gpu_types):
        for c in range(len(classes)):
            col = model.var(gpu.cost_per_hour_usd, INF if gpu.count is None else float(gpu.count), True)
            shared_gpus[t, c] = col
            terms.add(("gpus", t), col, 1.0)
    for i, info in enumerate(demanded):
        best = 0.0
        own_class = next(c for c, (lo, hi) in enumerate(slo_groups) if lo <= info.slo_ms <= hi)
        for opt in info.options:
            t = types[opt.gpu_type]
            gpu = problem.gpu_types[t]
            k = opt.tensor_parallel
            rate = float(np.max(dedicated_rates(problem, info, opt), initial=0.0))
            if rate <= 0:
                continue
            best = max(best, rate)
            _dedicated_column(model, terms, i, t, k, gpu, min(rate, info.demand_rps))
            if k > 1:
                continue
            latency = np.asarray(opt.latency_ms, dtype=float)
            for c, (slo_class, band_lo, band_hi) in enumerate(classes):
                if slo_class > own_class:
                    continue
                points = share_rate_points(latency, info.slo_ms, info.cv, u, gpu.interference_factor,
                                           min(slo_groups[slo_class][1], info.slo_ms, band_hi), band_lo)
                vertices = capped_hull_vertices(points, info.demand_rps)
                if len(vertices):
                    _member_columns(model, terms, i, t, c, vertices, opt.memory_per_gpu_gib, shared_gpus[t, c],
                                    slo_class == own_class, integer)
        if throughput:
            if best > 0:
                _served_row(model, terms, i, info.demand_rps, info.priority)
            continue
        if best <= 0:
            return ReplicaBound(math.nan, math.nan, math.nan, False)
        _coverage_row(model, terms, i, info.demand_rps)
        _presence_row(model, terms, i, math.ceil(info.demand_rps / best - 1e-9))
    for t, gpu in enumerate(problem.gpu_types):
        for c in range(len(classes)):
            _shared_gpu_rows(model, terms, t, c, shared_gpus[t, c], gpu.memory_gib)
        _inventory_rows(model, terms, t, gpu)
    _budget_row(model, terms, problem)
    if throughput:  # only served req/s count: GPUs (cost >= 0) leave the objective
        model.cost = [c if c < 0 else 0.0 for c in model.cost]
    return model


# ---------------------------------------------------------------------- columns
def _dedicated_column(model: _Model, terms: _Terms, i: int, t: int, k: int, gpu, coverage: float) -> None:
    upper = INF if gpu.count is None else float(gpu.count // k)
    col = model.var(gpu.cost_per_hour_usd * k, upper, True)
    terms.add(("cover", i), col, coverage)
    terms.add(("present", i), col, 1.0)
    terms.add(("gpus", t), col, float(k))
    for d in (2, 4, 8):
        if k >= d:
            terms.add(("group", t, d), col, float(k))


def _member_columns(model: _Model, terms: _Terms, i: int, t: int, c: int, vertices: np.ndarray, memory_gib: float,
                    shared_gpus_col: int, tightest: bool, integer: bool) -> None:
    """member[m, t, c, v] per vertex, and (integer) memberships[m, t, c] tied to their sum."""
    cols = []
    for share, coverage in vertices:
        col = model.var(0.0)
        cols.append(col)
        terms.add(("cover", i), col, float(coverage))
        terms.add(("busy", t, c), col, float(share))
    if integer:
        count = model.var(0.0, INF, True)
        model.row(0.0, 0.0, cols + [count], [1.0] * len(cols) + [-1.0])
        cols = [count]
    for col in cols:
        terms.add(("present", i), col, 1.0)
        terms.add(("memory", t, c), col, memory_gib)
        terms.add(("members", t, c), col, 1.0)
        if tightest:
            terms.add(("tightest", t, c), col, 1.0)
    model.row(-INF, 0.0, cols + [shared_gpus_col], [1.0] * len(cols) + [-1.0])  # once per GPU


# ---------------------------------------------------------------------- rows
def _coverage_row(model: _Model, terms: _Terms, i: int, demand_rps: float) -> None:
    model.row(demand_rps, INF, *terms.get(("cover", i)))


def _served_row(model: _Model, terms: _Terms, i: int, demand_rps: float, priority: float) -> None:
    """max_throughput: served_m in [0, demand_m], worth its priority, within its coverage;
    the GPUs' costs leave the objective (the budget row still holds them)."""
    served = model.var(-priority, demand_rps)
    cols, vals = terms.get(("cover", i))
    model.row(0.0, INF, cols + [served], vals + [-1.0])


def _presence_row(model: _Model, terms: _Terms, i: int, replicas: int) -> None:
    model.row(float(replicas), INF, *terms.get(("present", i)))


def _shared_gpu_rows(model: _Model, terms: _Terms, t: int, c: int, gpus_col: int, memory_gib: float) -> None:
    cols, vals = terms.get(("busy", t, c))
    model.row(-INF, 0.0, cols + [gpus_col], vals + [-1.0])  # shares of a cycle add up to one
    cols, vals = terms.get(("memory", t, c))
    model.row(-INF, 0.0, cols + [gpus_col], vals + [-memory_gib])
    cols, vals = terms.get(("members", t, c))
    model.row(0.0, INF, cols + [gpus_col], vals + [-2.0])  # two members or more
    cols, vals = terms.get(("tightest", t, c))
    model.row(0.0, INF, cols + [gpus_col], vals + [-1.0])  # one member sets the class


def _inventory_rows(model: _Model, terms: _Terms, t: int, gpu) -> None:
    if gpu.count is None:
        return
    model.row(-INF, float(gpu.count), *terms.get(("gpus", t)))
    for d in (2, 4, 8):
        cols, vals = terms.get(("group", t, d))
        if cols:
            model.row(-INF, float(gpu.group_slots(d)), cols, vals)


def _budget_row(model: _Model, terms: _Terms, problem: PlacementProblem) -> None:
    if problem.budget_usd_per_hour is None:
        return
    cols, vals = [], []
    for t, gpu in enumerate(problem.gpu_types):
        c, v = terms.get(("gpus", t))
        cols += c
        vals += [x * gpu.cost_per_hour_usd for x in v]
    model.row(-INF, problem.budget_usd_per_hour, cols, vals)


# ---------------------------------------------------------------------- solve
ROOT_ONLY_OPTIONS = dict(mip_heuristic_effort=0.0, mip_allow_restart=False, mip_heuristic_run_rins=False,
                        mip_heuristic_run_rens=False, mip_heuristic_run_root_reduced_cost=False)


def _solve(model: _Model, integer: bool, max_nodes: int, time_limit_s: float, seed: int,
           root_only: bool = False) -> ReplicaBound:
    deadline = time.perf_counter() + max(0.05, float(time_limit_s))
    h = quiet_highs(random_seed=int(seed), time_limit=max(0.05, float(time_limit_s)), mip_rel_gap=1e-4,
                    mip_max_nodes=int(max_nodes))
    if root_only:
        for option, value in ROOT_ONLY_OPTIONS.items():
            h.setOptionValue(option, value)
    n = len(model.cost)
    h.addVars(n, np.array(model.lower), np.array(model.upper))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), np.array(model.cost))
    h.addRows(len(model.row_lower), np.array(model.row_lower), np.array(model.row_upper), len(model.index),
              np.array(model.starts, dtype=np.int32), np.array(model.index, dtype=np.int32), np.array(model.value))
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return ReplicaBound(math.inf, math.inf, math.nan, True)
    if status != highspy.HighsModelStatus.kOptimal:
        return ReplicaBound(math.nan, math.nan, math.nan, False)
    lp_value = float(h.getInfo().objective_function_value)
    if not integer or not model.integer:
        return ReplicaBound(lp_value, lp_value, math.nan, False)
    ints = np.array(model.integer, dtype=np.int32)
    h.changeColsIntegrality(len(ints), ints, np.full(len(ints), highspy.HighsVarType.kInteger))
    h.setOptionValue("time_limit", max(0.05, deadline - time.perf_counter()))  # the LP's time counts
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return ReplicaBound(math.inf, lp_value, math.nan, True)
    info = h.getInfo()
    dual = float(info.mip_dual_bound)
    if root_only and status == highspy.HighsModelStatus.kTimeLimit:
        dual = math.nan  # a root cut short: its bound depends on the clock
    value = max(lp_value, dual) if math.isfinite(dual) else lp_value
    mip_value = float(info.objective_function_value) if h.getSolution().value_valid else math.nan
    return ReplicaBound(value, lp_value, mip_value, status == highspy.HighsModelStatus.kOptimal)
