"""Organisations: the platform's list, and one organisation's page — an enterprise's instructions and
feedback rate, or a department's measures and the entries it acts on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console.auth import page
from fanchaoxin.console.common import ADDRESSEES, PLATFORM, READERS, console_router
from fanchaoxin.console.web import render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.catalogue import punishing_bases
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import NotFound
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.orgs import agreements, node_status
from fanchaoxin.orgs import service as orgs
from fanchaoxin.orgs.department_kinds import department_kinds
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import receipts
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sharing import changes

router = console_router()


@router.get("/orgs")
def org_list(request: Request, session: Session = DB, principal: Principal = page(*PLATFORM)) -> Response:
    found = orgs.list_organisations(session, principal)
    return render(request, "orgs.html", orgs=found, standings=agreements.standings(session, found))


@router.get("/org")
def own_org(request: Request, session: Session = DB, principal: Principal = page(*ADDRESSEES)) -> Response:
    assert principal.org_id is not None
    return org_page(request, session, principal, principal.org_id)


@router.get("/orgs/{org_id}")
def org_detail(
    request: Request, org_id: uuid.UUID, session: Session = DB, principal: Principal = page(*READERS)
) -> Response:
    if principal.role in ADDRESSEES and org_id != principal.org_id:
        raise NotFound(f"No organisation with id {org_id}")
    return org_page(request, session, principal, org_id)


def _department_blocks(
    session: Session, principal: Principal, org: Organisation, rows: list[Instruction]
) -> dict[str, Any]:
    """A department's own page: the department measures addressed to it first, and the entries whose
    basis is an administrative penalty or a judicial decision."""
    based: list[Entry] = []
    for basis in sorted(punishing_bases()):
        based += registry.list_entries(session, principal, basis=basis, limit=200).entries
    if principal.is_platform:
        based = [e for e in based if e.owner_org_id == org.id]
    based.sort(key=lambda e: e.submitted_at, reverse=True)
    return {
        # None: a department without a kind, which receives nothing until it is given one
        "department_kind": department_kinds().get(org.department_kind or ""),
        "measure_rows": [i for i in rows if i.department_measure],
        "other_rows": [i for i in rows if not i.department_measure],
        "based_entries": [_as_shown(e, principal) for e in based],
    }


@dataclass
class _BasedEntry:
    """A row of the department's list, with the subject as the department may see it: before publication
    the subject it sent, never the (perhaps another tenant's, unpublished) subject it was matched to."""

    id: uuid.UUID
    subject: Any
    basis: str
    document_number: str | None
    issuing_authority: str | None
    severity: str
    status: str


@dataclass
class _SentSubject:
    kind: str
    name: str


def _as_shown(entry: Entry, principal: Principal) -> _BasedEntry:
    subject: Any = entry.subject
    if registry.shows_as_submitted(entry, principal) and entry.submitted_subject:
        subject = _SentSubject(entry.submitted_subject["kind"], entry.submitted_subject["name"])
    return _BasedEntry(
        entry.id,
        subject,
        entry.basis,
        entry.document_number,
        entry.issuing_authority,
        entry.severity,
        entry.status,
    )


def _overdue(rows: list[Instruction], today: date) -> list[Instruction]:
    return [i for i in rows if i.acknowledged_at is None and i.ack_due_on < today]


def _nodes(
    request: Request, session: Session, principal: Principal, org: Organisation
) -> list[node_status.NodeView] | None:
    """An enterprise's nodes and their lag, for the platform's staff and the enterprise itself."""
    if org.kind != OrgKind.enterprise.value or not (principal.is_platform or principal.org_id == org.id):
        return None
    return node_status.list_nodes(
        session,
        org_id=org.id,
        feed_head=changes.head(session),
        now=utcnow(),
        threshold_seconds=request.app.state.settings.node_silent_alert_seconds,
    )


def _lift_receipts(
    session: Session, principal: Principal, org: Organisation
) -> receipts.OrgLiftReceipts | None:
    """The platform's view of an enterprise's lifts: confirmed by a signed receipt within 3 PRC working
    days, late, missing (execution receipts, #16)."""
    if org.kind != OrgKind.enterprise.value or not principal.is_platform:
        return None
    found = receipts.lift_receipts(session, org_id=org.id)
    return found[0] if found else receipts.OrgLiftReceipts(org.id, org.name)


def org_page(
    request: Request,
    session: Session,
    principal: Principal,
    org_id: uuid.UUID,
    *,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    """One organisation's page (also shown again, with the errors, after a failed instruction action)."""
    org = orgs.get_organisation(session, org_id, principal)
    today = china_today()
    rows = sanctions.list_instructions(session, principal, owner_org_id=org.id, limit=1000).instructions
    total = len(rows)
    reported = sum(1 for i in rows if i.outcome is not None)
    department: dict[str, Any] = {}
    if org.kind == OrgKind.department.value:
        department = _department_blocks(session, principal, org, rows)
    return render(
        request,
        "department.html" if department else "org.html",
        status_code=status_code,
        **department,
        org=org,
        instructions=rows,
        entries=registry.entries_by_id(session, {i.entry_id for i in rows}),
        total=total,
        reported=reported,
        feedback_rate=(reported / total) if total else None,
        overdue=_overdue(rows, today),
        today=today,
        may_act=principal.org_id == org.id and principal.role in ADDRESSEES,
        nodes=_nodes(request, session, principal, org),
        lift_receipts=_lift_receipts(session, principal, org),
        # an enterprise's agreement standing, shown first (with a suspension's reason)
        agreement=agreements.standing(session, org, today) if org.kind == OrgKind.enterprise.value else None,
        errors=errors or [],
    )
