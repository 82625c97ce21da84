"""The packing rules every packing solver shares: which (model, batch) members a GPU type
can run and when a set of them forms a feasible pattern (see planner.problem.Pattern).

A pattern on one GPU (tensor_parallel 1) runs its members round robin, one batch each per
cycle; cycle D = sum of member batch times (each slowed by the type's interference factor
when shared); every member needs D + own batch time <= its SLO, and memories add up within
the GPU's memory. A tensor-parallel pattern is one model alone on a group of GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.capacity import shared_batch_ms, worst_latency_ms
from planner.problem import Member, Pattern, PlacementProblem, member_planned_rps


@dataclass(frozen=True)
class MemberChoices:
    """How one model can run on one GPU type at one TP degree: its batch times and limits."""

    model: str
    gpu_type: str
    tensor_parallel: int
    memory_per_gpu_gib: float
    slo_ms: float
    latency_ms: np.ndarray  # alone, b = 1..max_batch

    def batch_ms(self, batch_size: int, members: int, interference_factor: float) -> float:
        return shared_batch_ms(float(self.latency_ms[batch_size - 1]), members, interference_factor)


def member_choices(problem: PlacementProblem) -> dict[tuple[str, str, int], MemberChoices]:
    """Every (model, GPU type, degree) with a profile that fits memory, for demanded models."""
    out = {}
    for info in problem.demanded_models:
        for opt in info.options:
            out[(info.name, opt.gpu_type, opt.tensor_parallel)] = MemberChoices(
                info.name, opt.gpu_type, opt.tensor_parallel, opt.memory_per_gpu_gib, info.slo_ms, opt.latency_ms
            )
    return out


def make_pattern(problem: PlacementProblem, gpu_type: str, tensor_parallel: int,
                 members: list[tuple[str, int]]) -> Pattern:
    """Build a pattern from (model, batch size) pairs, with batch times per the rules.
    Members are sorted by model name, so equal patterns compare equal."""
    info = problem.gpu_type(gpu_type)
    n = len(members)
    out = []
    for model, batch in sorted(members):
        opt = next(o for o in problem.model(model).options if o.gpu_type == gpu_type and o.tensor_parallel == tensor_parallel)
        out.append(Member(model, int(batch), shared_batch_ms(float(opt.latency_ms[batch - 1]), n, info.interference_factor)))
    return Pattern(gpu_type, tensor_parallel, tuple(out))


def pattern_violations(problem: PlacementProblem, pattern: Pattern) -> list[str]:
    """Why a pattern is not feasible ([] when it is)."""
    info = problem.gpu_type(pattern.gpu_type)
    out = []
    if not pattern.members:
        return ["empty pattern"]
    if pattern.tensor_parallel > 1 and len(pattern.members) != 1:
        out.append("a tensor-parallel group runs one model")
    names = [m.model for m in pattern.members]
    if len(set(names)) != len(names):
        out.append("a model appears twice on one GPU")
    memory = 0.0
    for member in pattern.members:
        opt = next((o for o in problem.model(member.model).options
                    if o.gpu_type == pattern.gpu_type and o.tensor_parallel == pattern.tensor_parallel), None)
        if opt is None:
            out.append(f"{member.model} cannot run on {pattern.gpu_type} at tp {pattern.tensor_parallel}")
            continue
        if not 1 <= member.batch_size <= len(opt.latency_ms):
            out.append(f"{member.model}: batch {member.batch_size} out of range")
            continue
        expected = shared_batch_ms(float(opt.latency_ms[member.batch_size - 1]), len(pattern.members), info.interference_factor)
        if abs(expected - member.batch_ms) > 1e-9 * max(1.0, expected):
            out.append(f"{member.model}: batch_ms {member.batch_ms} is not {expected}")
        memory += opt.memory_per_gpu_gib
        if worst_latency_ms(pattern.cycle_ms, member.batch_ms) > problem.model(member.model).slo_ms + 1e-9:
            out.append(f"{member.model}: cycle {pattern.cycle_ms:.3f} + batch {member.batch_ms:.3f} ms over SLO")
    if memory > info.memory_gib + 1e-9:
        out.append(f"memory {memory:.3f} GiB over {info.memory_gib:g}")
    return out


def planned_rate_rps(problem: PlacementProblem, pattern: Pattern, member: Member) -> float:
    """What the plan may route to a member: planned_share x one batch per cycle
    (planner.capacity.planned_share; planner.problem.member_planned_rps)."""
    return member_planned_rps(problem, pattern, member)
