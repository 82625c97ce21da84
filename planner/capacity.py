"""The capacity model: what one replica of a model can serve on one GPU type.

The latency rule lives here and only here (see DESIGN.md, "The capacity model"):
a GPU that runs a round-robin cycle of batches, one batch per member, taking
D = sum of batch times, serves member m at 1000 * b_m / D req/s at full load, and a
request waits at most one cycle and then runs in its own batch, so its latency is
at most D + l_m(b_m). A model alone on its GPU(s) has D = l(b): the Nexus rule 2 l(b).
Planned load on a member stays under `planned_share(...)` x capacity: at most
`max_utilization`, less where random arrivals would overflow the batches of the cycles
its SLO tolerates (see `planned_share` and docs/capacity.md, "The capacity rule").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.scenario import ModelSpec, Profile, Scenario


def batch_latency_ms(profile: Profile) -> np.ndarray:
    """Batch time in ms for b = 1..max_batch; element i is the time of a batch of i+1."""
    if profile.batch_ms is not None:
        points = sorted(profile.batch_ms.items())
        sizes = np.array([b for b, _ in points], dtype=float)
        times = np.array([t for _, t in points], dtype=float)
        batches = np.arange(1, int(sizes[-1]) + 1, dtype=float)
        return np.interp(batches, sizes, times)
    batches = np.arange(1, int(profile.max_batch) + 1, dtype=float)
    return float(profile.base_ms) + float(profile.per_item_ms) * batches


def worst_latency_ms(cycle_ms: float, own_batch_ms: float) -> float:
    """Worst-case latency of a request on a GPU whose round-robin cycle takes `cycle_ms`."""
    return cycle_ms + own_batch_ms


def shared_batch_ms(alone_ms: float, members: int, interference_factor: float) -> float:
    """Batch time of a member on a GPU with `members` models: slowed by interference when shared."""
    return alone_ms * (interference_factor if members > 1 else 1.0)


def capacity_rps(batch_size: int, cycle_ms: float) -> float:
    """Requests per second a member with batches of `batch_size` gets from a cycle of `cycle_ms`."""
    return 1000.0 * batch_size / cycle_ms


# z of the queueing rule in `planned_share`, calibrated with the simulator over
# b in {1..64}, k in {1, 2, 4}, cv in {0.5, 1, 2}, dedicated and shared: the smallest z at
# which no case of the sweep plans above the largest share that simulates at >= 99%
# (bench/calibrate_capacity.py, reports/capacity_calibration.md).
QUEUE_Z = 1.5


def tolerance_cycles(cycle_ms: float, own_batch_ms: float, slo_ms: float) -> int:
    """k = floor((slo - own) / D): how many full cycles a request may wait and still meet
    its SLO (>= 1 exactly when the latency rule D + own <= slo holds)."""
    if cycle_ms <= 0.0:
        return 0
    return int(math.floor((slo_ms - own_batch_ms) / cycle_ms + 1e-9))


def planned_share(batch_size: int, cycle_ms: float, own_batch_ms: float, slo_ms: float, cv: float,
                  max_utilization: float, z: float = QUEUE_Z) -> float:
    """The share of a member's full-load rate 1000 b / D that the plan may route to it.

    A request meets its SLO if it runs within k = floor((slo - own) / D) cycles of its
    arrival, which holds while the arrivals of k cycles fit in k batches (k b requests).
    With Gamma inter-arrival times of coefficient of variation cv, the time that k b
    arrivals take is Gamma with shape a = k b / cv^2; at a share U of full load its mean is
    k cycles / U. Requiring its lower z-quantile (Wilson-Hilferty) to reach k cycles gives
        U = (1 - 1/(9 a) - z / (3 sqrt(a)))^3   (0 when the bracket is negative),
    which tends to 1 as k b / cv^2 grows and to 0 for tiny batches under bursty arrivals.
    The share is the smaller of that and max_utilization; 0 when the latency rule fails
    (k < 1); max_utilization when arrivals are evenly spaced (cv = 0).

    Plain math on floats and ints only, so numba compiles it unchanged
    (`numba.njit(planned_share)`, as solvers/colgen/pricing.py does).
    """
    if cycle_ms <= 0.0:
        return 0.0
    k = math.floor((slo_ms - own_batch_ms) / cycle_ms + 1e-9)
    if k < 1:
        return 0.0
    if cv * cv <= 0.0:  # evenly spaced arrivals (or a cv so small its square is 0)
        return max_utilization
    a = k * batch_size / (cv * cv)
    root = 1.0 - 1.0 / (9.0 * a) - z / (3.0 * math.sqrt(a))
    if root <= 0.0:
        return 0.0
    share = root * root * root
    return share if share < max_utilization else max_utilization


def model_cvs(scenario: Scenario) -> dict[str, float]:
    """Arrival cv per model for the capacity rule: the largest cv among the model's demand
    entries with traffic (the burstiest stream; 1, Poisson, for a model without demand)."""
    out: dict[str, float] = {}
    for entry in scenario.demand:
        if entry.rate_rps > 0:
            out[entry.model] = max(out.get(entry.model, 0.0), float(entry.cv))
    return {m.name: out.get(m.name, 1.0) for m in scenario.models}


def dedicated_planned_rps(latency_ms: np.ndarray, slo_ms: float, cv: float, max_utilization: float) -> np.ndarray:
    """Planned rate of a model alone on its GPU(s) for b = 1..max_batch (D = l(b)):
    planned_share x 1000 b / l(b); 0 where the latency rule 2 l(b) <= slo fails."""
    out = np.zeros(len(latency_ms))
    for i, lat in enumerate(latency_ms):
        lat = float(lat)
        share = planned_share(i + 1, lat, lat, slo_ms, cv, max_utilization)
        out[i] = share * capacity_rps(i + 1, lat) if share > 0 else 0.0
    return out


def best_dedicated_batch(latency_ms: np.ndarray, slo_ms: float, cv: float = 1.0,
                         max_utilization: float = 0.8) -> int | None:
    """The batch size with the most planned rate alone on its GPU(s) under the SLO, or None
    (the smallest such batch on ties)."""
    rates = dedicated_planned_rps(latency_ms, slo_ms, cv, max_utilization)
    if not (rates > 0).any():
        return None
    best = rates.max()
    return int(np.argmax(rates >= best * (1 - 1e-12))) + 1


@dataclass(frozen=True)
class Option:
    """One way to run a model: a GPU type, a tensor-parallel degree and its batch times."""

    model: str
    gpu_type: str
    tensor_parallel: int
    memory_per_gpu_gib: float
    latency_ms: np.ndarray  # batch time for b = 1..max_batch


def model_options(scenario: Scenario, model: ModelSpec) -> list[Option]:
    """Every (GPU type, degree) the model has a profile for and whose memory fits."""
    options = []
    for gpu in scenario.gpu_types:
        profile = model.profiles.get(gpu.name)
        if profile is None:
            continue
        for degree in model.tensor_parallel:
            if degree > gpu.gpus_per_node:
                continue
            if gpu.count is not None and degree > gpu.count:
                continue
            timed = profile.for_degree(degree)
            if timed is None:
                continue
            memory_per_gpu = model.memory_gib / degree
            if memory_per_gpu > gpu.memory_gib + 1e-9:
                continue
            options.append(Option(model.name, gpu.name, degree, memory_per_gpu, batch_latency_ms(timed)))
    return options


CANDIDATE_COLUMNS = [
    "model",
    "gpu_type",
    "tensor_parallel",
    "batch_size",
    "batch_ms",
    "capacity_rps",
    "planned_rps",
    "latency_ms",
    "memory_per_gpu_gib",
    "cost_per_hour_usd",
    "usd_per_million_requests",
]


def build_candidates(scenario: Scenario) -> pd.DataFrame:
    """The candidates table: per (model, GPU type, TP degree) the best dedicated batch.

    `capacity_rps` is the replica's full-load rate, `planned_rps` = planned_share x
    capacity (what the plan may route to it; D = l(b), the model's arrival cv), and
    `batch_size` the batch with the most planned rate under the SLO (smallest on ties);
    `cost_per_hour_usd` is for all its GPUs.
    Rows are sorted, so the table is the same for the same scenario.
    """
    rows = []
    cvs = model_cvs(scenario)
    for model in scenario.models:
        for option in model_options(scenario, model):
            batch = best_dedicated_batch(option.latency_ms, model.slo_ms, cvs[model.name], scenario.max_utilization)
            if batch is None:
                continue
            batch_ms = float(option.latency_ms[batch - 1])
            capacity = capacity_rps(batch, batch_ms)
            gpu = scenario.gpu_type(option.gpu_type)
            cost = gpu.cost_per_hour_usd * option.tensor_parallel
            share = planned_share(batch, batch_ms, batch_ms, model.slo_ms, cvs[model.name], scenario.max_utilization)
            planned = share * capacity
            rows.append(
                {
                    "model": model.name,
                    "gpu_type": option.gpu_type,
                    "tensor_parallel": option.tensor_parallel,
                    "batch_size": batch,
                    "batch_ms": batch_ms,
                    "capacity_rps": capacity,
                    "planned_rps": planned,
                    "latency_ms": worst_latency_ms(batch_ms, batch_ms),
                    "memory_per_gpu_gib": option.memory_per_gpu_gib,
                    "cost_per_hour_usd": cost,
                    "usd_per_million_requests": cost / (planned * 3600.0) * 1e6,
                }
            )
    table = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    return table.sort_values(["model", "gpu_type", "tensor_parallel"], kind="stable").reset_index(drop=True)
