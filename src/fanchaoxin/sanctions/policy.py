"""The measure catalogues and the grading policy, as validated YAML (the policy is versioned).

Errors name the file, the line and the key, e.g.
`policy.yaml:14: rules[2].measures[0]: unknown measure 'deny_everything'`, so an operator can fix a
policy before loading it (`fcx policy check FILE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fanchaoxin.core.catalogue import CATALOGUE_DIR, catalogues
from fanchaoxin.orgs.models import BusinessType

DEFAULT_POLICY = CATALOGUE_DIR / "policies" / "default.yaml"


class PolicyError(ValueError):
    """A catalogue or policy file that cannot be used; the message names file, line and key."""


# --- YAML with line numbers ---------------------------------------------------------------------------


def load_yaml_with_lines(text: str, filename: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse YAML and remember the line of every key and list item (1-based)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise PolicyError(f"{filename}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    lines: dict[tuple[Any, ...], int] = {}

    def build(node: yaml.Node, path: tuple[Any, ...]) -> Any:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = yaml.safe_load(yaml.serialize(key_node))
                if key in out:
                    raise PolicyError(f"{filename}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
                out[key] = build(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        return yaml.safe_load(yaml.serialize(node))

    if root is None:
        raise PolicyError(f"{filename}: the file is empty")
    return build(root, ()), lines


def _where(filename: str, lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> str:
    path = tuple(loc)
    while path and path not in lines:
        path = path[:-1]
    line = lines.get(path, 1)
    key = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
    return f"{filename}:{line}: {key or '(top)'}"


def validate_with_lines(
    model: type[BaseModel], data: Any, filename: str, lines: dict[tuple[Any, ...], int]
) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        loc = tuple(err["loc"])
        # A model-level check names its own path as "a.b[0].c: message".
        if (
            ": " in msg
            and msg.split(": ", 1)[0].replace("[", ".").replace("]", "").replace(".", "").isidentifier()
        ):
            sub, msg = msg.split(": ", 1)
            parts: list[Any] = []
            for piece in sub.replace("]", "").replace("[", ".").split("."):
                parts.append(int(piece) if piece.isdigit() else piece)
            loc = (*loc, *parts)
        raise PolicyError(f"{_where(filename, lines, loc)}: {msg}") from exc


# --- catalogues of measures and scenes ----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    zh: str
    en: str


class ParamDef(_Strict):
    default: Any
    merge: Literal["max", "min", "first"] = "first"


class Measure(_Strict):
    """One of the 13 joint punishment measures (联合惩戒措施)."""

    code: str
    number: int = Field(ge=1, le=13)
    zh: str
    en: str
    implementers: tuple[BusinessType, ...] = Field(min_length=1)
    scenes: dict[str, Literal["deny", "restrict"]]
    params: dict[str, ParamDef] = Field(default_factory=dict)
    lift: Text


class DepartmentMeasure(_Strict):
    code: str
    zh: str
    en: str
    min_severity: str


class Scene(_Strict):
    code: str
    zh: str
    en: str


def _load_list(path: Path, model: type[_Strict]) -> dict[str, Any]:
    data, lines = load_yaml_with_lines(path.read_text(encoding="utf-8"), path.name)
    if not isinstance(data, list):
        raise PolicyError(f"{path.name}:1: expected a list")
    out: dict[str, Any] = {}
    for i, raw in enumerate(data):
        item = validate_with_lines(
            model, raw, path.name, {k[1:]: v for k, v in lines.items() if k[:1] == (i,)}
        )
        if item.code in out:
            raise PolicyError(f"{path.name}:{lines.get((i,), 1)}: duplicate code {item.code!r}")
        out[item.code] = item
    return out


@dataclass(frozen=True)
class MeasureCatalogue:
    measures: dict[str, Measure]
    department_measures: dict[str, DepartmentMeasure]
    scenes: dict[str, Scene]

    def implementable_by(self, business_types: frozenset[str] | set[str]) -> list[Measure]:
        return [m for m in self.measures.values() if set(m.implementers) & set(business_types)]


@cache
def measure_catalogue() -> MeasureCatalogue:
    scenes = _load_list(CATALOGUE_DIR / "scenes.yaml", Scene)
    measures = _load_list(CATALOGUE_DIR / "measures.yaml", Measure)
    dept = _load_list(CATALOGUE_DIR / "department_measures.yaml", DepartmentMeasure)
    numbers = sorted(m.number for m in measures.values())
    if numbers != list(range(1, 14)):
        raise PolicyError(f"measures.yaml: the 13 measures must be numbered 1-13 once each, got {numbers}")
    for m in measures.values():
        for scene in m.scenes:
            if scene not in scenes:
                raise PolicyError(f"measures.yaml: {m.code}.scenes: unknown scene {scene!r}")
    for d in dept.values():
        if d.min_severity not in catalogues().severities:
            raise PolicyError(f"department_measures.yaml: {d.code}.min_severity: unknown {d.min_severity!r}")
    return MeasureCatalogue(measures, dept, scenes)


# --- the policy -----------------------------------------------------------------------------------------


class When(_Strict):
    severity: list[str] | None = None
    behaviours: list[str] | None = Field(None, description="Matches when the entry has any of these.")
    subject_kind: list[str] | None = None
    role: list[str] | None = None
    liable: bool | None = Field(None, description="True: a liable person's linked entry.")

    @model_validator(mode="after")
    def _known_codes(self) -> When:
        cat = catalogues()
        checks = [
            ("severity", self.severity, cat.severities),
            ("behaviours", self.behaviours, cat.behaviours),
            ("subject_kind", self.subject_kind, cat.subject_kinds),
            ("role", self.role, {"organizer": 1, "participant": 1, "facilitator": 1}),
        ]
        for name, values, known in checks:
            for i, v in enumerate(values or []):
                if v not in known:
                    raise ValueError(f"{name}[{i}]: unknown {name} {v!r}; one of {', '.join(known)}")
        return self


class MeasureGrant(_Strict):
    code: str
    params: dict[str, Any] = Field(default_factory=dict)
    implementers: list[BusinessType] | None = Field(
        None, description="Narrow who is instructed (never beyond the catalogue's implementers)."
    )

    @model_validator(mode="after")
    def _fits_catalogue(self) -> MeasureGrant:
        cat = measure_catalogue()
        m = cat.measures.get(self.code)
        if m is None:
            raise ValueError(f"code: unknown measure {self.code!r}")
        for name, value in self.params.items():
            if name not in m.params:
                raise ValueError(f"params.{name}: measure {self.code} has no parameter {name!r}")
            default = m.params[name].default
            if isinstance(default, int | float) and not isinstance(default, bool):
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"params.{name}: expected a number, got {value!r}")
            elif not isinstance(value, type(default)):
                raise ValueError(f"params.{name}: expected {type(default).__name__}, got {value!r}")
        for i, bt in enumerate(self.implementers or []):
            if bt not in m.implementers:
                raise ValueError(
                    f"implementers[{i}]: a {bt.value} enterprise cannot implement {self.code} "
                    f"(only {', '.join(b.value for b in m.implementers)})"
                )
        return self


class Rule(_Strict):
    when: When = Field(default_factory=When)
    measures: list[MeasureGrant] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        # `measures: [deny_new_account, …]` is short for `[{code: deny_new_account}, …]`.
        if isinstance(data, dict) and isinstance(data.get("measures"), list):
            data = {**data, "measures": [{"code": m} if isinstance(m, str) else m for m in data["measures"]]}
        return data


class Policy(_Strict):
    version: str = Field(min_length=1, max_length=50)
    description: str = ""
    rules: list[Rule] = Field(min_length=1)


@dataclass(frozen=True)
class GradedMeasure:
    code: str
    params: dict[str, Any]
    implementers: tuple[str, ...]


def merge_params(code: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two grants of one measure: each parameter takes the stricter value (catalogue `merge`)."""
    defs = measure_catalogue().measures[code].params
    out = dict(a)
    for name, value in b.items():
        if name not in out:
            out[name] = value
            continue
        how = defs[name].merge
        if how == "max":
            out[name] = max(out[name], value)
        elif how == "min":
            out[name] = min(out[name], value)
    return out


def grade(
    policy: Policy, *, severity: str, behaviours: list[str], subject_kind: str, role: str, liable: bool
) -> list[GradedMeasure]:
    """The measures an entry gets under a policy: union over matching rules, stricter parameters win."""
    cat = measure_catalogue()
    found: dict[str, GradedMeasure] = {}
    for rule in policy.rules:
        w = rule.when
        if w.severity is not None and severity not in w.severity:
            continue
        if w.behaviours is not None and not set(w.behaviours) & set(behaviours):
            continue
        if w.subject_kind is not None and subject_kind not in w.subject_kind:
            continue
        if w.role is not None and role not in w.role:
            continue
        if w.liable is not None and w.liable != liable:
            continue
        for g in rule.measures:
            m = cat.measures[g.code]
            params = {name: d.default for name, d in m.params.items()}
            params.update(g.params)
            implementers = tuple(b.value for b in (g.implementers or m.implementers))
            prev = found.get(g.code)
            if prev is not None:
                params = merge_params(g.code, prev.params, params)
                implementers = tuple(sorted(set(prev.implementers) | set(implementers)))
            found[g.code] = GradedMeasure(g.code, params, implementers)
    return sorted(found.values(), key=lambda gm: cat.measures[gm.code].number)


def parse_policy(text: str, filename: str = "policy.yaml") -> Policy:
    data, lines = load_yaml_with_lines(text, filename)
    if not isinstance(data, dict):
        raise PolicyError(f"{filename}:1: a policy is a mapping with version and rules")
    return validate_with_lines(Policy, data, filename, lines)


@cache
def default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY.read_text(encoding="utf-8"), DEFAULT_POLICY.name)
