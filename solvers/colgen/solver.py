"""Packing by column generation: the "colgen" solver.

1. Columns: every singleton (a model alone on a GPU or TP group) up front, plus the
   warm start's patterns (greedy-type).
2. Column generation: master LP (HiGHS) -> duals -> compiled greedy pricing of shared
   patterns per GPU type and cycle target -> new columns, until the greedy finds none.
3. Bound: solvers.bounds, min_cost: best_cost_bound, the best of the replica relaxation
   (solvers.replica_relaxation), the compact LP and the fluid bound; max_throughput:
   throughput_upper_bound, the replica relaxation or every model served. The master's LP value is reported in stats but not claimed as proven:
   pricing is heuristic and may miss a column.
4. Integers: min_cost, a dive with column generation on the residual demand
   (solvers.colgen.dive); max_throughput, the throughput dive (solvers.colgen.throughput_dive;
   with fairness, from the plan of stage 1's share search, solvers.colgen.fair_share, which
   serves every model the largest share of its demand it finds); then, on small masters, a MIP
   over every column from the best plan (max_throughput: the best plan before its dive).
5. Polish (min_cost, up to POLISH_MAX_MODELS models): neighbourhood search from the best
   plan (solvers.colgen.polish).
6. Pool MIP (min_cost, small pools, long time limits: `pool_mip_nodes`): a MIP over every
   pattern generated, from scratch.
The phases stop on work limits (iterations, MIP nodes), so the same input gives the same
plan; the time limit is a guard, and a plan cut short by it has status `time_limit`.
Which phases run, and their settings (dives, polish, pool MIP), are rules on the input in
solvers.colgen.rules.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor

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
from solvers.bounds import best_cost_bound, replica_tier, throughput_upper_bound
from solvers.colgen.columns import Column, Index, make_column, type_items
from solvers.colgen.dive import dive
from solvers.colgen.fair_share import fair_share_of, fair_share_upper_bound, fairness_stage_one
from solvers.colgen.master import Master
from solvers.colgen.polish import polish
from solvers.colgen.pricing import SharedPricer, singleton_columns
from solvers.colgen.progress import Progress
from solvers.colgen.throughput_dive import throughput_dive
from solvers.colgen.rules import (  # noqa: F401  (tests and benches read the rules here too)
    DiveSettings, CAREFUL_DIVE, CAREFUL_DIVE_MAX_MODELS, CAREFUL_DISJOINT_DIVE, DISJOINT_DIVE_S_PER_MODEL,
    FAST_DIVE, FAST_DIVE_S_PER_MODEL, HASTY_DIVE, FAST_DISJOINT_DIVE, FAST_DISJOINT_S_PER_MODEL, SECOND_DIVE,
    PORTFOLIO_S_PER_MODEL, DIVE_RULES, MIP_POLISH_MAX_COLUMNS, DIVE_DEADLINE_SHARE, DIVE_FILLS_PER_CYCLE,
    BOUND_RESERVE_SHARE, BOUND_MIN_S, POLISH_MAX_MODELS, POLISH_ITERATIONS, POOL_MIP_MAX_COLUMNS,
    POOL_MIP_S_PER_MODEL, POOL_MIP_NODES_PER_S, TAIL_ITERATIONS, TAIL_TOLERANCE, dive_settings,
    throughput_dive_settings, pool_mip_nodes, dive_portfolio, fair_bound_strong_evaluations,
)


# The warm start's CP-SAT stops on deterministic time (a work limit), this share of the time
# limit: 0.25 at 10 s, where fleet-200x512 used 0.26 of it in 1 s of wall time on this
# machine. With a wall-clock limit alone its plan (1,511.53 or 1,511.93 there) depended on
# the machine's load, and so did colgen's plan ($1,339.87 idle, $1,364.45 under load).
WARM_CPSAT_DETERMINISTIC_SHARE = 0.025
WARM_CPSAT_GUARD_SHARE = 0.2  # its wall-clock guard, of the time limit
FAIR_BOUND_MIN_S = 2.0  # each LP of the fair-share bound gets the time left, at least this (1,000 models: 0.9 s)


def _warm_start(problem: PlacementProblem, settings: SolveSettings) -> tuple[SolveResult | None, bool]:
    """A first plan: the type-level greedy, or, if it finds none, type-level CP-SAT briefly
    (up to CAREFUL_DIVE_MAX_MODELS models: at 1,000 models it spent 6 s of 60 and found
    nothing, and the dive does not need a warm start). Returns (plan or None, whether the
    clock rather than a work limit ended the CP-SAT solve: then the plan may depend on it)."""
    from dataclasses import replace

    from solvers.greedy_type import GreedyTypeLevel
    from solvers.typelevel_cpsat import TypeLevelCpSat

    solvers = [(GreedyTypeLevel(), settings.time_limit_s)]
    if sum(1 for m in problem.models if m.demand_rps > 0) <= CAREFUL_DIVE_MAX_MODELS:
        solvers.append((TypeLevelCpSat(WARM_CPSAT_DETERMINISTIC_SHARE * settings.time_limit_s),
                        WARM_CPSAT_GUARD_SHARE * settings.time_limit_s))
    clock = False
    for solver, limit in solvers:
        try:
            result = solver.solve(problem, replace(settings, time_limit_s=limit, gap_target=0.02, threads=1))
        except Exception:  # a baseline failing must not stop the exact solver
            continue
        clock = clock or bool(result.stats.get("stopped_by_clock", False))
        if result.patterns and result.status is not SolveStatus.INFEASIBLE:
            return result, clock
    return None, clock


def _bound_in_background(problem: PlacementProblem, settings: SolveSettings) -> Future | None:
    """min_cost on a machine with 2+ CPUs, where the bound solves the relaxation's MIP root
    (solvers.bounds.replica_tier "root", mid-size fleets): solvers.bounds.best_cost_bound on
    a second thread while column generation runs. HiGHS releases the GIL, so at 200 models
    its 4 s of root no longer add to the solve (7.5 -> 4.1 s). Not on the LP tier: at 1,000
    models the bound's 1.5 s of mostly Python slowed column generation by 3.5 s. The bound
    is a work-limited computation, so its value does not depend on which thread runs it; the
    time limit guards it as in `_final_bound`."""
    if problem.objective != "min_cost" or (os.cpu_count() or 1) < 2 or replica_tier(problem) != "root":
        return None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="colgen-bound")
    job = pool.submit(best_cost_bound, problem, max(BOUND_MIN_S, settings.time_limit_s))
    pool.shutdown(wait=False)  # the thread ends with its one job
    return job


class ColumnGeneration:
    name = "colgen"
    description = "column generation over GPU patterns: sharing, TP groups, proven bound"
    patterns_seen: tuple = ()  # after a solve: every pattern it generated, in the order found

    def __init__(self, dive: DiveSettings | None = None, pool_mip: bool = True, share_search: bool = True):
        """`dive`: these dive settings whatever `dive_settings` says (bench/bench_dive_rules.py);
        `pool_mip=False`: no pool MIP whatever `pool_mip_nodes` says (bench/bench_pool_mip.py);
        `share_search=False` (fairness): stage 1 is the max-share master's MIP alone, at every
        size, as before the share search (bench/bench_throughput.py's baseline for it)."""
        self.dive = dive
        self.pool_mip = pool_mip
        self.share_search = share_search
        self._report = lambda text: None  # settings.report during a solve (progress lines)

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        index = Index.of(problem)
        progress = Progress()
        if not index.models:
            return SolveResult(self.name, SolveStatus.OPTIMAL, problem.objective, 0.0, 0.0, (), {}, 0.0)
        self._report = settings.report
        bound_job = _bound_in_background(problem, settings)
        warm = None
        if not problem.fairness:  # (with fairness no stage uses a warm start's plan)
            self._report("warm start")
            warm, warm_by_clock = _warm_start(problem, settings)
            if warm_by_clock:  # the clock changed the warm start, so maybe the plan: say so
                progress.hit_time_limit = True
        fair_share, first = None, None
        if problem.fairness:
            # stage 1: the largest share of demand every model can get; stage 2 keeps it
            first = fairness_stage_one(self, problem, index, settings, start, progress)
            if first is not None:
                fair_share = fair_share_of(problem, self._evaluate(problem, first)[1]) * (1 - 1e-9)
            progress.fair_share = round(fair_share or 0.0, 6)  # no plan of a positive share: 0, no floors
        left = settings.time_limit_s - (time.perf_counter() - start)
        best, proven_bound, converged = self._stage(problem, index, settings, time.perf_counter(), left, warm,
                                                    progress, fair_share=fair_share, fair_plan=first)
        if problem.fairness:  # after the plan: it does not change it (each LP guarded by the time left, 2 s at least)
            self._report("fairness: a proven upper bound on the fair share")
            guard_s = max(FAIR_BOUND_MIN_S, settings.time_limit_s - (time.perf_counter() - start))
            strong = fair_bound_strong_evaluations(len(index.models), settings.time_limit_s)
            progress.fair_share_bound = round(fair_share_upper_bound(problem, fair_share or 0.0, time_limit_s=guard_s,
                                                                     strong_evaluations=strong), 6)
        return self._result(problem, settings, start, best, proven_bound, converged, progress, bound_job)

    def _stage(self, problem, index, settings, start, limit, warm, progress, fair_share=None, maximize_share=False,
               fair_plan=None):
        """Column generation, bound, dives and integer master; returns
        (best patterns or None, proven bound, finished without the time guard). `fair_plan`
        (fairness, stage 2): stage 1's plan, whose patterns start the master (without them the
        LP with the fair-share floors could start infeasible, and stage 2 ended with no plan:
        fleet-50x64 at $85/h) and which stays a candidate (it serves every fair share)."""
        deadline = start + limit
        pool: dict = {}  # every pattern generated so far (shared across the phases)
        master = Master(problem, index, fair_share=fair_share, maximize_share=maximize_share)
        self._add(master, problem, index, pool, singleton_columns(problem, index))
        if warm is not None:
            self._add(master, problem, index, pool, [pc.pattern for pc in warm.patterns])
        if fair_plan:
            self._add(master, problem, index, pool, [pc.pattern for pc in fair_plan])
        lp, proven_bound, converged = self._generate(problem, index, master, pool, progress,
                                                     start + 0.35 * limit, prove=not maximize_share, warm=warm)
        progress.columns = len(master.columns)
        if maximize_share and lp is not None:
            progress.share_lp = lp.value

        candidates: list[tuple[PatternCount, ...]] = []
        if warm is not None and fair_share is None and not maximize_share:
            candidates.append(warm.patterns)
            progress.warm_value = warm.value
        if fair_plan:
            candidates.append(fair_plan)
        # Phase B (min_cost): dive with column generation on the residual problem
        if master.min_cost and lp is not None and master.slack_used() <= 1e-7:
            x = master.column_values(lp)
            support = master.shared_support(x)
            dives = [self.dive] if self.dive else dive_portfolio(len(index.models), settings.time_limit_s)
            progress.dive_rule = "+".join(DIVE_RULES.get(how, "custom") for how in dives)
            for how in dives:
                name = DIVE_RULES.get(how, "custom")
                self._report(f"dive ({name}): {len(index.models)} models to place")
                t0 = time.perf_counter()

                rounds = [0]

                def regenerate(rest, sub, columns, stop_at, hurry, how=how, name=name, rounds=rounds):
                    self._report(f"dive ({name}): {len(rest.models)} of {len(index.models)} models left to place")
                    self._add(sub, problem, rest, pool, columns)
                    if hurry:  # the clock changes the plan: say so
                        progress.hit_time_limit = True
                    rounds[0] += 1
                    iterations = how.iterations_per_round
                    if rounds[0] == 2 and how.first_residual_iterations:
                        iterations = how.first_residual_iterations
                    self._generate(problem, rest, sub, pool, progress, stop_at, prove=False, warm=None,
                                   max_iterations=1 if hurry else iterations,
                                   fills_per_cycle=DIVE_FILLS_PER_CYCLE, max_columns_per_type=how.columns_per_type)

                dived = dive(problem, index, support, regenerate, start + DIVE_DEADLINE_SHARE * limit,
                             how.round_up_share, disjoint_round_ups=how.disjoint_round_ups,
                             first_round_dedicated_only=how.first_round_dedicated_only)
                progress.dive_s += time.perf_counter() - t0
                if time.perf_counter() >= start + DIVE_DEADLINE_SHARE * limit:  # the clock cut the dive short
                    progress.hit_time_limit = True
                if dived is not None:
                    value = self._evaluate(problem, dived)[0]
                    progress.dive_value = value if math.isnan(progress.dive_value) else min(progress.dive_value, value)
                    candidates.append(dived)
                    self._add(master, problem, index, pool, [pc.pattern for pc in dived])
        # Phase B' (max_throughput): the throughput dive; with fairness (its second stage) from a
        # plan that serves every model its fair share
        before_throughput_dive = list(candidates)
        if not master.min_cost and not maximize_share and lp is not None:
            floors, dived = (), ()
            if fair_share is not None:  # fairness, stage 2: from stage 1's plan, which serves every fair share
                floors = fair_plan or ()
            if fair_share is None or floors:
                dived = self._throughput_dive(problem, index, master, lp, pool, progress,
                                              start + DIVE_DEADLINE_SHARE * limit, floors)
            if dived:
                candidates.append(dived)
        dived_throughput = len(candidates) > len(before_throughput_dive)
        # Phase C: integer master over every column, from the best plan so far (for min_cost
        # only on small masters: above MIP_POLISH_MAX_COLUMNS it used the whole time left
        # without improving the dive's plan at 200 and 1,000 models)
        t0 = time.perf_counter()
        incumbent = self._best(problem, candidates)
        # (max_throughput likewise after its dive. Measured on ten 200-model instances at 10 s:
        # from the dive's plan the MIP ran to the clock and bettered it by at most 0.07%, on 3;
        # with 10 nodes, 5-8 s, 0.05-0.23 points of gap on 4; from scratch, 10 or 100 nodes,
        # 5-7 s, on 1 (0.28% -> 0.006%). Without it the plans stay within 1% of the bound in
        # 2-4 s, and depend on work limits only)
        large = len(master.columns) > MIP_POLISH_MAX_COLUMNS
        # (fairness, stage 1: on small masters only, where it is one candidate of the share
        # search's: on large ones it stopped on the clock at every benchmark size)
        mip_for_share = maximize_share and self.share_search
        if not (large and (mip_for_share or (incumbent is not None and (master.min_cost or dived_throughput)))):
            self._report(f"integer master over {len(master.columns):,} patterns")
            # max_throughput: from the best plan before its dive (see _throughput_dive)
            start_plan = incumbent if master.min_cost else self._best(problem, before_throughput_dive)
            start_counts = self._start_vector(master, start_plan)
            # the time left less a reserve for the bound: at 1,000 models a failed dive's MIP
            # fallback overran its limit by 3 s and the bound came after it
            mip_limit_s = deadline - time.perf_counter() - BOUND_RESERVE_SHARE * limit
            counts, _, _ = master.solve_mip(max(0.05, mip_limit_s), settings.seed, start_counts)
            progress.mip_s += time.perf_counter() - t0
            if master.mip_stopped_by_clock:  # not its node limit: the plan may depend on the clock
                progress.hit_time_limit = True
            if counts is not None:
                candidates.append(self._patterns(master, counts))
                progress.mip_value = self._evaluate(problem, candidates[-1])[0]
        # Phase D (min_cost, small fleets): neighbourhood search from the best plan so far
        incumbent = self._best(problem, candidates)
        if master.min_cost and incumbent is not None and len(index.models) <= POLISH_MAX_MODELS:
            t0 = time.perf_counter()
            self._report("polish: neighbourhood search")
            polished, progress.polish_improvements, cut_short = polish(
                problem, index, incumbent, list(pool), self._residual_generator(problem, pool, progress),
                deadline - BOUND_RESERVE_SHARE * limit, settings.seed)
            if cut_short:  # the clock changed the plan: say so
                progress.hit_time_limit = True
            progress.polish_s += time.perf_counter() - t0
            progress.polish_value = self._evaluate(problem, polished)[0]
            candidates.append(polished)
        # Phase E (min_cost, small pools, long time limits): a MIP over every pattern generated
        incumbent = self._best(problem, candidates)
        nodes = pool_mip_nodes(len(index.models), len(pool), settings.time_limit_s) if self.pool_mip else 0
        if master.min_cost and incumbent is not None and fair_share is None and nodes > 0:
            t0 = time.perf_counter()
            self._report(f"integer master over all {len(pool):,} patterns generated")
            whole = Master(problem, index)
            self._add(whole, problem, index, {}, list(pool))  # the pool holds the singletons too
            counts, _, _ = whole.solve_mip(max(0.05, deadline - time.perf_counter() - BOUND_RESERVE_SHARE * limit),
                                           settings.seed, max_nodes=nodes)
            if whole.mip_stopped_by_clock:  # not its node limit: the plan may depend on the clock
                progress.hit_time_limit = True
            if counts is not None:
                candidates.append(self._patterns(whole, counts))
                progress.pool_mip_value = self._evaluate(problem, candidates[-1])[0]
            progress.pool_mip_s += time.perf_counter() - t0
        if time.perf_counter() > deadline:
            progress.hit_time_limit = True
        best = self._best(problem, candidates, fair_share, maximize_share)
        if best is None and not maximize_share:
            best = self._fallback(problem, settings, progress, fair_share)
            if time.perf_counter() > deadline:
                progress.hit_time_limit = True
        self.patterns_seen = tuple(pool)  # every pattern generated (bench/bench_column_integrality.py)
        return best, proven_bound, converged

    def _throughput_dive(self, problem, index, master, lp, pool, progress, deadline, start=()):
        """max_throughput: the throughput dive from the root LP (solvers.colgen.throughput_dive),
        its rounds priced as `throughput_dive_settings` says; its plan (possibly empty). Its
        patterns join the pool, not the master: the integer master then searches as it did
        without the dive, from the same start, and the plan is the better of the two (with the
        dive's patterns and plan in it, the MIP ended elsewhere: 2 of 7 generated 50-100-model
        instances served less than without the dive)."""
        x = master.column_values(lp)
        support = master.shared_support(x)
        how = throughput_dive_settings(len(index.models))
        self._report(f"dive (throughput): {len(index.models)} models")
        t0 = time.perf_counter()

        def regenerate(rest, sub, columns, stop_at, hurry):
            self._report(f"dive (throughput): {len(rest.models)} of {len(index.models)} models with demand left")
            self._add(sub, problem, rest, pool, columns)
            self._generate(problem, rest, sub, pool, progress, stop_at, prove=False, warm=None,
                           max_iterations=how.iterations_per_round, fills_per_cycle=DIVE_FILLS_PER_CYCLE,
                           max_columns_per_type=how.columns_per_type)

        dived = throughput_dive(problem, index, support, regenerate, deadline, start)
        progress.dive_s += time.perf_counter() - t0
        progress.dive_rule = "throughput-" + DIVE_RULES[how]
        if time.perf_counter() >= deadline:  # the clock cut the dive's pricing short: say so
            progress.hit_time_limit = True
        if dived:
            progress.dive_value = self._evaluate(problem, dived)[0]
            for pc in dived:
                pool.setdefault(pc.pattern, None)
        return dived

    def _fallback(self, problem, settings, progress, fair_share):
        """The greedy packing baseline's plan (solvers.greedy_pack), when no phase left a plan:
        a dive that ran out of time on a large, tight fleet can end with none (generated 1,000
        models on 4,096 GPUs, seed 1, at 60 s), and the type-level warm start finds none where
        only sharing fits the inventory. 3-6 s at 1,000 models on 2 cores, so it may end past
        the time limit; the status says time_limit then."""
        from solvers.greedy_pack import GreedyPack

        self._report("no plan from the phases above: greedy packing")
        t0 = time.perf_counter()
        try:
            result = GreedyPack().solve(problem, settings)
        except Exception:  # a baseline failing must not stop the exact solver
            return None
        progress.fallback_s = time.perf_counter() - t0
        if not result.patterns:
            return None
        progress.fallback_value = self._evaluate(problem, result.patterns)[0]
        return self._best(problem, [result.patterns], fair_share)

    def _residual_generator(self, problem, pool, progress):
        """generate(rest, sub, columns, stop_at) for polish: the columns, then column
        generation on the residual master (disjoint fills, as in the dive)."""
        def generate(rest, sub, columns, stop_at):
            self._add(sub, problem, rest, pool, columns)
            if time.perf_counter() >= stop_at:
                progress.hit_time_limit = True
                return
            self._generate(problem, rest, sub, pool, progress, stop_at, prove=False, warm=None,
                           max_iterations=POLISH_ITERATIONS, fills_per_cycle=DIVE_FILLS_PER_CYCLE,
                           max_columns_per_type=CAREFUL_DIVE.columns_per_type)
        return generate

    def _result(self, problem, settings, start, best, proven_bound, converged, progress, bound_job=None) -> SolveResult:
        t0 = time.perf_counter()
        self._report("proven bound")
        if bound_job is not None:  # computed alongside the phases above
            found = bound_job.result()
            proven_bound = max(proven_bound, found) if math.isfinite(proven_bound) else found
        time_left_s = settings.time_limit_s - (t0 - start)
        if best is None:
            no_plan = math.inf if problem.objective == "min_cost" else -math.inf
            bound = self._final_bound(problem, proven_bound, no_plan, time_left_s, bound_job is None)
        else:
            value, served = self._evaluate(problem, best)
            bound = self._final_bound(problem, proven_bound, value, time_left_s, bound_job is None)
        progress.bound_s += time.perf_counter() - t0
        wall = time.perf_counter() - start
        stats = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in progress.__dict__.items()}
        if best is None:
            status = SolveStatus.TIME_LIMIT if progress.hit_time_limit else SolveStatus.INFEASIBLE
            return SolveResult(self.name, status, problem.objective, math.nan, bound, (), {}, wall,
                               message="no plan found over the generated patterns", stats=stats)
        gap = relative_gap(value, bound)
        if gap <= settings.gap_target:
            status = SolveStatus.OPTIMAL
        elif progress.hit_time_limit:
            status = SolveStatus.TIME_LIMIT
        else:
            status = SolveStatus.FEASIBLE
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

    def _generate(self, problem, index, master, pool, progress, stop_at, prove: bool, warm,
                  max_iterations: int = 400, thorough: bool = True, fills_per_cycle: int = 1,
                  max_columns_per_type: int = 12, tail_iterations: int = TAIL_ITERATIONS):
        """Column generation until greedy pricing finds no column (or the iteration cap / the
        clock stops it); with `prove`, the LP value goes to stats (not proven: the pricing
        is heuristic). Returns (LP, nan, converged): the proven bound comes from
        solvers.bounds, see `_final_bound`."""
        items = [it for it in type_items(problem, index) if master.gpus_left(it.type_index) >= 1]
        pricer = SharedPricer(problem, index, items)
        lp, converged = None, False
        history: list[float] = []
        for _ in range(max_iterations):
            if time.perf_counter() >= stop_at:
                progress.hit_time_limit = True
                break
            t0 = time.perf_counter()
            lp = master.solve_lp()
            progress.lp_s += time.perf_counter() - t0
            progress.iterations += 1
            if lp is None:
                break
            t0 = time.perf_counter()
            gpu_dual = lambda t, k: master.gpu_dual(t, k, lp.duals)  # noqa: E731
            found = pricer.price(lp.duals, gpu_dual, lp.duals.budget, master.min_cost,
                                 max_columns_per_type=max_columns_per_type, fills_per_cycle=fills_per_cycle)
            added = bool(found) and self._add(master, problem, index, pool, [c for _, c in found])
            if not added and thorough:  # the greedy found nothing: the DP looks harder
                found = pricer.price(lp.duals, gpu_dual, lp.duals.budget, master.min_cost, thorough=True)
                added = bool(found) and self._add(master, problem, index, pool, [c for _, c in found])
                progress.thorough_rounds += 1
            progress.pricing_s += time.perf_counter() - t0
            if not added:
                converged = True
                break
            history.append(lp.value)
            if prove:
                self._report(f"column generation: iteration {len(history)}, LP {lp.value:,.2f}, {len(master.columns):,} patterns")
            if len(history) > tail_iterations and abs(history[-1 - tail_iterations] - lp.value) <= TAIL_TOLERANCE * max(1.0, abs(lp.value)):
                progress.tailed_off += 1  # the LP has stopped moving: more columns are not worth the time
                break
        if lp is not None and not converged:  # the last columns were added after the last solve
            lp = master.solve_lp()
        if prove and lp is not None:
            progress.lp_value = lp.value
        return lp, math.nan, converged

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
    def _final_bound(problem: PlacementProblem, own_bound: float, value: float, time_left_s: float,
                     compute: bool = True) -> float:
        """The proven bound: solvers.bounds (unless `compute` is off: it is in `own_bound`
        already) and `own_bound`, never past the plan's own value; the bound's MIP gets the
        time left (at least BOUND_MIN_S)."""
        if problem.objective == "min_cost":
            computed = best_cost_bound(problem, time_limit_s=max(BOUND_MIN_S, time_left_s)) if compute else math.nan
            candidates = [b for b in (own_bound, computed) if math.isfinite(b)]
            return min(max(candidates), value) if candidates else math.nan
        candidates = [b for b in (own_bound, throughput_upper_bound(problem)) if math.isfinite(b)]
        return max(min(candidates), value) if candidates else math.nan

    @staticmethod
    def _start_vector(master: Master, incumbent) -> np.ndarray | None:
        if incumbent is None:
            return None
        where = {c.pattern: j for j, c in enumerate(master.columns)}
        counts = np.zeros(len(master.columns))
        for pc in incumbent:
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

    def _best(self, problem, candidates, fair_share=None, maximize_share=False):
        best, best_value = None, None
        for patterns in candidates:
            if not patterns or not self._feasible(problem, patterns):
                continue
            value, served = self._evaluate(problem, patterns)
            if maximize_share:
                value = fair_share_of(problem, served)
            elif fair_share is not None and fair_share_of(problem, served) < fair_share - 1e-9:
                continue
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
