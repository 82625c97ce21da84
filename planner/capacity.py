"""The capacity model: what one replica of a model can serve on one GPU type.

The latency rule lives here and only here (see DESIGN.md, "The capacity model"):
a GPU that runs a round-robin cycle of batches, one batch per member, taking
D = sum of batch times, serves member m at 1000 * b_m / D req/s at full load, and a
request waits at most one cycle and then runs in its own batch, so its latency is
at most D + l_m(b_m). A model alone on its GPU(s) has D = l(b): the Nexus rule 2 l(b).
Planned load stays under `max_utilization` x capacity.
"""

from __future__ import annotations

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


def best_dedicated_batch(latency_ms: np.ndarray, slo_ms: float) -> int | None:
    """The batch size with the most capacity alone on its GPU(s) under the SLO, or None."""
    feasible = worst_latency_ms(latency_ms, latency_ms) <= slo_ms + 1e-9
    if not feasible.any():
        return None
    batches = np.arange(1, len(latency_ms) + 1)
    rates = np.where(feasible, batches / latency_ms, -1.0)
    return int(np.argmax(rates)) + 1  # first maximum: the smallest such batch


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

    `capacity_rps` is the replica's full-load rate, `planned_rps` = max_utilization x
    capacity (what the plan may route to it), `cost_per_hour_usd` is for all its GPUs.
    Rows are sorted, so the table is the same for the same scenario.
    """
    rows = []
    for model in scenario.models:
        for option in model_options(scenario, model):
            batch = best_dedicated_batch(option.latency_ms, model.slo_ms)
            if batch is None:
                continue
            batch_ms = float(option.latency_ms[batch - 1])
            capacity = capacity_rps(batch, batch_ms)
            gpu = scenario.gpu_type(option.gpu_type)
            cost = gpu.cost_per_hour_usd * option.tensor_parallel
            planned = scenario.max_utilization * capacity
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
