"""Small hand-made scenarios and plans for the simulator tests."""

from __future__ import annotations

from planner.plan import Plan, PlanGpu, PlanModel, PlanObjective, PlanReplica, PlanSolver
from planner.scenario import Scenario


def one_gpu_scenario(models: list[dict], gpu: str = "G", interference_factor: float = 1.0,
                     gpus_per_node: int = 8) -> Scenario:
    """models: dicts with name, service (ms, batch of 1, or base/per_item), max_batch, slo_ms, rate_rps, cv."""
    specs, demand = [], []
    for m in models:
        profile = {"base_ms": m.get("base_ms", m.get("service_ms", 0.0)), "per_item_ms": m.get("per_item_ms", 0.0),
                   "max_batch": m.get("max_batch", 1)}
        if profile["base_ms"] + profile["per_item_ms"] <= 0:
            raise ValueError("a batch takes time")
        specs.append({"name": m["name"], "memory_gib": 1.0, "slo_ms": m.get("slo_ms", 1000.0),
                      "tensor_parallel": m.get("tensor_parallel", [1]), "profiles": {gpu: profile}})
        demand.append({"model": m["name"], "rate_rps": m["rate_rps"], "cv": m.get("cv", 1.0)})
    return Scenario.model_validate({
        "name": "sim-test",
        "gpu_types": [{"name": gpu, "memory_gib": 80, "cost_per_hour_usd": 1.0,
                       "interference_factor": interference_factor, "gpus_per_node": gpus_per_node}],
        "models": specs,
        "demand": demand,
    })


def plan_for(scenario: Scenario, gpus: list[list[tuple[str, int]]], tp_groups: dict[int, int] | None = None) -> Plan:
    """A plan with one GPU per entry of `gpus` (a list of (model, batch_size) members).

    tp_groups: {gpu index: degree} makes GPUs index..index+degree-1 one tensor-parallel
    group running the member(s) of GPU `index`. Traffic is split evenly over the GPUs
    (or groups) that run a model. Rates and capacities are nominal: the simulator reads
    batch sizes, membership and routing only.
    """
    gtype = scenario.gpu_types[0].name
    tp_groups = tp_groups or {}
    plan_gpus: list[PlanGpu] = []
    hosts: dict[str, list[str]] = {}
    index = 0
    for members in gpus:
        degree = tp_groups.get(index, 1)
        ids = [f"{gtype}-{index + j}" for j in range(degree)]
        group = f"tp-{ids[0]}" if degree > 1 else None
        for gpu_id in ids:
            replicas = [PlanReplica(model=m, tensor_parallel=degree, batch_size=b, rate_rps=0.0, capacity_rps=1.0,
                                    group=group) for m, b in members]
            plan_gpus.append(PlanGpu(id=gpu_id, type=gtype, node=f"{gtype}-node-0", replicas=replicas))
        for m, _ in members:
            hosts.setdefault(m, []).append(ids[0])
        index += degree
    demand = scenario.demand_rps()
    routing = {m: {g: 1.0 / len(ids) for g in ids} for m, ids in hosts.items()}
    models = {m: PlanModel(demand_rps=demand[m], served_rps=demand[m] if m in hosts else 0.0, capacity_rps=1.0)
              for m in demand}
    return Plan(scenario=scenario.name, status="feasible",
                objective=PlanObjective(name="min_cost", value=1.0, bound=1.0, gap=0.0),
                cost_per_hour_usd=float(len(plan_gpus)), gpus=plan_gpus, routing=routing, models=models,
                solver=PlanSolver(name="hand", version="0", wall_s=0.0, seed=0))
