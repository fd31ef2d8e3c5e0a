"""Credit commitments (信用承诺) in the console: the public page of commitments published with repairs of
public-list entries, and what a reviewer is shown of the commitments a submission breaches.

The review and entry pages show a breach with `{% include "_commitment_breaches.html" %}` and the context
`commitment_breaches=commitments.breaches_for_entry(session, entry)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.appeals import commitments
from fanchaoxin.appeals.models import RepairApplication
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console.auth import public_page
from fanchaoxin.console.common import console_router
from fanchaoxin.console.web import render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today

router = console_router()


@router.get("/public/commitments")
def public_commitments(request: Request, session: Session = DB, _: Principal = public_page()) -> Response:
    """信用承诺公示: the commitments of repaired public-list entries, within their term."""
    rows = commitments.published(session, lists={commitments.PUBLIC_LIST}, today=china_today(), limit=200)
    items = [
        {
            "subject_kind": e.subject.kind,
            "subject_name": commitments.published_name(e.subject),
            "basis": e.basis,
            "document_number": e.document_number,
            "issuing_authority": e.issuing_authority,
            "repaired_on": c.made_on,
            "term_ends_on": c.term_ends_on,
            "text": commitments.published_text(c, e.subject),
        }
        for c, e in rows
    ]
    return render(request, "public/commitments.html", commitments=items)


def breaches_for_entry(session: Session, entry: Entry) -> list[dict[str, Any]]:
    """The commitments this submission breaches, for `_commitment_breaches.html` (reviewers' pages):
    the full text as the applicant wrote it, the repaired entry and the repair application."""
    out = []
    for c in commitments.breaches_of(session, entry):
        app = session.get(RepairApplication, c.repair_application_id)
        out.append(
            {
                "id": c.id,
                "text": c.text,
                "made_on": c.made_on,
                "term_ends_on": c.term_ends_on,
                "repaired_entry_id": c.entry_id,
                "repair_id": c.repair_application_id,
                "repair_tracking_number": app.tracking_number if app else "",
                "breached_by_entry_id": c.breached_by_entry_id,
                "breach_flagged_at": c.breach_flagged_at,
            }
        )
    return out
