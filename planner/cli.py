"""The `planner` command line. Commands are thin: parse, call one library function, render.
Domain errors become exit codes in `_run` (0 ok, 1 infeasible, 2 bad input)."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Callable

import typer
from rich.console import Console
from rich.markup import escape

from planner.checks import check_scenario
from planner.errors import EXIT_BAD_INPUT, EXIT_INFEASIBLE, PlannerError
from planner.plan import plan_to_json, write_plan
from planner.problem import SolveSettings
from planner.render import render_fairness, render_findings, render_plan
from planner.scenario import load_scenario

app = typer.Typer(
    help="Placement planner for ML inference on heterogeneous GPU fleets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=False, width=140)
err = Console(stderr=True, width=140)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


EXIT_INTERNAL = 3  # a bug: never a traceback, never a file left behind (writes are atomic)


def _say_error(text: str) -> None:
    # the text may echo the user's input: print it literally, never as rich markup
    err.print("[red]error[/red] " + escape(text), highlight=False, markup=True)


def _run(job: Callable[[], int]) -> None:
    """Run a command body; map domain errors to messages and exit codes.

    0 ok, 1 infeasible, 2 bad input or usage (also unreadable/unwritable paths),
    3 an internal error: a one-line message asking for a report instead of a traceback.
    Writes are atomic (planner.atomic), so no exit leaves a partial file.
    """
    try:
        code = job()
    except PlannerError as exc:
        _say_error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted; nothing written")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _say_error(f"{where}{exc.strerror or exc}\n  fix: check the path, free space and permissions")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except MemoryError:
        _say_error("out of memory\n  fix: see docs/limits.md for the sizes the planner handles")
        raise typer.Exit(EXIT_INTERNAL) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        summary = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        _say_error(f"internal error ({summary})\n  fix: this is a bug; please report it with the scenario "
                   "and the command (run with PLANNER_DEBUG=1 for the traceback)")
        if os.environ.get("PLANNER_DEBUG"):
            raise
        raise typer.Exit(EXIT_INTERNAL) from None
    raise typer.Exit(code)


@app.command()
def validate(scenario: Path = typer.Argument(..., help="scenario file (YAML or JSON)")) -> None:
    """Check a scenario and print every finding (exit 2 on bad input, 1 if some demand cannot be served)."""

    def job() -> int:
        loaded = load_scenario(scenario)
        findings = check_scenario(loaded)
        render_findings(out, findings)
        if any(f.kind == "input" for f in findings):
            return EXIT_BAD_INPUT
        if any(f.kind == "infeasible" for f in findings):
            return EXIT_INFEASIBLE
        return 0

    _run(job)


@app.command()
def plan(
    scenario: Path = typer.Argument(..., help="scenario file (YAML or JSON)"),
    out_path: Path = typer.Option(..., "--out", "-o", help="where to write the plan JSON (written atomically)"),
    solver: str = typer.Option("auto", "--solver", help="solver name; `planner solvers` lists them"),
    time_limit: float = typer.Option(60.0, "--time-limit", min=0.01, help="wall-clock limit of the solve, seconds"),
    seed: int = typer.Option(0, "--seed", min=0, help="random seed; same input and seed give the same plan"),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table for people, json for programs"),
) -> None:
    """Solve a scenario: write the plan file and print a summary (exit 1 and an `infeasible` plan if none exists)."""
    from planner.pipeline import plan_scenario
    from planner.solve_progress import solve_progress

    def job() -> int:
        loaded = load_scenario(scenario)
        with solve_progress(err, time_limit) as on_progress:  # a bar on stderr, on a terminal only
            outcome = plan_scenario(loaded, solver, SolveSettings(time_limit_s=time_limit, seed=seed,
                                                                  on_progress=on_progress))
        write_plan(outcome.plan, out_path)
        if output_format is OutputFormat.json:
            sys.stdout.write(plan_to_json(outcome.plan))
        else:
            render_plan(out, outcome.plan)
            if loaded.fairness and outcome.plan.gpus:
                render_fairness(out, outcome.plan, outcome.result.stats)
            out.print(f"plan written to {out_path}")
        no_plan = outcome.plan.status == "infeasible" or (outcome.plan.status == "time_limit" and not outcome.plan.gpus)
        return EXIT_INFEASIBLE if no_plan else 0

    _run(job)


@app.command()
def solvers() -> None:
    """List the solvers `planner plan --solver` accepts."""
    from solvers.registry import SOLVERS, DEFAULT_SOLVER

    for name, cls in SOLVERS.items():
        marker = " (default)" if name == DEFAULT_SOLVER else ""
        out.print(f"{name}{marker}: {cls.description}")


@app.command()
def candidates(
    scenario: Path = typer.Argument(..., help="scenario file (YAML or JSON)"),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format"),
) -> None:
    """Print the capacity model's candidates: per model, GPU type and TP degree the best batch."""
    from planner.capacity import build_candidates

    def job() -> int:
        table = build_candidates(load_scenario(scenario))
        if output_format is OutputFormat.json:
            sys.stdout.write(json.dumps(table.round(6).to_dict(orient="records"), indent=2) + "\n")
        else:
            out.print(table.round(3).to_string(index=False))
        return 0

    _run(job)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
from planner.commands import simulate as _simulate  # noqa: E402,F401  (registers `planner simulate`)
from planner.commands import generate as _generate  # noqa: E402,F401  (registers `planner generate`)
