"""Statements (陈述申辩) the subject files during the notice period, and the reviewer's answers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.orm import Session

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import Actor


def answer_for_publication(
    session: Session, actor: Actor, entry: Entry, answers: Mapping[uuid.UUID, str]
) -> None:
    """Record the reviewer's answer to each statement; refuse publication while one is unanswered."""


def case_status(session: Session, case: object) -> object:
    """The filer's view of one statement (a `CaseStatusOut`), for the public progress page."""
    raise NotImplementedError
