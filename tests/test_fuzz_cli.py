"""The CLI under bad input: hundreds of generated broken scenarios and the corpus in
tests/corpus/bad/ go through `planner validate` and `planner plan`. Every run ends in exit
0, 1 or 2 with a message, never a traceback; a refusal (exit 2) leaves the previous
output file untouched and no temporary file behind."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from bad_input_strategies import damaged_texts, mutated_scenarios, to_yaml
from planner.cli import app

CORPUS = sorted((Path(__file__).parent / "corpus" / "bad").glob("*.yaml"))
PREVIOUS = '{"previous": "plan"}\n'
runner = CliRunner()


def run_plan(folder: Path, text: str | bytes, suffix: str = ".yaml"):
    scenario = folder / f"s{suffix}"
    if isinstance(text, bytes):
        scenario.write_bytes(text)
    else:
        scenario.write_text(text, encoding="utf-8")
    out = folder / "out" / "plan.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(PREVIOUS)
    result = runner.invoke(app, ["plan", str(scenario), "--out", str(out), "--time-limit", "5"])
    return result, out


def assert_well_behaved(result, out: Path) -> None:
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    leftovers = [p.name for p in out.parent.iterdir() if p.name != out.name]
    assert leftovers == [], leftovers
    if result.exit_code == 2:
        assert "error" in result.output and "fix:" in result.output
        assert out.read_text() == PREVIOUS, "a refusal must not touch the output file"
    else:
        plan = json.loads(out.read_text())
        assert plan["format"] == "placement-plan/v1"
        assert plan["status"] == ("infeasible" if result.exit_code == 1 else plan["status"])
        if result.exit_code == 1:
            assert plan["explanation"]


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_scenarios())
def test_cli_plan_on_mutated_scenarios(raw):
    with tempfile.TemporaryDirectory() as folder:
        result, out = run_plan(Path(folder), to_yaml(raw))
        assert_well_behaved(result, out)


@FUZZ
@given(damaged_texts())
def test_cli_plan_on_damaged_text(text):
    with tempfile.TemporaryDirectory() as folder:
        result, out = run_plan(Path(folder), text)
        assert_well_behaved(result, out)


@settings(max_examples=60, deadline=None)
@given(mutated_scenarios())
def test_cli_validate_on_mutated_scenarios(raw):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.json"
        path.write_text(json.dumps(raw))
        result = runner.invoke(app, ["validate", str(path)])
        assert result.exit_code in (0, 1, 2), result.output
        assert "Traceback" not in result.output and "internal error" not in result.output


def test_the_corpus_is_not_empty_and_each_case_says_what_is_wrong():
    assert len(CORPUS) >= 40
    for path in CORPUS:
        assert path.read_bytes().startswith(b"# "), f"{path.name}: start with a comment saying what is wrong"


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_case_is_refused_with_exit_2_and_nothing_written(path, tmp_path):
    result, out = run_plan(tmp_path, path.read_bytes())
    assert result.exit_code == 2, result.output
    assert_well_behaved(result, out)
    fresh = tmp_path / "fresh" / "plan.json"
    again = runner.invoke(app, ["plan", str(tmp_path / "s.yaml"), "--out", str(fresh)])
    assert again.exit_code == 2 and not fresh.exists() and not fresh.parent.exists()
    checked = runner.invoke(app, ["validate", str(path)])
    assert checked.exit_code == 2 and "Traceback" not in checked.output


def test_usage_errors_exit_2(tmp_path):
    result = runner.invoke(app, ["plan", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 2 and "no such file" in result.output
    assert not (tmp_path / "p.json").exists()
    quick = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"
    result = runner.invoke(app, ["plan", str(quick), "--out", str(tmp_path / "p.json"), "--solver", "nope"])
    assert result.exit_code == 2 and "unknown solver" in result.output
    assert not (tmp_path / "p.json").exists()
    (tmp_path / "dir.json").mkdir()
    result = runner.invoke(app, ["plan", str(quick), "--out", str(tmp_path / "dir.json")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["dir.json"]
