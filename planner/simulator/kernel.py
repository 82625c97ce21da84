"""The compiled hot loops (numba, cache=True): group requests by replica, and serve them.

`serve_window` simulates every server over one window of time. A server (one GPU, or one
tensor-parallel group) keeps a FIFO queue per member replica and runs round robin
(`policies.next_member`): when a member's turn comes it takes up to its batch size of the
requests waiting (`policies.next_batch_size`) and runs them as one batch, which takes the
profile's time for that many requests; then the next member with work goes. An idle
server starts at the next arrival.

Saturation: queues are unbounded by default; a server that cannot keep up builds a
backlog and the latency of every later request grows. With `max_queue_ms` > 0, a request
that has waited longer than that when its replica's turn comes is dropped instead (it
counts as missed). Batches that start before the window's end run to completion; the
requests still queued at the end of a window stay queued into the next one, so the
answer does not depend on how a run is cut into windows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from planner import policies

LEFT_IN_QUEUE = np.nan  # latency marker: still queued when the window ended
DROPPED = np.inf  # latency marker: dropped after waiting more than max_queue_ms

_next_batch_size = njit(cache=True)(policies.next_batch_size)
_next_member = njit(cache=True)(policies.next_member)


@njit(cache=True)
def group_by_replica(times_ms, replica, replica_count):
    """Stable counting sort: requests grouped by replica, in arrival order inside each group.

    Returns (times grouped, start per replica + 1). Requests with replica < 0 (rejected at
    the router) are left out; `times_ms` must be sorted within each replica."""
    counts = np.zeros(replica_count + 1, dtype=np.int64)
    for i in range(len(replica)):
        if replica[i] >= 0:
            counts[replica[i] + 1] += 1
    start = np.cumsum(counts)
    fill = start[:-1].copy()
    grouped = np.empty(start[-1], dtype=np.float64)
    for i in range(len(replica)):
        r = replica[i]
        if r >= 0:
            grouped[fill[r]] = times_ms[i]
            fill[r] += 1
    return grouped, start


@njit(cache=True)
def serve_window(times_ms, start, server_first_member, server_members, replica_batch, batch_ms_start, batch_ms,
                 server_free_ms, server_turn, window_end_ms, horizon_ms, max_queue_ms, latency_ms, server_busy_ms):
    """Serve every server until its next batch would start at or after `window_end_ms`.

    times_ms/start: arrival times grouped by replica (see group_by_replica).
    server_free_ms, server_turn: per server state carried between windows (updated here).
    latency_ms (out, aligned with times_ms): latency of each finished request, DROPPED or
    LEFT_IN_QUEUE. server_busy_ms (in/out): busy time inside [0, horizon_ms], added to.
    """
    server_count = len(server_first_member) - 1
    for s in range(server_count):
        lo = server_first_member[s]
        k = server_first_member[s + 1] - lo
        head = np.empty(k, dtype=np.int64)
        end = np.empty(k, dtype=np.int64)
        has_work = np.zeros(k, dtype=np.bool_)
        for j in range(k):
            r = server_members[lo + j]
            head[j] = start[r]
            end[j] = start[r + 1]
        t = server_free_ms[s]
        turn = server_turn[s]
        busy = 0.0
        while t < window_end_ms:
            for j in range(k):
                h = head[j]
                if max_queue_ms > 0.0:
                    while h < end[j] and t - times_ms[h] > max_queue_ms:
                        latency_ms[h] = np.inf
                        h += 1
                    head[j] = h
                has_work[j] = h < end[j] and times_ms[h] <= t
            j = _next_member(turn, has_work)
            if j < 0:  # idle: jump to the next arrival on any member
                nxt = np.inf
                for q in range(k):
                    if head[q] < end[q] and times_ms[head[q]] < nxt:
                        nxt = times_ms[head[q]]
                if nxt == np.inf:
                    break  # nothing left in this window; the server stays free from t
                t = nxt
                continue
            r = server_members[lo + j]
            h = head[j]
            waiting = 0
            cap = replica_batch[r]
            while h + waiting < end[j] and waiting < cap and times_ms[h + waiting] <= t:
                waiting += 1
            n = _next_batch_size(waiting, cap)
            done = t + batch_ms[batch_ms_start[r] + n - 1]
            for i in range(h, h + n):
                latency_ms[i] = done - times_ms[i]
            if t < horizon_ms:
                busy += (done if done < horizon_ms else horizon_ms) - t
            head[j] = h + n
            t = done
            turn = (j + 1) % k
        for j in range(k):
            for i in range(head[j], end[j]):
                latency_ms[i] = np.nan
        server_free_ms[s] = t
        server_turn[s] = turn
        server_busy_ms[s] += busy
