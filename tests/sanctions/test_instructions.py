"""Instruction targeting: one rule for publication and for re-issue after a correction; bulk inserts."""

from datetime import date

import pytest
from sqlalchemy import event, select

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_B, judicial

REVIEWER = Actor("test:reviewer")
OTHER_SUBJECT = {"kind": "unit", "name": "另一公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}


@pytest.fixture
def market(world):
    return {
        "platform": world.platform(),
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "ride": world.enterprise("出行", business_types=[B.sharing_economy]),
        "courier": world.enterprise("快递", business_types=[B.logistics]),
        "social": world.enterprise("社交", business_types=[B.social_media]),
        "search": world.enterprise("搜索", business_types=[B.search_ads]),
        "bank": world.enterprise("金融", business_types=[B.internet_finance]),
        "dept": world.department("市场监管局"),
    }


def publish(db, org_id, body):
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review)
        take_step(s, REVIEWER, e, Action.publish)
        return e.id


def in_force(db, entry_id):
    """(organisation, measure, params) of every apply instruction that no lift has ended."""
    with db.session() as s:
        rows = s.scalars(select(Instruction).where(Instruction.entry_id == entry_id)).all()
        lifted = {r.lifts_id for r in rows if r.kind == "lift"}
        return {
            (r.owner_org_id, r.measure, tuple(sorted(r.params.items())))
            for r in rows
            if r.kind == "apply" and r.id not in lifted
        }


def regrade(db, entry_id, **fields):
    """What an objection's correction does to the sanctions: new fields, graded again, re-issued."""
    with db.session() as s:
        entry = s.get(Entry, entry_id)
        for name, value in fields.items():
            setattr(entry, name, value)
        sanctions.grade_entry(s, entry)
        return sanctions.reissue_instructions(s, REVIEWER, entry, today=date.today())


def test_reissue_without_a_change_issues_nothing(market, db):
    entry_id = publish(db, market["shop"].org.id, judicial())
    before = in_force(db, entry_id)
    assert before
    assert regrade(db, entry_id) == {"apply": 0, "lift": 0}
    assert in_force(db, entry_id) == before
    with db.session() as s:
        assert s.query(Instruction).filter_by(entry_id=entry_id, kind="lift").count() == 0


@pytest.mark.parametrize(
    ("first", "then"), [("serious", "minor"), ("minor", "serious"), ("general", "minor")]
)
def test_correcting_m1_to_m2_leaves_what_publishing_m2_gives(market, db, first, then):
    corrected = publish(db, market["shop"].org.id, judicial(severity=first))
    counts = regrade(db, corrected, severity=then)
    assert counts["apply"] + counts["lift"] > 0
    direct = publish(db, market["shop"].org.id, judicial(severity=then, subject=OTHER_SUBJECT))
    assert in_force(db, corrected) == in_force(db, direct)


def test_one_publication_inserts_its_instructions_in_one_statement(market, db):
    with db.session() as s:
        e = registry.submit(s, REVIEWER, market["shop"].org.id, EntryIn.model_validate(judicial()))
        take_step(s, REVIEWER, e, Action.start_review)
        entry_id = e.id
    inserts: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO INSTRUCTIONS"):
            inserts.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.session() as s:
            take_step(s, REVIEWER, s.get(Entry, entry_id), Action.publish)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    with db.session() as s:
        rows = s.scalars(select(Instruction).where(Instruction.entry_id == entry_id)).all()
        issued = s.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "instructions.issue", AuditEvent.target_id == str(entry_id)
            )
        ).all()
    assert len(rows) > 30 and len(inserts) == 1
    # ids, defaults and the audit event as before: every row complete, one audit record with the count
    assert len({r.id for r in rows}) == len(rows) and len({r.seq for r in rows}) == len(rows)
    assert {(r.status, r.version, r.kind, r.reason) for r in rows} == {("pending", 1, "apply", "published")}
    assert all(r.issued_at is not None and r.ack_due_on is not None for r in rows)
    assert [a.detail["count"] for a in issued] == [len(rows)]
