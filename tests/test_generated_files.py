"""Generated files stay in sync with what generates them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scenario_docs_are_up_to_date():
    generated = load_script("gen_scenario_docs").render()
    current = (ROOT / "docs" / "scenario.md").read_text(encoding="utf-8")
    assert current == generated, "docs/scenario.md is stale: run .venv/bin/python scripts/gen_scenario_docs.py"


def test_scenario_docs_name_every_field():
    from planner.scenario import Demand, GpuType, ModelSpec, Profile, Scenario

    text = (ROOT / "docs" / "scenario.md").read_text(encoding="utf-8")
    for schema in (Scenario, GpuType, ModelSpec, Profile, Demand):
        for name in schema.model_fields:
            assert re.search(rf"`[^`]*\b{name}`", text), f"{schema.__name__}.{name} missing from docs/scenario.md"


def test_formulation_docs_list_every_constraint_family():
    import solvers.typelevel_cpsat as typelevel

    text = (ROOT / "docs" / "formulation.md").read_text(encoding="utf-8")
    families = [name for name in dir(typelevel) if name.startswith("add_")]
    assert families
    for name in families:
        assert f"`{name}`" in text, f"{name} has no row in docs/formulation.md"
    assert "## Packing (column generation)" in text


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not beside the repository")
def test_mlperf_scenario_is_reproducible():
    text = load_script("build_mlperf_scenario").build(DATA)
    assert text == (ROOT / "scenarios" / "mlperf-small.yaml").read_text(encoding="utf-8")
