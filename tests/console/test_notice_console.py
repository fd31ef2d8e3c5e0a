"""The console's part of the notice before listing (告知书) and statements (陈述申辩): the public statement
form, and the reviewer's decision page (notice, delivery, statements with files, liable persons, an answer
box per statement)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from fanchaoxin.appeals.models import CaseAttachment
from fanchaoxin.appeals.notice_models import Notice, Statement
from fanchaoxin.appeals.notify import LogNotifier, set_notifier
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import RID_A, USCC_A, unit_entry

from .console_helpers import csrf_of
from .test_console import sign_in, staff  # noqa: F401  (the fixture)

PDF_FILE = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def outbox():
    notifier = LogNotifier()
    previous = set_notifier(notifier)
    yield notifier
    set_notifier(previous)


def in_notice(db, org_id, **over) -> tuple[uuid.UUID, str]:
    """The shop's finding against a company, its notice period opened: (entry id, notice number)."""
    body = unit_entry(
        liable_persons=[
            {
                "role": "legal_representative",
                "name": "张小三",
                "identifiers": [{"type": "resident_id", "value": RID_A}],
            }
        ],
        **over,
    )
    with db.session() as s:
        e = registry.submit(s, Actor("test:shop", org_id), org_id, EntryIn.model_validate(body))
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.open_notice)
        entry_id = e.id
    with db.session() as s:
        return entry_id, s.scalars(select(Notice.number).where(Notice.entry_id == entry_id)).one()


def end_notice_period(db, entry_id) -> str:
    with db.session() as s:
        s.get(Entry, entry_id).notice_ends_on = china_today() - timedelta(days=1)
    return (china_today() - timedelta(days=1)).isoformat()


def file_form(client, number, *, value=USCC_A, files=None, **over):
    page = client.get(f"/console/public/statement?notice={number}")
    assert page.status_code == 200 and f'value="{number}"' in page.text
    data = {
        "csrf_token": csrf_of(page.text),
        "notice_number": number,
        "identifier_type": "uscc",
        "identifier_value": value,
        "text": "我司订单均为真实交易，随附物流凭证。",
        "contact_email": "legal@example.cn",
        **over,
    }
    return client.post("/console/public/statement", data=data, files=files or {})


def test_the_public_statement_form_files_a_statement_with_evidence(client, db, staff, outbox):  # noqa: F811
    entry_id, number = in_notice(db, staff["shop"].org.id)
    # Without the CSRF token nothing is filed.
    assert client.post("/console/public/statement", data={"notice_number": number}).status_code == 403
    r = file_form(
        client,
        number,
        files=[
            ("evidence", ("物流凭证.pdf", PDF_FILE, "application/pdf")),
            ("evidence", ("说明.txt", "订单说明".encode(), "text/plain")),
        ],
    )
    assert r.status_code == 201, r.text
    tracking = re.search(r'<code id="tracking">([^<]+)</code>', r.text).group(1)
    secret = re.search(r'<code id="secret">([^<]+)</code>', r.text).group(1)
    assert tracking.startswith("CS") and secret
    with db.session() as s:
        st = s.scalars(select(Statement)).one()
        assert st.entry_id == entry_id and st.channel == "public" and st.tracking_number == tracking
        files = s.scalars(select(CaseAttachment).where(CaseAttachment.case_id == st.id)).all()
        assert {f.media_type for f in files} == {"application/pdf", "text/plain"}
    status = client.get(f"/v1/public/statements/{tracking}", params={"secret": secret}).json()
    assert status["status"] == "received" and status["attachments"] == 2

    # Another subject's identifier: the same words as an unknown notice, nothing filed.
    r = file_form(client, number, value="91330100MA2D7K8Q9U")
    assert r.status_code == 404 and 'id="form-errors"' in r.text
    unknown = file_form(client, "GZ20260101-AAAAAAAA")
    assert unknown.status_code == 404
    said = re.compile(r'id="form-errors">(.*?)</div>', re.S)
    assert said.search(unknown.text).group(1) == said.search(r.text).group(1)
    # A statement too short names the field.
    r = file_form(client, number, text="不")
    assert r.status_code == 422 and "text" in r.text
    # After the last day: refused, naming it.
    ended = end_notice_period(db, entry_id)
    r = file_form(client, number)
    assert r.status_code == 409 and ended in r.text
    with db.session() as s:
        assert len(s.scalars(select(Statement)).all()) == 1


def test_the_reviewer_decides_with_the_notice_statements_and_liable_persons(client, db, staff, outbox):  # noqa: F811
    entry_id, number = in_notice(db, staff["shop"].org.id)
    r = file_form(client, number, files=[("evidence", ("物流凭证.pdf", PDF_FILE, "application/pdf"))])
    assert r.status_code == 201
    client.cookies.clear()
    sign_in(client, "reviewer")

    # The queue flags the letter to post (no contact) and the statement to answer.
    queue = client.get("/console/review").text
    assert f'id="unanswered-{entry_id}"' in queue and f'id="delivery-{entry_id}"' in queue
    assert f'href="/console/review/{entry_id}"' in queue
    # The entry page: the notice and its delivery, the liable persons before publication.
    page = client.get(f"/console/entries/{entry_id}").text
    assert 'id="letter-required"' in page and number in page and 'id="decide-link"' in page
    assert 'id="liable-persons"' in page and "张*三" in page and RID_A not in page

    page = client.get(f"/console/review/{entry_id}")
    assert page.status_code == 200
    text = page.text
    assert number in text and 'id="letter-required"' in text and 'id="letter-posted-form"' in text
    assert "我司订单均为真实交易，随附物流凭证。" in text and "物流凭证.pdf" in text
    assert "张*三" in text and RID_A not in text
    with db.session() as s:
        st = s.scalars(select(Statement)).one()
        sha = s.scalars(select(CaseAttachment.digest).where(CaseAttachment.case_id == st.id)).one()
    # Publishing is not a step of the notice period: no answer boxes until it is over (#17).
    assert 'name="statement_id"' not in text and 'id="decide-form"' not in text
    f = client.get(f"/console/review/statements/{st.id}/files/{sha}")
    assert f.status_code == 200 and f.content == PDF_FILE
    notice = client.get(f"/console/review/{entry_id}/notice")
    assert notice.status_code == 200 and "拟列入炒信黑名单告知书" in notice.text and number in notice.text
    pdf = client.get(f"/console/review/{entry_id}/notice.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    revealed = client.get(f"/console/review/{entry_id}?reveal=1").text
    assert "张小三" in revealed and RID_A in revealed

    # Publishing without an answer: nothing changes, the statement is named.
    # The letter is recorded as posted from the page: a missing date is named, then it is recorded.
    csrf = csrf_of(text)
    r = client.post(
        f"/console/review/{entry_id}/letter-posted", data={"csrf_token": csrf, "posted_on": "", "reference": "XA1"}
    )
    assert r.status_code == 422 and 'id="decide-errors"' in r.text
    r = client.post(
        f"/console/review/{entry_id}/letter-posted",
        data={"csrf_token": csrf, "posted_on": china_today().isoformat(), "reference": "XA12345678CN"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    posted = client.get(f"/console/review/{entry_id}").text
    assert 'id="letter-required"' not in posted and "XA12345678CN" in posted

    end_notice_period(db, entry_id)
    with db.session() as s:
        version = s.get(Entry, entry_id).version
    assert f'name="statement_id" value="{st.id}"' in client.get(f"/console/review/{entry_id}").text
    r = client.post(
        f"/console/review/{entry_id}/decide",
        data={
            "csrf_token": csrf,
            "action": "publish",
            "version": version,
            "statement_id": str(st.id),
            "answer": "",
        },
        follow_redirects=False,
    )
    assert r.status_code == 422 and st.tracking_number in r.text and 'id="decide-errors"' in r.text
    r = client.post(
        f"/console/review/{entry_id}/decide",
        data={
            "csrf_token": csrf,
            "action": "publish",
            "version": version,
            "statement_id": str(st.id),
            "answer": "物流凭证与涉案订单不符，不予采纳。",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "published"
        answered = s.get(Statement, st.id)
        assert answered.answer == "物流凭证与涉案订单不符，不予采纳。" and answered.outcome == "published"
        assert answered.answered_by == "user:reviewer"
    answered_page = client.get(f"/console/review/{entry_id}").text
    assert f'id="answer-{st.id}"' in answered_page and 'id="decide-form"' not in answered_page


def test_the_decision_page_is_the_reviewers(client, db, staff):  # noqa: F811
    entry_id, _number = in_notice(db, staff["shop"].org.id)
    sign_in(client, "shop")
    assert client.get(f"/console/review/{entry_id}").status_code == 403
    assert client.get(f"/console/review/{entry_id}/notice.pdf").status_code == 403
    page = client.get(f"/console/entries/{entry_id}").text
    assert 'id="letter-required"' not in page and 'id="liable-persons"' not in page


def test_rejecting_from_the_decision_page_answers_with_the_reason(client, db, staff):  # noqa: F811
    entry_id, number = in_notice(db, staff["shop"].org.id)
    assert file_form(client, number).status_code == 201
    client.cookies.clear()
    sign_in(client, "reviewer")
    page = client.get(f"/console/review/{entry_id}").text
    with db.session() as s:
        st, version = s.scalars(select(Statement)).one(), s.get(Entry, entry_id).version
    r = client.post(
        f"/console/review/{entry_id}/decide",
        data={
            "csrf_token": csrf_of(page),
            "action": "reject",
            "reason": "陈述申辩成立。",
            "version": version,
            "statement_id": str(st.id),
            "answer": "",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "rejected"
        assert s.get(Statement, st.id).answer == "陈述申辩成立。"
