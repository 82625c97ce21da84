"""Simulator speed: requests simulated per wall second on one core, on a fleet-sized plan.

    .venv/bin/python bench/bench_simulator.py [--gpus 1000] [--duration 20] [--repeats 3]

Builds a seeded synthetic fleet (one GPU type; most GPUs run one model, some are shared by
two; traffic at ~70% of each replica's capacity, cv from 1 to 2), warms the compiled loop
up, then times whole `simulate_plan` runs (arrivals, routing, serving, statistics).
Compile time is measured separately, in a fresh process with an empty numba cache.
Writes reports/simulator_bench.md and reports/simulator_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if hasattr(os, "sched_setaffinity"):  # one core, for real
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

from planner.plan import Plan, PlanGpu, PlanModel, PlanObjective, PlanReplica, PlanSolver  # noqa: E402
from planner.scenario import Scenario  # noqa: E402
from planner.simulator import SimulationSettings, simulate_plan  # noqa: E402


def synthetic_fleet(gpus: int, seed: int = 0, shared_share: float = 0.3, load: float = 0.7) -> tuple[Scenario, Plan]:
    """A seeded fleet: `gpus` GPUs, a model per ~4 GPUs, some GPUs shared by two models."""
    rng = np.random.default_rng(seed)
    model_count = max(2, gpus // 4)
    names = [f"m{i:04d}" for i in range(model_count)]
    base = rng.uniform(2.0, 20.0, model_count)
    per_item = rng.uniform(0.05, 1.0, model_count)
    batch = rng.choice([4, 8, 16, 32], model_count)
    cv = rng.choice([1.0, 1.0, 1.5, 2.0], model_count)
    gpu_members: list[list[int]] = []
    for g in range(gpus):
        first = g % model_count
        if rng.random() < shared_share:
            second = int(rng.integers(model_count))
            gpu_members.append([first] if second == first else [first, second])
        else:
            gpu_members.append([first])
    rate = np.zeros(model_count)
    plan_gpus, routing = [], {n: {} for n in names}
    share_rate: list[tuple[int, str, float]] = []
    for g, members in enumerate(gpu_members):
        cycle = sum(base[m] + per_item[m] * batch[m] for m in members)
        replicas = []
        for m in members:
            capacity = 1000.0 * batch[m] / cycle
            rate[m] += load * capacity
            share_rate.append((m, f"GPU-{g}", load * capacity))
            replicas.append(PlanReplica(model=names[m], batch_size=int(batch[m]), rate_rps=round(load * capacity, 6),
                                        capacity_rps=round(capacity, 6)))
        plan_gpus.append(PlanGpu(id=f"GPU-{g}", type="GPU", node=f"GPU-node-{g // 8}", replicas=replicas))
    for m, gpu_id, r in share_rate:
        routing[names[m]][gpu_id] = r / rate[m]
    scenario = Scenario.model_validate({
        "name": "bench-fleet",
        "gpu_types": [{"name": "GPU", "memory_gib": 80, "cost_per_hour_usd": 1.0}],
        "models": [{"name": n, "memory_gib": 1.0, "slo_ms": 10_000.0,
                    "profiles": {"GPU": {"base_ms": float(base[i]), "per_item_ms": float(per_item[i]),
                                         "max_batch": int(batch[i])}}} for i, n in enumerate(names)],
        "demand": [{"model": n, "rate_rps": float(rate[i]), "cv": float(cv[i])} for i, n in enumerate(names)],
    })
    plan = Plan(scenario="bench-fleet", status="feasible",
                objective=PlanObjective(name="min_cost", value=float(gpus), bound=float(gpus), gap=0.0),
                cost_per_hour_usd=float(gpus), gpus=plan_gpus, routing=routing,
                models={n: PlanModel(demand_rps=float(rate[i]), served_rps=float(rate[i]), capacity_rps=float(rate[i] / load))
                        for i, n in enumerate(names)},
                solver=PlanSolver(name="synthetic", version="0", wall_s=0.0, seed=seed))
    return scenario, plan


def compile_seconds() -> dict:
    """First simulate_plan in a fresh process: with an empty numba cache (compile) and with it filled."""
    code = ("import time,sys; sys.path.insert(0, %r); t=time.perf_counter();"
            "from bench.bench_simulator import synthetic_fleet;"
            "from planner.simulator import SimulationSettings, simulate_plan;"
            "s,p=synthetic_fleet(8); t1=time.perf_counter();"
            "simulate_plan(s,p,SimulationSettings(duration_s=1.0)); print(time.perf_counter()-t1)") % str(ROOT)
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("empty_cache_s", "warm_cache_s"):
            done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out[label] = round(float(done.stdout.strip().splitlines()[-1]), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=20.0, help="simulated seconds per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args()

    compile_times = compile_seconds()
    scenario, plan = synthetic_fleet(args.gpus)
    simulate_plan(scenario, plan, SimulationSettings(duration_s=0.5))  # warm-up: compiled code loaded
    runs = []
    for seed in range(args.repeats):
        started = time.perf_counter()
        result = simulate_plan(scenario, plan, SimulationSettings(duration_s=args.duration, seed=seed))
        wall = time.perf_counter() - started
        attained = [m.slo_attainment for m in result.models if m.slo_attainment is not None]
        runs.append({"seed": seed, "requests": result.requests, "wall_s": round(wall, 3),
                     "requests_per_s": round(result.requests / wall), "min_slo_attainment": round(min(attained), 4)})
    best = max(r["requests_per_s"] for r in runs)
    median = float(np.median([r["requests_per_s"] for r in runs]))
    total_rps = sum(d.rate_rps for d in scenario.demand)
    report = {
        "fleet": {"gpus": args.gpus, "models": len(scenario.models),
                  "shared_gpus": sum(len(g.replicas) > 1 for g in plan.gpus), "offered_rps": round(total_rps)},
        "duration_s": args.duration,
        "runs": runs,
        "median_requests_per_s": round(median),
        "best_requests_per_s": best,
        "compile": compile_times,
        "hour_of_fleet_traffic_s": round(total_rps * 3600.0 / median, 1),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores_used": 1, "numpy": np.__version__},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "simulator_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Simulator speed",
        "",
        f"Fleet: {args.gpus} GPUs, {len(scenario.models)} models, {report['fleet']['shared_gpus']} GPUs shared by two "
        f"models, {total_rps:,.0f} req/s offered (cv 1-2), {args.duration:g} s simulated per run, one core.",
        "Whole `simulate_plan` runs (arrival generation, routing, serving, statistics), after a warm-up.",
        "",
        "| seed | requests | wall s | requests / s | min SLO attainment |",
        "|---:|---:|---:|---:|---:|",
        *[f"| {r['seed']} | {r['requests']:,} | {r['wall_s']:.2f} | {r['requests_per_s']:,} | {r['min_slo_attainment']:.4f} |"
          for r in runs],
        "",
        f"Median: **{median:,.0f} requests simulated per wall second** (goal: 1,000,000).",
        f"An hour of this fleet's traffic ({total_rps * 3600:,.0f} requests) would take about "
        f"{report['hour_of_fleet_traffic_s']:,.0f} s.",
        "",
        f"Compile time (first call in a fresh process): {compile_times['empty_cache_s']:.2f} s with an empty numba "
        f"cache, {compile_times['warm_cache_s']:.2f} s with the cache filled (`cache=True`).",
        "",
        f"Reproduce: `.venv/bin/python bench/bench_simulator.py --gpus {args.gpus} --duration {args.duration:g} "
        f"--repeats {args.repeats}`",
        "",
    ]
    (args.out / "simulator_bench.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
