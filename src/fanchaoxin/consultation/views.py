"""Routes of the regular consultation (定期会商): meetings, agenda items, minutes, decisions, action items.

The platform's administrator schedules, holds and cancels meetings, records attendance, minutes,
decisions and action items; every participant (an enterprise's operator, a department's officer, the
platform) raises agenda items and reads the meetings it is invited to; an action item's owner closes it.
The rules are `consultation.service`'s.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Body, Query, status
from pydantic import Field
from sqlalchemy.orm import Session

from fanchaoxin.consultation import service
from fanchaoxin.consultation.models import (
    ActionItem,
    ConsultationDecision,
    Meeting,
    MeetingParticipant,
)
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.roles import Role
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.policy import PolicyError

router = APIRouter(prefix="/v1/consultation", tags=["consultation"])

R = Role
# Who reads meetings, agenda items, decisions and action items (each within what it may see).
READERS = (R.platform_admin, R.platform_reviewer, R.auditor, R.department_officer, R.enterprise_operator)
# Who raises agenda items: every participant's people.
RAISERS = (R.platform_admin, R.platform_reviewer, R.department_officer, R.enterprise_operator)
# Who closes an action item: its owner's people, or the platform's administrator.
CLOSERS = (R.platform_admin, R.department_officer, R.enterprise_operator)
ADMIN = R.platform_admin


# --- bodies ----------------------------------------------------------------------------------------------


class MeetingIn(StrictModel):
    kind: str = Field(description="regular (a quarter's) | ad_hoc")
    title: str = Field(max_length=200)
    starts_at: datetime = Field(description="When it starts; without a zone, Beijing time. Must be future.")
    place: str = Field("", max_length=200)
    period: str | None = Field(None, description="A regular meeting's quarter, e.g. 2026Q4.")
    invitees: list[uuid.UUID] | None = Field(
        None, description="Organisations invited; left out, every active department and enterprise."
    )


class ParticipantOut(ResponseModel):
    org_id: uuid.UUID
    org_name: str
    org_kind: str
    attended: bool | None
    representative: str | None


class MeetingOut(ResponseModel):
    id: uuid.UUID
    kind: str
    period: str | None
    title: str
    starts_at: datetime
    place: str
    status: str
    minutes: str | None
    held_at: datetime | None
    created_at: datetime


class ScheduledOut(MeetingOut):
    invited: int
    without_address: int = Field(description="Invitees without a contact e-mail address (not mailed).")


class AgendaItemIn(StrictModel):
    kind: str = Field(description="disputed_measure | data_quality | new_pattern | policy_change | other")
    title: str = Field(max_length=200)
    body: str = Field("", max_length=10000)
    measure: str | None = Field(None, description="The disputed measure: its code or number (1-13).")
    meeting_id: uuid.UUID | None = Field(None, description="A scheduled meeting the raiser is invited to.")


class AgendaItemOut(ResponseModel):
    id: uuid.UUID
    meeting_id: uuid.UUID | None
    owner_org_id: uuid.UUID
    kind: str
    title: str
    body: str
    measure: str | None
    status: str
    raised_at: datetime


class ScheduleItemIn(StrictModel):
    meeting_id: uuid.UUID


class AttendanceIn(StrictModel):
    org_id: uuid.UUID
    attended: bool
    representative: str | None = Field(None, max_length=200)


class MinutesIn(StrictModel):
    minutes: str = Field(max_length=100000)


class HoldIn(StrictModel):
    minutes: str | None = Field(None, max_length=100000)


class CancelIn(StrictModel):
    reason: str = Field(max_length=500)


class DecisionIn(StrictModel):
    text: str = Field(max_length=20000)
    agenda_item_id: uuid.UUID | None = None


class DecisionOut(ResponseModel):
    id: uuid.UUID
    meeting_id: uuid.UUID
    agenda_item_id: uuid.UUID | None
    text: str
    decided_at: datetime


class CitingPolicyOut(ResponseModel):
    version: str
    active: bool
    loaded_at: datetime


class DecisionDetailOut(DecisionOut):
    policies: list[CitingPolicyOut] = Field(description="The policy versions that cite this decision.")


class ActionItemIn(StrictModel):
    owner_org_id: uuid.UUID | None = Field(None, description="The organisation responsible (required).")
    title: str = Field(max_length=500)
    decision_id: uuid.UUID | None = None
    due_on: date | None = Field(None, description="A due date not in the past; or give working_days.")
    working_days: int | None = Field(None, description="Due this many PRC working days from today.")


class ActionItemOut(ResponseModel):
    id: uuid.UUID
    meeting_id: uuid.UUID
    decision_id: uuid.UUID | None
    owner_org_id: uuid.UUID
    title: str
    due_on: date
    status: str
    overdue: bool
    closed_at: datetime | None
    closing_note: str | None


class ClosureIn(StrictModel):
    note: str = Field(max_length=2000)


class MeetingDetailOut(MeetingOut):
    participants: list[ParticipantOut]
    agenda: list[AgendaItemOut]
    decisions: list[DecisionOut]
    action_items: list[ActionItemOut] = Field(description="The platform: all; an organisation: its own.")


# --- shaping ---------------------------------------------------------------------------------------------


def _meeting_out(m: Meeting) -> dict[str, Any]:
    return {f: getattr(m, f) for f in MeetingOut.model_fields}


def _action_out(item: ActionItem, today: date) -> ActionItemOut:
    data = {f: getattr(item, f) for f in ActionItemOut.model_fields if f != "overdue"}
    return ActionItemOut(**data, overdue=item.overdue(today))


def _participant_out(p: MeetingParticipant, org: Organisation) -> ParticipantOut:
    return ParticipantOut(
        org_id=org.id,
        org_name=org.name,
        org_kind=org.kind,
        attended=p.attended,
        representative=p.representative,
    )


def _decision(session: Session, decision: ConsultationDecision) -> DecisionDetailOut:
    policies = [CitingPolicyOut.model_validate(p) for p in service.citing_policies(session, decision.id)]
    return DecisionDetailOut(**DecisionOut.model_validate(decision).model_dump(), policies=policies)


# --- meetings --------------------------------------------------------------------------------------------


@router.post(
    "/meetings",
    response_model=ScheduledOut,
    status_code=status.HTTP_201_CREATED,
    summary="Schedule a meeting",
)
def schedule_meeting(
    body: MeetingIn, session: Session = DB, principal: Principal = allow(ADMIN)
) -> ScheduledOut:
    meeting = service.schedule_meeting(
        session,
        principal.actor,
        kind=body.kind,
        title=body.title,
        starts_at=body.starts_at,
        place=body.place,
        period=body.period,
        invitees=body.invitees,
    )
    counts = service.invitation_counts(session, meeting)
    return ScheduledOut(
        **_meeting_out(meeting), invited=counts["invited"], without_address=counts["without_address"]
    )


@router.get(
    "/meetings", response_model=list[MeetingOut], summary="Meetings (an organisation: those it is invited to)"
)
def list_meetings(session: Session = DB, principal: Principal = allow(*READERS)) -> list[MeetingOut]:
    return [MeetingOut(**_meeting_out(m)) for m in service.list_meetings(session, principal)]


@router.get(
    "/meetings/{meeting_id}", response_model=MeetingDetailOut, summary="A meeting with its agenda and outcome"
)
def get_meeting(
    meeting_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*READERS)
) -> MeetingDetailOut:
    meeting = service.get_meeting(session, meeting_id, principal)
    today = china_today()
    return MeetingDetailOut(
        **_meeting_out(meeting),
        participants=[_participant_out(p, o) for p, o in service.participants(session, meeting)],
        agenda=[
            AgendaItemOut.model_validate(i)
            for i in service.list_agenda_items(session, principal, meeting_id=meeting.id)
        ],
        decisions=[DecisionOut.model_validate(d) for d in service.list_decisions(session, meeting)],
        action_items=[
            _action_out(a, today)
            for a in service.list_action_items(session, principal, meeting_id=meeting.id)
        ],
    )


@router.post(
    "/meetings/{meeting_id}/attendance", response_model=ParticipantOut, summary="Record an attendance"
)
def record_attendance(
    meeting_id: uuid.UUID, body: AttendanceIn, session: Session = DB, principal: Principal = allow(ADMIN)
) -> ParticipantOut:
    meeting = service.get_meeting(session, meeting_id)
    row = service.record_attendance(
        session,
        principal.actor,
        meeting,
        body.org_id,
        attended=body.attended,
        representative=body.representative,
    )
    org = session.get(Organisation, row.org_id)
    assert org is not None
    return _participant_out(row, org)


@router.post("/meetings/{meeting_id}/minutes", response_model=MeetingOut, summary="Write the minutes")
def record_minutes(
    meeting_id: uuid.UUID, body: MinutesIn, session: Session = DB, principal: Principal = allow(ADMIN)
) -> MeetingOut:
    meeting = service.record_minutes(
        session, principal.actor, service.get_meeting(session, meeting_id), body.minutes
    )
    return MeetingOut(**_meeting_out(meeting))


@router.post("/meetings/{meeting_id}/hold", response_model=MeetingOut, summary="Mark the meeting held")
def hold_meeting(
    meeting_id: uuid.UUID,
    body: HoldIn | None = None,
    session: Session = DB,
    principal: Principal = allow(ADMIN),
) -> MeetingOut:
    meeting = service.hold_meeting(
        session,
        principal.actor,
        service.get_meeting(session, meeting_id),
        minutes=body.minutes if body else None,
    )
    return MeetingOut(**_meeting_out(meeting))


@router.post("/meetings/{meeting_id}/cancellation", response_model=MeetingOut, summary="Cancel the meeting")
def cancel_meeting(
    meeting_id: uuid.UUID, body: CancelIn, session: Session = DB, principal: Principal = allow(ADMIN)
) -> MeetingOut:
    meeting = service.cancel_meeting(
        session, principal.actor, service.get_meeting(session, meeting_id), body.reason
    )
    return MeetingOut(**_meeting_out(meeting))


# --- agenda items ----------------------------------------------------------------------------------------


@router.post(
    "/agenda-items",
    response_model=AgendaItemOut,
    status_code=status.HTTP_201_CREATED,
    summary="Raise an agenda item",
)
def raise_agenda_item(
    body: AgendaItemIn, session: Session = DB, principal: Principal = allow(*RAISERS)
) -> AgendaItemOut:
    assert principal.org_id is not None
    item = service.raise_agenda_item(
        session,
        principal.actor,
        principal.org_id,
        kind=body.kind,
        title=body.title,
        body=body.body,
        measure=body.measure,
        meeting_id=body.meeting_id,
        is_platform=principal.is_platform,
    )
    return AgendaItemOut.model_validate(item)


@router.get("/agenda-items", response_model=list[AgendaItemOut], summary="Agenda items the caller may see")
def list_agenda_items(
    meeting_id: uuid.UUID | None = None,
    unscheduled: bool = Query(False, description="Only open items not yet on a meeting's agenda."),
    session: Session = DB,
    principal: Principal = allow(*READERS),
) -> list[AgendaItemOut]:
    items = service.list_agenda_items(session, principal, meeting_id=meeting_id, unscheduled=unscheduled)
    return [AgendaItemOut.model_validate(i) for i in items]


@router.post(
    "/agenda-items/{item_id}/schedule", response_model=AgendaItemOut, summary="Put it on a meeting's agenda"
)
def schedule_item(
    item_id: uuid.UUID, body: ScheduleItemIn, session: Session = DB, principal: Principal = allow(ADMIN)
) -> AgendaItemOut:
    item = service.get_agenda_item(session, item_id)
    meeting = service.get_meeting(session, body.meeting_id)
    return AgendaItemOut.model_validate(service.schedule_item(session, principal.actor, item, meeting))


@router.post(
    "/agenda-items/{item_id}/withdrawal", response_model=AgendaItemOut, summary="Withdraw an agenda item"
)
def withdraw_item(
    item_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*RAISERS)
) -> AgendaItemOut:
    item = service.get_agenda_item(session, item_id, principal)
    return AgendaItemOut.model_validate(service.withdraw_agenda_item(session, principal, item))


# --- decisions -------------------------------------------------------------------------------------------


@router.post(
    "/meetings/{meeting_id}/decisions",
    response_model=DecisionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Record a decision of a held meeting",
)
def record_decision(
    meeting_id: uuid.UUID, body: DecisionIn, session: Session = DB, principal: Principal = allow(ADMIN)
) -> DecisionOut:
    meeting = service.get_meeting(session, meeting_id)
    decision = service.record_decision(
        session, principal.actor, meeting, text=body.text, agenda_item_id=body.agenda_item_id
    )
    return DecisionOut.model_validate(decision)


@router.get(
    "/decisions/{decision_id}",
    response_model=DecisionDetailOut,
    summary="A decision and the policies citing it",
)
def get_decision(
    decision_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*READERS)
) -> DecisionDetailOut:
    return _decision(session, service.get_decision(session, decision_id, principal))


@router.post(
    "/decisions/{decision_id}/policy",
    status_code=status.HTTP_201_CREATED,
    summary="Load a new policy version (YAML body) that cites this decision",
)
def load_policy_citing(
    decision_id: uuid.UUID,
    request_body: str = Body(..., media_type="application/yaml"),
    session: Session = DB,
    principal: Principal = allow(ADMIN, fresh=True),
) -> dict[str, Any]:
    try:
        row = service.load_policy_citing(session, principal.actor, request_body, "policy.yaml", decision_id)
    except PolicyError as exc:
        raise ValidationProblem(
            str(exc), errors=[{"in": "body", "field": "policy", "type": "policy", "message": str(exc)}]
        ) from exc
    return {
        "version": row.version,
        "active": row.active,
        "loaded_at": row.loaded_at.isoformat(),
        "consultation_decision_id": str(row.consultation_decision_id),
    }


# --- action items ----------------------------------------------------------------------------------------


@router.post(
    "/meetings/{meeting_id}/action-items",
    response_model=ActionItemOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add an action item (an owner, a due day)",
)
def add_action_item(
    meeting_id: uuid.UUID, body: ActionItemIn, session: Session = DB, principal: Principal = allow(ADMIN)
) -> ActionItemOut:
    meeting = service.get_meeting(session, meeting_id)
    today = china_today()
    item = service.add_action_item(
        session,
        principal.actor,
        meeting,
        owner_org_id=body.owner_org_id,
        title=body.title,
        decision_id=body.decision_id,
        due_on=body.due_on,
        working_days=body.working_days,
        today=today,
    )
    return _action_out(item, today)


@router.get(
    "/action-items", response_model=list[ActionItemOut], summary="Action items (an organisation: its own)"
)
def list_action_items(
    overdue: bool = Query(False, description="Only those open after their due day."),
    item_status: str | None = Query(None, alias="status", pattern="^(open|closed)$"),
    meeting_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = Query(None, description="Platform staff: one owner's items."),
    session: Session = DB,
    principal: Principal = allow(*READERS),
) -> list[ActionItemOut]:
    today = china_today()
    items = service.list_action_items(
        session,
        principal,
        meeting_id=meeting_id,
        org_id=org_id,
        status=item_status,
        overdue_on=today if overdue else None,
    )
    return [_action_out(i, today) for i in items]


@router.post(
    "/action-items/{item_id}/closure",
    response_model=ActionItemOut,
    summary="Close an action item with a note",
)
def close_action_item(
    item_id: uuid.UUID, body: ClosureIn, session: Session = DB, principal: Principal = allow(*CLOSERS)
) -> ActionItemOut:
    item = service.get_action_item(session, item_id, principal)
    service.close_action_item(session, principal, item, body.note)
    return _action_out(item, china_today())
