"""Why a scenario has no plan, and the smallest change that gives it one.

Two stages, each a pure function of the scenario:

1. Per model (`model_causes`): a demanded model that fits on no GPU type it has a
   profile for (memory, tensor-parallel degrees, node size), or whose SLO no batch meets
   even at batch 1 (2 x batch time, the capacity rule). The fix is exact: the smallest
   tensor-parallel degree to allow, the memory_gib that fits, or the slo_ms that batch 1
   meets. Inventory counts play no part here; they are stage 2's.
2. A relaxation with slack variables (`slack_causes`), on the scenario with stage 1's
   fixes applied: the type-level formulation of solvers/typelevel_cpsat.py (the same
   replica options, demand rows, scaling) where every GPU type with a count may buy
   `extra[t]` more GPUs and the budget may grow by `extra_budget`. Tensor-parallel groups
   stay inside nodes of the enlarged inventory (full nodes then one partial, as in
   GpuTypeInfo.group_slots). It minimises the added spend in USD/h: the price of every
   extra GPU plus the extra budget (one micro-USD per GPU breaks ties, so free GPUs are
   not added for nothing). For max_throughput the rows ask for at least one replica:
   a budget too small for any replica leaves nothing to serve, and that is reported the
   same way (see docs/limits.md, "Infeasible scenarios").

Every cause carries machine-readable `changes` ({path, from, to}); `apply_changes`
applies them, and applying all of them makes the scenario feasible for the type-level
formulation (tests/test_infeasibility.py re-solves to check it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from planner.capacity import model_options, worst_latency_ms
from planner.errors import ScenarioError
from planner.problem import build_problem
from planner.scenario import TENSOR_PARALLEL_DEGREES, ModelSpec, Scenario
from solvers.scaling import COST_UNITS_PER_USD, Scaling, choose_scaling
from solvers.typelevel_cpsat import (MAX_REPLICAS_PER_OPTION, add_demand_coverage, cost_expression, replica_options,
                                     replica_upper_bound)

TIE_BREAK_UNITS_PER_GPU = 1  # micro-USD/h per extra GPU: among equal spends, fewer GPUs


@dataclass(frozen=True)
class Change:
    """Set the scenario field at `path` (`gpu_types[1].count`) from `old` to `new`."""

    path: str
    old: Any
    new: Any

    def as_dict(self) -> dict:
        return {"path": self.path, "from": self.old, "to": self.new}


@dataclass(frozen=True)
class Cause:
    """One reason there is no plan: which models, why, and the change that fixes it."""

    cause: str  # no_fit | slo_unreachable | inventory_short | budget_short | demand_unservable | no_plan_found
    location: str
    problem: str
    fix: str
    models: tuple[str, ...] = ()
    changes: tuple[Change, ...] = field(default=())

    def as_dict(self) -> dict:
        out = {"cause": self.cause, "location": self.location, "problem": self.problem, "fix": self.fix,
               "models": list(self.models)}
        if self.changes:
            out["changes"] = [c.as_dict() for c in self.changes]
        return out


# ------------------------------------------------------------------------ changes


_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in _PATH_PART.findall(path):
        parts.append(int(index) if index else name)
    return parts


def apply_changes(scenario: Scenario, changes: list[Change] | tuple[Change, ...]) -> Scenario:
    """A new scenario with every change applied (validated again); the input is unchanged."""
    raw = scenario.model_dump(mode="python")
    for change in changes:
        parts = _path_parts(change.path)
        target: Any = raw
        for part in parts[:-1]:
            target = target[part]
        target[parts[-1]] = change.new
    try:
        return Scenario.model_validate(raw)
    except Exception as exc:  # a change outside the schema's limits: say so, as bad input
        raise ScenarioError("explanation", f"the suggested changes do not validate ({exc})", "apply them by hand") from None


def _without_counts(scenario: Scenario) -> Scenario:
    """The scenario with every GPU count removed (as many GPUs as needed)."""
    return scenario.model_copy(update={"gpu_types": [g.model_copy(update={"count": None}) for g in scenario.gpu_types]})


def _ceil_to(value: float, step: float) -> float:
    return round(math.ceil(value / step - 1e-9) * step, 6)


# ------------------------------------------------------------- stage 1: per model


def _fastest_batch1_ms(scenario: Scenario, model: ModelSpec) -> float | None:
    options = model_options(scenario, model)
    if not options:
        return None
    return min(float(worst_latency_ms(o.latency_ms[0], o.latency_ms[0])) for o in options)


def _no_fit_cause(scenario: Scenario, index: int, model: ModelSpec) -> Cause:
    usable = []  # (degree, gpu type) pairs that have a timing and fit a node
    for gpu in scenario.gpu_types:
        profile = model.profiles.get(gpu.name)
        if profile is None:
            continue
        for degree in TENSOR_PARALLEL_DEGREES:
            if degree <= gpu.gpus_per_node and profile.for_degree(degree) is not None:
                usable.append((degree, gpu))
    where = f"models[{index}]"
    head = f"{model.name!r} ({model.memory_gib:g} GiB per replica) fits on no GPU type it has a profile for"
    wider = sorted((d, g.name) for d, g in usable if d not in model.tensor_parallel and model.memory_gib / d <= g.memory_gib + 1e-9)
    if wider:
        degree, gpu_name = wider[0]
        degrees = sorted({*model.tensor_parallel, degree})
        return Cause("no_fit", f"{where}.tensor_parallel", f"{head} with tensor_parallel {model.tensor_parallel}",
                     f"allow tensor_parallel {degree} (a replica on {degree} {gpu_name} GPUs): tensor_parallel: {degrees}",
                     (model.name,), (Change(f"{where}.tensor_parallel", list(model.tensor_parallel), degrees),))
    allowed = [(g.memory_gib * d, d, g.name) for d, g in usable if d in model.tensor_parallel]
    if not allowed:
        return Cause("no_fit", f"{where}.profiles", f"{head}: no profile times a replica at tensor_parallel "
                     f"{model.tensor_parallel} on a node of its GPU type", "add a profile (or a tp entry) for an allowed degree",
                     (model.name,))
    room, degree, gpu_name = max(allowed)
    fits = math.floor(room * 1000) / 1000
    return Cause("no_fit", f"{where}.memory_gib", f"{head}; the most memory a replica can have is {room:g} GiB "
                 f"({degree} x {gpu_name})",
                 f"reduce memory_gib to at most {fits:g} (e.g. quantise), or add a profile for a GPU type with more memory",
                 (model.name,), (Change(f"{where}.memory_gib", model.memory_gib, fits),))


def model_causes(scenario: Scenario) -> list[Cause]:
    """Demanded models that no GPU type can run at all, whatever the inventory."""
    unlimited = _without_counts(scenario)
    demand = scenario.demand_rps()
    causes = []
    for index, model in enumerate(scenario.models):
        if demand.get(model.name, 0.0) <= 0:
            continue
        fastest = _fastest_batch1_ms(unlimited, model)
        if fastest is None:
            causes.append(_no_fit_cause(unlimited, index, model))
        elif fastest > model.slo_ms + 1e-9:
            slo = _ceil_to(fastest, 0.01)
            causes.append(Cause(
                "slo_unreachable", f"models[{index}].slo_ms",
                f"{model.name!r}: no batch meets slo_ms {model.slo_ms:g}; the fastest is {fastest:g} ms "
                f"(batch 1: wait for the batch in flight, then run, 2 x {fastest / 2:g} ms)",
                f"raise slo_ms to {slo:g}, or add a profile for a faster GPU type",
                (model.name,), (Change(f"models[{index}].slo_ms", model.slo_ms, slo),)))
    return causes


# ------------------------------------------------------- stage 2: slack relaxation


def _group_slots(model: cp_model.CpModel, total, upper: int, per_node: int, degree: int, name: str):
    """GPUs usable by groups of `degree` or more when `total` (<= upper) GPUs fill nodes of `per_node`."""
    full = model.NewIntVar(0, upper // per_node + 1, f"full_nodes[{name}]")
    model.AddDivisionEquality(full, total, per_node)
    rest = model.NewIntVar(0, per_node - 1, f"partial_node[{name}]")
    model.Add(rest == total - per_node * full)
    rest_groups = model.NewIntVar(0, per_node, f"partial_groups[{name},{degree}]")
    model.AddDivisionEquality(rest_groups, rest, degree)
    return degree * ((per_node // degree) * full + rest_groups)


@dataclass(frozen=True)
class _Relaxed:
    extra_gpus: dict[str, int]
    extra_budget_units: int
    plan_cost_usd: float
    used: dict[str, tuple[str, ...]]  # gpu type -> models with replicas there
    proven: bool


def _solve_relaxation(scenario: Scenario, time_limit_s: float, seed: int) -> _Relaxed | None:
    problem = build_problem(_without_counts(scenario))
    scaling = choose_scaling(problem)
    options = replica_options(problem)
    if not options:
        return None
    model = cp_model.CpModel()
    replicas = {
        opt: model.NewIntVar(0, max(1, replica_upper_bound(problem, opt)), f"replicas[{opt.model},{opt.gpu_type},tp{opt.tensor_parallel}]")
        for opt in options
    }
    if problem.objective == "min_cost":
        servable = {o.model for o in options}
        coverage_problem = problem
        if servable != {m.name for m in problem.demanded_models}:  # stage 1 reports the others
            coverage_problem = _only_models(problem, servable)
        add_demand_coverage(model, coverage_problem, scaling, replicas)
    else:
        model.Add(sum(replicas.values()) >= 1)

    extra = {}
    for gpu in scenario.gpu_types:
        if gpu.count is None:
            continue
        on_type = [(opt, var) for opt, var in replicas.items() if opt.gpu_type == gpu.name]
        if not on_type:
            continue
        most = sum(opt.tensor_parallel * replica_upper_bound(problem, opt) for opt, _ in on_type) + gpu.gpus_per_node
        extra[gpu.name] = var = model.NewIntVar(0, most, f"extra_gpus[{gpu.name}]")
        total = model.NewIntVar(0, gpu.count + most, f"gpus[{gpu.name}]")
        model.Add(total == gpu.count + var)
        model.Add(sum(opt.tensor_parallel * r for opt, r in on_type) <= total)
        for degree in sorted({opt.tensor_parallel for opt, _ in on_type if opt.tensor_parallel > 1}):
            slots = _group_slots(model, total, gpu.count + most, gpu.gpus_per_node, degree, gpu.name)
            model.Add(sum(opt.tensor_parallel * r for opt, r in on_type if opt.tensor_parallel >= degree) <= slots)

    plan_cost = cost_expression(replicas)
    extra_budget = None
    if scenario.budget_usd_per_hour is not None:
        most_cost = sum(Scaling.cost(o.cost_per_hour_usd) * replica_upper_bound(problem, o) for o in options) + 1
        extra_budget = model.NewIntVar(0, most_cost, "extra_budget")
        model.Add(plan_cost <= Scaling.cost(scenario.budget_usd_per_hour) + extra_budget)
    spend = sum((Scaling.cost(scenario.gpu_type(t).cost_per_hour_usd) + TIE_BREAK_UNITS_PER_GPU) * v for t, v in extra.items())
    if extra_budget is not None:
        spend = spend + extra_budget
    model.Minimize(spend)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit_s)
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = 1
    code = solver.Solve(model)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    used: dict[str, list[str]] = {}
    for opt, var in sorted(replicas.items(), key=lambda kv: (kv[0].gpu_type, kv[0].model, kv[0].tensor_parallel)):
        if solver.Value(var) > 0 and opt.model not in used.setdefault(opt.gpu_type, []):
            used[opt.gpu_type].append(opt.model)
    return _Relaxed(
        extra_gpus={t: int(solver.Value(v)) for t, v in extra.items() if solver.Value(v) > 0},
        extra_budget_units=int(solver.Value(extra_budget)) if extra_budget is not None else 0,
        plan_cost_usd=Scaling.cost_to_usd(solver.Value(plan_cost)),
        used={t: tuple(ms) for t, ms in used.items()},
        proven=code == cp_model.OPTIMAL,
    )


def _only_models(problem, names: set[str]):
    from dataclasses import replace

    return replace(problem, models=tuple(m for m in problem.models if m.name in names))


def _listed(names: tuple[str, ...], most: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def slack_causes(scenario: Scenario, time_limit_s: float = 10.0, seed: int = 0) -> list[Cause]:
    """Inventory and budget shortfalls, with the cheapest (USD/h) set of additions."""
    relaxed = _solve_relaxation(scenario, time_limit_s, seed)
    if relaxed is None:
        if not replica_options(build_problem(_without_counts(scenario))):
            return []  # nothing can run anywhere: stage 1 (model_causes) says why
        return [Cause(
            "demand_unservable", "max_utilization",
            f"even without inventory and budget limits, the type-level relaxation found no plan with at most "
            f"{MAX_REPLICAS_PER_OPTION:,} replicas of one option: the planned rates (max_utilization "
            f"{scenario.max_utilization:g} x the batch rates) are too small for the demand",
            "raise max_utilization (0.8 is the default), check the batch times, or lower the demand")]
    note = "" if relaxed.proven else " (the smallest found within the time limit; a smaller one may exist)"
    causes = []
    for index, gpu in enumerate(scenario.gpu_types):
        k = relaxed.extra_gpus.get(gpu.name, 0)
        if not k:
            continue
        models = relaxed.used.get(gpu.name, ())
        need = "any replica" if scenario.objective == "max_throughput" else "all demand"
        causes.append(Cause(
            "inventory_short", f"gpu_types[{index}].count",
            f"serving {need} needs {gpu.count + k} {gpu.name} GPUs (for {_listed(models)}); the inventory has {gpu.count}",
            f"+{k} {gpu.name} (count: {gpu.count + k}){note}",
            models, (Change(f"gpu_types[{index}].count", gpu.count, gpu.count + k),)))
    if relaxed.extra_budget_units > 0 and scenario.budget_usd_per_hour is not None:
        budget = scenario.budget_usd_per_hour
        new_budget = _ceil_to((Scaling.cost(budget) + relaxed.extra_budget_units) / COST_UNITS_PER_USD, 0.01)
        added = new_budget - budget
        if scenario.objective == "min_cost":
            what = f"the cheapest plan that serves all demand costs ${relaxed.plan_cost_usd:,.2f}/h"
            models = tuple(m.name for m in scenario.models if scenario.demand_rps().get(m.name, 0) > 0)
        else:
            what = f"the budget buys no replica of any demanded model; the cheapest costs ${relaxed.plan_cost_usd:,.2f}/h"
            models = ()
        causes.append(Cause(
            "budget_short", "budget_usd_per_hour", f"{what}; budget_usd_per_hour is ${budget:,.2f}/h",
            f"+${added:,.2f}/h budget (budget_usd_per_hour: {new_budget:g}){note}",
            models, (Change("budget_usd_per_hour", budget, new_budget),)))
    return causes


# ----------------------------------------------------------------------- together


def explain_infeasibility(scenario: Scenario, time_limit_s: float = 10.0, seed: int = 0) -> list[Cause]:
    """Every reason the scenario has no plan, each with its fix; all fixes together make it
    feasible for the type-level formulation. Empty only when the relaxation needs no change
    (then a solver ran out of time, and the cause says so)."""
    causes: list[Cause] = []
    fixed = scenario
    for _ in range(3):  # a fix may reveal the next cause of the same model (fits, then too slow)
        found = model_causes(fixed)
        if not found:
            break
        causes.extend(found)
        fixed = apply_changes(fixed, [c for cause in found for c in cause.changes])
    causes.extend(slack_causes(fixed, time_limit_s, seed))
    if not causes:
        causes.append(Cause(
            "no_plan_found", "(solver)",
            "the solver found no plan, but a plan exists with the scenario as it is (the type-level relaxation finds one)",
            "raise --time-limit, or use --solver cpsat-type"))
    return causes


def explanation_dicts(causes: list[Cause]) -> list[dict]:
    return [c.as_dict() for c in causes]


def all_changes(explanation: list[dict]) -> list[Change]:
    """The changes listed in a plan file's explanation (to apply them, e.g. in a test or a job)."""
    return [Change(c["path"], c["from"], c["to"]) for item in explanation for c in item.get("changes", [])]
