"""The measure catalogues and the grading policy, as validated YAML (the policy is versioned).

Read with the platform's one catalogue loader (core.catalogue): errors name the file, the line and the
key, e.g. `policy.yaml:14: rules[2].measures[0].code: unknown measure 'deny_everything'`, so an operator
can fix a policy before loading it (`fcx policy check FILE`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from fanchaoxin.core.catalogue import (
    CATALOGUE_DIR,
    CatalogueError,
    Label,
    Strict,
    catalogues,
    load_list,
    read_yaml,
    validate,
)
from fanchaoxin.core.roles import BusinessType

DEFAULT_POLICY = CATALOGUE_DIR / "policies" / "default.yaml"

# The one error of every catalogue and policy file (core.catalogue); the name callers know it by here.
PolicyError = CatalogueError


# --- catalogues of measures and scenes ----------------------------------------------------------------


class Text(Strict):
    zh: str
    en: str


class ParamDef(Strict):
    default: Any
    merge: Literal["max", "min", "first"] = "first"


class Scene(Label):
    """Where an enterprise asks decide(subject, scene)."""


class Measure(Label):
    """One of the 13 joint punishment measures (联合惩戒措施)."""

    number: int = Field(ge=1, le=13)
    implementers: tuple[BusinessType, ...] = Field(min_length=1)
    scenes: dict[str, Literal["deny", "restrict"]]
    params: dict[str, ParamDef] = Field(default_factory=dict)
    lift: Text

    @field_validator("scenes")
    @classmethod
    def _known_scenes(
        cls, v: dict[str, Literal["deny", "restrict"]], info: ValidationInfo
    ) -> dict[str, Literal["deny", "restrict"]]:
        known = (info.context or {}).get("scenes")
        for scene in v:
            if known is not None and scene not in known:
                raise ValueError(f"{scene}: unknown scene {scene!r} (scenes.yaml)")
        return v


class DepartmentMeasure(Label):
    """A measure departments apply under the memoranda to entries on a punishing basis."""

    min_severity: str

    @field_validator("min_severity")
    @classmethod
    def _known_severity(cls, v: str) -> str:
        known = catalogues().severities
        if v not in known:
            raise ValueError(f"unknown severity {v!r}; one of {', '.join(known)}")
        return v


@dataclass(frozen=True)
class MeasureCatalogue:
    measures: dict[str, Measure]
    department_measures: dict[str, DepartmentMeasure]
    scenes: dict[str, Scene]

    def implementable_by(self, business_types: frozenset[str] | set[str]) -> list[Measure]:
        return [m for m in self.measures.values() if set(m.implementers) & set(business_types)]


@cache
def measure_catalogue() -> MeasureCatalogue:
    scenes = load_list(CATALOGUE_DIR / "scenes.yaml", Scene).items
    measures = load_list(CATALOGUE_DIR / "measures.yaml", Measure, context={"scenes": scenes})
    dept = load_list(CATALOGUE_DIR / "department_measures.yaml", DepartmentMeasure).items
    first: dict[int, str] = {}
    for m in measures.items.values():
        if m.number in first:
            raise measures.error(m.code, "number", f"{m.number} is also {first[m.number]}'s number")
        first[m.number] = m.code
    if sorted(first) != list(range(1, 14)):
        raise CatalogueError(
            f"measures.yaml:1: (top): the 13 measures must be numbered 1-13 once each, got {sorted(first)}"
        )
    return MeasureCatalogue(measures.items, dept, scenes)


# --- the policy -----------------------------------------------------------------------------------------


class When(Strict):
    severity: list[str] | None = None
    behaviours: list[str] | None = Field(None, description="Matches when the entry has any of these.")
    subject_kind: list[str] | None = None
    role: list[str] | None = None
    liable: bool | None = Field(None, description="True: a liable person's linked entry.")

    @model_validator(mode="after")
    def _known_codes(self) -> When:
        cat = catalogues()
        checks: list[tuple[str, list[str] | None, Collection[str]]] = [
            ("severity", self.severity, cat.severities.keys()),
            ("behaviours", self.behaviours, cat.behaviours.keys()),
            ("subject_kind", self.subject_kind, cat.subject_kinds.keys()),
            ("role", self.role, ("organizer", "participant", "facilitator")),
        ]
        for name, values, known in checks:
            for i, v in enumerate(values or []):
                if v not in known:
                    raise ValueError(f"{name}[{i}]: unknown {name} {v!r}; one of {', '.join(known)}")
        return self


class MeasureGrant(Strict):
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


class Rule(Strict):
    when: When = Field(default_factory=When)
    measures: list[MeasureGrant] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        # `measures: [deny_new_account, …]` is short for `[{code: deny_new_account}, …]`.
        if isinstance(data, dict) and isinstance(data.get("measures"), list):
            data = {**data, "measures": [{"code": m} if isinstance(m, str) else m for m in data["measures"]]}
        return data


class Policy(Strict):
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
    """A policy file's text → the policy; a CatalogueError (PolicyError) names file, line and key."""
    data, lines = read_yaml(text, filename)
    if not isinstance(data, dict):
        raise CatalogueError(f"{filename}:1: (top): a policy is a mapping with version and rules")
    return validate(Policy, data, filename, lines)


@cache
def default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY.read_text(encoding="utf-8"), DEFAULT_POLICY.name)
