"""`GET /v1/sharing/entries/{id}`: details of entries in force only, to participants only (issue #13)."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select

from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.roles import Role
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_A, judicial, person_entry
from tests.sharing import test_sharing
from tests.sharing.test_sharing import REVIEWER, publish

settings = test_sharing.settings
market = test_sharing.market

LATER = date(2100, 1, 1)  # past every minimum and maximum period
DOCUMENT = "(2026)京0105刑初123号"


def _person(phone: str, name: str) -> dict:  # type: ignore[type-arg]
    return person_entry(
        subject={"kind": "individual", "name": name, "identifiers": [{"type": "phone", "value": phone}]}
    )


def _step(db, entry_id, action: Action) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        entry = s.get(Entry, entry_id)
        take_step(s, REVIEWER, entry, action, reason="复核结论", today=LATER)


def _read(client, headers, entry_id):  # type: ignore[no-untyped-def]
    return client.get(f"/v1/sharing/entries/{entry_id}", headers={**headers, "X-FCX-Purpose": "matched"})


def test_ended_entries_are_gone_and_entries_in_force_are_served(client, market, db):
    node = market["shop"].headers(Role.enterprise_node)
    op = market["shop"].headers(Role.enterprise_operator)
    ride = market["ride"].org.id
    published = publish(db, ride, _person("13800138001", "甲"))
    disputed = publish(db, ride, _person("13800138002", "乙"))
    revoked = publish(db, ride, judicial(document_number=DOCUMENT))
    expired = publish(db, ride, _person("13800138003", "丙"))
    repaired = publish(db, ride, _person("13800138004", "丁"))
    _step(db, disputed, Action.dispute)
    _step(db, revoked, Action.revoke)
    _step(db, expired, Action.expire)
    _step(db, repaired, Action.repair)

    for entry_id in (published, disputed):
        r = _read(client, node, entry_id)
        assert r.status_code == 200, r.text
    assert _read(client, node, disputed).json()["entry"]["status"] == "disputed"

    for entry_id, status in ((revoked, "revoked"), (expired, "expired"), (repaired, "repaired")):
        for headers in (node, op):
            r = _read(client, headers, entry_id)
            assert r.status_code == 410, (status, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert body["title_zh"] == "已不可用" and status in body["detail"]
            text = json.dumps(body, ensure_ascii=False)
            for secret in (USCC_A, DOCUMENT, "北京某某网络科技有限责任公司", "丙", "丁", "13800138"):
                assert secret not in text, (status, secret)

    # Only the two entries in force were read (and audited as personal data reads).
    with db.session() as s:
        read = sorted(
            e.target_id for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "pii.read"))
        )
    assert set(read) == {str(published), str(disputed)}


def test_unknown_and_not_entitled_stay_404(client, market, db, world):
    published = publish(db, market["ride"].org.id, _person("13800138005", "戊"))
    _step(db, published, Action.revoke)
    node = market["shop"].headers(Role.enterprise_node)
    assert _read(client, node, "00000000-0000-0000-0000-000000000000").status_code == 404

    # An enterprise whose sharing agreement takes effect only later is not a participant yet: neither
    # the details nor the fact that the entry ended are its to know.
    later = world.enterprise("尚未生效")
    with db.session() as s:
        s.get(type(later.org), later.org.id).agreement_signed_on = date.today() + timedelta(days=30)
    in_force = publish(db, market["ride"].org.id, _person("13800138006", "己"))
    for entry_id in (in_force, published):
        r = _read(client, later.headers(Role.enterprise_node), entry_id)
        assert r.status_code == 404, r.text
    assert _read(client, node, in_force).status_code == 200
