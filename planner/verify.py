"""`verify_plan`: an independent re-check of every constraint, from the plan file and the
scenario alone (no solver state). Each `verify_*` checks one family and returns the
violations it finds; an empty list means the plan holds."""

from __future__ import annotations

from collections import defaultdict

from planner.capacity import (batch_latency_ms, capacity_rps, model_cvs, planned_share, shared_batch_ms,
                              worst_latency_ms)
from planner.plan import Plan, PlanGpu
from planner.scenario import Scenario

REL_TOL = 1e-5
ABS_TOL = 1e-4


def _close_or_below(a: float, b: float) -> bool:
    """a <= b up to rounding in the plan file."""
    return a <= b + ABS_TOL + REL_TOL * abs(b)


def _batch_ms(scenario: Scenario, model: str, gpu_type: str, degree: int, batch: int) -> float | None:
    spec = next((m for m in scenario.models if m.name == model), None)
    if spec is None or gpu_type not in spec.profiles or degree not in spec.tensor_parallel:
        return None
    profile = spec.profiles[gpu_type].for_degree(degree)
    if profile is None:
        return None
    times = batch_latency_ms(profile)
    if not 1 <= batch <= len(times):
        return None
    return float(times[batch - 1])


def verify_names_and_profiles(scenario: Scenario, plan: Plan) -> list[str]:
    types = {g.name for g in scenario.gpu_types}
    models = {m.name for m in scenario.models}
    out = []
    seen = set()
    for gpu in plan.gpus:
        if gpu.id in seen:
            out.append(f"gpu {gpu.id}: listed twice")
        seen.add(gpu.id)
        if gpu.type not in types:
            out.append(f"gpu {gpu.id}: unknown type {gpu.type}")
            continue
        if not gpu.replicas:
            out.append(f"gpu {gpu.id}: listed but runs nothing")
        for r in gpu.replicas:
            if r.model not in models:
                out.append(f"gpu {gpu.id}: unknown model {r.model}")
            elif _batch_ms(scenario, r.model, gpu.type, r.tensor_parallel, r.batch_size) is None:
                out.append(f"gpu {gpu.id}: {r.model} has no profile for {gpu.type} at tp {r.tensor_parallel}, batch {r.batch_size}")
    return out


def verify_inventory_and_nodes(scenario: Scenario, plan: Plan) -> list[str]:
    out = []
    per_type: dict[str, int] = defaultdict(int)
    per_node: dict[str, int] = defaultdict(int)
    node_type: dict[str, str] = {}
    for gpu in plan.gpus:
        per_type[gpu.type] += 1
        per_node[gpu.node] += 1
        if node_type.setdefault(gpu.node, gpu.type) != gpu.type:
            out.append(f"node {gpu.node}: mixes GPU types")
    for g in scenario.gpu_types:
        if g.count is not None and per_type[g.name] > g.count:
            out.append(f"{g.name}: plan uses {per_type[g.name]} GPUs, inventory has {g.count}")
    for node, n in per_node.items():
        t = node_type[node]
        limit = next((g.gpus_per_node for g in scenario.gpu_types if g.name == t), None)
        if limit is not None and n > limit:
            out.append(f"node {node}: {n} GPUs, a {t} node has {limit}")
    return out


def verify_memory(scenario: Scenario, plan: Plan) -> list[str]:
    out = []
    mem = {m.name: m.memory_gib for m in scenario.models}
    cap = {g.name: g.memory_gib for g in scenario.gpu_types}
    for gpu in plan.gpus:
        if gpu.type not in cap:
            continue
        used = sum(mem.get(r.model, 0.0) / r.tensor_parallel for r in gpu.replicas)
        if used > cap[gpu.type] + 1e-6:
            out.append(f"gpu {gpu.id}: {used:.2f} GiB of models on a {cap[gpu.type]:g} GiB GPU")
    return out


def _member_batch_ms(scenario: Scenario, gpu: PlanGpu, replica) -> float | None:
    alone = _batch_ms(scenario, replica.model, gpu.type, replica.tensor_parallel, replica.batch_size)
    factor = next((g.interference_factor for g in scenario.gpu_types if g.name == gpu.type), 1.0)
    return None if alone is None else shared_batch_ms(alone, len(gpu.replicas), factor)


def _cycle_ms(scenario: Scenario, gpu: PlanGpu) -> float | None:
    times = [_member_batch_ms(scenario, gpu, r) for r in gpu.replicas]
    return None if any(t is None for t in times) else sum(times)


def verify_time_shares_and_latency(scenario: Scenario, plan: Plan) -> list[str]:
    """Round robin: each member's rate within planned_share x 1000 b / cycle (the capacity
    rule, with the model's arrival cv from the scenario), its latency (cycle + own batch)
    within its SLO, and the GPU's busy share within max_utilization."""
    out = []
    slo = {m.name: m.slo_ms for m in scenario.models}
    cvs = model_cvs(scenario)
    u = scenario.max_utilization
    for gpu in plan.gpus:
        cycle = _cycle_ms(scenario, gpu)
        if cycle is None:
            continue
        busy = 0.0
        for r in gpu.replicas:
            own = _member_batch_ms(scenario, gpu, r)
            full = capacity_rps(r.batch_size, cycle)
            if not _close_or_below(r.capacity_rps, full):
                out.append(f"gpu {gpu.id}: {r.model} claims {r.capacity_rps:g} req/s, the cycle allows {full:g}")
            share = planned_share(r.batch_size, cycle, own, slo[r.model], cvs[r.model], u)
            if not _close_or_below(r.rate_rps, share * full):
                out.append(f"gpu {gpu.id}: {r.model} gets {r.rate_rps:g} req/s, over its planned share "
                           f"{share:.4g} x {full:g} (cv {cvs[r.model]:g})")
            latency = worst_latency_ms(cycle, own)
            if not _close_or_below(latency, slo[r.model]):
                out.append(f"gpu {gpu.id}: {r.model} worst latency {latency:g} ms over its SLO {slo[r.model]:g} ms")
            busy += r.rate_rps * own / (1000.0 * r.batch_size)
        if not _close_or_below(busy, u):
            out.append(f"gpu {gpu.id}: busy share {busy:.4f} over max_utilization {u:g}")
    return out


def verify_tp_groups(scenario: Scenario, plan: Plan) -> list[str]:
    out = []
    groups: dict[str, list[tuple[PlanGpu, object]]] = defaultdict(list)
    for gpu in plan.gpus:
        for r in gpu.replicas:
            if r.tensor_parallel > 1 and not r.group:
                out.append(f"gpu {gpu.id}: {r.model} at tp {r.tensor_parallel} has no group id")
            if r.group:
                groups[r.group].append((gpu, r))
                if len(gpu.replicas) > 1:
                    out.append(f"gpu {gpu.id}: a tensor-parallel group shares its GPU")
    for group, members in groups.items():
        degree = members[0][1].tensor_parallel
        if len(members) != degree:
            out.append(f"group {group}: {len(members)} GPUs for tensor_parallel {degree}")
        if len({g.node for g, _ in members}) != 1:
            out.append(f"group {group}: spans several nodes")
        if len({(r.model, r.batch_size, r.tensor_parallel) for _, r in members}) != 1:
            out.append(f"group {group}: GPUs disagree on the replica")
    return out


def verify_routing_and_demand(scenario: Scenario, plan: Plan) -> list[str]:
    out = []
    demand = scenario.demand_rps()
    where: dict[str, dict[str, float]] = defaultdict(dict)
    for gpu in plan.gpus:
        for r in gpu.replicas:
            if r.group and r.group != f"tp-{gpu.id}":
                continue  # a group is routed to its first GPU
            where[r.model][gpu.id] = r.rate_rps
    for model, shares in plan.routing.items():
        total = sum(shares.values())
        if abs(total - 1.0) > 1e-4:
            out.append(f"routing[{model}]: shares sum to {total:.6f}, not 1")
        served = plan.models[model].served_rps if model in plan.models else 0.0
        for gpu_id, share in shares.items():
            if share < -1e-9:
                out.append(f"routing[{model}][{gpu_id}]: negative share")
            if gpu_id not in where[model]:
                out.append(f"routing[{model}]: {gpu_id} runs no replica of it")
            elif abs(where[model][gpu_id] - share * served) > ABS_TOL + 1e-4 * served:
                out.append(f"routing[{model}][{gpu_id}]: rate {where[model][gpu_id]:g} is not share x served {share * served:g}")
    for model, rates in where.items():
        if sum(rates.values()) > 0 and model not in plan.routing:
            out.append(f"routing: {model} has replicas with traffic but no routing entry")
    for name, rate in demand.items():
        entry = plan.models.get(name)
        served = entry.served_rps if entry else 0.0
        routed = sum(where[name].values())
        if abs(routed - served) > ABS_TOL + 1e-4 * max(served, 1.0):
            out.append(f"models[{name}]: served {served:g} req/s but replicas get {routed:g}")
        if not _close_or_below(served, rate):
            out.append(f"models[{name}]: serves {served:g} req/s, more than its demand {rate:g}")
        if scenario.objective == "min_cost" and rate > 0 and served < rate * (1 - 1e-5) - ABS_TOL:
            out.append(f"models[{name}]: min_cost must serve all demand: {served:g} of {rate:g} req/s")
    return out


def verify_cost_and_budget(scenario: Scenario, plan: Plan) -> list[str]:
    out = []
    price = {g.name: g.cost_per_hour_usd for g in scenario.gpu_types}
    cost = sum(price.get(g.type, 0.0) for g in plan.gpus)
    if abs(cost - plan.cost_per_hour_usd) > 1e-4 + 1e-6 * cost:
        out.append(f"cost_per_hour_usd {plan.cost_per_hour_usd:g} is not the sum of its GPUs {cost:g}")
    if scenario.budget_usd_per_hour is not None and not _close_or_below(cost, scenario.budget_usd_per_hour):
        out.append(f"cost {cost:g} USD/h over budget {scenario.budget_usd_per_hour:g}")
    obj = plan.objective
    if obj.value is not None and obj.bound is not None:
        if scenario.objective == "min_cost" and not _close_or_below(obj.bound, obj.value):
            out.append(f"objective: bound {obj.bound:g} above cost {obj.value:g}")
        if scenario.objective == "max_throughput" and not _close_or_below(obj.value, obj.bound):
            out.append(f"objective: value {obj.value:g} above bound {obj.bound:g}")
    if scenario.objective == "min_cost" and obj.value is not None and abs(obj.value - cost) > 1e-4 + 1e-6 * cost:
        out.append(f"objective.value {obj.value:g} is not the plan's cost {cost:g}")
    return out


VERIFIERS = (
    verify_names_and_profiles,
    verify_inventory_and_nodes,
    verify_memory,
    verify_time_shares_and_latency,
    verify_tp_groups,
    verify_routing_and_demand,
    verify_cost_and_budget,
)


def verify_plan(scenario: Scenario, plan: Plan) -> list[str]:
    """Every violation found; [] means the plan meets every constraint."""
    if plan.status == "infeasible" or (plan.status == "time_limit" and not plan.gpus):
        return [] if not plan.gpus else ["an infeasible plan lists GPUs"]
    violations: list[str] = []
    for check in VERIFIERS:
        violations.extend(check(scenario, plan))
    return violations
