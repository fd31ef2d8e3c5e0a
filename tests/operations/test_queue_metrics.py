"""Queue gauges (#23): each slice's rule of what is due, counted from the database."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import utcnow
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.stats.queue_metrics import count_queues
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_A, judicial

REVIEWER = Actor("test:reviewer")


def test_objections_and_instructions_become_overdue_as_time_passes(client, db, world) -> None:  # type: ignore[no-untyped-def]
    world.enterprise("电商")
    shop = world.enterprise("另一电商")
    with db.session() as s:
        entry = registry.submit(s, REVIEWER, shop.org.id, EntryIn.model_validate(judicial()))
        take_step(s, REVIEWER, entry, Action.start_review)
        take_step(s, REVIEWER, entry, Action.publish, today=date.today() - timedelta(days=1))
        entry_id = str(entry.id)
    with db.session() as s:
        instructions = s.scalar(select(func.count()).select_from(Instruction)) or 0
    assert instructions > 0  # issued at publication, to be acknowledged within working days
    filed = client.post(
        "/v1/objections",
        json={
            "entry_id": entry_id,
            "identifier": {"type": "uscc", "value": USCC_A},
            "grounds": "涉案订单为真实交易。",
            "contact_email": "legal@example.com",
        },
    )
    assert filed.status_code == 201, filed.text

    now = count_queues(db, now=utcnow())
    assert now["cases"]["objection"] == {
        "fcx_cases_open": 1.0,
        "fcx_cases_due_soon": 0.0,
        "fcx_cases_overdue": 0.0,
    }
    assert now["fcx_instructions_overdue"] == 0.0 and now["fcx_outbox_pending"] == 0.0
    assert now["fcx_feed_head_seq"] == 2.0  # published, disputed

    later = count_queues(db, now=utcnow() + timedelta(days=90))
    assert later["cases"]["objection"]["fcx_cases_overdue"] == 1.0
    assert later["fcx_instructions_overdue"] == float(instructions)
    assert later["cases"]["report"]["fcx_cases_overdue"] == 0.0
