"""Tables of the notice before listing (告知书) and the subject's statements (陈述申辩).

A `Notice` is issued once per entry, when its notice period opens. What it told the subject is kept as
it was issued (`content`): the notice is a legal act, and what the subject was told must be shown as it
was even after the entry is corrected, the policy changes or a catalogue is reworded; the HTML and the
PDF are both rendered from that one record, so they always say the same. The record names the subject
and its identifiers (masked on the notice, the name in full) and the postal address of a letter, so it
is sealed (`vault.EncryptedJSON`). Where it went is kept masked only (`delivered_to`).

A `Statement` is a case like an objection (tracking number and secret, attachments — `appeals.cases`),
filed by the subject while the notice period runs; the reviewer answers each one when publishing the
entry or rejecting it. Its text stays plain, as an objection's grounds do: it is the filer's own account,
not a structured identifier or contact; the filer's e-mail is sealed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import Date, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow
from fanchaoxin.core.vault import Encrypted, EncryptedJSON

CHANNELS = ("email", "sms", "letter")
# queued: handed to the mail or SMS service, sent after the commit; sent / failed: what it answered;
# letter_required: no e-mail and no phone — a reviewer prints the letter (the PDF) and posts it.
# letter_posted: the reviewer posted it and recorded when, with the postal reference.
DELIVERY_STATUSES = ("queued", "sent", "failed", "letter_required", "letter_posted")


class Notice(Base):
    """The notice before listing (告知书) of one entry: its number, period, channel and delivery."""

    __tablename__ = "notices"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # GZ20261205-XXXXXXXX
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), unique=True)
    issued_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)  # the last day a statement may be filed (inclusive)
    channel: Mapped[str] = mapped_column(String(16))  # email | sms | letter
    delivered_to: Mapped[str | None] = mapped_column(String(300))  # masked: ***@example.com, +86 138…
    delivery_status: Mapped[str] = mapped_column(String(16), index=True)
    delivery_note: Mapped[str | None] = mapped_column(Text)  # why a delivery failed (no personal data)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("notices.content"))
    issued_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "entry_id": str(self.entry_id),
            "issued_on": self.issued_on.isoformat(),
            "ends_on": self.ends_on.isoformat(),
            "channel": self.channel,
            "delivered_to": self.delivered_to,
            "delivery_status": self.delivery_status,
        }


class Statement(Base):
    """A statement and defence (陈述申辩) the subject files during the notice period, with its answer."""

    __tablename__ = "statements"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tracking_number: Mapped[str] = mapped_column(String(32), unique=True)  # CS20261205-XXXXXXXX
    secret_hash: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), index=True)
    notice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notices.id"), index=True)
    # Tenancy as for an objection: none for the public path, the platform when a reviewer files it.
    owner_org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # received | answered
    channel: Mapped[str] = mapped_column(String(16))  # public | reviewer
    filed_by: Mapped[str] = mapped_column(String(200))
    # Which of the subject's identifiers the filer proved (the value itself is not kept here).
    identifier_type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    contact_email: Mapped[str | None] = mapped_column(Encrypted("statements.contact_email"))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filed_on: Mapped[date] = mapped_column(Date)
    notice_ends_on: Mapped[date] = mapped_column(Date)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(200))
    # What followed the answer: the entry was published, or rejected (the statement convinced).
    outcome: Mapped[str | None] = mapped_column(String(16))  # published | rejected
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "tracking_number": self.tracking_number,
            "entry_id": str(self.entry_id),
            "status": self.status,
            "notice_ends_on": self.notice_ends_on.isoformat(),
            "answered": self.answer is not None,
            "outcome": self.outcome,
        }
