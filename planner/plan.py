"""The plan (`format: placement-plan/v1`, CONTRACT.md): schema, extraction from a solver
result to concrete GPU ids, nodes and routing, and reading/writing plan files."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner import __version__
from planner.atomic import write_text_atomic
from planner.errors import ScenarioError
from planner.problem import Pattern, PlacementProblem, SolveResult, SolveStatus, member_planned_rps

PLAN_FORMAT = "placement-plan/v1"
DIGITS = 6  # floats in plan files are rounded to this many decimals: same input, same bytes


class _PlanPart(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class PlanReplica(_PlanPart):
    model: str
    tensor_parallel: int = 1
    batch_size: int
    rate_rps: float = Field(description="traffic routed to this replica (the whole group's, for TP)")
    capacity_rps: float = Field(description="full-load rate: one batch per round-robin cycle")
    batch_ms: float | None = None
    cycle_ms: float | None = None
    predicted_latency_ms: float | None = None
    group: str | None = Field(default=None, description="tensor-parallel group id, on every GPU of the group")


class PlanGpu(_PlanPart):
    id: str
    type: str
    node: str
    replicas: list[PlanReplica]


class PlanModel(_PlanPart):
    demand_rps: float
    served_rps: float
    capacity_rps: float
    predicted_latency_ms: float | None = None


class PlanObjective(_PlanPart):
    name: str
    value: float | None = None  # absent when there is no plan
    bound: float | None = None
    gap: float | None = None


class PlanSolver(_PlanPart):
    name: str
    version: str
    wall_s: float
    seed: int


class Plan(_PlanPart):
    format: str = PLAN_FORMAT
    scenario: str
    status: str
    objective: PlanObjective
    cost_per_hour_usd: float
    gpus: list[PlanGpu]
    routing: dict[str, dict[str, float]]
    models: dict[str, PlanModel]
    solver: PlanSolver
    explanation: list[dict] | None = None


def _r(x: float) -> float:
    return round(float(x), DIGITS)


def _round_shares(shares: dict[str, float]) -> dict[str, float]:
    """Shares rounded to DIGITS decimals, summing to 1 exactly, each within one unit of its
    true value (largest remainder), however many replicas a model has."""
    unit = 10 ** DIGITS
    scaled = {k: v * unit for k, v in shares.items()}
    floors = {k: int(v) for k, v in scaled.items()}
    left = unit - sum(floors.values())
    for k in sorted(scaled, key=lambda k: (floors[k] - scaled[k], k))[:max(left, 0)]:
        floors[k] += 1
    return {k: _r(v / unit) for k, v in floors.items()}


def _finite_or_none(x: float) -> float | None:
    return None if x != x or x in (float("inf"), float("-inf")) else _r(x)


# ------------------------------------------------------------------ node assignment


def _assign_slots(problem: PlacementProblem, gpu_type: str, instances: list[Pattern]) -> list[tuple[Pattern, int, list[int]]]:
    """Place pattern instances on GPU indices of one type: largest groups first, first fit
    over nodes, so every TP group stays inside one node. Returns (pattern, node, gpu indices)."""
    info = problem.gpu_type(gpu_type)
    sizes = info.node_sizes()
    per_node = info.gpus_per_node
    used: dict[int, int] = {}  # node -> GPUs taken (groups first, so the next free slot is aligned)
    placed = []
    for pattern in sorted(instances, key=lambda p: (-p.tensor_parallel, p.members)):
        degree = pattern.tensor_parallel
        node = 0
        while True:
            size = per_node if sizes is None else (sizes[node] if node < len(sizes) else 0)
            if sizes is not None and node >= len(sizes):
                raise ValueError(f"{gpu_type}: the plan needs more GPUs than the inventory has")
            if size - used.get(node, 0) >= degree:
                break
            node += 1
        first = used.get(node, 0)
        used[node] = first + degree
        placed.append((pattern, node, [node * per_node + first + j for j in range(degree)]))
    return placed


def extract_plan(problem: PlacementProblem, result: SolveResult, seed: int = 0) -> Plan:
    """Expand a solver's patterns to concrete GPUs, split each model's traffic over its
    replicas in proportion to their capacity, and predict capacity and latency."""
    if result.status is SolveStatus.INFEASIBLE or not result.patterns and problem.demanded_models:
        return infeasible_plan(problem, result, seed, [])
    # 1. concrete GPUs
    gpus = []
    replica_refs: list[tuple[str, str, int, float, float]] = []  # (model, routing gpu id, gpu index, capacity, planned)
    for gpu in problem.gpu_types:
        instances = [pc.pattern for pc in result.patterns if pc.pattern.gpu_type == gpu.name for _ in range(pc.count)]
        for pattern, node, indices in _assign_slots(problem, gpu.name, instances):
            ids = [f"{gpu.name}-{i}" for i in indices]
            group = f"tp-{ids[0]}" if pattern.tensor_parallel > 1 else None
            for gpu_id in ids:
                replicas = []
                for member in pattern.members:
                    capacity = pattern.capacity_rps(member)
                    replicas.append(
                        PlanReplica(
                            model=member.model,
                            tensor_parallel=pattern.tensor_parallel,
                            batch_size=member.batch_size,
                            rate_rps=0.0,
                            capacity_rps=_r(capacity),
                            batch_ms=_r(member.batch_ms),
                            cycle_ms=_r(pattern.cycle_ms),
                            predicted_latency_ms=_r(pattern.latency_ms(member)),
                            group=group,
                        )
                    )
                    if gpu_id == ids[0]:
                        replica_refs.append((member.model, gpu_id, len(gpus), capacity,
                                             member_planned_rps(problem, pattern, member)))
                gpus.append(PlanGpu(id=gpu_id, type=gpu.name, node=f"{gpu.name}-node-{node}", replicas=replicas))
    gpus.sort(key=lambda g: (g.type, int(g.id.rsplit("-", 1)[1])))

    # 2. routing in proportion to planned rate (planned_share x capacity, the capacity rule);
    # a TP group is routed to its first GPU
    refs_by_model: dict[str, list[tuple[str, float]]] = {}
    full_by_model: dict[str, float] = {}
    for model, gpu_id, _, cap, planned in replica_refs:
        refs_by_model.setdefault(model, []).append((gpu_id, planned))
        full_by_model[model] = full_by_model.get(model, 0.0) + cap
    replicas_by_model: dict[str, list[tuple[PlanGpu, PlanReplica]]] = {}
    for g in gpus:
        for r in g.replicas:
            replicas_by_model.setdefault(r.model, []).append((g, r))
    routing: dict[str, dict[str, float]] = {}
    models: dict[str, PlanModel] = {}
    for info in sorted(problem.models, key=lambda m: m.name):
        refs = sorted(refs_by_model.get(info.name, []))
        total_planned = sum(planned for _, planned in refs)
        total_cap = full_by_model.get(info.name, 0.0)
        served = min(result.served_rps.get(info.name, 0.0), total_planned)
        shares = {gpu_id: planned / total_planned for gpu_id, planned in refs} if total_planned > 0 else {}
        placed = replicas_by_model.get(info.name, [])
        if shares and served > 0:
            routing[info.name] = _round_shares(shares)
            share_by_group = {}
            for g, r in placed:
                if g.id in shares:
                    share_by_group[r.group or g.id] = shares[g.id]
            for g, r in placed:
                r.rate_rps = _r(served * share_by_group[r.group or g.id])
        latency = max((r.predicted_latency_ms for _, r in placed), default=None)
        models[info.name] = PlanModel(
            demand_rps=_r(info.demand_rps),
            served_rps=_r(served),
            capacity_rps=_r(total_cap),
            predicted_latency_ms=latency,
        )
    cost = sum(problem.gpu_type(g.type).cost_per_hour_usd for g in gpus)
    value = cost if problem.objective == "min_cost" else result.value
    return Plan(
        scenario=problem.scenario_name,
        status=result.status.value,
        objective=PlanObjective(name=problem.objective, value=_finite_or_none(value), bound=_finite_or_none(result.bound),
                                gap=_finite_or_none(result.gap)),
        cost_per_hour_usd=_r(cost),
        gpus=gpus,
        routing=routing,
        models=models,
        solver=PlanSolver(name=result.solver, version=__version__, wall_s=round(result.wall_s, 3), seed=seed),
    )


def infeasible_plan(problem: PlacementProblem, result: SolveResult, seed: int, explanation: list[dict]) -> Plan:
    """A plan file that says no plan meets the hard constraints, and why. Status `time_limit`
    when the solver ran out of time before finding any plan (that proves nothing)."""
    status = SolveStatus.TIME_LIMIT if result.status is SolveStatus.TIME_LIMIT else SolveStatus.INFEASIBLE
    return Plan(
        scenario=problem.scenario_name,
        status=status.value,
        objective=PlanObjective(name=problem.objective, value=None, bound=_finite_or_none(result.bound), gap=None),
        cost_per_hour_usd=0.0,
        gpus=[],
        routing={},
        models={
            m.name: PlanModel(demand_rps=_r(m.demand_rps), served_rps=0.0, capacity_rps=0.0)
            for m in sorted(problem.models, key=lambda m: m.name)
        },
        solver=PlanSolver(name=result.solver, version=__version__, wall_s=round(result.wall_s, 3), seed=seed),
        explanation=explanation or [{"problem": result.message or "no plan meets the hard constraints"}],
    )


# --------------------------------------------------------------------------- files


def plan_to_json(plan: Plan) -> str:
    return json.dumps(plan.model_dump(mode="json", exclude_none=True), indent=2) + "\n"


def write_plan(plan: Plan, path: str | Path) -> None:
    write_text_atomic(Path(path), plan_to_json(plan))


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(str(path), "no such plan file", "check the path, or create one with `planner plan`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), f"not a valid plan JSON ({exc})", "use a file written by `planner plan`") from None
    if not isinstance(raw, dict) or raw.get("format") != PLAN_FORMAT:
        raise ScenarioError(f"{path}: format", f"expected format {PLAN_FORMAT!r}", "use a file written by `planner plan`")
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ScenarioError(f"{path}: {where}", first["msg"], "use a file written by `planner plan`") from None
