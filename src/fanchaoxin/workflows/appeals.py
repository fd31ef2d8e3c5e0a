"""Due process across slices: what an objection or a credit repair does to the entry it is about.

The appeals slice keeps the case (its deadlines, decision, audit and mail); the entry's steps go
through `workflows.entries.take_step` like every other step, so instructions, the change feed,
correction notices and liable persons' entries follow. Read in order, each function is what happens:

- filing an objection: the case is received → the entry is flagged disputed (at once, when so
  configured; else by `run_jobs` on its flag date);
- forwarding it: checks → the entry flagged disputed if not yet → the case forwarded;
- deciding it: checks → the entry flagged disputed if not yet → `corrected`: fields changed and
  graded again, instructions re-issued, "updated" on the feed, liable persons' entries likewise →
  `upheld`/`corrected`: the dispute resolved, `revoked`: the entry revoked (lifts, feed, notice) and the
  notices given the public reason → the decision recorded, audited and mailed;
- deciding a credit repair: checks → `approved`: the entry ends as repaired → the decision recorded.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from fanchaoxin.appeals import cases, objections, repair, reports
from fanchaoxin.appeals import corrections as notices
from fanchaoxin.appeals.cases import Filing
from fanchaoxin.appeals.models import Objection, RepairApplication
from fanchaoxin.appeals.schemas import ObjectionDecisionIn
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import IN_FORCE, Action, Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sharing import changes
from fanchaoxin.workflows.entries import take_step

APPEALS = Actor("system:appeals")


# --- objections -----------------------------------------------------------------------------------------


def file_objection(
    session: Session,
    actor: Actor,
    *,
    entry_id: uuid.UUID,
    identifier_type: str,
    identifier_value: str,
    grounds: str,
    contact_email: str,
    channel: str,
    owner_org_id: uuid.UUID | None = None,
    today: date | None = None,
) -> Filing:
    """File an objection to an entry in force; the entry is flagged disputed at once when configured."""
    today = today or china_today()
    filing = objections.receive(
        session,
        actor,
        entry_id=entry_id,
        identifier_type=identifier_type,
        identifier_value=identifier_value,
        grounds=grounds,
        contact_email=contact_email,
        channel=channel,
        owner_org_id=owner_org_id,
        today=today,
    )
    if objections.disputes_at_once():
        mark_disputed(session, filing.case, today=today)
    return filing


def mark_disputed(session: Session, obj: Objection, *, today: date | None = None) -> None:
    """Flag the entry disputed (异议标注): the feed, the enterprises' nodes and decide() see it."""
    if obj.disputed_at is not None:
        return
    entry = cases.entry_of(session, obj)
    if entry.status == Status.published.value:
        take_step(
            session,
            APPEALS,
            entry,
            Action.dispute,
            reason=f"objection {obj.tracking_number} filed",
            today=today,
            system=True,
        )
    objections.flag_disputed(session, obj)


def forward_objection(
    session: Session,
    actor: Actor,
    obj: Objection,
    *,
    note: str = "",
    today: date | None = None,
    expected_version: int | None = None,
) -> Objection:
    """Forward to the reporting organisation for verification (within 2 working days of filing)."""
    today = today or china_today()
    entry = objections.check_forward(session, obj, today=today, expected_version=expected_version)
    mark_disputed(session, obj, today=today)
    return objections.forward(session, actor, obj, entry, note=note, today=today)


def decide_objection_as_asked(
    session: Session, actor: Actor, obj: Objection, body: ObjectionDecisionIn
) -> Objection:
    """The decision a reviewer sent (API or console form), as `decide_objection` takes it."""
    return decide_objection(
        session,
        actor,
        obj,
        outcome=body.outcome,
        reason=body.reason,
        identity_verification=body.identity_verification,
        corrections=body.corrections.changes() if body.corrections else None,
        public_reason=body.public_reason,
        expected_version=body.version,
    )


def decide_objection(
    session: Session,
    actor: Actor,
    obj: Objection,
    *,
    outcome: str,
    reason: str,
    identity_verification: str | None = None,
    corrections: dict[str, Any] | None = None,
    public_reason: str | None = None,
    today: date | None = None,
    expected_version: int | None = None,
) -> Objection:
    """Decide an objection: upheld, corrected (re-graded, re-instructed) or revoked (lifted, notice)."""
    today = today or china_today()
    entry = objections.check_decision(
        session,
        actor,
        obj,
        outcome=outcome,
        reason=reason,
        identity_verification=identity_verification,
        corrections=corrections,
        expected_version=expected_version,
    )
    mark_disputed(session, obj, today=today)
    why = objections.decision_note(obj, reason)
    changed: dict[str, Any] | None = None
    if outcome == "corrected":
        assert corrections is not None
        changed = correct_entry(session, actor, entry, corrections, reason=why, today=today)
    if outcome in ("upheld", "corrected") and entry.status == Status.disputed.value:
        take_step(session, actor, entry, Action.resolve_dispute, reason=why, today=today, system=True)
    if outcome == "revoked":
        take_step(session, actor, entry, Action.revoke, reason=why, today=today, system=True)
        # The notices (the unit's and its liable persons') carry the public reason, not the case number.
        revoked = [entry.id, *(e.id for e in registry.linked_entries(session, entry))]
        notices.attach_to_objection(session, obj.id, revoked, public_reason or reason)
    return objections.record_decision(
        session, actor, obj, entry, outcome=outcome, reason=reason, changed=changed, today=today
    )


def correct_entry(
    session: Session,
    actor: Actor,
    entry: Entry,
    values: dict[str, Any],
    *,
    reason: str,
    today: date | None = None,
) -> dict[str, Any]:
    """Change an entry's fields, re-grade it, re-issue instructions for the measures that changed.

    Returns `{field: [before, after]}` of what changed (facts only as a flag). Liable persons' linked
    entries follow the unit's severity, behaviours, role and services.
    """
    today = today or china_today()
    objections.check_corrections(entry, values)
    changed = _correct_one(session, actor, entry, values, reason=reason, today=today)
    if not changed:
        raise objections.nothing_to_correct()
    follow = objections.followed_by_linked(values)
    if entry.parent_entry_id is None and follow:
        for linked in registry.linked_entries(session, entry):
            if Status(linked.status) in IN_FORCE:
                _correct_one(session, actor, linked, follow, reason=reason, today=today)
    return objections.recorded_changes(changed)


def _correct_one(
    session: Session, actor: Actor, entry: Entry, values: dict[str, Any], *, reason: str, today: date
) -> dict[str, Any]:
    changed = objections.apply_fields(session, actor, entry, values, reason=reason)
    if changed:
        sanctions.reissue_instructions(session, actor, entry, today=today)
        changes.append(session, entry, "updated")
    return changed


# --- credit repair --------------------------------------------------------------------------------------


def decide_repair(
    session: Session,
    actor: Actor,
    app: RepairApplication,
    *,
    outcome: str,
    reason: str,
    identity_verification: str | None = None,
    today: date | None = None,
    expected_version: int | None = None,
) -> RepairApplication:
    """Decide a credit repair application: approval ends the entry and lifts every measure."""
    today = today or china_today()
    entry = repair.check_decision(
        session,
        actor,
        app,
        outcome=outcome,
        identity_verification=identity_verification,
        expected_version=expected_version,
    )
    if outcome == "approved":
        take_step(session, actor, entry, Action.repair, reason=repair.decision_note(app, reason), today=today)
    return repair.record_decision(session, actor, app, entry, outcome=outcome, reason=reason, today=today)


# --- jobs -----------------------------------------------------------------------------------------------


def run_jobs(session: Session, *, today: date | None = None) -> dict[str, Any]:
    """Flag disputed the entries whose objection reached its flag date; count what is overdue."""
    today = today or china_today()
    flagged = 0
    for obj in objections.awaiting_dispute_flag(session, today):
        if Status(cases.entry_of(session, obj).status) in IN_FORCE:
            mark_disputed(session, obj, today=today)
            flagged += 1
    return {
        "disputed": flagged,
        "overdue_objections": objections.count_overdue(session, today),
        "overdue_repairs": repair.count_overdue(session, today),
        "overdue_reports": reports.count_overdue(session, today),
        "today": today.isoformat(),
    }
