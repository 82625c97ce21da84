"""The loader and the checks under bad input: every broken scenario is either accepted
(and then well formed) or refused with errors that each name a place, a problem and a fix;
never another exception."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings

from bad_input_strategies import damaged_texts, mutated_scenarios, to_yaml
from planner.checks import check_scenario, raise_input_errors
from planner.errors import PlannerError, ScenarioError, ScenarioErrors
from planner.scenario import MAX_DEPTH, load_scenario, parse_scenario_text

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_and_check(text: str, as_json: bool = False):
    scenario = parse_scenario_text(text, "s.yaml", as_json=as_json)
    raise_input_errors(check_scenario(scenario))
    return scenario


def assert_clear(exc: PlannerError) -> None:
    errors = exc.errors if isinstance(exc, ScenarioErrors) else [exc]
    assert errors
    for e in errors:
        assert isinstance(e, ScenarioError)
        assert e.location and e.problem and e.fix, str(e)
        assert "Traceback" not in str(e)
        assert len(e.location) < 300 and len(e.problem) < 2000


def assert_loaded_or_clear(text: str, as_json: bool = False):
    try:
        scenario = load_and_check(text, as_json)
    except PlannerError as exc:
        assert_clear(exc)
        return None
    for g in scenario.gpu_types:
        assert math.isfinite(g.memory_gib) and g.memory_gib > 0 and math.isfinite(g.cost_per_hour_usd)
    for m in scenario.models:
        assert math.isfinite(m.slo_ms) and m.slo_ms > 0
    return scenario


@FUZZ
@given(mutated_scenarios())
def test_mutated_scenarios_load_or_are_refused_clearly(raw):
    assert_loaded_or_clear(to_yaml(raw))


@FUZZ
@given(damaged_texts())
def test_damaged_text_loads_or_is_refused_clearly(text):
    assert_loaded_or_clear(text)


@settings(max_examples=100, deadline=None)
@given(mutated_scenarios())
def test_mutated_scenarios_as_json_load_or_are_refused_clearly(raw):
    import json

    assert_loaded_or_clear(json.dumps(raw))
    assert_loaded_or_clear(json.dumps(raw), as_json=True)


# ------------------------------------------------------------------ named cases

QUICK = (
    "format: scenario/v1\nname: q\ngpu_types:\n  - {name: L4, memory_gib: 24, cost_per_hour_usd: 1.0}\n"
    "models:\n  - name: m\n    memory_gib: 1\n    slo_ms: 50\n    profiles:\n      L4: {base_ms: 2, per_item_ms: 0.5, max_batch: 8}\n"
    "demand:\n  - {model: m, rate_rps: 10}\n"
)


def refused(text: str, as_json: bool = False) -> list[ScenarioError]:
    with pytest.raises(PlannerError) as info:
        load_and_check(text, as_json)
    assert_clear(info.value)
    return info.value.errors if isinstance(info.value, ScenarioErrors) else [info.value]


def test_the_base_case_is_valid():
    assert load_and_check(QUICK).name == "q"


def test_duplicate_yaml_key_is_refused_with_both_lines():
    (e,) = refused(QUICK.replace("name: q\n", "name: q\nname: r\n"))
    assert e.location == "s.yaml:3:1"
    assert "duplicate key name (first at line 2)" in e.problem


def test_duplicate_nested_yaml_key_is_refused():
    (e,) = refused(QUICK.replace("    slo_ms: 50\n", "    slo_ms: 50\n    slo_ms: 5\n"))
    assert e.location == "s.yaml:9:5" and "slo_ms (first at line 8)" in e.problem


def test_duplicate_json_key_is_refused():
    (e,) = refused('{"name": "a", "name": "b"}', as_json=True)
    assert "duplicate key name" in e.problem


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e400"])
def test_non_finite_numbers_are_refused_naming_the_field(value):
    errors = refused(QUICK.replace("memory_gib: 24", f"memory_gib: {value}"))
    assert errors[0].location == "gpu_types[0].memory_gib"
    assert "finite" in errors[0].fix


@pytest.mark.parametrize("field, value, where", [
    ("memory_gib: 24", "memory_gib: -24", "gpu_types[0].memory_gib"),
    ("memory_gib: 24", "memory_gib: 1e9", "gpu_types[0].memory_gib"),
    ("rate_rps: 10", "rate_rps: -1", "demand[0].rate_rps"),
    ("rate_rps: 10", "rate_rps: 1e12", "demand[0].rate_rps"),
    ("max_batch: 8", "max_batch: 100000", "models[0].profiles.L4.max_batch"),
    ("max_batch: 8", "max_batch: 2.5", "models[0].profiles.L4.max_batch"),
    ("cost_per_hour_usd: 1.0", "cost_per_hour_usd: true", "gpu_types[0].cost_per_hour_usd"),
    ("slo_ms: 50", "slo_ms: fifty", "models[0].slo_ms"),
    ("slo_ms: 50", "slo_ms: 0", "models[0].slo_ms"),
])
def test_bad_numbers_name_the_field(field, value, where):
    errors = refused(QUICK.replace(field, value))
    assert [e.location for e in errors] == [where]


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "a\\\\b", ".x", "[/red]", "名前", "x y", "''"])
def test_odd_names_are_refused(name):
    errors = refused(QUICK.replace("name: m\n", f"name: \"{name}\"\n").replace("model: m,", f"model: \"{name}\","))
    assert any(e.location == "models[0].name" for e in errors)


def test_odd_profile_key_is_refused():
    errors = refused(QUICK.replace("      L4: {", "      ../L4: {"))
    assert errors[0].location.startswith("models[0].profiles") and "name" in errors[0].problem


def test_missing_field_and_unknown_field():
    errors = refused(QUICK.replace("    slo_ms: 50\n", "    slo: 50\n"))
    assert {e.location for e in errors} == {"models[0].slo_ms", "models[0].slo"}


def test_unknown_names_and_duplicate_names():
    (e,) = refused(QUICK.replace("model: m,", "model: nope,"))
    assert e.location == "demand[0].model" and "'nope'" in e.problem
    (e,) = refused(QUICK.replace("      L4: {", "      H100: {"))
    assert e.location == "models[0].profiles.H100"
    dup = QUICK.replace("gpu_types:\n", "gpu_types:\n  - {name: L4, memory_gib: 80, cost_per_hour_usd: 3.0}\n")
    (e,) = refused(dup)
    assert e.location == "gpu_types[1].name" and "2 times" in e.problem


@pytest.mark.parametrize("text, words", [
    ("", "empty"), ("  \n\n", "empty"), ("# just a comment\n", "no scenario"), ("- a\n- b\n", "mapping"),
    ("42\n", "mapping"), ("name: [unclosed\n", "not valid YAML"), ("a: b: c\n", "not valid YAML"),
    ("!!python/object/apply:os.system ['true']\n", "not valid YAML"), ("x\x00y", "binary"),
    ("a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5), "nested"),
    ("name: " + "9" * 5000 + "\n", "cannot read a value"),
    ("format: scenario/v9\nname: q\n", "unsupported format"),
])
def test_malformed_files(text, words):
    errors = refused(text)
    assert words in errors[0].problem


def test_deep_nesting_far_past_the_parsers_limit_is_refused_not_a_crash():
    # the C YAML parser crashes the interpreter on ~100,000 nested lists
    errors = refused("a: " + "[" * 100_000 + "]" * 100_000)
    assert "nested" in errors[0].problem


def test_billion_laughs_is_refused():
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    errors = refused("\n".join(lines) + "\n")
    assert "values" in errors[0].problem


def test_files_that_are_not_text(tmp_path):
    binary = tmp_path / "junk.yaml"
    binary.write_bytes(bytes(range(256)) * 10)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    for path, words in ((binary, "binary"), (latin, "UTF-8"), (tmp_path, "not a regular file"), (tmp_path / "nope.yaml", "no such file")):
        with pytest.raises(ScenarioError) as info:
            load_scenario(path)
        assert words in info.value.problem


def test_an_enormous_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import planner.scenario as scenario_module

    monkeypatch.setattr(scenario_module, "MAX_FILE_BYTES", 1000)
    big = tmp_path / "big.yaml"
    big.write_text(QUICK + "#" * 2000 + "\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(big)
    assert "limit" in info.value.problem and "docs/limits.md" in info.value.fix


def test_utf8_bom_and_json_files_load(tmp_path):
    import json

    import yaml

    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + QUICK.encode())
    assert load_scenario(bom).name == "q"
    as_json = tmp_path / "s.json"
    as_json.write_text(json.dumps(yaml.safe_load(QUICK), indent="\t"))
    assert load_scenario(as_json).name == "q"
