"""How many pricing iterations the fast dive's second round gets: colgen as it is (its dive by
`solvers.colgen.rules.dive_settings`, FAST_DIVE or FAST_DISJOINT_DIVE with
`first_residual_iterations`) against colgen forced to the same dive with the second round
priced like every other round (`first_residual_iterations=0`), on the same instances in one run.

Why the second round: the first round fixes the root LP's whole GPUs, and the second round's
LP is the first to see the leftovers (a demand of 2.3 replicas is now 0.3 of one, and its
columns' coverage is capped at that); at 1,000 models it jumped from 7,140 to 7,442 after two
iterations and needed about 20 to come down to 7,237, while the rounds after it fix a few
whole GPUs each from the unconverged LP.

Instances: fleet-1000x4096 at 60 s (the CLI's default limit; fast dive) and 100 s (fast
disjoint dive), alibaba-2023 (500 models) at 60 s, and generated fleets from
`planner.generate.generate_scenario` (seeded): 1,000 models on 4,096 GPUs of 8 types at 60 s
and 500 models on 2,048 GPUs of 8 types at 60 s. Each plan is checked with verify_plan here.
`ratio` = chosen / other (below 1: the rule's dive is cheaper).

    .venv/bin/python bench/bench_first_residual.py      # about 12 minutes on 2 cores

Writes reports/first_residual.md and .json.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.atomic import write_text_atomic  # noqa: E402
from planner.generate import generate_scenario  # noqa: E402
from planner.scenario import Scenario, load_scenario  # noqa: E402
from solvers.colgen.solver import dive_settings  # noqa: E402

from bench_dive_rules import compare, machine, ratio_summary  # noqa: E402  (bench/ is the script's directory)

SCENARIOS = [("fleet-1000x4096.yaml", 60.0), ("fleet-1000x4096.yaml", 100.0), ("alibaba-2023.yaml", 60.0)]
GENERATED = [(1000, 4096, 8, 2, 60.0), (500, 2048, 8, 1, 60.0), (500, 2048, 8, 2, 60.0), (500, 2048, 8, 3, 60.0)]


def instances():
    for file, limit_s in SCENARIOS:
        yield file, load_scenario(ROOT / "scenarios" / file), limit_s
    for models, gpus, types, seed, limit_s in GENERATED:
        yield (f"generated {models}x{gpus} seed {seed}",
               Scenario.model_validate(generate_scenario(models, gpus, types, seed)), limit_s)


def bench() -> dict:
    out = {"machine": machine(), "rows": []}
    for name, scenario, limit_s in instances():
        how = dive_settings(len(scenario.models), limit_s)
        print(f"[{name}] limit {limit_s:g} s, first residual round {how.first_residual_iterations} iterations ...",
              file=sys.stderr, flush=True)
        out["rows"].append(compare(name, scenario, limit_s, replace(how, first_residual_iterations=0),
                                   first_residual_iterations=how.first_residual_iterations,
                                   iterations_per_round=how.iterations_per_round))
    return out


def render_markdown(data: dict) -> str:
    lines = ["# The fast dive's second round", "",
             "Produced by `bench/bench_first_residual.py` (see its docstring), in one run on a "
             f"{data['machine']['cpus']}-core machine (load average at start: {data['machine']['loadavg_at_start']}). "
             "`chosen`: colgen as it is (its second dive round priced `first` times); `other`: the same dive with "
             "the second round priced like the others (`per round`). Costs in $/h; `ratio` = chosen / other.", "",
             "| instance | limit s | dive | first | per round | chosen $/h | status | s | other $/h | status | s | ratio | both verified |",
             "|---|---:|---|---:|---:|---:|---|---:|---:|---|---:|---:|---|"]
    for r in data["rows"]:
        c, k = r["chosen"], r["other"]
        lines.append(f"| {r['instance']} | {r['time_limit_s']:g} | {c['dive']} | {r['first_residual_iterations']} | "
                     f"{r['iterations_per_round']} | {c['cost_usd_per_hour']:,.2f} | {c['status']} | {c['wall_s']} | "
                     f"{k['cost_usd_per_hour']:,.2f} | {k['status']} | {k['wall_s']} | {r['ratio']} | "
                     f"{c['verified'] and k['verified']} |")
    lines += ratio_summary([r["ratio"] for r in data["rows"]])
    return "\n".join(lines) + "\n"


def main() -> None:
    data = bench()
    reports = ROOT / "reports"
    write_text_atomic(reports / "first_residual.json", json.dumps(data, indent=2) + "\n")
    write_text_atomic(reports / "first_residual.md", render_markdown(data))
    print(render_markdown(data))


if __name__ == "__main__":
    main()
