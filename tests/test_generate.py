"""The seeded scenario generator (planner.generate), its CLI command and the committed
fleet-scale scenarios (scripts/build_fleet_scenarios.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from planner.checks import check_scenario
from planner.cli import app
from planner.generate import dedicated_fit, generate_scenario, generate_with_report, scenario_to_yaml, split_counts
from planner.gpu_catalog import CATALOG_GPUS
from planner.pipeline import plan_scenario
from planner.problem import SolveSettings
from planner.scenario import Scenario, load_scenario, parse_scenario_text

ROOT = Path(__file__).resolve().parents[1]
FLEET_FILES = ("fleet-50x64", "fleet-200x512", "fleet-1000x4096", "alibaba-2023")


def _input_findings(scenario: Scenario) -> list:
    return [f for f in check_scenario(scenario) if f.kind != "warning"]


# --------------------------------------------------------------------------- catalog


def test_catalog_has_measured_speeds_and_prices():
    t4, l4, h100 = CATALOG_GPUS["T4"], CATALOG_GPUS["L4"], CATALOG_GPUS["H100"]
    assert t4.speed == {"vision": 1.0, "nlp": 1.0}
    # MLPerf v3.0 resnet50 Offline per GPU: L4 ~13.2k, T4 ~6.1k, H100-SXM ~90.9k
    assert 2.0 < l4.speed["vision"] < 2.3
    assert 14 < h100.speed["vision"] < 16
    assert t4.cost_per_hour_usd == pytest.approx(0.526)  # AWS g4dn.xlarge
    assert not t4.price_is_estimate and not h100.speed_is_estimate
    assert CATALOG_GPUS["L40S"].price_is_estimate and CATALOG_GPUS["V100"].speed_is_estimate


def test_catalog_table_is_current():
    spec = importlib.util.spec_from_file_location("build_gpu_catalog", ROOT / "scripts" / "build_gpu_catalog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.MLPERF_V30.is_file():
        pytest.skip("../shared/data not present")
    assert module.render(module.build_catalog()) == (ROOT / "planner" / "gpu_catalog_data.py").read_text()


# --------------------------------------------------------------------------- generator


def test_same_seed_same_bytes_and_other_seed_differs():
    a = scenario_to_yaml(generate_scenario(20, 32, 4, seed=7))
    b = scenario_to_yaml(generate_scenario(20, 32, 4, seed=7))
    c = scenario_to_yaml(generate_scenario(20, 32, 4, seed=8))
    assert a == b
    assert a != c


@pytest.mark.parametrize("mix", ["many-small", "mixed"])
@pytest.mark.parametrize("objective", ["min_cost", "max_throughput"])
def test_generated_scenario_is_valid(mix, objective):
    raw = generate_scenario(30, 64, 5, seed=3, objective=objective, mix=mix, interference=True)
    scenario = Scenario.model_validate(raw)
    assert _input_findings(scenario) == []
    assert len(scenario.models) == 30 and len(scenario.gpu_types) == 5
    assert sum(g.count for g in scenario.gpu_types) == 64
    assert all(g.interference_factor > 1.0 for g in scenario.gpu_types)
    assert {d.model for d in scenario.demand} == {m.name for m in scenario.models}
    if objective == "max_throughput":
        assert scenario.budget_usd_per_hour is not None
    # YAML round trip gives the same scenario
    assert parse_scenario_text(scenario_to_yaml(raw)) == scenario


def test_generated_models_cover_sizes_and_tensor_parallel():
    scenario = Scenario.model_validate(generate_scenario(200, 512, 6, seed=1))
    memory = sorted(m.memory_gib for m in scenario.models)
    small = [x for x in memory if x <= 8]
    assert len(small) >= 0.8 * len(memory)
    assert any(13 <= x <= 40 for x in memory)
    assert any(max(m.tensor_parallel) >= 2 and m.memory_gib > 80 for m in scenario.models)
    types = {g.name for g in scenario.gpu_types}
    partial = [m for m in scenario.models if set(m.profiles) != types and m.memory_gib <= 16]
    assert partial, "some models should lack a profile on some types"


def test_split_counts_exact_total_and_whole_nodes():
    import numpy as np

    types = [CATALOG_GPUS[n] for n in ("T4", "L4", "A100-80GB", "H100")]
    for seed in range(20):
        counts = split_counts(np.random.default_rng(seed), types, 512)
        assert sum(counts) == 512 and min(counts) >= 1
        ragged = [c for c, t in zip(counts, types) if c % t.gpus_per_node]
        assert len(ragged) <= 1


def test_budget_binds_below_the_fluid_cost():
    raw, report = generate_with_report(40, 64, 4, seed=2, objective="max_throughput")
    assert 0.5 * report.fluid_cost_per_hour_usd * 0.99 <= raw["budget_usd_per_hour"] <= 0.7 * report.fluid_cost_per_hour_usd * 1.01


def test_too_many_models_for_the_fleet_is_a_clear_error():
    with pytest.raises(ValueError, match="use more GPUs"):
        generate_scenario(100, 16, 2, seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mix", ["many-small", "mixed"])
def test_small_instances_are_feasible_with_cpsat_type(seed, mix):
    raw, report = generate_with_report(12, 48, 3, seed=seed, mix=mix)
    scenario = Scenario.model_validate(raw)
    outcome = plan_scenario(scenario, "cpsat-type", SolveSettings(time_limit_s=20.0, seed=0))
    assert outcome.plan.status in ("optimal", "feasible", "time_limit")
    assert outcome.plan.cost_per_hour_usd > 0
    # the dedicated estimate is a feasible dedicated placement: the optimum is no dearer
    if outcome.plan.status == "optimal":
        assert outcome.plan.cost_per_hour_usd <= report.dedicated_cost_per_hour_usd + 0.01


def test_max_throughput_budget_binds_with_cpsat_type():
    scenario = Scenario.model_validate(generate_scenario(12, 48, 3, seed=4, objective="max_throughput"))
    outcome = plan_scenario(scenario, "cpsat-type", SolveSettings(time_limit_s=20.0, seed=0))
    plan = outcome.plan
    assert plan.cost_per_hour_usd <= scenario.budget_usd_per_hour + 1e-6
    served = sum(m.served_rps for m in plan.models.values())
    demand = sum(scenario.demand_rps().values())
    assert served < demand * 0.999


# --------------------------------------------------------------------------- CLI


def test_cli_generate_writes_the_same_file_twice(tmp_path):
    runner = CliRunner()
    args = ["generate", "--models", "10", "--gpus", "24", "--types", "3", "--seed", "5"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a.yaml")])
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b.yaml")])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    text = (tmp_path / "a.yaml").read_text()
    assert text == (tmp_path / "b.yaml").read_text()
    assert text.startswith("# Generated by: planner generate --models 10 --gpus 24 --types 3 --seed 5")
    assert _input_findings(load_scenario(tmp_path / "a.yaml")) == []


def test_cli_generate_bad_sizes_exit_2_and_write_nothing(tmp_path):
    out = tmp_path / "x.yaml"
    result = CliRunner().invoke(app, ["generate", "--models", "100", "--gpus", "8", "--types", "2", "--out", str(out)])
    assert result.exit_code == 2
    assert not out.exists()
    result = CliRunner().invoke(app, ["generate", "--models", "5", "--gpus", "8", "--types", "40", "--out", str(out)])
    assert result.exit_code == 2
    assert not out.exists()


def test_cli_generate_max_throughput_mixed(tmp_path):
    out = tmp_path / "t.yaml"
    result = CliRunner().invoke(
        app, ["generate", "--models", "10", "--gpus", "32", "--types", "4", "--seed", "1",
              "--objective", "max_throughput", "--mix", "mixed", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    raw = yaml.safe_load(out.read_text())
    assert raw["objective"] == "max_throughput" and raw["budget_usd_per_hour"] > 0


# --------------------------------------------------------------------------- committed scenarios


@pytest.mark.parametrize("name", FLEET_FILES)
def test_committed_fleet_scenarios_load_and_validate(name):
    path = ROOT / "scenarios" / f"{name}.yaml"
    scenario = load_scenario(path)
    assert _input_findings(scenario) == []
    assert path.stat().st_size < 700_000
    text = path.read_text()
    assert text.startswith("#") and "gpu-prices" in text.split("format:")[0]


def test_committed_fleet_sizes():
    sizes = {}
    for name in FLEET_FILES[:3]:
        scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
        sizes[name] = (len(scenario.models), sum(g.count for g in scenario.gpu_types), len(scenario.gpu_types))
    assert sizes == {"fleet-50x64": (50, 64, 4), "fleet-200x512": (200, 512, 6), "fleet-1000x4096": (1000, 4096, 8)}
    alibaba = load_scenario(ROOT / "scenarios" / "alibaba-2023.yaml")
    assert sum(g.count for g in alibaba.gpu_types) == 6212  # GPUs in the 2023 node list


def _without_demand(text: str) -> dict:
    raw = yaml.safe_load(text)
    raw.pop("demand", None)
    raw.pop("budget_usd_per_hour", None)
    return raw


def test_committed_scenarios_equal_what_the_script_regenerates():
    """Inventory and models must match the script exactly. Demand rates are calibrated
    with planner.capacity, so a change of the capacity model changes them: then they
    must still fit the dedicated estimate, and the script should be rerun."""
    spec = importlib.util.spec_from_file_location("build_fleet_scenarios", ROOT / "scripts" / "build_fleet_scenarios.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.ALIBABA_2023.is_file():
        pytest.skip("../shared/data not present")
    for name, text in module.build_all().items():
        committed = (ROOT / "scenarios" / f"{name}.yaml").read_text()
        if committed == text:
            continue
        assert _without_demand(committed) == _without_demand(text), f"{name}: rerun scripts/build_fleet_scenarios.py"
        assert dedicated_fit(load_scenario(ROOT / "scenarios" / f"{name}.yaml")) is not None, (
            f"{name}: its demand no longer fits the dedicated estimate; rerun scripts/build_fleet_scenarios.py"
        )


@pytest.mark.parametrize("name", FLEET_FILES)
def test_committed_scenarios_fit_the_dedicated_estimate(name):
    assert dedicated_fit(load_scenario(ROOT / "scenarios" / f"{name}.yaml")) is not None


def test_fleet_50x64_is_feasible_with_cpsat_type():
    scenario = load_scenario(ROOT / "scenarios" / "fleet-50x64.yaml")
    outcome = plan_scenario(scenario, "cpsat-type", SolveSettings(time_limit_s=30.0, seed=0))
    assert outcome.plan.status in ("optimal", "feasible", "time_limit")
    assert math.isfinite(outcome.plan.cost_per_hour_usd) and outcome.plan.cost_per_hour_usd > 0
