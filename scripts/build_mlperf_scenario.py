"""Build scenarios/mlperf-small.yaml from the public measurements in ../shared/data/.

    .venv/bin/python scripts/build_mlperf_scenario.py [--data ../shared/data] [--out scenarios/mlperf-small.yaml]

Reproducible: the same data give the same bytes. How each number is derived:
- Throughput X per accelerator: median of `result_per_accelerator` over all VALID closed
  datacenter Offline results of that model on that accelerator, from MLPerf Inference
  v4.1 (H100-SXM-80GB, H200-SXM-141GB); v4.1 has no A100 or L4 results, so those come
  from v3.0. llama2-70b reports tokens/s; it becomes requests/s by dividing by the mean
  generated tokens per request of the Azure LLM inference trace 2023 (conv).
- Batch times: a linear profile whose throughput at `max_batch` B equals X (an Offline run is
  the large-batch limit): l(B) = 1000 B / X ms; a fixed share FIXED_SHARE of l(B) is per-batch
  overhead, so base_ms = FIXED_SHARE l(B) and per_item_ms = (1 - FIXED_SHARE) l(B) / B. The
  split is an assumption (MLPerf does not publish batch-time curves).
- A tensor-parallel replica of d GPUs (llama2-70b, d = 8 like the submitted 8-GPU systems)
  gets d x the per-accelerator throughput.
- Prices: per-GPU on-demand USD/h from ../shared/data/gpu-prices (AWS us-east-1 via the
  SkyPilot catalog): p5.48xlarge (H100), p5en.48xlarge (H200), p4de.24xlarge (A100-80GB),
  g6.12xlarge (L4). Memory from the same rows (MiB / 1024), GPUs per node = GPUs per instance.
- SLOs: the MLPerf Server-scenario latency bounds (resnet50 15 ms, bert-99 130 ms,
  gptj-99 20 s; llama2-70b TTFT 2 s + TPOT 200 ms x mean generated tokens).
- Demand and inventory counts are chosen for the example (not measured).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.scenario import parse_scenario_text  # noqa: E402

FIXED_SHARE = 0.3

# scenario GPU name -> (MLPerf accelerator name, MLPerf round, price row instance type, count)
GPUS = {
    "H100": ("NVIDIA H100-SXM-80GB", "v4.1", "p5.48xlarge", 16),
    "H200": ("NVIDIA H200-SXM-141GB", "v4.1", "p5en.48xlarge", 8),
    "A100-80GB": ("NVIDIA A100-SXM-80GB", "v3.0", "p4de.24xlarge", 16),
    "L4": ("NVIDIA L4", "v3.0", "g6.12xlarge", 32),
}

# scenario model -> (MLPerf model, memory GiB, max batch, tensor parallel degrees, SLO ms or None, demand req/s)
MODELS = {
    "resnet50": ("resnet50", 2.0, 64, [1], 15.0, 20000.0),
    "bert-99": ("bert-99", 3.0, 32, [1], 130.0, 4000.0),
    "gptj-99": ("gptj-99", 30.0, 16, [1], 20000.0, 40.0),
    "llama2-70b": ("llama2-70b-99", 160.0, 64, [8], None, 20.0),
}
ASSUMED_MEMORY = "memory_gib: weights at the precision MLPerf runs plus runtime, rounded up (assumed)"


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def offline_throughput(rows: list[dict], model: str, accelerator: str) -> tuple[float, int] | None:
    values = [float(r["result_per_accelerator"]) for r in rows
              if r["model"] == model and r["accelerator"] == accelerator and r["scenario"] == "Offline"
              and r["valid"] == "VALID" and r["result_per_accelerator"]]
    return (statistics.median(values), len(values)) if values else None


def linear_profile(throughput_rps: float, max_batch: int) -> dict:
    full_ms = 1000.0 * max_batch / throughput_rps
    return {"base_ms": round(FIXED_SHARE * full_ms, 4),
            "per_item_ms": round((1 - FIXED_SHARE) * full_ms / max_batch, 5),
            "max_batch": max_batch}


def build(data: Path) -> str:
    mlperf = {
        "v4.1": read_csv(data / "mlperf-inference" / "mlperf_inference_v4.1_closed_datacenter.csv"),
        "v3.0": read_csv(data / "mlperf-inference" / "mlperf_inference_v3.0_closed_datacenter.csv"),
    }
    prices = {r["instance_type"]: r for r in read_csv(data / "gpu-prices" / "gpu_ondemand_prices_partial.csv")
              if r["region"] == "us-east-1"}
    trace = read_csv(data / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_conv.csv")
    mean_tokens = statistics.fmean(int(r["GeneratedTokens"]) for r in trace)

    comments = [
        "# Built by scripts/build_mlperf_scenario.py from ../shared/data/ (do not edit by hand; rerun the script).",
        "# Sources:",
        "#   MLPerf Inference closed datacenter, Offline, median per-accelerator throughput:",
        "#     v4.1: mlcommons/inference_results_v4.1 @ 198fc46799b3328b36ee4bcbdebfa2db5a8e6183 (H100, H200)",
        "#     v3.0: mlcommons/inference_results_v3.0 @ 1948f9b5b93c5b4dcafe15de0faa08cdf1439fca (A100-80GB, L4;",
        "#           v4.1 has no results for them)",
        "#   Prices: ../shared/data/gpu-prices (skypilot-org/skypilot-catalog catalogs/v7/aws/vms.csv,",
        "#     AWS us-east-1 on-demand, per GPU = instance price / GPUs per instance)",
        f"#   Tokens per request (llama2-70b): mean GeneratedTokens of the Azure LLM inference trace 2023 (conv), {mean_tokens:.1f}",
        f"# Batch times: linear profile with throughput X at max_batch B: base_ms = {FIXED_SHARE} x 1000 B / X,",
        f"#   per_item_ms = {1 - FIXED_SHARE:.1f} x 1000 / X (the fixed/per-item split is an assumption).",
        "# SLOs: MLPerf Server latency bounds; llama2-70b: TTFT 2 s + TPOT 200 ms x mean generated tokens.",
        f"# {ASSUMED_MEMORY}. Demand and inventory counts are example values.",
        "# Measured throughput used per profile (req/s per accelerator, number of results):",
    ]
    gpu_types = []
    for name, (_, _, instance, count) in GPUS.items():
        row = prices[instance]
        gpu_types.append({
            "name": name,
            "memory_gib": round(int(row["gpu_memory_mib"]) / 1024, 2),
            "cost_per_hour_usd": round(float(row["price_per_gpu_usd_per_hour"]), 4),
            "count": count,
            "gpus_per_node": int(row["accelerators_per_instance"]),
        })
    models, demand = [], []
    for name, (mlperf_name, memory, max_batch, tp, slo, rate) in MODELS.items():
        profiles = {}
        for gpu, (accelerator, round_, _, _) in GPUS.items():
            measured = offline_throughput(mlperf[round_], mlperf_name, accelerator)
            if measured is None:
                continue
            per_gpu, n = measured
            if mlperf_name.startswith("llama2"):
                per_gpu /= mean_tokens  # tokens/s -> requests/s
            comments.append(f"#   {name} on {gpu}: {per_gpu:.3f} (MLPerf {round_}, {accelerator}, {n} results)")
            degree = tp[0]
            profile = linear_profile(per_gpu * degree, max_batch)
            profiles[gpu] = profile if degree == 1 else {"tp": {degree: profile}}
        if slo is None:
            slo = round(2000.0 + 200.0 * mean_tokens, 1)
        models.append({"name": name, "memory_gib": memory, "slo_ms": slo, "tensor_parallel": tp, "profiles": profiles})
        demand.append({"model": name, "rate_rps": rate})
    raw = {"format": "scenario/v1", "name": "mlperf-small", "objective": "min_cost", "max_utilization": 0.8,
           "gpu_types": gpu_types, "models": models, "demand": demand}
    text = "\n".join(comments) + "\n" + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=120)
    parse_scenario_text(text, "mlperf-small")  # must load
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description="Build scenarios/mlperf-small.yaml from ../shared/data/")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "scenarios" / "mlperf-small.yaml")
    args = parser.parse_args()
    text = build(args.data)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
