"""Batching and routing policies: pure functions of their inputs (STYLE.md, "Policy apart
from mechanism").

The simulator (planner.simulator) and the torch runtime are mechanisms that apply these
decisions; both call the same functions, so what the simulator measures is what the
runtime does. The scalar functions below use only ints, floats and indexable sequences,
so the simulator compiles them with numba unchanged (`numba.njit(next_batch_size)`).
"""

from __future__ import annotations

import numpy as np

NO_REPLICA = -1  # route(): the request is rejected at the router (admission control)
NO_MEMBER = -1  # next_member(): no member has a waiting request


def next_batch_size(queue_len: int, max_batch: int) -> int:
    """Dynamic batching: when a replica's turn comes it takes everything waiting, up to its
    batch size. Never waits for a batch to fill (an idle GPU starts on the first request)."""
    if queue_len <= 0:
        return 0
    return queue_len if queue_len < max_batch else max_batch


def next_member(turn: int, has_work) -> int:
    """Round robin over the models sharing one GPU: starting from `turn` (the member after
    the one that ran last), the first member with a waiting request, or NO_MEMBER.

    Work-conserving: a member with an empty queue is skipped and costs no time, so a cycle
    takes the sum of the batch times of the members that have work (at most D, the sum of
    all members' batch times, when every queue is full)."""
    count = len(has_work)
    for step in range(count):
        member = (turn + step) % count
        if has_work[member]:
            return member
    return NO_MEMBER


def route(cumulative_shares, u: float) -> int:
    """The replica a request goes to, for a uniform draw `u` in [0, 1).

    `cumulative_shares[i]` is the sum of the shares of replicas 0..i (a plan's routing
    fractions, scaled by the admitted share of the traffic). A draw at or above the last
    value is rejected (NO_REPLICA): that is how a max_throughput plan sheds the demand it
    does not serve."""
    lo = 0
    hi = len(cumulative_shares)
    while lo < hi:  # first index with cumulative_shares[index] > u
        mid = (lo + hi) // 2
        if cumulative_shares[mid] > u:
            hi = mid
        else:
            lo = mid + 1
    return lo if lo < len(cumulative_shares) else NO_REPLICA


def route_many(cumulative_shares: np.ndarray, u: np.ndarray) -> np.ndarray:
    """`route` for an array of draws at once (same answers, vectorised)."""
    index = np.searchsorted(np.asarray(cumulative_shares, dtype=float), u, side="right")
    return np.where(index < len(cumulative_shares), index, NO_REPLICA).astype(np.int64)


def cumulative_shares(shares: list[float] | np.ndarray, admitted_share: float = 1.0) -> np.ndarray:
    """Cumulative routing shares for `route`: the shares normalised to sum to
    `admitted_share` (<= 1), the rest of the traffic rejected."""
    weights = np.asarray(shares, dtype=float)
    total = float(weights.sum())
    if total <= 0 or admitted_share <= 0:
        return np.zeros(0)
    cumulative = np.cumsum(weights / total) * min(admitted_share, 1.0)
    if admitted_share >= 1.0:
        cumulative[-1] = 1.0 + 1e-12  # never reject for rounding when everything is admitted
    return cumulative
