"""`planner simulate SCENARIO PLAN.json`: the plan under bursty arrivals or a replayed trace.

Thin: parse, call `planner.simulator.simulate_plan`, render (table for people, JSON per
CONTRACT.md "Measured results" for programs). The progress bar goes to stderr only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from planner.cli import OutputFormat, _run, app, err, out
from planner.plan import load_plan
from planner.scenario import load_scenario

PROGRESS_MIN_REQUESTS = 5_000_000  # show a progress bar from about this many simulated requests


@app.command()
def simulate(
    scenario: Path = typer.Argument(..., help="scenario file (YAML or JSON)"),
    plan_path: Path = typer.Argument(..., metavar="PLAN.json", help="plan file written by `planner plan`"),
    duration: float = typer.Option(60.0, "--duration", min=0.001, max=1e7, help="seconds of traffic to simulate"),
    seed: int = typer.Option(0, "--seed", min=0, help="random seed; same inputs and seed give the same output"),
    trace: Optional[Path] = typer.Option(None, "--trace", help="replay this CSV's TIMESTAMP column, scaled to each model's rate"),
    max_queue_ms: Optional[float] = typer.Option(
        None, "--max-queue-ms", min=0.001, help="drop a request that waited this long (default: queues never drop)"
    ),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table for people, json for programs"),
) -> None:
    """Simulate a plan: SLO attainment, latency percentiles and GPU utilisation per model (exit 2 on bad input)."""
    from planner.simulator import SimulationSettings, load_trace, simulate_plan

    def job() -> int:
        loaded = load_scenario(scenario)
        plan = load_plan(plan_path)
        settings = SimulationSettings(
            duration_s=duration, seed=seed, trace=load_trace(trace) if trace is not None else None,
            max_queue_ms=max_queue_ms,
        )
        expected = sum(d.rate_rps for d in loaded.demand) * duration
        if expected >= PROGRESS_MIN_REQUESTS:
            with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                          TimeRemainingColumn(), console=err, transient=True) as bar:
                task = bar.add_task("simulate", total=duration * 1000.0)
                result = simulate_plan(loaded, plan, settings, lambda done, _total: bar.update(task, completed=done))
        else:
            result = simulate_plan(loaded, plan, settings)
        if output_format is OutputFormat.json:
            sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        else:
            _render(result)
        return 0

    _run(job)


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _render(result) -> None:
    models = Table(title=f"Simulated {result.duration_s:g} s, seed {result.seed}, arrivals {result.arrivals}")
    for col in ("model", "offered req/s", "completed req/s", "mean ms", "p50 ms", "p95 ms", "p99 ms", "SLO ms",
                "SLO attainment"):
        models.add_column(col, justify="left" if col == "model" else "right")
    for m in result.models:
        attained = m.slo_attainment
        style = "green" if attained is None or attained >= 0.99 else "red"
        models.add_row(m.model, _fmt(m.offered_rps), _fmt(m.completed_rps), _fmt(m.mean_ms, 2), _fmt(m.p50_ms, 2),
                       _fmt(m.p95_ms, 2), _fmt(m.p99_ms, 2), _fmt(m.slo_ms, 0),
                       "-" if attained is None else f"[{style}]{attained:.4%}[/]")
    out.print(models)
    gpus = Table(title="GPU busy share (planned: at full batches; simulated: dynamic batches)")
    for col in ("gpu", "type", "planned", "simulated"):
        gpus.add_column(col, justify="left" if col in ("gpu", "type") else "right")
    for g in result.gpus[:40]:
        gpus.add_row(g.gpu_id, g.gpu_type, f"{g.planned_utilization:.1%}", f"{g.utilization:.1%}")
    if len(result.gpus) > 40:
        gpus.add_row(f"... {len(result.gpus) - 40} more", "", "", "")
    out.print(gpus)
    out.print(f"{result.requests:,} requests simulated in {result.wall_s:.2f} s")
