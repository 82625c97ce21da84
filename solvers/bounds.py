"""Cheap proven bounds that hold for every plan, used by heuristics that prove nothing better."""

from __future__ import annotations

import math
import time

from planner.problem import PlacementProblem


def fluid_cost_bound(problem: PlacementProblem) -> float:
    """Lower bound on min_cost: each model's demand at the cheapest $/planned-req/s of any option.

    Sharing a GPU never beats a dedicated replica at its best batch in $/req/s (a member's
    share of a cycle serves no more per GPU-second than the model alone), and inventory
    only adds constraints, so no plan costs less.
    """
    rows = problem.candidates
    usd_per_rps = (rows.cost_per_hour_usd / rows.planned_rps).groupby(rows.model).min().to_dict()
    total = 0.0
    for info in problem.demanded_models:
        if info.name not in usd_per_rps:
            return math.nan
        total += info.demand_rps * float(usd_per_rps[info.name])
    return total


def throughput_upper_bound(problem: PlacementProblem) -> float:
    """Upper bound on max_throughput: the smaller of every model fully served (weighted) and
    the replica relaxation's LP (solvers.replica_relaxation.replica_throughput_bound)."""
    from solvers.replica_relaxation import replica_throughput_bound

    everything = sum(m.priority * m.demand_rps for m in problem.demanded_models)
    if problem.objective != "max_throughput":
        return everything
    relaxed = replica_throughput_bound(problem).value
    return min(everything, relaxed) if math.isfinite(relaxed) else everything


# The replica relaxation as a node-limited MIP (with SLO classes) where the instance is this
# small (quickstart: 0.05 s, 9.98 -> 10.37 against an optimum of 10.74); its MIP's root alone
# (cutting planes, no search) up to REPLICA_ROOT_MAX_OPTIONS (model, option) pairs, with SLO
# classes up to REPLICA_ROOT_CLASSES_MAX_OPTIONS; its LP above. Measured on 2 cores:
# 50 models (179 options): 85.91 -> 87.82 in 1.1 s with classes; 200 models (1,236):
# 1282.51 -> 1288.34 in 3.7 s without (20.7 s with); 500 models (alibaba-2023, 2,881): 8716.96
# -> 8731.35 but in 21 s, so LP only there.
REPLICA_MIP_MAX_OPTIONS = 150
REPLICA_ROOT_MAX_OPTIONS = 1500
REPLICA_ROOT_CLASSES_MAX_OPTIONS = 300
REPLICA_MIP_GUARD_S = 5.0
# Cycle bands (solvers.replica_relaxation.cycle_bands: a shared GPU's members take their
# points from cycles in its band only). On the MIP tier, bands of ratio 1.5: quickstart
# 10.37 -> 10.74, its optimum, in 0.4 s (ratio 1.3: 10.37; 1.2: 10.74 in 1.6 s; 1.1: 10.54,
# node-limited). Up to REPLICA_ROOT_CLASSES_MAX_OPTIONS also the LP with bands of ratio 1.1,
# which raises fleet-50x64 to 88.69 in 3.0 s, above its root's 87.82, on the bound's second
# thread (ratio 1.2: 88.33 in 0.8 s; 1.07: 88.85 in 6 s; 1.05: 89.03 in 10.8 s; 1.25-1.6:
# 87.03-88.11, the band edges matter). At 200 models the banded LP (ratio 1.5: 1,284.8 in 6 s)
# is below the root's 1,288.34. A banded LP cut short by the time limit gives no value.
REPLICA_MIP_BAND_RATIO = 1.5
REPLICA_LP_BAND_RATIO = 1.1


def option_count(problem: PlacementProblem) -> int:
    """(model, option) pairs of the demanded models: the size the bound tiers go by."""
    return sum(len(m.options) for m in problem.demanded_models)


def replica_tier(problem: PlacementProblem) -> str:
    """Which form of the replica relaxation best_cost_bound solves: "mip", "root" or "lp"
    (by option_count, see the constants above)."""
    options = option_count(problem)
    if options <= REPLICA_MIP_MAX_OPTIONS:
        return "mip"
    return "root" if options <= REPLICA_ROOT_MAX_OPTIONS else "lp"


def best_cost_bound(problem: PlacementProblem, time_limit_s: float = REPLICA_MIP_GUARD_S) -> float:
    """The best of the proven lower bounds on min_cost that need no search: fluid, compact LP
    (solvers.compact_bound) and the replica relaxation (solvers.replica_relaxation): its MIP
    on small instances, its MIP's root on mid-size ones, its LP above. `time_limit_s` guards
    the MIP (a root it cuts short gives the LP value)."""
    from solvers.compact_bound import compact_cost_bound
    from solvers.replica_relaxation import replica_cost_bound

    replica = math.nan
    started = time.perf_counter()
    if problem.objective == "min_cost":
        tier = replica_tier(problem)
        if tier == "mip":
            replica = replica_cost_bound(problem, integer=True, time_limit_s=time_limit_s,
                                         band_ratio=REPLICA_MIP_BAND_RATIO).value
        elif tier == "root":
            classes = option_count(problem) <= REPLICA_ROOT_CLASSES_MAX_OPTIONS
            replica = replica_cost_bound(problem, integer=True, root_only=True, time_limit_s=time_limit_s,
                                         slo_classes_on=classes).value
            if classes:
                # the time the root left (the limit covers both)
                left_s = time_limit_s - (time.perf_counter() - started)
                banded = replica_cost_bound(problem, band_ratio=REPLICA_LP_BAND_RATIO, time_limit_s=left_s).value
                replica = max(replica, banded) if math.isfinite(replica) else banded
        else:
            replica = replica_cost_bound(problem).value
    values = [b for b in (fluid_cost_bound(problem), compact_cost_bound(problem), replica) if math.isfinite(b)]
    return max(values) if values else math.nan
