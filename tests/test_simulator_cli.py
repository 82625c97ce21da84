"""`planner simulate`, and the calibration check: every bundled scenario's plan simulates
at >= 99% SLO attainment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app
from planner.pipeline import plan_scenario
from planner.plan import write_plan
from planner.problem import SolveSettings
from planner.scenario import load_scenario
from planner.simulator import SimulationSettings, simulate_plan

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))
REQUESTS_PER_SCENARIO = 400_000  # short runs: the whole check stays well under 20 s

runner = CliRunner()


@pytest.fixture(scope="module")
def quickstart_plan(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "plan.json"
    write_plan(plan_scenario(load_scenario(ROOT / "scenarios" / "quickstart.yaml")).plan, path)
    return path


def test_simulate_json_has_the_contract_fields_and_is_deterministic(quickstart_plan):
    args = ["simulate", str(ROOT / "scenarios" / "quickstart.yaml"), str(quickstart_plan), "--duration", "5",
            "--seed", "3", "--format", "json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["duration_s"] == 5.0 and data["seed"] == 3 and data["requests"] > 0
    assert set(data["models"]) == {"bert-base", "resnet50", "llama-13b"}
    for model in data["models"].values():
        for key in ("offered_rps", "completed_rps", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "slo_attainment"):
            assert isinstance(model[key], float)
    assert runner.invoke(app, args).stdout == first.stdout


def test_simulate_table_and_trace(quickstart_plan):
    trace = Path("/work/shared/data/azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv")
    args = ["simulate", str(ROOT / "scenarios" / "quickstart.yaml"), str(quickstart_plan), "--duration", "5"]
    if trace.is_file():
        args += ["--trace", str(trace)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "SLO attainment" in result.stdout and "bert-base" in result.stdout


@pytest.mark.parametrize("case", ["other scenario", "missing trace", "missing plan"])
def test_simulate_bad_input_exits_2(case, quickstart_plan, tmp_path):
    scenario = ROOT / "scenarios" / "quickstart.yaml"
    plan = quickstart_plan
    extra = []
    if case == "other scenario":
        scenario = tmp_path / "renamed.yaml"
        scenario.write_text((ROOT / "scenarios" / "quickstart.yaml").read_text().replace("name: quickstart", "name: other"))
    elif case == "missing trace":
        extra = ["--trace", str(tmp_path / "nope.csv")]
    else:
        plan = tmp_path / "nope.json"
    result = runner.invoke(app, ["simulate", str(scenario), str(plan), "--duration", "1", *extra])
    assert result.exit_code == 2
    assert "error" in result.output and "Traceback" not in result.output


# Fleet-scale scenarios take long to plan: marked slow (still run in CI).
SLOW = {"fleet-1000x4096", "fleet-200x512", "alibaba-2023"}
# fleet-50x64 and fleet-200x512 used to miss here (small batches with 2 l(b) ~ slo under
# random arrivals, issue 4); the capacity rule now plans such replicas at planned_share
# (planner.capacity, docs/capacity.md "The capacity rule") and they hold 99%.


def _marks(path: Path) -> list:
    return [pytest.mark.slow] if path.stem in SLOW else []


@pytest.mark.parametrize("path", [pytest.param(p, marks=_marks(p), id=p.stem) for p in BUNDLED])
def test_bundled_scenario_plans_simulate_at_99_percent(path):
    scenario = load_scenario(path)
    plan = plan_scenario(scenario, settings=SolveSettings(time_limit_s=10.0)).plan
    if not plan.gpus:
        pytest.skip(f"no plan to simulate (status {plan.status})")
    total_rps = sum(d.rate_rps for d in scenario.demand)
    duration_s = min(60.0, max(2.0, REQUESTS_PER_SCENARIO / max(total_rps, 1.0)))
    result = simulate_plan(scenario, plan, SimulationSettings(duration_s=duration_s, seed=0))
    short = {m.model: round(m.admitted_slo_attainment, 4) for m in result.models
             if m.admitted_slo_attainment is not None and m.admitted_slo_attainment < 0.99}
    assert not short, f"{path.name}: plans that promise their SLO simulate below 99%: {short}"
