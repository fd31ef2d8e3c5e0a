"""Credit repair (信用修复): an application ends an entry early, after its minimum period, with a
credit commitment and proof of rectification. The application is this slice's; ending the entry is
the workflow's (`workflows.appeals.decide_repair`)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.attachments import attachments_of
from fanchaoxin.appeals.cases import (
    Filing,
    add_unique_open,
    entry_of,
    flush_case,
    hash_secret,
    new_secret,
    new_tracking_number,
    prove_subject,
    record_identity,
)
from fanchaoxin.appeals.commitments import record_commitment
from fanchaoxin.appeals.models import RepairApplication
from fanchaoxin.appeals.notify import notify
from fanchaoxin.appeals.remedies import repair_possible_from
from fanchaoxin.blacklist.lifecycle import IN_FORCE, Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, ValidationProblem
from fanchaoxin.core.settings import get_settings


def file_repair(
    session: Session,
    actor: Actor,
    *,
    entry_id: uuid.UUID,
    identifier_type: str,
    identifier_value: str,
    commitment_accepted: bool,
    commitment_text: str,
    rectification: str,
    contact_email: str,
    channel: str,
    owner_org_id: uuid.UUID | None = None,
    today: date | None = None,
) -> Filing:
    today = today or china_today()
    entry = prove_subject(session, entry_id, identifier_type, identifier_value)
    if commitment_accepted is not True or not commitment_text.strip():
        raise ValidationProblem(
            "Credit repair needs a credit commitment (信用承诺)",
            code="repair.commitment_required",
            errors=[{"in": "body", "field": "commitment_accepted", "message": "must be true, with its text"}],
        )
    if entry.parent_entry_id is not None:
        raise Conflict(
            "A liable person's entry follows its unit's entry; the unit applies for repair",
            code="entry.follows_unit",
        )
    start = repair_possible_from(entry)  # the rule the public query's repair link follows too
    if start is not None and today < start:
        raise Conflict(
            f"Credit repair is possible from {start.isoformat()} (the minimum period)",
            code="entry.repair_not_yet",
            params={"from": start.isoformat()},
            possible_from=start.isoformat(),
        )
    secret = new_secret()
    app = RepairApplication(
        tracking_number=new_tracking_number("repair", today),
        secret_hash=hash_secret(secret),
        entry_id=entry.id,
        open_entry_id=entry.id,
        owner_org_id=owner_org_id,
        status="open",
        channel=channel,
        filed_by=actor.name,
        identifier_type=identifier_type,
        commitment_accepted=True,
        commitment_text=commitment_text.strip(),
        rectification=rectification.strip(),
        contact_email=contact_email,
        filed_on=today,
        decide_due_on=add_working_days(today, get_settings().repair_decide_working_days),
    )
    add_unique_open(session, app, "application for credit repair")
    audit.record(
        session,
        actor,
        "repair.file",
        "repair",
        app.id,
        after=app.snapshot(),
        detail={"entry_id": str(entry.id), "channel": channel},
    )
    notify(session, app.contact_email, "repair.filed", app.tracking_number, due=app.decide_due_on)
    return Filing(app, secret)


def check_decision(
    session: Session,
    actor: Actor,
    app: RepairApplication,
    *,
    outcome: str,
    identity_verification: str | None,
    expected_version: int | None,
) -> Entry:
    """The application's entry, when this decision may be taken (recording the identity check if given).

    An approval needs the proof of rectification attached and the entry still in force.
    """
    if app.status == "decided":
        raise Conflict(
            f"Application {app.tracking_number} was decided already ({app.outcome})",
            code="case.decided",
            params={"tracking": app.tracking_number, "outcome": app.outcome},
        )
    if expected_version is not None and expected_version != app.version:
        raise Conflict(
            f"The application changed since you read it (version {app.version}); reload it",
            code="case.changed",
        )
    if identity_verification and identity_verification.strip():
        record_identity(session, actor, app, identity_verification)
    if not app.identity_verification:
        raise ValidationProblem(
            "Record how the applicant's identity was verified before deciding",
            code="case.identity_unverified",
            errors=[
                {"in": "body", "field": "identity_verification", "type": "missing", "message": "required"}
            ],
        )
    entry = entry_of(session, app)
    if outcome == "approved":
        if not attachments_of(session, "repair", app.id):
            raise Conflict(
                "No proof of rectification is attached; it is needed to approve", code="repair.no_proof"
            )
        if Status(entry.status) not in IN_FORCE:
            raise Conflict(
                f"The entry is {entry.status} already",
                code="case.entry_not_in_force",
                params={"status": entry.status},
            )
    return entry


def decision_note(app: RepairApplication, reason: str) -> str:
    """The reason the entry's history gives when an approved repair ends it."""
    return f"credit repair {app.tracking_number}: {reason.strip()}"


def record_decision(
    session: Session,
    actor: Actor,
    app: RepairApplication,
    entry: Entry,
    *,
    outcome: str,
    reason: str,
    today: date,
) -> RepairApplication:
    """Close the application with its outcome, audit it and tell the applicant; an approval records
    the applicant's credit commitment (信用承诺), published with the repair and kept for its term."""
    before = app.snapshot()
    app.status = "decided"
    app.outcome = outcome
    app.decision_reason = reason.strip()
    app.decided_at = utcnow()
    app.decided_by = actor.name
    app.open_entry_id = None
    flush_case(session, "application")
    if outcome == "approved":
        record_commitment(session, actor, app, entry, today=today)
    audit.record(
        session,
        actor,
        "repair.decide",
        "repair",
        app.id,
        before=before,
        after=app.snapshot(),
        detail={"outcome": outcome, "entry_id": str(entry.id), "late": today > app.decide_due_on},
    )
    notify(session, app.contact_email, "repair.decided", app.tracking_number, outcome=outcome, reason=reason)
    return app


def overdue_clause(today: date) -> ColumnElement[bool]:
    """SQL: undecided past its decision date."""
    return and_(RepairApplication.status != "decided", RepairApplication.decide_due_on < today)


def count_overdue(session: Session, today: date) -> int:
    stmt = select(func.count()).select_from(RepairApplication).where(overdue_clause(today))
    return int(session.scalar(stmt) or 0)


def list_repairs(
    session: Session,
    *,
    status: str | None = None,
    overdue: bool | None = None,
    today: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RepairApplication]:
    today = today or china_today()
    stmt = select(RepairApplication)
    if status:
        stmt = stmt.where(RepairApplication.status == status)
    late = overdue_clause(today)
    if overdue is True:
        stmt = stmt.where(late)
    elif overdue is False:
        stmt = stmt.where(~late)
    return list(
        session.scalars(
            stmt.order_by(RepairApplication.filed_at, RepairApplication.id).limit(limit).offset(offset)
        )
    )
