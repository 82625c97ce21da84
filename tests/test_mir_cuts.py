"""MIR cuts on the packing master's demand rows (solvers.colgen.mir_cuts): the coefficient
function's properties, validity for every integer combination, and on small instances with
every pattern enumerated, cuts that leave the integer optimum unchanged and raise the LP."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.problem import SolveSettings, SolveStatus, build_problem
from solvers.colgen.columns import Index, make_column
from solvers.colgen.master import Master
from solvers.colgen.mir_cuts import MirCut, mir_coefficient, separate
from solvers.enumerate_patterns import EnumeratedPatternsMilp, enumerate_patterns
from packing_instances import many_small_models_scenario, small_scenario

coverages = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)
deltas = st.floats(min_value=0.1, max_value=20.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(coverages, st.integers(min_value=0, max_value=6)), min_size=1, max_size=6), deltas,
       st.floats(min_value=0.0, max_value=1.0))
def test_a_cut_holds_for_every_integer_combination_that_covers_demand(columns, delta, share):
    """Any integers x >= 0 with sum a x >= d satisfy sum g(a) x >= ceil(d / delta); d is drawn
    at or under what the combination covers."""
    covered = sum(a * x for a, x in columns)
    demand = covered * share
    ratio = demand / delta
    fraction = ratio - math.floor(ratio)
    if not 1e-3 <= fraction <= 1 - 1e-3:
        return
    lhs = sum(mir_coefficient(a, delta, fraction) * x for a, x in columns)
    assert lhs >= math.ceil(ratio) - 1e-7, (lhs, math.ceil(ratio))


@settings(max_examples=200, deadline=None)
@given(coverages, coverages, deltas, st.floats(min_value=0.01, max_value=0.99))
def test_the_coefficient_is_nondecreasing_and_at_least_coverage_over_delta(a, b, delta, fraction):
    low, high = sorted((a, b))
    g_low = mir_coefficient(low, delta, fraction)
    assert g_low <= mir_coefficient(high, delta, fraction) + 1e-9
    assert g_low >= low / delta - 1e-9
    # whole multiples of delta count as whole replicas; a tail of f delta counts as one
    assert mir_coefficient(3 * delta, delta, fraction) == pytest.approx(3.0)
    assert mir_coefficient(2 * delta + fraction * delta, delta, fraction) == pytest.approx(3.0)


def test_separation_finds_the_rounding_the_lp_skips():
    """A demand of 2.3 replicas covered by 2.3 dedicated GPUs violates the cut with delta =
    one replica (rhs 3); covered by 2 GPUs and a shared tail of 0.3 it does not."""
    cuts = separate(np.array([230.0]), [[(100.0, 2.3)]], set())
    assert len(cuts) == 1 and cuts[0].rhs == 3 and cuts[0].delta == pytest.approx(100.0)
    assert cuts[0].fraction == pytest.approx(0.3)
    assert not separate(np.array([230.0]), [[(100.0, 2.0), (30.0, 1.0)]], set())
    assert not separate(np.array([230.0]), [[(100.0, 2.3)]], {(0, 100.0), (0, 50.0), (0, 100.0 / 3)})


@functools.lru_cache(maxsize=None)
def _columns(number: int):
    problem = build_problem(SCENARIOS[number])
    index = Index.of(problem)
    columns = [make_column(problem, index, p) for p in enumerate_patterns(problem)]
    return problem, index, [c for c in columns if c.model_indices]


def _full_master(number: int):
    """A master over every pattern of scenario `number` (fresh rows: cuts change them)."""
    problem, index, columns = _columns(number)
    master = Master(problem, index)
    master.add_columns(columns)
    return problem, index, master


SCENARIOS = [small_scenario(seed, "min_cost", interference=seed % 2 == 1, with_tp=seed % 3 == 0, n_models=3,
                            n_types=1 + seed % 2, max_batch=3) for seed in range(8)]
SCENARIOS += [many_small_models_scenario(n_models=4, seed=seed) for seed in range(4)]


@pytest.mark.parametrize("number", range(len(SCENARIOS)))
def test_cuts_keep_the_integer_optimum(number):
    """With every pattern in the master, rounds of cuts never push the LP past the integer
    optimum (enum-milp), and the integer master with the cuts still reaches it."""
    problem, index, master = _full_master(number)
    exact = EnumeratedPatternsMilp().solve(problem, SolveSettings(time_limit_s=30.0, gap_target=1e-9))
    if exact.status is not SolveStatus.OPTIMAL:
        pytest.skip("no plan to compare with")
    lp = master.solve_lp()
    before = lp.value
    known: set = set()
    for _ in range(10):
        cuts = separate(index.demand_rps, master.support_by_model(lp.x), known)
        known.update((c.model, c.delta) for c in cuts)
        if not master.add_cuts(cuts):
            break
        lp = master.solve_lp()
    assert before - 1e-6 <= lp.value <= exact.value * (1 + 1e-7) + 1e-9
    counts, value, _ = master.solve_mip(30.0, 0, max_nodes=100_000)
    assert value == pytest.approx(exact.value, rel=1e-7)
    # the optimum's own counts satisfy every cut
    by_pattern = {c.pattern: j for j, c in enumerate(master.columns)}
    x = np.zeros(len(master.columns))
    for pc in exact.patterns:
        x[by_pattern[pc.pattern]] += pc.count
    for cut in master.cuts:
        lhs = sum(cut.coefficient(col.coverage_rps[col.model_indices.index(cut.model)]) * x[j]
                  for j, col in enumerate(master.columns) if cut.model in col.model_indices)
        assert lhs >= cut.rhs - 1e-7


def test_cuts_raise_the_lp_on_some_instances():
    raised = 0
    for number in range(len(SCENARIOS)):
        problem, index, master = _full_master(number)
        lp = master.solve_lp()
        cuts = separate(index.demand_rps, master.support_by_model(lp.x), set())
        if master.add_cuts(cuts) and master.solve_lp().value > lp.value * (1 + 1e-6):
            raised += 1
    assert raised >= 3, raised


def test_every_column_has_its_cut_coefficient_whenever_it_was_added():
    """Columns added before a cut get their coefficients from add_cuts, columns added after
    it from column_entries: the cut row holds g(coverage) for each of them either way."""
    problem, index, columns = _columns(1)
    master = Master(problem, index)
    half = len(columns) // 2
    master.add_columns(columns[:half])
    i = 0
    cut = MirCut(i, float(index.demand_rps[i]) / 1.5, 0.5, 1.0)  # rhs 1: any column of model 0 meets it
    assert master.add_cuts([cut]) == 1
    master.add_columns(columns[half:])
    matrix = master.highs.getLp().a_matrix_
    starts, rows, values = (np.asarray(matrix.start_), np.asarray(matrix.index_), np.asarray(matrix.value_))
    row = master.cut_rows[0]
    checked = 0
    for j, col in enumerate(master.columns):
        k = master.first_pattern_col + j
        entries = dict(zip(rows[starts[k]:starts[k + 1]].tolist(), values[starts[k]:starts[k + 1]].tolist()))
        expected = cut.coefficient(col.coverage_rps[col.model_indices.index(i)]) if i in col.model_indices else 0.0
        assert entries.get(row, 0.0) == pytest.approx(expected)
        checked += expected > 0
    assert checked >= 2
