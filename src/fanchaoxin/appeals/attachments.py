"""Files attached to a case (an objection's grounds, a repair's proof of rectification, a report's
screenshots): checked by content and size, stored once by their digest under the crypto profile beside
the entries' evidence (`blacklist.evidence_digest`), and checked against it on every read."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.models import CaseAttachment
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.evidence_digest import checked, content_address
from fanchaoxin.blacklist.models import EvidenceBlob
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationProblem,
)
from fanchaoxin.core.settings import get_settings


def add_attachment(
    session: Session,
    actor: Actor,
    case_type: str,
    case: Any,
    *,
    filename: str,
    declared_type: str | None,
    data: bytes,
) -> CaseAttachment:
    """Attach a file (PDF, image or text, checked by content) to an open case."""
    settings = get_settings()
    if case.status in ("decided", "handled", "dismissed"):
        raise Conflict(f"The {case_type} is {case.status}; no more files can be attached")
    limit = settings.attachment_max_bytes
    if len(data) > limit:
        raise PayloadTooLarge(
            f"Attachment {filename!r} is {len(data)} bytes; the limit is {limit}",
            errors=[{"in": "body", "field": "file", "type": "size", "message": f"at most {limit} bytes"}],
        )
    if not data:
        raise ValidationProblem(
            "Empty attachment", errors=[{"in": "body", "field": "file", "message": "the file is empty"}]
        )
    actual = registry.sniff(data)
    declared = (declared_type or "").split(";")[0].strip().lower() or None
    if declared == "text/csv" and actual == "text/plain":
        actual = "text/csv"
    if actual is None or actual not in registry.ALLOWED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Attachment {filename!r} is not an allowed type (PDF, PNG, JPEG, GIF, plain text or CSV)",
            errors=[
                {
                    "in": "body",
                    "field": "file",
                    "type": "media_type",
                    "message": f"content looks like {actual or 'unknown binary data'}",
                }
            ],
        )
    if declared and declared not in ("application/octet-stream", actual):
        raise UnsupportedMediaType(
            f"Attachment {filename!r} is declared as {declared} but its content is {actual}",
            errors=[{"in": "body", "field": "file", "type": "media_type_mismatch", "message": actual}],
        )
    digest = content_address(data)
    existing = session.scalar(
        select(CaseAttachment).where(
            CaseAttachment.case_type == case_type,
            CaseAttachment.case_id == case.id,
            CaseAttachment.digest == digest,
        )
    )
    if existing is not None:
        return existing
    count = session.scalar(
        select(func.count())
        .select_from(CaseAttachment)
        .where(CaseAttachment.case_type == case_type, CaseAttachment.case_id == case.id)
    )
    if (count or 0) >= settings.attachment_max_count:
        raise Conflict(f"A {case_type} has at most {settings.attachment_max_count} attachments")
    if session.get(EvidenceBlob, digest) is None:
        session.add(EvidenceBlob(digest=digest, size=len(data), media_type=actual, data=data))
        session.flush()  # the blob row first: the attachment's foreign key points at it
    att = CaseAttachment(
        case_type=case_type,
        case_id=case.id,
        digest=digest,
        filename=(filename or "attachment")[:255],
        media_type=actual,
        size=len(data),
        uploaded_by=actor.name,
    )
    session.add(att)
    session.flush()
    audit.record(
        session,
        actor,
        f"{case_type}.attachment_add",
        case_type,
        case.id,
        detail={"digest": digest, "size": len(data), "media_type": actual},
    )
    return att


def attachments_of(session: Session, case_type: str, case_id: uuid.UUID) -> list[CaseAttachment]:
    return list(
        session.scalars(
            select(CaseAttachment)
            .where(CaseAttachment.case_type == case_type, CaseAttachment.case_id == case_id)
            .order_by(CaseAttachment.created_at)
        )
    )


def attachment_blob(
    session: Session, case_type: str, case_id: uuid.UUID, digest: str
) -> tuple[CaseAttachment, EvidenceBlob]:
    """A case's file by its address, its bytes checked against it (the profile's digest)."""
    att = session.scalar(
        select(CaseAttachment).where(
            CaseAttachment.case_type == case_type,
            CaseAttachment.case_id == case_id,
            CaseAttachment.digest == digest,
        )
    )
    blob = session.get(EvidenceBlob, digest) if att else None
    if att is None or blob is None:
        raise NotFound(f"No attachment {digest} on this {case_type}")
    return att, checked(blob)
