"""What the console's page modules share: their router, who may open what, and small display helpers."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from fastapi import APIRouter, Depends

from fanchaoxin.console.auth import check_csrf
from fanchaoxin.console.web import PREFIX
from fanchaoxin.core import permissions, vault
from fanchaoxin.core.identifiers import mask_person_name
from fanchaoxin.core.roles import Role
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.models import Subject

# Who opens which page: the role sets of core.permissions, as the console names them.
REVIEWERS: frozenset[Role] = permissions.REVIEWERS
PLATFORM: frozenset[Role] = permissions.PLATFORM
# An organisation's people at the console (a machine's key cannot sign in): the enterprise's operators
# and the department's officers, to whom cases are forwarded and instructions addressed.
ADDRESSEES: frozenset[Role] = permissions.CASE_ADDRESSEES
# Entries, organisation pages and the policy: every console role.
READERS: frozenset[Role] = PLATFORM | ADDRESSEES
SUBJECT_READERS: frozenset[Role] = permissions.SUBJECT_READERS
EVIDENCE_READERS: frozenset[Role] = permissions.EVIDENCE_READERS
AUDITORS: frozenset[Role] = permissions.AUDIT_READERS
KEY_MANAGERS: frozenset[Role] = permissions.KEY_MANAGERS


def console_router() -> APIRouter:
    """A router of console pages: under /console, out of the API document, every POST checked for CSRF."""
    return APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(check_csrf)])


def deadline_badge(due: date | None, today: date, done: bool) -> str:
    """overdue / due_soon (within 2 days) / ok / done — shown as a coloured badge with text."""
    if done or due is None:
        return "done"
    if due < today:
        return "overdue"
    if due <= today + timedelta(days=2):
        return "due_soon"
    return "ok"


def listed_name(subject: Subject, *, reveal: bool = False) -> str:
    """A subject's name as listed: a natural person's is masked unless revealed (audited elsewhere)."""
    if reveal or not subjects.is_personal(subject.kind):
        return subject.name
    return mask_person_name(subject.name)


# A search term may be a person's name or an identifier, which must never stand in an address, a
# browser's history or an access log (#14): list pages take it by POST and carry it on sealed (``qs``).
SEARCH_CONTEXT = "console.search:"


def seal_search(q: str, org_id: uuid.UUID) -> str:
    """The search term sealed under the data key, bound to the organisation searching (core.vault)."""
    return vault.encrypt(q, SEARCH_CONTEXT + str(org_id))


def open_search(sealed: str, org_id: uuid.UUID) -> str | None:
    """The term of a sealed ``qs``; None for one altered, or sealed for another organisation."""
    try:
        return vault.decrypt(sealed, SEARCH_CONTEXT + str(org_id))
    except (vault.DataKeyError, ValueError):
        return None
