"""The 基础清单 (全国失信惩戒措施基础清单) as it applies here, and the check that a policy keeps to it.

`catalogues/basic_list.yaml` has one item per measure — the 13 enterprise measures and every department
measure — with the document and clause it rests on and what it may be used for: the severities (the
action plan keeps measures 3, 10, 11, 12 and 13, and every department measure, for serious cases), the
bases of the entries (department measures: an administrative penalty or a judicial decision) and, where
the measure fits only some, the kinds of subject. Punishment stays proportionate (过惩相当,
国办发〔2020〕49号):

- `check_policy` refuses a grading policy that grants a measure beyond its item, naming the file, the
  line, the key and the rule it breaks (`fcx policy check`, `fcx policy load`, `POST /v1/policies`);
- departments are instructed only within it (sanctions.competence).

Loaded by the one catalogue loader (core.catalogue) and cross-checked against the measure catalogues
and the kinds of department when first used; an error names the file, the line and the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, model_validator

from fanchaoxin.core.catalogue import (
    CATALOGUE_DIR,
    Basis,
    CatalogueError,
    Label,
    catalogues,
    load_list,
    locate,
    punishing_bases,
    read_yaml,
)
from fanchaoxin.orgs.department_kinds import DepartmentKind, department_kinds
from fanchaoxin.sanctions.policy import DepartmentMeasure, Policy, measure_catalogue, parse_policy

BASIC_LIST = CATALOGUE_DIR / "basic_list.yaml"
DEPARTMENT_MEASURES = CATALOGUE_DIR / "department_measures.yaml"


class BasicListItem(Label):
    """One measure of the 基础清单: its source and what it may be used for. Its names are the measure's."""

    source: str = Field(min_length=1, description="The document and clause, e.g. 行动计划 二(二)3.")
    severities: tuple[str, ...] = Field(min_length=1)
    bases: tuple[Basis, ...] = Field(min_length=1)
    subject_kinds: tuple[str, ...] | None = Field(None, min_length=1, description="Left out: every kind.")

    @model_validator(mode="before")
    @classmethod
    def _the_measures_names(cls, data: Any, info: ValidationInfo) -> Any:
        # One place for a measure's names: the measure catalogues; the list only says what it is for.
        names: Mapping[str, tuple[str, str]] | None = (info.context or {}).get("names")
        if names is None or not isinstance(data, dict) or not isinstance(data.get("code"), str):
            return data
        code = data["code"]
        if code not in names:
            raise ValueError(f"code: unknown measure {code!r} (measures.yaml, department_measures.yaml)")
        for field in ("zh", "en"):
            if field in data:
                raise ValueError(f"{field}: the names are the measure's own; give them in its catalogue")
        zh, en = names[code]
        return {**data, "zh": zh, "en": en}

    @model_validator(mode="after")
    def _known_codes(self) -> BasicListItem:
        cat = catalogues()
        for name, values, known in (
            ("severities", self.severities, cat.severities),
            ("subject_kinds", self.subject_kinds or (), cat.subject_kinds),
        ):
            for i, v in enumerate(values):
                if v not in known:
                    raise ValueError(f"{name}[{i}]: unknown code {v!r}; one of {', '.join(known)}")
                if v in values[:i]:
                    raise ValueError(f"{name}[{i}]: {v!r} is listed twice")
        return self

    def allows(self, *, severity: str, basis: str, subject_kind: str) -> bool:
        """Whether the measure may be used for an entry of this severity, basis and kind of subject."""
        return (
            severity in self.severities
            and basis in self.bases
            and (self.subject_kinds is None or subject_kind in self.subject_kinds)
        )

    def refusal(
        self, *, severities: Sequence[str], bases: Sequence[str], subject_kinds: Sequence[str]
    ) -> str | None:
        """Why granting the measure to entries of any of these severities, bases and kinds of subject
        goes beyond the list (the first reason), or None when it stays within."""
        why = f"({self.source}; 基础清单)"
        outside = [s for s in severities if s not in self.severities]
        if outside:
            return (
                f"{self.code} is for {', '.join(self.severities)} cases only {why}; "
                f"this rule also matches {', '.join(outside)}"
            )
        outside = [b for b in bases if b not in self.bases]
        if outside:
            return (
                f"{self.code} is for entries on {', '.join(self.bases)} only {why}; "
                f"this rule also matches {', '.join(outside)}"
            )
        if self.subject_kinds is not None:
            outside = [k for k in subject_kinds if k not in self.subject_kinds]
            if outside:
                return (
                    f"{self.code} is for {', '.join(self.subject_kinds)} subjects only {why}; "
                    f"this rule also matches {', '.join(outside)}"
                )
        return None


@dataclass(frozen=True)
class BasicList:
    """The items of the 基础清单 by measure code (enterprise and department measures)."""

    items: dict[str, BasicListItem]

    def allows(self, code: str, *, severity: str, basis: str, subject_kind: str) -> bool:
        item = self.items.get(code)
        return item is not None and item.allows(severity=severity, basis=basis, subject_kind=subject_kind)


def load_basic_list(
    path: Path = BASIC_LIST,
    *,
    department_measures: Path = DEPARTMENT_MEASURES,
    kinds: Mapping[str, DepartmentKind] | None = None,
) -> BasicList:
    """The list, cross-checked: exactly one item per measure and department measure; department measures
    for punishing bases only, triggered at no severity the list excludes, by known kinds of department."""
    dept = load_list(department_measures, DepartmentMeasure)
    names = {code: (m.zh, m.en) for code, m in measure_catalogue().measures.items()}
    names |= {code: (d.zh, d.en) for code, d in dept.items.items()}
    listed = load_list(path, BasicListItem, context={"names": names})
    missing = [code for code in names if code not in listed.items]
    if missing:
        raise CatalogueError(
            f"{path.name}:1: (top): no item for {', '.join(map(repr, missing))} "
            "(every measure and department measure has exactly one)"
        )
    rank = list(catalogues().severities)
    kinds = department_kinds() if kinds is None else kinds
    for code, measure in dept.items.items():
        item = listed.items[code]
        not_punishing = [b.value for b in item.bases if b not in punishing_bases()]
        if not_punishing:
            raise listed.error(
                code,
                "bases",
                f"a department measure is for entries on a punishing basis only (行动计划 二(一); "
                f"bases.yaml), not {', '.join(not_punishing)}",
            )
        beyond = [s for s in rank[rank.index(measure.min_severity) :] if s not in item.severities]
        if beyond:
            raise dept.error(
                code,
                "min_severity",
                f"{measure.min_severity} gives it to {', '.join(beyond)} cases, which the basic list does "
                f"not ({path.name}: {code} is for {', '.join(item.severities)} only)",
            )
        for kind in measure.department_kinds:
            if kind not in kinds:
                raise dept.error(
                    code,
                    "department_kinds",
                    f"unknown department kind {kind!r}; one of {', '.join(kinds)} (department_kinds.yaml)",
                )
    return BasicList(listed.items)


@cache
def basic_list() -> BasicList:
    """The shipped 基础清单, cross-checked against the shipped catalogues."""
    return load_basic_list()


def check_policy(policy: Policy, text: str, filename: str) -> None:
    """Refuse a policy (parsed from `text`) that grants a measure beyond the 基础清单.

    A condition a rule leaves out matches every value: a rule with no `severity` grants its measures at
    every severity, so granting restrict_listings without `severity: [serious]` is refused; the same
    for the kinds of subject. A rule cannot narrow by basis, so a measure whose item excludes a basis
    cannot be granted at all. The error is a CatalogueError naming the file, the line, the key and the
    rule it breaks, e.g. `policy.yaml:9: rules[1].measures[4]: restrict_listings is for serious cases
    only (行动计划 二(二)3; 基础清单); this rule also matches general`.
    """
    _, lines = read_yaml(text, filename)
    cat = catalogues()
    items = basic_list().items
    for i, rule in enumerate(policy.rules):
        when = rule.when
        severities = when.severity if when.severity is not None else list(cat.severities)
        subject_kinds = when.subject_kind if when.subject_kind is not None else list(cat.subject_kinds)
        for j, grant in enumerate(rule.measures):
            refusal = items[grant.code].refusal(
                severities=severities, bases=list(cat.bases), subject_kinds=subject_kinds
            )
            if refusal is not None:
                raise CatalogueError(f"{locate(filename, lines, ('rules', i, 'measures', j))}: {refusal}")


def checked_policy(text: str, filename: str) -> Policy:
    """A policy file's text → the policy, valid and within the 基础清单 (else a CatalogueError)."""
    policy = parse_policy(text, filename)
    check_policy(policy, text, filename)
    return policy
