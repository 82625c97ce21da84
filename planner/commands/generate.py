"""`planner generate`: write a seeded benchmark scenario (planner.generate) to a YAML file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from planner.atomic import write_text_atomic
from planner.cli import _run, app, out
from planner.errors import UsageError


class Mix(str, Enum):
    many_small = "many-small"
    mixed = "mixed"


class Objective(str, Enum):
    min_cost = "min_cost"
    max_throughput = "max_throughput"


@app.command()
def generate(
    models: int = typer.Option(..., "--models", min=1, help="number of models to serve"),
    gpus: int = typer.Option(..., "--gpus", min=1, help="total GPUs in the inventory"),
    types: int = typer.Option(..., "--types", min=1, help="number of GPU types (A100-80GB and H100 always among them)"),
    seed: int = typer.Option(0, "--seed", min=0, help="random seed; the same arguments give the same file"),
    objective: Objective = typer.Option(Objective.min_cost, "--objective", help="max_throughput gets a binding budget"),
    mix: Mix = typer.Option(Mix.many_small, "--mix", help="many-small: mostly small models; mixed: fewer, heavier"),
    budget: Optional[float] = typer.Option(None, "--budget", min=0.01, help="budget_usd_per_hour (default for max_throughput: 50-70% of the fluid cost)"),
    interference: bool = typer.Option(False, "--interference", help="give each GPU type a co-location interference factor"),
    out_path: Path = typer.Option(..., "--out", "-o", help="scenario YAML to write (atomically)"),
) -> None:
    """Generate a seeded benchmark scenario (feasible for min_cost) and write it as YAML."""
    from planner.generate import describe_generation, generate_with_report, scenario_to_yaml

    def job() -> int:
        try:
            scenario, report = generate_with_report(
                models, gpus, types, seed, objective.value, mix.value, budget, interference
            )
        except ValueError as exc:
            raise UsageError(f"{exc}\n  fix: change --models/--gpus/--types") from None
        args = {"models": models, "gpus": gpus, "types": types, "seed": seed, "objective": objective.value,
                "mix": mix.value, "budget": budget, "interference": interference}
        header = describe_generation(args, report)
        write_text_atomic(out_path, scenario_to_yaml(scenario, header))
        out.print(
            f"wrote {out_path}: {len(scenario['models'])} models, {gpus} GPUs of {len(scenario['gpu_types'])} types "
            f"({', '.join(g['name'] + ' x' + str(g['count']) for g in scenario['gpu_types'])})"
        )
        return 0

    _run(job)
