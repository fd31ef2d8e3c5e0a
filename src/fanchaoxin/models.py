"""Every table of the platform, imported once so that Alembic and the tests see the whole schema."""

from fanchaoxin.appeals.models import (
    CaseAttachment,
    CorrectionNotice,
    Objection,
    RepairApplication,
    Report,
)
from fanchaoxin.blacklist.models import (
    Entry,
    EntryTransition,
    Evidence,
    EvidenceBlob,
    FeedEvent,
    FeedHead,
    UploadBatch,
)
from fanchaoxin.core.audit import AuditChainHead, AuditEvent
from fanchaoxin.core.db import Base
from fanchaoxin.core.idempotency import IdempotencyRecord
from fanchaoxin.orgs.models import ApiKey, Organisation
from fanchaoxin.sanctions.models import Instruction, PolicyVersion
from fanchaoxin.subjects.models import LiableLink, MergeProposal, Subject, SubjectIdentifier, SubjectMerge

__all__ = [
    "ApiKey",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "CaseAttachment",
    "CorrectionNotice",
    "Entry",
    "EntryTransition",
    "Evidence",
    "EvidenceBlob",
    "FeedEvent",
    "FeedHead",
    "IdempotencyRecord",
    "Instruction",
    "LiableLink",
    "MergeProposal",
    "Objection",
    "Organisation",
    "PolicyVersion",
    "RepairApplication",
    "Report",
    "Subject",
    "SubjectIdentifier",
    "SubjectMerge",
    "UploadBatch",
]
