"""Tables of the consultation mechanism (定期会商)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow


class Meeting(Base):
    """A consultation meeting (会商会议): regular (a quarter's) or called ad hoc."""

    __tablename__ = "consultation_meetings"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # regular | ad_hoc
    # The period a regular meeting is for (2026Q4); None for an ad hoc one.
    period: Mapped[str | None] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    place: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(
        String(16), default="scheduled", index=True
    )  # scheduled | held | cancelled
    minutes: Mapped[str | None] = mapped_column(Text)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class MeetingParticipant(Base):
    """An organisation invited to a meeting, and whether it attended (出席)."""

    __tablename__ = "consultation_participants"

    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultation_meetings.id"), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True, index=True)
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attended: Mapped[bool | None] = mapped_column(Boolean)
    representative: Mapped[str | None] = mapped_column(String(200))


class AgendaItem(Base):
    """A matter a participant raises for consultation (议题): a disputed measure, a data-quality problem,
    a new 炒信 pattern, a request to change the policy, or another matter."""

    __tablename__ = "consultation_agenda_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    meeting_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consultation_meetings.id"), index=True)
    # Tenancy: the raising organisation owns its item.
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    raised_by: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    measure: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(16), default="open", index=True
    )  # open | discussed | withdrawn
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsultationDecision(Base):
    """A decision recorded at a meeting (会商决定); a policy version may cite it."""

    __tablename__ = "consultation_decisions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultation_meetings.id"), index=True)
    agenda_item_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consultation_agenda_items.id"))
    text: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(200))


class ActionItem(Base):
    """What a decision asks one organisation to do by a day (督办事项), tracked to closure; overdue after
    its due day like an instruction."""

    __tablename__ = "consultation_action_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consultation_meetings.id"), index=True)
    decision_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consultation_decisions.id"), index=True)
    # Tenancy: the owner (责任单位) sees and closes its items.
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    due_on: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | closed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(200))
    closing_note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    def overdue(self, today: date) -> bool:
        """Still open after its due day."""
        return self.status == "open" and today > self.due_on
