"""Polishing a min_cost plan by large neighbourhood search (small fleets).

Each round frees a neighbourhood of the plan: the GPUs of one shared pattern, then, breadth
first, every GPU holding one of their models (then the next GPUs of the same type), until
NEIGHBOURHOOD_MODELS models are free.
What those GPUs served is planned again on what the rest of the plan leaves (demand, GPUs,
budget): column generation on the residual master (as the dive's rounds do, so patterns the
plan never saw can enter), then its integer master, started from the freed GPUs themselves,
so the answer never costs more. A cheaper answer replaces the neighbourhood.

A neighbourhood tried since the plan last changed is not planned again (it would give the
same answer); polish stops when every neighbourhood of the plan was tried.

The rounds, the neighbourhoods (a seeded choice) and the MIP's node limit are work limits, so
the same input and seed give the same plan; the deadline is a guard.

Measured on fleet-50x64 at 10 s (2 cores): the integer master's $102.13 -> $100.93 in 1.2 s
(3 of 12 rounds find a cheaper packing). Also tried: 15-model neighbourhoods with every known
pattern touching their models (1-1.7 s a round, cut short by the deadline), 20 or 30 rounds
(the same plan), starting from dedicated GPUs too ($101.73). At 200 models one round of 12
gains $0.40 and the rounds take 6 s, past the 10 s limit: the solver polishes only up to
solvers.colgen.rules.POLISH_MAX_MODELS models.
"""

from __future__ import annotations

import random
import time
from typing import Callable

import numpy as np

from planner.problem import Pattern, PatternCount, PlacementProblem, pattern_cost
from solvers.colgen.columns import Index, make_column
from solvers.colgen.dive import FixedGpus
from solvers.colgen.master import Master
from solvers.colgen.pricing import singleton_columns

POLISH_ROUNDS = 12
NEIGHBOURHOOD_MODELS = 10  # 15: the same plan, slower; 20: cut short by the deadline at 50 models
MIP_NODES = 100  # per neighbourhood (a work limit)


def neighbourhood(plan: dict[Pattern, int], start: Pattern, models_wanted: int) -> set[Pattern]:
    """The patterns of `plan` around `start`: breadth first over shared models (a pattern
    joins when it holds a model already free), until `models_wanted` models are free."""
    holders: dict[str, list[Pattern]] = {}
    for pattern in sorted(plan):
        for member in pattern.members:
            holders.setdefault(member.model, []).append(pattern)
    chosen = {start}
    free = [m.model for m in start.members]
    seen = set(free)
    queue = list(free)
    # when no freed model is anywhere else, the next GPUs of the same type (then of any type)
    # join, in plan order: dedicated GPUs of small models can then be shared
    same_type = [p for p in sorted(plan) if p.gpu_type == start.gpu_type] + sorted(plan)
    while len(seen) < models_wanted:
        if not queue:
            joining = next((p for p in same_type if p not in chosen), None)
            if joining is None:
                break
            queue = [m.model for m in joining.members if m.model not in seen]
            seen.update(queue)
            chosen.add(joining)
            continue
        model = queue.pop(0)
        for pattern in holders[model]:
            if pattern in chosen:
                continue
            chosen.add(pattern)
            for member in pattern.members:
                if member.model not in seen:
                    seen.add(member.model)
                    queue.append(member.model)
    return chosen


def polish(problem: PlacementProblem, index: Index, plan: tuple[PatternCount, ...], known: list[Pattern],
           generate: Callable, deadline: float, seed: int, rounds: int = POLISH_ROUNDS,
           models_wanted: int = NEIGHBOURHOOD_MODELS) -> tuple[tuple[PatternCount, ...], int, bool]:
    """The plan after up to `rounds` rounds of neighbourhood search, how many rounds made it
    cheaper, and whether the deadline cut the rounds short. `known`: patterns generated so far (a neighbourhood's residual master starts
    with those touching its models). `generate(rest, sub, columns, stop_at)` adds columns to
    a residual master and runs column generation on it."""
    current = {pc.pattern: pc.count for pc in plan}
    by_model: dict[str, set[Pattern]] = {}
    for pattern in known:
        for member in pattern.members:
            by_model.setdefault(member.model, set()).add(pattern)
    chooser = random.Random(seed)
    improved = 0
    cut_short = False
    tried: set[frozenset] = set()  # neighbourhoods that found nothing since the plan last changed
    for _ in range(rounds):
        if not current:
            break
        if time.perf_counter() >= deadline:
            cut_short = True
            break
        # from a shared GPU, where the packing has room to change (starting from any GPU gave
        # fleet-50x64 $101.73 against $100.78, measured before the same-type fill-up of
        # `neighbourhood`); from any GPU when none is shared. Not a neighbourhood tried since
        # the plan last changed: the same neighbourhood of the same plan gives the same answer
        # (20 models: 9 of 12 rounds replanned one 15-model neighbourhood, 2 s each)
        starts = sorted(p for p in current if len(p.members) > 1) or sorted(current)
        first = chooser.choice(starts)
        freed = next((f for f in (neighbourhood(current, s, models_wanted) for s in [first] + starts)
                      if frozenset(f) not in tried), None)
        if freed is None:  # every neighbourhood of this plan tried
            break
        replanned = _replan(problem, index, current, freed, by_model, generate, deadline, seed)
        if replanned is None:
            tried.add(frozenset(freed))
            continue
        tried.clear()
        for pattern in freed:
            del current[pattern]
        for pattern, count in replanned.items():
            current[pattern] = current.get(pattern, 0) + count
            for member in pattern.members:
                by_model.setdefault(member.model, set()).add(pattern)
        improved += 1
    cut_short = cut_short or time.perf_counter() >= deadline
    return tuple(PatternCount(p, n) for p, n in sorted(current.items()) if n > 0), improved, cut_short


def _replan(problem, index, current, freed, by_model, generate, deadline, seed) -> dict[Pattern, int] | None:
    """A cheaper way to serve what the `freed` patterns serve, given the rest of the plan, or
    None."""
    fixed = FixedGpus()
    covered = np.zeros(len(index.models))
    for pattern, count in current.items():
        if pattern in freed:
            continue
        col = make_column(problem, index, pattern)
        fixed.add(pattern, col.type_index, col.gpus, col.cost_usd_per_hour, count)
        for i, cov in zip(col.model_indices, col.coverage_rps):
            covered[i] += cov * count
    rest = index.residual(np.minimum(covered, index.demand_rps))
    if not rest.models:  # the rest of the plan covers everything: the freed GPUs can go
        return {}
    sub = Master(problem, rest, used_gpus=fixed.used_gpus, used_usd_per_hour=fixed.used_usd_per_hour,
                 used_group_gpus=fixed.used_group_gpus)
    gpus_left = {g.name: sub.gpus_left(t) for t, g in enumerate(problem.gpu_types)}
    # the freed patterns and every known pattern of residual models only (one that also holds
    # a model the rest of the plan covers spends GPU time on it for nothing: 50 models took
    # 1-1.7 s a round with them, most of it in the MIP)
    names = set(rest.models)
    candidates = set(freed)
    for name in rest.models:
        candidates.update(p for p in by_model.get(name, ()) if all(m.model in names for m in p.members))
    columns = singleton_columns(problem, rest, gpus_left)
    columns += [make_column(problem, rest, p) for p in sorted(candidates)]
    columns = [c for c in columns if c.model_indices and c.gpus <= sub.gpus_left(c.type_index)]
    generate(rest, sub, columns, deadline)
    where = {c.pattern: j for j, c in enumerate(sub.columns)}
    start = np.zeros(len(sub.columns))
    for pattern in freed:
        j = where.get(pattern)
        if j is None:  # a freed pattern covers none of the residual: dropping it is the start
            continue
        start[j] += current[pattern]
    old_usd = sum(pattern_cost(problem, p) * current[p] for p in freed)
    # the MIP stops on its node limit (Master.solve_mip); the deadline only guards it
    counts, _, _ = sub.solve_mip(max(0.05, deadline - time.perf_counter()), seed, start, max_nodes=MIP_NODES)
    if counts is None:
        return None
    new_usd = float(sum(sub.columns[j].cost_usd_per_hour * n for j, n in enumerate(counts)))
    if new_usd >= old_usd - 1e-9:
        return None
    return {sub.columns[j].pattern: int(n) for j, n in enumerate(counts) if n > 0}
