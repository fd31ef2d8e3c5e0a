"""Grading, instructions, feedback and lifting — the one place these rules live.

Publishing an entry grades it under the active policy and sends every participating enterprise the
instructions its business types can carry out (never one it cannot). Departments get the memoranda
measures for entries resting on an administrative penalty or a judicial decision. Revocation, expiry
and repair send lift instructions for everything that was applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import can_see, scoped
from fanchaoxin.orgs.models import Organisation, OrgKind
from fanchaoxin.sanctions.models import Instruction, PolicyVersion
from fanchaoxin.sanctions.policy import Policy, default_policy, grade, measure_catalogue, parse_policy

PUNISHING_BASES = ("administrative_penalty", "judicial_decision")
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


def on_published(
    session: Session, actor: Actor, entry: Entry, *, today: date | None = None
) -> list[Instruction]:
    today = today or china_today()
    grade_entry(session, entry)
    due = add_working_days(today, get_settings().instruction_ack_working_days)
    severity_rank = list(catalogues().severities)
    out: list[Instruction] = []
    for org in participants(session, today):
        if org.kind == OrgKind.enterprise.value:
            types = set(org.business_types or [])
            for m in entry.measures or []:
                if types & set(m["implementers"]):
                    out.append(
                        Instruction(
                            entry_id=entry.id,
                            owner_org_id=org.id,
                            kind="apply",
                            measure=m["code"],
                            params=m["params"],
                            ack_due_on=due,
                            reason="published",
                        )
                    )
        elif entry.basis in PUNISHING_BASES:
            for d in measure_catalogue().department_measures.values():
                if severity_rank.index(entry.severity) >= severity_rank.index(d.min_severity):
                    out.append(
                        Instruction(
                            entry_id=entry.id,
                            owner_org_id=org.id,
                            kind="apply",
                            measure=d.code,
                            department_measure=True,
                            params={},
                            ack_due_on=due,
                            reason="published",
                        )
                    )
    session.add_all(out)
    session.flush()
    audit.record(
        session, actor, "instructions.issue", "entry", entry.id,
        detail={"kind": "apply", "count": len(out), "policy_version": entry.policy_version,
                "measures": [m["code"] for m in entry.measures or []]},
    )  # fmt: skip
    return out


def on_ended(
    session: Session, actor: Actor, entry: Entry, *, why: str, today: date | None = None
) -> list[Instruction]:
    """Lift everything that was applied: restore points and levels, reinstate accounts, remove labels."""
    today = today or china_today()
    due = add_working_days(today, get_settings().instruction_ack_working_days)
    applied = session.scalars(
        select(Instruction).where(Instruction.entry_id == entry.id, Instruction.kind == "apply")
    ).all()
    lifted = {
        i.lifts_id
        for i in session.scalars(
            select(Instruction).where(Instruction.entry_id == entry.id, Instruction.kind == "lift")
        )
    }
    out = []
    for a in applied:
        if a.id in lifted or a.outcome == "not_applicable":
            continue
        out.append(
            Instruction(
                entry_id=entry.id,
                owner_org_id=a.owner_org_id,
                kind="lift",
                measure=a.measure,
                department_measure=a.department_measure,
                params=a.params,
                lifts_id=a.id,
                ack_due_on=due,
                reason=why,
            )
        )
    session.add_all(out)
    session.flush()
    audit.record(
        session,
        actor,
        "instructions.issue",
        "entry",
        entry.id,
        detail={"kind": "lift", "count": len(out), "why": why},
    )
    return out


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
