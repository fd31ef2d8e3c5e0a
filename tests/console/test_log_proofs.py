"""The transparency log's inclusion proof on the public pages (#19 point 2 and its Done-when): the record
page of a listed entry and the confirmations of an objection, a repair and a correction carry the entry's
inclusion proof and the checkpoint it is in, which `docs/verify_log.py`, run in a separate interpreter
(``-I``: nothing of the project on its path), accepts with the log's verifier key — and refuses altered.

Under ``FCX_CRYPTO_PROFILE=gm`` the same holds with SM2 and SM3."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from fanchaoxin.appeals.models import CorrectionNotice
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.settings import get_settings
from fanchaoxin.sharing import translog
from fanchaoxin.sharing.translog_models import LogLeaf
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of, penalty_entry

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_log.py"
NAME = "张小三"
RID = "11010519491231002X"
PHONE = "13800138000"


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    translog.forget_trees()
    yield get_settings()
    get_settings.cache_clear()
    translog.forget_trees()


def _publish(db, entry_id) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        e = s.get(Entry, entry_id)
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)


def _person(db, dept) -> Any:  # type: ignore[no-untyped-def]
    """A natural person on the public list: an administrative penalty of a published severity."""
    with db.session() as s:
        e = registry.submit(
            s,
            Actor("test:dept", dept),
            dept,
            EntryIn.model_validate(
                {
                    "subject": {
                        "kind": "individual",
                        "name": NAME,
                        "identifiers": [
                            {"type": "resident_id", "value": RID},
                            {"type": "phone", "value": PHONE},
                        ],
                    },
                    "behaviours": ["order_brushing"],
                    "role": "organizer",
                    "severity": "serious",
                    "basis": "administrative_penalty",
                    "document_number": "测罚〔2026〕7号",
                    "issuing_authority": "示范市市场监督管理局",
                    "document_date": date(2026, 1, 5).isoformat(),
                    "facts": "组织刷单 300 笔。",
                }
            ),
        )
        eid = e.id
    _publish(db, eid)
    return eid


@pytest.fixture
def listed(db, world, settings):  # type: ignore[no-untyped-def]
    dept = world.department("示范市市场监督管理局").org.id
    person = _person(db, dept)
    company = penalty_entry(db, dept, name="杭州示范刷单网络科技有限公司", uscc="91350100M000100Y43")
    _publish(db, company)
    return {"person": person, "company": company}


def _vkey(client) -> str:  # type: ignore[no-untyped-def]
    doc = client.get("/v1/log/key").json()
    return str(doc["vkeys"][0])


def _verify(tmp_path: Path, document: Any, vkey: str) -> tuple[int, str]:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(document))
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), "--vkey", vkey, "--require-signature"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


def _section(html: str) -> str:
    found = re.search(r'<section class="card log-proof".*?</section>', html, re.S)
    assert found, "the page carries no inclusion proof section"
    return found.group(0)


def _no_plain_personal_data(text: str) -> None:
    for plain in (NAME, RID, PHONE, RID[-4:] + '"'):
        assert plain not in text, plain


def _no_plain_personal_data_in(doc: dict[str, Any]) -> None:
    """The leaves are base64: read each one (the shared record, identifiers as tags only)."""
    for leaf in doc["leaves"]:
        record = json.loads(base64.b64decode(leaf["leaf"]))
        assert record["type"] == "feed" and record["event"]["tags"], record
        _no_plain_personal_data(json.dumps(record, ensure_ascii=False))
    _no_plain_personal_data(doc["checkpoint"])


def _altered(doc: dict[str, Any]) -> dict[str, Any]:
    bad: dict[str, Any] = json.loads(json.dumps(doc))
    leaf = bad["leaves"][-1]
    if leaf["proof"]:
        raw = bytearray(base64.b64decode(leaf["proof"][0]))
        raw[0] ^= 1
        leaf["proof"][0] = base64.b64encode(bytes(raw)).decode()
    else:
        leaf["leaf"] = base64.b64encode(b'{"type":"feed","seq":1}').decode()
    return bad


def test_a_listed_person_objects_and_the_confirmation_carries_a_proof(client, listed, tmp_path):  # type: ignore[no-untyped-def]
    """The Done-when: a listed person's confirmation carries a proof the independent script accepts."""
    person = listed["person"]
    vkey = _vkey(client)

    # The record page: the section in Chinese, the vkey and the command, a download that verifies.
    page = client.get(f"/console/public/records/{person}")
    assert page.status_code == 200, page.text
    section = _section(page.text)
    assert 'data-state="included"' in section and "透明日志收录证明" in section
    assert vkey in section and f"python3 verify_log.py proof.json --vkey '{vkey}'" in html.unescape(section)
    assert vkey.split("+")[1] in section  # the key's fingerprint
    _no_plain_personal_data(section)
    r = client.get(f"/console/public/records/{person}/log-proof.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    _no_plain_personal_data(r.text)
    record_doc = r.json()
    _no_plain_personal_data_in(record_doc)
    assert set(record_doc) == {"tree_size", "checkpoint", "leaves"}
    assert re.search(rf'id="log-tree-size">{record_doc["tree_size"]}<', section)
    rc, out = _verify(tmp_path, record_doc, vkey)
    assert rc == 0 and "is in the log" in out, out

    # The person objects from the record page; the confirmation carries the proof, the dispute included.
    form = client.get(f"/console/public/objection?entry={person}").text
    filed = client.post(
        "/console/public/objection",
        data={
            "csrf_token": csrf_of(form), "entry_id": str(person), "identifier_type": "resident_id",
            "identifier_value": RID, "grounds": "处罚决定已被行政复议撤销，附复议决定书。",
            "contact_email": "zhang@example.cn",
        },
    )  # fmt: skip
    assert filed.status_code == 201, filed.text
    section = _section(filed.text)
    assert 'data-state="included"' in section and vkey in section
    _no_plain_personal_data(section)
    tracking = re.search(r'id="tracking">([^<]+)<', filed.text).group(1)  # type: ignore[union-attr]
    secret = re.search(r'id="secret">([^<]+)<', filed.text).group(1)  # type: ignore[union-attr]
    assert 'action="/console/public/progress/log-proof.json"' in section
    r = client.post(
        "/console/public/progress/log-proof.json",
        data={"csrf_token": csrf_of(filed.text), "tracking_number": tracking, "secret": secret},
    )
    assert r.status_code == 200, r.text
    _no_plain_personal_data(r.text)
    doc = r.json()
    _no_plain_personal_data_in(doc)
    assert len(doc["leaves"]) == len(record_doc["leaves"]) + 1  # publication, then the dispute
    assert doc["tree_size"] > record_doc["tree_size"]
    rc, out = _verify(tmp_path, doc, vkey)
    assert rc == 0 and out.count("is in the log") == len(doc["leaves"]), out
    assert "verifies" in out and "NOT CHECKED" not in out, out
    assert out.strip().endswith("OK    every check passed"), out
    rc, out = _verify(tmp_path, _altered(doc), vkey)
    assert rc == 1 and "FAIL" in out, out
    # A wrong secret gets the progress page's own answer, not a proof.
    r = client.post(
        "/console/public/progress/log-proof.json",
        data={"csrf_token": csrf_of(filed.text), "tracking_number": tracking, "secret": "wrong"},
    )
    assert r.status_code == 404 and 'id="not-found"' in r.text

    # The progress page carries it too, and asks for the secret again to download it.
    p = client.post(
        "/console/public/progress",
        data={"csrf_token": csrf_of(filed.text), "tracking_number": tracking, "secret": secret},
    )
    assert p.status_code == 200
    section = _section(p.text)
    assert 'data-state="included"' in section and 'name="secret" type="password" value=""' in section

    # In English too.
    client.get("/console/lang/en?next=/console/public")
    section = _section(client.get(f"/console/public/records/{person}").text)
    assert "Transparency log inclusion proof" in section and "Download the proof (JSON)" in section


def test_a_correction_notice_links_the_proof_of_the_revoked_record(client, db, listed, tmp_path):  # type: ignore[no-untyped-def]
    with db.session() as s:
        take_step(s, SYSTEM, s.get(Entry, listed["company"]), Action.revoke, reason="处罚决定已撤销")
        notice = s.scalar(select(CorrectionNotice).where(CorrectionNotice.entry_id == listed["company"]))
        assert notice is not None
        notice_id = notice.id
    page = client.get("/console/public/corrections").text
    link = f"/console/public/corrections/{notice_id}/log-proof.json"
    assert f'href="{link}"' in page and "透明日志收录证明" in page
    vkey = _vkey(client)
    assert vkey in page
    r = client.get(link)
    assert r.status_code == 200
    doc = r.json()
    assert len(doc["leaves"]) >= 2  # the publication and the revocation
    rc, out = _verify(tmp_path, doc, vkey)
    assert rc == 0 and out.count("is in the log") == len(doc["leaves"]), out
    assert client.get("/console/public/corrections/not-a-uuid/log-proof.json").status_code == 404


def test_without_a_leaf_or_a_readable_log_the_page_says_so(client, db, listed, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    person = listed["person"]
    # The log began after this record was published: no leaf of it.
    with db.session() as s:
        s.execute(delete(LogLeaf).where(LogLeaf.entry_id == person))
    translog.forget_trees()
    page = client.get(f"/console/public/records/{person}")
    assert page.status_code == 200
    section = _section(page.text)
    assert 'data-state="no_leaf"' in section and "还没有收入透明日志" in section
    assert client.get(f"/console/public/records/{person}/log-proof.json").status_code == 404
    # The log's key file cannot be read: the page still answers, and says so.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "log.json").write_text("{not json")
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(broken))
    get_settings.cache_clear()
    page = client.get(f"/console/public/records/{listed['company']}")
    assert page.status_code == 200
    assert 'data-state="unavailable"' in _section(page.text)
    assert client.get(f"/console/public/records/{listed['company']}/log-proof.json").status_code == 404
    # A record that is not public has no proof here either.
    assert (
        client.get(f"/console/public/records/{'0' * 8}-0000-0000-0000-{'0' * 12}/log-proof.json").status_code
        == 404
    )
