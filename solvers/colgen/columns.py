"""Columns of the packing master: a feasible GPU pattern with its cost and coverage.

Also the per-type arrays pricing works on (`TypeItems`): for every demanded model that
can run alone on one GPU of the type, its memory, SLO, demand and batch times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.problem import Member, Pattern, PlacementProblem, pattern_member_rates
from solvers.packing_rules import pattern_violations


@dataclass(frozen=True)
class Column:
    pattern: Pattern
    type_index: int
    gpus: int  # GPUs the pattern occupies (its tensor-parallel degree)
    cost_usd_per_hour: float
    model_indices: tuple[int, ...]
    coverage_rps: tuple[float, ...]  # min(planned rate, demand) per member: the tightened coefficient


@dataclass
class Index:
    """Stable integer indices for the demanded models and the GPU types."""

    models: list[str]
    types: list[str]
    demand_rps: np.ndarray
    priority: np.ndarray
    _by_name: dict | None = None

    def model_index(self) -> dict[str, int]:
        if self._by_name is None:
            self._by_name = {name: i for i, name in enumerate(self.models)}
        return self._by_name

    def residual(self, covered_rps: np.ndarray) -> Index:
        """The models with demand left after `covered_rps`, with that demand."""
        left = self.demand_rps - covered_rps
        keep = np.nonzero(left > 1e-6 * np.maximum(1.0, self.demand_rps))[0]
        return Index([self.models[i] for i in keep], self.types, left[keep], self.priority[keep])

    @classmethod
    def of(cls, problem: PlacementProblem) -> Index:
        demanded = [m for m in problem.models if m.demand_rps > 0]
        return cls(
            models=[m.name for m in demanded],
            types=[g.name for g in problem.gpu_types],
            demand_rps=np.array([m.demand_rps for m in demanded], dtype=float),
            priority=np.array([m.priority for m in demanded], dtype=float),
        )



def make_column(problem: PlacementProblem, index: Index, pattern: Pattern, check: bool = False) -> Column:
    if check:
        bad = pattern_violations(problem, pattern)
        if bad:
            raise ValueError(f"infeasible pattern {pattern}: {bad}")
    gpu = problem.gpu_type(pattern.gpu_type)
    by_name = index.model_index()
    indices, coverage = [], []
    for member, rate in zip(pattern.members, pattern_member_rates(problem, pattern)):  # planned_share x 1000 b / D
        i = by_name.get(member.model)
        if i is None:  # no (residual) demand: the member runs but covers nothing here
            continue
        indices.append(i)
        coverage.append(min(rate, float(index.demand_rps[i])))
    return Column(
        pattern=pattern,
        type_index=index.types.index(pattern.gpu_type),
        gpus=pattern.tensor_parallel,
        cost_usd_per_hour=gpu.cost_per_hour_usd * pattern.tensor_parallel,
        model_indices=tuple(indices),
        coverage_rps=tuple(coverage),
    )


@dataclass
class TypeItems:
    """What pricing needs for one GPU type at tensor-parallel degree 1."""

    type_index: int
    gpu_type: str
    memory_gib: float
    interference_factor: float
    model_indices: np.ndarray  # into Index.models
    memory_per_gpu_gib: np.ndarray
    slo_ms: np.ndarray
    latencies_ms: list[np.ndarray]  # alone, b = 1..max_batch, per item


def type_items(problem: PlacementProblem, index: Index) -> list[TypeItems]:
    """Per GPU type, the models of `index` that can run alone on one GPU of it."""
    out = []
    for t, gpu in enumerate(problem.gpu_types):
        idx, mem, slo, lat = [], [], [], []
        for i, name in enumerate(index.models):
            info = problem.model(name)
            for opt in info.options:
                if opt.gpu_type == gpu.name and opt.tensor_parallel == 1:
                    idx.append(i)
                    mem.append(opt.memory_per_gpu_gib)
                    slo.append(info.slo_ms)
                    lat.append(opt.latency_ms)
        out.append(
            TypeItems(t, gpu.name, gpu.memory_gib, gpu.interference_factor, np.array(idx, dtype=np.int64),
                      np.array(mem, dtype=float), np.array(slo, dtype=float), lat)
        )
    return out


def members_pattern(gpu_type: str, tensor_parallel: int, members: list[Member]) -> Pattern:
    return Pattern(gpu_type, tensor_parallel, tuple(sorted(members)))
