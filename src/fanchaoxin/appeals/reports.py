"""Reports (举报): anyone reports 炒信; the platform routes each report to the enterprise where it
happened or to the department that handles it, which answers within 10 working days."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.cases import Filing, flush_case, hash_secret, new_secret, new_tracking_number
from fanchaoxin.appeals.models import Report
from fanchaoxin.appeals.notify import notify
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, ValidationProblem
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import scoped
from fanchaoxin.orgs.models import Organisation

OUTCOMES = ("substantiated", "unsubstantiated", "forwarded")


def file_report(
    session: Session,
    actor: Actor,
    *,
    description: str,
    reported: dict[str, Any],
    behaviours: list[str],
    enterprise_org_id: uuid.UUID | None,
    contact_email: str | None,
    channel: str,
    owner_org_id: uuid.UUID | None = None,
    today: date | None = None,
) -> Filing:
    today = today or china_today()
    if enterprise_org_id is not None:
        org = session.get(Organisation, enterprise_org_id)
        if org is None or org.kind != OrgKind.enterprise.value:
            raise ValidationProblem(
                "No participating enterprise with that id",
                errors=[{"in": "body", "field": "enterprise_org_id", "message": "unknown enterprise"}],
            )
    secret = new_secret()
    rep = Report(
        tracking_number=new_tracking_number("report", today),
        secret_hash=hash_secret(secret),
        owner_org_id=owner_org_id,
        status="received",
        channel=channel,
        filed_by=actor.name,
        description=description.strip(),
        behaviours=behaviours,
        reported={**reported, "enterprise_org_id": str(enterprise_org_id) if enterprise_org_id else None},
        contact_email=contact_email,
        filed_on=today,
    )
    session.add(rep)
    session.flush()
    audit.record(
        session,
        actor,
        "report.file",
        "report",
        rep.id,
        after=rep.snapshot(),
        detail={"channel": channel, "identifiers": len(reported.get("identifiers") or [])},
    )
    notify(session, contact_email, "report.filed", rep.tracking_number)
    return Filing(rep, secret)


def triage_report(
    session: Session,
    actor: Actor,
    rep: Report,
    *,
    action: str,
    addressed_to_org_id: uuid.UUID | None,
    note: str,
    today: date | None = None,
    expected_version: int | None = None,
) -> Report:
    """Route a report to the enterprise where it happened or to a department; or dismiss it."""
    today = today or china_today()
    if rep.status != "received":
        raise Conflict(
            f"Report {rep.tracking_number} is {rep.status}; it was triaged already",
            code="report.triaged_already",
            params={"tracking": rep.tracking_number, "case_status": rep.status},
        )
    if expected_version is not None and expected_version != rep.version:
        raise Conflict(
            f"The report changed since you read it (version {rep.version}); reload it", code="case.changed"
        )
    before = rep.snapshot()
    rep.triage_note = note.strip() or None
    rep.routed_by = actor.name
    if action == "route":
        org = session.get(Organisation, addressed_to_org_id) if addressed_to_org_id else None
        if org is None or not org.active or org.kind == OrgKind.platform.value:
            raise ValidationProblem(
                "Route a report to an active enterprise or department",
                code="report.unknown_organisation",
                errors=[{"in": "body", "field": "addressed_to_org_id", "message": "unknown organisation"}],
            )
        rep.status = "routed"
        rep.addressed_to_org_id = org.id
        rep.routed_on = today
        rep.handle_due_on = add_working_days(today, get_settings().report_handle_working_days)
    else:
        rep.status = "dismissed"
        rep.outcome_note = note.strip()
        rep.handled_at = utcnow()
        rep.handled_by = actor.name
    flush_case(session, "report")
    audit.record(
        session,
        actor,
        f"report.{action}",
        "report",
        rep.id,
        before=before,
        after=rep.snapshot(),
        detail={"to": str(rep.addressed_to_org_id) if rep.addressed_to_org_id else None},
    )
    if action == "route":
        notify(session, rep.contact_email, "report.routed", rep.tracking_number, due=rep.handle_due_on)
    else:
        notify(session, rep.contact_email, "report.handled", rep.tracking_number, outcome="dismissed")
    return rep


def handle_report(
    session: Session,
    principal: Principal,
    rep: Report,
    *,
    outcome: str,
    note: str,
    entry_id: uuid.UUID | None = None,
    forwarded_to: str | None = None,
) -> Report:
    """The recipient's outcome: substantiated (perhaps with its entry), unsubstantiated or forwarded."""
    if rep.addressed_to_org_id is None or principal.org_id != rep.addressed_to_org_id:
        raise Forbidden(
            "Only the organisation the report was routed to reports its outcome", code="report.not_addressee"
        )
    if rep.status != "routed":
        raise Conflict(
            f"Report {rep.tracking_number} is {rep.status}",
            code="report.not_routed",
            params={"tracking": rep.tracking_number, "case_status": rep.status},
        )
    if entry_id is not None:
        entry = session.get(Entry, entry_id)
        if entry is None or entry.owner_org_id != principal.org_id:
            raise ValidationProblem(
                "Link an entry your organisation submitted",
                code="report.entry_not_ours",
                errors=[{"in": "body", "field": "entry_id", "message": "no such entry of yours"}],
            )
    before = rep.snapshot()
    rep.status = "handled"
    rep.outcome = outcome
    rep.outcome_note = note.strip()
    rep.linked_entry_id = entry_id
    rep.forwarded_to = forwarded_to
    rep.handled_at = utcnow()
    rep.handled_by = principal.actor.name
    flush_case(session, "report")
    audit.record(
        session, principal.actor, "report.handle", "report", rep.id, before=before, after=rep.snapshot(),
        detail={"outcome": outcome, "late": bool(rep.handle_due_on and china_today() > rep.handle_due_on)},
    )  # fmt: skip
    notify(session, rep.contact_email, "report.handled", rep.tracking_number, outcome=outcome)
    return rep


def report_overdue(rep: Report, today: date) -> bool:
    return rep.status == "routed" and rep.handle_due_on is not None and today > rep.handle_due_on


def overdue_clause(today: date) -> ColumnElement[bool]:
    """SQL for `report_overdue(rep, today)`."""
    return and_(Report.status == "routed", Report.handle_due_on < today)


def count_overdue(session: Session, today: date) -> int:
    return int(session.scalar(select(func.count()).select_from(Report).where(overdue_clause(today))) or 0)


def list_reports(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    overdue: bool | None = None,
    today: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Report]:
    today = today or china_today()
    stmt = scoped(select(Report), Report, principal)
    if status:
        stmt = stmt.where(Report.status == status)
    late = overdue_clause(today)
    if overdue is True:
        stmt = stmt.where(late)
    elif overdue is False:
        stmt = stmt.where(~late)
    return list(session.scalars(stmt.order_by(Report.filed_at, Report.id).limit(limit).offset(offset)))
