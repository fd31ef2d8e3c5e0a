"""The rules of the regular consultation (定期会商, action plan 三(二)), in one place for the API, the
console and the CLI.

- A meeting is scheduled in the future: a regular one for a quarter (``2026Q4``, one per quarter), an ad
  hoc one at any time. Every active department and every enterprise whose agreement is in force is
  invited unless the platform names the invitees; each invitee is e-mailed at its contact address (an
  organisation without one is counted, not mailed).
- Any participant raises an agenda item (议题): a disputed measure (naming one of the 13 measures), a
  data-quality problem, a new 炒信 pattern, a request to change the policy, another matter. The platform
  puts it on a scheduled meeting's agenda (or the raiser names the meeting when it raises it).
- A meeting is held (its minutes, its attendance) or cancelled (its invitees told, its agenda items
  back in the queue). Decisions and action items are recorded once it has been held.
- An action item has an owner (责任单位) and a due day (in PRC working days, or a date not in the past);
  it is overdue the day after its due day while open (like an instruction), reminded daily by e-mail,
  and closed by its owner (or the platform's administrator) with a note.
- A policy version may cite the decision that led to it.

Services take `now`/`today`, so that time-dependent behaviour is tested by passing the date.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.notify import Message, queue
from fanchaoxin.consultation.models import (
    ActionItem,
    AgendaItem,
    ConsultationDecision,
    Meeting,
    MeetingParticipant,
)
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import SHANGHAI, add_working_days, china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from fanchaoxin.core.roles import OrgKind, Role
from fanchaoxin.orgs.agreements import in_force_enterprise_ids
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.models import PolicyVersion
from fanchaoxin.sanctions.policy import measure_catalogue

MEETING_KINDS = ("regular", "ad_hoc")
MEETING_STATUSES = ("scheduled", "held", "cancelled")
ITEM_KINDS = ("disputed_measure", "data_quality", "new_pattern", "policy_change", "other")
ITEM_STATUSES = ("open", "discussed", "withdrawn")
ACTION_STATUSES = ("open", "closed")
PERIOD = re.compile(r"^(20\d\d)Q([1-4])$")

# --- e-mails (Chinese, English below) -------------------------------------------------------------------

FOOTER = "\n\n此邮件由系统自动发送，请勿回复。This message was sent automatically; please do not reply."
TEMPLATES: dict[str, tuple[str, str]] = {
    "consultation.invited": (
        "会商会议通知 Consultation meeting: {title}",
        "贵单位受邀参加反炒信联合行动会商会议。\n会议：{title}\n时间：{starts}（北京时间）\n地点：{place}\n"
        "如有议题，请在会前通过平台提出。\n\n"
        "Your organisation is invited to a consultation meeting of the joint action against 炒信.\n"
        "Meeting: {title}\nWhen: {starts} (Beijing time)\nWhere: {place}\n"
        "Raise any agenda item on the platform before the meeting." + FOOTER,
    ),
    "consultation.cancelled": (
        "会商会议取消 Consultation meeting cancelled: {title}",
        "原定于 {starts}（北京时间）召开的会商会议“{title}”已取消。\n原因：{reason}\n"
        "已提出的议题将安排至今后的会议。\n\n"
        "The consultation meeting “{title}” of {starts} (Beijing time) is cancelled.\nReason: {reason}\n"
        "Agenda items raised for it will be put on a later meeting." + FOOTER,
    ),
    "consultation.action_assigned": (
        "会商督办事项 Consultation action item: {title}",
        "会商会议“{meeting}”确定由贵单位办理以下事项：\n{title}\n办理期限：{due}\n"
        "办结后请在平台上填写办理情况并关闭该事项。\n\n"
        "The consultation meeting “{meeting}” asks your organisation to do the following:\n{title}\n"
        "Due by: {due}\nClose it on the platform with a note once it is done." + FOOTER,
    ),
    "consultation.action_overdue": (
        "会商督办事项已逾期 Consultation action item overdue: {title}",
        "以下会商督办事项已超过办理期限（{due}），尚未办结：\n{title}\n请尽快办理并在平台上关闭。\n\n"
        "This consultation action item is past its due day ({due}) and still open:\n{title}\n"
        "Please complete it and close it on the platform." + FOOTER,
    ),
}


def _mail(session: Session, org: Organisation | None, event: str, case: str, **values: Any) -> bool:
    """Queue one e-mail to an organisation's contact address (sent after the commit); False when it
    has none."""
    if org is None or not org.contact_email:
        return False
    subject, body = TEMPLATES[event]
    queue(
        session,
        Message(
            to=org.contact_email,
            subject=subject.format(**values),
            body=body.format(**values),
            case=case,
            event=event,
        ),
    )
    return True


def _local(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


# --- problems --------------------------------------------------------------------------------------------


def _invalid(
    field: str, message: str, code: str, type_: str = "value_error", **params: Any
) -> ValidationProblem:
    """A 422 naming `field`, its code and params on the problem and on its one error item."""
    return ValidationProblem.on_field(field, message, type_, code=code, params=params)


def _text(value: str | None, field: str, code: str, max_length: int | None = None) -> str:
    text = (value or "").strip()
    if not text:
        raise _invalid(field, "must not be empty", code, "missing")
    if max_length is not None and len(text) > max_length:
        raise _invalid(field, f"at most {max_length} characters", "consultation.too_long", max=max_length)
    return text


def _aware(at: datetime) -> datetime:
    """A time without a zone is Beijing time (what a person types)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=SHANGHAI)


# --- meetings --------------------------------------------------------------------------------------------


def default_invitees(session: Session, today: date | None = None) -> list[Organisation]:
    """Every active department, and every enterprise whose agreement is in force (orgs.agreements)."""
    in_force = in_force_enterprise_ids(session, today)
    stmt = (
        select(Organisation)
        .where(
            Organisation.active.is_(True),
            Organisation.kind.in_([OrgKind.department.value, OrgKind.enterprise.value]),
        )
        .order_by(Organisation.kind, Organisation.name)
    )
    return [o for o in session.scalars(stmt) if o.kind == OrgKind.department.value or o.id in in_force]


def _invitees(session: Session, ids: Iterable[uuid.UUID]) -> list[Organisation]:
    out: list[Organisation] = []
    for org_id in dict.fromkeys(ids):
        org = session.get(Organisation, org_id)
        if org is None or not org.active or org.kind == OrgKind.platform.value:
            raise _invalid(
                "invitees",
                f"no active department or enterprise {org_id}",
                "consultation.invitee_unknown",
                id=str(org_id),
            )
        out.append(org)
    return out


def schedule_meeting(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    title: str,
    starts_at: datetime,
    place: str = "",
    period: str | None = None,
    invitees: list[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> Meeting:
    """Schedule a meeting in the future and e-mail its invitees (after the commit)."""
    now = now or utcnow()
    if kind not in MEETING_KINDS:
        raise _invalid("kind", f"one of {list(MEETING_KINDS)}", "consultation.meeting_kind_unknown", "enum")
    title = _text(title, "title", "consultation.title_empty", 200)
    starts_at = _aware(starts_at)
    if starts_at <= now:
        raise _invalid(
            "starts_at",
            "a meeting cannot be scheduled in the past",
            "consultation.meeting_in_past",
            starts_at=_local(starts_at),
        )
    period = (period or "").strip().upper() or None
    if kind == "regular":
        if period is None:
            raise _invalid(
                "period", "a regular meeting names its quarter, e.g. 2026Q4", "consultation.period_needed",
                "missing",
            )  # fmt: skip
        if not PERIOD.match(period):
            raise _invalid("period", "a quarter such as 2026Q4", "consultation.period_invalid", period=period)
        taken = session.scalar(
            select(Meeting.id).where(
                Meeting.kind == "regular", Meeting.period == period, Meeting.status != "cancelled"
            )
        )
        if taken is not None:
            raise Conflict(
                f"There is already a regular meeting for {period}",
                code="consultation.period_taken",
                params={"period": period},
            )
    elif period is not None:
        raise _invalid(
            "period", "only a regular meeting is for a quarter", "consultation.period_regular_only"
        )
    orgs = (
        _invitees(session, invitees) if invitees is not None else default_invitees(session, china_today(now))
    )
    if not orgs:
        raise _invalid("invitees", "nobody to invite", "consultation.no_invitees", "missing")
    meeting = Meeting(
        kind=kind,
        period=period,
        title=title,
        starts_at=starts_at,
        place=(place or "").strip()[:200],
        status="scheduled",
        created_by=actor.name,
    )
    session.add(meeting)
    session.flush()
    mailed = 0
    for org in orgs:
        session.add(MeetingParticipant(meeting_id=meeting.id, org_id=org.id))
        mailed += _mail(
            session,
            org,
            "consultation.invited",
            f"consultation:{meeting.id}",
            title=meeting.title,
            starts=_local(starts_at),
            place=meeting.place or "—",
        )
    session.flush()
    audit.record(
        session, actor, "consultation.meeting_schedule", "consultation_meeting", meeting.id,
        after=meeting_snapshot(meeting),
        detail={"invited": len(orgs), "mailed": mailed, "without_address": len(orgs) - mailed},
    )  # fmt: skip
    return meeting


def meeting_snapshot(meeting: Meeting) -> dict[str, Any]:
    return {
        "id": str(meeting.id),
        "kind": meeting.kind,
        "period": meeting.period,
        "title": meeting.title,
        "starts_at": meeting.starts_at.isoformat(),
        "place": meeting.place,
        "status": meeting.status,
        "held_at": meeting.held_at.isoformat() if meeting.held_at else None,
    }


def participants(session: Session, meeting: Meeting) -> list[tuple[MeetingParticipant, Organisation]]:
    stmt = (
        select(MeetingParticipant, Organisation)
        .join(Organisation, Organisation.id == MeetingParticipant.org_id)
        .where(MeetingParticipant.meeting_id == meeting.id)
        .order_by(Organisation.kind, Organisation.name)
    )
    return [(p, o) for p, o in session.execute(stmt)]


def invitation_counts(session: Session, meeting: Meeting) -> dict[str, int]:
    """How many were invited, and how many of them have no contact address (not mailed)."""
    rows = participants(session, meeting)
    without = sum(1 for _, o in rows if not o.contact_email)
    return {"invited": len(rows), "without_address": without}


def _is_invited(session: Session, meeting_id: uuid.UUID, org_id: uuid.UUID | None) -> bool:
    if org_id is None:
        return False
    return session.get(MeetingParticipant, (meeting_id, org_id)) is not None


def list_meetings(session: Session, principal: Principal) -> list[Meeting]:
    """The platform sees every meeting; an organisation the meetings it is invited to."""
    stmt = select(Meeting).order_by(Meeting.starts_at.desc())
    if not principal.is_platform:
        stmt = stmt.join(MeetingParticipant, MeetingParticipant.meeting_id == Meeting.id).where(
            MeetingParticipant.org_id == principal.org_id
        )
    return list(session.scalars(stmt))


def get_meeting(session: Session, meeting_id: uuid.UUID, principal: Principal | None = None) -> Meeting:
    """A meeting by id; 404 too when the caller is not invited to it (its existence does not leak)."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None or (
        principal is not None
        and not principal.is_platform
        and not _is_invited(session, meeting_id, principal.org_id)
    ):
        raise NotFound(f"No meeting with id {meeting_id}", code="consultation.meeting_not_found")
    return meeting


def _must_be(meeting: Meeting, *statuses: str) -> None:
    """409 unless the meeting is in one of `statuses`: cancelled, not yet held, or held already."""
    if meeting.status in statuses:
        return
    detail = f"The meeting is {meeting.status}; this needs it {' or '.join(statuses)}"
    if meeting.status == "cancelled":
        raise Conflict(detail, code="consultation.meeting_cancelled")
    if "held" in statuses:
        raise Conflict(detail, code="consultation.meeting_not_held")
    raise Conflict(detail, code="consultation.meeting_held")


def record_attendance(
    session: Session,
    actor: Actor,
    meeting: Meeting,
    org_id: uuid.UUID,
    *,
    attended: bool,
    representative: str | None = None,
) -> MeetingParticipant:
    """Whether an invitee attended, and who represented it (出席情况)."""
    _must_be(meeting, "scheduled", "held")
    row = session.get(MeetingParticipant, (meeting.id, org_id))
    if row is None:
        raise _invalid(
            "org_id", "the organisation is not invited to this meeting", "consultation.not_invited"
        )
    row.attended = attended
    row.representative = (representative or "").strip()[:200] or None
    session.flush()
    audit.record(
        session, actor, "consultation.attendance", "consultation_meeting", meeting.id,
        detail={"org_id": str(org_id), "attended": attended},
    )  # fmt: skip
    return row


def record_minutes(session: Session, actor: Actor, meeting: Meeting, minutes: str) -> Meeting:
    """Write (or correct) a meeting's minutes (会议纪要)."""
    _must_be(meeting, "scheduled", "held")
    before = meeting.minutes
    meeting.minutes = _text(minutes, "minutes", "consultation.minutes_empty")
    session.flush()
    audit.record(
        session, actor, "consultation.minutes", "consultation_meeting", meeting.id,
        before={"minutes": before}, after={"minutes": meeting.minutes},
    )  # fmt: skip
    return meeting


def hold_meeting(
    session: Session,
    actor: Actor,
    meeting: Meeting,
    *,
    minutes: str | None = None,
    now: datetime | None = None,
) -> Meeting:
    """Mark a scheduled meeting held (召开), with its minutes if given; decisions and action items follow."""
    _must_be(meeting, "scheduled")
    before = meeting_snapshot(meeting)
    if minutes is not None and minutes.strip():
        meeting.minutes = minutes.strip()
    meeting.status = "held"
    meeting.held_at = now or utcnow()
    session.flush()
    audit.record(
        session, actor, "consultation.meeting_hold", "consultation_meeting", meeting.id,
        before=before, after=meeting_snapshot(meeting),
    )  # fmt: skip
    return meeting


def cancel_meeting(session: Session, actor: Actor, meeting: Meeting, reason: str) -> Meeting:
    """Cancel a scheduled meeting: its invitees are told why; its agenda items wait for another meeting."""
    _must_be(meeting, "scheduled")
    reason = _text(reason, "reason", "consultation.reason_empty", 500)
    before = meeting_snapshot(meeting)
    meeting.status = "cancelled"
    for item in session.scalars(select(AgendaItem).where(AgendaItem.meeting_id == meeting.id)):
        if item.status == "open":
            item.meeting_id = None
    for _, org in participants(session, meeting):
        _mail(
            session, org, "consultation.cancelled", f"consultation:{meeting.id}",
            title=meeting.title, starts=_local(meeting.starts_at), reason=reason,
        )  # fmt: skip
    session.flush()
    audit.record(
        session, actor, "consultation.meeting_cancel", "consultation_meeting", meeting.id,
        before=before, after=meeting_snapshot(meeting), detail={"reason": reason},
    )  # fmt: skip
    return meeting


# --- agenda items ----------------------------------------------------------------------------------------


def check_measure(measure: str | None) -> str | None:
    """A measure of the catalogue by code or number (1-13), as its code; 422 naming `measure` otherwise."""
    if measure is None or not str(measure).strip():
        return None
    value = str(measure).strip()
    measures = measure_catalogue().measures
    if value in measures:
        return value
    by_number = {str(m.number): code for code, m in measures.items()}
    if value in by_number:
        return by_number[value]
    raise _invalid(
        "measure", f"no measure {value!r} in the catalogue", "consultation.measure_unknown", "enum",
        measure=value,
    )  # fmt: skip


def raise_agenda_item(
    session: Session,
    actor: Actor,
    org_id: uuid.UUID,
    *,
    kind: str,
    title: str,
    body: str = "",
    measure: str | None = None,
    meeting_id: uuid.UUID | None = None,
    is_platform: bool = False,
) -> AgendaItem:
    """A participant raises a matter (议题); it names a scheduled meeting it is invited to, or waits for
    the platform to put it on one."""
    if kind not in ITEM_KINDS:
        raise _invalid("kind", f"one of {list(ITEM_KINDS)}", "consultation.item_kind_unknown", "enum")
    title = _text(title, "title", "consultation.title_empty", 200)
    code = check_measure(measure)
    if kind == "disputed_measure" and code is None:
        raise _invalid(
            "measure", "a disputed measure names the measure", "consultation.measure_needed", "missing"
        )
    org = session.get(Organisation, org_id)
    if org is None or not org.active:
        raise NotFound(f"No organisation {org_id}", code="org.not_found")
    if meeting_id is not None:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or not (is_platform or _is_invited(session, meeting_id, org_id)):
            raise _invalid("meeting_id", "no meeting of yours with this id", "consultation.meeting_unknown")
        _must_be(meeting, "scheduled")
    item = AgendaItem(
        meeting_id=meeting_id,
        owner_org_id=org_id,
        raised_by=actor.name,
        kind=kind,
        title=title,
        body=(body or "").strip(),
        measure=code,
        status="open",
    )
    session.add(item)
    session.flush()
    audit.record(
        session, actor, "consultation.item_raise", "consultation_agenda_item", item.id,
        after=item_snapshot(item),
    )  # fmt: skip
    return item


def item_snapshot(item: AgendaItem) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "meeting_id": str(item.meeting_id) if item.meeting_id else None,
        "owner_org_id": str(item.owner_org_id),
        "kind": item.kind,
        "title": item.title,
        "measure": item.measure,
        "status": item.status,
    }


def schedule_item(session: Session, actor: Actor, item: AgendaItem, meeting: Meeting) -> AgendaItem:
    """Put an open agenda item on a scheduled meeting's agenda (the platform). The organisation that
    raised it is invited (and e-mailed) if it was not."""
    if item.status != "open":
        raise Conflict(
            f"The agenda item is {item.status}", code="consultation.item_not_open",
            params={"status": item.status},
        )  # fmt: skip
    _must_be(meeting, "scheduled")
    before = item_snapshot(item)
    item.meeting_id = meeting.id
    raiser = session.get(Organisation, item.owner_org_id)
    if (
        raiser is not None
        and raiser.kind != OrgKind.platform.value
        and not _is_invited(session, meeting.id, raiser.id)
    ):
        session.add(MeetingParticipant(meeting_id=meeting.id, org_id=raiser.id))
        _mail(
            session, raiser, "consultation.invited", f"consultation:{meeting.id}",
            title=meeting.title, starts=_local(meeting.starts_at), place=meeting.place or "—",
        )  # fmt: skip
    session.flush()
    audit.record(
        session, actor, "consultation.item_schedule", "consultation_agenda_item", item.id,
        before=before, after=item_snapshot(item),
    )  # fmt: skip
    return item


def withdraw_agenda_item(session: Session, principal: Principal, item: AgendaItem) -> AgendaItem:
    """The raising organisation (or the platform's administrator) withdraws an item not yet discussed."""
    if not (principal.role == Role.platform_admin or principal.org_id == item.owner_org_id):
        raise Forbidden(
            "Only the organisation that raised it may withdraw it", code="consultation.not_raiser"
        )
    if item.status != "open":
        raise Conflict(
            f"The agenda item is {item.status}", code="consultation.item_not_open",
            params={"status": item.status},
        )  # fmt: skip
    before = item_snapshot(item)
    item.status = "withdrawn"
    session.flush()
    audit.record(
        session, principal.actor, "consultation.item_withdraw", "consultation_agenda_item", item.id,
        before=before, after=item_snapshot(item),
    )  # fmt: skip
    return item


def list_agenda_items(
    session: Session, principal: Principal, *, meeting_id: uuid.UUID | None = None, unscheduled: bool = False
) -> list[AgendaItem]:
    """The platform sees every item; an organisation its own and those on meetings it is invited to."""
    stmt = select(AgendaItem).order_by(AgendaItem.raised_at)
    if meeting_id is not None:
        stmt = stmt.where(AgendaItem.meeting_id == meeting_id)
    if unscheduled:
        stmt = stmt.where(AgendaItem.meeting_id.is_(None), AgendaItem.status == "open")
    if not principal.is_platform:
        invited = select(MeetingParticipant.meeting_id).where(MeetingParticipant.org_id == principal.org_id)
        stmt = stmt.where(
            or_(AgendaItem.owner_org_id == principal.org_id, AgendaItem.meeting_id.in_(invited))
        )
    return list(session.scalars(stmt))


def get_agenda_item(session: Session, item_id: uuid.UUID, principal: Principal | None = None) -> AgendaItem:
    item = session.get(AgendaItem, item_id)
    visible = item is not None and (
        principal is None
        or principal.is_platform
        or item.owner_org_id == principal.org_id
        or (item.meeting_id is not None and _is_invited(session, item.meeting_id, principal.org_id))
    )
    if item is None or not visible:
        raise NotFound(f"No agenda item with id {item_id}", code="consultation.item_not_found")
    return item


# --- decisions and action items --------------------------------------------------------------------------


def record_decision(
    session: Session, actor: Actor, meeting: Meeting, *, text: str, agenda_item_id: uuid.UUID | None = None
) -> ConsultationDecision:
    """A decision of a held meeting (会商决定), on one of its agenda items (then discussed) or none."""
    _must_be(meeting, "held")
    text = _text(text, "text", "consultation.decision_empty")
    item = None
    if agenda_item_id is not None:
        item = session.get(AgendaItem, agenda_item_id)
        if item is None or item.meeting_id != meeting.id:
            raise _invalid(
                "agenda_item_id", "not an item of this meeting's agenda", "consultation.item_not_on_agenda"
            )
    decision = ConsultationDecision(
        meeting_id=meeting.id, agenda_item_id=agenda_item_id, text=text, recorded_by=actor.name
    )
    session.add(decision)
    if item is not None and item.status == "open":
        item.status = "discussed"
    session.flush()
    item_ref = str(agenda_item_id) if agenda_item_id else None
    audit.record(
        session, actor, "consultation.decision", "consultation_decision", decision.id,
        after={"meeting_id": str(meeting.id), "agenda_item_id": item_ref, "text": text},
    )  # fmt: skip
    return decision


def list_decisions(session: Session, meeting: Meeting) -> list[ConsultationDecision]:
    stmt = (
        select(ConsultationDecision)
        .where(ConsultationDecision.meeting_id == meeting.id)
        .order_by(ConsultationDecision.decided_at)
    )
    return list(session.scalars(stmt))


def get_decision(
    session: Session, decision_id: uuid.UUID, principal: Principal | None = None, *, field: str | None = None
) -> ConsultationDecision:
    """A decision by id (visible with its meeting); with `field`, a missing one is a 422 naming it."""
    decision = session.get(ConsultationDecision, decision_id)
    if (
        decision is not None
        and principal is not None
        and not principal.is_platform
        and not _is_invited(session, decision.meeting_id, principal.org_id)
    ):
        decision = None  # another meeting's: as if there were none
    if decision is None:
        if field is not None:
            raise _invalid(field, f"no consultation decision {decision_id}", "consultation.decision_unknown")
        raise NotFound(f"No decision with id {decision_id}", code="consultation.decision_not_found")
    return decision


def add_action_item(
    session: Session,
    actor: Actor,
    meeting: Meeting,
    *,
    owner_org_id: uuid.UUID | None,
    title: str,
    decision_id: uuid.UUID | None = None,
    due_on: date | None = None,
    working_days: int | None = None,
    today: date | None = None,
) -> ActionItem:
    """An action item of a held meeting: an owner, a due day in PRC working days from today or a date not
    in the past; the owner is e-mailed."""
    today = today or china_today()
    _must_be(meeting, "held")
    if owner_org_id is None:
        raise _invalid(
            "owner_org_id", "an action item needs an owner", "consultation.owner_required", "missing"
        )
    owner = session.get(Organisation, owner_org_id)
    if owner is None or not owner.active:
        raise _invalid("owner_org_id", f"no active organisation {owner_org_id}", "consultation.owner_unknown")
    title = _text(title, "title", "consultation.title_empty", 500)
    if decision_id is not None:
        decision = session.get(ConsultationDecision, decision_id)
        if decision is None or decision.meeting_id != meeting.id:
            raise _invalid(
                "decision_id", "not a decision of this meeting", "consultation.decision_not_of_meeting"
            )
    if (due_on is None) == (working_days is None):
        raise _invalid(
            "due_on", "give either a due date or a number of working days", "consultation.due_needed",
            "missing",
        )  # fmt: skip
    if working_days is not None:
        if working_days < 1:
            raise _invalid("working_days", "at least 1 working day", "consultation.working_days_invalid")
        due_on = add_working_days(today, working_days)
    assert due_on is not None
    if due_on < today:
        raise _invalid(
            "due_on", "the due date must not be in the past", "consultation.due_in_past",
            due_on=due_on.isoformat(),
        )  # fmt: skip
    item = ActionItem(
        meeting_id=meeting.id,
        decision_id=decision_id,
        owner_org_id=owner.id,
        title=title,
        due_on=due_on,
        status="open",
        created_by=actor.name,
    )
    session.add(item)
    session.flush()
    _mail(
        session, owner, "consultation.action_assigned", f"consultation-action:{item.id}",
        meeting=meeting.title, title=title, due=due_on.isoformat(),
    )  # fmt: skip
    audit.record(
        session, actor, "consultation.action_add", "consultation_action_item", item.id,
        after=action_snapshot(item),
    )  # fmt: skip
    return item


def action_snapshot(item: ActionItem) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "meeting_id": str(item.meeting_id),
        "decision_id": str(item.decision_id) if item.decision_id else None,
        "owner_org_id": str(item.owner_org_id),
        "title": item.title,
        "due_on": item.due_on.isoformat(),
        "status": item.status,
        "closing_note": item.closing_note,
    }


def may_close(principal: Principal, item: ActionItem) -> bool:
    """Its owner organisation closes an action item, or the platform's administrator."""
    return principal.role == Role.platform_admin or (
        principal.org_id is not None and principal.org_id == item.owner_org_id
    )


def close_action_item(
    session: Session,
    principal: Principal,
    item: ActionItem,
    note: str,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> ActionItem:
    """Close an action item with a note on what was done (办结情况)."""
    if not may_close(principal, item):
        raise Forbidden("Only the owner of an action item may close it", code="consultation.not_owner")
    if item.status != "open":
        raise Conflict("The action item is closed already", code="consultation.action_closed")
    note = _text(note, "note", "consultation.note_empty", 2000)
    actor = actor or principal.actor
    before = action_snapshot(item)
    item.status = "closed"
    item.closing_note = note
    item.closed_at = now or utcnow()
    item.closed_by = actor.name
    session.flush()
    audit.record(
        session, actor, "consultation.action_close", "consultation_action_item", item.id,
        before=before, after=action_snapshot(item),
    )  # fmt: skip
    return item


def get_action_item(session: Session, item_id: uuid.UUID, principal: Principal | None = None) -> ActionItem:
    """An action item by id; 404 too when it is another organisation's."""
    item = session.get(ActionItem, item_id)
    if item is None or (
        principal is not None and not principal.is_platform and item.owner_org_id != principal.org_id
    ):
        raise NotFound(f"No action item with id {item_id}", code="consultation.action_not_found")
    return item


def list_action_items(
    session: Session,
    principal: Principal | None = None,
    *,
    meeting_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    status: str | None = None,
    overdue_on: date | None = None,
) -> list[ActionItem]:
    """Action items (the platform all, an organisation its own), optionally of one meeting, owner, status,
    or overdue on a day."""
    stmt = select(ActionItem).order_by(ActionItem.due_on, ActionItem.created_at)
    if principal is not None and not principal.is_platform:
        stmt = stmt.where(ActionItem.owner_org_id == principal.org_id)
    if meeting_id is not None:
        stmt = stmt.where(ActionItem.meeting_id == meeting_id)
    if org_id is not None:
        stmt = stmt.where(ActionItem.owner_org_id == org_id)
    if status is not None:
        stmt = stmt.where(ActionItem.status == status)
    if overdue_on is not None:
        stmt = stmt.where(ActionItem.status == "open", ActionItem.due_on < overdue_on)
    return list(session.scalars(stmt))


def open_action_items(session: Session, org_id: uuid.UUID | None = None) -> list[ActionItem]:
    return list_action_items(session, org_id=org_id, status="open")


def overdue_action_items(session: Session, today: date, org_id: uuid.UUID | None = None) -> list[ActionItem]:
    """Open after their due day (逾期), like instructions."""
    return list_action_items(session, org_id=org_id, overdue_on=today)


REMINDED = "consultation.action_remind"


def remind_overdue(session: Session, today: date | None = None, *, actor: Actor | None = None) -> int:
    """E-mail each overdue action item's owner, once a day (the jobs loop runs more often): the reminder
    is recorded in the audit log with its day, and a day already reminded is not mailed again."""
    today = today or china_today()
    actor = actor or Actor("system:jobs")
    sent = 0
    for item in overdue_action_items(session, today):
        done = session.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.action == REMINDED, AuditEvent.target_id == str(item.id)
            )
        )
        if any((d or {}).get("day") == today.isoformat() for d in done):
            continue
        owner = session.get(Organisation, item.owner_org_id)
        mailed = _mail(
            session, owner, "consultation.action_overdue", f"consultation-action:{item.id}",
            title=item.title, due=item.due_on.isoformat(),
        )  # fmt: skip
        audit.record(
            session, actor, REMINDED, "consultation_action_item", item.id,
            detail={"day": today.isoformat(), "mailed": mailed},
        )  # fmt: skip
        sent += mailed
    return sent


# --- the policy citing a decision ------------------------------------------------------------------------


def load_policy_citing(
    session: Session, actor: Actor, text: str, filename: str, decision_id: uuid.UUID
) -> PolicyVersion:
    """Load a new policy version (sanctions.service.load_policy, its own checks) that cites the
    consultation decision that led to it (会商决定)."""
    decision = get_decision(session, decision_id, field="consultation_decision_id")
    row = sanctions.load_policy(session, actor, text, filename)
    row.consultation_decision_id = decision.id
    session.flush()
    audit.record(
        session, actor, "consultation.policy_cite", "policy", row.version,
        detail={"consultation_decision_id": str(decision.id)},
    )  # fmt: skip
    return row


def citing_policies(session: Session, decision_id: uuid.UUID) -> list[PolicyVersion]:
    """The policy versions that cite a decision."""
    stmt = (
        select(PolicyVersion)
        .where(PolicyVersion.consultation_decision_id == decision_id)
        .order_by(PolicyVersion.loaded_at)
    )
    return list(session.scalars(stmt))
