"""How far colgen's heuristic pricing is from exact pricing, and what the pattern LP is worth
once columns the heuristic misses are added.

For each fleet scenario:
1. column generation with colgen's pricing (greedy, then the time DP) until it finds no
   column (no tailing-off stop): the LP colgen would reach with unlimited time;
2. rounds of exact pricing (solvers.colgen.exact_pricing) at that LP's duals: per GPU type,
   the knapsack picks of the cycle bands whose upper bound exceeds 0.1% of the GPU's price
   are evaluated as real patterns; those that price out (reduced cost < 0) are columns the
   heuristic missed. The best of them (as a share of the GPU's price) says how far the
   heuristic is from exact; up to `--columns` per type are added and colgen's pricing runs
   to convergence again. After the rounds, the LP is close to the true pattern LP;
3. two proven bounds from each round's duals and exact bounds on each type's best reduced
   profit (within `--knapsacks` band bounds per type, refined best first): the Lagrangian
   bound (LP - sum_t count_t x profit_t) and the scaled dual (Farley) bound
   (LP / (1 + max_t profit_t / price_t), solvers.colgen.exact_pricing.scaled_dual_bound),
   the best round's, next to the proven bound colgen reports (solvers.bounds.best_cost_bound).
No time limit that matters to users: this is a measurement, not a solver setting.

    .venv/bin/python bench/bench_pricing_gap.py                   # 50 and 200 models
    .venv/bin/python bench/bench_pricing_gap.py --sizes 50 --rounds 3

Writes reports/pricing_gap.md and .json (results of earlier sizes are kept).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.atomic import write_text_atomic  # noqa: E402
from planner.problem import build_problem  # noqa: E402
from planner.scenario import load_scenario  # noqa: E402
from solvers.bounds import best_cost_bound  # noqa: E402
from solvers.colgen.columns import Index, type_items  # noqa: E402
from solvers.colgen.exact_pricing import prove_type, scaled_dual_bound  # noqa: E402
from solvers.colgen.master import Master  # noqa: E402
from solvers.colgen.pricing import SharedPricer, singleton_columns  # noqa: E402
from solvers.colgen.solver import ColumnGeneration, Progress  # noqa: E402
from solvers.packing_rules import pattern_violations  # noqa: E402

SIZES = {50: "fleet-50x64.yaml", 200: "fleet-200x512.yaml", 1000: "fleet-1000x4096.yaml"}
TOLERANCE_SHARE = 1e-3  # of a GPU's price: bands bounded within it are done
NEVER_TAIL_OFF = 10**9


def converge(solver: ColumnGeneration, problem, index, master, pool, progress):
    """colgen's pricing until it finds no column."""
    lp, _, converged = solver._generate(problem, index, master, pool, progress, math.inf, prove=True, warm=None,
                                        tail_iterations=NEVER_TAIL_OFF)
    return lp, converged


def exact_round(problem, index, master, lp, knapsacks: int, keep: int) -> dict:
    """One round of exact pricing at `lp`'s duals: per type, the best missed reduced cost and
    the exact bound on the best reduced profit; the columns to add (up to `keep` a type)."""
    pricer = SharedPricer(problem, index, type_items(problem, index))
    per_type, columns, loss, profits, prices = {}, [], 0.0, {}, {}
    for it, flat, demand, cv in zip(pricer.items, pricer.flat, pricer.demand, pricer.cv):
        gpu = problem.gpu_types[it.type_index]
        price = gpu.cost_per_hour_usd
        constant = master.shared_gpu_constant(it.type_index, lp.duals)
        t0 = time.perf_counter()
        proof = prove_type(it, flat, cv, demand, lp.duals.demand[it.model_indices], lp.duals.presence[it.model_indices],
                           constant, problem.max_utilization, TOLERANCE_SHARE * price, max_knapsacks=knapsacks)
        priced_out = []
        for positions, batches in proof.picks:
            if float(it.memory_per_gpu_gib[positions].sum()) > it.memory_gib + 1e-9:
                continue
            column = pricer._column_of_fill(it, positions, batches)
            if pattern_violations(problem, column.pattern):
                continue
            reduced = master.reduced_cost(column, lp.duals)
            if reduced < -1e-9 * price:
                priced_out.append((reduced, column))
        priced_out.sort(key=lambda rc: (rc[0], rc[1].pattern))
        seen = set()
        for _, column in priced_out:
            if column.pattern not in seen and len(seen) < keep:
                seen.add(column.pattern)
                columns.append(column)
        count = gpu.count if gpu.count is not None else math.inf
        loss += count * max(0.0, proof.profit_bound)
        profits[it.type_index], prices[it.type_index] = proof.profit_bound, price
        per_type[gpu.name] = {
            "best_missed_share": round(-priced_out[0][0] / price, 4) if priced_out else 0.0,
            "priced_out": len(priced_out),
            "profit_bound_share": round(proof.profit_bound / price, 4),
            "bounds_computed": proof.bands,
            "seconds": round(time.perf_counter() - t0, 2),
        }
    return {"per_type": per_type, "columns": columns, "lagrangian": lp.value - loss,
            "scaled_dual": scaled_dual_bound(lp.value, profits, prices)}


def measure(file: str, rounds: int, knapsacks: int, keep: int) -> dict:
    problem = build_problem(load_scenario(ROOT / "scenarios" / file))
    index = Index.of(problem)
    solver, pool, progress = ColumnGeneration(), {}, Progress()
    master = Master(problem, index)
    solver._add(master, problem, index, pool, singleton_columns(problem, index))
    start = time.perf_counter()
    lp, converged = converge(solver, problem, index, master, pool, progress)
    row = {"scenario": file, "heuristic_lp": round(lp.value, 3), "heuristic_converged": converged,
           "heuristic_iterations": progress.iterations, "heuristic_s": round(time.perf_counter() - start, 2),
           "rounds": []}
    first_columns = len(master.columns)
    for number in range(rounds):
        t0 = time.perf_counter()
        found = exact_round(problem, index, master, lp, knapsacks, keep)
        added = solver._add(master, problem, index, pool, found["columns"])
        entry = {"round": number, "lp_before": round(lp.value, 3), "lagrangian_bound": round(found["lagrangian"], 3),
                 "scaled_dual_bound": round(found["scaled_dual"], 3),
                 "columns_added": added, "per_type": found["per_type"]}
        if added:
            lp, converged = converge(solver, problem, index, master, pool, progress)
        entry["lp_after"] = round(lp.value, 3)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        row["rounds"].append(entry)
        print(f"{file} round {number}: LP {entry['lp_before']} -> {entry['lp_after']}, "
              f"{added} columns, {entry['seconds']} s", flush=True)
        if not added:
            break
    row["final_lp"] = round(lp.value, 3)
    row["columns_added"] = len(master.columns) - first_columns
    t0 = time.perf_counter()
    row["proven_bound"] = round(best_cost_bound(problem, time_limit_s=60.0), 3)
    row["proven_bound_s"] = round(time.perf_counter() - t0, 2)
    row["total_s"] = round(time.perf_counter() - start, 1)
    return row


def render(rows: list[dict]) -> str:
    out = ["# Heuristic pricing against exact pricing", "",
           "`.venv/bin/python bench/bench_pricing_gap.py` (see its docstring). $/h. The heuristic LP is colgen's",
           "pattern LP when its own pricing finds no more columns; exact pricing (solvers/colgen/exact_pricing.py)",
           "then finds patterns that price out, which colgen's pricing missed. Neither LP is a proven bound; the",
           "Lagrangian and the scaled dual (Farley) bounds from exact pricing are, and so is colgen's (the replica",
           "relaxation).", "",
           "| scenario | heuristic LP (iterations, s) | best missed reduced cost, share of the GPU's price (round 0) "
           "| LP after exact rounds (rounds, columns generated after the heuristic LP) | Lagrangian bound, last round "
           "| scaled dual bound, best round (s to it) | colgen's proven bound |",
           "|---|---:|---|---:|---:|---:|---:|"]
    for row in rows:
        first = row["rounds"][0]["per_type"] if row["rounds"] else {}
        missed = ", ".join(f"{name} {100 * v['best_missed_share']:.1f}%" for name, v in first.items())
        last = row["rounds"][-1] if row["rounds"] else {"lagrangian_bound": math.nan}
        scaled = [(e.get("scaled_dual_bound", math.nan), k) for k, e in enumerate(row["rounds"])]
        best_scaled, at = max(scaled, default=(math.nan, -1))
        to_it = row["heuristic_s"] + sum(e["seconds"] for e in row["rounds"][:at + 1])
        out.append(f"| {row['scenario']} | {row['heuristic_lp']:,.2f} ({row['heuristic_iterations']}, {row['heuristic_s']} s) "
                   f"| {missed} | {row['final_lp']:,.2f} ({len(row['rounds'])}, {row['columns_added']:,}) "
                   f"| {last['lagrangian_bound']:,.2f} | {best_scaled:,.2f} ({to_it:.0f} s) | {row['proven_bound']:,.2f} |")
    out += ["", "Per round: LP before and after, columns added, seconds; per type: the exact bound on the best",
            "reduced profit (share of the GPU's price) and how many band bounds it took.", ""]
    for row in rows:
        out.append(f"## {row['scenario']}")
        out.append("")
        for entry in row["rounds"]:
            types = "; ".join(f"{name}: missed {100 * v['best_missed_share']:.2f}%, bound {100 * v['profit_bound_share']:.1f}% "
                              f"({v['bounds_computed']:,} bounds, {v['seconds']} s)" for name, v in entry["per_type"].items())
            out.append(f"- round {entry['round']}: {entry['lp_before']:,.3f} -> {entry['lp_after']:,.3f}, "
                       f"{entry['columns_added']} columns, {entry['seconds']} s; scaled dual bound "
                       f"{entry.get('scaled_dual_bound', math.nan):,.3f}. {types}")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200", help="comma-separated model counts: 50, 200, 1000")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of exact pricing")
    parser.add_argument("--knapsacks", type=int, default=3000, help="band bounds per type and round (a work limit)")
    parser.add_argument("--columns", type=int, default=200, help="columns added per type and round")
    args = parser.parse_args()
    json_path = ROOT / "reports" / "pricing_gap.json"
    kept = {r["scenario"]: r for r in json.loads(json_path.read_text())} if json_path.exists() else {}
    for size in (int(s) for s in args.sizes.split(",")):
        row = measure(SIZES[size], args.rounds, args.knapsacks, args.columns)
        row["load_average"] = [round(x, 2) for x in os.getloadavg()]
        kept[row["scenario"]] = row
    rows = [kept[f] for f in SIZES.values() if f in kept]
    write_text_atomic(json_path, json.dumps(rows, indent=1) + "\n")
    write_text_atomic(ROOT / "reports" / "pricing_gap.md", render(rows) + "\n")
    print(render(rows))


if __name__ == "__main__":
    main()
