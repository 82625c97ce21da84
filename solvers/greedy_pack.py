"""Greedy packing baseline with sharing (AlpaServe-style).

Repeatedly take the model with the most unserved demand (x priority for max_throughput)
and give it a replica: on the least-loaded open GPU where it fits (memory, its SLO under the
grown cycle, every other member's SLO still held, and the GPU's members together less
short of demand than before), at the batch that serves the most of its unserved demand;
else on a new GPU (or TP group) of the type with the lowest cost per useful req/s that
inventory, nodes and the budget allow. Stops when every model is served (min_cost) or
nothing more can be placed (max_throughput). Deterministic; proves nothing of its own, so
its bound is the fluid bound (solvers.bounds).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from planner.capacity import best_dedicated_batch, planned_share
from planner.problem import PatternCount, PlacementProblem, SolveResult, SolveSettings, SolveStatus
from solvers.direct_slots import heuristic_bound, make_result
from solvers.packing_rules import MemberChoices, make_pattern, member_choices, pattern_violations

_EPS = 1e-9


@dataclass
class _OpenGpu:
    index: int
    gpu_type: str
    tensor_parallel: int
    memory_gib: float
    interference_factor: float
    members: dict[str, int] = field(default_factory=dict)  # model -> batch
    alone_ms: dict[str, float] = field(default_factory=dict)
    memory_used_gib: float = 0.0

    def cycle_ms(self, extra_alone_ms: float = 0.0, extra_members: int = 0) -> float:
        n = len(self.members) + extra_members
        factor = self.interference_factor if n > 1 else 1.0
        return factor * (sum(self.alone_ms.values()) + extra_alone_ms)

    def rates(self, problem: PlacementProblem) -> dict[str, float]:
        """Planned rate of every member (the capacity rule, planner.capacity.planned_share)."""
        cycle = self.cycle_ms()
        factor = self.interference_factor if len(self.members) > 1 else 1.0
        return {m: _planned_rps(problem, m, b, cycle, factor * self.alone_ms[m]) for m, b in self.members.items()}


def _planned_rps(problem: PlacementProblem, model: str, batch: int, cycle_ms: float, own_ms: float) -> float:
    info = problem.model(model)
    share = planned_share(batch, cycle_ms, own_ms, info.slo_ms, info.cv, problem.max_utilization)
    return share * 1000.0 * batch / cycle_ms


class _Nodes:
    """GPUs left per node and type; TP groups stay inside a node (best fit)."""

    def __init__(self, problem: PlacementProblem):
        self.free = {g.name: (None if g.count is None else list(g.node_sizes())) for g in problem.gpu_types}

    def can_take(self, gpu_type: str, degree: int) -> bool:
        nodes = self.free[gpu_type]
        return nodes is None or any(free >= degree for free in nodes)

    def take(self, gpu_type: str, degree: int) -> None:
        nodes = self.free[gpu_type]
        if nodes is not None:
            i = min((j for j, free in enumerate(nodes) if free >= degree), key=lambda j: (nodes[j], j))
            nodes[i] -= degree


class _State:
    def __init__(self, problem: PlacementProblem):
        self.problem = problem
        self.u = problem.max_utilization
        self.choices: dict[tuple[str, str, int], MemberChoices] = member_choices(problem)
        self.gpus: list[_OpenGpu] = []
        self.capacity = {m.name: 0.0 for m in problem.demanded_models}
        self.nodes = _Nodes(problem)
        self.spent = 0.0
        self.budget = problem.budget_usd_per_hour if problem.budget_usd_per_hour is not None else math.inf

    def deficit(self, model: str) -> float:
        return max(0.0, self.problem.model(model).demand_rps - self.capacity[model])

    def urgency(self, model: str) -> float:
        weight = self.problem.model(model).priority if self.problem.objective == "max_throughput" else 1.0
        return weight * self.deficit(model)


# ------------------------------------------------------------------ joining an open GPU


def _load(gpu: _OpenGpu, problem: PlacementProblem) -> float:
    """Share of the GPU's tighter resource in use: memory, or the SLO budget of the cycle."""
    slack = min(problem.model(m).slo_ms - gpu.interference_factor * gpu.alone_ms[m] for m in gpu.members)
    return max(gpu.memory_used_gib / gpu.memory_gib, gpu.cycle_ms(0.0, 1) / max(slack, _EPS))


def _best_join(state: _State, gpu: _OpenGpu, model: str) -> tuple[int, float] | None:
    """(batch, progress) of the best way for `model` to join `gpu`, or None."""
    problem, f = state.problem, gpu.interference_factor
    choice = state.choices.get((model, gpu.gpu_type, 1))
    if choice is None or model in gpu.members or gpu.memory_used_gib + choice.memory_per_gpu_gib > gpu.memory_gib + _EPS:
        return None
    latency = choice.latency_ms
    cycles = f * (sum(gpu.alone_ms.values()) + latency)
    members_ok = cycles <= min(problem.model(m).slo_ms - f * gpu.alone_ms[m] for m in gpu.members) + _EPS
    own_ok = cycles + f * latency <= choice.slo_ms + _EPS
    feasible = np.flatnonzero(members_ok & own_ok)
    if feasible.size == 0:
        return None
    others_before = sum(state.deficit(m) for m in gpu.members)
    old_rates = gpu.rates(problem)
    best = None
    for i in feasible:
        b, cycle = int(i) + 1, float(cycles[i])
        own = _planned_rps(problem, model, b, cycle, f * float(latency[i]))
        others_after = sum(max(0.0, problem.model(m).demand_rps - (state.capacity[m] - rate + _planned_rps(
            problem, m, gpu.members[m], cycle, f * gpu.alone_ms[m]))) for m, rate in old_rates.items())
        if others_after > others_before + 1e-9:
            continue  # the members already there keep what they serve: only spare time is shared
        key = (min(own, state.deficit(model)), -cycle)
        if best is None or key > best[0]:
            best = (key, b, key[0])
    return None if best is None else (best[1], best[2])


def _apply(state: _State, gpu: _OpenGpu, model: str, batch: int) -> None:
    for m, rate in gpu.rates(state.problem).items():
        state.capacity[m] -= rate
    choice = state.choices[(model, gpu.gpu_type, gpu.tensor_parallel)]
    gpu.members[model] = batch
    gpu.alone_ms[model] = float(choice.latency_ms[batch - 1])
    gpu.memory_used_gib += choice.memory_per_gpu_gib
    for m, rate in gpu.rates(state.problem).items():
        state.capacity[m] += rate


def try_join(state: _State, model: str) -> bool:
    """Join the least-loaded open GPU where the model fits and the GPU's members gain."""
    open_gpus = [g for g in state.gpus if g.tensor_parallel == 1 and (model, g.gpu_type, 1) in state.choices]
    for gpu in sorted(open_gpus, key=lambda g: (_load(g, state.problem), g.index)):
        found = _best_join(state, gpu, model)
        if found is not None:
            _apply(state, gpu, model, found[0])
            return True
    return False


# ------------------------------------------------------------------- opening a new GPU


def _open_batch(state: _State, choice: MemberChoices) -> int | None:
    """The batch with the most planned rate alone (the cheapest per req/s); its spare time
    is what later models share."""
    return best_dedicated_batch(choice.latency_ms, choice.slo_ms, state.problem.model(choice.model).cv, state.u)


def try_open(state: _State, model: str) -> bool:
    """Open the GPU (group) with the lowest cost per useful req/s that inventory and budget allow."""
    best = None
    for (m, gpu_type, degree), choice in sorted(state.choices.items()):
        if m != model:
            continue
        info = state.problem.gpu_type(gpu_type)
        cost = info.cost_per_hour_usd * degree
        if state.spent + cost > state.budget + 1e-9 or not state.nodes.can_take(gpu_type, degree):
            continue
        batch = _open_batch(state, choice)
        if batch is None:
            continue
        alone = float(choice.latency_ms[batch - 1])
        rate = _planned_rps(state.problem, model, batch, alone, alone)
        key = (cost / max(min(rate, state.deficit(model)), _EPS), gpu_type, degree)
        if best is None or key < best[0]:
            best = (key, gpu_type, degree, batch)
    if best is None:
        return False
    _, gpu_type, degree, batch = best
    info = state.problem.gpu_type(gpu_type)
    state.nodes.take(gpu_type, degree)
    state.spent += info.cost_per_hour_usd * degree
    gpu = _OpenGpu(len(state.gpus), gpu_type, degree, info.memory_gib, info.interference_factor)
    state.gpus.append(gpu)
    _apply(state, gpu, model, batch)
    return True


# ------------------------------------------------------------------------------ prune


def drop_spare_gpus(state: _State) -> None:
    """Close GPUs whose members are served without them, most expensive first."""
    for gpu in sorted(state.gpus, key=lambda g: (-state.problem.gpu_type(g.gpu_type).cost_per_hour_usd * g.tensor_parallel, -g.index)):
        rates = gpu.rates(state.problem)
        if all(state.capacity[m] - r >= state.problem.model(m).demand_rps - 1e-9 for m, r in rates.items()):
            for m, r in rates.items():
                state.capacity[m] -= r
            state.gpus.remove(gpu)


# ------------------------------------------------------------------------------ solve


def _patterns(state: _State) -> tuple[PatternCount, ...]:
    counts: Counter = Counter()
    for gpu in state.gpus:
        pattern = make_pattern(state.problem, gpu.gpu_type, gpu.tensor_parallel, sorted(gpu.members.items()))
        problems = pattern_violations(state.problem, pattern)
        if problems:
            raise AssertionError(f"greedy-pack built an infeasible pattern: {problems}")
        counts[pattern] += 1
    return tuple(PatternCount(p, n) for p, n in sorted(counts.items(), key=lambda kv: kv[0]))


class GreedyPack:
    name = "greedy-pack"
    description = "greedy packing with sharing: most-unserved model onto the least-loaded GPU with room (baseline)"

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        state = _State(problem)
        max_steps = 10 * sum(math.ceil(m.demand_rps) + 1 for m in problem.demanded_models) + 1000
        for _ in range(max_steps):
            waiting = sorted((m for m in state.capacity if state.deficit(m) > _EPS), key=lambda m: (-state.urgency(m), m))
            if not waiting or not any(try_join(state, m) or try_open(state, m) for m in waiting):
                break
        drop_spare_gpus(state)
        patterns = _patterns(state)
        short = [m for m in state.capacity if state.deficit(m) > 1e-6 * max(1.0, problem.model(m).demand_rps)]
        wall = time.perf_counter() - start
        stats = {"gpus": sum(g.tensor_parallel for g in state.gpus)}
        if problem.objective == "min_cost" and short:
            return SolveResult(self.name, SolveStatus.INFEASIBLE, problem.objective, math.nan, heuristic_bound(problem),
                               (), {}, wall, message=f"greedy-pack could not place {', '.join(short)}", stats=stats)
        result = make_result(problem, self.name, SolveStatus.FEASIBLE, patterns, heuristic_bound(problem), wall, stats=stats)
        if abs(result.value - result.bound) <= 1e-9 * max(1.0, abs(result.value)):
            result = make_result(problem, self.name, SolveStatus.OPTIMAL, patterns, result.bound, wall, stats=stats)
        return result
