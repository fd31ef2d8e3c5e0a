"""Statements (陈述申辩) the subject files during the notice period, and the reviewer's answers.

The subject (or its agent) names the notice (its number, `GZ…`) and proves it speaks for the subject with
one of the subject's identifiers, as for an objection: an unknown notice, an entry no longer in its
notice period and another subject's identifier all answer the same 404. A statement is filed up to the
notice's last day (inclusive, China date); after it, 409 naming that day. Each is a case with its
tracking number (`CS…`) and secret (`appeals.cases`), evidence files (`appeals.attachments`) added
while the period runs, and a public status page.

The reviewer answers every statement of the entry when deciding: publishing needs an answer to each one
(`answer_for_publication`, a 422 naming those left unanswered); rejecting the entry in its notice period
— the statement convinced — answers them with the reviewer's reason unless an answer is given
(`answer_on_rejection`). Each answer is audited and mailed to the filer if it gave an e-mail.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, notices
from fanchaoxin.appeals.cases import Filing, flush_case, hash_secret, new_secret, new_tracking_number
from fanchaoxin.appeals.models import CaseAttachment
from fanchaoxin.appeals.notice_models import Notice, Statement
from fanchaoxin.appeals.notify import notify
from fanchaoxin.appeals.schemas import CaseStatusOut, Deadlines
from fanchaoxin.blacklist.lifecycle import Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, NotFound, ValidationProblem

ANSWER_MAX = 20000
OUTCOME_TEXT = {
    "published": "经审核，平台决定将该记录列入炒信黑名单并公示。The entry was published.",
    "rejected": "经审核，平台采纳了您的陈述申辩意见，决定不予列入。The entry was not listed.",
}


# --- filing ---------------------------------------------------------------------------------------------


def _not_found(number: str) -> NotFound:
    return NotFound(f"No notice {number.strip().upper()} in its notice period for the identifier given")


def prove_notified_subject(
    session: Session, notice_number: str, id_type: str, id_value: str
) -> tuple[Notice, Entry]:
    """The notice and its entry in its notice period, whose subject has this identifier — or 404.

    The subject as the submission named it counts, as does the subject it was matched to: the notice
    was about the first, and the second's identifiers are the same subject's.
    """
    notice = notices.by_number(session, notice_number)
    entry = session.get(Entry, notice.entry_id) if notice is not None else None
    if notice is None or entry is None or entry.status != Status.notice_period.value:
        raise _not_found(notice_number)
    sent = {(i["type"], i["value"]) for i in (entry.submitted_subject or {}).get("identifiers", [])}
    known = {(i.type, i.value) for i in entry.subject.identifiers}
    if (id_type, id_value) not in sent | known:
        raise _not_found(notice_number)
    return notice, entry


def _check_period(entry: Entry, today: date) -> None:
    ends = entry.notice_ends_on
    if ends is not None and today > ends:
        raise Conflict(
            f"The notice period ended on {ends.isoformat()} (告知期已于 {ends.isoformat()} 届满): "
            "a statement can no longer be filed; after publication an objection can be",
            notice_ends_on=ends.isoformat(),
        )


def file_statement(
    session: Session,
    actor: Actor,
    *,
    notice_number: str,
    identifier_type: str,
    identifier_value: str,
    text: str,
    contact_email: str | None,
    channel: str,
    owner_org_id: uuid.UUID | None = None,
    today: date | None = None,
) -> Filing:
    """Store a statement on a notice (the subject proven, the period running), audit it, mail the filer."""
    today = today or china_today()
    notice, entry = prove_notified_subject(session, notice_number, identifier_type, identifier_value)
    _check_period(entry, today)
    secret = new_secret()
    statement = Statement(
        tracking_number=new_tracking_number("statement", today),
        secret_hash=hash_secret(secret),
        entry_id=entry.id,
        notice_id=notice.id,
        owner_org_id=owner_org_id,
        status="received",
        channel=channel,
        filed_by=actor.name,
        identifier_type=identifier_type,
        text=text.strip(),
        contact_email=contact_email or None,
        filed_on=today,
        notice_ends_on=entry.notice_ends_on or notice.ends_on,
    )
    session.add(statement)
    session.flush()
    audit.record(
        session,
        actor,
        "statement.file",
        "statement",
        statement.id,
        after=statement.snapshot(),
        detail={
            "entry_id": str(entry.id),
            "notice": notice.number,
            "channel": channel,
            "identifier_type": identifier_type,
        },
    )
    notify(
        session,
        statement.contact_email,
        "statement.filed",
        statement.tracking_number,
        notice=notice.number,
        ends=statement.notice_ends_on.isoformat(),
    )
    return Filing(statement, secret)


def add_evidence(
    session: Session,
    actor: Actor,
    statement: Statement,
    *,
    filename: str,
    declared_type: str | None,
    data: bytes,
    today: date | None = None,
) -> CaseAttachment:
    """Attach an evidence file to a statement, while it is unanswered and the notice period runs."""
    if statement.status != "received":
        raise Conflict(f"Statement {statement.tracking_number} was answered; no more files can be attached")
    entry = session.get(Entry, statement.entry_id)
    assert entry is not None
    _check_period(entry, today or china_today())
    return attachments.add_attachment(
        session, actor, "statement", statement, filename=filename, declared_type=declared_type, data=data
    )


# --- reading --------------------------------------------------------------------------------------------


def statements_of(session: Session, entry_id: uuid.UUID) -> list[Statement]:
    """Every statement on an entry, in the order filed."""
    return list(
        session.scalars(
            select(Statement)
            .where(Statement.entry_id == entry_id)
            .order_by(Statement.filed_at, Statement.tracking_number)
        )
    )


def unanswered_counts(session: Session, entry_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """entry id → statements still to answer (the review queue's flag)."""
    if not entry_ids:
        return {}
    rows = session.execute(
        select(Statement.entry_id, func.count())
        .where(Statement.entry_id.in_(entry_ids), Statement.status == "received")
        .group_by(Statement.entry_id)
    )
    return {entry_id: int(n) for entry_id, n in rows}


def get_statement(session: Session, statement_id: uuid.UUID) -> Statement:
    statement = session.get(Statement, statement_id)
    if statement is None:
        raise NotFound(f"No statement with id {statement_id}")
    return statement


def case_status(session: Session, case: Statement) -> CaseStatusOut:
    """The filer's view of one statement (a `CaseStatusOut`), for the public progress page."""
    return CaseStatusOut(
        tracking_number=case.tracking_number,
        kind="statement",
        status=case.status,
        filed_on=case.filed_on,
        deadlines=Deadlines(filed_on=case.filed_on, notice_ends_on=case.notice_ends_on),
        outcome=case.outcome,
        reason=case.answer if case.status == "answered" else None,
        decided_at=case.answered_at,
        attachments=len(attachments.attachments_of(session, "statement", case.id)),
    )


# --- answering ------------------------------------------------------------------------------------------


def answer_for_publication(
    session: Session, actor: Actor, entry: Entry, answers: Mapping[uuid.UUID, str]
) -> None:
    """Record the reviewer's answer to each statement; refuse publication while one is unanswered."""
    _answer(session, actor, entry, answers, outcome="published", fallback="")


def answer_on_rejection(
    session: Session, actor: Actor, entry: Entry, answers: Mapping[uuid.UUID, str], *, reason: str
) -> None:
    """A rejection in the notice period answers every statement: with its own answer, else the reason."""
    _answer(session, actor, entry, answers, outcome="rejected", fallback=reason)


def _answer(
    session: Session,
    actor: Actor,
    entry: Entry,
    answers: Mapping[uuid.UUID, str],
    *,
    outcome: str,
    fallback: str,
) -> None:
    pending = [s for s in statements_of(session, entry.id) if s.status == "received"]
    known = {s.id for s in pending}
    errors: list[dict[str, Any]] = [
        {
            "in": "body",
            "field": f"answers.{key}",
            "type": "unknown",
            "message": "no unanswered statement of this entry has this id",
        }
        for key in answers
        if key not in known
    ]
    errors += [
        {
            "in": "body",
            "field": f"answers.{key}",
            "type": "too_long",
            "message": f"at most {ANSWER_MAX} characters",
        }
        for key, text in answers.items()
        if key in known and len(text) > ANSWER_MAX
    ]
    missing = [s for s in pending if not (answers.get(s.id) or fallback).strip()]
    errors += [
        {
            "in": "body",
            "field": f"answers.{s.id}",
            "type": "missing",
            "message": f"answer statement {s.tracking_number} (陈述申辩) before publishing",
        }
        for s in missing
    ]
    if errors:
        if missing:
            detail = "Answer each statement (陈述申辩) of the entry first: " + ", ".join(
                f"{s.tracking_number} ({s.id})" for s in missing
            )
        else:
            detail = "The answers name statements this entry does not have open"
        raise ValidationProblem(detail, errors=errors)
    now = utcnow()
    for statement in pending:
        before = statement.snapshot()
        statement.status = "answered"
        statement.answer = (answers.get(statement.id) or fallback).strip()
        statement.answered_at = now
        statement.answered_by = actor.name
        statement.outcome = outcome
        flush_case(session, "statement")
        audit.record(
            session,
            actor,
            "statement.answer",
            "statement",
            statement.id,
            before=before,
            after=statement.snapshot(),
            detail={"entry_id": str(entry.id), "outcome": outcome},
        )
        notify(
            session,
            statement.contact_email,
            "statement.answered",
            statement.tracking_number,
            result=OUTCOME_TEXT[outcome],
            answer=statement.answer,
        )
