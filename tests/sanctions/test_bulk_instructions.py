"""Bulk acknowledgement and feedback (POST /v1/instructions/ack, /v1/instructions/feedback): the single
rules for each item, all or nothing, every refusal named by its place in the list; 500 at once, fast."""

from __future__ import annotations

import time
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import insert, select

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import judicial, unit_entry

REVIEWER = Actor("test:reviewer")


@pytest.fixture
def market(world):
    return {
        "platform": world.platform(),
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "other": world.enterprise("另一电商", business_types=[B.ecommerce]),
    }


def publish(db, org_id, body):
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review)
        take_step(s, REVIEWER, e, Action.publish)
        return e.id


def instructions(db, org_id):
    with db.session() as s:
        rows = s.scalars(
            select(Instruction).where(Instruction.owner_org_id == org_id).order_by(Instruction.seq)
        )
        return [(r.id, r.measure, r.status, r.acknowledged_at, r.feedback_fields()) for r in rows]


def confirmations(fields):
    value = {"bool": True, "int": 3, "str": "CX-2026-0001", "date": date.today().isoformat()}
    return {f.field: value[f.type] for f in fields}


def test_bulk_acknowledge_is_all_or_nothing_and_names_the_item(client, market, db):
    publish(db, market["platform"].org.id, judicial())
    shop, other = market["shop"], market["other"]
    mine = instructions(db, shop.org.id)
    theirs = instructions(db, other.org.id)
    assert len(mine) >= 3 and theirs
    ids = [str(i[0]) for i in mine]
    # Another enterprise's instruction, and an unknown id, in the middle: nothing is acknowledged.
    body = {"ids": [ids[0], str(theirs[0][0]), ids[1], str(uuid.uuid4())]}
    r = client.post("/v1/instructions/ack", json=body, headers=shop.headers(Role.enterprise_operator))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("/bulk-refused")
    assert [e["field"] for e in problem["errors"]] == ["ids[1]", "ids[3]"]
    assert [e["status"] for e in problem["errors"]] == [404, 404]
    assert all(i[3] is None for i in instructions(db, shop.org.id))
    # Then all of them: acknowledged, each audited as one would be; repeat-safe.
    r = client.post("/v1/instructions/ack", json={"ids": ids}, headers=shop.headers(Role.enterprise_operator))
    assert r.status_code == 200, r.text
    assert r.json()["count"] == len(ids)
    assert {i["status"] for i in r.json()["instructions"]} == {"acknowledged"}
    assert all(i[3] is not None for i in instructions(db, shop.org.id))
    with db.session() as s:
        acks = s.scalars(select(AuditEvent).where(AuditEvent.action == "instruction.acknowledge")).all()
        assert len(acks) == len(ids)
    again = client.post(
        "/v1/instructions/ack", json={"ids": ids}, headers=shop.headers(Role.enterprise_operator)
    )
    assert again.status_code == 200
    # A reader role may not, and an empty list is refused naming the field.
    assert (
        client.post(
            "/v1/instructions/ack", json={"ids": ids}, headers=market["platform"].headers(Role.auditor)
        ).status_code
        == 403
    )
    r = client.post("/v1/instructions/ack", json={"ids": []}, headers=shop.headers(Role.enterprise_operator))
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("ids")


def test_bulk_feedback_checks_each_item_by_the_single_rules(client, market, db):
    publish(db, market["platform"].org.id, judicial())
    shop = market["shop"]
    mine = instructions(db, shop.org.id)
    asking = next(i for i in mine if i[4])  # an instruction whose execution must be confirmed
    plain = [i for i in mine if i is not asking]
    items = [{"id": str(i[0]), "outcome": "not_applicable"} for i in plain]
    items.insert(1, {"id": str(asking[0]), "outcome": "executed"})  # missing its confirmations
    items.append({"id": str(plain[0][0]), "outcome": "executed"})  # listed twice
    r = client.post(
        "/v1/instructions/feedback", json={"items": items}, headers=shop.headers(Role.enterprise_operator)
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == [f"items[{len(items) - 1}].id"]
    items.pop()
    items[0] = {"id": items[0]["id"], "outcome": "failed"}  # failed without a reason
    r = client.post(
        "/v1/instructions/feedback", json={"items": items}, headers=shop.headers(Role.enterprise_operator)
    )
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [e["item"] for e in errors] == [0, 1]
    assert errors[0]["field"] == "items[0].reason"
    assert errors[1]["field"].startswith("items[1].confirmations.")
    assert {i[2] for i in instructions(db, shop.org.id)} == {"pending"}  # nothing was kept
    # An outcome is never assumed: leaving it out is a validation error of the item.
    r = client.post(
        "/v1/instructions/feedback", json={"items": [{"id": str(plain[0][0])}]},
        headers=shop.headers(Role.enterprise_operator),
    )  # fmt: skip
    assert r.status_code == 422 and "items" in r.json()["errors"][0]["field"]
    items[0] = {"id": items[0]["id"], "outcome": "failed", "reason": "账户已注销"}
    items[1] = {"id": str(asking[0]), "outcome": "executed", "confirmations": confirmations(asking[4])}
    r = client.post(
        "/v1/instructions/feedback", json={"items": items}, headers=shop.headers(Role.enterprise_operator)
    )
    assert r.status_code == 200, r.text
    by_id = {str(i[0]): i[2] for i in instructions(db, shop.org.id)}
    assert by_id[items[0]["id"]] == "failed" and by_id[str(asking[0])] == "executed"
    assert all(by_id[i["id"]] == "not_applicable" for i in items[2:])
    # A final report cannot change: the conflict names its item, and nothing else changes.
    items = [
        {"id": items[0]["id"], "outcome": "executed"},
        {"id": str(asking[0]), "outcome": "failed", "reason": "x"},
    ]
    r = client.post(
        "/v1/instructions/feedback", json={"items": items}, headers=shop.headers(Role.enterprise_operator)
    )
    assert r.status_code == 422
    assert [(e["item"], e["status"]) for e in r.json()["errors"]] == [(1, 409)]
    assert {str(i[0]): i[2] for i in instructions(db, shop.org.id)}[items[0]["id"]] == "failed"


def test_500_instructions_are_reported_in_one_request_fast(client, market, db):
    """The workbench's select-all: 500 instructions acknowledged, then reported, each in one request."""
    shop = market["shop"]
    codes = list(measure_catalogue().measures)
    rows = []
    with db.session() as s:
        for n in range(500 // len(codes) + 1):
            subject = {
                "kind": "platform_account",
                "name": f"批量测试店铺{n}",
                "identifiers": [{"type": "platform_account", "value": f"bulk-test:shop{n}"}],
            }
            body = unit_entry(subject=subject)
            e = registry.submit(s, REVIEWER, market["platform"].org.id, EntryIn.model_validate(body))
            rows += [
                {"entry_id": e.id, "owner_org_id": shop.org.id, "kind": "apply", "measure": c,
                 "department_measure": False, "params": {}, "actions": None, "audience": None,
                 "lifts_id": None, "ack_due_on": date.today() + timedelta(days=3), "reason": "published"}
                for c in codes
            ]  # fmt: skip
        s.execute(insert(Instruction), rows[:500])
    ids = [str(i[0]) for i in instructions(db, shop.org.id)]
    assert len(ids) == 500
    headers = shop.headers(Role.enterprise_operator)
    started = time.perf_counter()
    r = client.post("/v1/instructions/ack", json={"ids": ids}, headers=headers)
    ack_s = time.perf_counter() - started
    assert r.status_code == 200 and r.json()["count"] == 500
    items = [{"id": i, "outcome": "not_applicable"} for i in ids]
    started = time.perf_counter()
    r = client.post("/v1/instructions/feedback", json={"items": items}, headers=headers)
    feedback_s = time.perf_counter() - started
    assert r.status_code == 200 and r.json()["count"] == 500
    assert {i[2] for i in instructions(db, shop.org.id)} == {"not_applicable"}
    print(f"500 instructions: acknowledged in {ack_s:.3f} s, reported in {feedback_s:.3f} s")
    assert ack_s < 2.0 and feedback_s < 2.0, (ack_s, feedback_s)
