"""Scheduled work (`fcx jobs run`, and a loop inside `fcx serve`): entries end at their maximum period
through the same step as any other end, notice periods that ran out are flagged, and subjects created
in bulk are checked for similar names."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.subjects import service as subjects
from fanchaoxin.workflows import appeals
from fanchaoxin.workflows.entries import take_step

JOB_ACTOR = Actor("system:jobs")


def run_jobs(session: Session, *, today: date | None = None) -> dict[str, Any]:
    """End entries at their maximum period; report notice periods that have run out (deadline events)."""
    today = today or china_today()
    due = registry.due_for_expiry(session, today)
    for entry in due:
        take_step(
            session,
            JOB_ACTOR,
            entry,
            Action.expire,
            reason="maximum period reached",
            today=today,
            system=True,
        )
    flagged = registry.flag_notice_ended(session, JOB_ACTOR, today)
    checked = subjects.check_pending_proposals(session)
    return {
        "expired": len(due),
        "notice_ended": flagged,
        "proposals_checked": checked,
        "today": today.isoformat(),
    }


def run_appeals_jobs(session: Session, *, today: date | None = None) -> dict[str, Any]:
    """Due process deadlines: objections to flag disputed, overdue objections, repairs and reports."""
    return appeals.run_jobs(session, today=today)
