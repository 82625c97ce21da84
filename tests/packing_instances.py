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

from planner.problem import SolveSettings
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


# Optimality cross-checks (enum-milp) and the bound-validity families of
# tests/test_replica_relaxation.py and tests/test_exact_pricing.py
EXACT_SETTINGS = SolveSettings(time_limit_s=30.0, gap_target=1e-9, threads=2)


def sharing_scenario(seed: int) -> Scenario:
    """3-5 light models on 1-2 GPU types with SLOs from 15 to 130 ms (several SLO classes),
    arrivals cv in {0, 0.5, 1, 2}, interference up to 1.4: most optima share GPUs."""
    rng = np.random.default_rng(seed)
    cv = [0.0, 0.5, 1.0, 2.0][seed % 4]
    gpu_types = [{"name": f"G{t}", "memory_gib": float(rng.choice([8, 16, 24])),
                  "cost_per_hour_usd": round(float(rng.uniform(0.5, 4.0)), 2), "count": int(rng.integers(3, 9)),
                  "gpus_per_node": 4, "interference_factor": round(float(rng.uniform(1.0, 1.4)), 2)}
                 for t in range(1 + seed % 2)]
    models, demand = [], []
    for i in range(3 + seed % 3):
        profiles = {g["name"]: {"base_ms": round(float(rng.uniform(1.0, 6.0)), 2),
                                "per_item_ms": round(float(rng.uniform(0.2, 1.5)), 2),
                                "max_batch": int(rng.integers(1, 5))} for g in gpu_types}
        slo = round(float(rng.choice([15.0, 20.0, 30.0, 60.0, 120.0])) * float(rng.uniform(0.9, 1.1)), 1)
        models.append({"name": f"m{i}", "memory_gib": round(float(rng.uniform(1.0, 7.0)), 1), "slo_ms": slo,
                       "profiles": profiles})
        demand.append({"model": f"m{i}", "rate_rps": round(float(rng.uniform(5.0, 250.0)), 2), "cv": cv})
    return Scenario.model_validate({"name": f"sharing-{seed}", "objective": "min_cost", "gpu_types": gpu_types,
                                    "models": models, "demand": demand,
                                    "max_utilization": round(float(rng.uniform(0.6, 1.0)), 2)})


def mixed_scenario(seed: int) -> Scenario:
    """tests/packing_instances.small_scenario with random arrivals, interference and TP models."""
    return small_scenario(seed, "min_cost", interference=seed % 3 != 0, with_tp=seed % 2 == 0, n_models=2 + seed % 3,
                          n_types=1 + seed % 3, max_batch=5, cv=[0.0, 0.5, 1.0, 2.0][seed % 4])
