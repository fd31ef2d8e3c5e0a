"""Console pages of the regular consultation (定期会商, #22).

- `/console/consultation`: the meetings one is invited to (the platform: all), the agenda items one
  raised or that are on those meetings, a form to raise an agenda item (every signed-in participant) and,
  for the platform's administrator, a form to schedule a meeting.
- `/console/consultation/meetings/{id}`: a meeting's agenda, attendance, minutes, decisions (with the
  policy versions citing them) and action items with owner and due date; the administrator's forms to put
  an item on the agenda, record attendance and minutes, hold or cancel it, record decisions and action
  items.
- `/console/consultation/action-items`: one's own action items (the platform: all), open and overdue
  first, each closed with a note by its owner.

The rules are `consultation.service`'s; a refusal re-renders the page with the reason next to the field,
in the reader's language (console.problems).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import PLATFORM, READERS, console_router
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.problems import describe
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render
from fanchaoxin.consultation import service
from fanchaoxin.consultation.models import ActionItem, Meeting
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import Problem, ValidationProblem
from fanchaoxin.core.roles import OrgKind, Role
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.policy import measure_catalogue

router = console_router()

ADMIN = Role.platform_admin
# Who raises agenda items at the console: every participant's people (not the auditor).
RAISERS = (Role.platform_admin, Role.platform_reviewer, Role.department_officer, Role.enterprise_operator)
# Who closes action items: the owner's people, or the platform's administrator.
CLOSERS = (Role.platform_admin, Role.department_officer, Role.enterprise_operator)

# The consultation's codes in words (translated where shown).
WORDS: dict[str, dict[str, str]] = {
    "meeting_kind": {"regular": N_("Regular (quarterly)"), "ad_hoc": N_("Ad hoc")},
    "meeting_status": {"scheduled": N_("Scheduled"), "held": N_("Held"), "cancelled": N_("Cancelled")},
    "item_kind": {
        "disputed_measure": N_("A disputed measure"),
        "data_quality": N_("A data-quality problem"),
        "new_pattern": N_("A new credit-hyping pattern"),
        "policy_change": N_("A request to change the policy"),
        "other": N_("Another matter"),
    },
    "item_status": {"open": N_("Open"), "discussed": N_("Discussed"), "withdrawn": N_("Withdrawn")},
    "action_status": {"open": N_("Open"), "closed": N_("Closed"), "overdue": N_("Overdue")},
}
DONE = {
    "scheduled": N_("The meeting is scheduled and the invitations are sent."),
    "raised": N_("The agenda item is raised."),
    "saved": N_("Saved."),
    "held": N_("The meeting is marked held."),
    "cancelled": N_("The meeting is cancelled and the invitees are told."),
    "decided": N_("The decision is recorded."),
    "action": N_("The action item is added and its owner is told."),
    "closed": N_("The action item is closed."),
}


def _words(locale: str) -> Callable[[str, str | None], str]:
    _ = translator(locale)

    def words(kind: str, code: str | None) -> str:
        text = WORDS.get(kind, {}).get(code or "")
        return _(text) if text else (code or "")

    return words


def _bad(field: str, type_: str) -> ValidationProblem:
    """A form value that could not be read (a date, a number, a record number), named by its field."""
    return ValidationProblem(
        f"Invalid {field}", errors=[{"in": "body", "field": field, "type": type_, "message": type_}]
    )


def _uuid(value: str, field: str) -> uuid.UUID | None:
    if not value.strip():
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise _bad(field, "uuid_parsing") from None


def _datetime(value: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise _bad(field, "datetime_parsing") from None


def _date(value: str, field: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise _bad(field, "date_parsing") from None


def _int(value: str, field: str) -> int | None:
    if not value.strip():
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise _bad(field, "int_parsing") from None


def _errors(exc: Problem, locale: str, form: str) -> dict[str, str]:
    """The problem's sentences by field, keyed `<form>:<field>` ("<form>:form" for none)."""
    text = describe(exc, locale)
    out = {f"{form}:{k}": v for k, v in text.by_field.items()}
    out.setdefault(f"{form}:form", " ".join(text.messages))
    return out


def _names(session: Session) -> dict[uuid.UUID, str]:
    return {o.id: o.name for o in session.query(Organisation)}


def _measures(locale: str) -> list[tuple[str, int, str]]:
    cat = measure_catalogue()
    return [
        (code, m.number, m.text(locale))
        for code, m in sorted(cat.measures.items(), key=lambda kv: kv[1].number)
    ]


# --- the overview ----------------------------------------------------------------------------------------


def _overview(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    locale = locale_of(request)
    meetings = service.list_meetings(session, principal)
    items = service.list_agenda_items(session, principal)
    return render(
        request,
        "consultation.html",
        status_code=status_code,
        meetings=meetings,
        scheduled=[m for m in meetings if m.status == "scheduled"],
        items=items,
        names=_names(session),
        measures=_measures(locale),
        words=_words(locale),
        item_kinds=list(service.ITEM_KINDS),
        may_schedule=principal.role == ADMIN,
        may_raise=principal.role in RAISERS,
        errors=errors or {},
        form=form or {},
        done=DONE.get(request.query_params.get("done") or ""),
    )


@router.get("/consultation")
def consultation_page(
    request: Request, session: Session = DB, principal: Principal = page(*READERS)
) -> Response:
    return _overview(request, session, principal)


@router.post("/consultation/meetings")
def schedule_meeting(
    request: Request,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    kind: str = Form(""),
    title: str = Form(""),
    starts_at: str = Form(""),
    place: str = Form(""),
    period: str = Form(""),
) -> Response:
    typed = {"kind": kind, "title": title, "starts_at": starts_at, "place": place, "period": period}
    try:
        meeting = service.schedule_meeting(
            session,
            principal.actor,
            kind=kind,
            title=title,
            starts_at=_datetime(starts_at, "starts_at"),
            place=place,
            period=period or None,
        )
    except Problem as exc:
        session.rollback()
        errors = _errors(exc, locale_of(request), "schedule")
        return _overview(request, session, principal, errors=errors, form=typed, status_code=exc.status)
    return redirect(request, f"{PREFIX}/consultation/meetings/{meeting.id}?done=scheduled")


@router.post("/consultation/agenda-items")
def raise_agenda_item(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*RAISERS),
    kind: str = Form(""),
    title: str = Form(""),
    body: str = Form(""),
    measure: str = Form(""),
    meeting_id: str = Form(""),
) -> Response:
    typed = {"kind": kind, "title": title, "body": body, "measure": measure, "meeting_id": meeting_id}
    assert principal.org_id is not None
    try:
        service.raise_agenda_item(
            session,
            principal.actor,
            principal.org_id,
            kind=kind,
            title=title,
            body=body,
            measure=measure or None,
            meeting_id=_uuid(meeting_id, "meeting_id"),
            is_platform=principal.is_platform,
        )
    except Problem as exc:
        session.rollback()
        errors = _errors(exc, locale_of(request), "raise")
        return _overview(request, session, principal, errors=errors, form=typed, status_code=exc.status)
    return redirect(request, f"{PREFIX}/consultation?done=raised")


# --- one meeting -----------------------------------------------------------------------------------------


def _meeting_page(
    request: Request,
    session: Session,
    principal: Principal,
    meeting: Meeting,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    locale = locale_of(request)
    today = china_today()
    decisions = service.list_decisions(session, meeting)
    admin = principal.role == ADMIN
    return render(
        request,
        "consultation_meeting.html",
        status_code=status_code,
        m=meeting,
        participants=service.participants(session, meeting),
        agenda=service.list_agenda_items(session, principal, meeting_id=meeting.id),
        waiting=service.list_agenda_items(session, principal, unscheduled=True) if admin else [],
        decisions=[(d, service.citing_policies(session, d.id)) for d in decisions],
        actions=[
            (a, a.overdue(today))
            for a in service.list_action_items(session, principal, meeting_id=meeting.id)
        ],
        # An action item is owned by an invitee, or by the platform itself (a change of its policy).
        owners=[o for _, o in service.participants(session, meeting)]
        + list(session.query(Organisation).filter(Organisation.kind == OrgKind.platform.value)),
        names=_names(session),
        words=_words(locale),
        measures={code: text for code, _, text in _measures(locale)},
        admin=admin,
        errors=errors or {},
        form=form or {},
        done=DONE.get(request.query_params.get("done") or ""),
    )


@router.get("/consultation/meetings/{meeting_id}")
def meeting_page(
    request: Request, meeting_id: uuid.UUID, session: Session = DB, principal: Principal = page(*READERS)
) -> Response:
    return _meeting_page(request, session, principal, service.get_meeting(session, meeting_id, principal))


def _act(
    request: Request,
    session: Session,
    principal: Principal,
    meeting_id: uuid.UUID,
    form_name: str,
    typed: dict[str, str],
    do: Callable[[Meeting], object],
    done: str,
) -> Response:
    """Run one of the administrator's actions on a meeting; a refusal re-renders the page at the form."""
    meeting = service.get_meeting(session, meeting_id, principal)
    try:
        do(meeting)
    except Problem as exc:
        session.rollback()
        meeting = service.get_meeting(session, meeting_id, principal)
        errors = _errors(exc, locale_of(request), form_name)
        return _meeting_page(
            request, session, principal, meeting, errors=errors, form=typed, status_code=exc.status
        )
    return redirect(request, f"{PREFIX}/consultation/meetings/{meeting_id}?done={done}")


@router.post("/consultation/meetings/{meeting_id}/agenda")
def put_on_agenda(
    request: Request,
    meeting_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    item_id: str = Form(""),
) -> Response:
    def do(meeting: Meeting) -> object:
        found = _uuid(item_id, "agenda_item_id")
        if found is None:
            raise _bad("agenda_item_id", "missing")
        item = service.get_agenda_item(session, found)
        return service.schedule_item(session, principal.actor, item, meeting)

    return _act(request, session, principal, meeting_id, "agenda", {"item_id": item_id}, do, "saved")


@router.post("/consultation/meetings/{meeting_id}/attendance")
def record_attendance(
    request: Request,
    meeting_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    org_id: str = Form(""),
    attended: str = Form(""),
    representative: str = Form(""),
) -> Response:
    def do(meeting: Meeting) -> object:
        org = _uuid(org_id, "org_id")
        if org is None:
            raise _bad("org_id", "missing")
        return service.record_attendance(
            session, principal.actor, meeting, org, attended=attended == "yes", representative=representative
        )

    typed = {"org_id": org_id, "attended": attended, "representative": representative}
    return _act(request, session, principal, meeting_id, f"attendance-{org_id}", typed, do, "saved")


@router.post("/consultation/meetings/{meeting_id}/minutes")
def record_minutes(
    request: Request,
    meeting_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    minutes: str = Form(""),
    hold: str = Form(""),
) -> Response:
    def do(meeting: Meeting) -> object:
        if hold:
            return service.hold_meeting(session, principal.actor, meeting, minutes=minutes)
        return service.record_minutes(session, principal.actor, meeting, minutes)

    done = "held" if hold else "saved"
    return _act(request, session, principal, meeting_id, "minutes", {"minutes": minutes}, do, done)


@router.post("/consultation/meetings/{meeting_id}/cancel")
def cancel_meeting(
    request: Request,
    meeting_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    reason: str = Form(""),
) -> Response:
    def do(meeting: Meeting) -> object:
        return service.cancel_meeting(session, principal.actor, meeting, reason)

    return _act(request, session, principal, meeting_id, "cancel", {"reason": reason}, do, "cancelled")


@router.post("/consultation/meetings/{meeting_id}/decisions")
def record_decision(
    request: Request,
    meeting_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    text: str = Form(""),
    agenda_item_id: str = Form(""),
) -> Response:
    def do(meeting: Meeting) -> object:
        return service.record_decision(
            session,
            principal.actor,
            meeting,
            text=text,
            agenda_item_id=_uuid(agenda_item_id, "agenda_item_id"),
        )

    typed = {"text": text, "agenda_item_id": agenda_item_id}
    return _act(request, session, principal, meeting_id, "decision", typed, do, "decided")


@router.post("/consultation/meetings/{meeting_id}/action-items")
def add_action_item(
    request: Request,
    meeting_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(ADMIN),
    owner_org_id: str = Form(""),
    title: str = Form(""),
    decision_id: str = Form(""),
    working_days: str = Form(""),
    due_on: str = Form(""),
) -> Response:
    def do(meeting: Meeting) -> object:
        return service.add_action_item(
            session,
            principal.actor,
            meeting,
            owner_org_id=_uuid(owner_org_id, "owner_org_id"),
            title=title,
            decision_id=_uuid(decision_id, "decision_id"),
            due_on=_date(due_on, "due_on"),
            working_days=_int(working_days, "working_days"),
            today=china_today(),
        )

    typed = {
        "owner_org_id": owner_org_id, "title": title, "decision_id": decision_id,
        "working_days": working_days, "due_on": due_on,
    }  # fmt: skip
    return _act(request, session, principal, meeting_id, "action", typed, do, "action")


# --- action items ----------------------------------------------------------------------------------------


def _actions_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    locale = locale_of(request)
    today = china_today()
    items: list[ActionItem] = service.list_action_items(session, principal)
    rows = [(a, a.overdue(today), service.may_close(principal, a)) for a in items]
    # Overdue first, then open by due day, then the closed ones.
    rows.sort(key=lambda r: (not r[1], r[0].status != "open", r[0].due_on))
    meetings = {m.id: m for m in session.query(Meeting).filter(Meeting.id.in_({a.meeting_id for a in items}))}
    return render(
        request,
        "consultation_actions.html",
        status_code=status_code,
        rows=rows,
        meetings=meetings,
        names=_names(session),
        words=_words(locale),
        platform=principal.role in PLATFORM,
        overdue_count=sum(1 for r in rows if r[1]),
        errors=errors or {},
        done=DONE.get(request.query_params.get("done") or ""),
    )


@router.get("/consultation/action-items")
def actions_page(request: Request, session: Session = DB, principal: Principal = page(*READERS)) -> Response:
    return _actions_page(request, session, principal)


@router.post("/consultation/action-items/{item_id}/close")
def close_action_item(
    request: Request,
    item_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*CLOSERS),
    note: str = Form(""),
) -> Response:
    try:
        item = service.get_action_item(session, item_id, principal)
        service.close_action_item(session, principal, item, note)
    except Problem as exc:
        session.rollback()
        errors = _errors(exc, locale_of(request), f"close-{item_id}")
        return _actions_page(request, session, principal, errors=errors, status_code=exc.status)
    return redirect(request, f"{PREFIX}/consultation/action-items?done=closed")
