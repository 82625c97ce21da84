"""Seeded generator of large type-level benchmark scenarios (realistic, not measured).

`fleet_scenario(n_models, seed)` returns a `Scenario` with the 12 GPU offerings below.

Sources and assumptions:
- Prices: the 12 distinct (GPU, $/h per GPU) rows of ../shared/data/gpu-prices/
  gpu_ondemand_prices_partial.csv (AWS/Lambda on-demand from the SkyPilot catalog, plus the
  A10G and A100-80GB prices of the Melange paper's example config). The same hardware at two
  prices is two offerings (e.g. on-demand vs. a negotiated rate).
- Speed relative to A100-80GB: medians of MLPerf Inference closed datacenter Offline
  per-accelerator throughput (../shared/data/mlperf-inference), resnet50 and bert-99:
  H100-SXM 2.2-2.5 (v3.0/v4.1), H200 2.3-2.5 (v4.1), A100-PCIe 0.9-1.0, L4 0.27-0.33,
  T4 0.12-0.15 (v3.0). Not in MLPerf, assumed: A10G 0.4 (between L4 and A30's 0.5),
  A6000 0.48 (A40, the same chip, v3.0), V100 0.3. Each model gets its own noise on top
  (x0.85-1.15 per type) because speed ratios differ between model families.
- Model memory is log-uniform in 1-80 GiB; models above a GPU's memory need tensor
  parallelism (degrees 2/4/8 allowed for models over 20 GiB).
- Inventory: the cheapest-per-request offerings are scarce (4-32 GPUs) so inventory binds
  for them; the rest are unlimited (cloud on demand).
"""

from __future__ import annotations

import numpy as np

from planner.scenario import Scenario

# name, memory GiB, $/h per GPU, speed vs A100-80GB, count (None = unlimited), GPUs per node
GPU_OFFERINGS = [
    ("T4", 16, 0.526, 0.14, None, 4),
    ("T4g", 16, 0.42, 0.13, 16, 2),
    ("V100", 16, 0.55, 0.30, 32, 8),
    ("A10G", 24, 1.418, 0.40, None, 4),
    ("A10G-melange", 24, 1.01, 0.40, 24, 4),
    ("L4", 24, 1.1504, 0.30, None, 4),
    ("A6000", 48, 0.80, 0.48, 16, 4),
    ("A100-40GB", 40, 1.29, 0.95, 24, 8),
    ("A100-80GB", 80, 5.12072, 1.00, None, 8),
    ("A100-80GB-melange", 80, 3.67, 1.00, 16, 8),
    ("H100", 80, 12.29, 2.30, None, 8),
    ("H200", 141, 10.60, 2.40, 32, 8),
]


def fleet_scenario(n_models: int = 1000, seed: int = 0, objective: str = "min_cost") -> Scenario:
    rng = np.random.default_rng(seed)
    gpu_types = [
        {"name": n, "memory_gib": m, "cost_per_hour_usd": c, "gpus_per_node": per_node, **({} if k is None else {"count": k})}
        for n, m, c, _, k, per_node in GPU_OFFERINGS
    ]
    models, demand = [], []
    for i in range(n_models):
        memory = float(np.exp(rng.uniform(np.log(1.0), np.log(80.0))))
        # batch time on an A100-80GB: fixed part 2-40 ms, per request 0.05-20 ms (bigger models slower)
        base_a100 = float(rng.uniform(2.0, 40.0)) * (0.5 + memory / 40.0)
        item_a100 = float(np.exp(rng.uniform(np.log(0.05), np.log(2.0)))) * (0.5 + memory / 20.0)
        max_batch = int(rng.choice([8, 16, 32, 64, 128]))
        tp = [1, 2, 4, 8] if memory > 20 else [1]
        profiles = {}
        for name, gpu_mem, _, speed, _, _ in GPU_OFFERINGS:
            if memory / max(tp) > gpu_mem or rng.random() < 0.1:
                continue  # does not fit even at the largest degree, or not profiled there
            s = speed * float(rng.uniform(0.85, 1.15))
            profiles[name] = {"base_ms": round(base_a100 / s, 3), "per_item_ms": round(item_a100 / s, 4), "max_batch": max_batch}
        # SLO: 2.2x-6x the batch-1 time on the fastest unlimited offering that profiles the model,
        # so the SLO limits the batch on slow types and every model has an unlimited option
        unlimited = {n for n, *_, k, _ in GPU_OFFERINGS if k is None}
        profiles.setdefault("H100", {"base_ms": round(base_a100 / 2.3, 3), "per_item_ms": round(item_a100 / 2.3, 4), "max_batch": max_batch})
        fastest = min(p["base_ms"] + p["per_item_ms"] for n, p in profiles.items() if n in unlimited)
        slo = round(fastest * float(rng.uniform(2.2, 6.0)) + 1.0, 1)
        models.append({"name": f"m{i:04d}", "memory_gib": round(memory, 2), "slo_ms": slo, "tensor_parallel": tp,
                       "priority": float(rng.choice([1.0, 1.0, 2.0])), "profiles": profiles})
        demand.append({"model": f"m{i:04d}", "rate_rps": round(float(np.exp(rng.uniform(np.log(0.5), np.log(2000.0)))), 2)})
    raw = {"name": f"fleet-{n_models}-seed{seed}", "objective": objective, "gpu_types": gpu_types, "models": models, "demand": demand}
    if objective == "max_throughput":
        raw["budget_usd_per_hour"] = 2000.0
    return Scenario.model_validate(raw)
