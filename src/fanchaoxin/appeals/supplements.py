"""Requests for more material (补正): a reviewer asks the objector or the credit repair applicant for
specific material by a date, and the case waits for it.

- `request_material` opens the request (one open request per case) and tells the filer by e-mail,
  through the notification queue of due process (`appeals.notify`): sent once the transaction commits.
  The filer sees the request on the public progress page (tracking number + secret, `public_view`) and
  adds files to the case through the case's attachment path (`POST /v1/attachments/{kind}/{tracking}`).
- `close_request` ends it: the material was `received`, the date passed without it (`lapsed`), or the
  reviewer no longer needs it (`withdrawn`).
- A decision ends any wait: a request still open on a decided case is no longer waited for (`waiting`).

Deadlines: the time the filer is given to supply material is not the platform's. DESIGN.md gives the
platform 5 working days to decide (and the reporting organisation its own days to answer); it does not
count the filer's time, and national practice (补正材料的时间不计入办理时限) does not either. So when the
request closes, the case's own running deadlines (the decision, and the forwarding or the answer the
case waits for) move later by the working days it waited — counted up to the day the request closes, and
never beyond the date the filer was given: a filer who lets the date pass does not hold the case up for
longer. Whether a remedy is possible (`appeals.remedies`) does not depend on these deadlines and is
unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fanchaoxin.appeals import notify
from fanchaoxin.appeals.models import Objection, RepairApplication
from fanchaoxin.appeals.supplement_models import SupplementRequest
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import add_working_days, working_days_between
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, NotFound, ValidationProblem

CASE_TYPES: dict[str, type[Objection] | type[RepairApplication]] = {
    "objection": Objection,
    "repair": RepairApplication,
}
# The longest a filer may be given, in calendar days: a request is not a way to park a case.
MAX_DAYS = 30
MATERIALS_MAX = 5000
CLOSINGS = ("received", "lapsed", "withdrawn")

# The e-mail to the filer (Chinese first, like every notification of due process).
REQUESTED = (
    "请补正材料 More material needed ({tracking})",
    "审核人员需要您补充以下材料：\nThe reviewer needs the following material:\n{materials}\n\n"
    "请于 {due}（含当日）前提交 Please send it by {due} (inclusive): 凭受理编号和查询密码在"
    "“办理进度查询”页面查看本通知，并将文件附加到本案件。"
    "See this request on the progress page with your tracking number and secret, and attach the files "
    "to the case.\n补正期间办理时限暂停计算。The case's time limit does not run while it waits for your "
    "material." + notify.FOOTER,
)
CLOSED = (
    "补正已处理 Material request closed ({tracking})",
    "{result}\n决定期限 Decision due by: {decide_due}" + notify.FOOTER,
)
CLOSED_RESULT = {
    "received": "已收到补正材料，案件继续办理。The material was received; the case goes on.",
    "lapsed": "补正期限已过，未收到材料，案件按现有材料办理。"
    "The date passed without the material; the case is decided on what it has.",
    "withdrawn": "审核人员撤回了补正要求，案件继续办理。The reviewer withdrew the request; the case goes on.",
}


@dataclass(frozen=True)
class PublicRequest:
    """What the filer sees of an open request on the progress page."""

    materials: str
    due_on: date
    requested_on: date


def _field_error(
    field: str, code: str, detail: str, params: dict[str, Any] | None = None
) -> ValidationProblem:
    """Bad input, naming its field, with a code (the console words it; `detail` is for developers)."""
    item = {"in": "body", "field": field, "message": detail, "code": code, "params": params or {}}
    return ValidationProblem(f"{field}: {detail}", code=code, params=params, errors=[item])


def _already_waiting(case_type: str) -> Conflict:
    return Conflict(
        f"The {case_type} already waits for material; close that request first",
        code="supplement.already_waiting",
    )


def case_is_open(case: Objection | RepairApplication) -> bool:
    """Material can be asked for until the case is decided."""
    return case.status != "decided"


def requests_of(session: Session, case_type: str, case_id: uuid.UUID) -> list[SupplementRequest]:
    """Every request on the case, oldest first."""
    return list(
        session.scalars(
            select(SupplementRequest)
            .where(SupplementRequest.case_type == case_type, SupplementRequest.case_id == case_id)
            .order_by(SupplementRequest.requested_at)
        )
    )


def open_request(session: Session, case_type: str, case_id: uuid.UUID) -> SupplementRequest | None:
    return session.scalar(
        select(SupplementRequest).where(
            SupplementRequest.case_type == case_type, SupplementRequest.open_case_id == case_id
        )
    )


def waiting(request: SupplementRequest | None, case: Objection | RepairApplication) -> bool:
    """Whether the case waits for material now: a request is open and the case is not decided."""
    return request is not None and request.status == "open" and case_is_open(case)


def waiting_for(
    session: Session, case_type: str, case_ids: list[uuid.UUID]
) -> dict[uuid.UUID, SupplementRequest]:
    """The open request of each of these cases that has one (one query for a queue's page)."""
    if not case_ids:
        return {}
    rows = session.scalars(
        select(SupplementRequest).where(
            SupplementRequest.case_type == case_type, SupplementRequest.open_case_id.in_(case_ids)
        )
    )
    return {r.case_id: r for r in rows}


def get_request(
    session: Session, request_id: uuid.UUID, case_type: str, case_id: uuid.UUID
) -> SupplementRequest:
    found = session.get(SupplementRequest, request_id)
    if found is None or found.case_type != case_type or found.case_id != case_id:
        raise NotFound(
            f"No request for material with id {request_id} on this case", code="supplement.not_found"
        )
    return found


def request_material(
    session: Session,
    actor: Actor,
    case_type: str,
    case: Objection | RepairApplication,
    *,
    materials: str,
    due_on: date | None,
    today: date,
) -> SupplementRequest:
    """Ask the filer for `materials` by `due_on` (a later day, at most MAX_DAYS ahead), and tell it."""
    if case_type not in CASE_TYPES or not isinstance(case, CASE_TYPES[case_type]):
        raise NotFound(f"No {case_type} to ask material for")
    if not case_is_open(case):
        raise Conflict(
            f"The {case_type} is decided; no more material can be asked for", code="supplement.case_decided"
        )
    text = materials.strip()
    if not text:
        raise _field_error("materials", "supplement.materials_missing", "say which material is needed")
    if len(text) > MATERIALS_MAX:
        raise _field_error(
            "materials",
            "supplement.materials_too_long",
            f"at most {MATERIALS_MAX} characters",
            {"max": MATERIALS_MAX},
        )
    if due_on is None:
        raise _field_error("due_on", "supplement.due_missing", "give the date the material is due")
    if due_on <= today or due_on > today + timedelta(days=MAX_DAYS):
        raise _field_error(
            "due_on",
            "supplement.due_out_of_range",
            f"a day after today, at most {MAX_DAYS} days ahead",
            {"max": MAX_DAYS},
        )
    if open_request(session, case_type, case.id) is not None:
        raise _already_waiting(case_type)
    row = SupplementRequest(
        case_type=case_type,
        case_id=case.id,
        open_case_id=case.id,
        tracking_number=case.tracking_number,
        materials=text,
        due_on=due_on,
        status="open",
        requested_on=today,
        requested_by=actor.name,
        paused_working_days=0,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:  # another reviewer asked at the same moment
        raise _already_waiting(case_type) from exc
    audit.record(
        session, actor, "supplement.request", case_type, case.id, after=row.snapshot(),
        detail={"request_id": str(row.id), "due_on": due_on.isoformat()},
    )  # fmt: skip
    if case.contact_email:
        notify.queue(
            session,
            notify.Message(
                to=case.contact_email,
                subject=REQUESTED[0].format(tracking=case.tracking_number),
                body=REQUESTED[1].format(
                    tracking=case.tracking_number, materials=text, due=due_on.isoformat()
                ),
                case=case.tracking_number,
                event="supplement.requested",
            ),
        )
    return row


def _moved_deadlines(case: Objection | RepairApplication, days: int) -> dict[str, str]:
    """Move the case's running deadlines `days` working days later; returns what moved (field → new date)."""
    moved: dict[str, str] = {}
    names = ["decide_due_on"]
    if isinstance(case, Objection):
        names += ["forward_due_on"] if case.status == "open" else []
        names += ["answer_due_on"] if case.status == "forwarded" else []
    for name in names:
        current: date | None = getattr(case, name)
        if current is not None:
            later = add_working_days(current, days)
            setattr(case, name, later)
            moved[name] = later.isoformat()
    return moved


def close_request(
    session: Session,
    actor: Actor,
    case_type: str,
    case: Objection | RepairApplication,
    request: SupplementRequest,
    *,
    outcome: str,
    note: str = "",
    today: date,
) -> SupplementRequest:
    """End an open request: `received`, `lapsed` (only once its date has passed) or `withdrawn`; the
    case's running deadlines move later by the working days it waited (see the module's note)."""
    if outcome not in CLOSINGS:
        raise _field_error("outcome", "supplement.outcome", "one of: " + ", ".join(CLOSINGS))
    if request.status != "open":
        raise Conflict(f"The request for material is already {request.status}", code="supplement.closed")
    if outcome == "lapsed" and today <= request.due_on:
        raise Conflict(
            f"The material is due by {request.due_on.isoformat()} inclusive; it has not lapsed yet",
            code="supplement.not_lapsed",
            params={"due": request.due_on.isoformat()},
        )
    before = request.snapshot()
    waited = working_days_between(request.requested_on, min(today, request.due_on))
    moved = _moved_deadlines(case, waited) if waited and case_is_open(case) else {}
    request.status = outcome
    request.open_case_id = None
    request.closed_on = today
    request.closed_at = utcnow()
    request.closed_by = actor.name
    request.close_note = note.strip() or None
    request.paused_working_days = waited if moved else 0
    session.flush()
    audit.record(
        session, actor, f"supplement.{outcome}", case_type, case.id, before=before, after=request.snapshot(),
        detail={"request_id": str(request.id), "deadlines_moved_to": moved},
    )  # fmt: skip
    if case.contact_email and case_is_open(case):
        notify.queue(
            session,
            notify.Message(
                to=case.contact_email,
                subject=CLOSED[0].format(tracking=case.tracking_number),
                body=CLOSED[1].format(
                    tracking=case.tracking_number,
                    result=CLOSED_RESULT[outcome],
                    decide_due=case.decide_due_on.isoformat(),
                ),
                case=case.tracking_number,
                event=f"supplement.{outcome}",
            ),
        )
    return request


def public_view(session: Session, case_type: str, case: Any) -> PublicRequest | None:
    """The request the filer must answer now, if the case waits for one (for the progress page)."""
    if case_type not in CASE_TYPES:
        return None
    found = open_request(session, case_type, case.id)
    if not waiting(found, case):
        return None
    assert found is not None
    return PublicRequest(found.materials, found.due_on, found.requested_on)
