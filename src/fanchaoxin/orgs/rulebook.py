"""Each enterprise's rulebook (企业规则): which of the 13 measures its user agreement and platform rules
let it apply, with the clause that says so or that rules it out — the one place of these rules.

Action plan 二(二): enterprises punish "according to the agreements signed with users and the rules each
enterprise has made". A measure without a rule is allowed (an enterprise that declared nothing is
instructed as before). Instructions (sanctions.service.targets) and decisions (sanctions.decide) read
`excluded_measures` / `EXCLUSIONS`; a measure its rules exclude is still instructed, as "not applicable
by its rules", never silently dropped.

The 13 measures are read from catalogues/measures.yaml here (this slice is below sanctions): a rule
names one by its code or its number (1-13).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.catalogue import CATALOGUE_DIR, read_file
from fanchaoxin.core.db import Database
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.orgs.participation_models import MeasureRule

log = logging.getLogger(__name__)

CLAUSE_MAX = 2000


@dataclass(frozen=True)
class MeasureName:
    """One of the 13 measures as a rulebook names it."""

    code: str
    number: int
    zh: str
    en: str


@cache
def measures() -> tuple[MeasureName, ...]:
    """The 13 measures of catalogues/measures.yaml, in their order (number 1-13)."""
    data, _ = read_file(CATALOGUE_DIR / "measures.yaml")
    out = [MeasureName(str(m["code"]), int(m["number"]), str(m["zh"]), str(m["en"])) for m in data]
    return tuple(sorted(out, key=lambda m: m.number))


def _by_code() -> dict[str, MeasureName]:
    return {m.code: m for m in measures()}


def measure_code(value: Any) -> str | None:
    """The code a rule names: a code, or a number 1-13 (as a number or a text); None when neither."""
    text = str(value).strip() if value is not None else ""
    by_code = _by_code()
    if text in by_code:
        return text
    if text.isdigit():
        found = next((m for m in measures() if m.number == int(text)), None)
        return found.code if found else None
    return None


def _error(field: str, message: str, type_: str, code: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"in": "body", "field": field, "type": type_, "message": message, "code": code, "params": params}


def _applicable(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold() if value is not None else ""
    if text in ("true", "yes", "1", "y", "allowed", "是", "适用", "允许"):
        return True
    if text in ("false", "no", "0", "n", "excluded", "否", "不适用", "排除"):
        return False
    return None


@dataclass(frozen=True)
class Rule:
    measure: str
    applicable: bool
    clause: str


def check_rules(rules: Iterable[Mapping[str, Any]], *, at: str = "rules") -> list[Rule]:
    """The rules of a rulebook, checked: each names one of the 13 measures (its code or number) at most
    once, says whether it is applicable, and cites its clause. Every bad field is named (`rules[3].measure`)
    in one 422."""
    out: list[Rule] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, rule in enumerate(rules):
        where = f"{at}[{n}]"
        if not isinstance(rule, Mapping):
            errors.append(_error(where, "expected an object", "type", "rulebook.bad_rule", {"row": n}))
            continue
        raw = rule.get("measure")
        code = measure_code(raw)
        if code is None:
            value = "" if raw is None else str(raw)
            known = ", ".join(m.code for m in measures())
            errors.append(
                _error(
                    f"{where}.measure",
                    f"unknown measure {value!r}: one of the 13 measures' codes ({known}) or numbers 1-13",
                    "enum",
                    "rulebook.unknown_measure",
                    {"value": value},
                )
            )
        elif code in seen:
            errors.append(
                _error(
                    f"{where}.measure",
                    f"measure {code} is already ruled at {at}[{seen[code]}]",
                    "duplicate",
                    "rulebook.duplicate_measure",
                    {"measure": code, "row": seen[code]},
                )
            )
        else:
            seen[code] = n
        applicable = _applicable(rule.get("applicable"))
        if applicable is None:
            errors.append(
                _error(
                    f"{where}.applicable",
                    "say whether the rules allow the measure: true or false",
                    "bool",
                    "rulebook.applicable_required",
                    {},
                )
            )
        clause = str(rule.get("clause") or "").strip()
        if not clause:
            errors.append(
                _error(
                    f"{where}.clause",
                    "cite the clause of the user agreement or platform rules that allows or excludes it",
                    "missing",
                    "rulebook.clause_required",
                    {},
                )
            )
        elif len(clause) > CLAUSE_MAX:
            errors.append(
                _error(
                    f"{where}.clause",
                    f"at most {CLAUSE_MAX} characters",
                    "too_long",
                    "rulebook.clause_too_long",
                    {"max": CLAUSE_MAX},
                )
            )
        if code is not None and applicable is not None and clause and len(clause) <= CLAUSE_MAX:
            out.append(Rule(code, applicable, clause))
    if errors:
        first = errors[0]
        raise ValidationProblem(
            f"Invalid rulebook: {first['field']}: {first['message']}",
            code=first["code"],
            params=first["params"],
            errors=errors,
        )
    return out


def _check_enterprise(org: Organisation) -> None:
    if org.kind != OrgKind.enterprise.value:
        raise ValidationProblem(
            "Only an enterprise has a rulebook: the measures are applied by participating enterprises",
            code="rulebook.not_enterprise",
            params={"kind": org.kind},
            errors=[
                _error("org_id", "not an enterprise", "kind", "rulebook.not_enterprise", {"kind": org.kind})
            ],
        )


def rulebook_of(session: Session, org: Organisation) -> list[MeasureRule]:
    """The enterprise's rules, in the measures' order (a measure without a rule is allowed)."""
    order = {m.code: m.number for m in measures()}
    rows = session.scalars(select(MeasureRule).where(MeasureRule.owner_org_id == org.id)).all()
    return sorted(rows, key=lambda r: (order.get(r.measure, 99), r.measure))


def _snapshot(rows: Iterable[MeasureRule | Rule]) -> list[dict[str, Any]]:
    return [{"measure": r.measure, "applicable": r.applicable, "clause": r.clause} for r in rows]


def set_rulebook(
    session: Session, actor: Actor, org: Organisation, rules: Iterable[Mapping[str, Any]]
) -> list[MeasureRule]:
    """Replace the enterprise's whole rulebook with `rules` (nothing is written unless every rule is
    good). Instructions already issued are not re-issued: a new rulebook counts from the next
    publication or correction, and for decisions within `EXCLUSIONS.ttl` seconds."""
    _check_enterprise(org)
    checked = check_rules(list(rules))
    before = _snapshot(rulebook_of(session, org))
    session.execute(delete(MeasureRule).where(MeasureRule.owner_org_id == org.id))
    session.flush()
    for r in checked:
        session.add(
            MeasureRule(
                owner_org_id=org.id,
                measure=r.measure,
                applicable=r.applicable,
                clause=r.clause,
                updated_by=actor.name,
            )
        )
    session.flush()
    after = rulebook_of(session, org)
    audit.record(
        session,
        actor,
        "rulebook.set",
        "organisation",
        org.id,
        before=before,
        after=_snapshot(after),
        detail={"excluded": sorted(r.measure for r in checked if not r.applicable)},
    )
    EXCLUSIONS.invalidate(org.id)
    return after


def set_rule(
    session: Session, actor: Actor, org: Organisation, *, measure: Any, applicable: Any, clause: str
) -> list[MeasureRule]:
    """Set the rule of one measure, keeping the others (the rulebook is replaced as a whole)."""
    code = measure_code(measure)
    rules = [_snapshot([r])[0] for r in rulebook_of(session, org) if r.measure != code]
    return set_rulebook(
        session, actor, org, [*rules, {"measure": measure, "applicable": applicable, "clause": clause}]
    )


def excluded_measures(
    session: Session, org_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, dict[str, str]]:
    """Organisation → measure → clause, of every measure a rulebook excludes (one query). `org_ids`:
    those organisations only (an organisation without exclusions is absent)."""
    stmt = select(MeasureRule.owner_org_id, MeasureRule.measure, MeasureRule.clause).where(
        MeasureRule.applicable.is_(False)
    )
    if org_ids is not None:
        ids = list(org_ids)
        if not ids:
            return {}
        stmt = stmt.where(MeasureRule.owner_org_id.in_(ids))
    out: dict[uuid.UUID, dict[str, str]] = {}
    for org_id, measure, clause in session.execute(stmt):
        out.setdefault(org_id, {})[measure] = clause
    return out


def exclusions(session: Session) -> list[dict[str, Any]]:
    """Every exclusion, for the platform: which enterprise cannot apply which measure, and why."""
    excluded = excluded_measures(session)
    if not excluded:
        return []
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(list(excluded))))}
    by_code = _by_code()
    out = []
    for org_id, rules in excluded.items():
        org = orgs[org_id]
        for code, clause in rules.items():
            m = by_code.get(code)
            out.append(
                {
                    "org_id": str(org_id),
                    "org_name": org.name,
                    "org_name_en": org.name_en,
                    "measure": code,
                    "number": m.number if m else None,
                    "measure_zh": m.zh if m else code,
                    "measure_en": m.en if m else code,
                    "clause": clause,
                }
            )
    out.sort(key=lambda r: (r["org_name"], r["number"] or 99))
    return out


class ExclusionCache:
    """The measures each enterprise's rules exclude, per process, for decisions (hot: no database round
    trip on a hit). An entry lives `ttl` seconds; `set_rulebook` forgets its organisation at once in this
    process, other processes within `ttl`. While the database is unreachable the last known value is
    kept (decisions go on answering from memory)."""

    def __init__(self, ttl: float = 10.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[uuid.UUID, tuple[float, Mapping[str, str]]] = {}

    def cached(self, org_id: uuid.UUID) -> Mapping[str, str] | None:
        """The excluded measures (code → clause) if known and fresh; None to `load` them."""
        found = self._entries.get(org_id)
        if found is None or found[0] < self._clock():
            return None
        return found[1]

    def load(self, database: Database, org_id: uuid.UUID) -> Mapping[str, str]:
        try:
            with database.session() as session:
                value: Mapping[str, str] = excluded_measures(session, [org_id]).get(org_id, {})
        except SQLAlchemyError:
            log.warning("rulebook of %s unreadable; decisions use the last known one", org_id)
            stale = self._entries.get(org_id)
            return stale[1] if stale is not None else {}
        with self._lock:
            if len(self._entries) > 100_000:
                self._entries.clear()
            self._entries[org_id] = (self._clock() + self.ttl, value)
        return value

    def invalidate(self, org_id: uuid.UUID | None = None) -> None:
        with self._lock:
            if org_id is None:
                self._entries.clear()
            else:
                self._entries.pop(org_id, None)


EXCLUSIONS = ExclusionCache()
