"""The grading policy (分级惩戒规则) as people read it: which measures an entry gets by severity and
behaviour, with their parameters; the department measures of the public list; the versions loaded.

Nothing here decides a measure: every cell is what `sanctions.policy.grade` gives an entry of that
severity and behaviour under the active policy (for each kind of subject and role, so that a measure
given to some kinds only says so), and what `sanctions.competence` instructs the departments of each
kind for an entry of the public list. The page shows what the engine would do, not a second copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import READERS, console_router
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.labels import label
from fanchaoxin.console.web import locale_of, render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.catalogue import catalogues, punishing_bases
from fanchaoxin.orgs.department_kinds import department_kinds
from fanchaoxin.sanctions import competence
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.policy import ROLES, Policy, default_policy, grade, measure_catalogue

router = console_router()

# The measures' parameters (measures.yaml `params`) as the page names them.
PARAM = {
    "max_new_listings_per_day": N_("at most {value} new listings a day"),
    "points": N_("{value} points"),
    "levels": N_("{value} level(s) down"),
    "credit_line_factor": N_("credit line × {value}"),
    "rate_markup_percent": N_("price +{value}%"),
    "search_demotion_factor": N_("search ranking × {value}"),
    "label_zh": N_("label: “{value}”"),
    "label_en": N_("label: “{value}”"),
}
# Lists and brackets as each language writes them.
PUNCT = {
    "zh": {"sep": "、", "semi": "；", "lp": "（", "rp": "）"},
    "en": {"sep": ", ", "semi": "; ", "lp": "(", "rp": ")"},
}
# A parameter with no value is one the finding supplies (measure 5: the points gained by brushing).
FROM_FINDING = N_("as the finding establishes")
# Which of the two risk labels the reader is shown: the one in the page's language.
_LABEL_PARAM = {"zh_CN": "label_zh", "en": "label_en"}


@dataclass
class Granted:
    """One measure in a cell: its name and parameters, and the kinds of subject / roles it is for when
    not for every one."""

    number: int
    name: str
    params: list[str]
    only_kinds: list[str] = field(default_factory=list)
    only_roles: list[str] = field(default_factory=list)
    by: list[str] = field(default_factory=list)  # department measures: the kinds of department


def _param_text(name: str, value: Any, locale: str) -> str | None:
    _ = translator(locale)
    if name.startswith("label_") and name != _LABEL_PARAM.get(locale, "label_zh"):
        return None
    if value is None:
        return _(FROM_FINDING) if name == "points" else None
    template = PARAM.get(name)
    shown = value if not isinstance(value, float) or not value.is_integer() else int(value)
    return _(template).format(value=shown) if template else None


def _cell(policy: Policy, severity: str, behaviour: str, *, liable: bool, locale: str) -> list[Granted]:
    """The measures `grade` gives an entry of this severity and behaviour, over every kind and role."""
    cat = measure_catalogue()
    kinds = list(catalogues().subject_kinds)
    seen: dict[str, tuple[dict[str, Any], set[tuple[str, str]]]] = {}
    for kind in kinds:
        for role in ROLES:
            for gm in grade(
                policy, severity=severity, behaviours=[behaviour], subject_kind=kind, role=role, liable=liable
            ):
                seen.setdefault(gm.code, (gm.params, set()))[1].add((kind, role))
    out = []
    for code, (params, combos) in seen.items():
        m = cat.measures[code]
        got_kinds = [k for k in kinds if any((k, r) in combos for r in ROLES)]
        got_roles = [r for r in ROLES if any((k, r) in combos for k in kinds)]
        texts = [t for n, v in params.items() if (t := _param_text(n, v, locale))]
        out.append(
            Granted(
                m.number,
                m.text(locale),
                texts,
                [label("subject_kind", k, locale) for k in got_kinds] if len(got_kinds) < len(kinds) else [],
                [label("entry_role", r, locale) for r in got_roles] if len(got_roles) < len(ROLES) else [],
            )
        )
    return sorted(out, key=lambda g: g.number)


def _department_cell(severity: str, behaviour: str, bases: list[str], locale: str) -> list[Granted]:
    """What `sanctions.competence` instructs the departments of each kind for such an entry."""
    cat = measure_catalogue()
    by: dict[str, set[str]] = {}
    for kind_code in department_kinds():
        dept = SimpleNamespace(department_kind=kind_code)
        for basis in bases:
            for subject_kind in catalogues().subject_kinds:
                entry = SimpleNamespace(
                    severity=severity,
                    basis=basis,
                    behaviours=[behaviour],
                    subject=SimpleNamespace(kind=subject_kind),
                )
                for code in competence.department_measures(dept, entry):  # type: ignore[arg-type]
                    by.setdefault(code, set()).add(kind_code)
    order = list(cat.department_measures)
    kinds = department_kinds()
    return [
        Granted(
            order.index(code) + 1,
            cat.department_measures[code].text(locale),
            [],
            by=[kinds[k].text(locale) for k in kinds if k in who],
        )
        for code, who in sorted(by.items(), key=lambda kv: order.index(kv[0]))
    ]


def _rows(cells: dict[str, list[list[Granted]]]) -> list[dict[str, Any]]:
    """One row per severity; a row whose every behaviour gets the same measures is one merged cell."""
    return [
        {"severity": sev, "cells": row, "same": all(c == row[0] for c in row)} for sev, row in cells.items()
    ]


def policy_matrix(policy: Policy, locale: str) -> dict[str, Any]:
    """severity × behaviour → measures, for entries and for liable persons; department measures by list."""
    cat = catalogues()
    severities, behaviours = list(cat.severities), list(cat.behaviours)
    lists = []
    for list_code, item in cat.lists.items():
        bases = sorted(
            b for b, basis in cat.bases.items() if basis.list == list_code and b in punishing_bases()
        )
        rows = (
            _rows({s: [_department_cell(s, b, bases, locale) for b in behaviours] for s in severities})
            if bases
            else []
        )
        lists.append({"code": list_code, "name": item.text(locale), "bases": bases, "rows": rows})
    return {
        "severities": severities,
        "behaviours": behaviours,
        "entries": _rows(
            {s: [_cell(policy, s, b, liable=False, locale=locale) for b in behaviours] for s in severities}
        ),
        "liable": _rows(
            {s: [_cell(policy, s, b, liable=True, locale=locale) for b in behaviours] for s in severities}
        ),
        "lists": lists,
    }


@router.get("/policy")
def policy_view(request: Request, session: Session = DB, principal: Principal = page(*READERS)) -> Response:
    locale = locale_of(request)
    versions = sanctions.policy_versions(session)
    policy = sanctions.active_policy(session)
    cat = measure_catalogue()
    return render(
        request,
        "policy.html",
        versions=versions,
        active=next((v for v in versions if v.active), None),
        policy=policy,
        builtin=default_policy(),
        matrix=policy_matrix(policy, locale),
        punct=PUNCT["zh" if locale == "zh_CN" else "en"],
        measures=sorted(cat.measures.values(), key=lambda m: m.number),
        department_measures=list(cat.department_measures.values()),
    )
