"""The table of requests for more material (补正通知) on an objection or a credit repair application.

A reviewer asks the filer for specific material by a date; while the request is open the case waits for
it. One open request per case (`open_case_id` unique, cleared when the request is closed), even when two
reviewers ask at the same moment. `paused_working_days` records how far the case's own deadlines were
moved when the request closed (`appeals.supplements`). The reviewer's words stay plain, like the grounds
of the case they answer: they say what is missing, not who the filer is.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import Date, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow


class SupplementRequest(Base):
    """A request for more material (补正) on one case, and how it ended."""

    __tablename__ = "supplement_requests"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_type: Mapped[str] = mapped_column(String(16))  # objection | repair
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    open_case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    tracking_number: Mapped[str] = mapped_column(String(32), index=True)
    materials: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | received | lapsed | withdrawn
    requested_on: Mapped[date] = mapped_column(Date)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(200))
    closed_on: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(200))
    close_note: Mapped[str | None] = mapped_column(Text)
    paused_working_days: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "case_type": self.case_type,
            "case_id": str(self.case_id),
            "status": self.status,
            "due_on": self.due_on.isoformat(),
            "requested_on": self.requested_on.isoformat(),
            "closed_on": self.closed_on.isoformat() if self.closed_on else None,
            "paused_working_days": self.paused_working_days,
        }
