"""Diving with column generation: the integer plan for min_cost at fleet scale.

Each round solves the master LP of what is left (demand not yet covered, GPUs and budget
not yet used), re-prices columns for it (coefficients capped at the *remaining* demand, so
leftovers of several models are worth sharing a GPU), then fixes the LP's whole GPUs and
when none is whole, rounds up the ones it uses most. Rounds repeat until all demand is covered.
When a round's round-ups leave no plan over the GPUs left (a small, tight inventory), the dive
goes back to before that round and fixes only whole GPUs, or one round-up (BACKTRACKS times).
Short of time it hurries (one pricing iteration a round, a round-up every round); past its
deadline it finishes without pricing (see `dive`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from planner.problem import Pattern, PatternCount, PlacementProblem, SolveSettings, SolveStatus, patterns_cost
from solvers.colgen.columns import Index, make_column
from solvers.colgen.master import Master
from solvers.colgen.pricing import singleton_columns


ROUND_UP_MIN = 0.5  # a column is rounded up (when none is whole) only from this value
FINISH_GRACE_SHARE = 0.04  # of the dive's window, for rounds without pricing past the deadline
HURRY_SHARE = 0.08  # 1,000 models at 60 s end their dive at 40-42 s of a window to 54 s: room for a slower run
BACKTRACKS = 4  # times a dive whose round-ups left no plan over the inventory may go back a round


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

    def copy(self) -> FixedGpus:
        return FixedGpus(dict(self.counts), dict(self.used_gpus), dict(self.used_group_gpus), self.used_usd_per_hour)

    def patterns(self) -> tuple[PatternCount, ...]:
        return tuple(PatternCount(p, n) for p, n in sorted(self.counts.items()) if n > 0)


def dive(problem: PlacementProblem, index: Index, support: list[Pattern], generate, deadline: float,
         round_up_share: float = 0.5, finish_grace_s: float | None = None,
         disjoint_round_ups: bool = False, first_round_dedicated_only: bool = False) -> tuple[PatternCount, ...] | None:
    """Fix GPUs round by round until all demand is covered; None if the dive gets stuck.

    `support`: the patterns the whole problem's LP uses; each round passes on its own.
    `generate(index, master, columns, stop_at, hurry)` runs column generation on a residual
    master (one iteration when `hurry`: the dive is short of time).
    With `disjoint_round_ups`, a round rounds up only columns that share no model, largest
    LP value first (see `disjoint_by_value`): more rounds, fewer models covered twice.
    With `first_round_dedicated_only`, the first round fixes the whole parts of dedicated
    columns only; shared patterns wait for the residual rounds (a second dive from the same
    LP that often ends elsewhere, see solvers.colgen.rules.PORTFOLIO_S_PER_MODEL).
    Past the deadline the dive finishes without pricing: rounds over the known columns that
    fix whole GPUs and round up fractions of at least ROUND_UP_MIN (or the largest), for
    `finish_grace_s` (FINISH_GRACE_SHARE of the dive's window by default); then one last
    round rounds every fraction still needed up, and the cheaper of dedicated replicas and
    greedy packing covers whatever is left (`complete`).
    """
    fixed = FixedGpus()
    saved: list[tuple[FixedGpus, np.ndarray]] = []  # the state before each round's fixes, for backtracking
    backtracks_left = BACKTRACKS
    cautious = False  # the round after a backtrack: whole GPUs only, else one round-up
    window_s = max(deadline - time.perf_counter(), 1e-9)
    grace_s = FINISH_GRACE_SHARE * window_s if finish_grace_s is None else finish_grace_s
    full = index.model_index()
    covered = np.zeros(len(index.models))
    last_round = False
    while True:
        rest = index.residual(np.minimum(covered, index.demand_rps))
        if not rest.models:
            return fixed.patterns()
        if last_round:
            return complete(problem, rest, fixed)
        now = time.perf_counter()
        finishing = now >= deadline
        last_round = finishing and now >= deadline + grace_s
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
        # with under HURRY_SHARE of its time left, the dive prices once a round and rounds up
        # every round (not only when nothing is whole: a round that fixes only its few whole
        # columns took 1.5 s for 1-2 of 780 models at 1,000), so it ends by its own rounds
        # instead of the deadline's round-everything-up
        hurry = deadline - time.perf_counter() < HURRY_SHARE * window_s
        if finishing:  # out of time: no pricing, an LP over the columns it knows
            sub.add_columns(columns)
        else:
            generate(rest, sub, columns, deadline, hurry)
        lp = sub.solve_lp()
        if lp is None or sub.slack_used() > 1e-7:
            if finishing:
                return complete(problem, rest, fixed)
            if not saved or not backtracks_left:
                return None
            # the last round's round-ups took GPUs the rest needs (a small, tight inventory):
            # go back to before them and fix more carefully
            fixed, covered = saved.pop()
            backtracks_left -= 1
            cautious = True
            continue
        x = sub.column_values(lp)
        support = sub.shared_support(x)
        whole = np.floor(x + 1e-6)
        if first_round_dedicated_only and not fixed.counts:
            whole = np.array([w if len(c.pattern.members) == 1 else 0.0 for w, c in zip(whole, sub.columns)])
        round_up: set[int] = set()
        if last_round:
            round_up = {j for j in range(len(x)) if x[j] - whole[j] > 1e-6}
        elif finishing:
            fractional = [j for j in np.argsort(-(x - whole), kind="stable") if x[j] - whole[j] > 1e-6]
            round_up = {j for j in fractional if x[j] - whole[j] >= ROUND_UP_MIN} or set(fractional[:1])
        elif cautious:
            # after a backtrack: the whole GPUs, or, when none is whole, only the largest fraction
            order = [j for j in np.argsort(-x, kind="stable") if x[j] > 1e-6]
            round_up = set() if whole.any() else set(order[:1])
        elif not whole.any() or hurry:
            # nothing whole left (or short of time): round up the columns the LP uses most (at
            # least the largest)
            order = [j for j in np.argsort(-x, kind="stable") if x[j] > 1e-6]
            round_up = {j for j in order[: max(1, math.ceil(round_up_share * len(order)))] if x[j] >= ROUND_UP_MIN} or set(order[:1])
        saved.append((fixed.copy(), covered.copy()))
        cautious = False
        progress_made = False
        if finishing or hurry:
            # whole GPUs first, then round-ups by LP value, each only while one of its members
            # still lacks demand: rounding every fraction up at once covered models several
            # times over and exhausted the inventory (1,000 models cut by the clock: no plan)
            steps = [(j, int(whole[j]), False) for j in range(len(x))]
            steps += [(j, 1, True) for j in sorted(round_up, key=lambda j: (-x[j], j))]
        elif disjoint_round_ups:
            steps = [(j, int(whole[j]), False) for j in range(len(x))]
            steps += [(j, 1, False) for j in disjoint_by_value(round_up, x, [sub.columns[j].model_indices for j in range(len(x))])]
        else:
            steps = [(j, int(whole[j]) + (1 if j in round_up else 0), False) for j in range(len(x))]
        for j, times, only_if_needed in steps:
            col = sub.columns[j]
            if times <= 0 or not fixed.fits(problem, col.type_index, col.gpus, col.cost_usd_per_hour, times):
                continue
            if only_if_needed and all(covered[full[rest.models[i]]] >= index.demand_rps[full[rest.models[i]]] * (1 - 1e-9)
                                      for i in col.model_indices):
                continue
            fixed.add(col.pattern, col.type_index, col.gpus, col.cost_usd_per_hour, times)
            for i, cov in zip(col.model_indices, col.coverage_rps):
                covered[full[rest.models[i]]] += cov * times
            progress_made = True
        if not progress_made:
            return complete(problem, rest, fixed) if finishing else None


def disjoint_by_value(round_up: set[int], x: np.ndarray, models_of: list) -> list[int]:
    """The columns of `round_up` to round up in one round, largest LP value first, each only
    if it shares no model with one taken before it. Rounding up two fractional columns that
    hold the same model covers that model twice where the LP split it between them; the
    next round's LP, with that column fixed, places the rest of the model better."""
    taken: set[int] = set()
    chosen = []
    for j in sorted(round_up, key=lambda j: (-x[j], j)):
        models = set(models_of[j])
        if models & taken:
            continue
        taken |= models
        chosen.append(j)
    return chosen


def complete(problem: PlacementProblem, rest: Index, fixed: FixedGpus) -> tuple[PatternCount, ...] | None:
    """Cover what is left when the dive is out of time: the cheaper of dedicated replicas
    (complete_with_singletons) and the greedy packing baseline on what is left
    (complete_with_greedy_packing); None when neither covers it. Dedicated replicas alone ran
    out of GPUs on a tight fleet where most leftovers are small (generated 1,000 models on
    4,096 GPUs, seed 1, at 60 and 100 s: the dive ended without a plan)."""
    plans = [complete_with_singletons(problem, rest, fixed.copy()), complete_with_greedy_packing(problem, rest, fixed)]
    plans = [p for p in plans if p is not None]
    return min(plans, key=lambda plan: patterns_cost(problem, plan)) if plans else None  # ties: dedicated


def residual_problem(problem: PlacementProblem, rest: Index, fixed: FixedGpus) -> PlacementProblem:
    """The problem of what is left: each model's demand not yet covered, each type's GPUs not
    yet fixed, the budget not yet spent. Nodes are those of the GPUs left counted afresh, so
    a plan for it is merged through FixedGpus.fits (complete_with_greedy_packing)."""
    left = dict(zip(rest.models, (float(d) for d in rest.demand_rps)))
    models = tuple(replace(m, demand_rps=left.get(m.name, 0.0)) for m in problem.models)
    gpu_types = tuple(replace(g, count=None if g.count is None else g.count - fixed.used_gpus.get(t, 0))
                      for t, g in enumerate(problem.gpu_types))
    budget = problem.budget_usd_per_hour
    return replace(problem, models=models, gpu_types=gpu_types,
                   budget_usd_per_hour=None if budget is None else budget - fixed.used_usd_per_hour)


def complete_with_greedy_packing(problem: PlacementProblem, rest: Index, fixed: FixedGpus) -> tuple[PatternCount, ...] | None:
    """The fixed GPUs plus the greedy packing baseline's plan (solvers.greedy_pack, sharing
    GPUs) for what is left; None when the greedy leaves a model short or the merged plan
    breaks an inventory, TP-slot or budget limit (FixedGpus.fits)."""
    from solvers.greedy_pack import GreedyPack

    rest_problem = residual_problem(problem, rest, fixed)
    if any(g.count is not None and g.count < 0 for g in rest_problem.gpu_types):
        return None
    result = GreedyPack().solve(rest_problem, SolveSettings(time_limit_s=60.0))
    if not result.patterns or result.status in (SolveStatus.INFEASIBLE, SolveStatus.TIME_LIMIT):
        return None
    merged = fixed.copy()
    type_index = {g.name: t for t, g in enumerate(problem.gpu_types)}
    for pc in result.patterns:
        t, gpus = type_index[pc.pattern.gpu_type], pc.pattern.tensor_parallel
        cost = problem.gpu_types[t].cost_per_hour_usd * gpus
        if not merged.fits(problem, t, gpus, cost, pc.count):
            return None
        merged.add(pc.pattern, t, gpus, cost, pc.count)
    return merged.patterns()


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
