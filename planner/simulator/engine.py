"""The simulation loop: arrivals -> routing -> per-server round robin with dynamic batching
-> per-model statistics, one window of time at a time (bounded memory, progress).

Requests arrive during [0, duration_s). After that no new request arrives and the queues
drain, so a request that arrived near the end is judged by its real latency instead of
being cut off; `completed_rps` counts only what finished before the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from planner.plan import Plan
from planner.policies import route_many
from planner.scenario import Scenario
from planner.simulator.arrivals import ArrivalStream, GammaArrivals, Trace, TraceArrivals
from planner.simulator.fleet import Fleet, build_fleet
from planner.simulator.kernel import group_by_replica, serve_window
from planner.simulator.results import GpuResult, ModelResult, SimulationResult

Progress = Callable[[float, float], None]  # (simulated ms done, total ms)


@dataclass(frozen=True)
class SimulationSettings:
    duration_s: float = 60.0
    seed: int = 0
    trace: Trace | None = None  # replay this trace's gaps instead of Gamma arrivals
    max_queue_ms: float | None = None  # None: unbounded queues; else drop after waiting this long
    window_requests: int = 2_000_000  # about this many arrivals per window (memory, progress)


@dataclass
class _ModelTally:
    offered: int = 0
    rejected: int = 0
    dropped: int = 0
    finished: int = 0
    completed: int = 0
    within_slo: int = 0
    latency_sum_ms: float = 0.0
    latencies: list[np.ndarray] = field(default_factory=list)


def arrival_streams(scenario: Scenario, fleet: Fleet, settings: SimulationSettings) -> list[list[ArrivalStream]]:
    """Per model (fleet order), one stream per demand entry with a positive rate, each
    with its own Generator derived from (seed, model, entry)."""
    streams: list[list[ArrivalStream]] = [[] for _ in fleet.model_names]
    index = {name: i for i, name in enumerate(fleet.model_names)}
    for e, entry in enumerate(scenario.demand):
        if entry.rate_rps <= 0 or entry.model not in index:
            continue
        m = index[entry.model]
        rng = np.random.default_rng([settings.seed, m, e, 0])
        if settings.trace is not None:
            streams[m].append(TraceArrivals(settings.trace, entry.rate_rps, rng))
        else:
            streams[m].append(GammaArrivals(entry.rate_rps, entry.cv, rng))
    return streams


def simulate_plan(scenario: Scenario, plan: Plan, settings: SimulationSettings | None = None,
                  progress: Progress | None = None) -> SimulationResult:
    """Simulate `plan` under the scenario's demand (or a trace scaled to it)."""
    settings = settings or SimulationSettings()
    fleet = build_fleet(scenario, plan)
    return run_simulation(fleet, arrival_streams(scenario, fleet, settings), settings, progress)


def run_simulation(fleet: Fleet, streams: list[list[ArrivalStream]], settings: SimulationSettings,
                   progress: Progress | None = None) -> SimulationResult:
    started = time.perf_counter()
    horizon_ms = float(settings.duration_s) * 1000.0
    total_rate = sum(s.rate_rps for per_model in streams for s in per_model)  # type: ignore[attr-defined]
    window_ms = max(settings.window_requests / max(total_rate, 1e-9) * 1000.0, 1.0)
    max_queue_ms = float(settings.max_queue_ms or 0.0)
    route_rngs = [np.random.default_rng([settings.seed, m, 1 << 20]) for m in range(len(fleet.model_names))]
    tallies = [_ModelTally() for _ in fleet.model_names]
    server_free_ms = np.zeros(fleet.server_count)
    server_turn = np.zeros(fleet.server_count, dtype=np.int64)
    server_busy_ms = np.zeros(fleet.server_count)
    left_times = np.zeros(0)
    left_replicas = np.zeros(0, dtype=np.int64)

    window_start = 0.0
    while True:
        draining = window_start >= horizon_ms
        window_end = np.inf if draining else min(window_start + window_ms, horizon_ms)
        times_parts, replica_parts = [left_times], [left_replicas]
        if not draining:
            for m, per_model in enumerate(streams):
                times, replicas = _arrivals_and_routes(fleet, m, per_model, route_rngs[m], window_end, tallies[m])
                times_parts.append(times)
                replica_parts.append(replicas)
        grouped, start = group_by_replica(np.concatenate(times_parts), np.concatenate(replica_parts),
                                          fleet.replica_count)
        latency = np.empty(len(grouped))
        serve_window(grouped, start, fleet.server_first_member, fleet.server_members, fleet.replica_batch,
                     fleet.batch_ms_start, fleet.batch_ms, server_free_ms, server_turn, window_end, horizon_ms,
                     max_queue_ms, latency, server_busy_ms)
        _tally_window(fleet, grouped, start, latency, horizon_ms, tallies)
        waiting = np.isnan(latency)
        left_times = grouped[waiting]
        left_replicas = np.repeat(np.arange(fleet.replica_count, dtype=np.int64), np.diff(start))[waiting]
        if progress is not None:
            progress(min(window_end, horizon_ms), horizon_ms)
        if draining:
            break
        window_start = window_end

    return _results(fleet, tallies, server_busy_ms, settings, horizon_ms, time.perf_counter() - started)


def _arrivals_and_routes(fleet: Fleet, m: int, streams: list[ArrivalStream], rng: np.random.Generator,
                         window_end: float, tally: _ModelTally) -> tuple[np.ndarray, np.ndarray]:
    parts = [s.take_until(window_end) for s in streams]
    if not parts:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    times = parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts), kind="stable")
    tally.offered += len(times)
    route = fleet.routes[m]
    if len(route) == 0:
        tally.rejected += len(times)
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    if len(route) == 1 and route[0] > 1.0:  # one replica, everything admitted: no draw needed
        replicas = np.full(len(times), fleet.model_first_replica[m], dtype=np.int64)
    else:
        index = route_many(route, rng.random(len(times)))
        rejected = index < 0
        tally.rejected += int(rejected.sum())
        replicas = np.where(rejected, -1, index + fleet.model_first_replica[m])
    return times, replicas


def _tally_window(fleet: Fleet, arrivals: np.ndarray, start: np.ndarray, latency: np.ndarray,
                  horizon_ms: float, tallies: list[_ModelTally]) -> None:
    first = fleet.model_first_replica
    for m, tally in enumerate(tallies):
        lo, hi = start[first[m]], start[first[m + 1]]
        if lo == hi:
            continue
        lat = latency[lo:hi]
        finished = np.isfinite(lat)
        tally.dropped += int(np.isposinf(lat).sum())
        done = lat[finished]
        tally.finished += len(done)
        tally.completed += int(np.count_nonzero(arrivals[lo:hi][finished] + done <= horizon_ms))
        tally.within_slo += int(np.count_nonzero(done <= fleet.slo_ms[m]))
        tally.latency_sum_ms += float(done.sum())
        tally.latencies.append(done.astype(np.float32))


def _results(fleet: Fleet, tallies: list[_ModelTally], server_busy_ms: np.ndarray, settings: SimulationSettings,
             horizon_ms: float, wall_s: float) -> SimulationResult:
    duration_s = horizon_ms / 1000.0
    models = []
    for m, (name, tally) in enumerate(zip(fleet.model_names, tallies)):
        latencies = np.concatenate(tally.latencies) if tally.latencies else np.zeros(0, dtype=np.float32)
        if len(latencies):
            p50, p95, p99 = (float(x) for x in np.percentile(latencies, [50, 95, 99]))
            mean, worst = tally.latency_sum_ms / len(latencies), float(latencies.max())
        else:
            p50 = p95 = p99 = mean = worst = None
        models.append(ModelResult(
            model=name, slo_ms=float(fleet.slo_ms[m]), offered=tally.offered, rejected=tally.rejected,
            dropped=tally.dropped, finished=tally.finished, completed=tally.completed,
            within_slo=tally.within_slo, offered_rps=tally.offered / duration_s,
            completed_rps=tally.completed / duration_s, mean_ms=mean, p50_ms=p50, p95_ms=p95, p99_ms=p99,
            max_ms=worst,
        ))
    busy = server_busy_ms[fleet.gpu_server] / horizon_ms if horizon_ms > 0 else np.zeros(len(fleet.gpu_ids))
    gpus = tuple(
        GpuResult(gpu_id, gpu_type, float(u), float(p))
        for gpu_id, gpu_type, u, p in zip(fleet.gpu_ids, fleet.gpu_types, busy, fleet.gpu_planned_utilization)
    )
    arrivals = "gamma" if settings.trace is None else f"trace:{settings.trace.source}"
    return SimulationResult(tuple(models), gpus, duration_s, settings.seed, arrivals, settings.max_queue_ms, wall_s)
