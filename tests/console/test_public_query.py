"""The public query (公示查询) is never an oracle: a natural person needs an identifier and the full name,
and "not listed" reads exactly like "not confirmed" (#14 point 6). One search box (#17): the kind of
identifier is recognised from what is typed; a person's name is never searched."""

from __future__ import annotations

import re

import pytest

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core import catalogue
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.identifiers import mask
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of, penalty_entry

RID = "110101199003071233"
UNLISTED_RID = "11010519491231002X"
PHONE = "13800138000"
USCC = "91350100M000100Y43"


@pytest.fixture
def listed(db, world):  # type: ignore[no-untyped-def]
    dept = world.department("示范市市场监督管理局").org.id
    with db.session() as s:
        e = registry.submit(s, Actor("t", dept), dept, EntryIn.model_validate({
            "subject": {"kind": "individual", "name": "张三丰", "identifiers": [
                {"type": "resident_id", "value": RID}, {"type": "phone", "value": PHONE},
            ]},
            "behaviours": ["fake_review"], "role": "participant", "severity": "general",
            "basis": "administrative_penalty", "document_number": "测罚〔2026〕2号",
            "issuing_authority": "示范市市场监督管理局", "facts": "虚假评价。",
        }))  # fmt: skip
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
    company = penalty_entry(db, dept, uscc=USCC)
    with db.session() as s:
        e = s.get(Entry, company)
        take_step(s, SYSTEM, e, Action.start_review)
        take_step(s, SYSTEM, e, Action.publish)
    return dept


def _results(client, by: str, q: str, full_name: str = "") -> str:  # type: ignore[no-untyped-def]
    """What the one search box answers; `by` is the kind it must have recognised (`name` for a name)."""
    token = csrf_of(client.get("/console/public").text)
    r = client.post(
        "/console/public",
        data={"csrf_token": token, "q": q, "full_name": full_name},
        headers={"HX-Request": "true"},  # the results fragment alone: the form echoes the query
    )
    assert r.status_code == 200, r.text
    assert f'data-kind="{by}"' in r.text or 'id="query-errors"' in r.text
    return r.text


def _no_hit(html: str) -> str:
    return html.split('id="no-results"', 1)[1]


def test_a_person_is_confirmed_only_with_identifier_and_full_name(client, listed):
    found = _results(client, "resident_id", RID, "张三丰")
    assert "张*丰" in found and mask("resident_id", RID) in found and RID not in found
    assert "张*丰" in _results(client, "phone", PHONE, " 张三丰 ")
    # an identifier alone, a wrong name, a name search: the same answer as a person never listed
    never_listed = _results(client, "resident_id", UNLISTED_RID, "张三丰")
    assert 'id="no-results"' in never_listed
    for answer in (
        _results(client, "resident_id", RID),
        _results(client, "resident_id", RID, "张三"),
        _results(client, "resident_id", UNLISTED_RID),
    ):
        assert answer == never_listed
    # The kind searched as is said (it is what was typed, not what was found); the answer is the same.
    for answer in (
        _results(client, "phone", PHONE),
        _results(client, "name", "张三丰"),
        _results(client, "name", "张三"),
    ):
        assert _no_hit(answer) == _no_hit(never_listed)


def test_companies_are_found_by_code_or_name_as_before(client, listed):
    assert "示范测试刷单有限公司" in _results(client, "uscc", USCC)
    assert "示范测试刷单有限公司" in _results(client, "name", "示范测试刷单有限公司")
    # Part of the name, and a slip of one character, find it too.
    assert "示范测试刷单有限公司" in _results(client, "name", "测试刷单")
    assert "示范测试刷单有限公司" in _results(client, "name", "示范侧试刷单")


def test_only_public_entries_are_shown(client, listed, monkeypatch):
    # The one predicate (core.catalogue.shown_publicly): a basis taken off the public list hides its entries.
    monkeypatch.setattr(catalogue, "public_bases", lambda: frozenset({"judicial_decision"}))
    assert 'id="no-results"' in _results(client, "uscc", USCC)
    assert 'id="no-results"' in _results(client, "resident_id", RID, "张三丰")


def test_a_full_name_too_long_is_named(client, listed):
    answer = _results(client, "resident_id", RID, "张" * 201)
    assert "姓名（查询个人时必填）" in answer and 'role="alert"' in answer
    assert "full_name" not in answer and 'id="no-results"' not in answer


def test_the_form_asks_for_the_full_name_in_chinese(client, listed):
    page = client.get("/console/public").text
    assert 'name="full_name"' in page
    assert re.search(r"姓名（查询个人时必填）", page)
