"""What the pool MIP (solvers/colgen/rules.py, `pool_mip_nodes`) buys: colgen with and
without it on the same instances, in one run.

Instances: fleet-50x64 and generated 50-model scenarios (planner.generate, 64 GPUs of 4
types, seeds 1-6). For each, colgen without the pool MIP (`ColumnGeneration(pool_mip=False)`:
the plan of the earlier phases, which does not depend on the limit once they finish), and
with it at each time limit (60 s, the CLI's default, and 120 s): plan $/h, wall seconds,
status. The pool MIP runs where the pool has at most POOL_MIP_MAX_COLUMNS patterns and the
limit gives POOL_MIP_S_PER_MODEL a model, with POOL_MIP_NODES_PER_S nodes per second of it.

    .venv/bin/python bench/bench_pool_mip.py              # about 12 minutes on 2 cores
    .venv/bin/python bench/bench_pool_mip.py --limits 60 --seeds 1,2

Writes reports/pool_mip.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.atomic import write_text_atomic  # noqa: E402
from planner.generate import generate_scenario  # noqa: E402
from planner.problem import SolveSettings, build_problem  # noqa: E402
from planner.scenario import load_scenario, parse_scenario_text  # noqa: E402
from solvers.colgen.solver import (POOL_MIP_MAX_COLUMNS, POOL_MIP_NODES_PER_S, POOL_MIP_S_PER_MODEL,  # noqa: E402
                                   ColumnGeneration)


def instances(seeds: list[int]):
    yield "fleet-50x64.yaml", build_problem(load_scenario(ROOT / "scenarios" / "fleet-50x64.yaml"))
    for seed in seeds:
        text = json.dumps(generate_scenario(50, 64, 4, seed))
        yield f"generated 50 models, 64 GPUs, 4 types, seed {seed}", build_problem(parse_scenario_text(text, as_json=True))


def run(problem, limit: float, pool_mip: bool) -> dict:
    start = time.perf_counter()
    result = ColumnGeneration(pool_mip=pool_mip).solve(problem, SolveSettings(time_limit_s=limit))
    return {"plan": round(result.value, 4), "bound": round(result.bound, 4), "status": result.status.value,
            "wall_s": round(time.perf_counter() - start, 1), "pool_mip_s": result.stats.get("pool_mip_s"),
            "pool_mip_value": result.stats.get("pool_mip_value")}


def render(data: dict) -> str:
    limits = data["limits"]
    out = ["# The pool MIP", "",
           f"`.venv/bin/python bench/bench_pool_mip.py` (see its docstring), {data['cpus']} cores, load at start "
           f"{data['loadavg_at_start']}. $/h. `without`: colgen's plan without the pool MIP (it does not depend on "
           "the limit once the earlier phases finish); `with, L s`: with it, at limit L. Rule: pool of at most "
           f"{POOL_MIP_MAX_COLUMNS:,} patterns, limit of at least {POOL_MIP_S_PER_MODEL:g} s a model, "
           f"{POOL_MIP_NODES_PER_S} nodes a second of the limit.", "",
           "| instance | without (s) | " + " | ".join(f"with, {limit:g} s (s, status)" for limit in limits) + " |",
           "|---|---:|" + "---:|" * len(limits)]
    for row in data["rows"]:
        cells = [f"{row['without']['plan']:,.2f} ({row['without']['wall_s']})"]
        for limit in limits:
            r = row["with"][str(limit)]
            change = (r["plan"] - row["without"]["plan"]) / row["without"]["plan"]
            cells.append(f"{r['plan']:,.2f} ({change:+.1%}; {r['wall_s']}, {r['status']})")
        out.append(f"| {row['instance']} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limits", default="60,120", help="comma-separated time limits, seconds")
    parser.add_argument("--seeds", default="1,2,3,4,5,6", help="generated instances' seeds")
    args = parser.parse_args()
    limits = [float(x) for x in args.limits.split(",")]
    data = {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()], "limits": limits,
            "rows": []}
    for name, problem in instances([int(s) for s in args.seeds.split(",")]):
        row = {"instance": name, "without": run(problem, max(limits), pool_mip=False), "with": {}}
        for limit in limits:
            row["with"][str(limit)] = run(problem, limit, pool_mip=True)
        print(name, row, file=sys.stderr, flush=True)
        data["rows"].append(row)
    write_text_atomic(ROOT / "reports" / "pool_mip.json", json.dumps(data, indent=1) + "\n")
    write_text_atomic(ROOT / "reports" / "pool_mip.md", render(data))
    print(render(data))


if __name__ == "__main__":
    main()
