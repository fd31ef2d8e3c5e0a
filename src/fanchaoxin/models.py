"""Every table of the platform, imported once so that Alembic and the tests see the whole schema."""

from fanchaoxin.appeals import commitment_models, notice_models, supplement_models  # noqa: F401  (their tables)
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
    ProposedIdentifier,
    UploadBatch,
)
from fanchaoxin.console.models import ConsoleSecret, ConsoleSession, ConsoleUser
from fanchaoxin.consultation.models import (
    ActionItem,
    AgendaItem,
    ConsultationDecision,
    Meeting,
    MeetingParticipant,
)
from fanchaoxin.core.audit import AuditChainHead, AuditEvent
from fanchaoxin.core.crypto_record import CryptoProfilePeriod
from fanchaoxin.core.db import Base
from fanchaoxin.core.idempotency import IdempotencyRecord
from fanchaoxin.orgs.models import ApiKey, DecisionLogIdentifier, DecisionLogRecord, Organisation
from fanchaoxin.orgs.node_keys import NodeKey
from fanchaoxin.orgs.node_status import NodeStatus
from fanchaoxin.orgs.participation_models import (
    AgreementSignature,
    AgreementVersion,
    MeasureRule,
    Participation,
)
from fanchaoxin.sanctions.models import Instruction, PolicyVersion
from fanchaoxin.sharing.models import (
    EvaluationQuota,
    FeedEvent,
    FeedHead,
    IdentifierTag,
    OutboxItem,
    Snapshot,
    Webhook,
)
from fanchaoxin.subjects.models import LiableLink, MergeProposal, Subject, SubjectIdentifier, SubjectMerge

__all__ = [
    "ActionItem",
    "AgendaItem",
    "AgreementSignature",
    "AgreementVersion",
    "ApiKey",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "CaseAttachment",
    "ConsoleSecret",
    "ConsoleSession",
    "ConsoleUser",
    "ConsultationDecision",
    "CorrectionNotice",
    "CryptoProfilePeriod",
    "DecisionLogIdentifier",
    "DecisionLogRecord",
    "Entry",
    "EntryTransition",
    "EvaluationQuota",
    "Evidence",
    "EvidenceBlob",
    "FeedEvent",
    "FeedHead",
    "IdempotencyRecord",
    "IdentifierTag",
    "Instruction",
    "LiableLink",
    "MeasureRule",
    "Meeting",
    "MeetingParticipant",
    "MergeProposal",
    "NodeKey",
    "NodeStatus",
    "Objection",
    "Organisation",
    "OutboxItem",
    "Participation",
    "PolicyVersion",
    "ProposedIdentifier",
    "RepairApplication",
    "Report",
    "Snapshot",
    "Subject",
    "SubjectIdentifier",
    "SubjectMerge",
    "UploadBatch",
    "Webhook",
]
