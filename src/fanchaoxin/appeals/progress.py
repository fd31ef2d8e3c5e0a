"""Progress of a public filing (办理进度查询): what the filer sees of its case with the tracking number
and the secret — status, deadlines and outcome, never the other side's data.

One builder per kind of case, used by the API's status routes (`appeals.views`) and the console's
progress page (`console.progress`) alike: a report (举报, JB…), an objection (异议, YY…), an application
for credit repair (信用修复, XF…) and a statement (陈述申辩, CS…, `appeals.statements`). The kind is read
from the tracking number's prefix (`cases.TRACKING_PREFIX`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, cases, statements, supplements
from fanchaoxin.appeals.models import Objection, RepairApplication, Report
from fanchaoxin.appeals.schemas import CaseStatusOut, Deadlines
from fanchaoxin.core.errors import NotFound

# --- deadlines of each kind -----------------------------------------------------------------------------


def objection_deadlines(o: Objection) -> Deadlines:
    return Deadlines(
        filed_on=o.filed_on,
        dispute_due_on=o.dispute_due_on,
        forward_due_on=o.forward_due_on,
        answer_due_on=o.answer_due_on,
        decide_due_on=o.decide_due_on,
    )


def repair_deadlines(a: RepairApplication) -> Deadlines:
    return Deadlines(filed_on=a.filed_on, decide_due_on=a.decide_due_on)


def report_deadlines(r: Report) -> Deadlines:
    return Deadlines(filed_on=r.filed_on, handle_due_on=r.handle_due_on)


# --- the filer's view of each kind ----------------------------------------------------------------------


def _attachments(session: Session, kind: str, case: Any) -> int:
    return len(attachments.attachments_of(session, kind, case.id))


def _decided_status(session: Session, kind: str, case: Any, deadlines: Deadlines) -> CaseStatusOut:
    """An objection or a repair application: decided with an outcome and the reviewer's reason, and the
    material the reviewer asked for while the case waits for it (补正)."""
    asked = supplements.public_view(session, kind, case)
    return CaseStatusOut(
        tracking_number=case.tracking_number,
        kind=kind,
        status=case.status,
        filed_on=case.filed_on,
        deadlines=deadlines,
        outcome=case.outcome,
        reason=case.decision_reason,
        decided_at=case.decided_at,
        attachments=_attachments(session, kind, case),
        material_requested=asked.materials if asked else None,
        material_due_on=asked.due_on if asked else None,
    )


def objection_status(session: Session, o: Objection) -> CaseStatusOut:
    return _decided_status(session, "objection", o, objection_deadlines(o))


def repair_status(session: Session, a: RepairApplication) -> CaseStatusOut:
    return _decided_status(session, "repair", a, repair_deadlines(a))


def report_status(session: Session, r: Report) -> CaseStatusOut:
    # The reporter sees the status and the outcome only: not the recipient's note, not the entry.
    return CaseStatusOut(
        tracking_number=r.tracking_number,
        kind="report",
        status=r.status,
        filed_on=r.filed_on,
        deadlines=report_deadlines(r),
        outcome=r.outcome,
        decided_at=r.handled_at,
        attachments=_attachments(session, "report", r),
    )


def statement_status(session: Session, statement: Any) -> CaseStatusOut:
    # The statement's own slice says what its filer sees (陈述申辩 and the reviewer's answer).
    return statements.case_status(session, statement)


BUILDERS: dict[str, Callable[[Session, Any], CaseStatusOut]] = {
    "objection": objection_status,
    "repair": repair_status,
    "report": report_status,
    "statement": statement_status,
}


def status_of(session: Session, kind: str, case: Any) -> CaseStatusOut:
    """The filer's view of a case of `kind`."""
    return BUILDERS[kind](session, case)


# --- finding a case by its tracking number alone --------------------------------------------------------

NOT_FOUND = "No case with this tracking number and secret"


def kind_of(tracking_number: str) -> str | None:
    """The kind of case a tracking number names, by its prefix (JB, YY, XF, CS); None when none does."""
    number = tracking_number.strip().upper()
    for kind, prefix in cases.TRACKING_PREFIX.items():
        if number.startswith(prefix) and kind in cases.CASE_MODELS and kind in BUILDERS:
            return kind
    return None


def progress(session: Session, tracking_number: str, secret: str | None) -> CaseStatusOut:
    """The filer's view of the case with this tracking number and secret.

    An unknown number, a number of no known kind and a wrong secret are all the same 404, word for
    word, so that the page tells nothing about cases whose secret the caller does not hold.
    """
    kind = kind_of(tracking_number)
    try:
        if kind is None:
            raise NotFound(NOT_FOUND)
        case = cases.by_tracking(session, kind, tracking_number, secret)
    except NotFound:
        raise NotFound(NOT_FOUND) from None
    return status_of(session, kind, case)
