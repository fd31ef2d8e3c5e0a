"""The due-process queues: objections, reports and credit repair applications, each with its subject
(a natural person's name masked), its deadlines and a badge (overdue, due soon, on time, done) — and,
for a case waiting for material the reviewer asked for (补正), that wait and the date it ends."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.appeals import objections, repair, reports, supplements
from fanchaoxin.blacklist import service as registry
from fanchaoxin.console.auth import page
from fanchaoxin.console.common import ADDRESSEES, REVIEWERS, console_router, deadline_badge
from fanchaoxin.console.web import render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today

router = console_router()


@router.get("/objections")
def objection_queue(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, *ADDRESSEES),
    status: str | None = None,
) -> Response:
    today = china_today()
    rows = objections.list_objections(session, principal, status=status or None, limit=500)
    entries = registry.entries_by_id(session, {o.entry_id for o in rows})
    waits = supplements.waiting_for(session, "objection", [o.id for o in rows])
    items = []
    for o in rows:
        # A forwarded objection waits for the addressee's answer; any other, for the platform's decision.
        due = o.answer_due_on if o.status == "forwarded" else o.decide_due_on
        wait = waits.get(o.id)
        items.append(
            {
                "o": o,
                "entry": entries.get(o.entry_id),
                "due": due,
                "badge": deadline_badge(due, today, o.status == "decided"),
                "waiting": wait if supplements.waiting(wait, o) else None,
            }
        )
    return render(request, "objections.html", items=items, status=status or "", today=today)


@router.get("/reports")
def report_queue(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, *ADDRESSEES),
    status: str | None = None,
) -> Response:
    today = china_today()
    items = [
        {
            "r": r,
            "due": r.handle_due_on,
            "badge": deadline_badge(r.handle_due_on, today, r.status != "routed"),
        }
        for r in reports.list_reports(session, principal, status=status or None, limit=500)
    ]
    return render(request, "reports.html", items=items, status=status or "", today=today)


@router.get("/repairs")
def repair_queue(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    status: str | None = None,
) -> Response:
    today = china_today()
    rows = repair.list_repairs(session, status=status or None, limit=500)
    entries = registry.entries_by_id(session, {a.entry_id for a in rows})
    waits = supplements.waiting_for(session, "repair", [a.id for a in rows])
    items = []
    for a in rows:
        wait = waits.get(a.id)
        items.append(
            {
                "a": a,
                "entry": entries.get(a.entry_id),
                "due": a.decide_due_on,
                "badge": deadline_badge(a.decide_due_on, today, a.status == "decided"),
                "waiting": wait if supplements.waiting(wait, a) else None,
            }
        )
    return render(request, "repairs.html", items=items, status=status or "", today=today)
