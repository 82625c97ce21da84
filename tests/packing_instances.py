"""Seeded small packing instances for the cross-check tests (2-4 models, 1-3 GPU types).

Batch times have 0.01 ms resolution and interference factors two decimals, so every time
the direct CP-SAT model scales to integers is exact and all exact solvers solve the same
problem.
Arrivals are evenly spaced (cv 0) by default, so the capacity rule's share is
max_utilization everywhere and the direct formulations (which refuse otherwise) are exact;
pass cv to get random arrivals.
"""

from __future__ import annotations

import numpy as np

from planner.scenario import Scenario


def small_scenario(seed: int, objective: str = "min_cost", interference: bool = False, with_tp: bool = False,
                   fairness: bool = False, n_models: int | None = None, n_types: int | None = None,
                   max_batch: int = 4, cv: float = 0.0) -> Scenario:
    rng = np.random.default_rng(seed)
    n_types = n_types or int(rng.integers(1, 4))
    n_models = n_models or int(rng.integers(2, 5))
    gpu_types = []
    for t in range(n_types):
        gpu_types.append({
            "name": f"G{t}",
            "memory_gib": float(rng.choice([16, 24, 48])),
            "cost_per_hour_usd": round(float(rng.uniform(0.5, 4.0)), 2),
            "count": int(rng.integers(2, 7)),
            "gpus_per_node": int(rng.choice([2, 4])),
            "interference_factor": round(float(rng.uniform(1.05, 1.4)), 2) if interference else 1.0,
        })
    models, demand = [], []
    for i in range(n_models):
        tp_model = with_tp and i == 0
        memory = round(float(rng.uniform(20.0, 30.0)) if tp_model else float(rng.uniform(1.0, 9.0)), 1)
        base = round(float(rng.uniform(1.0, 8.0)), 2)
        item = round(float(rng.uniform(0.2, 2.0)), 2)
        profiles = {}
        for g in gpu_types:
            speed = float(rng.uniform(0.6, 1.6))
            profile = {"base_ms": round(base / speed, 2), "per_item_ms": round(item / speed, 2),
                       "max_batch": int(rng.integers(1, max_batch + 1))}
            if tp_model:
                profile = {"tp": {2: {**profile, "base_ms": round(profile["base_ms"] * 0.6, 2)}}}
                if memory <= g["memory_gib"]:
                    profile["tp"][1] = {k: v for k, v in profile["tp"][2].items()} | {"base_ms": round(base / speed, 2)}
            profiles[g["name"]] = profile
        fastest = min(base, min((p.get("base_ms", base) for p in profiles.values()), default=base)) + item
        slo = round(fastest * float(rng.uniform(3.0, 9.0)) + 2.0, 1)
        models.append({"name": f"m{i}", "memory_gib": memory, "slo_ms": slo, "profiles": profiles,
                       "tensor_parallel": [1, 2] if tp_model else [1],
                       "priority": float(rng.choice([1.0, 2.0])) if objective == "max_throughput" else 1.0})
        demand.append({"model": f"m{i}", "rate_rps": round(float(rng.uniform(10.0, 600.0)), 2), "cv": cv})
    raw = {"name": f"small-{seed}", "objective": objective, "gpu_types": gpu_types, "models": models, "demand": demand,
           "max_utilization": 0.8}
    if objective == "max_throughput":
        raw["budget_usd_per_hour"] = round(float(rng.uniform(1.0, 8.0)), 2)
        raw["fairness"] = fairness
    return Scenario.model_validate(raw)


def many_small_models_scenario(n_models: int = 8, seed: int = 0, cv: float = 0.0) -> Scenario:
    """Lightly loaded small models on one GPU type: one model per GPU wastes most of each GPU."""
    rng = np.random.default_rng(seed)
    models = [{"name": f"s{i}", "memory_gib": round(float(rng.uniform(0.5, 3.0)), 1), "slo_ms": 200.0,
               "profiles": {"L4": {"base_ms": round(float(rng.uniform(2.0, 6.0)), 2), "per_item_ms": 0.5, "max_batch": 8}}}
              for i in range(n_models)]
    demand = [{"model": m["name"], "rate_rps": round(float(rng.uniform(5.0, 40.0)), 2), "cv": cv} for m in models]
    raw = {"name": f"many-small-{n_models}", "objective": "min_cost",
           "gpu_types": [{"name": "L4", "memory_gib": 24, "cost_per_hour_usd": 1.15, "count": 16, "gpus_per_node": 4,
                          "interference_factor": 1.1}],
           "models": models, "demand": demand}
    return Scenario.model_validate(raw)
