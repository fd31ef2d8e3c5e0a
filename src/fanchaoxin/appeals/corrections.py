"""Restoration of reputation (恢复信誉): the public correction notice of every revoked entry of the public
list.

Only the public 失信 list (lists.yaml, `core.catalogue.public_bases`) is announced in public: a revoked
enterprise finding (the market-shared list) gets no public correction notice — it was never public,
and a notice would make it so. The participating enterprises, the only ones who knew of it, learn of
the revocation through the change feed's `revoked` event and their lift instructions.
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.models import CorrectionNotice
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.catalogue import catalogues, public_bases
from fanchaoxin.core.identifiers import mask_person_name
from fanchaoxin.core.settings import get_settings
from fanchaoxin.subjects.service import is_personal


def publish_correction(
    session: Session, actor: Actor, entry: Entry, *, reason: str, today: date | None = None
) -> CorrectionNotice | None:
    """A public correction notice for a revoked entry of the public list (the workflow asks on every
    revocation); None for an entry of the market-shared list, which is never announced in public."""
    if entry.basis not in public_bases():
        return None
    today = today or china_today()
    existing = session.scalar(select(CorrectionNotice).where(CorrectionNotice.entry_id == entry.id))
    if existing is not None:
        return existing
    subject = entry.subject
    name = mask_person_name(subject.name) if is_personal(subject.kind) else subject.name
    notice = CorrectionNotice(
        entry_id=entry.id,
        subject_kind=subject.kind,
        subject_name=name,
        reason=reason.strip() or "revoked",
        revoked_on=today,
        lifts_due_on=add_working_days(today, get_settings().instruction_ack_working_days),
        published_by=actor.name,
    )
    session.add(notice)
    session.flush()
    audit.record(
        session,
        actor,
        "correction.publish",
        "correction",
        notice.id,
        after={"id": str(notice.id), "entry_id": str(entry.id), "revoked_on": today.isoformat()},
        detail={"entry_id": str(entry.id)},
    )
    return notice


def attach_to_objection(
    session: Session, objection_id: uuid.UUID, entry_ids: list[uuid.UUID], public_reason: str
) -> None:
    """The notices of entries an objection revoked name it, and give the public reason, not the case."""
    for notice in session.scalars(select(CorrectionNotice).where(CorrectionNotice.entry_id.in_(entry_ids))):
        notice.objection_id = objection_id
        notice.reason = public_reason.strip()
    session.flush()


def list_corrections(session: Session, *, limit: int = 100, offset: int = 0) -> list[CorrectionNotice]:
    """The public correction notices, newest first: of entries on the public list only (a notice kept
    from before the two lists, of an enterprise finding, stays off the public page)."""
    return list(
        session.scalars(
            select(CorrectionNotice)
            .join(Entry, Entry.id == CorrectionNotice.entry_id)
            .where(Entry.basis.in_(sorted(public_bases())))
            .order_by(CorrectionNotice.revoked_on.desc(), CorrectionNotice.published_at.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def correction_text(notice: CorrectionNotice) -> tuple[str, str]:
    kind = catalogues().subject_kinds.get(notice.subject_kind)
    kind_zh = kind.zh if kind is not None else notice.subject_kind
    zh = (
        f"更正公告：经核查，{kind_zh}“{notice.subject_name}”的炒信黑名单记录已于"
        f"{notice.revoked_on:%Y年%m月%d日}撤销，原因：{notice.reason}。"
        f"各参与企业应于{notice.lifts_due_on:%Y年%m月%d日}前解除相关惩戒措施，恢复其信誉。"
    )
    en = (
        f"Correction notice: the 炒信 blacklist record of {notice.subject_name} ({notice.subject_kind}) "
        f"was revoked on {notice.revoked_on.isoformat()}. Reason: {notice.reason}. Every participating "
        f"enterprise lifts its measures by {notice.lifts_due_on.isoformat()}."
    )
    return zh, en
