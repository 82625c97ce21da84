"""The explicit solver registry: to add a solver, write one module and add one line here."""

from __future__ import annotations

from planner.errors import UsageError
from solvers.base import Solver
from solvers.colgen.solver import ColumnGeneration
from solvers.greedy_type import GreedyTypeLevel
from solvers.typelevel_cpsat import TypeLevelCpSat
from solvers.enumerate_patterns import EnumeratedPatternsMilp
from solvers.direct_milp import DirectMilp
from solvers.direct_cpsat import DirectCpSat
from solvers.greedy_pack import GreedyPack
from solvers.single_type import BestSingleType

SOLVERS: dict[str, type] = {
    "colgen": ColumnGeneration,
    "cpsat-type": TypeLevelCpSat,
    "greedy-type": GreedyTypeLevel,
    "one-per-gpu": TypeLevelCpSat,
    "enum-milp": EnumeratedPatternsMilp,
    "direct-milp": DirectMilp,
    "direct-cpsat": DirectCpSat,
    "greedy-pack": GreedyPack,
    "best-single-type": BestSingleType,
}
DEFAULT_SOLVER = "colgen"


def get_solver(name: str) -> Solver:
    if name == "auto":
        name = DEFAULT_SOLVER
    if name not in SOLVERS:
        raise UsageError(f"--solver: unknown solver {name!r}\n  fix: use one of {', '.join(['auto', *SOLVERS])}")
    return SOLVERS[name]()


def solver_names() -> list[str]:
    return ["auto", *SOLVERS]
