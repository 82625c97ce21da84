"""Diving with column generation: the integer plan for min_cost at fleet scale.

Each round solves the master LP of what is left (demand not yet covered, GPUs and budget
not yet used), re-prices columns for it (coefficients capped at the *remaining* demand, so
leftovers of several models are worth sharing a GPU), then fixes the LP's whole GPUs and
when none is whole, rounds up the ones it uses most. Rounds repeat until all demand is covered.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from planner.problem import Pattern, PatternCount, PlacementProblem
from solvers.colgen.columns import Index, make_column
from solvers.colgen.master import Master
from solvers.colgen.pricing import singleton_columns


HURRY_SHARE = 0.08  # 1,000 models at 60 s end their dive at 40-42 s of a window to 54 s: room for a slower run


@dataclass
class FixedGpus:
    """What the dive has fixed so far."""

    counts: dict[Pattern, int] = field(default_factory=dict)
    used_gpus: dict[int, int] = field(default_factory=dict)
    used_group_gpus: dict[tuple[int, int], int] = field(default_factory=dict)
    used_usd_per_hour: float = 0.0

    def fits(self, problem: PlacementProblem, type_index: int, gpus: int, cost: float, times: int) -> bool:
        gpu = problem.gpu_types[type_index]
        if gpu.count is not None:
            if self.used_gpus.get(type_index, 0) + gpus * times > gpu.count:
                return False
            for d in (2, 4, 8):
                if gpus >= d and self.used_group_gpus.get((type_index, d), 0) + gpus * times > gpu.group_slots(d):
                    return False
        budget = problem.budget_usd_per_hour
        return budget is None or self.used_usd_per_hour + cost * times <= budget + 1e-9

    def add(self, pattern: Pattern, type_index: int, gpus: int, cost: float, times: int) -> None:
        self.counts[pattern] = self.counts.get(pattern, 0) + times
        self.used_gpus[type_index] = self.used_gpus.get(type_index, 0) + gpus * times
        for d in (2, 4, 8):
            if gpus >= d:
                key = (type_index, d)
                self.used_group_gpus[key] = self.used_group_gpus.get(key, 0) + gpus * times
        self.used_usd_per_hour += cost * times

    def patterns(self) -> tuple[PatternCount, ...]:
        return tuple(PatternCount(p, n) for p, n in sorted(self.counts.items()) if n > 0)


def dive(problem: PlacementProblem, index: Index, support: list[Pattern], generate, deadline: float,
         round_up_share: float = 0.5) -> tuple[PatternCount, ...] | None:
    """Fix GPUs round by round until all demand is covered; None if the dive gets stuck.

    `support`: the patterns the whole problem's LP uses; each round passes on its own.
    `generate(index, master, columns, stop_at, hurry)` runs column generation on a residual
    master (one iteration when `hurry`: the dive is short of time).
    Past the deadline, one last round rounds every fraction up, and dedicated replicas cover
    whatever is still left (complete_with_singletons).
    """
    fixed = FixedGpus()
    window_s = max(deadline - time.perf_counter(), 1e-9)
    full = index.model_index()
    covered = np.zeros(len(index.models))
    finished_once = False
    while True:
        rest = index.residual(np.minimum(covered, index.demand_rps))
        if not rest.models:
            return fixed.patterns()
        finishing = time.perf_counter() >= deadline
        if finishing and finished_once:
            return complete_with_singletons(problem, rest, fixed)
        finished_once = finished_once or finishing
        sub = Master(problem, rest, used_gpus=fixed.used_gpus, used_usd_per_hour=fixed.used_usd_per_hour,
                     used_group_gpus=fixed.used_group_gpus)
        names = set(rest.models)
        gpus_left = {g.name: sub.gpus_left(t) for t, g in enumerate(problem.gpu_types)}
        columns = singleton_columns(problem, rest, gpus_left)
        for pattern in support:  # the last LP's shared patterns: few, and the ones that matter
            if any(m.model in names for m in pattern.members):
                columns.append(make_column(problem, rest, pattern))
        # columns on types whose inventory the fixed GPUs already took cannot be used: left out
        # of the residual LP (singletons are not even made, and pricing skips those types),
        # which keeps late rounds small
        columns = [c for c in columns if c.gpus <= sub.gpus_left(c.type_index)]
        if finishing:  # out of time: one last LP over the known columns, every fraction rounded up
            sub.add_columns(columns)
        else:
            # with under HURRY_SHARE of its time left, the dive prices once a round, so it
            # ends by its own rounds instead of the deadline's round-everything-up
            hurry = deadline - time.perf_counter() < HURRY_SHARE * window_s
            generate(rest, sub, columns, deadline, hurry)
        lp = sub.solve_lp()
        if lp is None or sub.slack_used() > 1e-7:
            return None
        x = np.zeros(len(sub.columns))
        x[: len(lp.x)] = lp.x
        support = [c.pattern for c, v in zip(sub.columns, x) if v > 1e-9 and len(c.pattern.members) > 1]
        whole = np.floor(x + 1e-6)
        round_up: set[int] = set()
        if finishing:
            round_up = {j for j in range(len(x)) if x[j] - whole[j] > 1e-6}
        elif not whole.any():
            # nothing whole left: round up the columns the LP uses most (at least the largest)
            order = [j for j in np.argsort(-x, kind="stable") if x[j] > 1e-6]
            round_up = {j for j in order[: max(1, math.ceil(round_up_share * len(order)))] if x[j] >= 0.5} or set(order[:1])
        progress_made = False
        for j, col in enumerate(sub.columns):
            times = int(whole[j]) + (1 if j in round_up else 0)
            if times <= 0 or not fixed.fits(problem, col.type_index, col.gpus, col.cost_usd_per_hour, times):
                continue
            fixed.add(col.pattern, col.type_index, col.gpus, col.cost_usd_per_hour, times)
            for i, cov in zip(col.model_indices, col.coverage_rps):
                covered[full[rest.models[i]]] += cov * times
            progress_made = True
        if not progress_made:
            return complete_with_singletons(problem, rest, fixed) if finishing else None


def complete_with_singletons(problem: PlacementProblem, rest: Index, fixed: FixedGpus) -> tuple[PatternCount, ...] | None:
    """Cover what is left with dedicated replicas, cheapest per req/s first (when the dive is
    out of time): always a whole plan if the inventory allows one this way."""
    by_model: dict[str, list] = {}
    for col in singleton_columns(problem, rest):
        by_model.setdefault(rest.models[col.model_indices[0]], []).append(col)
    order = sorted(range(len(rest.models)), key=lambda i: (-rest.demand_rps[i], rest.models[i]))
    for i in order:
        left = float(rest.demand_rps[i])
        options = sorted(by_model.get(rest.models[i], []), key=lambda c: (c.cost_usd_per_hour / c.coverage_rps[0], c.pattern))
        for col in options:
            while left > 1e-9 and fixed.fits(problem, col.type_index, col.gpus, col.cost_usd_per_hour, 1):
                fixed.add(col.pattern, col.type_index, col.gpus, col.cost_usd_per_hour, 1)
                left -= col.coverage_rps[0]
            if left <= 1e-9:
                break
        if left > 1e-9:
            return None
    return fixed.patterns()
