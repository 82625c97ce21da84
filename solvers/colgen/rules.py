"""Which phase of colgen runs, and with which settings: rules on the input (model count,
time limit, pool size), never on the clock, so the same input gives the same plan. Each
setting says what was measured for it (2-core machine); solvers.colgen.solver applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DiveSettings:
    round_up_share: float  # share of the LP's fractional columns rounded up when none is whole
    iterations_per_round: int  # column generation iterations on each residual master
    columns_per_type: int  # columns residual pricing keeps per GPU type and iteration
    disjoint_round_ups: bool = False  # a round rounds up only columns sharing no model (dive.disjoint_by_value)
    first_round_dedicated_only: bool = False  # the first round fixes dedicated columns only
    # column generation iterations in the dive's second round, the first residual one (0: as
    # the others), where the LP sees the leftovers of the GPUs the first round fixed whole
    first_residual_iterations: int = 0


# Which dive: a rule on the input (model count, time limit per model), not on the clock, so
# the same input gives the same plan. Measured on 2 cores (DIVE_FILLS_PER_CYCLE = 8):
# - 1,000 models at 60 s: 40 columns a type $7,652 in 32 s; 60 $7,596; 100 $7,507;
#   120 $7,482 in 44 s; 200 ran into the dive's hurry rule. Fewer columns and more
#   iterations were worse (24 x 3: $7,685; 16 x 4: $7,708): the disjoint fills of one cycle
#   target are a packing of the leftovers only when most of them are kept.
# - alibaba-2023 (500 models): 40 columns $9,045; 80 $9,022; 120 $8,960.
# - 200 models (careful dive): 40 columns $1,339.87; 80 $1,351.76; 120 $1,352.16.
CAREFUL_DIVE = DiveSettings(0.5, 4, 40)  # up to CAREFUL_DIVE_MAX_MODELS models
CAREFUL_DIVE_MAX_MODELS = 400
# The careful dive with disjoint round-ups, where no polish follows (above POLISH_MAX_MODELS)
# and the time limit gives DISJOINT_DIVE_S_PER_MODEL a model (it takes more rounds).
# Measured on 2 cores, plan $/h (default dive -> disjoint): generated 200 models on 512 GPUs
# at 10 s, seeds 1-9: 915.55 -> 910.43, 2493.84 -> 2481.55, 1002.63 -> 997.51,
# 915.03 -> 904.79, 1510.09 -> 1504.97, 1816.27 -> 1805.67, 1257.35 -> 1254.27,
# 526.69 -> 508.33, 1934.49 -> 1913.29 (0.25-3.5% cheaper, 3-6 s); fleet-200x512 the same
# $1,339.87. 400 models at 20 s: 1835.78 -> 1819.70, 1867.32 -> 1805.87 (14 s); at 10 s,
# cut short by the clock either way, worse (1909.20 -> 1945.04), hence the time rule.
# Where polish follows (50-100 models), polish from the default dive's plan ended as cheap
# or cheaper on 5 of 7 instances (fleet-50x64: $100.93 against $102.13), so it stays there.
CAREFUL_DISJOINT_DIVE = replace(CAREFUL_DIVE, disjoint_round_ups=True)
DISJOINT_DIVE_S_PER_MODEL = 0.05
# The fast dives price their second round (the first whose LP sees the leftovers of the GPUs
# the first round fixed whole) 6 times, the other rounds twice: bench/bench_first_residual.py
# (reports/first_residual.md). Not the careful dive (4 a round; 8 in the second round):
# fleet-200x512 and generated 200 models (seeds 1-3) at 10 s, 400 models (seeds 1-2) at 20 s,
# the same plans on 3, 0.2% and 0.3% cheaper on 2, 0.7% dearer on 1.
FAST_DIVE = DiveSettings(1.0, 2, 120, first_residual_iterations=6)  # above, when the time limit gives FAST_DIVE_S_PER_MODEL a model
FAST_DIVE_S_PER_MODEL = 0.05
HASTY_DIVE = DiveSettings(1.0, 1, 120)  # above, with less time (1,000 models at 30 s: $7,688 in 20 s)
# The fast dive with disjoint round-ups, above CAREFUL_DIVE_MAX_MODELS when the time limit
# gives FAST_DISJOINT_S_PER_MODEL a model. Measured on 2 cores (fast -> fast disjoint):
# fleet-1000x4096 $7,481.66 in 44 s -> $7,442.34 in 66.5 s (limit 400 s); at 60 s the extra
# rounds ran into the dive's hurry rule ($7,832.74, time_limit), hence the time rule;
# alibaba-2023 (500 models, 60 s) $8,960.20 in 6.7 s -> $8,930.50 in 10.2 s. The careful dive
# with disjoint round-ups at 1,000 models: $7,450.89 in 97.6 s.
FAST_DISJOINT_DIVE = replace(FAST_DIVE, disjoint_round_ups=True)
FAST_DISJOINT_S_PER_MODEL = 0.1
# A second dive from the same LP, whose first round fixes dedicated columns only (the dive's
# plan moves by about 1% either way with such changes), where the careful disjoint dive runs
# and the time limit gives PORTFOLIO_S_PER_MODEL a model; the cheaper plan is kept.
# Measured (reports/dive_rules.md, "Portfolio"): 200 models at 30 s, 0.2-1.2% cheaper on 5 of
# 10 and the same on 5, 3-5 s more; 400 models at 60 s, the same plans on 3 of 3.
SECOND_DIVE = replace(CAREFUL_DISJOINT_DIVE, first_round_dedicated_only=True)
PORTFOLIO_S_PER_MODEL = 0.15
DIVE_RULES = {CAREFUL_DIVE: "careful", CAREFUL_DISJOINT_DIVE: "careful-disjoint", FAST_DIVE: "fast",
              FAST_DISJOINT_DIVE: "fast-disjoint", HASTY_DIVE: "hasty", SECOND_DIVE: "dedicated-first"}
# The throughput dive (max_throughput without a fairness option, solvers.colgen.throughput_dive)
# prices its rounds like the careful dive up to CAREFUL_DIVE_MAX_MODELS models and like the fast
# dive above (iterations a round, columns a type; its rounding is its own). Measured on 2 cores
# (fleet-1000x4096 at 60 s, budgets $2,000 and $5,000/h: careful 0.54% and 0.24% from the bound
# but 79 s of dive at $5,000; fast 0.46% and 0.22%).
MIP_POLISH_MAX_COLUMNS = 1000
# Fairness (solvers.colgen.fair_share): stage 1 until FAIR_STAGE_ONE_SHARE of the time limit,
# the max-share master and its MIP first (FAIR_MAX_SHARE_SHARE, up to FAIR_MIP_MAX_MODELS
# models), then the share search: LP costs (FAIR_LP_ITERATIONS pricing rounds a share after
# the first), then one or two min_cost plans, each with an equal part of stage 1's time as
# its time limit. Stage 2 (the throughput dive from stage 1's plan) gets the rest: the fair
# plan spends most of the budget, so it has little left to place (fleet-200x512 at $740/h:
# 0.3 s).
FAIR_STAGE_ONE_SHARE = 0.8
FAIR_MIP_MAX_MODELS = 20
FAIR_MAX_SHARE_SHARE = 0.15
FAIR_LP_ITERATIONS = 5
# A second min_cost plan, aimed with the overshoot the first one measured, where the first
# costs more than the budget and the time limit gives FAIR_SECOND_PLAN_S_PER_MODEL a model
FAIR_SECOND_PLAN_S_PER_MODEL = 0.05
FAIR_MAX_PLANS = 6
# The share repair (a MIP over the plan's patterns and the singletons for the largest smallest
# share, from the trimmed plan), up to FAIR_REPAIR_MAX_MODELS models where a plan's part of the
# time gives FAIR_REPAIR_S_PER_MODEL a model: 0.2-0.8 s at 50 models (fleet-50x64 at $55/h and
# 10 s: 30.6% -> 32.1% for every model). At 200 models it took 8-10 s a plan (its root alone
# 3.6 s) and did not raise the share (fleet-200x512 at $740 and $1,140/h, 60 s).
FAIR_REPAIR_NODES = 300
FAIR_REPAIR_MAX_MODELS = 100
FAIR_REPAIR_S_PER_MODEL = 0.05
# The proven fair-share bound from the stronger tiers of solvers.bounds.best_cost_bound (the
# replica relaxation's MIP or root), where the time limit gives FAIR_STRONG_BOUND_S_PER_MODEL
# a model: 2-4 s an evaluation at 50 and 200 models. Measured on 2 cores (replica LP -> with
# 3 evaluations): fleet-50x64 at $55/h 57.1% -> 52.4% (10 s), at $85/h 98.7% -> 96.8% (12 s);
# fleet-200x512 at $740/h 61.8% -> 61.3% (9 s). At 1,000 models the stronger tier is the LP.
FAIR_STRONG_BOUND_EVALUATIONS = 3
FAIR_STRONG_BOUND_S_PER_MODEL = 0.3
FAIR_PLAN_MIN_S = 10.0  # a 50-model plan of the floors: 4-10 s of work (integer master and polish)
DIVE_DEADLINE_SHARE = 0.9  # of the time limit; the bound (about 1.5 s at 1,000 models) comes after
DIVE_FILLS_PER_CYCLE = 8
BOUND_RESERVE_SHARE = 0.05  # of the time limit, kept from the integer master for the bound
BOUND_MIN_S = 0.5  # the bound's MIP (solvers.bounds) gets the solve's time left, at least this
POLISH_MAX_MODELS = 100  # neighbourhood search (solvers.colgen.polish) after the integer master up to this
POLISH_ITERATIONS = 2  # column generation iterations on each neighbourhood's residual master
# The pool MIP: after polish, HiGHS's MIP over every pattern the solve generated (the main
# master's and every residual master's, about 2,400-3,100 at 50 models against 600 in the main
# master), from scratch, where the pool has at most POOL_MIP_MAX_COLUMNS patterns and the time
# limit gives POOL_MIP_S_PER_MODEL a model; POOL_MIP_NODES_PER_S nodes per second of the limit
# (a work limit: the same input, the same plan). From scratch, because HiGHS (1.16 as 1.x
# before) given a start with presolve on reports an objective it did not reach and hands the
# start back (fleet-200x512: "1,316.06", returned 1,339.87), and with presolve off searches
# too slowly to find these plans. Measured on 2 cores, plan from colgen's earlier phases ->
# MIP over its pool (bench/bench_pool_mip.py, reports/pool_mip.md).
POOL_MIP_MAX_COLUMNS = 3500  # 100 models (4,100-5,500 patterns): worse than the plan after 60 s
POOL_MIP_S_PER_MODEL = 1.0
POOL_MIP_NODES_PER_S = 20
TAIL_ITERATIONS = 10  # stop column generation when the LP moved less than
TAIL_TOLERANCE = 1e-3  # this share over that many iterations (tailing off)


def dive_settings(models: int, time_limit_s: float) -> DiveSettings:
    """Which dive (a rule on the input, not on the clock, so the same input gives the same
    plan): careful where the instance is small enough, with disjoint round-ups where no
    polish follows and the time limit allows; fast above (with disjoint round-ups when the
    time limit is long for the size), hasty when it is short."""
    if models <= CAREFUL_DIVE_MAX_MODELS:
        if models > POLISH_MAX_MODELS and time_limit_s >= DISJOINT_DIVE_S_PER_MODEL * models:
            return CAREFUL_DISJOINT_DIVE
        return CAREFUL_DIVE
    if time_limit_s >= FAST_DISJOINT_S_PER_MODEL * models:
        return FAST_DISJOINT_DIVE
    return FAST_DIVE if time_limit_s >= FAST_DIVE_S_PER_MODEL * models else HASTY_DIVE


def throughput_dive_settings(models: int) -> DiveSettings:
    """How the throughput dive prices its rounds: CAREFUL_DIVE up to CAREFUL_DIVE_MAX_MODELS
    models, FAST_DIVE above (only their iterations a round and columns a type)."""
    return CAREFUL_DIVE if models <= CAREFUL_DIVE_MAX_MODELS else FAST_DIVE


def pool_mip_nodes(models: int, patterns: int, time_limit_s: float) -> int:
    """Node limit of the pool MIP (0: none), a rule on the input and the time limit."""
    if patterns > POOL_MIP_MAX_COLUMNS or time_limit_s < POOL_MIP_S_PER_MODEL * models:
        return 0
    return int(POOL_MIP_NODES_PER_S * time_limit_s)


def dive_portfolio(models: int, time_limit_s: float) -> list[DiveSettings]:
    """The dives to run from the root LP (the cheapest plan wins): `dive_settings`'s, then
    SECOND_DIVE where that is the careful disjoint dive and the time limit allows."""
    first = dive_settings(models, time_limit_s)
    if first is CAREFUL_DISJOINT_DIVE and time_limit_s >= PORTFOLIO_S_PER_MODEL * models:
        return [first, SECOND_DIVE]
    return [first]


def fair_repair_nodes(models: int, plan_time_limit_s: float) -> int:
    """Node limit of the share repair after each fair-share plan (solvers.colgen.fair_share.
    repair_share; 0: none): up to FAIR_REPAIR_MAX_MODELS models, where the plan's part of the
    time gives FAIR_REPAIR_S_PER_MODEL a model."""
    if models > FAIR_REPAIR_MAX_MODELS or plan_time_limit_s < FAIR_REPAIR_S_PER_MODEL * models:
        return 0
    return FAIR_REPAIR_NODES


def fair_bound_strong_evaluations(models: int, time_limit_s: float) -> int:
    """How many times the proven fair-share bound may ask solvers.bounds.best_cost_bound
    (solvers.colgen.fair_share.fair_share_upper_bound; 0: the replica LP alone): where the
    time limit gives FAIR_STRONG_BOUND_S_PER_MODEL a model."""
    return FAIR_STRONG_BOUND_EVALUATIONS if time_limit_s >= FAIR_STRONG_BOUND_S_PER_MODEL * models else 0


def fair_share_plans(models: int, time_limit_s: float) -> int:
    """How many min_cost plans the fair-share search may make (solvers.colgen.fair_share):
    two where the time limit gives FAIR_SECOND_PLAN_S_PER_MODEL a model, more (up to
    FAIR_MAX_PLANS) where stage 1 gives each FAIR_PLAN_MIN_S and DISJOINT_DIVE_S_PER_MODEL a
    model (so each plan's rules still pick the disjoint dive from 100 models)."""
    base = 2 if time_limit_s >= FAIR_SECOND_PLAN_S_PER_MODEL * models else 1
    more = int(FAIR_STAGE_ONE_SHARE * time_limit_s / max(FAIR_PLAN_MIN_S, DISJOINT_DIVE_S_PER_MODEL * models))
    return max(base, min(FAIR_MAX_PLANS, more))
