"""Ground truth for tiny instances: enumerate EVERY feasible pattern (all member subsets,
all batch sizes; solvers.packing_rules decides feasibility) and solve the integer program
over all of them with HiGHS (scipy.optimize.milp).

With every pattern present, the integer program IS the packing problem, so its optimum is
the packing optimum the other solvers are tested against. It grows exponentially in the
models per GPU type; `max_patterns` stops it with a clear error.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix

from planner.problem import Pattern, PatternCount, PlacementProblem, SolveResult, SolveSettings, SolveStatus, pattern_cost
from solvers.direct_slots import make_result
from solvers.packing_rules import make_pattern, member_choices, pattern_violations, planned_rate_rps

DEFAULT_MAX_PATTERNS = 200_000


class TooManyPatterns(ValueError):
    """The instance has more feasible patterns than the enumeration is allowed to list."""


# ------------------------------------------------------------------------------ data


def enumerate_patterns(problem: PlacementProblem, max_patterns: int = DEFAULT_MAX_PATTERNS) -> list[Pattern]:
    """Every feasible pattern, in a deterministic order. Raises TooManyPatterns past the limit."""
    choices = member_choices(problem)
    out: list[Pattern] = []

    def emit(pattern: Pattern) -> None:
        if any(planned_rate_rps(problem, pattern, m) <= 0 for m in pattern.members):
            return  # a member the capacity rule gives nothing: the pattern without it is better
        out.append(pattern)
        if len(out) > max_patterns:
            raise TooManyPatterns(
                f"more than {max_patterns} feasible patterns; enum-milp is for tiny instances only "
                "(use colgen or direct-cpsat, or fewer models/batch sizes)")

    for gpu in problem.gpu_types:
        for (model, t, degree), mc in sorted(choices.items()):
            if t == gpu.name and degree > 1:
                for b in range(1, len(mc.latency_ms) + 1):
                    pattern = make_pattern(problem, gpu.name, degree, [(model, b)])
                    if not pattern_violations(problem, pattern):
                        emit(pattern)
        shareable = sorted((m, mc) for (m, t, d), mc in choices.items() if t == gpu.name and d == 1)

        def extend(start: int, members: list[tuple[str, int]]) -> None:
            for i in range(start, len(shareable)):
                model, mc = shareable[i]
                for b in range(1, len(mc.latency_ms) + 1):
                    grown = members + [(model, b)]
                    pattern = make_pattern(problem, gpu.name, 1, grown)
                    if pattern_violations(problem, pattern):
                        continue  # more members only lengthen the cycle and add memory
                    emit(pattern)
                    extend(i + 1, grown)

        extend(0, [])
    return out


# ------------------------------------------------------------------- integer program


def _copies_upper_bound(problem: PlacementProblem, pattern: Pattern) -> int:
    """No optimal plan runs a pattern more often than it takes to serve any one member's demand."""
    need = max(math.ceil(problem.model(m.model).demand_rps / planned_rate_rps(problem, pattern, m) - 1e-9)
               for m in pattern.members)
    gpu = problem.gpu_type(pattern.gpu_type)
    if gpu.count is not None:
        need = min(need, gpu.group_slots(pattern.tensor_parallel) // pattern.tensor_parallel)
    return max(need, 0)


class _Rows:
    """Constraint rows collected as sparse triplets."""

    def __init__(self, n_vars: int):
        self.n_vars = n_vars
        self.data: list[float] = []
        self.row: list[int] = []
        self.col: list[int] = []
        self.lower: list[float] = []
        self.upper: list[float] = []

    def add(self, coefs: dict[int, float], lo: float, hi: float) -> None:
        i = len(self.lower)
        for j, v in coefs.items():
            self.data.append(v)
            self.row.append(i)
            self.col.append(j)
        self.lower.append(lo)
        self.upper.append(hi)

    def matrix(self) -> csr_matrix:
        return csr_matrix((self.data, (self.row, self.col)), shape=(len(self.lower), self.n_vars))


def _solve_milp(c, rows: _Rows, lower, upper, integrality, var_lo, var_hi, settings: SolveSettings, deadline: float):
    options = {"time_limit": max(0.01, deadline - time.perf_counter()), "mip_rel_gap": settings.gap_target,
               "disp": False}
    constraints = LinearConstraint(rows.matrix(), lower, upper) if lower else ()
    return milp(c, constraints=constraints, integrality=integrality, bounds=Bounds(var_lo, var_hi), options=options)


class EnumeratedPatternsMilp:
    name = "enum-milp"
    description = "every feasible pattern enumerated, integer program by HiGHS (ground truth, tiny instances)"

    def __init__(self, max_patterns: int = DEFAULT_MAX_PATTERNS):
        self.max_patterns = max_patterns

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        deadline = start + settings.time_limit_s
        patterns = [p for p in enumerate_patterns(problem, self.max_patterns) if _copies_upper_bound(problem, p) > 0]
        models = [m.name for m in problem.demanded_models]
        n_p, n_m = len(patterns), len(models)
        throughput = problem.objective == "max_throughput"
        n_vars = n_p + (n_m + 1 if throughput else 0)  # copies[pattern], served[model], fair_share
        served_at, share_at = n_p, n_p + n_m
        rows = _Rows(n_vars)
        lower, upper = rows.lower, rows.upper
        add_row = rows.add

        # demand coverage (min_cost) or served <= planned capacity (max_throughput)
        for i, name in enumerate(models):
            coefs = {j: planned_rate_rps(problem, p, mem) for j, p in enumerate(patterns) for mem in p.members if mem.model == name}
            if throughput:
                coefs = {j: -v for j, v in coefs.items()}
                coefs[served_at + i] = 1.0
                add_row(coefs, -np.inf, 0.0)
            else:
                add_row(coefs, problem.model(name).demand_rps, np.inf)
        # inventory, TP groups inside nodes
        for gpu in problem.gpu_types:
            if gpu.count is None:
                continue
            for degree in sorted({p.tensor_parallel for p in patterns if p.gpu_type == gpu.name}):
                coefs = {j: float(p.tensor_parallel) for j, p in enumerate(patterns)
                         if p.gpu_type == gpu.name and p.tensor_parallel >= degree}
                add_row(coefs, -np.inf, float(gpu.group_slots(degree) if degree > 1 else gpu.count))
        # budget
        cost = np.array([pattern_cost(problem, p) for p in patterns])
        if problem.budget_usd_per_hour is not None:
            add_row({j: cost[j] for j in range(n_p)}, -np.inf, problem.budget_usd_per_hour)
        var_lo = np.zeros(n_vars)
        var_hi = np.array([float(_copies_upper_bound(problem, p)) for p in patterns]
                          + ([problem.model(n).demand_rps for n in models] + [1.0] if throughput else []))
        integrality = np.array([1] * n_p + [0] * (n_vars - n_p))

        status_note = ""
        if not throughput:
            objective = np.concatenate([cost, np.zeros(n_vars - n_p)])
        else:
            weights = np.zeros(n_vars)
            for i, name in enumerate(models):
                weights[served_at + i] = -problem.model(name).priority
            if problem.fairness and n_m:
                for i, name in enumerate(models):  # served_m >= share x demand_m
                    add_row({served_at + i: 1.0, share_at: -problem.model(name).demand_rps}, 0.0, np.inf)
                first = np.zeros(n_vars)
                first[share_at] = -1.0
                res = _solve_milp(first, rows, lower, upper, integrality, var_lo, var_hi, settings, deadline)
                if res.x is not None:
                    var_lo[share_at] = max(0.0, res.x[share_at] - 1e-9)
                    status_note = f"fair share {res.x[share_at]:.6f}"
            objective = weights

        res = _solve_milp(objective, rows, lower, upper, integrality, var_lo, var_hi, settings, deadline)
        wall = time.perf_counter() - start
        stats = {"patterns": n_p}
        if res.x is None:
            status = SolveStatus.INFEASIBLE if res.status == 2 else SolveStatus.TIME_LIMIT
            return SolveResult(self.name, status, problem.objective, math.nan, math.nan, (), {}, wall,
                               message=res.message, stats=stats)
        copies = np.round(res.x[:n_p]).astype(int)
        chosen = tuple(PatternCount(p, int(k)) for p, k in zip(patterns, copies) if k > 0)
        dual = getattr(res, "mip_dual_bound", None)
        bound = math.nan if dual is None else (dual if not throughput else -dual)
        status = SolveStatus.OPTIMAL if res.status == 0 else SolveStatus.TIME_LIMIT
        return make_result(problem, self.name, status, chosen, bound, time.perf_counter() - start,
                           message=status_note, stats=stats)
