"""Large inputs: a generated 10,000-model scenario loads and validates (never a crash);
one past the loader's limits is refused with exit 2 and a pointer to docs/limits.md.
Planning it is measured in docs/limits.md (too slow for the default test run); set
PLANNER_SLOW_TESTS=1 to plan it here too."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.scenario import load_scenario

runner = CliRunner()


def big_scenario(models: int) -> dict:
    types = [{"name": f"G{t}", "memory_gib": 24 + 8 * t, "cost_per_hour_usd": round(0.5 + 0.4 * t, 2)} for t in range(8)]
    for t, g in enumerate(types):
        if t % 2 == 0:
            g["count"] = 100_000
    return {
        "format": "scenario/v1",
        "name": f"big-{models}",
        "gpu_types": types,
        "models": [
            {"name": f"m{i}", "memory_gib": 1 + i % 20, "slo_ms": 100 + (i % 7) * 50,
             "profiles": {f"G{t}": {"base_ms": 2 + i % 5 + t / 10, "per_item_ms": 0.1 + 0.01 * (i % 9), "max_batch": 32}
                          for t in range(8) if (i + t) % 3}}
            for i in range(models)
        ],
        "demand": [{"model": f"m{i}", "rate_rps": 10 + (i % 50) * 3} for i in range(models)],
    }


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.json"
    path.write_text(json.dumps(big_scenario(10_000)))
    return path


def test_ten_thousand_models_load_and_validate(big_file):
    scenario = load_scenario(big_file)
    assert len(scenario.models) == 10_000
    assert scenario.model("m9999").name == "m9999"
    result = runner.invoke(app, ["validate", str(big_file)])
    assert result.exit_code == 0, result.output[-2000:]


def test_ten_thousand_models_as_yaml_load(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(big_scenario(10_000), sort_keys=False))
    assert len(load_scenario(path).models) == 10_000


def test_past_the_value_limit_is_refused_with_exit_2(tmp_path, monkeypatch):
    import planner.scenario as scenario_module

    monkeypatch.setattr(scenario_module, "MAX_VALUES", 50_000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(big_scenario(5_000)))
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(path), "--out", str(out)])
    assert result.exit_code == 2 and "more than 50,000 values" in result.output
    assert not out.exists()


@pytest.mark.skipif(not os.environ.get("PLANNER_SLOW_TESTS"), reason="minutes: set PLANNER_SLOW_TESTS=1")
def test_ten_thousand_models_plan(big_file, tmp_path):
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", str(big_file), "--out", str(out), "--time-limit", "60"])
    assert result.exit_code in (0, 1), result.output[-2000:]
    assert json.loads(out.read_text())["status"] in ("optimal", "feasible", "time_limit", "infeasible")
