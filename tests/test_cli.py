"""The `planner` command line through typer's runner: output, files and exit codes."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.plan import PLAN_FORMAT, load_plan
from planner.scenario import load_scenario
from planner.verify import verify_plan
from solvers.registry import SOLVERS

runner = CliRunner()

TINY = {
    "name": "tiny",
    "max_utilization": 0.8,
    "gpu_types": [{"name": "A", "memory_gib": 24, "cost_per_hour_usd": 1.5, "count": 4}],
    "models": [{"name": "m", "memory_gib": 2, "slo_ms": 1000, "profiles": {"A": {"batch_ms": {1: 10.0}}}}],
    "demand": [{"model": "m", "rate_rps": 250}],
}


def write(tmp_path, raw: dict, name: str = "scenario.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def strip_wall_time(text: str) -> dict:
    plan = json.loads(text)
    plan["solver"].pop("wall_s")
    return plan


# ----------------------------------------------------------------------------- plan


def test_plan_with_fairness_prints_the_fair_share_and_its_proven_bound(tmp_path):
    """Two models, a budget for three GPUs: each gets a share of its demand; the summary
    says the smallest and the proven upper bound on it."""
    raw = {**TINY, "objective": "max_throughput", "budget_usd_per_hour": 4.5, "fairness": True,
           "models": TINY["models"] + [{"name": "n", "memory_gib": 2, "slo_ms": 1000,
                                        "profiles": {"A": {"batch_ms": {1: 20.0}}}}],
           "demand": [{"model": "m", "rate_rps": 250}, {"model": "n", "rate_rps": 250}]}
    out = tmp_path / "plan.json"
    result = invoke("plan", write(tmp_path, raw), "--out", out, "--time-limit", 5)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "fairness: every model gets at least" in text and "(proven)" in text
    plan = load_plan(out)
    share = min(m.served_rps / m.demand_rps for m in plan.models.values())
    assert f"at least {share:.1%}" in text


def test_plan_table_writes_the_file(tmp_path, scenarios_dir):
    out = tmp_path / "plan.json"
    result = invoke("plan", scenarios_dir / "quickstart.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    assert "proven bound" in result.output
    assert "GPUs used" in result.output and "Models" in result.output
    assert "bert-base" in result.output
    assert f"plan written to {out}" in result.output.replace("\n", "")
    plan = load_plan(out)
    assert plan.format == PLAN_FORMAT
    # the default (colgen) shares GPUs; it proves a bound, not always optimality
    assert plan.status in {"optimal", "feasible"}
    assert plan.objective.bound <= plan.objective.value
    assert verify_plan(load_scenario(scenarios_dir / "quickstart.yaml"), plan) == []


def test_plan_json_output_is_the_file(tmp_path):
    scenario = write(tmp_path, TINY)
    out = tmp_path / "plan.json"
    result = invoke("plan", scenario, "--out", out, "--format", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads(out.read_text())
    # 250 req/s at 80 planned req/s per GPU (100 x U = 0.8) -> 4 GPUs x $1.5 = $6
    assert printed["status"] == "optimal"
    assert printed["cost_per_hour_usd"] == pytest.approx(6.0)
    assert len(printed["gpus"]) == 4
    assert sum(printed["routing"]["m"].values()) == pytest.approx(1.0)


def test_same_input_and_seed_give_identical_plans(tmp_path, scenarios_dir):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for out in (first, second):
        result = invoke("plan", scenarios_dir / "quickstart.yaml", "--out", out, "--seed", "7", "--format", "json")
        assert result.exit_code == 0, result.output
    assert strip_wall_time(first.read_text()) == strip_wall_time(second.read_text())
    # byte-identical once the wall time line is removed
    drop = lambda text: "\n".join(line for line in text.splitlines() if '"wall_s"' not in line)  # noqa: E731
    assert drop(first.read_text()) == drop(second.read_text())
    assert json.loads(first.read_text())["solver"]["seed"] == 7


def test_unknown_solver_is_usage_error_and_writes_nothing(tmp_path, scenarios_dir):
    out = tmp_path / "plan.json"
    result = invoke("plan", scenarios_dir / "quickstart.yaml", "--out", out, "--solver", "no-such-solver")
    assert result.exit_code == 2
    assert "unknown solver 'no-such-solver'" in result.output
    assert "cpsat-type" in result.output  # the message lists the valid names
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_infeasible_exits_1_with_an_infeasible_plan_file(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["demand"][0]["rate_rps"] = 450  # needs 6 GPUs (80 req/s each), the inventory has 4
    scenario = write(tmp_path, raw)
    out = tmp_path / "plan.json"
    result = invoke("plan", scenario, "--out", out)
    assert result.exit_code == 1, result.output
    assert "infeasible" in result.output
    plan = json.loads(out.read_text())
    assert plan["status"] == "infeasible"
    assert plan["gpus"] == []
    assert plan["explanation"]


def test_infeasible_from_checks_says_why(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["models"][0]["slo_ms"] = 15  # batch 1 takes 10 ms: worst latency 20 ms > 15
    scenario = write(tmp_path, raw)
    out = tmp_path / "plan.json"
    result = invoke("plan", scenario, "--out", out, "--format", "json")
    assert result.exit_code == 1
    plan = json.loads(out.read_text())
    assert plan["status"] == "infeasible"
    assert any(item.get("location") == "models[0].slo_ms" for item in plan["explanation"])


@pytest.mark.parametrize("solver", sorted(name for name in SOLVERS if name.endswith("-type")))
def test_plan_with_each_type_level_solver(tmp_path, solver):
    out = tmp_path / "plan.json"
    result = invoke("plan", write(tmp_path, TINY), "--out", out, "--solver", solver, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["solver"]["name"] == solver


def test_bad_scenario_exits_2_and_writes_nothing(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["gpu_types"][0]["memory_gib"] = -1
    out = tmp_path / "plan.json"
    result = invoke("plan", write(tmp_path, raw), "--out", out)
    assert result.exit_code == 2
    assert "gpu_types[0].memory_gib" in result.output
    assert "fix:" in result.output
    assert not out.exists()


def test_missing_scenario_file_exits_2(tmp_path):
    result = invoke("plan", tmp_path / "nope.yaml", "--out", tmp_path / "plan.json")
    assert result.exit_code == 2
    assert "no such file" in result.output
    assert not (tmp_path / "plan.json").exists()


# ------------------------------------------------------------------------- validate


def test_validate_valid_scenario(scenarios_dir):
    result = invoke("validate", scenarios_dir / "quickstart.yaml")
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_unknown_gpu_type_names_the_field(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["models"][0]["profiles"]["H100"] = {"batch_ms": {1: 5.0}}
    result = invoke("validate", write(tmp_path, raw))
    assert result.exit_code == 2
    assert "models[0].profiles.H100" in result.output
    assert "unknown GPU type" in result.output


def test_validate_unknown_demand_model(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["demand"].append({"model": "ghost", "rate_rps": 1})
    result = invoke("validate", write(tmp_path, raw))
    assert result.exit_code == 2
    assert "demand[1].model" in result.output


def test_validate_infeasible_model_exits_1(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["models"][0]["memory_gib"] = 30  # 30 GiB on a 24 GiB GPU, tp 1 only
    result = invoke("validate", write(tmp_path, raw))
    assert result.exit_code == 1
    assert "models[0]" in result.output
    assert "fits on no GPU type" in result.output


def test_validate_schema_error_exits_2(tmp_path):
    raw = json.loads(json.dumps(TINY))
    raw["objective"] = "min_latency"
    result = invoke("validate", write(tmp_path, raw))
    assert result.exit_code == 2
    assert "objective" in result.output


# -------------------------------------------------------------- solvers, candidates


def test_solvers_lists_the_registry():
    result = invoke("solvers")
    assert result.exit_code == 0
    for name in SOLVERS:
        assert name in result.output
    assert "(default)" in result.output


def test_candidates_table_and_json(tmp_path):
    scenario = write(tmp_path, TINY)
    table = invoke("candidates", scenario)
    assert table.exit_code == 0, table.output
    assert "capacity_rps" in table.output
    as_json = invoke("candidates", scenario, "--format", "json")
    assert as_json.exit_code == 0
    rows = json.loads(as_json.stdout)
    assert len(rows) == 1
    assert rows[0]["model"] == "m" and rows[0]["gpu_type"] == "A"
    assert rows[0]["capacity_rps"] == pytest.approx(100.0)  # batch 1 in 10 ms
    assert rows[0]["batch_size"] == 1


def test_plan_mlperf_scenario_exits_0(tmp_path, scenarios_dir):
    out = tmp_path / "plan.json"
    result = invoke("plan", scenarios_dir / "mlperf-small.yaml", "--out", out, "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert plan["status"] in {"optimal", "feasible"}
    assert plan["objective"]["bound"] <= plan["objective"]["value"]
    assert {g["type"] for g in plan["gpus"]} <= {"H100", "H200", "A100-80GB", "L4"}
    assert verify_plan(load_scenario(scenarios_dir / "mlperf-small.yaml"), load_plan(out)) == []
