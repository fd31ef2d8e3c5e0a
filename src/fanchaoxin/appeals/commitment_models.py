"""Tables of credit commitments (信用承诺) made for repair, and their breaches.

One commitment per approved repair application: the applicant's own words, kept for a term from the
approval (`FCX_COMMITMENT_TERM_MONTHS`). Its status is `in_force` during the term, `fulfilled` once the
term ended without a breach, `breached` when a new submission against the subject (after merges) falls
within the term — the first such entry is `breached_by_entry_id` and the reviewer is shown the commitment.

The text is encrypted at rest (core.vault): a natural person commits in their own name ("本人张小三
（身份证号…）承诺……") and often gives an identifier or a phone; what is published of it is masked
(`appeals.commitments.published_text`). The repair application keeps its own copy as filed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow
from fanchaoxin.core.vault import Encrypted


class CreditCommitment(Base):
    """A credit commitment (信用承诺) made to repair an entry, tracked for its term (履约期)."""

    __tablename__ = "credit_commitments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # The subject as it was at the repair; a later merge is followed (`subjects.service.survivor`).
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), unique=True)
    repair_application_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("repair_applications.id"), unique=True
    )
    text: Mapped[str] = mapped_column(Encrypted("credit_commitments.text"))
    made_on: Mapped[date] = mapped_column(Date, index=True)
    term_ends_on: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # in_force | fulfilled | breached
    breached_by_entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("entries.id"), index=True)
    breach_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fulfilled_on: Mapped[date | None] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def snapshot(self) -> dict[str, Any]:
        """What the audit log keeps: never the text (it may name a person)."""
        return {
            "id": str(self.id),
            "subject_id": str(self.subject_id),
            "entry_id": str(self.entry_id),
            "repair_application_id": str(self.repair_application_id),
            "made_on": self.made_on.isoformat(),
            "term_ends_on": self.term_ends_on.isoformat(),
            "status": self.status,
            "breached_by_entry_id": str(self.breached_by_entry_id) if self.breached_by_entry_id else None,
            "fulfilled_on": self.fulfilled_on.isoformat() if self.fulfilled_on else None,
        }
