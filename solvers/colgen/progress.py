"""What a colgen solve did: phase times and values, reported in SolveResult.stats."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Progress:
    iterations: int = 0
    columns: int = 0
    lp_value: float = math.nan
    lp_s: float = 0.0
    pricing_s: float = 0.0
    bound_s: float = 0.0
    mip_s: float = 0.0
    dive_s: float = 0.0
    dive_value: float = math.nan
    mip_value: float = math.nan
    polish_s: float = 0.0
    polish_value: float = math.nan
    polish_improvements: int = 0
    fair_share: float = math.nan  # fairness: the share of its demand every model gets (stage 1)
    fair_share_bound: float = math.nan  # fairness: no plan within the budget gives every model more (proven)
    share_lp: float = math.nan  # fairness: the max-share master's LP share (the search's top)
    fair_attempts: int = 0  # fairness: min_cost plans the share search made
    hit_time_limit: bool = False
    tailed_off: int = 0
    thorough_rounds: int = 0
    warm_value: float = math.nan
    dive_rule: str = ""
    pool_mip_s: float = 0.0
    pool_mip_value: float = math.nan
    fallback_s: float = 0.0  # the greedy packing baseline, when no phase left a plan (_fallback)
    fallback_value: float = math.nan
