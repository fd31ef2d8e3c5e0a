"""A new agreement version with a re-signing day asks every participant under an earlier version, once,
and reminds it once more near the day (workflows.agreement_flows, run by the jobs loop)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from fanchaoxin.appeals import notify
from fanchaoxin.core.audit import SYSTEM, AuditEvent
from fanchaoxin.workflows.agreement_flows import RESIGN_REQUEST, ask_to_resign
from fanchaoxin.workflows.jobs import run_jobs
from tests.orgs.test_agreements import PDF, _enterprise, _publish, _sign

V1_DAY = date(2026, 3, 2)
V2_DAY = date(2026, 6, 1)  # a Monday
RESIGN_BY = date(2026, 6, 30)  # a Tuesday


@pytest.fixture
def sent():
    log = notify.LogNotifier()
    previous = notify.set_notifier(log)
    yield log.sent
    notify.set_notifier(previous)


def test_participants_are_asked_once_then_reminded_once_and_signers_are_left_alone(db, sent):
    with db.session() as s:
        _publish(s, "2026.1", V1_DAY)
        old = _enterprise(s, "老版本网店")
        _sign(s, old, "2026.1", signed_on=V1_DAY, today=V1_DAY)
        legacy = _enterprise(s, "早年签约网店", signed=date(2017, 1, 1))
        silent = _enterprise(s, "无邮箱网店", signed=date(2017, 1, 1))
        silent.contact_email = None
        never = _enterprise(s, "未签约网店")  # not in force: nothing to re-sign
        _publish(s, "2026.2", V2_DAY, resign_by=RESIGN_BY)
    with db.session() as s:
        assert ask_to_resign(s, SYSTEM, V2_DAY) == 2  # the one without an e-mail is recorded, not mailed
    first = [m for m in sent if m.event == RESIGN_REQUEST]
    assert sorted(m.to for m in first) == ["legal@example.com", "legal@example.com"]
    assert all("2026.2" in m.subject and "2026-06-30" in m.body for m in first)
    with db.session() as s:  # each one asked is recorded, mailed or not; the one never in force is not
        asked = {
            e.target_id: e.detail["mailed"]
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == RESIGN_REQUEST))
        }
        assert asked == {str(old.id): True, str(legacy.id): True, str(silent.id): False}
        assert str(never.id) not in asked
    with db.session() as s:  # the jobs loop runs every few minutes: nobody is asked twice
        assert ask_to_resign(s, SYSTEM, V2_DAY) == 0
        assert run_jobs(s, today=date(2026, 6, 2))["asked_to_resign"] == 0
    with db.session() as s:  # one of them signs the new version meanwhile
        _sign(
            s,
            s.get(type(old), old.id),
            "2026.2",
            signed_on=date(2026, 6, 10),
            today=date(2026, 6, 10),
            pdf=PDF,
        )
    with db.session() as s:  # five working days before the day: the last call, to who has not signed
        assert ask_to_resign(s, SYSTEM, date(2026, 6, 23)) == 1
        assert ask_to_resign(s, SYSTEM, date(2026, 6, 24)) == 0
    reminders = [m for m in sent if m.event == RESIGN_REQUEST and "Reminder" in m.subject]
    assert len(reminders) == 1
    with db.session() as s:  # after the day, nobody is in force under the old version any more
        assert ask_to_resign(s, SYSTEM, date(2026, 7, 1)) == 0
