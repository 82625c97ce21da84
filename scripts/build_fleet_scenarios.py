"""Regenerate the committed fleet-scale scenarios in scenarios/ (issue 3's benchmark sizes).

    .venv/bin/python scripts/build_fleet_scenarios.py           # rewrite them
    .venv/bin/python scripts/build_fleet_scenarios.py --check   # exit 1 if any differs

- fleet-50x64.yaml, fleet-200x512.yaml, fleet-1000x4096.yaml: planner.generate with the
  fixed seeds below (50/200/1000 models on 64/512/4096 GPUs of 4/6/8 types).
- alibaba-2023.yaml: the GPU inventory of the Alibaba 2023 node list
  (../shared/data/alibaba-gpu-inventory/v2023_openb_node_list_gpu_node.csv, from
  alibaba/clusterdata cluster-trace-gpu-v2023 @7a6c496e; "Beware of Fragmentation",
  USENIX ATC'23; research use), GPU models mapped to catalog types (MAPPING), with a
  generated model set and demand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.atomic import write_text_atomic  # noqa: E402
from planner.generate import (  # noqa: E402
    InventoryEntry,
    describe_generation,
    generate_for_inventory,
    generate_with_report,
    scenario_to_yaml,
)
from planner.gpu_catalog import catalog_gpu  # noqa: E402

SCENARIOS = ROOT / "scenarios"
DATA = (ROOT / ".." / "shared" / "data").resolve()
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
ALIBABA_2023 = DATA / "alibaba-gpu-inventory" / "v2023_openb_node_list_gpu_node.csv"

# name -> generate_with_report arguments
FLEETS = {
    "fleet-50x64": {"models": 50, "gpus": 64, "gpu_types": 4, "seed": 50},
    "fleet-200x512": {"models": 200, "gpus": 512, "gpu_types": 6, "seed": 200},
    "fleet-1000x4096": {"models": 1000, "gpus": 4096, "gpu_types": 8, "seed": 1000},
}

# Alibaba GPU model -> catalog type. G2 and G3 are "undisclosed internal GPU codes"
# (v2023 README); the mapping of those two is an ASSUMPTION: 8-GPU nodes of a 2023
# Alibaba fleet, taken as A100-80GB (G2, 549 nodes) and H100 (G3, 39 nodes with the
# largest hosts, 128 cores / 768 GiB). The others are named in the trace.
MAPPING = {
    "P100": "P100",
    "T4": "T4",
    "V100M16": "V100",
    "V100M32": "V100-32GB",
    "A10": "A10G",
    "G2": "A100-80GB",
    "G3": "H100",
}
ALIBABA_MODELS = 500
ALIBABA_SEED = 2023


def alibaba_inventory() -> tuple[list[InventoryEntry], list[str]]:
    """Inventory entries (count = GPUs of that model; gpus_per_node = the node shape that
    holds most of its GPUs) and header lines describing the mapping."""
    nodes = pd.read_csv(ALIBABA_2023)
    lines = []
    entries = []
    for model, group in sorted(nodes.groupby("model"), key=lambda kv: -int(kv[1]["gpu"].sum())):
        gpus_by_shape = group.groupby("gpu")["gpu"].sum()
        shape = int(gpus_by_shape.sort_values(kind="stable").index[-1])
        name = MAPPING[model]
        entries.append(InventoryEntry(catalog_gpu(name), int(group["gpu"].sum()), shape))
        shapes = ", ".join(f"{int(n)}x{g}" for g, n in group.groupby("gpu").size().items())
        lines.append(f"  {model:8s} -> {name:10s} {int(group['gpu'].sum()):5d} GPUs, nodes by GPUs/node: {shapes}; gpus_per_node {shape}")
    return entries, lines


def build_all() -> dict[str, str]:
    texts = {}
    for name, args in FLEETS.items():
        scenario, report = generate_with_report(**args)
        scenario["name"] = name
        cli_args = {"models": args["models"], "gpus": args["gpus"], "types": args["gpu_types"], "seed": args["seed"],
                    "objective": "min_cost", "mix": "many-small"}
        header = [f"Fleet-scale benchmark scenario {name} (issue 3), built by scripts/build_fleet_scenarios.py."]
        header += describe_generation(cli_args, report)
        header.append("(The generated name is replaced by the file's name; everything else is the generator's output.)")
        texts[name] = scenario_to_yaml(scenario, header)
    inventory, mapping_lines = alibaba_inventory()
    scenario, report = generate_for_inventory(inventory, ALIBABA_MODELS, ALIBABA_SEED, "alibaba-2023")
    header = [
        "The GPU inventory of Alibaba's 2023 production GPU cluster, with a generated model set and demand.",
        "Built by scripts/build_fleet_scenarios.py. Inventory source: alibaba/clusterdata",
        "  cluster-trace-gpu-v2023/csv/openb_node_list_gpu_node.csv @7a6c496e (../shared/data/alibaba-gpu-inventory;",
        "  Weng et al., 'Beware of Fragmentation', USENIX ATC'23; research use only, cite the paper).",
        "GPU models mapped to catalog types (G2/G3 are undisclosed internal codes: their mapping is an assumption):",
        *mapping_lines,
        "A type's nodes of other shapes are folded into its main shape (the schema has one gpus_per_node per type).",
        f"Models and demand: planner.generate.generate_for_inventory(models={ALIBABA_MODELS}, seed={ALIBABA_SEED}, mix=many-small).",
        *describe_generation({"models": ALIBABA_MODELS, "seed": ALIBABA_SEED}, report)[2:],
    ]
    texts["alibaba-2023"] = scenario_to_yaml(scenario, header)
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description="regenerate scenarios/fleet-*.yaml and scenarios/alibaba-2023.yaml")
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs")
    args = parser.parse_args()
    stale = []
    for name, text in build_all().items():
        path = SCENARIOS / f"{name}.yaml"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            write_text_atomic(path, text)
            print(f"wrote {path} ({len(text) // 1024} KiB)")
    if stale:
        print("stale: " + ", ".join(stale) + "; rerun without --check")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
