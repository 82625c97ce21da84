"""max_throughput at fleet scale (issue 3: "both objectives at this scale"): colgen against
every baseline and against itself without the throughput dive, side by side, in one run.

The three fleet scenarios of bench/bench_packing.py (50 / 200 / 1,000 models on 64 / 512 /
4,096 GPUs) with objective max_throughput and two budgets each, about 55% and 85% of colgen's
min_cost plan there ($100.93, $1,339.87 and $7,459.24 an hour in reports/packing_bench.md),
so the budget binds. Same time limits as the packing benchmark (10 / 10 / 60 s). Every plan
is checked with verify_plan.

`served` is the solver's objective: priority-weighted planned req/s within demand; `bound`
its proven upper bound; `gap` = (bound - served) / bound. `ratio` = colgen's served / that
solver's (above 1: colgen serves more). `colgen-no-dive` is colgen with the throughput dive
(solvers/colgen/throughput_dive.py) switched off: the integer master alone, as before it.
Under each table, colgen again with `fairness: true` (stage 1: the largest share of demand
every model can get, by the share search of solvers/colgen/fair_share.py; stage 2:
throughput keeping it), and `colgen-max-share-mip`, colgen with stage 1 as it was before the
share search (the max-share master's MIP alone, half the time limit); the plans' bound
ignores the fair share, the fair share has its own.

    .venv/bin/python bench/bench_throughput.py             # all sizes (about 15 minutes)
    .venv/bin/python bench/bench_throughput.py --sizes 200 # one size

Writes reports/throughput_bench.md and reports/throughput_bench.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_dive_rules import machine  # noqa: E402  (bench/ is the script's directory)
from bench_packing import SIZES, cli, colgen_phases, make_solver, run_guarded  # noqa: E402

BUDGETS_USD_PER_HOUR = {50: (55.0, 85.0), 200: (740.0, 1140.0), 1000: (4100.0, 6340.0)}
SOLVERS = ["colgen", "colgen-no-dive", "greedy-pack", "best-single-type", "one-per-gpu"]
FAIRNESS_SOLVERS = ["colgen", "colgen-max-share-mip"]  # the second: stage 1 as before the share search


def make(name: str):
    if name == "colgen-max-share-mip":  # fairness, stage 1 as before the share search
        from solvers.colgen.solver import ColumnGeneration

        return ColumnGeneration(share_search=False)
    if name == "colgen-no-dive":
        from solvers.colgen.solver import ColumnGeneration

        solver = ColumnGeneration()
        solver._throughput_dive = lambda *args: ()  # the integer master alone (this solver object only)
        return solver
    return make_solver(name)


def with_budget(budget: float, fairness: bool = False):
    def prepare(scenario):
        return scenario.model_copy(update={"objective": "max_throughput", "budget_usd_per_hour": budget,
                                           "fairness": fairness})
    return prepare


def bench(sizes: list[int], seed: int) -> dict:
    out = {"machine": machine(), "seed": seed, "instances": []}
    for size in sizes:
        file, limit = SIZES[size]
        for budget in BUDGETS_USD_PER_HOUR[size]:
            rows = []
            for name in SOLVERS:
                print(f"[{file} ${budget:g}/h] {name} (limit {limit:g} s) ...", file=sys.stderr, flush=True)
                rows.append(run_guarded(file, name, limit, seed, wall_cap_s=3 * limit + 30,
                                        prepare=with_budget(budget), make=make))
                print(f"    {rows[-1]}", file=sys.stderr, flush=True)
            fair = {}
            for name in FAIRNESS_SOLVERS:
                print(f"[{file} ${budget:g}/h] {name} with fairness (limit {limit:g} s) ...", file=sys.stderr, flush=True)
                fair[name] = run_guarded(file, name, limit, seed, wall_cap_s=3 * limit + 30,
                                         prepare=with_budget(budget, fairness=True), make=make)
                print(f"    {fair[name]}", file=sys.stderr, flush=True)
            colgen = rows[0].get("value")
            ratios = {row["solver"]: round(colgen / row["value"], 4) for row in rows[1:]
                      if colgen and row.get("value")}
            out["instances"].append({"scenario": file, "models": size, "budget_usd_per_hour": budget,
                                     "time_limit_s": limit, "results": rows, "colgen_served_ratio": ratios,
                                     "fairness": fair})
    return out


def render_markdown(data: dict) -> str:
    lines = ["# max_throughput benchmark (issue 3)", "",
             "Produced by `bench/bench_throughput.py` (see its docstring), in one run on a "
             f"{data['machine']['cpus']}-core machine (load average at start: {data['machine']['loadavg_at_start']}). "
             "`served`: priority-weighted planned req/s within demand (the objective); `bound`: the solver's "
             "proven upper bound; `gap` = (bound - served) / bound; `ratio` = colgen's served / that solver's "
             "(above 1: colgen serves more); `colgen-no-dive`: colgen without the throughput dive.", ""]
    for inst in data["instances"]:
        lines += [f"## {inst['scenario']}: {inst['models']} models, budget ${inst['budget_usd_per_hour']:,.0f}/h, "
                  f"limit {inst['time_limit_s']:g} s", "",
                  "| solver | status | wall s | served | bound | gap | spent $/h | GPUs | shared | verified | ratio |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
        for row in inst["results"]:
            ratio = inst["colgen_served_ratio"].get(row["solver"], "")
            gap = "" if row.get("gap") is None else f"{row['gap']:.2%}"
            served = "" if row.get("value") is None else f"{row['value']:,.1f}"
            bound = "" if row.get("bound") is None else f"{row['bound']:,.1f}"
            lines.append(f"| {row['solver']} | {row['status']} | {row['wall_s']} | {served} | {bound} | {gap} | "
                         f"{row.get('cost_usd_per_hour') or ''} | {row.get('gpus') or ''} | "
                         f"{row.get('shared_gpus') or ''} | {row.get('verified', '')} | {ratio} |")
        no_plan = [f"{row['solver']}: {row.get('message') or row.get('error')}" for row in inst["results"]
                   if row.get("value") is None and (row.get("message") or row.get("error"))]
        if no_plan:
            lines += ["", "without a plan: " + " | ".join(no_plan)]
        fair = inst.get("fairness") or {}
        if "status" in fair:  # a report from before the max-share baseline: colgen's run alone
            fair = {"colgen": fair}
        for name, run in fair.items():
            lines += ["", _fairness_line(name, run)]
        lines += colgen_phases(inst["results"][0]) + [""]
    return "\n".join(lines) + "\n"


def _fairness_line(name: str, run: dict) -> str:
    """One fairness run: the smallest share (and its proven bound), served, spend, status."""
    stats = run.get("stats", {})
    served = "no plan" if run.get("value") is None else f"serves {run['value']:,.1f}"
    how = ("the share search: " f"{stats.get('fair_attempts', '')} min_cost plan(s)" if name == "colgen"
           else "the max-share master's MIP alone, as before the share search")
    return (f"{name} with `fairness: true`: {run['status']}, {run['wall_s']} s, {served}, every model at least "
            f"{stats.get('fair_share', float('nan')):.1%} of its demand (stage 1, {how}; proven: no plan within the "
            f"budget gives every model more than {stats.get('fair_share_bound', float('nan')):.1%}), spent "
            f"${run.get('cost_usd_per_hour') or 0:,.2f}/h, verified {run.get('verified')}; stage 2's dive "
            f"{stats.get('dive_value', '')}, its MIP {stats.get('mip_value', '')}")


def main() -> None:
    cli("throughput_bench", __doc__, bench, render_markdown)


if __name__ == "__main__":
    main()
