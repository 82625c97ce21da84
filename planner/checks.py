"""Checks that need several fields of a scenario, run before any solve.

Each `check_*` returns findings; `check_scenario` runs them in order. A finding of
kind "input" is bad input (exit 2); kind "infeasible" means the scenario is well formed
but some demand cannot be served at all (exit 1 from `planner plan`, with an
explanation in the plan file); "warning" is informational.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from planner.capacity import batch_latency_ms, model_options, worst_latency_ms
from planner.errors import ScenarioError, ScenarioErrors
from planner.scenario import Scenario

FindingKind = Literal["input", "infeasible", "warning"]


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    location: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.location}: {self.problem} (fix: {self.fix})"


def check_unique_names(scenario: Scenario) -> list[Finding]:
    found = []
    for field, names in (
        ("gpu_types", [g.name for g in scenario.gpu_types]),
        ("models", [m.name for m in scenario.models]),
    ):
        for name, n in sorted(Counter(names).items()):
            if n > 1:
                index = names.index(name, names.index(name) + 1)
                found.append(Finding("input", f"{field}[{index}].name", f"{name!r} appears {n} times", "give each entry its own name"))
    demanded = [d.model for d in scenario.demand]
    for name, n in sorted(Counter(demanded).items()):
        if n > 1:
            index = demanded.index(name, demanded.index(name) + 1)
            found.append(Finding("input", f"demand[{index}].model", f"{name!r} has {n} demand entries", "merge them into one entry"))
    return found


def check_profile_gpu_types(scenario: Scenario) -> list[Finding]:
    known = {g.name for g in scenario.gpu_types}
    found = []
    for i, model in enumerate(scenario.models):
        for gpu_name in model.profiles:
            if gpu_name not in known:
                found.append(
                    Finding(
                        "input",
                        f"models[{i}].profiles.{gpu_name}",
                        f"unknown GPU type {gpu_name!r}",
                        f"use one of {sorted(known)} or add it to gpu_types",
                    )
                )
        if not model.profiles:
            found.append(Finding("input", f"models[{i}].profiles", "no profile", "add a profile for at least one GPU type"))
    return found


def check_tp_profiles(scenario: Scenario) -> list[Finding]:
    found = []
    for i, model in enumerate(scenario.models):
        for gpu_name, profile in model.profiles.items():
            for degree in sorted(profile.tp or {}):
                if degree not in model.tensor_parallel:
                    found.append(
                        Finding(
                            "warning",
                            f"models[{i}].profiles.{gpu_name}.tp.{degree}",
                            f"degree {degree} is not in tensor_parallel {model.tensor_parallel}; it is ignored",
                            f"add {degree} to models[{i}].tensor_parallel",
                        )
                    )
    return found


def check_demand_models(scenario: Scenario) -> list[Finding]:
    known = {m.name for m in scenario.models}
    found = []
    for i, demand in enumerate(scenario.demand):
        if demand.model not in known:
            found.append(
                Finding("input", f"demand[{i}].model", f"unknown model {demand.model!r}", f"use one of {sorted(known)[:10]} or add it to models")
            )
    return found


def check_objective_fields(scenario: Scenario) -> list[Finding]:
    if scenario.objective == "max_throughput" and scenario.budget_usd_per_hour is None:
        return [Finding("input", "budget_usd_per_hour", "max_throughput needs a budget", "add budget_usd_per_hour: <USD per hour>")]
    if scenario.fairness and scenario.objective != "max_throughput":
        return [Finding("warning", "fairness", "fairness applies to max_throughput only; ignored", "remove it or set objective: max_throughput")]
    return []


def check_models_fit(scenario: Scenario) -> list[Finding]:
    """A demanded model must fit (memory, SLO at batch 1) on at least one GPU type.

    GPU counts play no part: a type with too few GPUs is an inventory shortfall, which
    planner.infeasibility sizes (`+3 L4`) once the solver says there is no plan."""
    known_types = {g.name for g in scenario.gpu_types}
    scenario = scenario.model_copy(update={"gpu_types": [g.model_copy(update={"count": None}) for g in scenario.gpu_types]})
    demand = scenario.demand_rps()
    found = []
    for i, model in enumerate(scenario.models):
        if not set(model.profiles) <= known_types:
            continue  # reported by check_profile_gpu_types
        options = model_options(scenario, model)
        kind: FindingKind = "infeasible" if demand.get(model.name, 0.0) > 0 else "warning"
        if not options:
            largest = max(g.memory_gib * min(max(model.tensor_parallel), g.gpus_per_node) for g in scenario.gpu_types if g.name in model.profiles) if model.profiles else 0
            found.append(
                Finding(
                    kind,
                    f"models[{i}]",
                    f"{model.name!r} ({model.memory_gib:g} GiB) fits on no GPU type it has a profile for "
                    f"(largest: {largest:g} GiB with tensor_parallel {model.tensor_parallel})",
                    "allow a larger tensor_parallel degree, add a profile for a larger GPU, or reduce memory_gib",
                )
            )
            continue
        fastest = min(float(worst_latency_ms(o.latency_ms[0], o.latency_ms[0])) for o in options)
        if fastest > model.slo_ms + 1e-9:
            found.append(
                Finding(
                    kind,
                    f"models[{i}].slo_ms",
                    f"{model.name!r}: no batch meets slo_ms {model.slo_ms:g}; the best is {fastest:g} ms at batch 1 (2 x batch time)",
                    f"raise slo_ms to at least {fastest:g} or add a faster GPU type",
                )
            )
    return found


CHECKS = (
    check_unique_names,
    check_profile_gpu_types,
    check_tp_profiles,
    check_demand_models,
    check_objective_fields,
    check_models_fit,
)


def check_scenario(scenario: Scenario) -> list[Finding]:
    """Run every check; input errors first."""
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(scenario))
    return findings


def raise_input_errors(findings: list[Finding]) -> None:
    errors = [ScenarioError(f.location, f.problem, f.fix) for f in findings if f.kind == "input"]
    if errors:
        raise ScenarioErrors(errors)


__all__ = ["Finding", "check_scenario", "raise_input_errors", "batch_latency_ms"]
