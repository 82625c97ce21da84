"""Seeded scenario generator for benchmark instances (issue 3).

`generate_scenario(models, gpus, gpu_types, seed)` returns a `scenario/v1` dict; the same
arguments give the same dict (numpy default_rng), and `scenario_to_yaml` the same bytes.

How an instance is built, in order:
1. inventory: `gpu_types` types from the catalog (planner.gpu_catalog: MLPerf speeds,
   cloud prices), A100-80GB and H100 always among them (large memory, 8 per node, for
   tensor-parallel models); `gpus` split unevenly (Dirichlet weights) in whole nodes,
   like the skewed mix of the Alibaba 2023 node list.
2. models: size classes by `mix` (small 0.3-8 GiB vision/nlp models; medium 13-40 GiB
   LLM-like; large ~140 GiB 70B-like needing tensor parallelism). Linear profiles
   `base_ms + per_item_ms * b` defined on a reference type and scaled by the catalog
   speed of each type for the model's family (per-item time / speed, base time /
   sqrt(speed): fixed overheads shrink less than throughput grows). Each model gets a
   profile on a random 80-100% of the types it fits.
3. demand: a skewed (lognormal) share of "work" per model, in GPU-equivalents of its
   best type, scaled so the fluid load needs a random 30-60% of the fleet, then lowered
   until a simple dedicated placement (whole GPUs per model, cheapest type with room,
   no sharing) fits in 80% of the inventory (90% where one replica per model already
   needs more); so every instance is feasible for min_cost.
4. budget (max_throughput): 50-70% of the fluid cost, a lower bound on any plan's cost
   for the full demand, so the budget binds for every solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

from planner.capacity import build_candidates
from planner.gpu_catalog import CATALOG_GPUS, REFERENCE_TYPE, CatalogGpu
from planner.scenario import SCENARIO_FORMAT, Scenario

MIXES = ("many-small", "mixed")
OBJECTIVES = ("min_cost", "max_throughput")
ALWAYS_TYPES = ("A100-80GB", "H100")
OPTIONAL_TYPES = ("L4", "T4", "A10G", "A100-40GB", "L40S", "H200", "V100", "V100-32GB", "P100")
# The dedicated estimate may use at most this share of the fleet: the first margin when the
# fleet allows it, the second when one replica per model already takes more (50 models on
# 64 GPUs). Slack keeps the instance easy to prove feasible for the type-level solver.
DEDICATED_MARGINS = (0.8, 0.9)
MAX_UTILIZATION = 0.8  # the scenario default; the demand calibration assumes it


@dataclass(frozen=True)
class InventoryEntry:
    """One GPU type of a generated fleet: a catalog entry, a count and a machine shape."""

    gpu: CatalogGpu
    count: int
    gpus_per_node: int


@dataclass(frozen=True)
class GenerationReport:
    """How an instance came out (for the YAML header and tests), not part of the scenario."""

    fluid_gpus: float  # GPU-equivalents the demand needs at each model's best type
    dedicated_gpus: int  # GPUs of the simple dedicated placement
    dedicated_cost_per_hour_usd: float
    fluid_cost_per_hour_usd: float  # lower bound on the cost of serving all demand
    target_load: float  # the fluid share of the fleet aimed at
    demand_scale_cut: float  # 1.0, or how much the demand was lowered to fit dedicated
    dedicated_margin: float  # the share of the fleet the dedicated estimate had to fit in


# --------------------------------------------------------------------------- numbers


def _sig(x: float, digits: int = 4) -> float:
    """Round to `digits` significant digits (keeps files small and stable)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(round(x, digits - 1 - int(math.floor(math.log10(abs(x))))))


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


# --------------------------------------------------------------------------- inventory


def choose_types(rng: np.random.Generator, gpu_types: int) -> list[CatalogGpu]:
    """A100-80GB and H100 always (one type: A100-80GB), the rest drawn from OPTIONAL_TYPES."""
    limit = len(ALWAYS_TYPES) + len(OPTIONAL_TYPES)
    if not 1 <= gpu_types <= limit:
        raise ValueError(f"gpu_types must be 1..{limit}, got {gpu_types}")
    names = list(ALWAYS_TYPES[: min(gpu_types, len(ALWAYS_TYPES))])
    extra = gpu_types - len(names)
    if extra > 0:
        names += [str(n) for n in rng.choice(OPTIONAL_TYPES, size=extra, replace=False)]
    order = list(CATALOG_GPUS)
    return [CATALOG_GPUS[n] for n in sorted(names, key=order.index)]


def split_counts(rng: np.random.Generator, types: list[CatalogGpu], gpus: int, alpha: float = 0.8) -> list[int]:
    """Split `gpus` over `types` unevenly, in whole nodes where possible; every type >= 1.

    Dirichlet(alpha) weights give the skewed mix real fleets show (the Alibaba 2023 node
    list is 71% one type). A remainder smaller than any node goes to the type furthest
    below its share, as a partly filled node.
    """
    if gpus < len(types):
        raise ValueError(f"gpus ({gpus}) must be at least the number of GPU types ({len(types)})")
    weights = rng.dirichlet([alpha] * len(types))
    target = weights * gpus
    node = np.array([t.gpus_per_node for t in types])
    counts = np.maximum(node * np.floor(target / node), node).astype(int)
    while counts.sum() > gpus:  # minimum one node each overshot: take nodes from the largest
        i = int(np.argmax(counts))
        counts[i] -= min(node[i], counts.sum() - gpus, counts[i] - 1)
    while True:
        left = gpus - counts.sum()
        fits = [i for i in range(len(types)) if node[i] <= left]
        if not fits:
            break
        i = max(fits, key=lambda k: (target[k] - counts[k], -k))
        counts[i] += node[i]
    left = gpus - counts.sum()
    if left:
        i = int(np.argmax(target - counts))
        counts[i] += left
    assert counts.sum() == gpus and (counts >= 1).all()
    return [int(c) for c in counts]


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class _ModelDraw:
    name: str
    family: str
    memory_gib: float
    slo_ms: float
    max_batch: int
    base_ms_ref: float  # on the reference type (T4), at tensor parallel 1
    per_item_ms_ref: float
    tensor_parallel: tuple[int, ...]
    work_share: float


def _class_counts(rng: np.random.Generator, models: int, gpus: int, mix: str) -> tuple[int, int, int]:
    """(small, medium, large-TP) model counts for a mix."""
    if mix == "many-small":
        large = 0 if gpus < 32 else min(1 + models // 200, max(models // 10, 1))
        medium = int(round(0.08 * models))
    elif mix == "mixed":
        large = 0 if gpus < 32 else min(int(round(0.12 * models)), gpus // 16)
        medium = int(round(0.35 * models))
    else:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    large = min(large, models)
    medium = min(medium, models - large)
    return models - medium - large, medium, large


def _draw_small(rng: np.random.Generator, i: int) -> _ModelDraw:
    # Reference points (T4, MLPerf v3.0 Offline): resnet50 ~6.1k img/s (0.16 ms/img),
    # bert-99 ~430 seq/s (2.3 ms/seq); per-item time grows with the model's size.
    family = "vision" if rng.random() < 0.4 else "nlp"
    memory = _loguniform(rng, 0.3, 8.0)
    noise = float(rng.lognormal(0.0, 0.25))
    if family == "vision":
        per_item = 0.15 * memory**0.8 * noise
        base = rng.uniform(1.5, 5.0)
        slo = rng.choice([50, 75, 100, 150, 200])
        kind = "cnn"
    else:
        per_item = 1.6 * memory**0.8 * noise
        base = rng.uniform(3.0, 10.0)
        slo = rng.choice([100, 150, 200, 300, 500, 1000])
        kind = "bert" if memory < 2 else "slm"
    return _ModelDraw(
        f"{kind}-{i:04d}", family, _sig(memory, 3), float(slo), int(rng.choice([32, 64, 128])),
        float(base), float(per_item), (1,), float(rng.lognormal(0.0, 1.4)),
    )


def _draw_medium(rng: np.random.Generator, i: int) -> _ModelDraw:
    # LLM-like (7B-20B in 16 bit): a short generation per request, ~0.5-1.2 s alone on
    # an A100-80GB, each extra request in the batch adds 2-5%. Stated on A100-80GB and
    # converted to the reference type with the same scaling the profiles use.
    memory = _loguniform(rng, 13.0, 40.0)
    a100 = CATALOG_GPUS["A100-80GB"].speed["nlp"]
    base_a100 = 60.0 * memory**0.8 * float(rng.lognormal(0.0, 0.2))
    per_item_a100 = base_a100 * rng.uniform(0.02, 0.05)
    return _ModelDraw(
        f"llm-{i:04d}", "nlp", _sig(memory, 3), float(rng.choice([2000, 2500, 3000, 4000, 5000])),
        int(rng.choice([16, 32, 64])), base_a100 * math.sqrt(a100), per_item_a100 * a100, (1, 2),
        float(rng.lognormal(0.0, 1.0)),
    )


def _draw_large(rng: np.random.Generator, i: int) -> _ModelDraw:
    # 70B-like in 16 bit (~140 GiB): tensor parallel 2/4/8 on 80 GB parts; at degree 1 it
    # would take ~3 s per batch on an A100-80GB (hypothetical: it does not fit there).
    memory = rng.uniform(130.0, 140.0)
    a100 = CATALOG_GPUS["A100-80GB"].speed["nlp"]
    base_a100 = 3000.0 * float(rng.lognormal(0.0, 0.1))
    per_item_a100 = base_a100 * rng.uniform(0.02, 0.04)
    return _ModelDraw(
        f"llm70b-{i:04d}", "nlp", _sig(memory, 3), float(rng.choice([4000, 5000])), 32,
        base_a100 * math.sqrt(a100), per_item_a100 * a100, (1, 2, 4, 8), float(rng.lognormal(0.5, 0.5)),
    )


def tp_time_factor(degree: int) -> tuple[float, float]:
    """(base, per-item) time multipliers of a tensor-parallel replica of `degree` GPUs:
    sub-linear speed-up (communication per layer), base d^-0.75, per item d^-0.85."""
    return degree**-0.75, degree**-0.85


def _profile(draw: _ModelDraw, gpu: CatalogGpu, gpus_per_node: int) -> dict | None:
    """The model's profile on one type, or None if it fits at no allowed degree."""
    speed = gpu.speed[draw.family]
    base = draw.base_ms_ref / math.sqrt(speed)
    per_item = draw.per_item_ms_ref / speed
    fitting = [d for d in draw.tensor_parallel if d <= gpus_per_node and draw.memory_gib / d <= gpu.memory_gib]
    if not fitting:
        return None
    if draw.tensor_parallel == (1,):
        return {"base_ms": _sig(base, 3), "per_item_ms": _sig(per_item, 3), "max_batch": draw.max_batch}
    tp = {}
    for d in fitting:
        fb, fi = tp_time_factor(d)
        tp[d] = {"base_ms": _sig(base * fb, 3), "per_item_ms": _sig(per_item * fi, 3), "max_batch": draw.max_batch}
    return {"tp": tp}


def _fastest_single_ms(profile: dict) -> float:
    timed = profile["tp"].values() if "tp" in profile else [profile]
    return min(p["base_ms"] + p["per_item_ms"] for p in timed)


def _model_entry(rng: np.random.Generator, draw: _ModelDraw, inventory: list[InventoryEntry], coverage: float) -> dict:
    profiles: dict[str, dict] = {}
    fits = [(e, p) for e in inventory if (p := _profile(draw, e.gpu, e.gpus_per_node)) is not None]
    if not fits:
        raise ValueError(f"model {draw.name} ({draw.memory_gib} GiB) fits on no GPU type of the fleet")
    keep = [rng.random() < coverage for _ in fits]
    if not any(keep):
        keep[int(np.argmax([e.gpu.speed[draw.family] for e, _ in fits]))] = True
    for (entry, profile), kept in zip(fits, keep):
        if kept:
            profiles[entry.gpu.name] = profile
    # the SLO must allow batch 1 somewhere (Nexus rule 2 l(1)), with room to batch
    fastest = min(_fastest_single_ms(p) for p in profiles.values())
    slo = max(draw.slo_ms, _sig(3.0 * fastest, 2))
    entry: dict[str, Any] = {"name": draw.name, "memory_gib": draw.memory_gib, "slo_ms": slo}
    if draw.tensor_parallel != (1,):
        degrees = sorted({d for p in profiles.values() for d in (p.get("tp") or {1: None})})
        entry["tensor_parallel"] = degrees
    entry["profiles"] = profiles
    return entry


# --------------------------------------------------------------------------- demand


class DedicatedEstimate:
    """A simple dedicated placement, as a sufficient check that min_cost is feasible.

    Each model alone on whole GPUs (replicas x tensor_parallel) of the types with room
    left; per model the options with the fewest GPUs ("gpus") or the cheapest ("cost")
    first. The type-level solver can do at
    least as well, so an instance where it fits is feasible. Not a plan.
    """

    def __init__(self, candidates: pd.DataFrame, counts: dict[str, int], costs: dict[str, float]):
        self.counts = dict(counts)
        self.costs = dict(costs)
        self.options: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]] = {}
        for model, rows in candidates.groupby("model", sort=True):
            types = [str(t) for t in rows["gpu_type"]]
            tp = rows["tensor_parallel"].to_numpy(dtype=float)
            planned = rows["planned_rps"].to_numpy(dtype=float)
            gpu_cost = np.array([costs[t] for t in types])
            self.options[model] = (planned, tp, gpu_cost, types)

    def place(self, rates: dict[str, float], prefer: str = "gpus") -> tuple[dict[str, int], float] | None:
        """(GPUs used per type, cost per hour) or None if it does not fit.

        Models with the fewest usable types go first, then those needing most GPUs; a
        model's replicas fill its preferred type and spill over to the next one.
        """
        need = []
        for model, rate in rates.items():
            if rate <= 0:
                continue
            if model not in self.options:
                return None
            planned, tp, gpu_cost, types = self.options[model]
            gpus = np.ceil(rate / planned - 1e-9) * tp
            cost = gpus * gpu_cost
            keys = (cost, gpus) if prefer == "gpus" else (gpus, cost)  # lexsort: last key first
            order = [int(k) for k in np.lexsort(keys)]
            need.append((len(set(types)), -float(gpus.min()), model, rate, order))
        left = dict(self.counts)
        used = {t: 0 for t in self.counts}
        total_cost = 0.0
        for _, _, model, rate, order in sorted(need):
            planned, tp, gpu_cost, types = self.options[model]
            remaining = rate
            for k in order:
                if remaining <= 1e-9:
                    break
                groups = min(int(left[types[k]] // tp[k]), math.ceil(remaining / planned[k] - 1e-9))
                if groups <= 0:
                    continue
                n = int(groups * tp[k])
                left[types[k]] -= n
                used[types[k]] += n
                total_cost += float(n * gpu_cost[k])
                remaining -= groups * planned[k]
            if remaining > 1e-9:
                return None
        return used, total_cost


def dedicated_fit(scenario: Scenario) -> tuple[dict[str, int], float] | None:
    """The dedicated estimate for a loaded scenario under the current capacity model:
    (GPUs per type, USD/h) of a feasible whole-GPU placement of all demand, or None when
    the simple placement does not fit (which does not prove infeasibility)."""
    counts = {g.name: (g.count if g.count is not None else 10**9) for g in scenario.gpu_types}
    costs = {g.name: g.cost_per_hour_usd for g in scenario.gpu_types}
    return DedicatedEstimate(build_candidates(scenario), counts, costs).place(scenario.demand_rps(), prefer="gpus")


def _best_per_gpu(candidates: pd.DataFrame) -> pd.DataFrame:
    """Per model: the most req/s one GPU gives (any type) and the least USD per req/s."""
    table = candidates.assign(
        rps_per_gpu=candidates["planned_rps"] / candidates["tensor_parallel"],
        usd_per_rps=candidates["cost_per_hour_usd"] / candidates["planned_rps"],
    )
    return table.groupby("model").agg(rps_per_gpu=("rps_per_gpu", "max"), usd_per_rps=("usd_per_rps", "min"))


# --------------------------------------------------------------------------- assembly


def _gpu_type_entries(inventory: list[InventoryEntry], interference: dict[str, float]) -> list[dict]:
    out = []
    for e in inventory:
        entry = {
            "name": e.gpu.name,
            "memory_gib": e.gpu.memory_gib,
            "cost_per_hour_usd": e.gpu.cost_per_hour_usd,
            "count": e.count,
            "gpus_per_node": e.gpus_per_node,
        }
        if e.gpu.name in interference:
            entry["interference_factor"] = interference[e.gpu.name]
        out.append(entry)
    return out


def generate_for_inventory(inventory: list[InventoryEntry], models: int, seed: int, name: str,
                           objective: str = "min_cost", mix: str = "many-small",
                           budget_usd_per_hour: float | None = None,
                           interference: bool = False) -> tuple[dict, GenerationReport]:
    """A generated model set and demand for a given inventory (see the module docstring)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if models < 1:
        raise ValueError(f"models must be >= 1, got {models}")
    gpus = sum(e.count for e in inventory)
    rng = np.random.default_rng([seed, 3])  # stream 3: models and demand
    n_small, n_medium, n_large = _class_counts(rng, models, gpus, mix)
    kinds = ["small"] * n_small + ["medium"] * n_medium + ["large"] * n_large
    kinds = [kinds[k] for k in rng.permutation(len(kinds))]
    draw_fn = {"small": _draw_small, "medium": _draw_medium, "large": _draw_large}
    draws = [draw_fn[kind](rng, i) for i, kind in enumerate(kinds)]
    coverage = float(rng.uniform(0.8, 1.0))
    model_entries = [_model_entry(rng, d, inventory, coverage) for d in draws]
    interference_by_type = (
        {e.gpu.name: _sig(float(rng.uniform(1.05, 1.3)), 3) for e in inventory} if interference else {}
    )
    gpu_entries = _gpu_type_entries(inventory, interference_by_type)
    names = [d.name for d in draws]
    cvs = [float(cv) for cv in rng.choice([1.0, 1.0, 1.0, 1.5, 2.0], size=len(names))]

    # capacity per model and type from the project's own capacity model (planner.capacity),
    # with each model's arrival cv (burstier arrivals may lower the planned capacity)
    probe = Scenario.model_validate(
        {"format": SCENARIO_FORMAT, "name": name, "gpu_types": gpu_entries, "models": model_entries,
         "demand": [{"model": n, "rate_rps": 1.0, "cv": cv} for n, cv in zip(names, cvs)]}
    )
    candidates = build_candidates(probe)
    best = _best_per_gpu(candidates)
    missing = [n for n in names if n not in best.index]
    if missing:
        raise ValueError(f"generated models with no feasible option: {missing[:5]}")
    share = np.array([d.work_share for d in draws])
    cap = best.loc[names, "rps_per_gpu"].to_numpy()
    target_load = float(rng.uniform(0.3, 0.6))
    scale = target_load * gpus / share.sum()
    counts = {e.gpu.name: e.count for e in inventory}
    costs = {e.gpu.name: e.gpu.cost_per_hour_usd for e in inventory}

    def rates_at(s: float) -> dict[str, float]:
        return {n: max(_sig(float(s * w * c), 4), 0.01) for n, w, c in zip(names, share, cap)}

    dedicated = DedicatedEstimate(candidates, counts, costs)

    def fits(s: float, margin: float):
        est = dedicated.place(rates_at(s), prefer="gpus")
        if est is None or sum(est[0].values()) > margin * gpus:
            return None
        return est

    def largest_fitting_cut(margin: float) -> float | None:
        if fits(scale, margin) is not None:
            return 1.0
        low, high = 0.0, 1.0  # lower the demand until the dedicated placement fits (bisection)
        for _ in range(40):
            mid = (low + high) / 2
            if fits(scale * mid, margin) is not None:
                low = mid
            else:
                high = mid
        return low if low > 0.0 and fits(scale * low, margin) is not None else None

    for margin in DEDICATED_MARGINS:
        cut = largest_fitting_cut(margin)
        if cut is not None:
            break
    else:
        raise ValueError(
            f"{models} models do not fit on {gpus} GPUs even at the least demand "
            "(every model needs at least one whole GPU in the dedicated estimate); use more GPUs"
        )
    estimate = fits(scale * cut, margin)
    rates = rates_at(scale * cut)
    used, _ = estimate
    cheapest = dedicated.place(rates, prefer="cost")  # a cost estimate; may not fit
    dedicated_cost = cheapest[1] if cheapest is not None else estimate[1]
    fluid_gpus = float(sum(rates[n] / c for n, c in zip(names, cap)))
    fluid_cost = float(sum(rates[n] * best.loc[n, "usd_per_rps"] for n in names))

    scenario: dict[str, Any] = {"format": SCENARIO_FORMAT, "name": name, "objective": objective}
    if objective == "max_throughput" and budget_usd_per_hour is None:
        budget_usd_per_hour = _sig(float(rng.uniform(0.5, 0.7)) * fluid_cost, 4)
    if budget_usd_per_hour is not None:
        scenario["budget_usd_per_hour"] = float(budget_usd_per_hour)
    scenario["gpu_types"] = gpu_entries
    scenario["models"] = model_entries
    scenario["demand"] = [
        {"model": n, "rate_rps": rates[n], **({"cv": float(cv)} if cv != 1.0 else {})} for n, cv in zip(names, cvs)
    ]
    report = GenerationReport(
        fluid_gpus=round(fluid_gpus, 2),
        dedicated_gpus=int(sum(used.values())),
        dedicated_cost_per_hour_usd=round(dedicated_cost, 2),
        fluid_cost_per_hour_usd=round(fluid_cost, 2),
        target_load=round(target_load, 3),
        demand_scale_cut=round(cut, 4),
        dedicated_margin=margin,
    )
    return scenario, report


def generate_with_report(models: int, gpus: int, gpu_types: int, seed: int, objective: str = "min_cost",
                         mix: str = "many-small", budget_usd_per_hour: float | None = None,
                         interference: bool = False) -> tuple[dict, GenerationReport]:
    """`generate_scenario` plus how the instance came out (for headers and tests)."""
    rng = np.random.default_rng([seed, 1])  # stream 1: inventory
    types = choose_types(rng, gpu_types)
    counts = split_counts(rng, types, gpus)
    inventory = [InventoryEntry(t, c, t.gpus_per_node) for t, c in zip(types, counts)]
    name = f"gen-{mix}-{models}x{gpus}-t{gpu_types}-s{seed}" + ("-tput" if objective == "max_throughput" else "")
    return generate_for_inventory(inventory, models, seed, name, objective, mix, budget_usd_per_hour, interference)


def generate_scenario(models: int, gpus: int, gpu_types: int, seed: int, objective: str = "min_cost",
                      mix: str = "many-small", budget_usd_per_hour: float | None = None,
                      interference: bool = False) -> dict:
    """A seeded benchmark scenario (`scenario/v1` dict) with `models` models on `gpus` GPUs
    of `gpu_types` types; feasible for min_cost. See the module docstring."""
    return generate_with_report(models, gpus, gpu_types, seed, objective, mix, budget_usd_per_hour, interference)[0]


# --------------------------------------------------------------------------- YAML


class _Flow(dict):
    """A mapping written in YAML flow style ({a: 1, b: 2})."""


class _Dumper(yaml.SafeDumper):
    pass


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow):
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


_Dumper.add_representer(_Flow, _represent_flow)


def _flowify(value: Any) -> Any:
    if isinstance(value, dict):
        return _Flow({k: _flowify(v) for k, v in value.items()})
    return value


def scenario_to_yaml(scenario: dict, header: list[str] | tuple[str, ...] = ()) -> str:
    """YAML text of a scenario: block style, profiles and demand rows in flow style, an
    optional comment header. Deterministic for the same dict."""
    body = dict(scenario)
    body["models"] = [
        {**{k: v for k, v in m.items() if k != "profiles"}, "profiles": _flowify(m["profiles"])} for m in scenario["models"]
    ]
    body["demand"] = [_Flow(d) for d in scenario.get("demand", [])]
    text = yaml.dump(body, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=False)
    lines = [f"# {line}".rstrip() for line in header]
    return "\n".join(lines) + ("\n" if lines else "") + text


def describe_generation(args: dict, report: GenerationReport) -> list[str]:
    """Header comment lines: how the file was generated and what the data sources are."""
    flags = [f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in args.items() if v is not None and v is not False]
    return [
        f"Generated by: planner generate {' '.join(flags)}",
        "  (planner/generate.py; the same arguments give the same bytes).",
        "GPU types: planner/gpu_catalog_data.py (scripts/build_gpu_catalog.py): speed ratios from MLPerf",
        "  Inference v3.0/v4.1 closed datacenter Offline result_per_accelerator (resnet50 = vision,",
        "  bert-99 = nlp, relative to T4); prices per GPU-hour from ../shared/data/gpu-prices",
        "  (SkyPilot catalog v7, AWS us-east-1 / Lambda); entries marked estimate in the catalog are not measured.",
        f"Models and demand are synthetic. Reference type for batch times: {REFERENCE_TYPE}.",
        f"Demand: fluid load {report.fluid_gpus} GPU-equivalents (target {report.target_load:.0%} of the fleet,",
        f"  demand cut x{report.demand_scale_cut}); dedicated estimate {report.dedicated_gpus} GPUs"
        f" (<= {report.dedicated_margin:.0%} of the fleet),"
        f" ${report.dedicated_cost_per_hour_usd}/h; fluid cost bound ${report.fluid_cost_per_hour_usd}/h.",
    ]
