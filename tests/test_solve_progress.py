"""Progress of a solve (SolveSettings.on_progress, planner/solve_progress.py): colgen reports
its phases in order, reporting never changes the plan, and the CLI's bar shows only on a
terminal."""

from __future__ import annotations

import io

from rich.console import Console

from planner.generate import generate_scenario
from planner.problem import SolveSettings, build_problem
from planner.scenario import Scenario
from planner.solve_progress import solve_progress
from solvers.colgen.solver import ColumnGeneration


def _first(phases: list[str], prefix: str) -> int:
    return next(i for i, text in enumerate(phases) if text.startswith(prefix))


def test_colgen_reports_its_phases_in_order_and_the_same_plan():
    """120 models (about 2 s a solve): warm start, column generation, the dive's rounds, the
    bound; the plan is the one a solve without a callback makes."""
    problem = build_problem(Scenario.model_validate(generate_scenario(120, 256, 5, 1)))
    phases: list[str] = []
    reported = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=16, on_progress=phases.append))
    silent = ColumnGeneration().solve(problem, SolveSettings(time_limit_s=16))
    assert not reported.stats["hit_time_limit"]
    assert reported.patterns == silent.patterns and reported.value == silent.value
    assert phases[0] == "warm start" and phases[-1] == "proven bound"
    order = [_first(phases, p) for p in ("column generation: iteration 1,", "dive", "proven bound")]
    assert order == sorted(order)
    left = [int(text.split(": ")[1].split(" of ")[0]) for text in phases if "models left to place" in text]
    assert len(left) >= 2 and left == sorted(left, reverse=True)  # the dive's rounds place models


def test_progress_bar_shows_on_a_terminal_only():
    with solve_progress(Console(file=io.StringIO(), force_terminal=False), 5.0) as on_progress:
        assert on_progress is None
    screen = io.StringIO()
    with solve_progress(Console(file=screen, force_terminal=True, width=120), 5.0) as on_progress:
        assert on_progress is not None
        on_progress("column generation: iteration 3")
    assert "planning" in screen.getvalue()
    assert "column generation: iteration 3" in screen.getvalue()
