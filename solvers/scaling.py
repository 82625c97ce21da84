"""Integer scaling for CP-SAT, in one place: rates, costs and weights become integers here
and are converted back here. Capacities round down and demands round up, so an integer
solution is always feasible for the real numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.problem import PlacementProblem

COST_UNITS_PER_USD = 1_000_000  # micro-USD per hour
WEIGHT_UNITS = 100  # priority 1.0 -> 100
SHARE_UNITS = 10_000  # fairness share in basis points
_MAX_OBJECTIVE_MAGNITUDE = 1e15


@dataclass(frozen=True)
class Scaling:
    rate_units_per_rps: float

    def rate_down(self, rps: float) -> int:
        return int(math.floor(rps * self.rate_units_per_rps + 1e-9))

    def rate_up(self, rps: float) -> int:
        return int(math.ceil(rps * self.rate_units_per_rps - 1e-9))

    def rate_to_rps(self, units: float) -> float:
        return units / self.rate_units_per_rps

    @staticmethod
    def cost(usd_per_hour: float) -> int:
        return int(round(usd_per_hour * COST_UNITS_PER_USD))

    @staticmethod
    def cost_to_usd(units: float) -> float:
        return units / COST_UNITS_PER_USD

    @staticmethod
    def weight(priority: float) -> int:
        return max(1, int(round(priority * WEIGHT_UNITS)))


def choose_scaling(problem: PlacementProblem) -> Scaling:
    """Milli-req/s unless the weighted total demand would make objective sums too large."""
    units = 1000.0
    total = sum(m.demand_rps * max(1, round(m.priority * WEIGHT_UNITS)) for m in problem.models) or 1.0
    while total * units > _MAX_OBJECTIVE_MAGNITUDE and units > 1e-3:
        units /= 10.0
    return Scaling(units)
