"""Least disclosure to a participating enterprise (#14, "done when"): no enterprise-facing body holds a
plain resident ID or phone of a listed person.

The demo is loaded and the main flows are driven (tests.core.test_at_rest.drive: two natural persons with
resident IDs and phones, published by a department; the demo adds a legal representative of a published
company and a phone on a submitted entry). Then an enterprise that submitted none of those entries calls
every route its keys (enterprise_operator, enterprise_node), its console session and the public are
admitted to — the route table is walked, so a new route without a call here fails — with plausible
parameters: entry ids, feed cursors, and the persons' identifiers in decisions and look-ups, whose
answers must not echo them. Every body (decompressed where it is gzip or a workbook) and every header is
searched for every plain form of the persons' resident IDs and phones.

The need-to-know route `GET /v1/sharing/entries/{id}` with a purpose is the audited channel for details:
it is asserted to be audited (and is searched as well: it shows the subject masked).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from fanchaoxin.app import create_app
from fanchaoxin.appeals.models import CorrectionNotice, Objection, Report
from fanchaoxin.appeals.notice_models import Notice
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.auth import iter_routes, route_access
from fanchaoxin.core.identifiers import mask, normalise
from fanchaoxin.core.roles import Role
from fanchaoxin.sharing import oprf
from tests.console.console_helpers import csrf_of
from tests.core.test_at_rest import PEOPLE, _demo_keys, drive

ENTERPRISE = "示例速递物流有限公司"  # submitted none of the entries about natural persons
ADMITTED = {Role.enterprise_operator, Role.enterprise_node, Role.public}
# Listed natural persons: (who, resident ID, phone). The demo's legal representative of a published company
# (a liable person), the subject under review and the phone on a submitted entry are searched for too:
# an enterprise that did not submit them must not see them either.
LISTED = [
    *((name, rid, phone) for name, rid, phone, _ in PEOPLE),
    ("钱七 (liable person)", "110101199003071233", None),
    ("王建国 (under review)", "11010519491231002X", None),
    ("小明刷单工作室 (submitted)", None, "13912345678"),
]
# A valid resident ID of nobody listed: for the stateless identifier check, which normalises what the
# caller typed and returns it (it reads no row).
NOBODY = "440305199001010026"


def resident_id_forms(raw: str) -> set[str]:
    """An 18-digit resident ID as stored or shown: canonical, lower-case x, and its 15-digit form."""
    rid = normalise("resident_id", raw)
    return {rid, rid.lower(), rid[:6] + rid[8:17]}


def phone_forms(raw: str) -> set[str]:
    """A mainland mobile number in the forms people write it."""
    digits = re.sub(r"\D", "", normalise("phone", raw))[-11:]
    return {
        digits,
        f"+86{digits}",
        f"+86 {digits}",
        f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
        f"{digits[:3]} {digits[3:7]} {digits[7:]}",
    }


def needles() -> dict[str, str]:
    out: dict[str, str] = {}
    for who, rid, phone in LISTED:
        if rid:
            out.update({f: f"resident ID of {who}" for f in resident_id_forms(rid)})
        if phone:
            out.update({f: f"phone of {who}" for f in phone_forms(phone)})
    return out


def readable(content: bytes) -> str:
    """The body as text; gzip (snapshots, deltas) and workbooks (xlsx) opened."""
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    if content[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            content = b"\n".join(z.read(n) for n in z.namelist())
    return content.decode("utf-8", errors="replace")


@dataclass
class Prober:
    """Calls routes as the enterprise, remembers which route templates were called and what leaked."""

    api: TestClient
    console: TestClient
    headers: dict[Role, dict[str, str]]
    needles: dict[str, str]
    called: set[tuple[str, str]] = field(default_factory=set)
    leaks: list[str] = field(default_factory=list)

    def __call__(
        self, method: str, template: str, role: Role | None, at: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        path = template.format(**(at or {}))
        client = self.console if template.startswith("/console/") else self.api
        headers = {**(self.headers[role] if role else {}), **kw.pop("headers", {})}
        r = client.request(method, path, headers=headers, follow_redirects=False, **kw)
        self.called.add((method, template))
        text = readable(r.content) + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        for plain, what in self.needles.items():
            if plain in text:
                self.leaks.append(
                    f"{method} {path} as {role and role.value} ({r.status_code}): {what} {plain!r}"
                )
        return r

    def both(
        self, method: str, template: str, at: dict[str, Any] | None = None, **kw: Any
    ) -> list[httpx.Response]:
        return [
            self(method, template, role, at, **kw)
            for role in (Role.enterprise_operator, Role.enterprise_node)
        ]


def enterprise_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every API route and console page an enterprise key, its session or anyone may call."""
    out = set()
    for path, route in iter_routes(app.routes):
        if isinstance(route, APIRoute):
            rule = route_access(route)
            if rule is not None and ADMITTED & set(rule.roles):
                out |= {(m, path) for m in route.methods}
    return out


def test_no_enterprise_facing_body_holds_a_plain_identifier_of_a_listed_person(db, settings):
    keys = _demo_keys(db)
    app = create_app(settings, db=db)
    with (
        TestClient(app, raise_server_exceptions=False) as api,
        TestClient(app, raise_server_exceptions=False) as console,
    ):
        drive(api, keys)
        op = {"Authorization": f"Bearer {keys[(ENTERPRISE, 'enterprise_operator')]}"}
        node = {"Authorization": f"Bearer {keys[(ENTERPRISE, 'enterprise_node')]}"}
        probe = Prober(api, console, {Role.enterprise_operator: op, Role.enterprise_node: node}, needles())
        OP, NODE = Role.enterprise_operator, Role.enterprise_node
        with db.session() as s:
            entry_ids = [str(e.id) for e in s.scalars(select(Entry))]
            # The second person's published entry: the public forms (objection, repair, who looked me up).
            (listed,) = [str(e.id) for e in s.scalars(select(Entry)) if e.subject.name == PEOPLE[1][0]]
            other_objection = s.scalars(select(Objection)).first()
            other_report = s.scalars(select(Report)).first()
            other_ids = (
                str(other_objection.id),
                other_objection.tracking_number,
                str(other_report.id),
                other_report.tracking_number,
            )
        rid0, phone0 = normalise("resident_id", PEOPLE[0][1]), PEOPLE[0][2]
        rid1, phone1 = normalise("resident_id", PEOPLE[1][1]), PEOPLE[1][2]
        listed_ids = [
            (t, v) for _, rid, phone in LISTED for t, v in (("resident_id", rid), ("phone", phone)) if v
        ]

        # --- health and who am I
        for path in ("/healthz", "/readyz", "/metrics"):
            probe("GET", path, None)
        probe.both("POST", "/v1/identifiers/validate", json={"type": "resident_id", "value": NOBODY})
        me = probe("GET", "/v1/whoami", OP).json()
        probe("GET", "/v1/whoami", NODE)
        org_id = me["org_id"] if "org_id" in me else me["organisation"]["id"]

        # --- organisation, keys, quotas
        probe("GET", "/v1/organisations", OP)
        probe("GET", "/v1/organisations/{org_id}", OP, {"org_id": org_id})
        probe("GET", "/v1/organisations/{org_id}/keys", OP, {"org_id": org_id})
        made = probe(
            "POST",
            "/v1/organisations/{org_id}/keys",
            OP,
            {"org_id": org_id},
            json={"role": "enterprise_node", "label": "probe"},
        )
        key_id = made.json().get("id") or made.json().get("key", {}).get("id")
        probe("GET", "/v1/keys/{key_id}", OP, {"key_id": key_id})
        probe("POST", "/v1/keys/{key_id}/revoke", OP, {"key_id": key_id}, json={"reason": "probe done"})
        probe("GET", "/v1/organisations/{org_id}/quotas", OP, {"org_id": org_id})
        # --- its rulebook (#22)
        probe(
            "PUT",
            "/v1/organisations/{org_id}/rulebook",
            OP,
            {"org_id": org_id},
            json={"rules": [{"measure": 4, "applicable": False, "clause": "用户协议第8条"}]},
        )
        probe.both("GET", "/v1/organisations/{org_id}/rulebook", {"org_id": org_id})
        probe.both("GET", "/v1/rulebook")
        # --- its information-sharing agreement (#22); the withdrawal is refused (no reason), so it stays
        probe("GET", "/v1/agreements/versions", OP)
        probe("GET", "/v1/agreements/versions/current", OP)
        probe("GET", "/v1/organisations/{org_id}/agreement", OP, {"org_id": org_id})
        probe("POST", "/v1/organisations/{org_id}/agreement/application", OP, {"org_id": org_id})
        probe(
            "POST",
            "/v1/organisations/{org_id}/agreement/signatures",
            OP,
            {"org_id": org_id},
            data={"version": "0.0", "signatory": PEOPLE[0][0], "signed_on": "2026-01-05"},
            files={"file": ("signed.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        )
        probe(
            "GET",
            "/v1/organisations/{org_id}/agreement/signatures/{signature_id}/pdf",
            OP,
            {"org_id": org_id, "signature_id": uuid.uuid4()},
        )
        probe("POST", "/v1/organisations/{org_id}/agreement/withdrawal", OP, {"org_id": org_id}, json={"reason": " "})
        probe(
            "PUT", "/v1/organisations/{org_id}/contact-email", OP, {"org_id": org_id},
            json={"contact_email": "legal@example.com"},
        )  # fmt: skip
        # --- node keys that sign execution receipts (#16)
        node_key = base64.b64encode(bytes(range(32))).decode()
        probe("POST", "/v1/nodes/keys", NODE, json={"public_key": node_key, "label": "probe"})
        probe.both("GET", "/v1/nodes/keys")

        # --- entries: its own submission naming a listed person (by resident ID only), the list, every entry
        body = {
            "subject": {"kind": "individual", "name": PEOPLE[0][0], "identifiers": [{"type": "resident_id", "value": rid0}]},
            "behaviours": ["order_brushing"], "role": "participant", "severity": "general",
            "basis": "enterprise_finding", "facts": "以空包裹配合刷单。",
        }  # fmt: skip
        own = probe("POST", "/v1/entries", OP, json=body, headers={"Idempotency-Key": "probe-entry"})
        own_id = own.json().get("id", str(uuid.uuid4()))
        line = json.dumps(
            {**body, "subject": {**body["subject"], "identifiers": [{"type": "phone", "value": phone1}]}}
        )
        probe(
            "POST",
            "/v1/uploads",
            OP,
            files={"file": ("rows.jsonl", line.encode(), "application/x-ndjson")},
            headers={"Idempotency-Key": "probe-upload"},
        )
        probe.both("GET", "/v1/entries")
        probe.both("GET", "/v1/entries", params={"status": "published"})
        for eid in [*entry_ids, own_id]:
            probe.both("GET", "/v1/entries/{entry_id}", {"entry_id": eid})
            probe("GET", "/v1/entries/{entry_id}", OP, {"entry_id": eid}, params={"reveal": "true"})
        pdf = b"%PDF-1.4\n% probe\n%%EOF\n"
        ev = probe(
            "POST",
            "/v1/evidence/{entry_id}",
            OP,
            {"entry_id": own_id},
            files={"file": ("p.pdf", pdf, "application/pdf")},
        )
        sha = ev.json().get("digest", "0" * 64)
        probe("GET", "/v1/evidence/{entry_id}/{digest}", OP, {"entry_id": own_id, "digest": sha})
        for eid in entry_ids:  # the department's evidence names a resident ID
            probe("GET", "/v1/evidence/{entry_id}/{digest}", OP, {"entry_id": eid, "digest": sha})

        # --- look-ups and decisions with the persons' identifiers: answers must not echo them
        for role in (OP, NODE):
            for t, v in listed_ids:
                found = probe("POST", "/v1/lookup", role, json={"type": t, "value": v, "purpose": "开户核验"})
                probe("GET", "/v1/lookup", role, params={"type": t, "value": v})
                if v == rid1:  # the probes reach the listed person (not only refusals)
                    assert found.status_code == 200 and found.json()["subjects"], found.text
            for who, *_ in PEOPLE:
                probe("POST", "/v1/lookup", role, json={"name": who})
            for t, v in listed_ids:
                probe(
                    "POST",
                    "/v1/decisions",
                    role,
                    json={
                        "scene": "account_registration",
                        "identifiers": [{"type": t, "value": v}],
                        "purpose": "开户",
                    },
                )
            decided = probe("POST", "/v1/decisions", role, json={
                "scene": "account_registration",
                "subjects": [{"identifiers": [{"type": t, "value": v}]} for t, v in listed_ids],
                "purpose": "批量开户核验",
            })  # fmt: skip
            assert decided.status_code == 200 and any(r["entry_ids"] for r in decided.json()["results"])

        # --- instructions, policy, catalogues
        pages = probe.both("GET", "/v1/instructions")
        probe.both("GET", "/v1/instructions", params={"kind": "apply"})
        instructions = pages[0].json().get("instructions", [])
        ins_id = instructions[0]["id"] if instructions else str(uuid.uuid4())
        probe.both("POST", "/v1/instructions/{instruction_id}/ack", {"instruction_id": ins_id})
        probe(
            "POST",
            "/v1/instructions/{instruction_id}/feedback",
            NODE,
            {"instruction_id": ins_id},
            json={"outcome": "not_applicable", "reason": "本平台无该主体账户"},
        )
        probe(
            "POST",
            "/v1/instructions/{instruction_id}/feedback",
            OP,
            {"instruction_id": ins_id},
            json={"outcome": "not_applicable", "reason": "本平台无该主体账户"},
        )
        # the bulk steps (#17): all or nothing, each item by the single rules
        probe.both("POST", "/v1/instructions/ack", json={"ids": [i["id"] for i in instructions[:2]]})
        probe.both(
            "POST",
            "/v1/instructions/feedback",
            json={"items": [{"id": ins_id, "outcome": "not_applicable", "reason": "本平台无该主体账户"}]},
        )
        probe.both("GET", "/v1/policy")
        probe.both("GET", "/v1/catalogues/measures")

        # --- due process: a public objection and report about the listed persons; the enterprise's queues
        obj = probe(
            "POST",
            "/v1/objections",
            None,
            json={
                "entry_id": listed,
                "identifier": {"type": "resident_id", "value": rid1},
                "grounds": "本人未参与刷单，请核实。",
                "contact_email": "probe@example.cn",
            },
        )
        tracking, secret = obj.json().get("tracking_number", other_ids[1]), obj.json().get("secret", "x")
        probe(
            "GET",
            "/v1/objections/{tracking_number}/confirmation",
            None,
            {"tracking_number": tracking},
            params={"secret": secret},
        )
        probe(
            "GET",
            "/v1/public/objections/{tracking_number}",
            None,
            {"tracking_number": tracking},
            params={"secret": secret},
        )
        probe(
            "POST",
            "/v1/attachments/{kind}/{tracking_number}",
            None,
            {"kind": "objections", "tracking_number": tracking},
            files={"file": ("a.txt", b"probe", "text/plain")},
            headers={"X-Case-Secret": secret},
        )
        probe("GET", "/v1/objections", OP)
        for oid in (other_ids[0],):
            probe("GET", "/v1/objections/{objection_id}", OP, {"objection_id": oid})
            probe(
                "POST",
                "/v1/objections/{objection_id}/answer",
                OP,
                {"objection_id": oid},
                json={"proposed_outcome": "upheld", "answer": "证据充分"},
            )
            probe(
                "GET",
                "/v1/objections/{objection_id}/attachments/{digest}",
                OP,
                {"objection_id": oid, "digest": sha},
            )
        rep = probe(
            "POST",
            "/v1/repairs",
            None,
            json={
                "entry_id": listed,
                "identifier": {"type": "resident_id", "value": rid1},
                "contact_email": "probe@example.cn",
                "commitment_accepted": True,
                "commitment_text": "本人承诺诚信经营，不再参与刷单炒信。",
                "rectification": "已退还全部佣金并删除评价。",
            },
        )
        probe(
            "GET",
            "/v1/public/repairs/{tracking_number}",
            None,
            {"tracking_number": rep.json().get("tracking_number", other_ids[1])},
            params={"secret": rep.json().get("secret", "x")},
        )
        report_body = {
            "description": "该用户在本平台组织空包刷单。",
            "reported": {"identifiers": [{"type": "resident_id", "value": rid1}, {"type": "phone", "value": phone1}], "name": PEOPLE[1][0]},
            "behaviours": ["empty_parcel"], "enterprise_org_id": org_id,
        }  # fmt: skip
        pub = probe("POST", "/v1/public/reports", None, json=report_body)
        # The platform routes the public report to the enterprise: it handles it as the recipient.
        reviewer = {
            "Authorization": f"Bearer {keys[('全国信用信息共享平台（反炒信子系统）', 'platform_reviewer')]}"
        }
        with db.session() as s:
            routed = str(
                s.scalars(select(Report).where(Report.tracking_number == pub.json()["tracking_number"]))
                .one()
                .id
            )
        r = api.post(
            f"/v1/reports/{routed}/triage",
            json={"action": "route", "addressed_to_org_id": org_id},
            headers=reviewer,
        )
        assert r.status_code == 200, r.text
        probe(
            "GET",
            "/v1/public/reports/{tracking_number}",
            None,
            {"tracking_number": pub.json().get("tracking_number", other_ids[3])},
            params={"secret": pub.json().get("secret", "x")},
        )
        # Its own report names nobody listed: what it typed itself is not what this test looks for.
        own_report = {
            **report_body,
            "enterprise_org_id": None,
            "reported": {"identifiers": [{"type": "resident_id", "value": NOBODY}]},
        }
        mine = probe("POST", "/v1/reports", OP, json=own_report)
        probe("GET", "/v1/reports", OP)
        # The routed report names the person masked: the enterprise handles it without the plain values.
        handled = probe("GET", "/v1/reports/{report_id}", OP, {"report_id": routed})
        assert handled.status_code == 200 and mask("phone", phone1) in handled.text, handled.text
        for rid_ in (mine.json().get("id", other_ids[2]), routed, other_ids[2]):
            probe("GET", "/v1/reports/{report_id}", OP, {"report_id": rid_})
            probe(
                "POST",
                "/v1/reports/{report_id}/outcome",
                OP,
                {"report_id": rid_},
                json={"outcome": "unsubstantiated", "note": "查无此人"},
            )
            probe(
                "GET", "/v1/reports/{report_id}/attachments/{digest}", OP, {"report_id": rid_, "digest": sha}
            )
        probe("GET", "/v1/public/corrections", None)
        probe("GET", "/v1/public/commitments", None)  # credit commitments published with repairs (#15)
        probe.both("GET", "/v1/commitments")
        probe(
            "POST",
            "/v1/public/access-log",
            None,
            json={"entry_id": listed, "identifier": {"type": "resident_id", "value": rid1}},
        )
        # A statement (陈述申辩, #15) on the demo's notice before listing (a courier's empty parcels).
        with db.session() as s:
            notice_number = s.scalars(select(Notice.number)).first() or "GZ20260101-AAAAAAAA"
        said = probe(
            "POST",
            "/v1/public/statements",
            None,
            json={
                "notice_number": notice_number,
                "identifier": {"type": "courier_staff", "value": "91440300MA5G2R4T88:SZ-0451"},
                "text": "本人未参与空包刷单，请核实。",
            },
        )
        assert said.status_code == 201, said.text
        st_tracking, st_secret = said.json()["tracking_number"], said.json()["secret"]
        probe(
            "POST",
            "/v1/public/statements/{tracking_number}/files",
            None,
            {"tracking_number": st_tracking},
            files={"file": ("a.txt", b"probe", "text/plain")},
            headers={"X-Case-Secret": st_secret},
        )
        probe(
            "GET",
            "/v1/public/statements/{tracking_number}",
            None,
            {"tracking_number": st_tracking},
            params={"secret": st_secret},
        )

        # --- statistics
        probe("GET", "/v1/stats/public", None)
        for fmt in ("json", "csv", "xlsx"):
            probe.both("GET", "/v1/stats/measures", params={"format": fmt})
        for fmt in ("json", "csv"):  # #22: coordination figures, its own row
            probe.both("GET", "/v1/stats/coordination", params={"format": fmt})

        # --- sharing: feed, manifest, snapshot (gzip JSON lines), deltas, evaluation, webhooks, need to know
        probe.both("GET", "/v1/feed")
        probe.both("GET", "/v1/sharing/keys")
        manifest = probe.both("GET", "/v1/sharing/manifest")[0].text
        snap_seq = re.search(r"/v1/sharing/snapshots/(\d+)", manifest).group(1)  # type: ignore[union-attr]
        for snapshot in probe.both("GET", "/v1/sharing/snapshots/{seq}", {"seq": snap_seq}):
            assert snapshot.status_code == 200 and snapshot.content[:2] == b"\x1f\x8b"
        probe.both("GET", "/v1/sharing/deltas", params={"after": 0})
        # --- the transparency log (#19): every route; leaves carry the shared record (tags), never plain
        probe.both("GET", "/v1/log/checkpoint")
        probe.both("GET", "/v1/log/key")
        probe.both("GET", "/v1/log/proof/inclusion", params={"index": 0})
        probe.both("GET", "/v1/log/proof/inclusion", params={"entry": listed})
        probe.both("GET", "/v1/log/proof/consistency", params={"from": 0, "to": 1})
        for template, path in (
            ("/v1/log/tile/{path:path}", "/v1/log/tile/0/000.p/1"),
            ("/v1/log/tile/entries/{path:path}", "/v1/log/tile/entries/000.p/1"),
        ):
            probe.both("GET", path)
            probe.called.add(("GET", template))
        probe.both("POST", "/v1/log/cosignature", json={"checkpoint": "x\n", "cosignature": "— a AAAAAAAA"})
        probe.both("POST", "/v1/log/statement", json={"entry_id": listed})  # reviewers only: refused
        blinded = [oprf.blind(oprf.identifier_input(t, v))[1] for t, v in listed_ids]
        probe(
            "POST",
            "/v1/sharing/evaluate",
            NODE,
            json={"blinded": [base64.b64encode(b).decode() for b in blinded], "purpose": "开户核验"},
        )
        probe.both("GET", "/v1/sharing/quotas/{org_id}", {"org_id": org_id})
        hook = probe("POST", "/v1/sharing/webhooks", OP, json={"url": "http://127.0.0.1:9/hook"})
        probe.both("GET", "/v1/sharing/webhooks")
        probe(
            "DELETE",
            "/v1/sharing/webhooks/{webhook_id}",
            OP,
            {"webhook_id": hook.json().get("id", str(uuid.uuid4()))},
        )
        shared = []
        for eid in entry_ids:
            answers = probe.both(
                "GET",
                "/v1/sharing/entries/{entry_id}",
                {"entry_id": eid},
                headers={"X-FCX-Purpose": "need%20to%20know"},
            )
            shared += [eid for a in answers if a.status_code == 200]
        probe(
            "POST",
            "/v1/decision-log/node",
            NODE,
            json={
                "records": [
                    {
                        "id": "probe-1",
                        "at": "2026-01-02T03:04:05+08:00",
                        "scene": "account_registration",
                        "verdict": "allow",
                    }
                ]
            },
        )
        # #16: node status reports and the nodes' lag
        probe(
            "POST",
            "/v1/nodes/status",
            NODE,
            json={"node_id": "probe-node-1", "node_version": "0.1.0", "feed_seq": 0, "enrolled": 0,
                  "interval_seconds": 60},
        )  # fmt: skip
        probe.both("GET", "/v1/nodes")

        # --- the console: signed in with the operator's key; the public pages
        page = probe("GET", "/console/login", None)
        probe("GET", "/console/lang/{locale}", None, {"locale": "en"})
        page = probe("GET", "/console/login", None)
        probe(
            "POST",
            "/console/login",
            None,
            data={
                "csrf_token": csrf_of(page.text),
                "method": "api_key",
                "api_key": op["Authorization"].split()[1],
            },
        )
        for path in (
            "/console/",
            "/console/entries",
            "/console/org",
            "/console/objections",
            "/console/reports",
            "/console/policy",
            "/console/coordination",
            "/console/keys",
            "/console/entries.csv",
        ):
            probe("GET", path, None)
        # the workbench's search (#17), by a listed person's phone: sealed, never echoed plain elsewhere
        token = csrf_of(probe("GET", "/console/org", None).text)
        probe("POST", "/console/workbench", None, data={"csrf_token": token, "q": phone0, "tab": "done"})
        probe("POST", "/console/entries", None, data={"csrf_token": token, "q": PEOPLE[0][0]})
        for eid in [*entry_ids, own_id]:
            probe("GET", "/console/public/records/{entry_id}", None, {"entry_id": eid})
            probe("GET", "/console/public/records/{entry_id}/log-proof.json", None, {"entry_id": eid})
            probe("GET", "/console/entries/{entry_id}", None, {"entry_id": eid})
            probe("GET", "/console/entries/{entry_id}", None, {"entry_id": eid}, params={"reveal": "1"})
            probe(
                "GET", "/console/entries/{entry_id}/evidence/{digest}", None, {"entry_id": eid, "digest": sha}
            )
        probe("GET", "/console/orgs/{org_id}", None, {"org_id": org_id})
        probe("GET", "/console/orgs/{org_id}/rulebook", None, {"org_id": org_id})
        # its sharing agreement (#22): each form refused as sent (nothing changes its standing)
        probe("GET", "/console/agreement", None)
        probe("GET", "/console/agreement/signatures/{signature_id}/pdf", None, {"signature_id": uuid.uuid4()})
        token = csrf_of(probe("GET", "/console/org", None).text)
        probe("POST", "/console/agreement/apply", None, data={"csrf_token": token})
        probe("POST", "/console/agreement/sign", None, data={"csrf_token": token, "signatory": PEOPLE[0][0]})
        probe("POST", "/console/agreement/withdraw", None, data={"csrf_token": token, "reason": ""})
        probe(
            "POST",
            "/console/orgs/{org_id}/rulebook",
            None,
            {"org_id": org_id},
            data={
                "csrf_token": csrf_of(probe("GET", "/console/org", None).text),
                "choice_restrict_promotions": "excluded",
                "clause_restrict_promotions": "用户协议第8条",
            },
        )
        csrf = csrf_of(probe("GET", "/console/org", None).text)
        ins_id = instructions[1]["id"] if len(instructions) > 1 else ins_id  # not yet reported
        probe(
            "POST",
            "/console/instructions/{instruction_id}/ack",
            None,
            {"instruction_id": ins_id},
            data={"csrf_token": csrf},
        )
        probe(
            "POST",
            "/console/instructions/{instruction_id}/report",
            None,
            {"instruction_id": ins_id},
            data={"csrf_token": csrf, "outcome": "not_applicable", "reason": "无该账户"},
        )
        # --- the instruction workbench (#17): tabs, filters, export, bulk steps, a feedback file, 报送
        for tab in ("to_ack", "to_execute", "overdue", "done"):
            probe("GET", "/console/workbench", None, params={"tab": tab, "size": "500"})
        probe("GET", "/console/workbench", None, params={"q": "刷单", "measure": "deny_new_account"})
        for fmt in ("csv", "xlsx"):
            probe("GET", "/console/workbench/export", None, params={"format": fmt, "tab": "done"})
        bulk_ids = [i["id"] for i in instructions[2:4]]
        probe("POST", "/console/workbench/ack", None, data={"csrf_token": csrf, "ids": bulk_ids})
        probe(
            "POST",
            "/console/workbench/feedback",
            None,
            data={"csrf_token": csrf, "ids": bulk_ids, "outcome": "not_applicable", "reason": "无该账户"},
        )
        sheet = "instruction_id,outcome\n" + "".join(f"{i},not_applicable\n" for i in bulk_ids)
        probe(
            "POST",
            "/console/workbench/import",
            None,
            data={"csrf_token": csrf},
            files={"file": ("feedback.csv", sheet.encode(), "text/csv")},
        )
        probe("GET", "/console/workbench/submit", None)
        probe(
            "POST",
            "/console/workbench/submit",
            None,
            data={
                "csrf_token": csrf, "subject_kind": "platform_account", "subject_name": "探针账户",
                "id_type_0": "platform_account", "id_value_0": "probe-shop:acct-1", "behaviours": "order_brushing",
                "role": "participant", "severity": "general", "basis": "enterprise_finding", "facts": "探针报送。",
            },
            files={"evidence": ("p.pdf", pdf, "application/pdf")},
        )  # fmt: skip
        key_id = api.post(
            f"/v1/organisations/{org_id}/keys", json={"role": "enterprise_node", "label": "p3"}, headers=op
        ).json()["id"]
        made = probe(
            "POST",
            "/console/keys",
            None,
            data={"csrf_token": csrf, "org_id": org_id, "role": "enterprise_node", "label": "probe2"},
        )
        probe(
            "POST",
            "/console/keys/{key_id}/revoke",
            None,
            {"key_id": key_id},
            data={"csrf_token": csrf, "reason": "probe"},
        )
        for oid in (other_ids[0],):
            probe("GET", "/console/objections/{objection_id}", None, {"objection_id": oid})
            probe(
                "POST",
                "/console/objections/{objection_id}/answer",
                None,
                {"objection_id": oid},
                data={"csrf_token": csrf, "proposed_outcome": "upheld", "answer": "证据充分"},
            )
            probe(
                "GET",
                "/console/objections/{objection_id}/attachments/{digest}",
                None,
                {"objection_id": oid, "digest": sha},
            )
        for rid_ in (mine.json().get("id", other_ids[2]), routed, other_ids[2]):
            probe("GET", "/console/reports/{report_id}", None, {"report_id": rid_})
            probe(
                "POST",
                "/console/reports/{report_id}/handle",
                None,
                {"report_id": rid_},
                data={"csrf_token": csrf, "outcome": "unsubstantiated", "note": "查无此人"},
            )
            probe(
                "GET",
                "/console/reports/{report_id}/attachments/{digest}",
                None,
                {"report_id": rid_, "digest": sha},
            )
        for path in (
            "/console/public",
            "/console/public/stats",
            "/console/public/corrections",
            "/console/public/commitments",
            "/console/public/objection",
            "/console/public/repair",
            "/console/public/report",
            "/console/public/access",
            "/console/public/statement",
            "/console/public/progress",
            "/console/public/guide/objection",
            "/console/public/guide/repair",
        ):
            probe("GET", path, None)
        # a correction notice's inclusion proof (#19): every notice there is, and one that is not
        with db.session() as s:
            notices = [str(n) for n in s.scalars(select(CorrectionNotice.id))]
        for notice_id in [*notices, str(uuid.uuid4())]:
            probe(
                "GET",
                "/console/public/corrections/{notice_id}/log-proof.json",
                None,
                {"notice_id": notice_id},
            )
        # The filer's progress check (#15): the objection filed above, and a wrong secret.
        for number, key in ((tracking, secret), (tracking, "wrong")):
            probe(
                "POST",
                "/console/public/progress",
                None,
                data={"csrf_token": csrf, "tracking_number": number, "secret": key},
            )
            probe(
                "POST",
                "/console/public/progress/log-proof.json",
                None,
                data={"csrf_token": csrf, "tracking_number": number, "secret": key},
            )
            probe(
                "POST",
                "/console/public/progress/material",
                None,
                data={"csrf_token": csrf, "tracking_number": number, "secret": key},
                files={"files": ("m.txt", "补正材料".encode(), "text/plain")},
            )
        for by, q in (("resident_id", rid0), ("phone", phone0), ("name", PEOPLE[0][0])):
            probe(
                "POST",
                "/console/public",
                None,
                data={"csrf_token": csrf, "by": by, "q": q, "full_name": PEOPLE[0][0]},
            )
        probe(
            "POST",
            "/console/public/objection",
            None,
            data={
                "csrf_token": csrf,
                "entry_id": listed,
                "identifier_type": "resident_id",
                "identifier_value": rid1,
                "grounds": "本人未参与刷单，请核实。",
            },
        )
        probe(
            "POST",
            "/console/public/repair",
            None,
            data={
                "csrf_token": csrf,
                "entry_id": listed,
                "identifier_type": "resident_id",
                "identifier_value": rid1,
                "commitment_accepted": "true",
                "commitment_text": "本人承诺诚信经营，不再参与刷单炒信。",
                "rectification": "已退还全部佣金。",
            },
        )
        for description in ("该用户在本平台组织空包刷单。", "太短"):  # filed; refused (the form again)
            probe(
                "POST",
                "/console/public/report",
                None,
                data={
                    "csrf_token": csrf,
                    "description": description,
                    "identifier_type": "phone",
                    "identifier_value": phone1,
                    "enterprise_org_id": org_id,
                },
            )
        probe(
            "POST",
            "/console/public/access",
            None,
            data={
                "csrf_token": csrf,
                "entry_id": listed,
                "identifier_type": "resident_id",
                "identifier_value": rid1,
            },
        )
        probe(
            "POST",
            "/console/public/statement",
            None,
            data={
                "csrf_token": csrf,
                "notice_number": notice_number,
                "identifier_type": "resident_id",
                "identifier_value": rid1,
                "text": "本人未参与刷单，请核实。",
            },
        )
        # #22: the regular consultation (定期会商): meetings it is invited to, its agenda items and action
        # items — no personal data; missing ids answer 404 like another tenant's.
        nobody = str(uuid.uuid4())
        probe("GET", "/v1/consultation/meetings", OP)
        probe("GET", "/v1/consultation/meetings/{meeting_id}", OP, {"meeting_id": nobody})
        raised = probe(
            "POST", "/v1/consultation/agenda-items", OP,
            json={"kind": "disputed_measure", "title": "措施4", "measure": "4"},
        )  # fmt: skip
        probe("GET", "/v1/consultation/agenda-items", OP)
        probe(
            "POST", "/v1/consultation/agenda-items/{item_id}/withdrawal", OP,
            {"item_id": raised.json().get("id", nobody)},
        )  # fmt: skip
        probe("GET", "/v1/consultation/decisions/{decision_id}", OP, {"decision_id": nobody})
        probe("GET", "/v1/consultation/action-items", OP, params={"overdue": "true"})
        probe(
            "POST", "/v1/consultation/action-items/{item_id}/closure", OP, {"item_id": nobody},
            json={"note": "已办结"},
        )  # fmt: skip
        probe("GET", "/console/consultation", None)
        probe(
            "POST", "/console/consultation/agenda-items", None,
            data={"csrf_token": csrf, "kind": "data_quality", "title": "数据重复"},
        )  # fmt: skip
        probe("GET", "/console/consultation/meetings/{meeting_id}", None, {"meeting_id": nobody})
        probe("GET", "/console/consultation/action-items", None)
        probe(
            "POST", "/console/consultation/action-items/{item_id}/close", None, {"item_id": nobody},
            data={"csrf_token": csrf, "note": "已办结"},
        )  # fmt: skip
        probe("POST", "/console/logout", None, data={"csrf_token": csrf})

    # The need-to-know channel answered, and each answer is an audited read of personal data with its purpose.
    assert shared
    with db.session() as s:
        reads = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "pii.read", AuditEvent.target_type == "entry")
        ).all()
        audited = [e.target_id for e in reads if e.detail.get("purpose") == "need to know"]
    assert sorted(audited) == sorted(shared)

    missing = enterprise_routes(app) - probe.called
    assert not missing, f"routes an enterprise may call that this test does not: {sorted(missing)}"
    assert not probe.leaks, "plain identifiers in enterprise-facing bodies:\n" + "\n".join(
        sorted(set(probe.leaks))
    )
