"""Build the GPU catalog (planner/gpu_catalog_data.py) from the shared public data.

    .venv/bin/python scripts/build_gpu_catalog.py            # rewrite the table
    .venv/bin/python scripts/build_gpu_catalog.py --check    # exit 1 if the table is stale

Sources (see each folder's PROVENANCE.md under ../shared/data/):
- speed: MLPerf Inference closed datacenter, Offline scenario, column
  `result_per_accelerator`, median over all valid submissions per accelerator name.
  Families: "vision" = resnet50, "nlp" = bert-99. v3.0 (mlcommons/inference_results_v3.0
  @1948f9b5) holds T4, L4, A100, H100; v4.1 (mlcommons/inference_results_v4.1 @198fc467)
  holds H200 and L40S, which are chained to v3.0 through H100-SXM-80GB (present in both):
  speed(X) = v4.1(X)/v4.1(H100-SXM) * v3.0(H100-SXM)/v3.0(T4). Speeds are relative to T4.
- price: ../shared/data/gpu-prices/gpu_ondemand_prices_partial.csv, per-GPU on-demand
  USD/hour (AWS us-east-1 rows where present, else Lambda; SkyPilot catalog v7).
- Types with no MLPerf row or no price get an explicit, documented estimate below
  (field `*_source` says "estimate: ..."), never a silent number.
"""

from __future__ import annotations

import argparse
import pprint
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()
if not DATA.is_dir():  # the checkout may sit elsewhere; fall back to the known location
    DATA = Path("/work/shared/data")
MLPERF_V30 = DATA / "mlperf-inference" / "mlperf_inference_v3.0_closed_datacenter.csv"
MLPERF_V41 = DATA / "mlperf-inference" / "mlperf_inference_v4.1_closed_datacenter.csv"
PRICES = DATA / "gpu-prices" / "gpu_ondemand_prices_partial.csv"
OUT = ROOT / "planner" / "gpu_catalog_data.py"

FAMILIES = {"vision": "resnet50", "nlp": "bert-99"}
REFERENCE = "T4"
BRIDGE = "NVIDIA H100-SXM-80GB"  # in both MLPerf rounds

# catalog name -> (MLPerf accelerator name, round) for measured types
MEASURED = {
    "T4": ("NVIDIA T4", "v3.0"),
    "L4": ("NVIDIA L4", "v3.0"),
    "A100-80GB": ("NVIDIA A100-SXM-80GB", "v3.0"),  # AWS p4de: A100 SXM4 80GB
    "H100": ("NVIDIA H100-SXM-80GB", "v3.0"),  # AWS p5: H100 SXM5
    "H200": ("NVIDIA H200-SXM-141GB", "v4.1"),
    "L40S": ("NVIDIA L40S", "v4.1"),
}

# Types MLPerf v3.0/v4.1 do not cover: speed = factor x a measured type, with the reason.
SPEED_ESTIMATES = {
    "A10G": ("L4", 1.0, "estimate: A10G (AWS g5) not in MLPerf v3.0/v4.1; taken equal to L4 "
             "(same Ampere/Ada inference class: A10G has 2x L4's memory bandwidth, L4 more tensor FLOPs)"),
    "A100-40GB": ("A100-80GB@pcie", 1.0, "estimate: A100-40GB not in MLPerf v3.0/v4.1; taken as the measured "
                  "A100-PCIe-80GB (same GA100 chip, lower memory bandwidth than SXM-80GB)"),
    "V100": ("T4", 1.6, "estimate: V100 not in MLPerf v3.0/v4.1; 1.6x T4 (V100 125 vs T4 65 peak FP16 "
             "tensor TFLOPS, discounted for T4's INT8 path used in MLPerf)"),
    "V100-32GB": ("T4", 1.6, "estimate: same silicon as V100 (16 GB)"),
    "P100": ("T4", 0.5, "estimate: P100 not in MLPerf v3.0/v4.1 and has no tensor cores "
             "(18.7 FP16 TFLOPS vs T4 65 tensor); 0.5x T4"),
}

# catalog name -> (price CSV accelerator, cloud) for priced types; memory from the CSV where given
PRICED = {
    "T4": ("T4", "aws"),
    "A10G": ("A10G", "aws"),
    "L4": ("L4", "aws"),
    "A100-80GB": ("A100-80GB", "aws"),
    "H100": ("H100", "aws"),
    "H200": ("H200", "aws"),
    "V100": ("V100", "lambda"),
    "A100-40GB": ("A100", "lambda"),
}
PRICE_ESTIMATES = {
    "L40S": (1.86, "estimate: not in gpu-prices; AWS g6e.xlarge (1x L40S) on-demand list price, about $1.86/h "
             "in us-east-1 (2024-2025), not verified against the shared data"),
    "V100-32GB": (0.66, "estimate: not in gpu-prices; Lambda V100 16 GB price x 1.2 for the 32 GB part"),
    "P100": (0.40, "estimate: not in gpu-prices; below T4 (0.526, AWS g4dn) as an older, slower part"),
}

# Published memory sizes (GiB as the scenario uses them) and machine shapes.
MEMORY_GIB = {"T4": 16, "A10G": 24, "L4": 24, "L40S": 48, "V100": 16, "V100-32GB": 32, "P100": 16,
              "A100-40GB": 40, "A100-80GB": 80, "H100": 80, "H200": 141}
GPUS_PER_NODE = {"T4": 4, "A10G": 4, "L4": 4, "L40S": 4, "P100": 2, "V100": 8, "V100-32GB": 8,
                 "A100-40GB": 8, "A100-80GB": 8, "H100": 8, "H200": 8}
ORDER = ["T4", "L4", "A10G", "L40S", "P100", "V100", "V100-32GB", "A100-40GB", "A100-80GB", "H100", "H200"]


def offline_medians(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    table = table[(table["scenario"] == "Offline") & (table["valid"] == "VALID")]
    table = table[table["model"].isin(FAMILIES.values())].dropna(subset=["result_per_accelerator"])
    return table.groupby(["model", "accelerator"])["result_per_accelerator"].agg(["median", "count"])


def measured_speeds() -> dict[str, dict[str, dict]]:
    rounds = {"v3.0": offline_medians(MLPERF_V30), "v4.1": offline_medians(MLPERF_V41)}
    out: dict[str, dict[str, dict]] = {}
    for family, bench in FAMILIES.items():
        ref = rounds["v3.0"].loc[(bench, "NVIDIA " + REFERENCE), "median"]
        bridge = rounds["v3.0"].loc[(bench, BRIDGE), "median"] / ref
        entries = dict(MEASURED)
        entries["A100-80GB@pcie"] = ("NVIDIA A100-PCIe-80GB", "v3.0")
        for name, (accel, rnd) in entries.items():
            row = rounds[rnd].loc[(bench, accel)]
            if rnd == "v3.0":
                speed = row["median"] / ref
            else:
                speed = row["median"] / rounds["v4.1"].loc[(bench, BRIDGE), "median"] * bridge
            out.setdefault(name, {})[family] = {
                "speed": round(float(speed), 3),
                "per_accelerator": round(float(row["median"]), 2),
                "results": int(row["count"]),
                "source": f"MLPerf Inference {rnd} closed datacenter, {bench} Offline, {accel}"
                + (f" (chained via {BRIDGE})" if rnd == "v4.1" else ""),
            }
    return out


def prices() -> dict[str, dict]:
    table = pd.read_csv(PRICES)
    out = {}
    for name, (accel, cloud) in PRICED.items():
        rows = table[(table["accelerator"] == accel) & (table["cloud"] == cloud) & (table["region"] != "(paper)")]
        row = rows.iloc[0]
        out[name] = {
            "cost_per_hour_usd": round(float(row["price_per_gpu_usd_per_hour"]), 4),
            "price_source": f"gpu-prices: {cloud} {row['region']} {row['instance_type']} "
            f"({row['source_repo']} {row['source_path']} @{str(row['source_commit'])[:8]})",
        }
    for name, (price, why) in PRICE_ESTIMATES.items():
        out[name] = {"cost_per_hour_usd": price, "price_source": why}
    return out


def build_catalog() -> dict:
    speeds = measured_speeds()
    price = prices()
    types = []
    for name in ORDER:
        if name in MEASURED:
            speed = {f: speeds[name][f]["speed"] for f in FAMILIES}
            speed_source = {f: speeds[name][f]["source"] for f in FAMILIES}
        else:
            base, factor, why = SPEED_ESTIMATES[name]
            speed = {f: round(speeds[base][f]["speed"] * factor, 3) for f in FAMILIES}
            speed_source = {f: why for f in FAMILIES}
        types.append(
            {
                "name": name,
                "memory_gib": MEMORY_GIB[name],
                "gpus_per_node": GPUS_PER_NODE[name],
                **price[name],
                "speed": speed,
                "speed_source": speed_source,
            }
        )
    return {"reference": REFERENCE, "families": dict(FAMILIES), "types": types}


def render(catalog: dict) -> str:
    header = (
        '"""GPU catalog table. GENERATED by scripts/build_gpu_catalog.py from ../shared/data '
        "(MLPerf Inference v3.0/v4.1 Offline result_per_accelerator medians, relative to T4; "
        'gpu-prices per-GPU on-demand USD/h). Do not edit by hand: rerun the script."""\n\n'
    )
    return header + "CATALOG = " + pprint.pformat(catalog, width=110, sort_dicts=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed table differs")
    args = parser.parse_args()
    text = render(build_catalog())
    if args.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{OUT} is stale; rerun without --check")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
