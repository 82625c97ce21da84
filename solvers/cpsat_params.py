"""CP-SAT solver settings shared by the CP-SAT formulations (type level, direct)."""

from __future__ import annotations

from ortools.sat.python import cp_model

from planner.problem import SolveSettings


def cpsat_solver(settings: SolveSettings, time_left_s: float) -> cp_model.CpSolver:
    """A CpSolver with the run's time left, seed, workers and gap target."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, time_left_s)
    solver.parameters.random_seed = settings.seed
    solver.parameters.num_workers = max(1, settings.threads)
    solver.parameters.relative_gap_limit = settings.gap_target
    return solver
