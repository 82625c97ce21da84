"""The placement problem every solver reads, and the typed result every solver returns.

A solver's answer is a multiset of GPU *patterns*: what one GPU (or one tensor-parallel
group of GPUs) of a type runs, with how many GPUs/groups run it. A dedicated replica
is a pattern with one member; a shared GPU is a pattern with several. Turning patterns
into concrete GPU ids, nodes and routing is `planner.plan.extract_plan`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import pandas as pd

from planner.capacity import (Option, build_candidates, capacity_rps, dedicated_planned_rps, model_cvs, model_options,
                              planned_share, worst_latency_ms)
from planner.scenario import Scenario


@dataclass(frozen=True)
class GpuTypeInfo:
    name: str
    memory_gib: float
    cost_per_hour_usd: float
    count: int | None  # None: unlimited
    gpus_per_node: int
    interference_factor: float = 1.0

    def node_sizes(self) -> list[int] | None:
        """GPUs in each node (full nodes, then one partial), or None when unlimited."""
        if self.count is None:
            return None
        full, rest = divmod(self.count, self.gpus_per_node)
        return [self.gpus_per_node] * full + ([rest] if rest else [])

    def group_slots(self, degree: int) -> int | None:
        """GPUs usable by groups of `degree` or larger, given the node sizes (None: unlimited).

        With power-of-two degrees, groups of sizes >= d fit in the nodes if and only if
        their GPUs add up to at most d * sum(floor(node / d)) for every d.
        """
        sizes = self.node_sizes()
        if sizes is None:
            return None
        return degree * sum(size // degree for size in sizes)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    memory_gib: float
    slo_ms: float
    demand_rps: float
    priority: float
    options: tuple[Option, ...]
    cv: float = 1.0  # arrival cv (planner.capacity.model_cvs): burstier arrivals lower planned_share


@dataclass(frozen=True)
class PlacementProblem:
    """Everything a solver needs, read-only. Built by `build_problem`."""

    scenario_name: str
    objective: str  # "min_cost" | "max_throughput"
    budget_usd_per_hour: float | None
    max_utilization: float
    fairness: bool
    gpu_types: tuple[GpuTypeInfo, ...]
    models: tuple[ModelInfo, ...]
    candidates: pd.DataFrame = field(compare=False, repr=False)

    def gpu_type(self, name: str) -> GpuTypeInfo:
        return self._lookup()[0][name]

    def model(self, name: str) -> ModelInfo:
        return self._lookup()[1][name]

    def _lookup(self) -> tuple[dict[str, GpuTypeInfo], dict[str, ModelInfo]]:
        cached = self.__dict__.get("_by_name")
        if cached is None:
            cached = ({g.name: g for g in self.gpu_types}, {m.name: m for m in self.models})
            object.__setattr__(self, "_by_name", cached)  # a cache of derived data, not a change
        return cached

    @property
    def demanded_models(self) -> tuple[ModelInfo, ...]:
        return tuple(m for m in self.models if m.demand_rps > 0)


def build_problem(scenario: Scenario, candidates: pd.DataFrame | None = None) -> PlacementProblem:
    if candidates is None:
        candidates = build_candidates(scenario)
    demand = scenario.demand_rps()
    cvs = model_cvs(scenario)
    gpu_types = tuple(
        GpuTypeInfo(g.name, g.memory_gib, g.cost_per_hour_usd, g.count, g.gpus_per_node, g.interference_factor) for g in scenario.gpu_types
    )
    models = tuple(
        ModelInfo(m.name, m.memory_gib, m.slo_ms, demand.get(m.name, 0.0), m.priority, tuple(model_options(scenario, m)),
                  cvs[m.name])
        for m in scenario.models
    )
    return PlacementProblem(
        scenario_name=scenario.name,
        objective=scenario.objective,
        budget_usd_per_hour=scenario.budget_usd_per_hour,
        max_utilization=scenario.max_utilization,
        fairness=scenario.fairness and scenario.objective == "max_throughput",
        gpu_types=gpu_types,
        models=models,
        candidates=candidates,
    )


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, order=True)
class Member:
    """One model's slot in a pattern: it runs batches of `batch_size`, each taking `batch_ms`
    (on a shared GPU: the profile's time x the type's interference_factor, see
    planner.capacity.shared_batch_ms)."""

    model: str
    batch_size: int
    batch_ms: float


@dataclass(frozen=True, order=True)
class Pattern:
    """What one GPU, or one tensor-parallel group of `tensor_parallel` GPUs, runs.

    Members take turns (round robin), one batch each per cycle. A tensor-parallel
    group always has exactly one member.
    """

    gpu_type: str
    tensor_parallel: int
    members: tuple[Member, ...]

    def __hash__(self) -> int:
        # the dataclass hash of the same fields, computed once: patterns key the solvers'
        # sets and caches, and re-hashing every member tuple took 2.4 s of a 1,000-model solve
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.gpu_type, self.tensor_parallel, self.members))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict:  # str hashes differ between processes: never pickle one
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    @property
    def cycle_ms(self) -> float:
        return sum(m.batch_ms for m in self.members)

    def capacity_rps(self, member: Member) -> float:
        """Full-load rate of a member: one batch per cycle."""
        return capacity_rps(member.batch_size, self.cycle_ms)

    def latency_ms(self, member: Member) -> float:
        return worst_latency_ms(self.cycle_ms, member.batch_ms)


@dataclass(frozen=True)
class PatternCount:
    pattern: Pattern
    count: int  # GPUs (or TP groups) running the pattern


class SolveStatus(str, Enum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    TIME_LIMIT = "time_limit"
    INFEASIBLE = "infeasible"


@dataclass(frozen=True)
class SolveSettings:
    time_limit_s: float = 60.0
    seed: int = 0
    threads: int = 1
    gap_target: float = 1e-4  # relative gap at which a solve may stop and call itself optimal
    # called with a one-line description of the solver's phase as it goes (the CLI's progress
    # bar); only reports, never changes the plan
    on_progress: Callable[[str], None] | None = field(default=None, compare=False, repr=False)

    def report(self, text: str) -> None:
        if self.on_progress is not None:
            self.on_progress(text)


@dataclass(frozen=True)
class SolveResult:
    """What a solver returns. `bound` is proven: a lower bound on cost (min_cost) or an
    upper bound on served (weighted) req/s (max_throughput)."""

    solver: str
    status: SolveStatus
    objective: str
    value: float
    bound: float
    patterns: tuple[PatternCount, ...]
    served_rps: dict[str, float]
    wall_s: float
    message: str = ""
    stats: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return relative_gap(self.value, self.bound)


def relative_gap(value: float, bound: float) -> float:
    if not (math.isfinite(value) and math.isfinite(bound)):
        return math.inf
    return abs(value - bound) / max(abs(value), 1e-9)


def pattern_cost(problem: PlacementProblem, pattern: Pattern) -> float:
    return problem.gpu_type(pattern.gpu_type).cost_per_hour_usd * pattern.tensor_parallel


def patterns_cost(problem: PlacementProblem, patterns: tuple[PatternCount, ...]) -> float:
    return sum(pattern_cost(problem, pc.pattern) * pc.count for pc in patterns)


def member_planned_rps(problem: PlacementProblem, pattern: Pattern, member: Member) -> float:
    """What the plan may route to one member of a pattern: planned_share x 1000 b / D
    (planner.capacity.planned_share, with the model's SLO and arrival cv)."""
    info = problem.model(member.model)
    share = planned_share(member.batch_size, pattern.cycle_ms, member.batch_ms, info.slo_ms, info.cv,
                          problem.max_utilization)
    return share * pattern.capacity_rps(member)


def planned_capacity_rps(problem: PlacementProblem, patterns: tuple[PatternCount, ...]) -> dict[str, float]:
    """Planned rate (member_planned_rps) summed per model."""
    total = {m.name: 0.0 for m in problem.models}
    for pc in patterns:
        for member in pc.pattern.members:
            total[member.model] += member_planned_rps(problem, pc.pattern, member) * pc.count
    return total


def restrict_to_gpu_types(problem: PlacementProblem, names: set[str]) -> PlacementProblem:
    """The same problem with only the GPU types in `names` (for single-type baselines)."""
    from dataclasses import replace

    return replace(
        problem,
        gpu_types=tuple(g for g in problem.gpu_types if g.name in names),
        models=tuple(replace(m, options=tuple(o for o in m.options if o.gpu_type in names)) for m in problem.models),
        candidates=problem.candidates[problem.candidates.gpu_type.isin(sorted(names))].reset_index(drop=True),
    )


def derived_cache(problem: PlacementProblem, name: str) -> dict:
    """A per-problem dict for data derived from the (frozen) problem, made on first use:
    the caches below and the presence bounds of solvers.colgen.master share this one way
    of keeping them."""
    cache = problem.__dict__.get(name)
    if cache is None:
        cache = {}
        object.__setattr__(problem, name, cache)  # a cache of derived data, not a change
    return cache


def dedicated_rates(problem: PlacementProblem, info: ModelInfo, option: Option):
    """planner.capacity.dedicated_planned_rps of a model alone on one of its options (planned
    req/s for b = 1..max_batch), computed once per problem: pricing, the dive and the bounds
    all ask for it."""
    cache = derived_cache(problem, "_dedicated_rates")
    key = (info.name, option.gpu_type, option.tensor_parallel)
    rates = cache.get(key)
    if rates is None:
        rates = dedicated_planned_rps(option.latency_ms, info.slo_ms, info.cv, problem.max_utilization)
        cache[key] = rates
    return rates


def pattern_member_rates(problem: PlacementProblem, pattern: Pattern) -> tuple[float, ...]:
    """member_planned_rps of every member of a pattern, in member order, computed once per
    problem and pattern (the dive re-makes the same columns for each residual problem)."""
    cache = derived_cache(problem, "_pattern_rates")
    rates = cache.get(pattern)
    if rates is None:
        rates = tuple(member_planned_rps(problem, pattern, member) for member in pattern.members)
        cache[pattern] = rates
    return rates


def remember_member_rates(problem: PlacementProblem, pattern: Pattern, rates: tuple[float, ...]) -> None:
    """Put rates computed elsewhere (pricing, from its own arrays) in pattern_member_rates'
    cache; they must be member_planned_rps's numbers (tests/test_colgen_pricing.py)."""
    derived_cache(problem, "_pattern_rates")[pattern] = rates


def best_planned_rps(problem: PlacementProblem) -> dict[str, float]:
    """Per model, its best planned req/s on any one option alone (over the candidates table),
    computed once per problem."""
    cache = derived_cache(problem, "_best_planned_rps")
    if not cache:
        rows = problem.candidates
        cache.update({str(k): float(v) for k, v in rows.planned_rps.groupby(rows.model).max().items()})
    return cache
