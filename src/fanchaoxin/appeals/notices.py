"""The notice before listing (告知书): produced when the notice period opens, delivered, recorded."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import Actor


def issue_notice(session: Session, actor: Actor, entry: Entry, *, today: date) -> None:
    """Produce the notice of this entry and deliver it to the subject's contact (or print a letter)."""
