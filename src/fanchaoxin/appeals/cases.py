"""What every case of due process shares: tracking numbers and secrets, finding a case, proving the
subject, one open case per entry, optimistic locking, and the record of how an identity was verified.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from fanchaoxin.appeals.models import Objection, RepairApplication, Report
from fanchaoxin.appeals.notice_models import Statement
from fanchaoxin.blacklist.lifecycle import IN_FORCE, Status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import audit, crypto
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.errors import Conflict, NotFound
from fanchaoxin.core.tenancy import can_see

_TRACKING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
# 异议, 修复, 举报, 陈述申辩
TRACKING_PREFIX = {"objection": "YY", "repair": "XF", "report": "JB", "statement": "CS"}

CASE_MODELS: dict[str, type[Objection] | type[RepairApplication] | type[Report] | type[Statement]] = {
    "objection": Objection,
    "repair": RepairApplication,
    "report": Report,
    "statement": Statement,  # 陈述申辩 during an entry's notice period (appeals.statements)
}


@dataclass
class Filing:
    """A case just filed, with its secret: shown to the filer once, only its hash is kept."""

    case: Any
    secret: str


# --- tracking numbers and secrets -----------------------------------------------------------------------


def new_tracking_number(kind: str, today: date) -> str:
    return new_number(TRACKING_PREFIX[kind], today)


def new_number(prefix: str, today: date) -> str:
    """`<prefix><yyyymmdd>-<8 random characters>`: a case's tracking number, a notice's number (GZ)."""
    tail = "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(8))
    return f"{prefix}{today:%Y%m%d}-{tail}"


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    return crypto.secret_hash(secret)


def secret_ok(stored_hash: str, given: str | None) -> bool:
    # A hash made under the other crypto profile (before `fcx crypto migrate`) still opens the case.
    return crypto.secret_matches(stored_hash, given or "") is not None and bool(given)


# --- finding a case -------------------------------------------------------------------------------------


def by_tracking(session: Session, kind: str, tracking: str, secret: str | None) -> Any:
    """The case for its tracking number and secret; a wrong secret is a 404 like an unknown number."""
    model = CASE_MODELS[kind]
    case = session.scalar(select(model).where(model.tracking_number == tracking.strip().upper()))
    if case is None or not secret_ok(case.secret_hash, secret):
        raise NotFound(
            f"No {kind} with tracking number {tracking} and that secret",
            code="case.not_found_by_tracking",
            params={"case_kind": kind},
        )
    return case


def get_case(session: Session, model: Any, case_id: uuid.UUID, principal: Principal, what: str) -> Any:
    case = session.get(model, case_id)
    if case is None or not can_see(case, principal):
        raise NotFound(f"No {what} with id {case_id}")
    return case


def entry_of(session: Session, case: Objection | RepairApplication) -> Entry:
    entry = session.get(Entry, case.entry_id)
    assert entry is not None
    return entry


# --- identity of the subject ----------------------------------------------------------------------------


def prove_subject(session: Session, entry_id: uuid.UUID, id_type: str, id_value: str) -> Entry:
    """The entry in force whose subject has this identifier — or 404, the same for every failure.

    An unknown entry, an entry not in force and another subject's entry all answer the same, so that a
    caller learns nothing about entries it cannot prove to be its own.
    """
    entry = session.get(Entry, entry_id)
    proven = (
        entry is not None
        and Status(entry.status) in IN_FORCE
        and (id_type, id_value) in {(i.type, i.value) for i in entry.subject.identifiers}
    )
    if not proven or entry is None:
        raise NotFound(
            f"No entry in force with id {entry_id} for the identifier given", code="case.subject_not_proven"
        )
    return entry


def record_identity(session: Session, actor: Actor, obj: Objection | RepairApplication, text: str) -> None:
    """How the objector's (or applicant's) identity was verified; required before a decision."""
    if obj.status == "decided":
        raise Conflict("The case was decided already", code="case.decided")
    before = obj.snapshot()
    obj.identity_verification = text.strip()
    if isinstance(obj, Objection):
        obj.identity_verified_by = actor.name
    kind = "objection" if isinstance(obj, Objection) else "repair"
    flush_case(session, kind)
    audit.record(
        session, actor, f"{kind}.identity_verified", kind, obj.id, before=before, after=obj.snapshot()
    )


# --- storing --------------------------------------------------------------------------------------------


def add_unique_open(session: Session, case: Any, what: str) -> None:
    """Store a new case about an entry; 409 when one is open (the unique `open_entry_id` decides races)."""
    model = type(case)
    message = f"An {what} about this entry is already open; wait for its decision"
    if session.scalar(select(model.id).where(model.open_entry_id == case.open_entry_id)) is not None:
        raise Conflict(message, code="case.already_open")
    session.add(case)
    try:
        session.flush()
    except IntegrityError as exc:  # filed at the same moment by someone else
        raise Conflict(message, code="case.already_open") from exc


def flush_case(session: Session, what: str) -> None:
    """Flush a change to a case; 409 when another reviewer changed it at the same time."""
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(
            f"Another reviewer changed this {what} at the same time; reload it", code="case.changed"
        ) from exc
