"""The solver interface: every backend is a `Solver` with a name and a `solve` method."""

from __future__ import annotations

from typing import Protocol

from planner.problem import PlacementProblem, SolveResult, SolveSettings


class Solver(Protocol):
    name: str
    description: str

    def solve(self, problem: PlacementProblem, settings: SolveSettings) -> SolveResult: ...
