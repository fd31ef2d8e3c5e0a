"""The measure catalogues and the grading policy, as validated YAML (the policy is versioned).

Read with the platform's one catalogue loader (core.catalogue): errors name the file, the line and the
key, e.g. `policy.yaml:14: rules[2].measures[0].code: unknown measure 'deny_everything'`, so an operator
can fix a policy before loading it (`fcx policy check FILE`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
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


Effect = Literal["deny", "restrict"]
_STRENGTH: dict[str, int] = {"restrict": 1, "deny": 2}

# What a finding establishes at submission (the entry's gains, blacklist.schemas.GainsIn) that a
# parameter may be taken from.
FindingGain = Literal["points_gained", "brushed_orders"]

# The roles a subject plays in 炒信 (blacklist.schemas.Role).
ROLES = ("organizer", "participant", "facilitator")

# Who among a measure's implementers an action is addressed to (measure 11): `employer`, the courier
# company whose USCC the subject's courier_staff identifier carries (用人单位); `peers`, every other one
# (同业其他企业).
Audience = Literal["employer", "peers"]


class ParamDef(Strict):
    default: Any = None
    merge: Literal["max", "min", "first"] = "first"
    from_finding: tuple[FindingGain, ...] = Field(
        default=(), description="Taken from the finding's gains (the first one given), never from a policy."
    )


class Scene(Label):
    """Where an enterprise asks decide(subject, scene)."""


class FeedbackField(Strict):
    """A fact the addressee confirms when it reports an action executed (执行反馈), e.g. 已予以标识."""

    field: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["bool", "int", "str", "date"]
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class ActionWhen(Strict):
    """When an action of a measure applies to an entry (a missing condition matches anything)."""

    severity: list[str] | None = None
    behaviours: list[str] | None = Field(None, description="Matches when the entry has any of these.")
    subject_kind: list[str] | None = None
    role: list[str] | None = Field(None, description="The subject's part: organizer, participant, …")

    @model_validator(mode="after")
    def _known_codes(self) -> ActionWhen:
        cat = catalogues()
        checks: list[tuple[str, list[str] | None, Collection[str]]] = [
            ("severity", self.severity, cat.severities.keys()),
            ("behaviours", self.behaviours, cat.behaviours.keys()),
            ("subject_kind", self.subject_kind, cat.subject_kinds.keys()),
            ("role", self.role, ROLES),
        ]
        for name, values, known in checks:
            for i, v in enumerate(values or []):
                if v not in known:
                    raise ValueError(f"{name}[{i}]: unknown {name} {v!r}; one of {', '.join(known)}")
        return self

    def matches(self, *, severity: str, behaviours: Collection[str], subject_kind: str, role: str) -> bool:
        return (
            (self.severity is None or severity in self.severity)
            and (self.behaviours is None or any(b in behaviours for b in self.behaviours))
            and (self.subject_kind is None or subject_kind in self.subject_kind)
            and (self.role is None or role in self.role)
        )


class Action(Label):
    """One thing a measure has the enterprise do, in the plan's words (措施内容), e.g. 予以标识."""

    when: ActionWhen | None = None
    scenes: dict[str, Effect] = Field(default_factory=dict)
    audience: Audience | None = None
    feedback: tuple[FeedbackField, ...] = ()
    notice: Text | None = Field(None, description="A text the addressee passes on; {entry_id} is filled in.")


class Measure(Label):
    """One of the 13 joint punishment measures (联合惩戒措施), with its actions as the plan words them."""

    number: int = Field(ge=1, le=13)
    implementers: tuple[BusinessType, ...] = Field(min_length=1)
    scenes: dict[str, Effect]
    params: dict[str, ParamDef] = Field(default_factory=dict)
    lift: Text
    actions: tuple[Action, ...] = Field(min_length=1)
    audiences: dict[Audience, Text] = Field(default_factory=dict)

    @field_validator("scenes")
    @classmethod
    def _known_scenes(cls, v: dict[str, Effect], info: ValidationInfo) -> dict[str, Effect]:
        known = (info.context or {}).get("scenes")
        for scene in v:
            if known is not None and scene not in known:
                raise ValueError(f"{scene}: unknown scene {scene!r} (scenes.yaml)")
        return v

    @model_validator(mode="after")
    def _actions_fit(self) -> Measure:
        first: dict[str, int] = {}
        fields: dict[str, str] = {}
        for i, a in enumerate(self.actions):
            if a.code in first:
                raise ValueError(
                    f"actions[{i}].code: duplicate action {a.code!r} (also actions[{first[a.code]}])"
                )
            first[a.code] = i
            for scene, effect in a.scenes.items():
                if scene not in self.scenes:
                    raise ValueError(
                        f"actions[{i}].scenes.{scene}: not a scene of this measure ({', '.join(self.scenes)})"
                    )
                if _STRENGTH[effect] > _STRENGTH[self.scenes[scene]]:
                    raise ValueError(
                        f"actions[{i}].scenes.{scene}: {effect} is stronger than the measure's "
                        f"{self.scenes[scene]} there"
                    )
            if a.audience is not None and a.audience not in self.audiences:
                raise ValueError(
                    f"actions[{i}].audience: {a.audience!r} is not one of the measure's audiences"
                )
            for j, f in enumerate(a.feedback):
                if f.field in fields:
                    raise ValueError(
                        f"actions[{i}].feedback[{j}].field: {f.field!r} is also confirmed for "
                        f"{fields[f.field]}"
                    )
                fields[f.field] = a.code
        for audience in self.audiences:
            if not any(a.audience == audience for a in self.actions):
                raise ValueError(f"audiences.{audience}: no action is addressed to it")
        for name, p in self.params.items():
            if p.from_finding and p.merge == "first":
                raise ValueError(f"params.{name}.merge: a value from the finding merges by max or min")
        return self

    @cached_property
    def action_by_code(self) -> dict[str, Action]:
        return {a.code: a for a in self.actions}

    @cached_property
    def action_rank(self) -> dict[str, int]:
        return {a.code: i for i, a in enumerate(self.actions)}

    @cached_property
    def claims_by_scene(self) -> dict[str, dict[str, Effect]]:
        """scene → {action: its effect there}, for the scenes some action claims."""
        out: dict[str, dict[str, Effect]] = {}
        for a in self.actions:
            for scene, effect in a.scenes.items():
                out.setdefault(scene, {})[a.code] = effect
        return out

    @cached_property
    def unclaiming_actions(self) -> frozenset[str]:
        return frozenset(a.code for a in self.actions if not a.scenes)

    def actions_for(
        self, *, severity: str, behaviours: Collection[str], subject_kind: str, role: str
    ) -> tuple[str, ...]:
        """The actions whose `when` an entry meets, in catalogue order."""
        return tuple(
            a.code
            for a in self.actions
            if a.when is None
            or a.when.matches(severity=severity, behaviours=behaviours, subject_kind=subject_kind, role=role)
        )

    def in_scene(self, scene: str, actions: Collection[str] | None) -> tuple[Effect, tuple[str, ...]] | None:
        """The measure's effect in a scene for an entry that got `actions`, and the actions it names there;
        None where the measure does nothing there for that entry.

        A scene some actions claim is in effect only through the entry's actions that claim it (measure
        2 cancels orders at order review only for order or subsidy brushing), at their strongest effect;
        another scene whenever the measure applies, naming the actions that claim no scene. `actions`
        None (an entry graded before measures named actions): every scene, a claimed one at the mildest
        effect of its claimants, since which of them applies is not known.
        """
        effect = self.scenes.get(scene)
        if effect is None:
            return None
        claims = self.claims_by_scene.get(scene)
        if actions is None:
            return (min(claims.values(), key=_STRENGTH.__getitem__) if claims else effect), ()
        if claims:
            here = [a for a in self.actions if a.code in claims and a.code in actions]
            if not here:
                return None
            strongest = max((claims[a.code] for a in here), key=_STRENGTH.__getitem__)
            return strongest, tuple(a.code for a in here)
        unclaiming = self.unclaiming_actions
        return effect, tuple(a.code for a in self.actions if a.code in unclaiming and a.code in actions)

    def feedback_for(self, actions: Collection[str]) -> list[FeedbackField]:
        """What the addressee of an instruction naming `actions` confirms when it reports it executed."""
        return [f for a in self.actions if a.code in actions for f in a.feedback]

    def finding_params(self, gains: Mapping[str, Any] | None) -> dict[str, Any]:
        """The parameters taken from the finding: the first of each one's gains that was given, else
        its default (null: the enterprise applies what its own records show)."""
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if p.from_finding:
                given = [gains[g] for g in p.from_finding if gains and gains.get(g) is not None]
                out[name] = given[0] if given else p.default
        return out


class DepartmentMeasure(Label):
    """A measure departments apply under the memoranda (失信联合惩戒合作备忘录) to serious entries on a
    punishing basis, each by the kinds of department that implement it (sanctions.competence)."""

    min_severity: str
    department_kinds: tuple[str, ...] = Field(
        min_length=1, description="Kinds of department (department_kinds.yaml) that implement it."
    )
    memorandum: str = Field(min_length=1, description="The document the measure comes from.")

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
    return load_measure_catalogue(CATALOGUE_DIR)


def load_measure_catalogue(directory: Path) -> MeasureCatalogue:
    """The measure catalogues of `directory`, cross-checked (scenes known, actions fit their measure,
    measures numbered 1-13 once); errors name the file, the line and the key."""
    scenes = load_list(directory / "scenes.yaml", Scene).items
    measures = load_list(directory / "measures.yaml", Measure, context={"scenes": scenes})
    dept = load_list(directory / "department_measures.yaml", DepartmentMeasure).items
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
    actions: list[str] | None = Field(
        None,
        min_length=1,
        description="The measure's actions to name, instead of those whose catalogue `when` the entry meets.",
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
            if m.params[name].from_finding:
                raise ValueError(
                    f"params.{name}: taken from the finding ({', '.join(m.params[name].from_finding)}); "
                    "a policy cannot fix it"
                )
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
        for i, code in enumerate(self.actions or []):
            if code not in m.action_by_code:
                raise ValueError(
                    f"actions[{i}]: measure {self.code} has no action {code!r}; "
                    f"one of {', '.join(m.action_by_code)}"
                )
        if self.actions is not None and len(set(self.actions)) != len(self.actions):
            raise ValueError("actions: an action is named twice")
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
    actions: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """As the entry keeps it (`Entry.measures`) and the feed carries it to the nodes."""
        return {
            "code": self.code,
            "params": self.params,
            "implementers": list(self.implementers),
            "actions": list(self.actions),
        }


def merge_params(code: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two grants of one measure: each parameter takes the stricter value (catalogue `merge`).

    A null value (measure 5's points where the finding gave no number: all the points gained by
    brushing, as the enterprise's records show) has no ceiling: it wins a `max` and yields to a `min`.
    """
    defs = measure_catalogue().measures[code].params
    out = dict(a)
    for name, value in b.items():
        if name not in out:
            out[name] = value
            continue
        how = defs[name].merge
        mine = out[name]
        if how == "max":
            out[name] = None if mine is None or value is None else max(mine, value)
        elif how == "min":
            out[name] = value if mine is None else mine if value is None else min(mine, value)
    return out


def grade(
    policy: Policy,
    *,
    severity: str,
    behaviours: list[str],
    subject_kind: str,
    role: str,
    liable: bool,
    gains: Mapping[str, Any] | None = None,
) -> list[GradedMeasure]:
    """The measures an entry gets under a policy: union over matching rules, stricter parameters win.

    Each measure names its actions: those a grant names, else those whose catalogue `when` the entry
    meets (measure 2 deletes a serious subject's accounts, blocks a minor one's). Parameters taken from
    the finding come from `gains` (what it established at submission, `Entry.gains`); a liable person's
    linked entry takes none from its unit's finding.
    """
    cat = measure_catalogue()
    finding = None if liable else gains
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
            params.update(m.finding_params(finding))
            implementers = tuple(b.value for b in (g.implementers or m.implementers))
            actions = set(
                g.actions
                if g.actions is not None
                else m.actions_for(
                    severity=severity, behaviours=behaviours, subject_kind=subject_kind, role=role
                )
            )
            prev = found.get(g.code)
            if prev is not None:
                params = merge_params(g.code, prev.params, params)
                implementers = tuple(sorted(set(prev.implementers) | set(implementers)))
                actions |= set(prev.actions)
            ordered = tuple(sorted(actions, key=m.action_rank.__getitem__))
            found[g.code] = GradedMeasure(g.code, params, implementers, ordered)
    # A measure none of whose actions applies to the entry does nothing for it.
    kept = [gm for gm in found.values() if gm.actions]
    return sorted(kept, key=lambda gm: cat.measures[gm.code].number)


def parse_policy(text: str, filename: str = "policy.yaml") -> Policy:
    """A policy file's text → the policy; a CatalogueError (PolicyError) names file, line and key."""
    data, lines = read_yaml(text, filename)
    if not isinstance(data, dict):
        raise CatalogueError(f"{filename}:1: (top): a policy is a mapping with version and rules")
    return validate(Policy, data, filename, lines)


@cache
def default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY.read_text(encoding="utf-8"), DEFAULT_POLICY.name)
