"""Retention of decision logs (决策日志保存期限): records older than ``FCX_AUDIT_RETENTION_YEARS`` (at
least five, DESIGN.md §2) are deleted by the scheduler, their identifier digests with them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord


def prune_decision_log(session: Session, *, before: datetime, batch: int = 5000) -> int:
    """Delete decision-log records made before ``before``, ``batch`` at a time; return how many.

    The digests are deleted explicitly rather than through ``ON DELETE CASCADE``: SQLite enforces
    foreign keys only when asked to.
    """
    pruned = 0
    while True:
        ids = list(
            session.scalars(select(DecisionLogRecord.id).where(DecisionLogRecord.at < before).limit(batch))
        )
        if not ids:
            return pruned
        session.execute(delete(DecisionLogIdentifier).where(DecisionLogIdentifier.record_id.in_(ids)))
        session.execute(
            delete(DecisionLogRecord).where(DecisionLogRecord.id.in_(ids)),
            execution_options={"synchronize_session": False},
        )
        pruned += len(ids)
