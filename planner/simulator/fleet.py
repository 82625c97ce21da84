"""The plan as the simulator sees it: servers (a GPU, or a tensor-parallel group acting as
one server), the replicas that take turns on each, their batch-time tables, and each
model's routing. Built from a scenario and a plan file; a plan that does not fit the
scenario is bad input (ScenarioError, exit 2) with the place named.

Replicas are numbered model by model (all replicas of model 0, then model 1, ...), so a
model's requests sit in one contiguous range once they are grouped by replica.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.capacity import batch_latency_ms, shared_batch_ms
from planner.errors import ScenarioError
from planner.plan import Plan
from planner.policies import cumulative_shares
from planner.scenario import Scenario

_FIX_PLAN = "plan this scenario with `planner plan SCENARIO --out PLAN.json` and simulate that plan"


@dataclass(frozen=True)
class Fleet:
    """Flat arrays for the compiled loop, plus names for the results."""

    model_names: tuple[str, ...]
    slo_ms: np.ndarray  # per model
    demand_rps: np.ndarray  # per model, the scenario's forecast (what is offered)
    routes: tuple[np.ndarray, ...]  # per model: cumulative shares over its replicas (policies.route)
    model_first_replica: np.ndarray  # per model + 1: replicas of model m are [first[m], first[m + 1])
    replica_model: np.ndarray  # per replica
    replica_server: np.ndarray  # per replica
    replica_batch: np.ndarray  # per replica: its batch size b (largest batch it runs)
    batch_ms_start: np.ndarray  # per replica + 1: batch_ms[start[r] + n - 1] = time of a batch of n
    batch_ms: np.ndarray
    server_first_member: np.ndarray  # per server + 1: members of s are server_members[first[s]:first[s + 1]]
    server_members: np.ndarray  # replica ids, in round-robin order (the plan's order on the GPU)
    gpu_ids: tuple[str, ...]
    gpu_types: tuple[str, ...]
    gpu_server: np.ndarray  # per GPU: the server it belongs to (all GPUs of a TP group: one server)
    gpu_planned_utilization: np.ndarray  # per GPU: planned busy share, sum of rate x batch time / batch

    @property
    def replica_count(self) -> int:
        return len(self.replica_model)

    @property
    def server_count(self) -> int:
        return len(self.server_first_member) - 1


def _batch_times(scenario: Scenario, where: str, model: str, gpu_type: str, degree: int, batch: int) -> np.ndarray:
    spec = next((m for m in scenario.models if m.name == model), None)
    if spec is None:
        raise ScenarioError(f"plan: {where}.model", f"unknown model {model!r} (not in scenario {scenario.name!r})", _FIX_PLAN)
    profile = spec.profiles.get(gpu_type)
    timed = profile.for_degree(degree) if profile is not None else None
    if timed is None:
        raise ScenarioError(f"plan: {where}", f"{model} has no profile for {gpu_type} at tensor_parallel {degree}", _FIX_PLAN)
    times = batch_latency_ms(timed)
    if not 1 <= batch <= len(times):
        raise ScenarioError(f"plan: {where}.batch_size", f"batch {batch} outside the profile's 1..{len(times)}", _FIX_PLAN)
    return times[:batch]


def build_fleet(scenario: Scenario, plan: Plan) -> Fleet:
    """The simulated fleet of `plan`; raises ScenarioError when the plan does not fit `scenario`."""
    if plan.scenario != scenario.name:
        raise ScenarioError("plan: scenario", f"the plan is for scenario {plan.scenario!r}, not {scenario.name!r}", _FIX_PLAN)
    if plan.status == "infeasible":
        raise ScenarioError("plan: status", "the plan is infeasible: it places nothing to simulate",
                            "fix the scenario until `planner plan` finds a plan")
    types = {g.name: g for g in scenario.gpu_types}
    model_names = tuple(sorted(m.name for m in scenario.models))
    model_index = {name: i for i, name in enumerate(model_names)}
    for name in list(plan.routing) + list(plan.models):
        if name not in model_index:
            raise ScenarioError(f"plan: routing.{name}", f"unknown model {name!r} (not in scenario {scenario.name!r})", _FIX_PLAN)
    demand = scenario.demand_rps()
    for name in model_names:
        if demand[name] > 0 and name not in plan.models:
            raise ScenarioError("plan: models", f"the plan has no entry for {name!r}, which the scenario demands "
                                "(a plan for another scenario?)", _FIX_PLAN)

    # servers and their members, in plan order
    servers: list[list[tuple[str, int, np.ndarray]]] = []  # per server: (model, batch, batch times)
    server_of_gpu: list[int] = []
    server_of_group: dict[str, int] = {}
    routed_gpu: dict[tuple[str, str], int] = {}  # (model, routed gpu id) -> (server, member slot) encoded later
    planned: list[float] = []
    for g_index, gpu in enumerate(plan.gpus):
        if gpu.type not in types:
            raise ScenarioError(f"plan: gpus[{g_index}].type", f"unknown GPU type {gpu.type!r}", _FIX_PLAN)
        factor = types[gpu.type].interference_factor
        members = len(gpu.replicas)
        busy = 0.0
        entries = []
        for r_index, replica in enumerate(gpu.replicas):
            where = f"gpus[{g_index}] ({gpu.id}).replicas[{r_index}]"
            alone = _batch_times(scenario, where, replica.model, gpu.type, replica.tensor_parallel, replica.batch_size)
            times = np.array([shared_batch_ms(float(t), members, factor) for t in alone])
            busy += replica.rate_rps * float(times[-1]) / (1000.0 * replica.batch_size)
            entries.append((replica.model, replica.batch_size, times))
        planned.append(busy)
        group = next((r.group for r in gpu.replicas if r.group), None)
        if group is not None and group in server_of_group:
            server_of_gpu.append(server_of_group[group])  # a later GPU of a TP group: same server
            continue
        server = len(servers)
        servers.append(entries)
        server_of_gpu.append(server)
        if group is not None:
            server_of_group[group] = server
        for slot, (model, _, _) in enumerate(entries):
            routed_gpu[(model, gpu.id)] = server * 1_000_000 + slot

    # replicas numbered model by model; within a model, in server order
    keyed = sorted(
        (model_index[model], server, slot)
        for server, entries in enumerate(servers)
        for slot, (model, _, _) in enumerate(entries)
    )
    replica_of = {(server, slot): r for r, (_, server, slot) in enumerate(keyed)}
    replica_model = np.array([m for m, _, _ in keyed], dtype=np.int64)
    replica_server = np.array([s for _, s, _ in keyed], dtype=np.int64)
    replica_batch = np.array([servers[s][slot][1] for _, s, slot in keyed], dtype=np.int64)
    tables = [servers[s][slot][2] for _, s, slot in keyed]
    batch_ms_start = np.zeros(len(tables) + 1, dtype=np.int64)
    batch_ms_start[1:] = np.cumsum([len(t) for t in tables])
    batch_ms = np.concatenate(tables) if tables else np.zeros(0)
    first = np.searchsorted(replica_model, np.arange(len(model_names) + 1), side="left").astype(np.int64)

    server_first = np.zeros(len(servers) + 1, dtype=np.int64)
    server_first[1:] = np.cumsum([len(e) for e in servers])
    server_members = np.array([replica_of[(s, slot)] for s, e in enumerate(servers) for slot in range(len(e))],
                              dtype=np.int64)

    # routing: per model, shares over its replicas (in replica order), scaled by the share of
    # the demand the plan serves (a max_throughput plan sheds the rest at the router). Taken
    # from the plan's own figures, so a plan simulated under a larger forecast admits it all.
    routes = []
    for m, name in enumerate(model_names):
        shares = np.zeros(first[m + 1] - first[m])
        for gpu_id, share in plan.routing.get(name, {}).items():
            code = routed_gpu.get((name, gpu_id))
            if code is None:
                raise ScenarioError(f"plan: routing.{name}.{gpu_id}", f"{gpu_id} runs no replica of {name}", _FIX_PLAN)
            shares[replica_of[divmod(code, 1_000_000)] - first[m]] += share
        entry = plan.models.get(name)
        admitted = entry.served_rps / entry.demand_rps if entry is not None and entry.demand_rps > 0 else 1.0
        admitted = 1.0 if admitted > 1.0 - 1e-6 else admitted  # served == demand, up to the file's rounding
        routes.append(cumulative_shares(shares, admitted) if shares.sum() > 0 else np.zeros(0))

    return Fleet(
        model_names=model_names,
        slo_ms=np.array([scenario.model(n).slo_ms for n in model_names]),
        demand_rps=np.array([demand[n] for n in model_names]),
        routes=tuple(routes),
        model_first_replica=first,
        replica_model=replica_model,
        replica_server=replica_server,
        replica_batch=replica_batch,
        batch_ms_start=batch_ms_start,
        batch_ms=batch_ms,
        server_first_member=server_first,
        server_members=server_members,
        gpu_ids=tuple(g.id for g in plan.gpus),
        gpu_types=tuple(g.type for g in plan.gpus),
        gpu_server=np.array(server_of_gpu, dtype=np.int64),
        gpu_planned_utilization=np.array(planned),
    )
