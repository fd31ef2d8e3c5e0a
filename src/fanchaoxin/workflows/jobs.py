"""Scheduled work (`fcx jobs run`, and a loop inside `fcx serve`): entries end at their maximum period
through the same step as any other end, notice periods that ran out are flagged, subjects created
in bulk are checked for similar names, and decision logs and audit events past their retention period
(`FCX_AUDIT_RETENTION_YEARS`) are pruned, the audit chain behind a checkpoint signed with the
platform's feed-signing key."""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from fanchaoxin.appeals import commitments
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.consultation.service import remind_overdue
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import SHANGHAI, china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import node_status
from fanchaoxin.orgs.retention import prune_decision_log
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing import translog
from fanchaoxin.subjects import service as subjects
from fanchaoxin.workflows import appeals
from fanchaoxin.workflows.agreement_flows import ask_to_resign
from fanchaoxin.workflows.entries import take_step

JOB_ACTOR = Actor("system:jobs")
log = logging.getLogger(__name__)


def run_jobs(session: Session, *, today: date | None = None, now: datetime | None = None) -> dict[str, Any]:
    """End entries at their maximum period; report notice periods that have run out (deadline events);
    prune the logs past their retention period; flag enterprise nodes silent for too long."""
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
    pruned = prune_logs(session, today=today, now=now)
    silent = node_status.mark_silent(
        session, JOB_ACTOR, now=now or utcnow(), threshold_seconds=get_settings().node_silent_alert_seconds
    )
    reminded = remind_overdue(session, today, actor=JOB_ACTOR)  # #22: overdue action items, once a day
    asked = ask_to_resign(session, JOB_ACTOR, today)  # #22: a new agreement version to re-sign by a day
    logged = translog.run_jobs(session)  # #19: audit head committed, checkpoint published
    return {
        **logged,
        "expired": len(due),
        "action_items_reminded": reminded,
        "asked_to_resign": asked,
        "notice_ended": flagged,
        "proposals_checked": checked,
        "nodes_flagged_silent": silent,
        **pruned,
        "today": today.isoformat(),
    }


def retention_cutoff(today: date, years: int) -> datetime:
    """The start (00:00 Beijing time) of the day `years` before `today`: what was recorded before it is
    past its retention period. 29 February falls back to the 28th."""
    try:
        day = today.replace(year=today.year - years)
    except ValueError:
        day = today.replace(year=today.year - years, day=28)
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def prune_logs(session: Session, *, today: date, now: datetime | None = None) -> dict[str, Any]:
    """Delete decision-log records and audit events older than `FCX_AUDIT_RETENTION_YEARS` (保存期限).

    Audit events go behind a signed checkpoint (core.audit.prune); a chain that does not verify is
    not pruned, and the reason is reported instead (`audit_prune_refused`).
    """
    before = retention_cutoff(today, get_settings().audit_retention_years)
    out: dict[str, Any] = {"pruned_decision_log": prune_decision_log(session, before=before)}
    signing = _LazySigner()
    try:
        result = audit.prune(session, before=before, sign=signing.sign, key=signing.key, now=now or utcnow())
    except audit.PruneRefused as exc:
        log.error("%s", exc)
        out.update(pruned_audit_events=0, audit_prune_refused=str(exc))
        return out
    out["pruned_audit_events"] = result.pruned
    return out


class _LazySigner:
    """The feed-signing key, read from its file only when a checkpoint is to be signed."""

    def key(self) -> tuple[str, bytes]:
        signing = sharing_keys.load().signing
        return signing.key_id, signing.public

    def sign(self, message: bytes) -> bytes:
        return sharing_keys.load().signing.sign(message)


def audit_signing_keys() -> dict[str, bytes]:
    """The keys a pruning checkpoint must be signed with (`fcx audit verify`): the platform's
    feed-signing key and those a change of crypto profile retired (checkpoints signed before it keep
    verifying, each under its key's algorithm); none when the platform has no sharing keys yet (then
    no checkpoint verifies)."""
    try:
        return sharing_keys.load(create=False).verification_keys()
    except sharing_keys.KeyFileError:
        return {}


def run_appeals_jobs(session: Session, *, today: date | None = None) -> dict[str, Any]:
    """Due process deadlines: objections to flag disputed, overdue objections, repairs and reports; credit
    commitments breached by submissions not yet reviewed, and those whose term ended kept (履约)."""
    return {**appeals.run_jobs(session, today=today), **commitments.run_jobs(session, JOB_ACTOR, today=today)}
