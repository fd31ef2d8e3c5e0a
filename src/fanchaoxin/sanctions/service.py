"""Grading, instructions, feedback and lifting — the one place these rules live.

Publishing an entry grades it under the active policy and sends every participating enterprise the
instructions its business types can carry out (never one it cannot). Departments get the memoranda
measures for entries resting on a punishing basis (bases.yaml: an administrative penalty or a
judicial decision). One rule, `targets`, says who is instructed what: publication issues it, and a
correction re-issues the difference (`reissue_instructions`). Revocation, expiry and repair send lift
instructions for everything that was applied. The instructions of one step go in one INSERT.

An enterprise's rulebook (orgs.rulebook) may exclude a measure its business types could implement: it is
still instructed, as "not applicable by its rules" (`EXCLUDED_BY_RULES`, final at issue with the clause
as its reason, never overdue, never lifted), never silently dropped. A later change of the rulebook does
not re-issue past instructions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import NonNegativeInt, StringConstraints, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import insert, not_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from fanchaoxin.core.identifiers import IdentifierType
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import can_see, scoped
from fanchaoxin.orgs import agreements, rulebook
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import competence, receipts
from fanchaoxin.sanctions.basic_list import checked_policy
from fanchaoxin.sanctions.models import Instruction, PolicyVersion
from fanchaoxin.sanctions.policy import (
    Policy,
    default_policy,
    grade,
    measure_catalogue,
    parse_policy,
)
from fanchaoxin.sharing.protocol import ExecutionReceipt

OUTCOMES = ("executed", "not_applicable", "failed")
# An instruction the addressee's rulebook excludes (依其规则不适用): issued final, with the clause as its
# reason. (16 characters: the width of Instruction.status/outcome.)
EXCLUDED_BY_RULES = "excluded_by_rule"
# Outcomes after which nothing is reported again and nothing is lifted.
FINAL_OUTCOMES = ("executed", "not_applicable", EXCLUDED_BY_RULES)
# Every status an instruction can have.
STATUSES = ("pending", "acknowledged", *OUTCOMES, EXCLUDED_BY_RULES)


# --- policy ---------------------------------------------------------------------------------------------

# Parsed policies by (version, source): a version names one text in one database, but a process may
# serve several (tests, a restored backup), so the text is part of the key.
_policy_cache: dict[tuple[str, str], Policy] = {}


def active_policy(session: Session) -> Policy:
    row = session.scalar(select(PolicyVersion).where(PolicyVersion.active.is_(True)))
    if row is None:
        return default_policy()
    key = (row.version, row.source)
    cached = _policy_cache.get(key)
    if cached is None:
        cached = _policy_cache[key] = parse_policy(row.source, f"policy {row.version}")
    return cached


def load_policy(session: Session, actor: Actor, text: str, filename: str) -> PolicyVersion:
    """Validate and activate a new policy version; entries keep the version that graded them.

    Refused (a CatalogueError naming file, line, key and rule) when it grants a measure beyond the
    基础清单 (sanctions.basic_list)."""
    policy = checked_policy(text, filename)
    if session.scalar(select(PolicyVersion.id).where(PolicyVersion.version == policy.version)):
        raise Conflict(f"Policy version {policy.version} was loaded before; give the new file a new version")
    session.execute(update(PolicyVersion).values(active=False))
    row = PolicyVersion(version=policy.version, source=text, active=True, loaded_by=actor.name)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "policy.load",
        "policy",
        policy.version,
        after={"version": policy.version, "source": text},
    )
    return row


def grade_entry(session: Session, entry: Entry) -> None:
    """Grade the entry under the active policy: its measures with their parameters (measure 5's points
    from the finding's gains) and the actions that apply to it."""
    policy = active_policy(session)
    entry.policy_version = policy.version
    entry.measures = graded_measures(policy, entry)


def graded_measures(policy: Policy, entry: Entry) -> list[dict[str, Any]]:
    """The measures `policy` gives this entry, as an entry records them (also the policy dry run's)."""
    graded = grade(
        policy,
        severity=entry.severity,
        behaviours=list(entry.behaviours),
        subject_kind=entry.subject.kind,
        role=entry.role,
        liable=entry.parent_entry_id is not None,
        gains=entry.gains,
    )
    return [g.record() for g in graded]


# --- instructions ---------------------------------------------------------------------------------------


def participants(session: Session, today: date) -> list[Organisation]:
    """Enterprises whose information-sharing agreement is in force (orgs.agreements), and departments."""
    in_force = agreements.in_force_enterprise_ids(session, today)
    orgs = session.scalars(
        select(Organisation).where(
            Organisation.active.is_(True),
            Organisation.kind.in_([OrgKind.department.value, OrgKind.enterprise.value]),
        )
    )
    return [o for o in orgs if o.kind == OrgKind.department.value or o.id in in_force]


@dataclass(frozen=True)
class Target:
    """What one organisation is instructed to apply for one measure of an entry: the parameters, and
    for an enterprise the measure's actions it carries out and the audience it is addressed as."""

    params: dict[str, Any]
    department_measure: bool
    actions: tuple[str, ...] | None = None
    audience: str | None = None
    # The clause of the enterprise's rules that excludes the measure: issued as not applicable by them.
    excluded_by: str | None = None


def employer_usccs(entry: Entry) -> frozenset[str]:
    """The USCCs of the courier companies that employ the subject (用人单位): the company part of each
    of its courier_staff identifiers (`<company USCC>:<staff number>`)."""
    return frozenset(
        i.value.split(":", 1)[0] for i in entry.subject.identifiers if i.type == IdentifierType.courier_staff
    )


def _enterprise_target(
    measure: dict[str, Any], org: Organisation, employers: frozenset[str]
) -> Target | None:
    """What an enterprise that implements the measure is instructed: the entry's actions of the
    measure, those addressed to its audience where the measure has audiences (measure 11: the employer
    dismisses and notifies its peers, the peers do not hire); None when no action is left for it."""
    actions: tuple[str, ...] | None = (
        tuple(measure["actions"]) if measure.get("actions") is not None else None
    )
    definition = measure_catalogue().measures.get(measure["code"])
    audience = None
    if definition is not None and definition.audiences:
        audience = "employer" if org.uscc is not None and org.uscc in employers else "peers"
        if actions is not None:
            by_code = definition.action_by_code
            actions = tuple(a for a in actions if a in by_code and by_code[a].audience in (None, audience))
    if actions is not None and not actions:
        return None
    return Target(measure["params"], department_measure=False, actions=actions, audience=audience)


def _excluded(target: Target, clause: str | None) -> Target:
    if clause is None:
        return target
    return Target(target.params, target.department_measure, target.actions, target.audience, clause)


def targets(
    session: Session, entry: Entry, today: date, measures: list[dict[str, Any]] | None = None
) -> dict[tuple[uuid.UUID, str], Target]:
    """(organisation, measure) → what publication instructs for this entry as it is graded now.

    The one targeting rule, for publication and for re-issue after a correction: an enterprise gets
    the measures its business types can implement (never one it cannot) — one its rulebook excludes
    as not applicable by its rules (`Target.excluded_by`, the clause); departments get the memoranda
    measures of their competence (sanctions.competence). `measures`: the entry graded otherwise (a
    policy's dry run, sanctions.impact) instead of as it is now.
    """
    out: dict[tuple[uuid.UUID, str], Target] = {}
    graded = (entry.measures if measures is None else measures) or []
    cat = measure_catalogue().measures
    # The subject's employers matter only to a measure with audiences (measure 11): read them only then.
    with_audiences = any(m["code"] in cat and cat[m["code"]].audiences for m in graded)
    employers = employer_usccs(entry) if with_audiences else frozenset()
    orgs = participants(session, today)
    enterprises = [o.id for o in orgs if o.kind == OrgKind.enterprise.value]
    ruled = rulebook.excluded_measures(session, enterprises) if graded and enterprises else {}
    for org in orgs:
        if org.kind == OrgKind.enterprise.value:
            types = set(org.business_types or [])
            excluded = ruled.get(org.id, {})
            for m in graded:
                if types & set(m["implementers"]):
                    target = _enterprise_target(m, org, employers)
                    if target is not None:
                        out[(org.id, m["code"])] = _excluded(target, excluded.get(m["code"]))
        else:
            for code, params in competence.department_measures(org, entry).items():
                out[(org.id, code)] = Target(params, department_measure=True)
    return out


def _ack_due(today: date) -> date:
    return add_working_days(today, get_settings().instruction_ack_working_days)


# Every row of one INSERT names the same columns: an open instruction's final fields are empty.
_OPEN: dict[str, Any] = {
    "status": "pending",
    "outcome": None,
    "outcome_reason": None,
    "acknowledged_at": None,
    "reported_at": None,
}


def _final_fields(target: Target, now: datetime) -> dict[str, Any]:
    """An instruction the rulebook excludes is final at issue: nothing to acknowledge or report."""
    if target.excluded_by is None:
        return _OPEN
    return {
        "status": EXCLUDED_BY_RULES,
        "outcome": EXCLUDED_BY_RULES,
        "outcome_reason": target.excluded_by[:2000],
        "acknowledged_at": now,
        "reported_at": now,
    }


def _apply_row(
    entry: Entry,
    org_id: uuid.UUID,
    measure: str,
    target: Target,
    *,
    due: date,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "issued_at": now,
        **_final_fields(target, now),
        "entry_id": entry.id,
        "owner_org_id": org_id,
        "kind": "apply",
        "measure": measure,
        "department_measure": target.department_measure,
        "params": target.params,
        "actions": list(target.actions) if target.actions is not None else None,
        "audience": target.audience,
        "lifts_id": None,
        "ack_due_on": due,
        "reason": reason,
    }


def _lift_row(applied: Instruction, *, due: date, reason: str, now: datetime) -> dict[str, Any]:
    return {
        "issued_at": now,
        **_OPEN,
        "entry_id": applied.entry_id,
        "owner_org_id": applied.owner_org_id,
        "kind": "lift",
        "measure": applied.measure,
        "department_measure": applied.department_measure,
        "params": applied.params,
        "actions": applied.actions,  # what to undo
        "audience": applied.audience,
        "lifts_id": applied.id,
        "ack_due_on": due,
        "reason": reason,
    }


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Every instruction of one step in one INSERT (ids, status, version and issued_at by default)."""
    if rows:
        session.execute(insert(Instruction), rows)


def on_published(session: Session, actor: Actor, entry: Entry, *, today: date | None = None) -> int:
    """Grade the entry and instruct every participant what it can carry out; returns how many."""
    today = today or china_today()
    grade_entry(session, entry)
    due, now = _ack_due(today), utcnow()
    rows = [
        _apply_row(entry, org_id, code, target, due=due, reason="published", now=now)
        for (org_id, code), target in targets(session, entry, today).items()
    ]
    _insert(session, rows)
    excluded = sum(1 for r in rows if r["status"] == EXCLUDED_BY_RULES)
    audit.record(
        session, actor, "instructions.issue", "entry", entry.id,
        detail={"kind": "apply", "count": len(rows), "policy_version": entry.policy_version,
                "measures": [m["code"] for m in entry.measures or []],
                **({"excluded_by_rules": excluded} if excluded else {})},
    )  # fmt: skip
    return len(rows)


def applied_and_lifted(session: Session, entry: Entry) -> tuple[list[Instruction], set[uuid.UUID | None]]:
    rows = session.scalars(
        select(Instruction).where(Instruction.entry_id == entry.id).order_by(Instruction.seq)
    ).all()
    return [r for r in rows if r.kind == "apply"], {r.lifts_id for r in rows if r.kind == "lift"}


def liftable(applied: Instruction, lifted: set[uuid.UUID | None]) -> bool:
    """Applied, not lifted yet, and not reported as not applicable (no such account) nor issued as not
    applicable by the addressee's rules: nothing was done that a lift would undo."""
    return applied.id not in lifted and applied.outcome not in ("not_applicable", EXCLUDED_BY_RULES)


def on_ended(session: Session, actor: Actor, entry: Entry, *, why: str, today: date | None = None) -> int:
    """Lift everything that was applied: restore points and levels, reinstate accounts, remove labels."""
    today = today or china_today()
    due, now = _ack_due(today), utcnow()
    applied, lifted = applied_and_lifted(session, entry)
    rows = [_lift_row(a, due=due, reason=why, now=now) for a in applied if liftable(a, lifted)]
    _insert(session, rows)
    audit.record(
        session,
        actor,
        "instructions.issue",
        "entry",
        entry.id,
        detail={"kind": "lift", "count": len(rows), "why": why},
    )
    return len(rows)


def reissue_instructions(
    session: Session, actor: Actor, entry: Entry, *, today: date | None = None
) -> dict[str, int]:
    """After a correction (the entry graded again): apply what is newly targeted, lift what no longer is.

    What is left in force is what publishing the corrected entry would instruct, with two known
    exceptions, both because an instruction is one per organisation, measure and kind: a measure kept
    with other parameters or actions is not re-issued, nor is a measure lifted earlier and targeted
    again. Nor is one whose rule changed in the addressee's rulebook since (issued as not applicable
    by its rules, or applied before its rules excluded it).
    """
    today = today or china_today()
    due, now = _ack_due(today), utcnow()
    applied, lifted = applied_and_lifted(session, entry)
    by_key = {(a.owner_org_id, a.measure): a for a in applied}
    desired = targets(session, entry, today)
    applies = [
        _apply_row(entry, org_id, code, target, due=due, reason="corrected", now=now)
        for (org_id, code), target in desired.items()
        if (org_id, code) not in by_key
    ]
    lifts = [
        _lift_row(a, due=due, reason="corrected", now=now)
        for key, a in by_key.items()
        if key not in desired and liftable(a, lifted)
    ]
    _insert(session, applies + lifts)
    counts = {"apply": len(applies), "lift": len(lifts)}
    audit.record(
        session,
        actor,
        "instructions.issue",
        "entry",
        entry.id,
        detail={"kind": "correction", **counts, "policy_version": entry.policy_version},
    )
    return counts


def _check_may_act(principal: Principal, instruction: Instruction) -> None:
    if principal.org_id != instruction.owner_org_id:
        # Platform staff may read any instruction but only the addressee reports on it.
        raise Forbidden(
            "Only the organisation the instruction is addressed to can acknowledge or report it",
            code="instruction.not_addressee",
        )


def get_instruction(session: Session, instruction_id: uuid.UUID, principal: Principal) -> Instruction:
    found = session.scalar(select(Instruction).where(Instruction.id == instruction_id))
    if found is None or not can_see(found, principal):
        raise NotFound(f"No instruction with id {instruction_id}", code="instruction.not_found")
    return found


def acknowledge(session: Session, principal: Principal, instruction: Instruction) -> Instruction:
    _check_may_act(principal, instruction)
    if instruction.acknowledged_at is not None:
        return instruction  # repeat-safe
    instruction.acknowledged_at = utcnow()
    if instruction.status == "pending":
        instruction.status = "acknowledged"
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("The instruction changed at the same time; retry", code="instruction.changed") from exc
    audit.record(
        session,
        principal.actor,
        "instruction.acknowledge",
        "instruction",
        instruction.id,
        after=instruction.snapshot(),
    )
    return instruction


_TEXT = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_CONFIRMATION_TYPES: dict[str, tuple[TypeAdapter[Any], str]] = {
    "bool": (TypeAdapter(bool), "yes or no (true/false)"),
    "int": (TypeAdapter(NonNegativeInt), "a whole number, 0 or more"),
    "str": (TypeAdapter(_TEXT), "a text of 1-200 characters"),
    "date": (TypeAdapter(date), "a date, YYYY-MM-DD"),
}


def _confirmation_error(name: str, kind: str, message: str) -> dict[str, Any]:
    return {"in": "body", "field": f"confirmations.{name}", "type": kind, "message": message}


def _confirmations(
    instruction: Instruction, outcome: str, given: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The confirmations of a report, checked against what the instruction asks for and stored as JSON
    (a date as YYYY-MM-DD). Executed needs every one, and a yes/no one to be yes: 'executed' means it
    was marked, the peers were notified, … — otherwise report failed with a reason."""
    fields = {f.field: f for f in instruction.feedback_fields()}
    given = given or {}
    errors: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for name, value in given.items():
        f = fields.get(name)
        if f is None:
            asked = ", ".join(fields) or "none"
            errors.append(
                _confirmation_error(name, "unknown", f"this instruction asks for no {name!r} (asks: {asked})")
            )
            continue
        adapter, expected = _CONFIRMATION_TYPES[f.type]
        try:
            checked = adapter.validate_python(value)
        except PydanticValidationError:
            errors.append(_confirmation_error(name, f.type, f"expected {expected}"))
            continue
        if f.type == "bool" and outcome == "executed" and checked is not True:
            message = f"executed means {f.en.lower()} ({f.zh}): confirm it, or report failed with a reason"
            errors.append(_confirmation_error(name, "confirm", message))
        elif f.type == "date" and checked > china_today():
            errors.append(_confirmation_error(name, "future", "in the future"))
        else:
            out[name] = checked.isoformat() if f.type == "date" else checked
    if outcome == "executed":
        errors += [
            _confirmation_error(name, "missing", f"required to report it executed: {f.en} ({f.zh})")
            for name, f in fields.items()
            if name not in given
        ]
    if errors:
        named = ", ".join(e["field"] for e in errors)
        raise ValidationProblem(
            f"Confirm what was done to report this instruction: {named}",
            code="instruction.confirmations",
            errors=errors,
        )
    return out or None


def report(
    session: Session,
    principal: Principal,
    instruction: Instruction,
    *,
    outcome: str,
    reason: str = "",
    executed_at: datetime | None = None,
    confirmations: dict[str, Any] | None = None,
    receipt: ExecutionReceipt | None = None,
    accounts_affected: int | None = None,
) -> Instruction:
    """Execution feedback: executed, not_applicable (no such account with us) or failed (with a reason).

    Executed confirms what the catalogue asks of the instruction's actions
    (`Instruction.feedback_fields`: measure 6 marked and recorded in the integrity file, measure 5 the
    points deducted, measure 11 the employer's dismissal date and its notice to peers); they are kept
    with the instruction. A node's signed execution receipt (执行回执) is verified before anything is
    written (`receipts.verified_receipt`: refused, the instruction stays open) and kept with it.
    """
    _check_may_act(principal, instruction)
    if outcome not in OUTCOMES:
        raise ValidationProblem(
            f"Unknown outcome {outcome!r}",
            errors=[
                {"in": "body", "field": "outcome", "type": "enum", "message": "one of " + ", ".join(OUTCOMES)}
            ],
        )
    if outcome == "failed" and not reason.strip():
        raise ValidationProblem(
            "A failed execution needs a reason",
            code="instruction.reason_required",
            errors=[{"in": "body", "field": "reason", "message": "say why it failed"}],
        )
    confirmed = _confirmations(instruction, outcome, confirmations)
    signed = None
    if receipt is not None:
        signed = receipts.verified_receipt(
            session, instruction, receipt, outcome=outcome, executed_at=executed_at,
            accounts_affected=accounts_affected,
        )  # fmt: skip
    if (
        instruction.outcome == outcome
        and (instruction.outcome_reason or "") == reason.strip()
        and (instruction.confirmations or None) == confirmed
    ):
        return instruction  # the same report twice: nothing changes
    if instruction.outcome in FINAL_OUTCOMES:
        raise Conflict(
            f"Already reported as {instruction.outcome}; a final report cannot change",
            code="instruction.final",
            params={"instruction_status": instruction.outcome},
        )
    now = utcnow()
    if executed_at is not None and executed_at > now:
        raise ValidationProblem(
            "executed_at is in the future",
            code="instruction.executed_in_future",
            errors=[{"in": "body", "field": "executed_at", "message": "in the future"}],
        )
    before = instruction.snapshot()
    instruction.acknowledged_at = instruction.acknowledged_at or now
    instruction.outcome = outcome
    instruction.outcome_reason = reason.strip() or None
    instruction.status = outcome
    instruction.executed_at = (executed_at or now) if outcome == "executed" else None
    instruction.reported_at = now
    instruction.confirmations = confirmed
    instruction.receipt, instruction.receipt_key_id = signed or (None, None)
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("The instruction changed at the same time; retry", code="instruction.changed") from exc
    audit.record(
        session, principal.actor, "instruction.report", "instruction", instruction.id, before=before,
        after=instruction.snapshot(),
        detail={"receipt_key_id": instruction.receipt_key_id} if instruction.receipt_key_id else None,
    )  # fmt: skip
    return instruction


@dataclass
class InstructionPage:
    instructions: list[Instruction]
    next_after: int | None


def list_instructions(
    session: Session,
    principal: Principal,
    *,
    after: int = 0,
    limit: int = 100,
    status: str | None = None,
    kind: str | None = None,
    overdue: bool | None = None,
    entry_id: uuid.UUID | None = None,
    owner_org_id: uuid.UUID | None = None,
    today: date | None = None,
) -> InstructionPage:
    today = today or china_today()
    stmt = scoped(select(Instruction), Instruction, principal).where(Instruction.seq > after)
    if status:
        stmt = stmt.where(Instruction.status == status)
    if kind:
        stmt = stmt.where(Instruction.kind == kind)
    if entry_id:
        stmt = stmt.where(Instruction.entry_id == entry_id)
    if owner_org_id:
        stmt = stmt.where(Instruction.owner_org_id == owner_org_id)
    if overdue is True:
        stmt = stmt.where(Instruction.overdue_where(today))
    elif overdue is False:
        stmt = stmt.where(not_(Instruction.overdue_where(today)))
    rows = list(session.scalars(stmt.order_by(Instruction.seq).limit(limit)))
    return InstructionPage(rows, rows[-1].seq if len(rows) == limit else None)


def summary_for_entry(session: Session, entry_id: uuid.UUID) -> dict[str, Any]:
    rows = session.scalars(select(Instruction).where(Instruction.entry_id == entry_id)).all()
    out: dict[str, Any] = {"apply": {}, "lift": {}}
    for r in rows:
        bucket = out[r.kind].setdefault(r.status, 0)
        out[r.kind][r.status] = bucket + 1
    return out


def policy_versions(session: Session) -> list[PolicyVersion]:
    """Every policy version loaded, newest first."""
    return list(session.scalars(select(PolicyVersion).order_by(PolicyVersion.loaded_at.desc())))
