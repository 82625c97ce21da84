"""Diving with column generation for max_throughput: integer plans at fleet scale, as
solvers.colgen.dive does for min_cost. With fairness (stage 2) it starts from a plan that
already serves every model its fair share (`start`: stage 1's plan, from the share search of
solvers.colgen.fair_share) and fills the budget left.

Each round solves the master LP of what is left (demand not yet served, GPUs and budget not
yet used: the served columns' upper bounds are the demand left), re-prices columns for it,
then fixes the LP's whole GPUs; when none is whole it rounds up the fractional columns of at
least ROUND_UP_MIN that share no model, largest first, or else the largest fractional column,
each only where the budget and the inventory still allow it (FixedGpus.fits). The dive ends
when the LP has nothing more to serve, or no GPU it uses still fits. Rounding never breaks the
budget, so every round's plan is feasible: what the fixed GPUs serve only grows.

The residual masters solve without HiGHS's presolve: on one 444-row residual LP at 1,000
models (HiGHS 1.16) presolve took 47 s and the simplex 31 iterations; without it, 2 ms.

Past its deadline the dive ends with one round without pricing, over the columns it knows,
that also rounds up every fractional column (largest first) while the budget and inventory
take it.
"""

from __future__ import annotations

import time

import numpy as np

from planner.problem import Pattern, PatternCount, PlacementProblem, pattern_cost, pattern_member_rates
from solvers.colgen.columns import Index, make_column
from solvers.colgen.dive import ROUND_UP_MIN, FixedGpus, disjoint_by_value
from solvers.colgen.master import Master
from solvers.colgen.pricing import singleton_columns

NOTHING_LEFT_SHARE = 1e-6  # the dive ends when the LP would serve less than this share of what is already served


def throughput_dive(problem: PlacementProblem, index: Index, support: list[Pattern], generate,
                    deadline: float, start: tuple[PatternCount, ...] = ()) -> tuple[PatternCount, ...]:
    """The plan the dive fixes (possibly empty). `support`: the shared patterns the whole
    problem's LP uses; `generate(rest, sub, columns, stop_at, hurry)` as for
    solvers.colgen.dive.dive (hurry is always False here). `start`: GPUs fixed before the
    first round (fairness: a plan that serves every model its fair share), kept whole."""
    fixed = FixedGpus()
    covered = np.zeros(len(index.models))
    full = index.model_index()
    type_index = {g.name: t for t, g in enumerate(problem.gpu_types)}
    for pc in start:
        pattern = pc.pattern
        fixed.add(pattern, type_index[pattern.gpu_type], pattern.tensor_parallel, pattern_cost(problem, pattern), pc.count)
        for member, rate in zip(pattern.members, pattern_member_rates(problem, pattern)):
            if member.model in full:
                covered[full[member.model]] += rate * pc.count
    served_value = float(np.sum(index.priority * np.minimum(covered, index.demand_rps)))
    while True:
        rest = index.residual(np.minimum(covered, index.demand_rps))
        if not rest.models:
            return fixed.patterns()
        sub = Master(problem, rest, used_gpus=fixed.used_gpus, used_usd_per_hour=fixed.used_usd_per_hour,
                     used_group_gpus=fixed.used_group_gpus, presolve=False)
        columns = _round_columns(problem, rest, sub, support, fixed)
        if not columns:
            return fixed.patterns()
        finishing = time.perf_counter() >= deadline
        if finishing:  # out of time: no pricing, and this round is the last
            sub.add_columns(columns)
        else:
            generate(rest, sub, columns, deadline, False)
        lp = sub.solve_lp()
        if lp is None or lp.value <= NOTHING_LEFT_SHARE * max(served_value, 1.0):
            return fixed.patterns()
        x = sub.column_values(lp)
        support = sub.shared_support(x)
        steps, fallback = _round_steps(sub, x)
        if finishing:  # the last round: every fractional column too, largest first, while it fits
            steps += [(j, 1) for j in fallback]
        added = [_fix(problem, fixed, sub.columns[j], times, rest, index, covered) for j, times in steps]
        added = [v for v in added if v is not None]
        for j in fallback if not added else []:  # no step fits: the first fallback column that does
            value = _fix(problem, fixed, sub.columns[j], 1, rest, index, covered)
            if value is not None:
                added = [value]
                break
        if not added or finishing:
            return fixed.patterns()
        served_value += sum(added)


def _round_columns(problem: PlacementProblem, rest: Index, sub: Master, support: list[Pattern], fixed: FixedGpus) -> list:
    """The residual master's first columns: singletons and the last LP's shared patterns that
    touch a model with demand left, on types with GPUs left and within the budget left."""
    names = set(rest.models)
    gpus_left = {g.name: sub.gpus_left(t) for t, g in enumerate(problem.gpu_types)}
    columns = singleton_columns(problem, rest, gpus_left)
    for pattern in support:
        if any(m.model in names for m in pattern.members):
            columns.append(make_column(problem, rest, pattern))
    return [c for c in columns if c.gpus <= sub.gpus_left(c.type_index)
            and fixed.fits(problem, c.type_index, c.gpus, c.cost_usd_per_hour, 1)]


def _round_steps(sub: Master, x: np.ndarray) -> tuple[list[tuple[int, int]], list[int]]:
    """One round: (column, GPUs to fix) steps, and the fallback columns, of which the first
    that fits is fixed when no step fits. The steps: the whole parts of every column; when
    none is whole, the fractional columns of at least ROUND_UP_MIN that share no model
    (largest first). The fallback: every fractional column, largest first."""
    whole = np.floor(x + 1e-6)
    fractional = [j for j in np.argsort(-x, kind="stable") if x[j] > 1e-6]
    if whole.any():
        return [(j, int(whole[j])) for j in range(len(x)) if whole[j] > 0], fractional
    large = {j for j in fractional if x[j] >= ROUND_UP_MIN}
    chosen = disjoint_by_value(large, x, [sub.columns[j].model_indices for j in range(len(x))])
    return [(j, 1) for j in chosen], fractional


def _fix(problem: PlacementProblem, fixed: FixedGpus, col, times: int, rest: Index, index: Index,
         covered: np.ndarray) -> float | None:
    """Fix up to `times` copies of a column, as many as the budget and inventory still take;
    adds what they cover to `covered` (indexed like `index`, the whole problem's) and
    returns the priority-weighted req/s they add, or None when not one copy fits or none of
    its members has demand left."""
    full = index.model_index()
    models = [full[rest.models[i]] for i in col.model_indices]
    if all(covered[m] >= index.demand_rps[m] * (1 - 1e-9) for m in models):
        return None
    while times > 0 and not fixed.fits(problem, col.type_index, col.gpus, col.cost_usd_per_hour, times):
        times -= 1
    if times <= 0:
        return None
    fixed.add(col.pattern, col.type_index, col.gpus, col.cost_usd_per_hour, times)
    value = 0.0
    for m, i, cov in zip(models, col.model_indices, col.coverage_rps):
        value += rest.priority[i] * min(cov * times, max(0.0, index.demand_rps[m] - covered[m]))
        covered[m] += cov * times
    return value
