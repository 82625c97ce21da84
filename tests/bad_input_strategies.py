"""Hypothesis strategies that break valid scenarios: mutate one place (drop a field, a wrong
type, NaN, a negative or huge number, an odd name, a duplicate entry), or damage the text
(truncate it, duplicate a line, splice in bytes). Shared by test_bad_input and test_fuzz_cli."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
VALID = [yaml.safe_load((ROOT / "scenarios" / name).read_text()) for name in ("quickstart.yaml", "contract-example.yaml")]

ODD_VALUES = [
    None, True, False, 0, -1, -0.5, 1e-300, 1e308, 10**30, math.nan, math.inf, -math.inf,
    "", " ", "abc", "12", "nan", "../../etc/passwd", "a/b", "C:\\x", "ünïcødé", "名前", "[/red]", "[bold]x",
    "\t", "x" * 5000, [], [1, 2], {}, {"a": 1}, [None], {"1": -3}, 4096, 4097, 0.0,
]
ODD_NAMES = ["", "../up", "a/b", "a\\b", ".hidden", "-dash", "x" * 81, "名前", "sp ace", "[/x]", "nul\x00", "tab\t", "emoji🙂"]


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a nested dict/list value."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(paths(item, prefix + (index,)))
    return found


def _parent(raw: Any, path: tuple) -> Any:
    for part in path[:-1]:
        raw = raw[part]
    return raw


@st.composite
def mutated_scenarios(draw) -> dict:
    """A valid scenario with one to three mutations."""
    raw = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        places = paths(raw)
        if not places:
            break
        path = draw(st.sampled_from(places))
        try:
            parent = _parent(raw, path)
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):
            continue
        kind = draw(st.sampled_from(["drop", "replace", "replace", "name", "duplicate", "number", "rename_key"]))
        key = path[-1]
        if kind == "drop":
            del parent[key]
        elif kind == "replace":
            parent[key] = draw(st.sampled_from(ODD_VALUES) | st.text(max_size=20) | st.integers() | st.floats())
        elif kind == "name":
            target = raw.get(draw(st.sampled_from(["gpu_types", "models", "demand"])))
            if isinstance(target, list) and target and isinstance(target[0], dict):
                field = "model" if "model" in target[0] else "name"
                entry = target[draw(st.integers(0, len(target) - 1))]
                if isinstance(entry, dict):
                    entry[field] = draw(st.sampled_from(ODD_NAMES) | st.text(max_size=12))
        elif kind == "duplicate":
            target = raw.get(draw(st.sampled_from(["gpu_types", "models", "demand"])))
            if isinstance(target, list) and target:
                target.append(copy.deepcopy(draw(st.sampled_from(target))))
        elif kind == "number":
            if isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
                parent[key] = parent[key] * draw(st.sampled_from([-1, 0, 1e6, 1e12, 1e300, 0.5, 1e-9]))
        elif kind == "rename_key" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["slo", "memory", "count ", "Name", "x/y", "名"]))] = parent.pop(key)
    return raw


def to_yaml(raw: dict) -> str:
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


@st.composite
def damaged_texts(draw) -> str:
    """Valid scenario text with the text itself broken."""
    text = to_yaml(draw(st.sampled_from(VALID)))
    lines = text.splitlines(keepends=True)
    kind = draw(st.sampled_from(["truncate", "dup_line", "splice", "indent", "swap"]))
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if kind == "dup_line":
        i = draw(st.integers(0, len(lines) - 1))
        return "".join(lines[: i + 1] + [lines[i]] + lines[i + 1 :])
    if kind == "splice":
        i = draw(st.integers(0, len(text)))
        junk = draw(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8)
                    | st.sampled_from(["{", "[", ":", "- ", "&a", "*a", "!!python/object:os.system", "'", '"', "\t", "%YAML"]))
        return text[:i] + junk + text[i:]
    if kind == "indent":
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = draw(st.sampled_from(["  ", "\t", " "])) + lines[i]
        return "".join(lines)
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)
