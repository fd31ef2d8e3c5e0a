"""Execution receipts (执行回执, #16): `fcx node init` makes and enrols the node's key, the node signs the
feedback it relays, the platform verifies it, and shows which lifts were confirmed within 3 PRC working days.

The node's own code (`fcx node init`, node.relay) talks to the real platform application in process: its
PlatformClient's HTTP client is a TestClient of the app, with the node's API key.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.cli import app as cli
from fanchaoxin.console.auth import create_user
from fanchaoxin.core import crypto
from fanchaoxin.core.audit import SYSTEM, AuditEvent
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node import cli as node_cli
from fanchaoxin.node import relay
from fanchaoxin.node import sync as node_sync
from fanchaoxin.node.client import USER_AGENT, PlatformClient
from fanchaoxin.node.store import Store
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sharing import protocol as P
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import judicial
from tests.console.console_helpers import csrf_of
from tests.sanctions.test_sanctions import REVIEWER, publish

PLATFORM_URL = "http://testserver"


def platform_client(app: Any, api_key: str) -> PlatformClient:
    """The node's client of the platform, served by the application in process."""
    pc = PlatformClient(PLATFORM_URL, api_key)
    pc.http.close()
    pc.http = TestClient(
        app,
        base_url=PLATFORM_URL,
        headers={"X-API-Key": api_key, "User-Agent": USER_AGENT},
        raise_server_exceptions=False,
    )
    return pc


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """The suite's settings with a key directory of this test's own (a feed-signing key of the profile
    this run has: one left by a run under the other profile is refused)."""
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def parties(world):  # type: ignore[no-untyped-def]
    return {
        "platform": world.platform(),
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "ride": world.enterprise("出行", business_types=[B.ecommerce]),
    }


def init_node(app: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api_key: str, *args: str) -> Store:
    """`fcx node init` against the platform in process: pins the feed key, makes and enrols the node key."""

    def factory(_url: str, key: str, **_kw: Any) -> PlatformClient:
        return platform_client(app, key)

    monkeypatch.setattr(node_sync, "PlatformClient", factory)
    monkeypatch.setattr(node_cli, "PlatformClient", factory)
    path = str(tmp_path / f"node-{uuid.uuid4().hex[:6]}.db")
    r = CliRunner().invoke(
        cli, ["node", "init", "--platform", PLATFORM_URL, "--key", api_key, "--store", path, *args]
    )
    assert r.exit_code == 0, r.output
    assert "Node receipt key enrolled" in r.output, r.output
    return Store(path)


def lifts_of(db, parties, tenant_name: str = "shop") -> list[Instruction]:  # type: ignore[no-untyped-def]
    """Publish a judicial entry, revoke it: the enterprise's lift instructions."""
    entry_id = publish(db, parties["shop"].org.id, judicial())
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, entry_id), Action.revoke, reason="判决被撤销")
    with db.session() as s:
        rows = s.scalars(
            select(Instruction).where(
                Instruction.entry_id == entry_id,
                Instruction.kind == "lift",
                Instruction.owner_org_id == parties[tenant_name].org.id,
            )
        ).all()
        s.expunge_all()
    assert rows, "the revocation lifted nothing for the enterprise"
    return list(rows)


def instruction(db, instruction_id: uuid.UUID) -> Instruction:  # type: ignore[no-untyped-def]
    with db.session() as s:
        found = s.scalar(select(Instruction).where(Instruction.id == instruction_id))
        s.expunge_all()
        return found


def lift_figures(client: TestClient, parties, org_id: uuid.UUID) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.get(
        "/v1/stats/lift-receipts",
        params={"org_id": str(org_id)},
        headers=parties["platform"].headers(Role.platform_reviewer),
    )
    assert r.status_code == 200, r.text
    (org,) = r.json()["organisations"]
    return org


def test_a_nodes_signed_lift_receipt_is_accepted_and_confirmed_on_time(
    app, client, db, parties, monkeypatch, tmp_path
) -> None:
    shop = parties["shop"]
    store = init_node(app, monkeypatch, tmp_path, shop.keys[Role.enterprise_node], "--node-label", "机房A")
    key_id = store.get_config()[relay.NODE_KEY_ID]
    # the key is enrolled for the enterprise (its fingerprint names it); the secret stays on the node
    keys = client.get("/v1/nodes/keys", headers=shop.headers(Role.enterprise_operator)).json()["keys"]
    assert [(k["key_id"], k["label"], k["status"]) for k in keys] == [(key_id, "机房A", "active")]
    assert P.fingerprint(base64.b64decode(keys[0]["public_key"])) == key_id
    assert (
        client.get("/v1/nodes/keys", headers=parties["ride"].headers(Role.enterprise_node)).json()["keys"]
        == []
    )

    lift, *others = lifts_of(db, parties)
    with platform_client(app, shop.keys[Role.enterprise_node]) as pc:
        status, answer = relay.relay(
            store, pc, str(lift.id), "feedback", {"outcome": "executed", "accounts_affected": 2}
        )
    assert status == 200, answer
    assert answer["status"] == "executed"
    kept = instruction(db, lift.id)
    assert kept.receipt_key_id == key_id
    assert kept.receipt["accounts_affected"] == 2 and kept.receipt["instruction_id"] == str(lift.id)
    # the receipt carries a count, never an account; its signature verifies under the enrolled key
    assert set(kept.receipt) == {*P.RECEIPT_FIELDS, "signature"}
    with db.session() as s:
        (reported,) = [e for e in s.scalars(select(AuditEvent)) if e.action == "instruction.report"]
        assert reported.detail["receipt_key_id"] == key_id
    P.verify_receipt(base64.b64decode(keys[0]["public_key"]), P.ExecutionReceipt(**kept.receipt))

    figures = lift_figures(client, parties, shop.org.id)
    by_id = {row["instruction_id"]: row for row in figures["lifts"]}
    assert by_id[str(lift.id)]["status"] == "confirmed" and by_id[str(lift.id)]["late"] is False
    assert by_id[str(lift.id)]["accounts_affected"] == 2
    assert figures["confirmed"] == 1 and figures["late"] == 0 and figures["missing"] == len(others)
    assert all(by_id[str(o.id)]["status"] == "missing" and not by_id[str(o.id)]["late"] for o in others)

    # the platform's console shows it on the enterprise's page
    with db.session() as s:
        org = s.get(Organisation, parties["platform"].org.id)
        create_user(
            s, SYSTEM, username="admin", password="correct horse battery", org=org, role=Role.platform_admin
        )
    login = client.get("/console/login")
    client.post(
        "/console/login",
        data={"csrf_token": csrf_of(login.text), "method": "password", "username": "admin",
              "password": "correct horse battery"},
    )  # fmt: skip
    page = client.get(f"/console/orgs/{shop.org.id}")
    assert page.status_code == 200
    assert (
        'id="lift-receipts"' in page.text and '<span class="kpi" id="lifts-confirmed">1</span>' in page.text
    )


def test_a_bad_receipt_is_refused_and_the_instruction_stays_open(
    app, client, db, parties, monkeypatch, tmp_path
) -> None:
    shop = parties["shop"]
    store = init_node(app, monkeypatch, tmp_path, shop.keys[Role.enterprise_node])
    lift, *_ = lifts_of(db, parties)
    key = relay.enrolled_node_key(store)
    assert key is not None
    body = {"outcome": "executed", "accounts_affected": 3}
    signed, _ = relay.sign_feedback(key, str(lift.id), body)
    assert signed is not None
    url = f"/v1/instructions/{lift.id}/feedback"
    node = shop.headers(Role.enterprise_node)

    def refused(payload: dict[str, Any], status: int, field: str | None) -> None:
        r = client.post(url, json=payload, headers=node)
        assert r.status_code == status, r.text
        assert "receipt" in r.json()["detail"]
        if field is not None:
            assert field in [e["field"] for e in r.json()["errors"]]
        still = instruction(db, lift.id)
        assert still.outcome is None and still.receipt is None and still.status in ("pending", "acknowledged")

    # a signature that does not verify (a count changed after signing, in both places)
    forged = {**signed, "accounts_affected": 0, "receipt": {**signed["receipt"], "accounts_affected": 0}}
    refused(forged, 422, "receipt.signature")
    # a signature over other bytes entirely
    bad = base64.b64encode(bytes(64)).decode()
    refused({**signed, "receipt": {**signed["receipt"], "signature": bad}}, 422, "receipt.signature")
    # a true receipt, but the feedback says otherwise
    refused({**signed, "accounts_affected": 5}, 422, "receipt.accounts_affected")
    refused({**signed, "outcome": "not_applicable"}, 422, "receipt.outcome")
    # a key the platform does not know
    stranger = P.SigningKey.generate("")
    stranger = stranger.with_id(P.fingerprint(stranger.public))
    unknown, _ = relay.sign_feedback(stranger, str(lift.id), body)
    refused(unknown, 422, "receipt.key_id")  # type: ignore[arg-type]
    # nothing of the refusals was written
    with db.session() as s:
        assert not [e for e in s.scalars(select(AuditEvent)) if e.action == "instruction.report"]

    # a node without the count cannot sign: the node itself refuses, naming the field
    with platform_client(app, shop.keys[Role.enterprise_node]) as pc:
        status, problem = relay.relay(store, pc, str(lift.id), "feedback", {"outcome": "executed"})
    assert status == 422 and problem["errors"][0]["field"] == "accounts_affected"

    # a revoked key: 403, and the node relays the platform's refusal
    admin = parties["platform"].headers(Role.platform_admin)
    r = client.post(f"/v1/nodes/keys/{key.key_id}/revoke", json={"reason": "节点服务器失窃"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    refused(signed, 403, None)
    with platform_client(app, shop.keys[Role.enterprise_node]) as pc:
        status, problem = relay.relay(store, pc, str(lift.id), "feedback", body)
    assert status == 403 and "revoked" in problem["detail"]
    # a new key (fcx node init --new-node-key) is enrolled, and its receipt accepted
    renewed = init_node(app, monkeypatch, tmp_path, shop.keys[Role.enterprise_node], "--new-node-key")
    with platform_client(app, shop.keys[Role.enterprise_node]) as pc:
        status, answer = relay.relay(renewed, pc, str(lift.id), "feedback", body)
    assert status == 200 and answer["status"] == "executed"
    assert instruction(db, lift.id).receipt_key_id == renewed.get_config()[relay.NODE_KEY_ID] != key.key_id


def test_another_enterprises_key_is_refused(app, client, db, parties, monkeypatch, tmp_path) -> None:
    shop, ride = parties["shop"], parties["ride"]
    ride_store = init_node(app, monkeypatch, tmp_path, ride.keys[Role.enterprise_node])
    ride_key = relay.enrolled_node_key(ride_store)
    assert ride_key is not None
    lift, *_ = lifts_of(db, parties)
    signed, _ = relay.sign_feedback(ride_key, str(lift.id), {"outcome": "executed", "accounts_affected": 1})
    r = client.post(
        f"/v1/instructions/{lift.id}/feedback", json=signed, headers=shop.headers(Role.enterprise_node)
    )
    assert (
        r.status_code == 403
        and "another organisation" in r.json()["detail"]
        and "receipt" in r.json()["detail"]
    )
    assert instruction(db, lift.id).outcome is None
    # nor may the other enterprise enrol the shop's key as its own
    pub = P.b64(ride_key.public)
    r = client.post("/v1/nodes/keys", json={"public_key": pub}, headers=shop.headers(Role.enterprise_node))
    assert r.status_code == 409
    # enrolling one's own key again is answered 200 with the same key
    r = client.post("/v1/nodes/keys", json={"public_key": pub}, headers=ride.headers(Role.enterprise_node))
    assert r.status_code == 200 and r.json()["key_id"] == ride_key.key_id


def test_a_late_lift_is_flagged_and_a_missing_one_past_its_day_too(
    app, client, db, parties, monkeypatch, tmp_path
) -> None:
    shop = parties["shop"]
    store = init_node(app, monkeypatch, tmp_path, shop.keys[Role.enterprise_node])
    lift, unreported, *_ = lifts_of(db, parties)
    # issued three weeks ago: 3 PRC working days are long past
    with db.session() as s:
        s.execute(
            update(Instruction)
            .where(Instruction.id.in_([lift.id, unreported.id]))
            .values(issued_at=datetime.now(UTC) - timedelta(days=21))
            .execution_options(synchronize_session=False)
        )
    with platform_client(app, shop.keys[Role.enterprise_node]) as pc:
        status, answer = relay.relay(
            store, pc, str(lift.id), "feedback", {"outcome": "executed", "accounts_affected": 1}
        )
    assert status == 200, answer
    figures = lift_figures(client, parties, shop.org.id)
    by_id = {row["instruction_id"]: row for row in figures["lifts"]}
    assert by_id[str(lift.id)]["status"] == "late" and by_id[str(lift.id)]["late"] is True
    assert by_id[str(unreported.id)]["status"] == "missing" and by_id[str(unreported.id)]["late"] is True
    assert figures["confirmed"] == 0 and figures["late"] == 2
    # an executed feedback without a receipt (not through a node) confirms nothing
    r = client.post(
        f"/v1/instructions/{unreported.id}/feedback",
        json={"outcome": "executed"},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 200
    again = {row["instruction_id"]: row for row in lift_figures(client, parties, shop.org.id)["lifts"]}
    assert again[str(unreported.id)]["status"] == "missing"


def test_route_guards(client, parties) -> None:
    shop, platform = parties["shop"], parties["platform"]
    pub = P.b64(P.SigningKey.generate("").public)
    # only the enterprise's node enrols; only the platform's admin revokes; only staff see the figures
    r = client.post(
        "/v1/nodes/keys", json={"public_key": pub}, headers=shop.headers(Role.enterprise_operator)
    )
    assert r.status_code == 403
    r = client.post("/v1/nodes/keys", json={"public_key": pub}, headers=platform.headers(Role.platform_admin))
    assert r.status_code == 403
    r = client.post(
        "/v1/nodes/keys", json={"public_key": pub, "label": "n1"}, headers=shop.headers(Role.enterprise_node)
    )
    assert r.status_code == 201
    key_id = r.json()["key_id"]
    for bad in ("not base64!", P.b64(b"short")):
        r = client.post(
            "/v1/nodes/keys", json={"public_key": bad}, headers=shop.headers(Role.enterprise_node)
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "public_key"
    r = client.post(
        f"/v1/nodes/keys/{key_id}/revoke",
        json={"reason": "x"},
        headers=shop.headers(Role.enterprise_operator),
    )
    assert r.status_code == 403
    r = client.post(
        f"/v1/nodes/keys/{key_id}/revoke",
        json={"reason": "x"},
        headers=platform.headers(Role.platform_reviewer),
    )
    assert r.status_code == 403
    assert (
        client.get("/v1/stats/lift-receipts", headers=shop.headers(Role.enterprise_operator)).status_code
        == 403
    )
    assert client.get("/v1/stats/lift-receipts").status_code == 401
    # platform staff see every enterprise's keys
    r = client.get("/v1/nodes/keys", headers=platform.headers(Role.auditor))
    assert [k["key_id"] for k in r.json()["keys"]] == [key_id]
    r = client.post(
        f"/v1/nodes/keys/{key_id}/revoke",
        json={"reason": "换新"},
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 200
    r = client.post(
        f"/v1/nodes/keys/{key_id}/revoke",
        json={"reason": "再次"},
        headers=platform.headers(Role.platform_admin),
    )
    assert r.status_code == 409
    # a revoked key cannot be enrolled again
    r = client.post("/v1/nodes/keys", json={"public_key": pub}, headers=shop.headers(Role.enterprise_node))
    assert r.status_code == 409 and "revoked" in r.json()["detail"]


def test_a_node_key_of_the_other_crypto_profile_is_refused_at_enrolment(client, parties) -> None:
    shop = parties["shop"]
    other = crypto.profile("international" if crypto.active().name == "gm" else "gm")
    pub = P.b64(P.SigningKey.generate("", other).public)
    r = client.post("/v1/nodes/keys", json={"public_key": pub}, headers=shop.headers(Role.enterprise_node))
    assert r.status_code == 422, r.text
    message = r.json()["errors"][0]["message"]
    assert f"of the {other.name} crypto profile" in message and "a key of the wrong algorithm" in message
    r = client.post(
        "/v1/nodes/keys",
        json={"public_key": P.b64(b"\x04" + bytes(64))},
        headers=shop.headers(Role.enterprise_node),
    )
    assert r.status_code == 422
