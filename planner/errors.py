"""Domain errors and their exit codes, in one place (see CONTRACT.md: 0 ok, 1 infeasible, 2 bad input)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INFEASIBLE = 1
EXIT_BAD_INPUT = 2


class PlannerError(Exception):
    """Base class: every error the CLI turns into a message and an exit status."""

    exit_code = EXIT_BAD_INPUT


class ScenarioError(PlannerError):
    """Bad input: names the place in the file (`models[1].profiles.L4`) and the fix."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, location: str, problem: str, fix: str = ""):
        self.location = location
        self.problem = problem
        self.fix = fix
        text = f"{location}: {problem}" if location else problem
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)


class ScenarioErrors(PlannerError):
    """Several bad-input findings reported together."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, errors: list[ScenarioError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class UsageError(PlannerError):
    exit_code = EXIT_BAD_INPUT


class InfeasibleError(PlannerError):
    """No plan meets the hard constraints."""

    exit_code = EXIT_INFEASIBLE
