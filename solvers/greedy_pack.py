"""Greedy packing baseline with sharing (AlpaServe-style).

Repeatedly take the model with the most unserved demand (x priority for max_throughput)
and give it a replica: on the least-loaded open GPU where it fits (memory, its SLO under the
grown cycle, every other member's SLO still held, and the GPU's members together less
short of demand than before), at the batch that serves the most of its unserved demand;
else on a new GPU (or TP group) of the type with the lowest cost per useful req/s that
inventory, nodes and the budget allow. Stops when every model is served (min_cost) or
nothing more can be placed (max_throughput). Deterministic; proves nothing of its own, so
its bound is the fluid bound (solvers.bounds).

Restarts (min_cost): a model can find every GPU it runs on spent by models placed before
it. The greedy then starts again with the models it could not place placed first, up to
`RESTARTS` times and while a start leaves out a model not yet placed first; a model placed
first keeps its place in the order of the next start
(without restarts it found no plan on 8 of 26 generated scenarios that have one, and on
fleet-50x64). Only when the last start still leaves a model out does it give up, and it says
that a greedy found no plan, not that none exists.

Speed: whether a model can join an open GPU is first checked for every open GPU of a type
at once (numpy: memory; the cycle at the model's shortest batch against every member's SLO
and against the longest cycle at which the members keep what they serve; a GPU that refused
the model and has not changed since is skipped), and the batch choice with its effect on
the members runs compiled (`_best_join_batch`, numba). The checks leave out only GPUs the
join rule refuses (tests/test_greedy_pack.py checks every one), so the plans are those of
the plain loop over GPUs and batches (the same on all 37 scenarios where that loop found
one): fleet-200x512 17 s -> 0.8 s; fleet-1000x4096, killed at 210 s, 3.4 s.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numba
import numpy as np

from planner.capacity import best_dedicated_batch, planned_share
from planner.problem import PatternCount, PlacementProblem, SolveResult, SolveSettings, SolveStatus
from solvers.direct_slots import heuristic_bound, make_result
from solvers.packing_rules import MemberChoices, make_pattern, member_choices, pattern_violations

_EPS = 1e-9
RESTARTS = 4  # starts again with the models left out placed first, at most this many times

_planned_share = numba.njit(cache=True)(planned_share)  # the capacity rule, compiled unchanged


def _planned_rps(problem: PlacementProblem, model: str, batch: int, cycle_ms: float, own_ms: float) -> float:
    info = problem.model(model)
    share = planned_share(batch, cycle_ms, own_ms, info.slo_ms, info.cv, problem.max_utilization)
    return share * 1000.0 * batch / cycle_ms


@numba.njit(cache=True)
def _planned_rps_compiled(batch, cycle_ms, own_ms, slo_ms, cv, utilization):
    share = _planned_share(batch, cycle_ms, own_ms, slo_ms, cv, utilization)
    return share * 1000.0 * batch / cycle_ms


@numba.njit(cache=True)
def _best_join_batch(latency, factor, alone_sum_ms, members_slack_ms, slo_ms, cv, deficit, member_alone_ms,
                     member_batch, member_slo_ms, member_cv, member_demand, member_capacity, member_rate,
                     utilization):
    """(batch, rate it serves of the deficit) of the best way to join a GPU whose members
    run `member_*` (alone times, batches, SLOs, cvs, demands, the capacity each has across
    the plan, the rate each gets here now), or (0, 0) when no batch keeps every SLO without
    leaving the members together shorter of demand. Best: the most of `deficit` served,
    then the shorter cycle; batches in increasing order, the first best wins."""
    n = len(member_alone_ms)
    short_before = 0.0
    for j in range(n):
        short_before += max(0.0, member_demand[j] - member_capacity[j])
    best_batch, best_served, best_cycle = 0, 0.0, 0.0
    for i in range(len(latency)):
        cycle = factor * (alone_sum_ms + latency[i])
        if not (cycle <= members_slack_ms + 1e-9 and cycle + factor * latency[i] <= slo_ms + 1e-9):
            continue
        batch = i + 1
        own = _planned_rps_compiled(batch, cycle, factor * latency[i], slo_ms, cv, utilization)
        short_after = 0.0
        for j in range(n):
            rate = _planned_rps_compiled(member_batch[j], cycle, factor * member_alone_ms[j], member_slo_ms[j],
                                         member_cv[j], utilization)
            short_after += max(0.0, member_demand[j] - (member_capacity[j] - member_rate[j] + rate))
        if short_after > short_before + 1e-9:
            continue  # the members already there keep what they serve: only spare time is shared
        served = min(own, deficit)
        if best_batch == 0 or served > best_served or (served == best_served and cycle < best_cycle):
            best_batch, best_served, best_cycle = batch, served, cycle
    return best_batch, best_served


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
    member_rates: dict[str, float] = field(default_factory=dict)  # what each member gets here now
    slot: int = -1  # its place in _SharedGpus of its type (single GPUs only)

    def cycle_ms(self, extra_alone_ms: float = 0.0, extra_members: int = 0) -> float:
        n = len(self.members) + extra_members
        factor = self.interference_factor if n > 1 else 1.0
        return factor * (sum(self.alone_ms.values()) + extra_alone_ms)

    def rates(self, problem: PlacementProblem) -> dict[str, float]:
        """Planned rate of every member (the capacity rule, planner.capacity.planned_share)."""
        cycle = self.cycle_ms()
        factor = self.interference_factor if len(self.members) > 1 else 1.0
        return {m: _planned_rps(problem, m, b, cycle, factor * self.alone_ms[m]) for m, b in self.members.items()}

    def cycle_members_keep_ms(self, capacity: dict[str, float], demand: dict[str, float]) -> float:
        """At least the longest cycle at which every member still serves what it must here
        (its demand less what its other replicas serve), within the join rule's 1e-9: a
        member's share cannot grow with the cycle (it waits fewer cycles), so its rate here
        at cycle D is at most its rate now x (cycle now / D)."""
        cycle = self.cycle_ms()
        longest = math.inf
        for m, rate in self.member_rates.items():
            need = rate - (capacity[m] - demand[m])  # the rate it must keep here
            if need > 1e-9:
                longest = min(longest, rate * cycle / (need - 1e-9))
        return longest * (1.0 + 1e-9)

    def members_slack_ms(self, problem: PlacementProblem) -> float:
        """The longest cycle every member's SLO allows once the GPU is shared."""
        return min(problem.model(m).slo_ms - self.interference_factor * self.alone_ms[m] for m in self.members)


class _SharedGpus:
    """The open single GPUs of one type, as arrays, so a joining model is checked against
    all of them at once: memory used, members' summed alone times, the cycle the members'
    SLOs allow, the cycle at which the members keep what they serve, and a version that
    changes whenever any of these or a member's capacity may have changed."""

    def __init__(self):
        self.gpus: list[_OpenGpu] = []
        self.memory_used_gib = np.zeros(16)
        self.alone_sum_ms = np.zeros(16)
        self.slack_ms = np.zeros(16)
        self.keep_cycle_ms = np.zeros(16)  # the longest cycle at which its members may keep what they serve
        self.version = np.zeros(16, dtype=np.int64)  # bumped whenever the GPU or a member's capacity changes

    def add(self, gpu: _OpenGpu) -> None:
        if len(self.gpus) == len(self.memory_used_gib):
            for name in ("memory_used_gib", "alone_sum_ms", "slack_ms", "keep_cycle_ms", "version"):
                array = getattr(self, name)
                setattr(self, name, np.concatenate([array, np.zeros(len(self.gpus), dtype=array.dtype)]))
        gpu.slot = len(self.gpus)
        self.gpus.append(gpu)

    def update(self, gpu: _OpenGpu, problem: PlacementProblem, capacity: dict[str, float],
               demand: dict[str, float]) -> None:
        slot = gpu.slot
        self.memory_used_gib[slot] = gpu.memory_used_gib
        self.alone_sum_ms[slot] = sum(gpu.alone_ms.values())
        self.slack_ms[slot] = gpu.members_slack_ms(problem)
        self.keep_cycle_ms[slot] = gpu.cycle_members_keep_ms(capacity, demand)
        self.version[slot] += 1


@dataclass(frozen=True)
class _OpenOption:
    """One way to open a new GPU (group) for a model, with what it serves alone."""

    gpu_type: str
    degree: int
    cost: float
    batch: int
    rate: float


class _State:
    def __init__(self, problem: PlacementProblem):
        self.problem = problem
        self.u = problem.max_utilization
        self.choices: dict[tuple[str, str, int], MemberChoices] = member_choices(problem)
        self.gpus: list[_OpenGpu] = []
        self.capacity = {m.name: 0.0 for m in problem.demanded_models}
        self.demand = {m.name: m.demand_rps for m in problem.demanded_models}
        self.weight = {m.name: (m.priority if problem.objective == "max_throughput" else 1.0)
                       for m in problem.demanded_models}
        self.nodes = _Nodes(problem)
        self.spent = 0.0
        self.budget = problem.budget_usd_per_hour if problem.budget_usd_per_hour is not None else math.inf
        self.shared = {g.name: _SharedGpus() for g in problem.gpu_types}
        self.shared_gpus_of: dict[str, list[_OpenGpu]] = {m.name: [] for m in problem.demanded_models}
        # (model, type) -> per open GPU of the type, its version when the model could not join it
        self.refused: dict[tuple[str, str], np.ndarray] = {}
        self.join_types: dict[str, list[str]] = {}  # model -> types it runs on alone on one GPU
        self.open_options: dict[str, list[_OpenOption]] = {}
        for (model, gpu_type, degree), choice in sorted(self.choices.items()):
            if degree == 1:
                self.join_types.setdefault(model, []).append(gpu_type)
            batch = best_dedicated_batch(choice.latency_ms, choice.slo_ms, problem.model(model).cv, self.u)
            if batch is None:
                continue
            alone = float(choice.latency_ms[batch - 1])
            rate = _planned_rps(problem, model, batch, alone, alone)
            cost = problem.gpu_type(gpu_type).cost_per_hour_usd * degree
            self.open_options.setdefault(model, []).append(_OpenOption(gpu_type, degree, cost, batch, rate))

    def deficit(self, model: str) -> float:
        return max(0.0, self.demand[model] - self.capacity[model])

    def urgency(self, model: str) -> float:
        return self.weight[model] * self.deficit(model)


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


# ------------------------------------------------------------------ joining an open GPU


def _best_join(state: _State, gpu: _OpenGpu, model: str) -> tuple[int, float] | None:
    """(batch, progress) of the best way for `model` to join `gpu`, or None."""
    problem = state.problem
    choice = state.choices.get((model, gpu.gpu_type, 1))
    if choice is None or model in gpu.members or gpu.memory_used_gib + choice.memory_per_gpu_gib > gpu.memory_gib + _EPS:
        return None
    names = list(gpu.members)
    infos = [problem.model(m) for m in names]
    batch, served = _best_join_batch(
        np.asarray(choice.latency_ms, dtype=float), gpu.interference_factor, sum(gpu.alone_ms.values()),
        gpu.members_slack_ms(problem), choice.slo_ms, problem.model(model).cv, state.deficit(model),
        np.array([gpu.alone_ms[m] for m in names]), np.array([gpu.members[m] for m in names], dtype=np.int64),
        np.array([i.slo_ms for i in infos]), np.array([i.cv for i in infos]),
        np.array([state.demand[m] for m in names]), np.array([state.capacity[m] for m in names]),
        np.array([gpu.member_rates[m] for m in names]), state.u)
    return None if batch == 0 else (int(batch), float(served))


def _apply(state: _State, gpu: _OpenGpu, model: str, batch: int) -> None:
    for m, rate in gpu.member_rates.items():
        state.capacity[m] -= rate
    choice = state.choices[(model, gpu.gpu_type, gpu.tensor_parallel)]
    gpu.members[model] = batch
    gpu.alone_ms[model] = float(choice.latency_ms[batch - 1])
    gpu.memory_used_gib += choice.memory_per_gpu_gib
    gpu.member_rates = gpu.rates(state.problem)
    for m, rate in gpu.member_rates.items():
        state.capacity[m] += rate
    if gpu.tensor_parallel == 1:
        state.shared_gpus_of[model].append(gpu)
    for m in gpu.members:  # its capacity changed, and so may what the other GPUs holding it accept
        for other in state.shared_gpus_of[m]:
            if other is not gpu:
                state.shared[other.gpu_type].update(other, state.problem, state.capacity, state.demand)
    if gpu.tensor_parallel == 1:
        state.shared[gpu.gpu_type].update(gpu, state.problem, state.capacity, state.demand)


def _join_candidates(state: _State, model: str) -> list[_OpenGpu]:
    """Open single GPUs the model might join, least loaded first (load: the larger of the
    share of memory used and the cycle against the members' SLOs; ties to the older GPU).
    Leaves out GPUs where no batch of the model fits (memory, or even its shortest batch
    breaks an SLO), GPUs where even that cycle leaves a member short of what it serves
    now (`cycle_members_keep_ms`: the join rule refuses those) and GPUs that refused the
    model and have not changed since (neither they nor their members' capacities: what
    decides a refusal)."""
    found = []
    for gpu_type in state.join_types.get(model, ()):
        shared = state.shared[gpu_type]
        n = len(shared.gpus)
        if n == 0:
            continue
        info = state.problem.gpu_type(gpu_type)
        choice = state.choices[(model, gpu_type, 1)]
        f = info.interference_factor
        shortest = float(np.min(choice.latency_ms))
        used, alone_sum, slack = shared.memory_used_gib[:n], shared.alone_sum_ms[:n], shared.slack_ms[:n]
        cycle = f * (alone_sum + shortest)
        fits = ((used + choice.memory_per_gpu_gib <= info.memory_gib + _EPS) & (cycle <= slack + _EPS)
                & (cycle + f * shortest <= choice.slo_ms + _EPS) & (cycle <= shared.keep_cycle_ms[:n]))
        refused = state.refused.get((model, gpu_type))
        if refused is not None:
            seen = min(len(refused), n)
            fits[:seen] &= refused[:seen] != shared.version[:seen]
        load = np.maximum(used / info.memory_gib, f * alone_sum / np.maximum(slack, _EPS))
        for p in np.flatnonzero(fits):
            found.append((float(load[p]), shared.gpus[p].index, shared.gpus[p]))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [gpu for _, _, gpu in found]


def try_join(state: _State, model: str) -> bool:
    """Join the least-loaded open GPU where the model fits and the GPU's members gain."""
    for gpu in _join_candidates(state, model):
        found = _best_join(state, gpu, model)
        if found is not None:
            _apply(state, gpu, model, found[0])
            return True
        shared = state.shared[gpu.gpu_type]
        refused = state.refused.get((model, gpu.gpu_type))
        if refused is None or len(refused) < len(shared.gpus):
            grown = np.full(len(shared.version), -1, dtype=np.int64)
            if refused is not None:
                grown[:len(refused)] = refused
            refused = state.refused[(model, gpu.gpu_type)] = grown
        refused[gpu.slot] = shared.version[gpu.slot]
    return False


# ------------------------------------------------------------------- opening a new GPU


def try_open(state: _State, model: str) -> bool:
    """Open the GPU (group) with the lowest cost per useful req/s that inventory and budget
    allow, at the batch with the most planned rate alone (the cheapest per req/s; its spare
    time is what later models share)."""
    best = None
    for option in state.open_options.get(model, ()):
        if state.spent + option.cost > state.budget + 1e-9 or not state.nodes.can_take(option.gpu_type, option.degree):
            continue
        key = (option.cost / max(min(option.rate, state.deficit(model)), _EPS), option.gpu_type, option.degree)
        if best is None or key < best[0]:
            best = (key, option)
    if best is None:
        return False
    option = best[1]
    info = state.problem.gpu_type(option.gpu_type)
    state.nodes.take(option.gpu_type, option.degree)
    state.spent += option.cost
    gpu = _OpenGpu(len(state.gpus), option.gpu_type, option.degree, info.memory_gib, info.interference_factor)
    state.gpus.append(gpu)
    if option.degree == 1:
        state.shared[option.gpu_type].add(gpu)
    _apply(state, gpu, model, option.batch)
    return True


# ------------------------------------------------------------------------------ prune


def drop_spare_gpus(state: _State) -> None:
    """Close GPUs whose members are served without them, most expensive first."""
    for gpu in sorted(state.gpus, key=lambda g: (-state.problem.gpu_type(g.gpu_type).cost_per_hour_usd * g.tensor_parallel, -g.index)):
        rates = gpu.member_rates
        if all(state.capacity[m] - r >= state.demand[m] - 1e-9 for m, r in rates.items()):
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


def run_greedy(problem: PlacementProblem, first: tuple[str, ...] = ()) -> _State:
    """One greedy pass; the models in `first` go before the rest, in that order, until served."""
    state = _State(problem)
    names = list(state.capacity)
    rank = np.array([first.index(m) if m in first else len(first) for m in names])
    by_name = np.argsort(np.argsort(np.array(names, dtype=object)))  # each model's place in name order
    demand = np.array([state.demand[m] for m in names])
    weight = np.array([state.weight[m] for m in names])
    max_steps = 10 * sum(math.ceil(m.demand_rps) + 1 for m in problem.demanded_models) + 1000
    for _ in range(max_steps):
        capacity = np.fromiter(state.capacity.values(), dtype=float, count=len(names))
        deficit = np.maximum(0.0, demand - capacity)
        waiting = np.flatnonzero(deficit > _EPS)
        if waiting.size == 0:
            break
        # placed first, then the most unserved demand (x priority), then by name
        order = waiting[np.lexsort((by_name[waiting], -(weight[waiting] * deficit[waiting]), rank[waiting]))]
        if not any(try_join(state, names[i]) or try_open(state, names[i]) for i in order):
            break
    drop_spare_gpus(state)
    return state


def _short(state: _State) -> list[str]:
    return [m for m in state.capacity if state.deficit(m) > 1e-6 * max(1.0, state.demand[m])]


class GreedyPack:
    name = "greedy-pack"
    description = "greedy packing with sharing: most-unserved model onto the least-loaded GPU with room (baseline)"

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult:
        start = time.perf_counter()
        first: tuple[str, ...] = ()
        state = run_greedy(problem)
        starts = 1
        while problem.objective == "min_cost" and starts <= RESTARTS:
            left_out = tuple(m for m in _short(state) if m not in first)
            if not left_out:
                break
            first += left_out
            state = run_greedy(problem, first)
            starts += 1
        short = _short(state)
        wall = time.perf_counter() - start
        stats = {"gpus": sum(g.tensor_parallel for g in state.gpus), "starts": starts}
        if problem.objective == "min_cost" and short:
            return SolveResult(self.name, SolveStatus.INFEASIBLE, problem.objective, math.nan, heuristic_bound(problem),
                               (), {}, wall, stats=stats,
                               message=f"greedy-pack found no plan in {starts} starts: it could not place "
                                       f"{', '.join(short)} (a heuristic: this does not prove that no plan exists; "
                                       "colgen searches all of them)")
        patterns = _patterns(state)
        result = make_result(problem, self.name, SolveStatus.FEASIBLE, patterns, heuristic_bound(problem), wall, stats=stats)
        if abs(result.value - result.bound) <= 1e-9 * max(1.0, abs(result.value)):
            result = make_result(problem, self.name, SolveStatus.OPTIMAL, patterns, result.bound, wall, stats=stats)
        return result
