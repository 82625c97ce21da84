"""Fairness, stage 1: the largest share z of every model's demand that a plan within the budget
can serve, searched with the min_cost machinery.

Serving every model z of its demand is the min_cost problem of the *floors* F(z) (every
demand scaled by z, no budget: `floors_problem`); z is fair when F(z)'s plan costs at most
the budget B. Its cost grows with z, so the search is one-dimensional:
1. `FloorsLp`: the min_cost master LP of F(z) (demand and presence rows moved to z, the
   columns kept between calls, column generation from where the last z left it), C_LP(z);
2. `largest_share_within`: the largest z with C_LP(z) <= B / (1 + g) for the first plan (g
   = INITIAL_OVERSHOOT, how much dearer than its LP an integer plan comes out), then
   C_LP(z) <= B - overshoot, the dollars the last plan cost over its LP (per-model rounding:
   about the same whatever the share), by regula falsi with the Illinois step, bracketed,
   from z = 1 (up to FAIR_MIP_MAX_MODELS models from the max-share master's LP share: an
   estimate, its pricing is heuristic);
3. the integer plan of F(z) by colgen's min_cost phases (solvers.colgen.solver); when it
   costs more than B, `trim_to_budget` takes GPUs out of it, those whose members keep the
   largest smallest share first, until it fits. Where the time limit allows more plans
   (solvers.colgen.rules.fair_share_plans), steps 2-3 run again, each aim kept inside the
   bracket of the plans made (`inside_bracket`: above the largest share whose plan fit,
   below the smallest whose plan did not, else the middle), and the largest smallest share
   of all wins. Up to FAIR_REPAIR_MAX_MODELS models each plan is also repaired
   (`repair_share`: a max-share MIP over its patterns and every singleton, from its trimmed
   self). Where the inventory cannot serve a share, the next plan aims below it.

`fair_share_upper_bound` proves how far the share found can be from the best: above it the
replica relaxation of F(z) costs more than the budget (fleet-200x512 at $740/h: 56.3% found,
no plan gives every model more than 61.8%).

Why not the max-share MIP or a dive on the max-share LP (what stage 1 did before): at every
benchmark size HiGHS's MIP stopped on the clock, so the fair share depended on the machine's
load (1,000 models at $4,100/h and 60 s: 0.336-0.518 in four runs), and its shares were low
(fleet-200x512 at $740/h: 0.44). A dive on the max-share LP rounded up fractions of GPUs in
every round; that spent the budget before every model had a GPU, and some model ended with
nothing (share 0 on fleet-50x64 at $55/h and fleet-200x512 at $740/h). The min_cost dive pays
for its roundings in dollars, about 3-6% over its LP, and the search turns that into share.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import dataclass, replace

import numpy as np

from planner.problem import (PatternCount, PlacementProblem, pattern_cost, pattern_member_rates, patterns_cost,
                             planned_capacity_rps)
from solvers.colgen.columns import Index
from solvers.colgen.master import Master, presence_lower_bounds
from solvers.colgen.pricing import singleton_columns
from solvers.colgen.progress import Progress
from solvers.colgen.rules import (FAIR_LP_ITERATIONS, FAIR_MAX_SHARE_SHARE, FAIR_MIP_MAX_MODELS, FAIR_STAGE_ONE_SHARE,
                                  fair_repair_nodes, fair_share_plans)

INITIAL_OVERSHOOT = 0.04  # min_cost plans over their LP: 2.8% at 200 models, 4.4% at 1,000 (reports/packing_bench.md)
SHARE_TOLERANCE = 0.002  # the LP search stops within this share of the target cost
LP_EVALUATIONS = 8  # LP solves (with column generation) per search
SAFETY = 0.995  # aim the LP a little under the target: integer plans' costs move by steps
FAIR_BACKOFF = 0.25  # where no share leaves room for the overshoot: this part of what the LP alone fits
FAIR_PLAN_RESERVE = 0.5  # of its part of the time, kept for each plan still to come
FAIR_REPAIR_RESERVE = 0.15  # of a plan's part of the time, kept for its repair (0.2-0.8 s at 50 models)
PLAN_SHARE_TOLERANCE = 0.005  # plans aimed closer than this to a share already planned tell little
BOUND_EVALUATIONS = 6  # replica LPs for the proven upper bound on the fair share
BOUND_SHARE_TOLERANCE = 0.005  # ... which stops when its bracket is this narrow (fleet-200x512 at $740/h: 4 LPs, 0.6184; at 0.002, 6 LPs, 0.6157)


def floors_problem(problem: PlacementProblem, share: float) -> PlacementProblem:
    """F(share): every model's demand times `share`, min_cost, no budget and no fairness."""
    return replace(problem, objective="min_cost", fairness=False, budget_usd_per_hour=None,
                   models=tuple(replace(m, demand_rps=share * m.demand_rps) for m in problem.models))


class FloorsLp:
    """C_LP(z): the min_cost master of F(z_top) whose demand and presence rows move to z.

    Columns stay between shares; coefficients keep their cap at z_top x demand (a column
    covers at most that), so for z < z_top the LP is weaker than F(z)'s own, the more so the
    further z falls below z_top (an estimate to aim with, not a bound). `grow(master)`
    runs column generation on it (the caller's: pricing, pool and clock)."""

    def __init__(self, problem: PlacementProblem, z_top: float, grow):
        self.problem = problem
        self.top = floors_problem(problem, z_top)
        self.index = Index.of(self.top)
        self.master = Master(self.top, self.index)
        self.full_demand_rps = self.index.demand_rps / z_top
        self.grow = grow
        self.values: dict[float, float] = {}

    def cost(self, share: float) -> float:
        """C_LP(share); inf where the inventory cannot serve F(share) (the LP needs its artificials)."""
        if share in self.values:
            return self.values[share]
        demand = share * self.full_demand_rps
        presence = presence_lower_bounds(self.problem, replace(self.index, demand_rps=demand))
        self.master.set_demand(demand, presence)
        lp = self.grow(self.master)
        value = math.inf if lp is None or self.master.slack_used() > 1e-7 else float(lp.value)
        self.values[share] = value
        return value


@dataclass(frozen=True)
class ShareSearch:
    share: float  # the largest share found whose cost is within the target (`low` if none)
    above: float  # the smallest share found whose cost is over it (`top` if none)
    evaluations: int


def largest_share_within(cost, target: float, top: float, evaluations: int = LP_EVALUATIONS,
                         tolerance: float = SHARE_TOLERANCE, low: float = 0.0,
                         share_tolerance: float = 0.0) -> ShareSearch:
    """The largest share z in [low, top] with cost(z) <= target that regula falsi (Illinois)
    finds in `evaluations` calls of `cost`, a nondecreasing function with cost(low) <=
    target (cost(0) = 0 is not asked). Stops when a share's cost is within `tolerance` x
    target under it (tolerance > 0), or the bracket is at most `share_tolerance` wide, or
    a cost is nan (an LP without an answer: the bracket stays as it was; `above` is only
    ever `top` or a share whose cost was seen over the target)."""
    if target <= 0:  # nothing costs less than nothing: `low` is all there is
        return ShareSearch(low, top, 0)
    hi_z, hi_f = top, cost(top) - target
    used = 1
    if math.isnan(hi_f):
        return ShareSearch(low, top, used)
    if hi_f <= 0:
        return ShareSearch(top, top, used)
    lo_z, lo_f = low, -target
    if low > 0:
        # cost(low) <= target by the precondition; the clamp only absorbs LP round-off
        lo_f = min(cost(low) - target, 0.0)
        used += 1
        if math.isnan(lo_f):
            return ShareSearch(low, top, used)
    side = 0
    while used < evaluations and hi_z - lo_z > share_tolerance:
        if math.isinf(hi_f):  # no plan at `hi_z` (the inventory): halve towards what it can
            z = 0.5 * (lo_z + hi_z)
        else:
            z = lo_z + (hi_z - lo_z) * (-lo_f) / (hi_f - lo_f)
            z = min(max(z, lo_z + 0.01 * (hi_z - lo_z)), hi_z - 0.01 * (hi_z - lo_z))
        f = cost(z) - target
        used += 1
        if math.isnan(f):
            break
        if f <= 0:
            lo_z, lo_f = z, f
            if tolerance > 0 and -f <= tolerance * target:
                break
            if side == -1 and not math.isinf(hi_f):
                hi_f *= 0.5
            side = -1
        else:
            hi_z, hi_f = z, f
            if side == 1:
                lo_f *= 0.5
            side = 1
    return ShareSearch(lo_z, hi_z, used)


def fair_share_upper_bound(problem: PlacementProblem, achieved: float, evaluations: int = BOUND_EVALUATIONS,
                           time_limit_s: float = 30.0, strong_evaluations: int = 0) -> float:
    """A proven upper bound on the share of its demand every model can get within the
    budget: a share z at which a proven lower bound on the cost of the floors F(z) is over
    the budget, or F(z) is infeasible. A plan that serves every model z' >= z of its demand
    also serves z of it, so it is a plan of F(z) and costs at least that bound: no plan
    within the budget serves every model z or more. The search runs on the replica
    relaxation's LP (solvers.replica_relaxation), whose cost is nondecreasing in z (for
    z1 < z2 every point of F(z2)'s maps to one of F(z1)'s at the same cost: coverage capped
    at z1 D is at least z1 / z2 of coverage capped at z2 D, and presence rows only loosen).
    `achieved`: a share some plan within the budget serves (the search starts there).
    `time_limit_s` guards each LP; one cut short (nan) ends the search with the bracket it
    had, which only weakens the bound.

    With `strong_evaluations`, solvers.bounds.best_cost_bound (the replica relaxation's MIP
    or its root, with SLO classes or cycle bands, on small and mid-size fleets) then moves
    the bound down: the LP's cost plus the margin the stronger bound last added over it
    aims each evaluation (`_strong_refinement`)."""
    from solvers.replica_relaxation import replica_cost_bound

    budget = problem.budget_usd_per_hour
    target = budget if budget is not None else sys.float_info.max
    low = max(0.0, achieved)

    @functools.cache  # the refinement asks again for shares the search solved
    def lp_cost(share: float) -> float:
        return replica_cost_bound(floors_problem(problem, share), time_limit_s=time_limit_s).value

    above = largest_share_within(lp_cost, target, 1.0, evaluations, tolerance=0.0, low=low,
                                 share_tolerance=BOUND_SHARE_TOLERANCE).above
    if strong_evaluations > 0 and budget is not None:
        above = _strong_refinement(problem, lp_cost, budget, low, above, strong_evaluations,
                                   time.perf_counter() + time_limit_s)
    return above


def _strong_refinement(problem, lp_cost, budget: float, low: float, above: float, evaluations: int,
                       deadline: float) -> float:
    """A smaller share than `above` at which best_cost_bound of the floors is over the budget,
    or `above`. The first evaluation, at `above`, measures the margin m the strong bound adds
    over the LP; each next one aims at the smallest share whose LP cost is over budget - m
    (the margin last measured), or at the middle of the bracket (a share the strong bound
    left within the budget, one it proved over) where that aim falls outside it."""
    from solvers.bounds import best_cost_bound, replica_tier

    if replica_tier(problem) == "lp" or above - low <= BOUND_SHARE_TOLERANCE:
        return above  # best_cost_bound would be the LP, or no share is left between
    share, within = above, low
    for _ in range(evaluations):
        if time.perf_counter() >= deadline:
            break
        strong = best_cost_bound(floors_problem(problem, share), time_limit_s=max(0.5, deadline - time.perf_counter()))
        if math.isnan(strong):
            break
        if strong > budget:
            above = share
            margin = strong - lp_cost(share)
            aim = largest_share_within(lp_cost, budget - margin, above, BOUND_EVALUATIONS, tolerance=0.0, low=low,
                                       share_tolerance=BOUND_SHARE_TOLERANCE).above if margin > 0 else above
        else:
            within, aim = share, above
        if above - within <= BOUND_SHARE_TOLERANCE:
            break
        inside = within + BOUND_SHARE_TOLERANCE <= aim <= above - BOUND_SHARE_TOLERANCE
        share = aim if inside else 0.5 * (within + above)
    return above


def fair_share_of(problem: PlacementProblem, served: dict[str, float]) -> float:
    """The smallest share of demand a plan serves (served req/s per model)."""
    shares = [min(served.get(m.name, 0.0), m.demand_rps) / m.demand_rps for m in problem.demanded_models]
    return float(np.min(shares)) if shares else 1.0


def trim_to_budget(problem: PlacementProblem, plan: tuple[PatternCount, ...],
                   budget_usd_per_hour: float) -> tuple[PatternCount, ...]:
    """`plan` with GPUs taken out, one at a time, until it costs at most the budget: each
    time the GPU (or TP group) after whose removal its members' smallest share of demand is
    largest, and of those the dearest. Every model keeps what the GPUs left serve it."""
    counts = {pc.pattern: pc.count for pc in plan}
    price = {p: pattern_cost(problem, p) for p in counts}
    demand = {m.name: m.demand_rps for m in problem.demanded_models}
    cover = planned_capacity_rps(problem, plan)
    rates = {p: [(m.model, r) for m, r in zip(p.members, pattern_member_rates(problem, p)) if m.model in demand]
             for p in counts}
    cost = patterns_cost(problem, plan)
    order = sorted(counts)  # a fixed order: ties break the same way every run
    while cost > budget_usd_per_hour + 1e-9:
        best, best_key = None, None
        for p in order:
            if counts[p] <= 0:
                continue
            after = min((min(cover[model] - r, demand[model]) / demand[model] for model, r in rates[p]), default=1.0)
            key = (round(after, 12), price[p])
            if best_key is None or key > best_key:
                best, best_key = p, key
        if best is None:
            break
        counts[best] -= 1
        cost -= price[best]
        for model, r in rates[best]:
            cover[model] -= r
    return tuple(PatternCount(p, n) for p, n in sorted(counts.items()) if n > 0)


def fairness_stage_one(solver, problem, index, settings, start, progress):
    """Fairness, stage 1 of colgen (`solver`, a solvers.colgen.solver.ColumnGeneration, whose
    phases it runs): a plan within the budget that serves every model the largest share of
    its demand found, or None. Candidates: the max-share master's MIP (up to
    FAIR_MIP_MAX_MODELS models) and the share search's plan; the larger smallest share wins.
    Without `solver.share_search`: the max-share MIP alone, with half the time limit (what
    stage 1 was before the search)."""
    limit = settings.time_limit_s
    solver._report("fairness: the largest share of demand every model can get")
    if not solver.share_search:
        alone, _, _ = solver._stage(problem, index, settings, start, 0.5 * limit, None, progress, maximize_share=True)
        return alone
    candidates, top, patterns = [], 1.0, []
    if len(index.models) <= FAIR_MIP_MAX_MODELS:
        by_mip, _, _ = solver._stage(problem, index, settings, time.perf_counter(), FAIR_MAX_SHARE_SHARE * limit,
                                     None, progress, maximize_share=True)
        candidates += [by_mip] if by_mip else []
        if math.isfinite(progress.share_lp):
            top = min(1.0, progress.share_lp)
        patterns = list(solver.patterns_seen)
    if top > 0:
        searched = fair_share_search(solver, problem, settings, top, patterns, start + FAIR_STAGE_ONE_SHARE * limit,
                                     progress)
        candidates += [searched] if searched else []
    return solver._best(problem, candidates, maximize_share=True)


def fair_share_search(solver, problem, settings, top, patterns, deadline, progress):
    """The plan of the largest share the search finds whose min_cost plan fits the budget
    (solvers.colgen.fair_share), or (): LP costs of the floors by column generation
    (FAIR_LP_ITERATIONS pricing rounds a share after the first converges), then up to
    `fair_share_plans` min_cost plans, each after the first aimed with the overshoot the
    last measured, inside the bracket of those made. Work limits throughout; `deadline` is
    a guard, and reaching it says so."""
    budget = problem.budget_usd_per_hour
    pool: dict = {}

    def grow(master):
        if time.perf_counter() >= deadline:  # out of time: the LP over the columns known
            progress.hit_time_limit = True
            return master.solve_lp()
        first = not floors.values  # the first share's LP converges; later ones start from its columns
        lp, _, _ = solver._generate(floors.top, floors.index, master, pool, progress, deadline, prove=False,
                                    warm=None, max_iterations=400 if first else FAIR_LP_ITERATIONS)
        return lp

    floors = FloorsLp(problem, top, grow)
    solver._add(floors.master, floors.top, floors.index, pool, singleton_columns(floors.top, floors.index))
    solver._add(floors.master, floors.top, floors.index, pool, patterns)
    plans = fair_share_plans(len(floors.index.models), settings.time_limit_s)
    nominal_s = FAIR_STAGE_ONE_SHARE * settings.time_limit_s / plans  # each plan's time limit, for its rules
    overshoot_usd, found = None, []  # how much dearer than its LP the last plan came out ($/h)
    fits, over = 0.0, math.inf  # the largest share whose plan fit the budget, the smallest whose plan did not
    for attempt in range(plans):
        if budget is None:  # no budget: the inventory
            target = sys.float_info.max
        elif overshoot_usd is None:
            target = SAFETY * budget / (1 + INITIAL_OVERSHOOT)
        else:
            target = SAFETY * budget - overshoot_usd
        share = largest_share_within(floors.cost, target, top).share
        if share <= 0 and budget is not None and fits == 0:
            # no share leaves room for the overshoot g: where costs are mostly a GPU for every
            # model whatever its share, g of the whole cost is more than a small share adds.
            # Aim at a part of the share the LP alone fits (generated 30 models, mixed, at 40%
            # of their min_cost plan: 9.1% cost $115.63 over $111.39, trimmed to 0; 1% costs $106.86)
            share = FAIR_BACKOFF * largest_share_within(floors.cost, SAFETY * budget, top).share
        share = inside_bracket(share, fits, over)
        if share is None or share <= 0:
            break
        solver._report(f"fairness: {share:.1%} of every model's demand (LP at ${floors.cost(share):,.2f}/h)")
        if time.perf_counter() >= deadline:
            progress.hit_time_limit = True
            break
        # a plan may run past its part of the time, but leaves each plan after it half of its
        # part, and its repair a little
        plan_deadline = deadline - FAIR_PLAN_RESERVE * nominal_s * (plans - attempt - 1)
        repair_nodes = fair_repair_nodes(len(floors.index.models), nominal_s)
        plan = fair_share_plan(solver, problem, settings, share, nominal_s,
                               plan_deadline - (FAIR_REPAIR_RESERVE * nominal_s if repair_nodes else 0.0), progress)
        progress.fair_attempts = attempt + 1
        if not plan:  # the inventory did not serve it
            top, over = 0.9 * share, min(over, share)
            continue
        cost = solver._evaluate(floors_problem(problem, share), plan)[0]
        solver._report(f"fairness: the plan of {share:.1%} costs ${cost:,.2f}/h")
        if budget is None:
            found.append(plan)
            break
        # the next plan aims with the overshoot this one measured, inside the bracket
        overshoot_usd = max(cost - floors.cost(share), 0.0)
        if cost <= budget + 1e-9:
            found.append(plan)
            fits = max(fits, share)
        else:  # over the budget: its GPUs trimmed is one candidate; the next plan aims lower
            found.append(trim_to_budget(problem, plan, budget))
            over = min(over, share)
        if repair_nodes:  # and the plan's patterns and singletons mixed anew for the largest smallest share
            repaired = repair_share(solver, problem, plan, found[-1], repair_nodes, plan_deadline, settings.seed,
                                    progress)
            found += [repaired] if repaired else []
    return solver._best(problem, found, maximize_share=True) or ()


def repair_share(solver, problem, plan, start, nodes: int, deadline: float, seed: int = 0, progress=None):
    """The largest smallest share of demand within the budget over `plan`'s patterns and
    every singleton (a model alone on a GPU or TP group), each pattern as often as wanted:
    HiGHS's MIP over the max-share master, `nodes` nodes, from `start` (`plan` trimmed to
    the budget, or `plan` where it fits); () when it finds nothing. A plan over the budget
    by a dollar lost half its smallest share to the trim (fleet-50x64 at $55/h: the plan of
    36.5% cost $56.11/h, trimmed 18.1%, repaired 36.1%; at $85/h, 82.2% at $88.49/h: trimmed
    55.6%, repaired 73.5%, 0.2-0.8 s). `deadline` guards the MIP; reaching it says so in
    `progress`."""
    index = Index.of(problem)
    master = Master(problem, index, maximize_share=True)
    solver._add(master, problem, index, {}, singleton_columns(problem, index))
    solver._add(master, problem, index, {}, [pc.pattern for pc in plan])
    start_counts = solver._start_vector(master, start)
    counts, _, _ = master.solve_mip(max(0.05, deadline - time.perf_counter()), seed, start_counts, max_nodes=nodes)
    if master.mip_stopped_by_clock and progress is not None:  # not its node limit: the plan may depend on the clock
        progress.hit_time_limit = True
    return solver._patterns(master, counts) if counts is not None else ()


def inside_bracket(share: float, fits: float, over: float) -> float | None:
    """The share the next plan aims at: `share` where it lies inside (fits, over) with
    PLAN_SHARE_TOLERANCE to spare at either end, else the bracket's middle; None when the
    bracket is narrower than twice that (no plan between would tell more). `fits`: the
    largest share whose plan fit the budget (0: none yet); `over`: the smallest whose plan
    did not (inf: none yet)."""
    if over - fits < 2 * PLAN_SHARE_TOLERANCE:
        return None
    if fits + PLAN_SHARE_TOLERANCE <= share <= over - PLAN_SHARE_TOLERANCE:
        return share
    if fits == 0 and share < over - PLAN_SHARE_TOLERANCE:  # below every plan tried, none fit yet: as aimed
        return share
    if math.isinf(over):  # a plan fit, and with its overshoot the LP aims no higher
        return None
    return 0.5 * (fits + over)


def fair_share_plan(solver, problem, settings, fair_share, limit_s, deadline, progress):
    """The cheapest plan colgen finds (min_cost, no budget, within the inventory) that
    serves every model `fair_share` of its demand, with a time limit of `limit_s` (what
    its phase rules see) guarded by `deadline`; () when none."""
    floors = floors_problem(problem, fair_share)
    inner = Progress()
    solver._report(f"fairness: {len(floors.demanded_models)} models' fair share of {fair_share:.1%} at least cost")
    # work limits first; the deadline (stage 1's, less what later plans keep) only guards
    guard_s = max(deadline - time.perf_counter(), 1e-3)
    best, _, _ = solver._stage(floors, Index.of(floors), replace(settings, time_limit_s=limit_s),
                               time.perf_counter(), guard_s, None, inner)
    progress.hit_time_limit = progress.hit_time_limit or inner.hit_time_limit
    return best or ()
