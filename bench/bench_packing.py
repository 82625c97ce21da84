"""Packing benchmark (issue 3): colgen against every baseline, side by side, in one run.

For each fleet scenario (50 / 200 / 1,000 models on 64 / 512 / 4,096 GPUs, built from
../shared/data by scripts/build_fleet_scenarios.py) it solves with each solver under the
same time limit, checks every plan with verify_plan, and records solve time, cost, proven
bound, gap, status, GPUs shared, and colgen's cost as a ratio to each baseline.

    .venv/bin/python bench/bench_packing.py            # all sizes (about 10 minutes)
    .venv/bin/python bench/bench_packing.py --sizes 50 # one size

Writes reports/packing_bench.md and reports/packing_bench.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.atomic import write_text_atomic  # noqa: E402
from planner.plan import extract_plan  # noqa: E402
from planner.problem import SolveSettings, build_problem  # noqa: E402
from planner.scenario import load_scenario  # noqa: E402
from planner.verify import verify_plan  # noqa: E402
from solvers.registry import get_solver  # noqa: E402
from solvers.single_type import BestSingleType  # noqa: E402

SIZES = {
    50: ("fleet-50x64.yaml", 10.0),
    200: ("fleet-200x512.yaml", 10.0),
    1000: ("fleet-1000x4096.yaml", 60.0),
}
BASELINES = ["greedy-pack", "best-single-type", "one-per-gpu"]
SMALL_ONLY = ["direct-milp", "direct-cpsat"]  # direct formulations: cross-checks that do not scale


def make_solver(name: str):
    if name == "best-single-type":
        return BestSingleType(inner="greedy-pack")  # packed per type by the greedy: colgen x types would not fit the limit
    return get_solver(name)


def run_one(scenario, problem, name: str, time_limit_s: float, seed: int, make=make_solver) -> dict:
    """One solver on one scenario: status, wall time, the plan's cost, the solver's own value
    (cost or weighted served req/s) and proven bound, and whether verify_plan passes.
    `make(name)`: the solver (bench/bench_throughput.py passes its own)."""
    solver = make(name)
    start = time.perf_counter()
    try:
        result = solver.solve(problem, SolveSettings(time_limit_s=time_limit_s, seed=seed))
    except Exception as exc:  # a baseline that fails is recorded, not fatal
        return {"solver": name, "status": "error", "error": f"{type(exc).__name__}: {exc}"[:200],
                "wall_s": round(time.perf_counter() - start, 2)}
    wall = time.perf_counter() - start
    row = {"solver": name, "status": result.status.value, "wall_s": round(wall, 2),
           "cost_usd_per_hour": None, "bound": None, "gap": None, "gpus": None, "shared_gpus": None, "verified": None}
    if result.patterns:
        plan = extract_plan(problem, result, seed)
        violations = verify_plan(scenario, plan)
        row.update(
            value=round(result.value, 4),
            cost_usd_per_hour=round(plan.cost_per_hour_usd, 4),
            bound=None if not math.isfinite(result.bound) else round(result.bound, 4),
            gap=None if not math.isfinite(result.gap) else round(result.gap, 4),
            gpus=len(plan.gpus),
            shared_gpus=sum(1 for g in plan.gpus if len(g.replicas) > 1),
            verified=not violations,
        )
        if violations:
            row["violations"] = violations[:3]
    if result.message:
        row["message"] = result.message[:400]
    if result.stats:
        row["stats"] = {k: v for k, v in result.stats.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool) and v != ""}
    return row


def run_guarded(file: str, name: str, limit: float, seed: int, wall_cap_s: float, prepare=None,
                make=make_solver) -> dict:
    """run_one in a child process, killed past `wall_cap_s` (baselines that ignore the limit).
    `prepare(scenario)`: the scenario to solve instead (bench/bench_throughput.py sets the
    objective and budget)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def child():
        scenario = load_scenario(ROOT / "scenarios" / file)
        if prepare is not None:
            scenario = prepare(scenario)
        queue.put(run_one(scenario, build_problem(scenario), name, limit, seed, make))

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(wall_cap_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"solver": name, "status": f"no answer within {wall_cap_s:g} s (killed)", "wall_s": wall_cap_s}
    return queue.get() if not queue.empty() else {"solver": name, "status": "crashed", "wall_s": None}


def bound_parts(scenario) -> dict:
    """Each proven lower bound on cost separately (colgen reports the best of them), and
    the seconds each took."""
    from solvers.bounds import (REPLICA_LP_BAND_RATIO, REPLICA_ROOT_CLASSES_MAX_OPTIONS, REPLICA_ROOT_MAX_OPTIONS,
                                fluid_cost_bound, option_count)
    from solvers.compact_bound import compact_cost_bound
    from solvers.replica_relaxation import replica_cost_bound

    problem = build_problem(scenario)
    parts = {}
    options = option_count(problem)
    parts_to_run = [("fluid", fluid_cost_bound), ("compact_lp", compact_cost_bound),
                    ("replica_lp", lambda p: replica_cost_bound(p).value)]
    if options <= REPLICA_ROOT_MAX_OPTIONS:  # what best_cost_bound adds on mid-size fleets
        classes = options <= REPLICA_ROOT_CLASSES_MAX_OPTIONS
        parts_to_run.append(("replica_root" + ("_classes" if classes else ""), lambda p: replica_cost_bound(
            p, integer=True, root_only=True, slo_classes_on=classes, time_limit_s=60.0).value))
        if classes:  # best_cost_bound adds the LP with cycle bands there
            parts_to_run.append(("replica_lp_bands", lambda p: replica_cost_bound(p, band_ratio=REPLICA_LP_BAND_RATIO).value))
    for name, fn in parts_to_run:
        start = time.perf_counter()
        value = fn(problem)
        parts[name] = {"value": round(value, 4) if math.isfinite(value) else None,
                       "seconds": round(time.perf_counter() - start, 2)}
    return parts


def bench(sizes: list[int], seed: int) -> dict:
    out = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}, "seed": seed, "instances": []}
    for size in sizes:
        file, limit = SIZES[size]
        scenario = load_scenario(ROOT / "scenarios" / file)
        gpus = sum(g.count or 0 for g in scenario.gpu_types)
        names = ["colgen", *BASELINES] + (SMALL_ONLY if size <= 50 else [])
        rows = []
        for name in names:
            print(f"[{file}] {name} (limit {limit:g} s) ...", file=sys.stderr, flush=True)
            rows.append(run_guarded(file, name, limit, seed, wall_cap_s=3 * limit + 30))
            print(f"    {rows[-1]}", file=sys.stderr, flush=True)
        colgen = rows[0]
        ratios = {}
        for row in rows[1:]:
            if colgen.get("cost_usd_per_hour") and row.get("cost_usd_per_hour"):
                ratios[row["solver"]] = round(colgen["cost_usd_per_hour"] / row["cost_usd_per_hour"], 4)
        out["instances"].append({"scenario": file, "models": len(scenario.models), "gpus": gpus,
                                 "gpu_types": len(scenario.gpu_types), "time_limit_s": limit,
                                 "results": rows, "colgen_cost_ratio": ratios, "bounds": bound_parts(scenario)})
    return out


def render_markdown(data: dict) -> str:
    lines = ["# Packing benchmark (issue 3)", "",
             "Produced by `bench/bench_packing.py`; every solver on the same scenario and time limit, in one run, "
             f"on a {data['machine']['cpus']}-core machine (load average at start: {data['machine']['loadavg_at_start']}).",
             "`bound` is each solver's own proven bound (a lower bound on cost); `gap` = (cost - bound) / cost. "
             "`ratio` is colgen's cost divided by that solver's cost (below 1: colgen is cheaper). "
             "one-per-gpu's bound holds only for plans without sharing (its own problem), so it can lie above "
             "colgen's cost; for the packing problem the proven bound is colgen's.", ""]
    for inst in data["instances"]:
        lines += [f"## {inst['scenario']}: {inst['models']} models, {inst['gpus']} GPUs of {inst['gpu_types']} types, "
                  f"limit {inst['time_limit_s']:g} s", "",
                  "| solver | status | wall s | cost $/h | bound | gap | GPUs | shared | verified | ratio |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
        for row in inst["results"]:
            ratio = inst["colgen_cost_ratio"].get(row["solver"], "")
            gap = "" if row.get("gap") is None else f"{row['gap']:.2%}"
            lines.append(f"| {row['solver']} | {row['status']} | {row['wall_s']} | {row.get('cost_usd_per_hour') or ''} | "
                         f"{row.get('bound') or ''} | {gap} | {row.get('gpus') or ''} | {row.get('shared_gpus') or ''} | "
                         f"{row.get('verified', '')} | {ratio} |")
        no_plan = [f"{row['solver']}: {row.get('message') or row.get('error')}" for row in inst["results"]
                   if not row.get("cost_usd_per_hour") and (row.get("message") or row.get("error"))]
        if no_plan:
            lines += ["", "without a plan: " + " | ".join(no_plan)]
        parts = inst.get("bounds", {})
        if parts:
            lines += ["", "proven bounds, each alone: " + ", ".join(
                f"{k} {v['value']} ({v['seconds']} s)" for k, v in parts.items())]
        lines += colgen_phases(inst["results"][0]) + [""]
    return "\n".join(lines) + "\n"


def colgen_phases(row: dict) -> list[str]:
    """The line under a table with colgen's phase statistics (none without stats)."""
    stats = row.get("stats", {})
    return ["", "colgen phases: " + ", ".join(f"{k}={v}" for k, v in stats.items())] if stats else []


def cli(report: str, doc: str, bench_fn, render_fn) -> None:
    """The command line of a fleet benchmark: --sizes, --seed, --out; writes
    `<out>/<report>.json` and `.md` (atomically) and prints the markdown."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args()
    data = bench_fn(args.sizes, args.seed)
    write_text_atomic(args.out / f"{report}.json", json.dumps(data, indent=2) + "\n")
    write_text_atomic(args.out / f"{report}.md", render_fn(data))
    print(render_fn(data))


def main() -> None:
    cli("packing_bench", __doc__, bench, render_markdown)


if __name__ == "__main__":
    main()
