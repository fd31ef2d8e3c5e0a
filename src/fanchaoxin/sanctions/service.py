"""Grading, instructions, feedback and lifting — the one place these rules live.

Publishing an entry grades it under the active policy and sends every participating enterprise the
instructions its business types can carry out (never one it cannot). Departments get the memoranda
measures for entries resting on a punishing basis (bases.yaml: an administrative penalty or a
judicial decision). One rule, `targets`, says who is instructed what: publication issues it, and a
correction re-issues the difference (`reissue_instructions`). Revocation, expiry and repair send lift
instructions for everything that was applied. The instructions of one step go in one INSERT.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import can_see, scoped
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import competence
from fanchaoxin.sanctions.models import Instruction, PolicyVersion
from fanchaoxin.sanctions.policy import Policy, default_policy, grade, parse_policy

OUTCOMES = ("executed", "not_applicable", "failed")


# --- policy ---------------------------------------------------------------------------------------------

_policy_cache: dict[str, Policy] = {}


def active_policy(session: Session) -> Policy:
    row = session.scalar(select(PolicyVersion).where(PolicyVersion.active.is_(True)))
    if row is None:
        return default_policy()
    cached = _policy_cache.get(row.version)
    if cached is None:
        cached = _policy_cache[row.version] = parse_policy(row.source, f"policy {row.version}")
    return cached


def load_policy(session: Session, actor: Actor, text: str, filename: str) -> PolicyVersion:
    """Validate and activate a new policy version; entries keep the version that graded them."""
    policy = parse_policy(text, filename)
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
    policy = active_policy(session)
    graded = grade(
        policy,
        severity=entry.severity,
        behaviours=list(entry.behaviours),
        subject_kind=entry.subject.kind,
        role=entry.role,
        liable=entry.parent_entry_id is not None,
    )
    entry.policy_version = policy.version
    entry.measures = [
        {"code": g.code, "params": g.params, "implementers": list(g.implementers)} for g in graded
    ]


# --- instructions ---------------------------------------------------------------------------------------


def participants(session: Session, today: date) -> list[Organisation]:
    """Enterprises that have signed the sharing agreement, and departments."""
    return list(
        session.scalars(
            select(Organisation).where(
                Organisation.active.is_(True),
                or_(
                    Organisation.kind == OrgKind.department.value,
                    and_(
                        Organisation.kind == OrgKind.enterprise.value,
                        Organisation.agreement_signed_on <= today,
                    ),
                ),
            )
        )
    )


@dataclass(frozen=True)
class Target:
    """What one organisation is instructed to apply for one measure of an entry."""

    params: dict[str, Any]
    department_measure: bool


def targets(session: Session, entry: Entry, today: date) -> dict[tuple[uuid.UUID, str], Target]:
    """(organisation, measure) → what publication instructs for this entry as it is graded now.

    The one targeting rule, for publication and for re-issue after a correction: an enterprise gets
    the measures its business types can implement (never one it cannot); departments get the
    memoranda measures, from the entry's severity up, for entries on a punishing basis.
    """
    out: dict[tuple[uuid.UUID, str], Target] = {}
    for org in participants(session, today):
        if org.kind == OrgKind.enterprise.value:
            types = set(org.business_types or [])
            for m in entry.measures or []:
                if types & set(m["implementers"]):
                    out[(org.id, m["code"])] = Target(m["params"], department_measure=False)
        else:
            for code, params in competence.department_measures(org, entry).items():
                out[(org.id, code)] = Target(params, department_measure=True)
    return out


def _ack_due(today: date) -> date:
    return add_working_days(today, get_settings().instruction_ack_working_days)


def _apply_row(
    entry: Entry, org_id: uuid.UUID, measure: str, target: Target, *, due: date, reason: str
) -> dict[str, Any]:
    return {
        "entry_id": entry.id,
        "owner_org_id": org_id,
        "kind": "apply",
        "measure": measure,
        "department_measure": target.department_measure,
        "params": target.params,
        "lifts_id": None,
        "ack_due_on": due,
        "reason": reason,
    }


def _lift_row(applied: Instruction, *, due: date, reason: str) -> dict[str, Any]:
    return {
        "entry_id": applied.entry_id,
        "owner_org_id": applied.owner_org_id,
        "kind": "lift",
        "measure": applied.measure,
        "department_measure": applied.department_measure,
        "params": applied.params,
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
    due = _ack_due(today)
    rows = [
        _apply_row(entry, org_id, code, target, due=due, reason="published")
        for (org_id, code), target in targets(session, entry, today).items()
    ]
    _insert(session, rows)
    audit.record(
        session, actor, "instructions.issue", "entry", entry.id,
        detail={"kind": "apply", "count": len(rows), "policy_version": entry.policy_version,
                "measures": [m["code"] for m in entry.measures or []]},
    )  # fmt: skip
    return len(rows)


def _applied_and_lifted(session: Session, entry: Entry) -> tuple[list[Instruction], set[uuid.UUID | None]]:
    rows = session.scalars(
        select(Instruction).where(Instruction.entry_id == entry.id).order_by(Instruction.seq)
    ).all()
    return [r for r in rows if r.kind == "apply"], {r.lifts_id for r in rows if r.kind == "lift"}


def _liftable(applied: Instruction, lifted: set[uuid.UUID | None]) -> bool:
    return applied.id not in lifted and applied.outcome != "not_applicable"


def on_ended(session: Session, actor: Actor, entry: Entry, *, why: str, today: date | None = None) -> int:
    """Lift everything that was applied: restore points and levels, reinstate accounts, remove labels."""
    today = today or china_today()
    due = _ack_due(today)
    applied, lifted = _applied_and_lifted(session, entry)
    rows = [_lift_row(a, due=due, reason=why) for a in applied if _liftable(a, lifted)]
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
    with other parameters is not re-issued, nor is a measure lifted earlier and targeted again.
    """
    today = today or china_today()
    due = _ack_due(today)
    applied, lifted = _applied_and_lifted(session, entry)
    by_key = {(a.owner_org_id, a.measure): a for a in applied}
    desired = targets(session, entry, today)
    applies = [
        _apply_row(entry, org_id, code, target, due=due, reason="corrected")
        for (org_id, code), target in desired.items()
        if (org_id, code) not in by_key
    ]
    lifts = [
        _lift_row(a, due=due, reason="corrected")
        for key, a in by_key.items()
        if key not in desired and _liftable(a, lifted)
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
        raise Forbidden("Only the organisation the instruction is addressed to can acknowledge or report it")


def get_instruction(session: Session, instruction_id: uuid.UUID, principal: Principal) -> Instruction:
    found = session.scalar(select(Instruction).where(Instruction.id == instruction_id))
    if found is None or not can_see(found, principal):
        raise NotFound(f"No instruction with id {instruction_id}")
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
        raise Conflict("The instruction changed at the same time; retry") from exc
    audit.record(
        session,
        principal.actor,
        "instruction.acknowledge",
        "instruction",
        instruction.id,
        after=instruction.snapshot(),
    )
    return instruction


def report(
    session: Session,
    principal: Principal,
    instruction: Instruction,
    *,
    outcome: str,
    reason: str = "",
    executed_at: datetime | None = None,
) -> Instruction:
    """Execution feedback: executed, not_applicable (no such account with us) or failed (with a reason)."""
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
            errors=[{"in": "body", "field": "reason", "message": "say why it failed"}],
        )
    if instruction.outcome == outcome and (instruction.outcome_reason or "") == reason.strip():
        return instruction  # the same report twice: nothing changes
    if instruction.outcome in ("executed", "not_applicable"):
        raise Conflict(f"Already reported as {instruction.outcome}; a final report cannot change")
    now = utcnow()
    if executed_at is not None and executed_at > now:
        raise ValidationProblem(
            "executed_at is in the future",
            errors=[{"in": "body", "field": "executed_at", "message": "in the future"}],
        )
    before = instruction.snapshot()
    instruction.acknowledged_at = instruction.acknowledged_at or now
    instruction.outcome = outcome
    instruction.outcome_reason = reason.strip() or None
    instruction.status = outcome
    instruction.executed_at = (executed_at or now) if outcome == "executed" else None
    instruction.reported_at = now
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("The instruction changed at the same time; retry") from exc
    audit.record(
        session, principal.actor, "instruction.report", "instruction", instruction.id, before=before,
        after=instruction.snapshot(),
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
        stmt = stmt.where(Instruction.acknowledged_at.is_(None), Instruction.ack_due_on < today)
    elif overdue is False:
        stmt = stmt.where(or_(Instruction.acknowledged_at.is_not(None), Instruction.ack_due_on >= today))
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
