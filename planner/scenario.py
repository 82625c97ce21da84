"""The scenario schema (`format: scenario/v1`, see CONTRACT.md) and its loader.

Every field carries its unit in its name and a description; `planner validate` and the
docs print these. The schema checks one field at a time; what needs several fields
(a profile naming an unknown GPU type, ...) lives in `planner.checks`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

from planner.errors import ScenarioError, ScenarioErrors

SCENARIO_FORMAT = "scenario/v1"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
NAME_HELP = "use 1-80 letters, digits, '.', '_' or '-', starting with a letter or digit"
TENSOR_PARALLEL_DEGREES = (1, 2, 4, 8)
MAX_BATCH_LIMIT = 4096

# Upper limits keep every scaled integer in the solvers far from overflow.
MAX_MEMORY_GIB = 1.0e5
MAX_COST_PER_HOUR_USD = 1.0e5
MAX_RATE_RPS = 1.0e8
MAX_MS = 1.0e7
MIN_MS = 1e-6  # one nanosecond: a batch takes at least this long (smaller times overflow the rates)
MAX_GPU_COUNT = 1_000_000

Name = Annotated[str, Field(pattern=NAME_PATTERN, description="identifier; " + NAME_HELP)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML reads `yes`/`true` as a boolean; pydantic would take it as 1 in a number field."""
        if isinstance(value, bool) and cls.model_fields[info.field_name].annotation is not bool:
            raise ValueError(f"expected a number, got {str(value).lower()} (YAML reads yes/no/on/off/true/false as true/false)")
        return value


class GpuType(_Strict):
    """One kind of GPU in the inventory."""

    name: Name
    memory_gib: float = Field(gt=0, le=MAX_MEMORY_GIB, description="usable memory of one GPU, GiB")
    cost_per_hour_usd: float = Field(
        ge=0, le=MAX_COST_PER_HOUR_USD, description="price of one GPU for one hour, USD"
    )
    count: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GPU_COUNT,
        description="GPUs of this type available; omitted means as many as needed",
    )
    gpus_per_node: int = Field(
        default=8,
        ge=1,
        le=64,
        description="GPUs per machine; tensor-parallel groups stay inside one machine",
    )
    interference_factor: float = Field(
        default=1.0,
        ge=1.0,
        le=10.0,
        description="batch times are multiplied by this when two or more models share one GPU (co-location slowdown)",
    )


class Profile(_Strict):
    """Time to run ONE batch on one GPU type.

    Either `base_ms + per_item_ms * b` for b up to `max_batch`, or measured points
    `batch_ms: {b: ms}` interpolated linearly (below the first point: the first
    point's time; the last point is the largest batch). `tp: {degree: profile}` gives
    the time of a tensor-parallel replica of that many GPUs; without it a replica at any
    allowed degree is assumed to take the degree-1 time (no speed-up assumed).
    """

    base_ms: float | None = Field(default=None, ge=0, le=MAX_MS, description="fixed time per batch, ms")
    per_item_ms: float | None = Field(
        default=None, ge=0, le=MAX_MS, description="added time per request in the batch, ms"
    )
    max_batch: int | None = Field(
        default=None, ge=1, le=MAX_BATCH_LIMIT, description="largest batch the replica runs"
    )
    batch_ms: dict[int, Annotated[float, Field(ge=MIN_MS, le=MAX_MS)]] | None = Field(
        default=None, description="measured batch time in ms per batch size"
    )
    tp: dict[int, Profile] | None = Field(
        default=None, description="profile per tensor-parallel degree (GPUs per replica)"
    )

    @model_validator(mode="after")
    def _one_form(self) -> Profile:
        linear = (self.base_ms, self.per_item_ms, self.max_batch)
        has_linear = any(v is not None for v in linear)
        if has_linear and self.batch_ms is not None:
            raise ValueError("give either base_ms/per_item_ms/max_batch or batch_ms, not both")
        if has_linear and any(v is None for v in linear):
            raise ValueError("a linear profile needs all of base_ms, per_item_ms and max_batch")
        if has_linear and (self.base_ms or 0) + (self.per_item_ms or 0) < MIN_MS:
            raise ValueError(f"base_ms + per_item_ms must be at least {MIN_MS:g} ms (a batch takes time)")
        if self.batch_ms is not None:
            if not self.batch_ms:
                raise ValueError("batch_ms needs at least one point {batch_size: ms}")
            bad = [b for b in self.batch_ms if b < 1 or b > MAX_BATCH_LIMIT]
            if bad:
                raise ValueError(f"batch sizes in batch_ms must be 1..{MAX_BATCH_LIMIT}, got {bad}")
        if not has_linear and self.batch_ms is None and not self.tp:
            raise ValueError("a profile needs base_ms/per_item_ms/max_batch, batch_ms, or tp")
        if self.tp:
            for degree, sub in self.tp.items():
                if degree not in TENSOR_PARALLEL_DEGREES:
                    raise ValueError(f"tp degree {degree} not in {list(TENSOR_PARALLEL_DEGREES)}")
                if sub.tp:
                    raise ValueError("a tp profile cannot nest another tp")
        return self

    @property
    def has_own_timing(self) -> bool:
        return self.batch_ms is not None or self.base_ms is not None

    def for_degree(self, degree: int) -> Profile | None:
        """The profile that times a replica of `degree` GPUs, or None if none applies."""
        if self.tp and degree in self.tp:
            return self.tp[degree]
        return self if self.has_own_timing else None


class ModelSpec(_Strict):
    """An ML model to serve (a "model card" in the scenario)."""

    name: Name
    memory_gib: float = Field(
        gt=0, le=MAX_MEMORY_GIB, description="one replica's footprint (weights+runtime+activations), GiB"
    )
    slo_ms: float = Field(gt=0, le=MAX_MS, description="latency target of a request, queueing included, ms")
    tensor_parallel: list[int] = Field(
        default_factory=lambda: [1], description="allowed GPUs per replica, from 1, 2, 4, 8"
    )
    priority: float = Field(
        default=1.0, gt=0, le=1e6, description="weight of this model's served req/s in max_throughput"
    )
    profiles: dict[Name, Profile] = Field(description="batch time per GPU type the model may use")

    @field_validator("tensor_parallel")
    @classmethod
    def _degrees(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("tensor_parallel needs at least one degree, e.g. [1]")
        bad = [d for d in value if d not in TENSOR_PARALLEL_DEGREES]
        if bad:
            raise ValueError(f"degrees {bad} not allowed; use values from {list(TENSOR_PARALLEL_DEGREES)}")
        return sorted(set(value))


class Demand(_Strict):
    """The request forecast for one model."""

    model: Name
    rate_rps: float = Field(ge=0, le=MAX_RATE_RPS, description="mean arrival rate, requests per second")
    cv: float = Field(default=1.0, ge=0, le=100, description="coefficient of variation of inter-arrival times (1 = Poisson)")


class Scenario(_Strict):
    """A placement question: inventory, models, forecast, objective."""

    format: Literal["scenario/v1"] = Field(default=SCENARIO_FORMAT, description="schema version")
    name: Name
    objective: Literal["min_cost", "max_throughput"] = Field(
        default="min_cost", description="min_cost: serve all demand cheapest; max_throughput: serve most within budget"
    )
    budget_usd_per_hour: float | None = Field(
        default=None, gt=0, le=1e9, description="spend limit for the whole plan, USD per hour"
    )
    max_utilization: float = Field(
        default=0.8, gt=0, le=1.0, description="planned busy share of any GPU (head-room for bursts)"
    )
    fairness: bool = Field(
        default=False,
        description="max_throughput only: maximise the smallest served share of demand first",
    )
    gpu_types: list[GpuType] = Field(min_length=1, description="the GPU inventory")
    models: list[ModelSpec] = Field(min_length=1, description="models to place")
    demand: list[Demand] = Field(default_factory=list, description="request forecast per model")

    _index: tuple = PrivateAttr(default=(None, None, {}))

    def _lookup(self, key: tuple[str, str]) -> Any:
        """name -> entry in O(1), so 10,000 models stay fast. Rebuilt when the lists are not
        the ones indexed (model_copy(update=...) copies private attributes as they are)."""
        gpus, models, index = self._index
        if gpus is not self.gpu_types or models is not self.models:
            index = {}
            for g in self.gpu_types:
                index.setdefault(("gpu", g.name), g)  # first wins, like the linear search
            for m in self.models:
                index.setdefault(("model", m.name), m)
            self._index = (self.gpu_types, self.models, index)
        found = index.get(key)
        if found is None:
            raise StopIteration(key[1])  # as next() did: callers ask for known names only
        return found

    def gpu_type(self, name: str) -> GpuType:
        return self._lookup(("gpu", name))

    def model(self, name: str) -> ModelSpec:
        return self._lookup(("model", name))

    def demand_rps(self) -> dict[str, float]:
        """Total demand per model (every model, 0 where none is forecast)."""
        rates = {m.name: 0.0 for m in self.models}
        for d in self.demand:
            rates[d.model] = rates.get(d.model, 0.0) + d.rate_rps
        return rates


# --------------------------------------------------------------------------- loading

# Limits on what the loader reads (docs/limits.md). They keep a bad or hostile file from
# exhausting memory or crashing the YAML parser, and are far above any real scenario
# (a 10,000-model scenario is about 5 MB and 300,000 values).
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_VALUES = 5_000_000  # values after expanding YAML aliases (`*name`): stops "billion laughs"
MAX_DEPTH = 64  # nesting of mappings and lists; the C YAML parser crashes on very deep nesting
MAX_SHOWN = 60  # characters of a user-given key echoed in a message

_FIXES = {
    "missing": "add the field",
    "extra_forbidden": "remove it or check its spelling (see docs/scenario.md)",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than": "use a smaller value",
    "less_than_equal": "use a smaller value",
    "finite_number": "use a finite number (not NaN or infinity)",
    "string_pattern_mismatch": NAME_HELP,
    "string_type": "write a text value (quote it if YAML reads it as a number, date or true/false)",
    "literal_error": "use one of the listed values",
    "int_parsing": "use a whole number",
    "int_from_float": "use a whole number",
    "int_type": "use a whole number",
    "float_parsing": "use a number",
    "float_type": "use a number",
    "bool_type": "use true or false",
    "bool_parsing": "use true or false",
    "too_short": "give at least one entry",
    "list_type": "write a list (`- item` lines or `[a, b]`)",
    "dict_type": "write a mapping (`key: value` lines)",
    "model_type": "write a mapping (`key: value` lines)",
    "model_attributes_type": "write a mapping (`key: value` lines)",
    "value_error": "see docs/scenario.md for the field's meaning and unit",
}


def _shown(part: Any) -> str:
    """A key from the file as it may be echoed: printable, short."""
    text = str(part)
    if not text.isprintable() or any(c in text for c in "[]\\"):
        text = ascii(text)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + _shown(part)
    return text or "(top level)"


def errors_from_validation(exc: ValidationError) -> ScenarioErrors:
    found = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in ("function-after[_one_form()]", "[key]"))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch":
            message = f"{str(err['input'])[:MAX_SHOWN]!r} is not a valid name"
        elif err["type"] in ("string_type", "float_type", "int_type", "dict_type", "list_type", "model_type"):
            message = f"{message}, got {_shown(err['input'])}"
        if "[key]" in err["loc"]:
            message = f"the key {message}"
        fix = _FIXES.get(err["type"], "see docs/scenario.md for the field's meaning and unit")
        found.append(ScenarioError(_location(loc), message, fix))
    return ScenarioErrors(found)


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _ScenarioLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml's safe loader (no Python objects), refusing duplicate keys: YAML keeps the last
    one silently, so `count: 8` then `count: 0` would plan with 0 GPUs without a word."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    first = seen[key]
                    raise _DuplicateKey(
                        None, None,
                        f"duplicate key {_shown(key)!s} (first at line {first.line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _too_deep(where: str) -> ScenarioError:
    return ScenarioError(where, f"lists and mappings nested more than {MAX_DEPTH} deep",
                         "a scenario is at most a few levels deep; start from scenarios/quickstart.yaml")


def _check_yaml_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before composing (the parser streams events
    without recursion; composing them recurses and can crash the interpreter)."""
    depth = 0
    for event in yaml.parse(text, Loader=_ScenarioLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise _too_deep(f"{source}:{mark.line + 1}:{mark.column + 1}")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_size(raw: Any, source: str) -> None:
    """Count values after alias expansion, without recursion; refuse past MAX_VALUES."""
    count, stack = 0, [raw]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ScenarioError(source, f"more than {MAX_VALUES:,} values (after expanding YAML aliases)",
                                "split the scenario, or write repeated parts out instead of using many nested aliases")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _reject_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonDuplicate(key)
        out[key] = value
    return out


class _JsonDuplicate(ValueError):
    def __init__(self, key: str):
        self.key = key
        super().__init__(key)


def _parse_raw(text: str, source: str, as_json: bool) -> Any:
    if as_json:
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicate_json_keys)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{source}:{exc.lineno}:{exc.colno}", f"not valid JSON ({exc.msg})",
                                "fix the syntax at that line") from None
        except _JsonDuplicate as exc:
            raise ScenarioError(source, f"duplicate key {_shown(exc.key)} in a JSON object",
                                "keep one of them: JSON readers silently keep the last one") from None
        except (ValueError, RecursionError) as exc:
            raise ScenarioError(source, f"cannot read a value ({_shown(exc)})", "fix the value") from None
    try:
        _check_yaml_depth(text, source)
        return yaml.load(text, Loader=_ScenarioLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, _DuplicateKey):
            raise ScenarioError(where, problem, "keep one of them: YAML would silently keep the last one") from None
        if "nesting depth" in problem:  # PyYAML >= 6.0.4 stops very deep nesting itself, ahead of the check
            raise _too_deep(where) from None
        raise ScenarioError(where, f"not valid YAML/JSON ({problem})", "fix the syntax at that line") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # e.g. an integer of thousands of digits, a date out of range
        raise ScenarioError(source, f"cannot read a value ({_shown(exc)})",
                            "use ordinary numbers (see docs/limits.md); quote text that YAML may read as a number or date") from None


def parse_scenario_text(text: str, source: str = "<scenario>", as_json: bool = False) -> Scenario:
    """Parse YAML (or JSON) text into a Scenario; raises ScenarioError(s) naming the field."""
    if "\x00" in text:
        raise ScenarioError(source, "the file holds binary data (NUL bytes), not YAML/JSON text",
                            "give the path of a scenario file; start from scenarios/quickstart.yaml")
    if not text.strip():
        raise ScenarioError(source, "the file is empty", "start from scenarios/quickstart.yaml")
    raw = _parse_raw(text, source, as_json)
    if raw is None:
        raise ScenarioError(source, "the file holds no scenario (only comments or `---`)",
                            "start from scenarios/quickstart.yaml")
    if not isinstance(raw, dict):
        raise ScenarioError(source, f"the scenario must be a mapping of fields, not a {type(raw).__name__}",
                            "start from scenarios/quickstart.yaml (`format: scenario/v1`, `name: ...`, ...)")
    _check_size(raw, source)
    if "format" in raw and raw["format"] != SCENARIO_FORMAT:
        raise ScenarioError("format", f"unsupported format {_shown(raw['format'])}", f"use format: {SCENARIO_FORMAT}")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise errors_from_validation(exc) from None
    except RecursionError:
        raise ScenarioError(source, "the scenario is nested too deeply", "flatten it") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file (YAML, or JSON when it ends in .json)."""
    path = Path(path)
    try:
        if not path.is_file():
            raise ScenarioError(str(path), "no such file" if not path.exists() else "not a regular file",
                                "check the path")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(str(path), f"the file is {size / 2**20:,.0f} MiB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MiB",
                                "split the scenario (see docs/limits.md)")
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(str(path), f"cannot read the file ({exc.strerror or exc})", "check the path and its permissions") from None
    if b"\x00" in data:
        raise ScenarioError(str(path), "the file holds binary data (NUL bytes), not YAML/JSON text",
                            "give the path of a scenario file; start from scenarios/quickstart.yaml")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), f"not UTF-8 text (bad byte at offset {exc.start})", "save it as UTF-8 text") from None
    return parse_scenario_text(text, str(path), as_json=path.suffix.lower() == ".json")


def is_finite_number(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
