"""Which dive rounds best: colgen as it chooses (solvers.colgen.rules.dive_settings) against
colgen forced to the same dive without disjoint round-ups, on the same instances in one run.

Instances: fleet-200x512 at 10 s; from `planner.generate.generate_scenario` (seeded), 200
models on 512 GPUs of 6 types at 10 s (the issue's goal size and limit) and 400 models on
1,024 GPUs of 6 types at 20 s (careful dive); alibaba-2023 (500 models) at 50 s and
fleet-1000x4096 at 100 s (fast dive, disjoint from 0.1 s a model). Each plan is checked with
verify_plan here. `ratio` is the chosen dive's cost over the other's (below 1: the rule's
dive is cheaper).

Then the portfolio (solvers.colgen.solver.dive_portfolio: a second dive whose first round
fixes dedicated columns only, from 0.15 s a model): the 200-model instances at 30 s, colgen
as it is against colgen forced to the first dive alone.

    .venv/bin/python bench/bench_dive_rules.py                  # about 10 minutes on 2 cores
    .venv/bin/python bench/bench_dive_rules.py --seeds 1 2 3    # fewer instances

Writes reports/dive_rules.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.atomic import write_text_atomic  # noqa: E402
from planner.generate import generate_scenario  # noqa: E402
from planner.plan import extract_plan  # noqa: E402
from planner.problem import SolveSettings, build_problem  # noqa: E402
from planner.scenario import Scenario, load_scenario  # noqa: E402
from planner.verify import verify_plan  # noqa: E402
from solvers.colgen.solver import ColumnGeneration, dive_portfolio, dive_settings  # noqa: E402

# (models, GPUs, GPU types, time limit s) of the generated instances
SIZES = [(200, 512, 6, 10.0), (400, 1024, 6, 20.0)]
SEEDS_400 = 3  # the first this many seeds at 400 models (each run takes 10-15 s)
PORTFOLIO_LIMIT_S = 30.0  # the 200-model instances again at this limit, where the portfolio runs


def run(scenario: Scenario, limit_s: float, forced) -> dict:
    problem = build_problem(scenario)
    start = time.perf_counter()
    result = ColumnGeneration(dive=forced).solve(problem, SolveSettings(time_limit_s=limit_s))
    wall = time.perf_counter() - start
    plan = extract_plan(problem, result)
    return {"cost_usd_per_hour": round(result.value, 4), "bound": round(result.bound, 4), "status": result.status.value,
            "wall_s": round(wall, 2), "dive": result.stats["dive_rule"], "verified": verify_plan(scenario, plan) == []}


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def compare(name: str, scenario: Scenario, limit_s: float, forced, **extra) -> dict:
    """One table row: colgen as it is (`chosen`) against colgen forced to `forced` (`other`),
    on the same scenario and limit; `extra` fields go before the two runs."""
    chosen = run(scenario, limit_s, None)
    other = run(scenario, limit_s, forced)
    row = {"instance": name, "models": len(scenario.models), "time_limit_s": limit_s, **extra, "chosen": chosen,
           "other": other, "ratio": round(chosen["cost_usd_per_hour"] / other["cost_usd_per_hour"], 4)}
    print(f"    {row}", file=sys.stderr, flush=True)
    return row


# fixed scenarios and their time limits
SCENARIOS = [("fleet-200x512.yaml", 10.0), ("alibaba-2023.yaml", 50.0), ("fleet-1000x4096.yaml", 100.0)]


def instances(seeds: list[int]):
    yield SCENARIOS[0][0], load_scenario(ROOT / "scenarios" / SCENARIOS[0][0]), SCENARIOS[0][1]
    for models, gpus, types, limit_s in SIZES:
        for seed in seeds[: SEEDS_400 if models > 200 else len(seeds)]:
            yield (f"generated {models}x{gpus} seed {seed}",
                   Scenario.model_validate(generate_scenario(models, gpus, types, seed)), limit_s)
    for file, limit_s in SCENARIOS[1:]:
        yield file, load_scenario(ROOT / "scenarios" / file), limit_s


def bench(seeds: list[int]) -> dict:
    out = {"machine": machine(), "rows": []}
    at_goal_size = []  # the 200-model instances, for the portfolio below
    for name, scenario, limit_s in instances(seeds):
        if len(scenario.models) == 200:
            at_goal_size.append((name, scenario))
        print(f"[{name}] limit {limit_s:g} s ...", file=sys.stderr, flush=True)
        # against the same dive without disjoint round-ups
        out["rows"].append(compare(name, scenario, limit_s,
                                   replace(dive_settings(len(scenario.models), limit_s), disjoint_round_ups=False)))
    out["portfolio"] = []
    for name, scenario in at_goal_size:
        models = len(scenario.models)
        dives = dive_portfolio(models, PORTFOLIO_LIMIT_S)
        print(f"[{name}] portfolio, limit {PORTFOLIO_LIMIT_S:g} s ...", file=sys.stderr, flush=True)
        out["portfolio"].append(compare(name, scenario, PORTFOLIO_LIMIT_S, dives[0]))
    return out


def render_markdown(data: dict) -> str:
    lines = ["# Dive rules", "",
             "Produced by `bench/bench_dive_rules.py` (see its docstring), in one run on a "
             f"{data['machine']['cpus']}-core machine (load average at start: {data['machine']['loadavg_at_start']}). "
             "`chosen`: colgen as it is (its dive by `dive_settings`); `other`: colgen forced to the same "
             "dive without disjoint round-ups. Costs in $/h; `ratio` = chosen / other.", "",
             "| instance | limit s | chosen dive | chosen $/h | status | s | other dive | other $/h | status | s | ratio | both verified |",
             "|---|---:|---|---:|---|---:|---|---:|---|---:|---:|---|"]
    lines += _table(data["rows"])
    if data.get("portfolio"):
        lines += ["", "## Portfolio", "",
                  f"The 200-model instances at {PORTFOLIO_LIMIT_S:g} s: `chosen` runs `dive_portfolio`'s dives and keeps "
                  "the cheaper plan; `other` is colgen forced to the first dive alone.", "",
                  "| instance | limit s | chosen dives | chosen $/h | status | s | other dive | other $/h | status | s | ratio | both verified |",
                  "|---|---:|---|---:|---|---:|---|---:|---|---:|---:|---|"]
        lines += _table(data["portfolio"])
    return "\n".join(lines) + "\n"


def _table(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        c, k = r["chosen"], r["other"]
        lines.append(f"| {r['instance']} | {r['time_limit_s']:g} | {c['dive']} | {c['cost_usd_per_hour']:,.2f} | "
                     f"{c['status']} | {c['wall_s']} | {k['dive']} | {k['cost_usd_per_hour']:,.2f} | {k['status']} | "
                     f"{k['wall_s']} | {r['ratio']} | {c['verified'] and k['verified']} |")
    return lines + ratio_summary([r["ratio"] for r in rows])


def ratio_summary(ratios: list[float]) -> list[str]:
    """The closing line of a table of chosen / other ratios (none when there are no rows)."""
    if not ratios:
        return []
    return ["", f"ratio: min {min(ratios)}, max {max(ratios)}, "
                f"{sum(1 for x in ratios if x < 1 - 1e-9)} of {len(ratios)} cheaper, "
                f"{sum(1 for x in ratios if x > 1 + 1e-9)} dearer."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=list(range(1, 10)))
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args()
    data = bench(args.seeds)
    write_text_atomic(args.out / "dive_rules.json", json.dumps(data, indent=2) + "\n")
    write_text_atomic(args.out / "dive_rules.md", render_markdown(data))
    print(render_markdown(data))


if __name__ == "__main__":
    main()
