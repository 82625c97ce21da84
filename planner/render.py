"""Rendering for people (rich tables). Only the CLI calls this."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from planner.checks import Finding
from planner.plan import Plan


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def render_findings(console: Console, findings: list[Finding]) -> None:
    if not findings:
        console.print("[green]no findings: the scenario is valid[/green]")
        return
    table = Table(title="Findings", show_lines=False)
    for col in ("kind", "where", "problem", "fix"):
        table.add_column(col, overflow="fold")
    style = {"input": "red", "infeasible": "yellow", "warning": "cyan"}
    for f in findings:
        table.add_row(f"[{style[f.kind]}]{f.kind}[/]", f.location, f.problem, f.fix)
    console.print(table)


def render_plan(console: Console, plan: Plan, max_model_rows: int = 30) -> None:
    obj = plan.objective
    status_style = {"optimal": "green", "feasible": "yellow", "time_limit": "yellow", "infeasible": "red"}.get(plan.status, "white")
    head = Table(title=f"Plan for scenario '{plan.scenario}'", show_header=False)
    head.add_column("field")
    head.add_column("value")
    head.add_row("status", f"[{status_style}]{plan.status}[/]")
    head.add_row("objective", obj.name)
    head.add_row("value", _fmt(obj.value, 4))
    head.add_row("proven bound", _fmt(obj.bound, 4))
    head.add_row("gap", "-" if obj.gap is None else f"{obj.gap:.2%}")
    head.add_row("cost", f"${plan.cost_per_hour_usd:,.2f}/h")
    head.add_row("solver", f"{plan.solver.name} ({plan.solver.wall_s:.2f} s, seed {plan.solver.seed})")
    console.print(head)
    if plan.explanation:
        why = Table(title="Why no plan exists")
        for col in ("where", "problem", "fix"):
            why.add_column(col, overflow="fold")
        for item in plan.explanation:
            why.add_row(item.get("location", ""), item.get("problem", ""), item.get("fix", ""))
        console.print(why)
        return
    per_type = Counter(g.type for g in plan.gpus)
    shared = Counter(g.type for g in plan.gpus if len(g.replicas) > 1)
    gpus = Table(title="GPUs used")
    for col in ("type", "GPUs", "shared by 2+ models"):
        gpus.add_column(col, justify="right" if col != "type" else "left")
    for t, n in sorted(per_type.items()):
        gpus.add_row(t, str(n), str(shared[t]))
    console.print(gpus)
    models = Table(title="Models")
    for col in ("model", "demand req/s", "served req/s", "capacity req/s", "worst latency ms", "replicas"):
        models.add_column(col, justify="left" if col == "model" else "right")
    replicas = Counter(m for m, shares in plan.routing.items() for _ in shares)
    names = sorted(plan.models)
    for name in names[:max_model_rows]:
        m = plan.models[name]
        models.add_row(name, _fmt(m.demand_rps, 1), _fmt(m.served_rps, 1), _fmt(m.capacity_rps, 1),
                       _fmt(m.predicted_latency_ms, 1), str(replicas.get(name, 0)))
    if len(names) > max_model_rows:
        models.add_row(f"... {len(names) - max_model_rows} more", "", "", "", "", "")
    console.print(models)


def render_fairness(console: Console, plan: Plan, stats: dict) -> None:
    """With `fairness: true`: the smallest share of its demand the plan serves any model, and
    the solver's proven upper bound on it (colgen's `fair_share_bound`) when it has one."""
    shares = [m.served_rps / m.demand_rps for m in plan.models.values() if m.demand_rps and m.served_rps is not None]
    if not shares:
        return
    line = f"fairness: every model gets at least {min(shares):.1%} of its demand"
    bound = stats.get("fair_share_bound")
    if isinstance(bound, float) and bound == bound:
        line += f"; no plan within the budget gives every model more than {bound:.1%} (proven)"
    console.print(line)
