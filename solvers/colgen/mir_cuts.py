"""Mixed-integer rounding (MIR) cuts on the master's demand rows.

A demand row sum_p a_p x_p >= d (a_p = a pattern's coverage of the model, x_p whole GPUs)
divided by any delta > 0 and rounded gives, with f = frac(d / delta) > 0,

    sum_p g(a_p) x_p >= ceil(d / delta),   g(a) = floor(a / delta) + min(frac(a / delta) / f, 1),

valid for every integer plan (the MIR inequality of a >= row with integer variables).
g is a function of the coverage alone, so every pattern, generated now or later, has its
coefficient, and pricing could value a member by it. g is continuous,
non-decreasing and saturates on [n delta + f delta, (n + 1) delta]: a member covering a
model's "tail" f x delta earns the cut's dual in full, as a whole replica does. That is
what the LP without cuts misses: it covers a demand of 2.3 replicas with 2.3 GPUs, where
every plan needs 3 or 2 and a shared GPU for the 0.3.

Measured on the 13,000 patterns one colgen solve generated for fleet-200x512: the pattern
LP 1,302.05 -> 1,320.83 after 10 rounds of these cuts (one per model and round), where
HiGHS's MIP over the same patterns proves 1,320.93 after 120 s: the integrality the pattern
LP misses is per-model rounding (bench/bench_column_integrality.py reports it per fleet).

Used by that benchmark only. Tried in colgen itself (session 6, not kept): cut rounds on the
whole problem's master with pricing that valued members by the cuts' duals raised its LP
from 1,303.8 to 1,321.1 at 200 models (5 rounds), but the dive's plans did not follow
($1,336.79-1,352.16 against $1,339.87 without; at 1,000 models $7,646 against $7,481.66, the
longer column generation leaving the dive less time). The LP with cuts is not a proven
bound either: pricing is heuristic, and a Lagrangian bound from its duals needs the best
reduced cost per GPU type to within about 0.1% of a GPU's price, which a relaxed pricing
(memory DP, share priced by a multiplier) missed by 10-50% (a few large models per GPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

MIR_MIN_VIOLATION = 1e-3  # a cut is added only when the LP violates it by this much
MIR_MIN_FRACTION = 1e-3  # f = frac(d / delta) below this (or above 1 - this): no cut
MIR_DIVISORS = (1, 2, 3)  # delta = a support column's coverage / each of these


@numba.njit(cache=True)
def mir_coefficient(coverage: float, delta: float, fraction: float) -> float:
    """g(a) = floor(a / delta) + min(frac(a / delta) / f, 1): a pattern's coefficient in a
    cut with divisor `delta` and right-hand side fraction `fraction` (f)."""
    q = coverage / delta
    whole = math.floor(q + 1e-12)
    part = q - whole
    if part < 0.0:
        part = 0.0
    return whole + min(part / fraction, 1.0)


@dataclass(frozen=True)
class MirCut:
    """sum_p g(coverage of `model`) x_p >= rhs, g as in `mir_coefficient`."""

    model: int  # index into the master's Index.models
    delta: float
    fraction: float
    rhs: float

    def coefficient(self, coverage: float) -> float:
        return float(mir_coefficient(float(coverage), self.delta, self.fraction))


def separate(demand_rps: np.ndarray, support: list[list[tuple[float, float]]], known: set) -> list[MirCut]:
    """The most violated cut per model, from the LP's support: `support[i]` lists
    (coverage, LP value) of the columns that cover model i with a positive value. Divisors
    are the support's coverages (and fractions of them, MIR_DIVISORS); cuts in `known`
    (by (model, delta)) are not made again."""
    cuts = []
    for i, used in enumerate(support):
        if not used:
            continue
        d = float(demand_rps[i])
        best: tuple[float, MirCut] | None = None
        for a in sorted({round(cov, 9) for cov, _ in used}):
            for divisor in MIR_DIVISORS:
                delta = a / divisor
                if delta <= 0.0 or (i, delta) in known:
                    continue
                ratio = d / delta
                fraction = ratio - math.floor(ratio)
                if fraction < MIR_MIN_FRACTION or fraction > 1.0 - MIR_MIN_FRACTION:
                    continue
                rhs = float(math.ceil(ratio))
                lhs = sum(float(mir_coefficient(cov, delta, fraction)) * x for cov, x in used)
                violation = rhs - lhs
                if violation > MIR_MIN_VIOLATION and (best is None or violation > best[0] + 1e-12):
                    best = (violation, MirCut(i, delta, fraction, rhs))
        if best is not None:
            cuts.append(best[1])
    return cuts
