"""Two submissions creating the same new subject at once: the later one attaches, it never fails."""

from __future__ import annotations

from sqlalchemy import func, select

from fanchaoxin.core.audit import Actor
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.models import Subject, SubjectIdentifier

USCC = "91350100M000100Y43"
ACTOR = Actor("test:race")


def test_a_submission_that_lost_the_race_for_a_new_subject_attaches_to_the_winner(db, monkeypatch):  # type: ignore[no-untyped-def]
    with db.session() as s:  # the winner committed first
        winner = subjects.resolve(
            s, ACTOR, kind="unit", name="先到的公司", identifiers=[("uscc", USCC)]
        ).subject.id

    # The loser read before the winner committed: it saw no subject with this USCC.
    real = subjects.find_by_identifiers
    reads: list[int] = []

    def stale_once(session, pairs):  # type: ignore[no-untyped-def]
        reads.append(1)
        return {} if len(reads) == 1 else real(session, pairs)

    monkeypatch.setattr(subjects, "find_by_identifiers", stale_once)
    with db.session() as s:
        res = subjects.resolve(s, ACTOR, kind="unit", name="后到的公司", identifiers=[("uscc", USCC)])
        assert res.subject.id == winner and not res.created
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Subject)) == 1
        assert s.scalar(select(func.count()).select_from(SubjectIdentifier)) == 1
