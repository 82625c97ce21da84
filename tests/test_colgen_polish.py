"""Neighbourhood search after the integer master (solvers/colgen/polish.py): it only ever
replaces part of a plan by a cheaper way to serve the same demand, its neighbourhoods are
connected by shared models, and it keeps the solver deterministic."""

from __future__ import annotations

import math
import time

import pytest

from planner.generate import generate_scenario
from planner.plan import extract_plan
from planner.problem import Member, Pattern, PatternCount, SolveSettings, build_problem, pattern_cost
from planner.scenario import Scenario
from planner.verify import verify_plan
from solvers.colgen.columns import Index
from solvers.colgen.polish import neighbourhood, polish
from solvers.colgen.pricing import singleton_columns
from solvers.colgen.solver import ColumnGeneration, Progress
from solvers.packing_rules import pattern_violations
from packing_instances import many_small_models_scenario


def _cost(problem, plan) -> float:
    return sum(pattern_cost(problem, pc.pattern) * pc.count for pc in plan)


def _one_model_per_gpu(problem, index) -> tuple[PatternCount, ...]:
    """Each model alone on its cheapest GPUs, as many as its demand needs."""
    best = {}
    for col in singleton_columns(problem, index):
        i = col.model_indices[0]
        per_rps = col.cost_usd_per_hour / col.coverage_rps[0]
        if i not in best or per_rps < best[i][0]:
            best[i] = (per_rps, col)
    plan = {}
    for i, (_, col) in sorted(best.items()):
        plan[col.pattern] = plan.get(col.pattern, 0) + math.ceil(index.demand_rps[i] / col.coverage_rps[0] - 1e-9)
    return tuple(PatternCount(p, n) for p, n in sorted(plan.items()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_polish_packs_a_plan_without_sharing_cheaper(seed):
    """From one model per GPU (no sharing) on a fleet of small models, the neighbourhoods get
    re-planned with shared GPUs: cheaper, still serving every model's demand, every pattern
    within the packing rules."""
    problem = build_problem(many_small_models_scenario(12, seed))
    index = Index.of(problem)
    start = _one_model_per_gpu(problem, index)
    solver = ColumnGeneration()
    assert solver._feasible(problem, start)
    pool: dict = {}
    polished, improved, cut_short = polish(problem, index, start, [], solver._residual_generator(problem, pool, Progress()),
                                           time.perf_counter() + 600, seed=0)
    assert not cut_short
    assert improved >= 1
    assert _cost(problem, polished) < _cost(problem, start) - 1e-9
    assert solver._feasible(problem, polished)
    assert all(pattern_violations(problem, pc.pattern) == [] for pc in polished)
    assert any(len(pc.pattern.members) > 1 for pc in polished)


def test_polish_never_replans_a_neighbourhood_it_tried_since_the_plan_last_changed(monkeypatch):
    """A neighbourhood of an unchanged plan gives the same answer, so once one found nothing
    polish moves on to another (and stops when every one was tried): on a 12-model fleet,
    where the neighbourhoods cover most of the plan, the rounds re-planned the same freed
    GPUs again and again before."""
    import solvers.colgen.polish as polish_module

    problem = build_problem(many_small_models_scenario(12, 0))
    index = Index.of(problem)
    solver = ColumnGeneration()
    replanned_real = polish_module._replan
    calls: list[tuple[frozenset, bool]] = []

    def recording(problem, index, current, freed, *rest):
        answer = replanned_real(problem, index, current, freed, *rest)
        calls.append((frozenset(freed), answer is not None))
        return answer

    monkeypatch.setattr(polish_module, "_replan", recording)
    start = _one_model_per_gpu(problem, index)
    polished, improved, _ = polish(problem, index, start, [], solver._residual_generator(problem, {}, Progress()),
                                   time.perf_counter() + 600, seed=0, rounds=40)
    assert improved >= 1 and len(calls) >= 2
    since_change: set = set()
    for freed, changed in calls:
        assert freed not in since_change
        since_change = set() if changed else since_change | {freed}
    assert len(calls) < 40  # it stopped once every neighbourhood of the final plan was tried
    assert solver._feasible(problem, polished)


def _pattern(gpu_type: str, *models: str) -> Pattern:
    return Pattern(gpu_type, 1, tuple(Member(m, 1, 1.0) for m in sorted(models)))


def test_neighbourhoods_grow_through_shared_models_then_the_same_gpu_type():
    """Breadth first over models a freed GPU shares with others; when none is anywhere else,
    the next GPUs of the start's type join, then of any type; growth stops at the wanted
    model count."""
    ab, bc, cd = _pattern("L4", "a", "b"), _pattern("L4", "b", "c"), _pattern("A10G", "c", "d")
    e, f, gh = _pattern("A10G", "e"), _pattern("L4", "f"), _pattern("T4", "g", "h")
    plan = {ab: 1, bc: 2, cd: 1, e: 3, f: 1, gh: 1}
    assert neighbourhood(plan, ab, 2) == {ab}
    assert neighbourhood(plan, ab, 3) == {ab, bc}
    assert neighbourhood(plan, ab, 4) == {ab, bc, cd}  # c is on cd too
    assert neighbourhood(plan, ab, 5) == {ab, bc, cd, f}  # nothing shared left: the next L4 GPU
    assert neighbourhood(plan, ab, 6) == {ab, bc, cd, f, e}  # then any type, in plan order
    assert neighbourhood(plan, ab, 99) == set(plan)
    assert neighbourhood(plan, e, 2) == {e, cd}  # the other A10G first


@pytest.mark.slow
@pytest.mark.parametrize("seed", [6])
def test_colgen_with_polish_is_feasible_deterministic_and_no_worse(seed):
    """On small fleets (polish runs up to POLISH_MAX_MODELS models) the final plan passes
    verify_plan, costs no more than the integer master's or the dive's plan, and a second
    run gives the same plan."""
    scenario = Scenario.model_validate(generate_scenario(40, 64, 4, seed))
    problem = build_problem(scenario)
    first = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=60))
    second = ColumnGeneration().solve(build_problem(scenario), SolveSettings(time_limit_s=60))
    assert first.patterns == second.patterns
    assert not first.stats["hit_time_limit"]
    assert verify_plan(scenario, extract_plan(problem, first)) == []
    for earlier in ("mip_value", "dive_value"):
        if not math.isnan(first.stats[earlier]):
            assert first.value <= first.stats[earlier] + 1e-3  # stats keep 3 decimals
    assert first.value == pytest.approx(first.stats["polish_value"], abs=1e-3)  # stats keep 3 decimals


def test_integer_master_says_whether_its_clock_or_its_node_limit_stopped_it():
    """Master.solve_mip stops on nodes (a work limit, same plan on any machine); when the
    clock stops it first, mip_stopped_by_clock says so, and colgen reports time_limit."""
    from solvers.colgen.columns import make_column
    from solvers.colgen.master import Master

    scenario = Scenario.model_validate(generate_scenario(40, 64, 4, 6))
    problem = build_problem(scenario)
    solver = ColumnGeneration()
    solver.solve(problem, SolveSettings(time_limit_s=60))
    index = Index.of(problem)
    master = Master(problem, index)
    columns = singleton_columns(problem, index) + [make_column(problem, index, p) for p in solver.patterns_seen]
    seen, unique = set(), []
    for col in columns:
        if col.model_indices and col.pattern not in seen:
            seen.add(col.pattern)
            unique.append(col)
    master.add_columns(unique)
    master.solve_lp()
    counts, _, _ = master.solve_mip(60.0, 0, max_nodes=1)
    assert counts is not None and not master.mip_stopped_by_clock
    master.solve_mip(1e-6, 0, max_nodes=10**9)  # HiGHS's floor of 0.05 s: far short of this MIP
    assert master.mip_stopped_by_clock
