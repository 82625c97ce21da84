"""Packing by column generation: the "colgen" solver.

1. Columns: every singleton (model alone on a GPU / TP group) up front, plus the warm
   start's patterns.
2. Column generation: master LP (HiGHS) -> duals -> greedy pricing of shared patterns per
   GPU type and cycle target -> new columns, until the greedy finds none.
3. Proof: exact pricing (solvers.colgen.exact_pricing, a MIP relaxation of the pricing
   problem per GPU type) either finds more columns (back to 2) or bounds every pattern's
   reduced cost; the Lagrangian bound from those duals is the proven bound (it equals the
   LP value once no pattern prices out).
4. Integers: MIP over the columns (HiGHS) from the warm start, then the plan.
A time limit returns the best plan so far, its bound and status `time_limit`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from planner.problem import (
    PatternCount,
    PlacementProblem,
    SolveResult,
    SolveSettings,
    SolveStatus,
    planned_capacity_rps,
    relative_gap,
)
from solvers.bounds import fluid_cost_bound, throughput_upper_bound
from solvers.colgen.columns import Column, Index, make_column, type_items
from solvers.colgen.exact_pricing import ExactPricer
from solvers.colgen.master import Master
from solvers.colgen.pricing import SharedPricer, singleton_columns


@dataclass
class Progress:
    iterations: int = 0
    columns: int = 0
    lp_value: float = math.nan
    exact_rounds: int = 0
    lp_s: float = 0.0
    pricing_s: float = 0.0
    exact_s: float = 0.0
    mip_s: float = 0.0


def _warm_start(problem: PlacementProblem, settings: SolveSettings) -> SolveResult | None:
    from solvers.registry import SOLVERS

    name = "greedy-pack" if "greedy-pack" in SOLVERS else "greedy-type"
    try:
        result = SOLVERS[name]().solve(problem, settings)
    except Exception:  # a baseline failing must not stop the exact solver
        return None
    return result if result.patterns and result.status is not SolveStatus.INFEASIBLE else None


class ColumnGeneration:
    name = "colgen"
    description = "column generation over GPU patterns (sharing, TP groups), proven bound (default)"

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        limit = settings.time_limit_s
        deadline = start + limit
        index = Index.of(problem)
        progress = Progress()
        if not index.models:
            return SolveResult(self.name, SolveStatus.OPTIMAL, problem.objective, 0.0, 0.0, (), {}, 0.0)
        warm = _warm_start(problem, settings)
        pool: dict = {}  # every pattern generated so far (shared across the phases)

        # Phase A: column generation on the whole problem, then the proof
        master = Master(problem, index)
        self._add(master, problem, index, pool, singleton_columns(problem, index))
        if warm is not None:
            self._add(master, problem, index, pool, [pc.pattern for pc in warm.patterns])
        lp, proven_bound, converged = self._generate(problem, index, master, pool, progress,
                                                     start + 0.45 * limit, prove=True, warm=warm)
        progress.columns = len(master.columns)

        candidates: list[tuple[PatternCount, ...]] = []
        if warm is not None:
            candidates.append(warm.patterns)
        # Phase B: integer master over the columns of phase A
        t0 = time.perf_counter()
        start_counts = self._start_vector(master, warm)
        counts, _, _ = master.solve_mip(max(0.05, min(0.2 * limit, deadline - time.perf_counter())), settings.seed, start_counts)
        progress.mip_s += time.perf_counter() - t0
        if counts is not None:
            candidates.append(self._patterns(master, counts))
        # Phase C: fix the LP's whole GPUs, re-price the residual demand (coefficients capped
        # at what is left, so leftovers of several models share GPUs) and solve it as a MIP
        if lp is not None and master.slack_used() <= 1e-7 and time.perf_counter() < deadline - 0.05:
            residual = self._residual_plan(problem, index, master, lp, pool, progress, settings, deadline)
            if residual is not None:
                candidates.append(residual)

        best = self._best(problem, candidates)
        wall = time.perf_counter() - start
        stats = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in progress.__dict__.items()}
        if best is None:
            status = SolveStatus.INFEASIBLE if converged else SolveStatus.TIME_LIMIT
            return SolveResult(self.name, status, problem.objective, math.nan, proven_bound, (), {}, wall,
                               message="no plan found over the generated patterns", stats=stats)
        value, served = self._evaluate(problem, best)
        bound = self._final_bound(problem, proven_bound, value)
        gap = relative_gap(value, bound)
        if gap <= settings.gap_target:
            status = SolveStatus.OPTIMAL
        elif converged:
            status = SolveStatus.FEASIBLE
        else:
            status = SolveStatus.TIME_LIMIT
        return SolveResult(self.name, status, problem.objective, value, bound, best, served,
                           time.perf_counter() - start, stats=stats)

    # ------------------------------------------------------------------ phases
    @staticmethod
    def _add(master: Master, problem, index: Index, pool: dict, patterns_or_columns) -> int:
        cols = []
        for item in patterns_or_columns:
            pattern = item.pattern if isinstance(item, Column) else item
            pool.setdefault(pattern, None)
            cols.append(make_column(problem, index, pattern) if not isinstance(item, Column) else item)
        known = master.known if hasattr(master, "known") else set()
        fresh = [c for c in cols if c.pattern not in known and c.model_indices]
        known.update(c.pattern for c in fresh)
        master.known = known
        master.add_columns(fresh)
        return len(fresh)

    def _generate(self, problem, index, master, pool, progress, stop_at, prove: bool, warm):
        """Column generation until greedy pricing finds nothing, then (if `prove`) exact pricing."""
        items = type_items(problem, index)
        pricer = SharedPricer(problem, index, items)
        exact = ExactPricer(problem, index, items) if prove else None
        lp, proven_bound, converged = None, math.nan, False
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            lp = master.solve_lp()
            progress.lp_s += time.perf_counter() - t0
            progress.iterations += 1
            if lp is None:
                break
            if prove:
                progress.lp_value = lp.value
            t0 = time.perf_counter()
            found = pricer.price(lp.duals, lambda t, k: master.gpu_dual(t, k, lp.duals), lp.duals.budget, master.min_cost)
            progress.pricing_s += time.perf_counter() - t0
            if found and self._add(master, problem, index, pool, [c for _, c in found]):
                continue
            if exact is None:
                converged = True
                break
            t0 = time.perf_counter()
            outcome = exact.price(lp.duals, master, stop_at)
            progress.exact_s += time.perf_counter() - t0
            progress.exact_rounds += 1
            if outcome.complete:
                proven_bound = self._lagrangian_bound(problem, master, lp, outcome.max_reduced_value, warm)
            if outcome.columns and self._add(master, problem, index, pool, outcome.columns):
                continue
            converged = outcome.complete
            break
        return lp, proven_bound, converged

    def _residual_plan(self, problem, index, master, lp, pool, progress, settings, deadline):
        fixed = np.floor(lp.x + 1e-6).astype(np.int64)
        fixed[[c.gpus > 1 for c in master.columns]] = 0  # TP groups stay free: node packing stays exact
        if not fixed.any():
            return None
        covered = np.zeros(len(index.models))
        used_gpus: dict[int, int] = {}
        used_usd = 0.0
        for col, n in zip(master.columns, fixed):
            if n:
                for i, cov in zip(col.model_indices, col.coverage_rps):
                    covered[i] += cov * n
                used_gpus[col.type_index] = used_gpus.get(col.type_index, 0) + col.gpus * int(n)
                used_usd += col.cost_usd_per_hour * int(n)
        fixed_patterns = self._patterns(master, fixed)
        rest = index.residual(np.minimum(covered, index.demand_rps))
        if not rest.models:
            return fixed_patterns
        sub = Master(problem, rest, used_gpus=used_gpus, used_usd_per_hour=used_usd)
        self._add(sub, problem, rest, pool, singleton_columns(problem, rest))
        self._add(sub, problem, rest, pool, list(pool))
        left = deadline - time.perf_counter()
        self._generate(problem, rest, sub, pool, progress, time.perf_counter() + 0.4 * left, prove=False, warm=None)
        t0 = time.perf_counter()
        counts, _, _ = sub.solve_mip(max(0.05, deadline - time.perf_counter()), settings.seed)
        progress.mip_s += time.perf_counter() - t0
        if counts is None:
            return None
        return self._merge(fixed_patterns, self._patterns(sub, counts))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _evaluate(problem: PlacementProblem, patterns: tuple[PatternCount, ...]) -> tuple[float, dict[str, float]]:
        capacity = planned_capacity_rps(problem, patterns)
        if problem.objective == "min_cost":
            value = sum(problem.gpu_type(pc.pattern.gpu_type).cost_per_hour_usd * pc.pattern.tensor_parallel * pc.count
                        for pc in patterns)
            return value, {m.name: m.demand_rps for m in problem.demanded_models}
        served = {m.name: min(m.demand_rps, capacity[m.name]) for m in problem.demanded_models}
        return sum(problem.model(n).priority * r for n, r in served.items()), served

    @staticmethod
    def _final_bound(problem: PlacementProblem, lagrangian: float, value: float) -> float:
        if problem.objective == "min_cost":
            candidates = [b for b in (lagrangian, fluid_cost_bound(problem)) if math.isfinite(b)]
            return min(max(candidates), value) if candidates else math.nan
        candidates = [b for b in (lagrangian, throughput_upper_bound(problem)) if math.isfinite(b)]
        return max(min(candidates), value) if candidates else math.nan

    @staticmethod
    def _lagrangian_bound(problem, master: Master, lp, max_reduced_value: dict[int, float], warm) -> float:
        """Bound from LP duals: z_LP + sum over types of (most any pattern could improve) x (how
        many such patterns a plan can hold). `max_reduced_value[t]` bounds -reduced cost of every
        shared pattern of type t (singletons are all in the master, so their reduced cost is >= 0)."""
        if lp is None or master.slack_used() > 1e-7:
            return math.nan
        total = lp.value
        for t, gain in max_reduced_value.items():
            if gain <= 1e-12:
                continue
            gpu = problem.gpu_types[t]
            limits = []
            if gpu.count is not None:
                limits.append(gpu.count)
            if gpu.cost_per_hour_usd > 0:
                if problem.budget_usd_per_hour is not None:
                    limits.append(problem.budget_usd_per_hour / gpu.cost_per_hour_usd)
                if problem.objective == "min_cost" and warm is not None and warm.objective == "min_cost":
                    limits.append(warm.value / gpu.cost_per_hour_usd)
            if not limits:
                return math.nan
            total += (-gain if problem.objective == "min_cost" else gain) * min(limits)
        return total

    @staticmethod
    def _start_vector(master: Master, warm) -> np.ndarray | None:
        if warm is None:
            return None
        where = {c.pattern: j for j, c in enumerate(master.columns)}
        counts = np.zeros(len(master.columns))
        for pc in warm.patterns:
            j = where.get(pc.pattern)
            if j is None:
                return None
            counts[j] += pc.count
        return counts

    @staticmethod
    def _patterns(master: Master, counts: np.ndarray) -> tuple[PatternCount, ...]:
        return tuple(sorted((PatternCount(master.columns[j].pattern, int(n)) for j, n in enumerate(counts) if n > 0),
                            key=lambda pc: pc.pattern))

    @staticmethod
    def _merge(*parts: tuple[PatternCount, ...]) -> tuple[PatternCount, ...]:
        total: dict = {}
        for part in parts:
            for pc in part:
                total[pc.pattern] = total.get(pc.pattern, 0) + pc.count
        return tuple(PatternCount(p, n) for p, n in sorted(total.items()))

    def _best(self, problem, candidates):
        best, best_value = None, None
        for patterns in candidates:
            if not patterns or not self._feasible(problem, patterns):
                continue
            value, _ = self._evaluate(problem, patterns)
            better = best_value is None or (value < best_value - 1e-9 if problem.objective == "min_cost" else value > best_value + 1e-9)
            if better:
                best, best_value = patterns, value
        return best

    @staticmethod
    def _feasible(problem, patterns) -> bool:
        """Demand covered (min_cost), inventory, nodes and budget hold for a merged candidate."""
        capacity = planned_capacity_rps(problem, patterns)
        if problem.objective == "min_cost":
            if any(capacity[m.name] < m.demand_rps * (1 - 1e-9) - 1e-9 for m in problem.demanded_models):
                return False
        cost = 0.0
        for gpu in problem.gpu_types:
            mine = [pc for pc in patterns if pc.pattern.gpu_type == gpu.name]
            cost += sum(gpu.cost_per_hour_usd * pc.pattern.tensor_parallel * pc.count for pc in mine)
            if gpu.count is None:
                continue
            if sum(pc.pattern.tensor_parallel * pc.count for pc in mine) > gpu.count:
                return False
            for d in (2, 4, 8):
                if sum(pc.pattern.tensor_parallel * pc.count for pc in mine if pc.pattern.tensor_parallel >= d) > gpu.group_slots(d):
                    return False
        return problem.budget_usd_per_hour is None or cost <= problem.budget_usd_per_hour + 1e-9
