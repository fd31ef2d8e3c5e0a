"""Every message in the reader's language (#17): problems carry a stable code and params, the console
renders them from the zh-CN and en catalogues, and no English sentence, field path or rule tag reaches a
zh-CN page in any error path. The API keeps its problem+json shape, with `code`/`params` added."""

from __future__ import annotations

import ast
import html
import re
import string
import uuid
from datetime import date
from pathlib import Path
from typing import Literal

import pytest
from babel.messages.pofile import read_po
from pydantic import BaseModel, Field, ValidationError

from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import SubjectIn
from fanchaoxin.console import labels, problems
from fanchaoxin.console.auth import LANG_COOKIE
from fanchaoxin.console.i18n import po_files
from fanchaoxin.core import errors
from fanchaoxin.core.audit import SYSTEM
from fanchaoxin.core.errors import Conflict, NotFound, Problem, TooManyRequests, ValidationProblem
from fanchaoxin.core.identifiers import RULES, IdentifierError, normalise
from fanchaoxin.core.roles import Role
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.workflows.entries import take_step

from .console_helpers import csrf_of, penalty_entry
from .test_console import make_user, sign_in
from .test_console_browser import CHROMIUM, browser, shot, site  # noqa: F401  (fixtures)
from .test_console_browser import sign_in as browser_sign_in

SRC = Path(__file__).resolve().parents[2] / "src" / "fanchaoxin"
BAD_USCC = "9135010000010Y43"  # 16 characters; a USCC has 18

# Technical names that a Chinese sentence keeps as they are (file formats, standards, units).
KEPT_ASCII = {
    "PDF", "PNG", "JPEG", "GIF", "CSV", "MB", "KB", "https", "MOD", "ISO", "IMEI", "IDNA", "punycode",
    "ASCII", "GB", "UUID", "IDFA", "OAID", "Android", "ID", "Luhn", "IP", "IMEISV",
}  # fmt: skip
ASCII_WORD = re.compile(r"[A-Za-z]{2,}")
# Two English words in a row: a sentence (or a piece of one) that was not translated.
ENGLISH = re.compile(r"[A-Za-z]{2,}[ ,.;:'’-]+[A-Za-z]{2,}")
# What a page must never show: a field path, a rule tag, pydantic's or Starlette's own words.
LEAKS = re.compile(
    r"\[rule |\buscc\.\w+|value_error|Input should|Field required|String should|Not Found|Wrong username"
    r"|\b(?:q|reason|grounds|entry_id|identifier\.value|contact_email): "
)

# A value for every param a sentence can ask for.
SAMPLE = {
    "status": "published",
    "action": "publish",
    "allowed": ["start_review", "reject"],
    "until": "2026-12-31",
    "from": "2027-01-01",
    "size": 12_000_000,
    "limit": 10 * 1024 * 1024,
    "case_status": "forwarded",
    "instruction_status": "executed",
    "role": "enterprise_operator",
    "key_role": "platform_admin",
    "org_kind": "department",
    "expected_kind": "enterprise",
    "max": 365,
    "seconds": 30,
    "min_length": 10,
    "max_length": 200,
    "ge": 1,
    "gt": 0,
    "le": 10,
    "lt": 11,
    "got": 16,
    "type": "uscc",
    "due": "2027-01-15",
    "refused": 2,
    "total": 500,
    "measure": "restrict_promotions",
    "value": "14",
    "reason": "数据泄露",
}


def _english_words(text: str) -> list[str]:
    return [w for w in ASCII_WORD.findall(text) if w not in KEPT_ASCII]


def _catalogue(locale: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in po_files(locale):
        with path.open("rb") as f:
            out.update({m.id: m.string for m in read_po(f) if m.id})
    return out


def _params_of(template: str) -> dict:
    names = [f for _l, f, _s, _c in string.Formatter().parse(template) if f]
    missing = [n for n in names if n not in SAMPLE]
    assert not missing, f"{template!r}: no sample for {missing}"
    return {n: SAMPLE[n] for n in names}


# --- the catalogue ------------------------------------------------------------------------------------


def test_every_problem_code_renders_in_both_languages():
    zh_catalogue, en_catalogue = _catalogue("zh_CN"), _catalogue("en")
    codes = problems.all_codes()
    assert len(codes) > 150 and "identifier.uscc.length" in codes and "entry.step_not_allowed" in codes
    for code in codes:
        template = problems.MESSAGES.get(code) or problems.INPUT_MESSAGES.get(code)
        params = dict(SAMPLE) if template is None else _params_of(template)
        if template is not None:
            assert zh_catalogue.get(template), f"{code}: {template!r} has no Chinese"
            assert en_catalogue.get(template), f"{code}: {template!r} has no English"
        zh, en = problems.message(code, params, "zh_CN"), problems.message(code, params, "en")
        assert zh and en, code
        assert not re.search(r"\{[a-z_]+\}", zh + en), (code, zh, en)
        assert not _english_words(zh), f"{code}: English in {zh!r}"
        assert re.search(r"[\u4e00-\u9fff]", zh), f"{code}: {zh!r} is not Chinese"
        assert len(_english_words(en)) >= 2, f"{code}: {en!r} is not English"
    # The params are in words too: codes through the labels, sizes in MB.
    zh = problems.message("entry.step_not_allowed", SAMPLE, "zh_CN")
    assert zh is not None and "已公示" in zh and "开始审核" in zh and "publish" not in zh
    assert "11.4 MB" in (problems.message("evidence.too_large", SAMPLE, "zh_CN") or "")
    # A sentence that needs a param not given is not shown half-filled: the caller falls back.
    assert problems.message("entry.notice_running", {}, "zh_CN") is None


def test_every_code_raised_in_the_source_has_a_sentence():
    raised: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if (
                    kw.arg == "code"
                    and isinstance(kw.value, ast.Constant)
                    and isinstance(kw.value.value, str)
                ):
                    raised[kw.value.value] = f"{path.relative_to(SRC)}:{node.lineno}"
    assert len(raised) > 60, "the services name their problems"
    unknown = {c: where for c, where in raised.items() if c not in problems.MESSAGES}
    assert not unknown, f"codes without a sentence: {unknown}"
    # And the codes identifier rules become (core.identifiers names each one).
    for rule in RULES:
        assert problems.message(f"identifier.{rule}", {}, "zh_CN") == RULES[rule][1]


def test_every_problem_class_has_a_title_and_a_sentence():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Problem)]
    assert len(classes) >= 12
    for cls in classes:
        text = problems.describe(cls(), "zh_CN")
        assert text.title and text.messages, cls
        assert not _english_words(text.title + "".join(text.messages)), (cls, text)
        assert cls.class_code() in problems.TITLES, cls
    # A class defined elsewhere and a code nothing names: the class's own title, a generic sentence.
    odd = type("Odd", (Problem,), {"status": 418, "slug": "odd", "title": "Odd", "title_zh": "异常"})
    text = problems.describe(odd("An English detail nobody should read", code="nowhere.named"), "zh_CN")
    assert text.title == "异常" and "English" not in text.messages[0]
    assert problems.describe(Conflict("Cannot frobnicate"), "zh_CN").messages[0].startswith("该记录当前")


def test_describe_names_fields_in_words_and_never_shows_the_detail():
    try:
        normalise("uscc", BAD_USCC)
    except IdentifierError as exc:
        raw = str(exc)
    assert "[rule uscc.length]" in raw
    # A page raising as public.py does today: the field and the English message of the rule.
    problem = ValidationProblem(f"q: {raw}", errors=[{"field": "q", "message": raw}])
    zh = problems.describe(problem, "zh_CN")
    assert zh.by_field == {"q": "查询：统一社会信用代码应为18位（您输入了16位）"}
    assert zh.messages[1:] == [zh.by_field["q"]] and not LEAKS.search(" ".join(zh.messages))
    en = problems.describe(problem, "en")
    assert en.by_field["q"] == "Search: A unified social credit code has 18 characters (you entered 16)."
    # A service's item that says why only in English gets the problem's own sentence.
    refused = ValidationProblem(
        "A failed execution needs a reason",
        code="instruction.reason_required",
        errors=[{"in": "body", "field": "reason", "message": "say why it failed"}],
    )
    zh = problems.describe(refused, "zh_CN")
    assert zh.messages == ["请说明执行失败的原因。"] and zh.by_field == {
        "reason": "理由：请说明执行失败的原因。"
    }
    # Nested paths and list items.
    assert problems.field_label("subject.identifiers[1].value", "zh_CN") == "标识（第2项）"
    assert problems.field_label("body.grounds", "en") == "Grounds"
    assert problems.field_label("no_such_field", "zh_CN") is None
    assert problems.field_label("confirmations.no_such_fact", "zh_CN") == "执行确认"
    feedback = {
        f.field: f for m in measure_catalogue().measures.values() for a in m.actions for f in a.feedback
    }
    name, fact = next(iter(feedback.items()))
    assert problems.field_label(f"confirmations.{name}", "zh_CN") == fact.zh
    # Retry-After becomes the number of seconds to wait.
    wait = TooManyRequests("Too many queries", headers={"Retry-After": "12"})
    assert problems.describe(wait, "zh_CN").messages == ["短时间内尝试次数过多，请在12秒后再试。"]


class _Form(BaseModel):
    entry_id: uuid.UUID
    outcome: Literal["upheld", "corrected", "revoked"]
    grounds: str = Field(min_length=10)
    reason: str = Field(max_length=5)
    contact_email: str
    declared_users: int = Field(ge=0)
    expires_in_days: int = Field(le=365)
    agreement_signed_on: date
    role: Role


def test_pydantic_errors_are_translated_with_the_field_named():
    with pytest.raises(ValidationError) as caught:
        _Form.model_validate(
            {
                "entry_id": "not-a-uuid",
                "outcome": "maybe",
                "grounds": "short",
                "reason": "far too long",
                "declared_users": "-1",
                "expires_in_days": "many",
                "agreement_signed_on": "yesterday",
                "role": "king",
            }
        )
    types = {e["type"] for e in caught.value.errors()}
    assert {"uuid_parsing", "literal_error", "string_too_short", "string_too_long", "missing"} <= types
    assert {"greater_than_equal", "int_parsing", "date_from_datetime_parsing", "enum"} <= types
    zh = problems.form_errors(caught.value, "zh_CN")
    assert set(zh) == {
        "entry_id", "outcome", "grounds", "reason", "contact_email", "declared_users", "expires_in_days",
        "agreement_signed_on", "role",
    }  # fmt: skip
    for key, text in zh.items():
        assert not _english_words(text), (key, text)
    assert zh["grounds"] == "异议理由：请至少填写10个字。"
    assert zh["reason"] == "理由：最多只能填写5个字。"
    assert zh["contact_email"] == "联系邮箱：此项为必填项。"
    assert zh["declared_users"] == "申报用户数：请填写不小于0的数。"
    assert zh["outcome"].endswith("请从给出的选项中选择。") and "upheld" not in zh["outcome"]
    en = problems.form_errors(caught.value, "en")
    assert en["outcome"] == "Outcome chosen: Choose one of the options offered."
    assert not any("Input should" in t or "Field required" in t for t in en.values())
    # A model-level check naming its field ("identifiers[0].value: …") is put on that field.
    with pytest.raises(ValidationError) as caught:
        SubjectIn.model_validate(
            {"kind": "unit", "name": "某公司", "identifiers": [{"type": "uscc", "value": BAD_USCC}]}
        )
    out = problems.form_errors(caught.value, "zh_CN")
    assert out == {"identifiers[0].value": "标识（第1项）：统一社会信用代码应为18位（您输入了16位）"}
    # A Problem is accepted too (a service's refusal of a form).
    assert problems.form_errors(NotFound(), "zh_CN") == {
        "form": problems.describe(NotFound(), "zh_CN").messages[0]
    }


def test_labels_name_the_raw_codes():
    assert labels.label("liable_role", "legal_representative", "zh_CN") == "法定代表人"
    assert labels.label("action", "submit", "zh_CN") == "已报送"
    assert labels.label("audit_action", "entry.publish", "zh_CN") == "公示条目"
    assert labels.actor("system:demo-reviewer", "zh_CN") == "演示审核员"
    cat = measure_catalogue()
    for code, m in {**cat.measures, **cat.department_measures}.items():
        assert labels.label("measure", code, "zh_CN") == m.zh and labels.label("measure", code, "en") == m.en
    assert labels.actor("system:demo:示范市市场监督管理局", "zh_CN") == "演示数据（示范市市场监督管理局）"
    assert labels.actor("user:reviewer", "en") == "User reviewer"
    assert labels.actor("system:something_new", "zh_CN") == "系统"


def test_every_audited_action_has_a_name():
    """The actions `audit.record` is called with, found in the code: each one named in both languages."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("record", "record_read")
                and len(node.args) >= 3
                and isinstance(node.args[2], ast.Constant)
                and isinstance(node.args[2].value, str)
            ):
                found.add(node.args[2].value)
    assert len(found) > 50
    missing = sorted(found - set(labels.AUDIT_ACTION))
    assert not missing, f"audit actions without a name: {missing}"
    for action in labels.AUDIT_ACTION:
        zh = labels.label("audit_action", action, "zh_CN")
        assert zh != action and not _english_words(zh), action


# --- the API keeps its shape ---------------------------------------------------------------------------


def test_api_problems_keep_their_shape_and_add_code_and_params(client, world):
    platform = world.platform()
    headers = platform.headers(Role.platform_admin)
    r = client.post("/v1/identifiers/validate", json={"type": "uscc", "value": BAD_USCC}, headers=headers)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "title_zh", "status", "detail", "errors"} <= body.keys()
    assert body["code"] == "validation" and body["params"] == {}
    item = body["errors"][0]
    assert (
        item["field"] == "value" and item["type"] == "uscc.length" and "[rule uscc.length]" in item["message"]
    )
    assert item["code"] == "identifier.uscc.length" and item["params"] == {"type": "uscc", "got": 16}
    # FastAPI's own validation: each item coded by its pydantic type, with its limits.
    r = client.post("/v1/identifiers/validate", json={"type": "uscc"}, headers=headers)
    item = r.json()["errors"][0]
    assert (item["field"], item["type"], item["code"]) == ("value", "missing", "input.missing")
    # A service's own code, where it is raised; an unknown one's class code otherwise.
    reviewer = platform.headers(Role.platform_reviewer)
    r = client.post(
        f"/v1/entries/{uuid.uuid4()}/transitions",
        json={"action": "start_review", "version": 1},
        headers=reviewer,
    )
    assert r.status_code == 404 and r.json()["code"] == "entry.not_found" and r.json()["detail"]
    r = client.get(f"/v1/entries/{uuid.uuid4()}", headers=headers)
    assert r.status_code == 404 and r.json()["code"] == "not_found"


# --- zh-CN pages in error paths ------------------------------------------------------------------------


def _assert_chinese_only(r, *, status: int) -> None:  # type: ignore[no-untyped-def]
    """The page's headings and alerts hold no English sentence; nothing anywhere leaks a path or tag."""
    assert r.status_code == status, r.text[:500]
    assert '<html lang="zh-CN">' in r.text
    text = html.unescape(re.sub(r"<script.*?</script>", "", r.text, flags=re.S))
    leak = LEAKS.search(text)
    assert leak is None, f"leaked {leak.group(0)!r}"
    said = re.findall(r"<h1[^>]*>(.*?)</h1>", text, flags=re.S)
    said += [m[1] for m in re.findall(r"<(\w+)[^>]*role=\"alert\"[^>]*>(.*?)</\1>", text, flags=re.S)]
    said += re.findall(r"<[^>]+class=\"[^\"]*(?:field-error|error-text|errors?)\b[^\"]*\"[^>]*>(.*?)</", text)
    shown = " ".join(said)
    assert shown.strip(), "the page says nothing about the error"
    english = ENGLISH.findall(re.sub(r"<[^>]+>", " ", shown))
    assert not english, f"English on a zh-CN page: {english}"


@pytest.fixture
def reviewer(db, world, client):  # type: ignore[no-untyped-def]
    dept = world.department("示范市市场监督管理局")
    make_user(db, world.platform(), Role.platform_reviewer, "reviewer")
    sign_in(client, "reviewer")
    return dept


def test_wrong_password_is_said_in_chinese(client, db, world):
    make_user(db, world.platform(), Role.platform_reviewer, "reviewer")
    r = sign_in(client, "reviewer", "not the password")
    _assert_chinese_only(r, status=401)
    assert "用户名或密码错误。" in r.text and 'value="reviewer"' in r.text
    r = client.post(
        "/console/login",
        data={"csrf_token": csrf_of(client.get("/console/login").text), "method": "api_key", "api_key": " "},
    )
    _assert_chinese_only(r, status=422)
    assert "请输入访问密钥。" in r.text


def test_unknown_page_and_bad_id_are_said_in_chinese(client, reviewer):
    r = client.get("/console/no-such-page")
    _assert_chinese_only(r, status=404)
    assert "未找到" in r.text
    r = client.get("/console/entries/not-a-uuid")
    _assert_chinese_only(r, status=422)
    assert "条目编号：编号无效。" in r.text
    # And in English on request: the same problem, in English words, still no path or tag.
    client.cookies.set(LANG_COOKIE, "en", path="/console")
    r = client.get("/console/entries/not-a-uuid")
    assert r.status_code == 422 and "Entry no.: This is not a valid record number." in r.text


def test_a_refused_lifecycle_step_is_said_in_chinese(client, db, reviewer):
    """Publishing an entry just submitted: refused, and said in Chinese on a page that leads back."""
    entry_id = penalty_entry(db, reviewer.org.id)
    page = client.get(f"/console/entries/{entry_id}")
    r = client.post(
        f"/console/entries/{entry_id}/transition",
        data={"csrf_token": csrf_of(page.text), "action": "publish", "reason": "", "version": ""},
        headers={"referer": f"http://testserver/console/entries/{entry_id}"},
    )
    _assert_chinese_only(r, status=r.status_code)
    assert r.status_code in (409, 422)
    assert f"/console/entries/{entry_id}" in r.text  # not a dead end
    with db.session() as s:
        assert s.get(Entry, entry_id).status == "submitted"
    # The refusal the service gives, as the error page tells it wherever a page lets it through.
    refused = Conflict(
        "Cannot publish an entry that is submitted; possible now: start_review",
        code="entry.step_not_allowed",
        params={"action": "publish", "status": "submitted", "allowed": ["start_review"]},
    )
    assert problems.describe(refused, "zh_CN").messages == [
        "处于“已报送”状态的条目不能执行“公布”。当前可以执行：开始审核。"
    ]


def test_a_fault_of_ours_on_a_console_page_is_a_page_too(app, client):
    """An exception no handler takes (core.errors.ServerErrors): HTML in the reader's language under
    /console, problem+json for the API."""

    def boom() -> None:
        raise RuntimeError("an internal detail the reader must not see")

    app.add_api_route("/console/boom", boom)
    app.add_api_route("/v1/boom", boom)
    r = client.get("/console/boom")
    _assert_chinese_only(r, status=500)
    assert "系统出现故障" in r.text and "internal detail" not in r.text
    r = client.get("/v1/boom")
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "internal" and "internal detail" not in r.text


def test_a_csrf_failure_is_said_in_chinese(client, reviewer):
    r = client.post("/console/logout", data={"csrf_token": "forged"})
    _assert_chinese_only(r, status=403)
    assert "表单已失效" in r.text


def test_a_bad_public_query_is_said_in_chinese(client):
    page = client.get("/console/public")
    r = client.post("/console/public", data={"csrf_token": csrf_of(page.text), "q": BAD_USCC, "by": "uscc"})
    assert r.status_code in (200, 422)
    _assert_chinese_only(r, status=r.status_code)


def test_an_empty_objection_form_is_said_in_chinese(client, db, world):
    dept = world.department("示范市市场监督管理局")
    entry_id = penalty_entry(db, dept.org.id)
    with db.session() as s:
        entry = s.get(Entry, entry_id)
        take_step(s, SYSTEM, entry, Action.start_review)
        take_step(s, SYSTEM, entry, Action.publish)
    page = client.get(f"/console/public/objection?entry={entry_id}")
    r = client.post(
        "/console/public/objection",
        data={
            "csrf_token": csrf_of(page.text), "entry_id": str(entry_id), "identifier_type": "",
            "identifier_value": "", "grounds": "", "contact_email": "",
        },
    )  # fmt: skip
    _assert_chinese_only(r, status=422)


# --- in a browser ---------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_error_paths_in_a_browser_are_in_chinese(site, browser):  # noqa: F811
    """A wrong password, then a bad record number and an unknown page: each said in Chinese, on a page
    that offers the way on (the form again, or back to the start)."""
    base, users = site["base"], site["users"]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))

    def said() -> str:
        return page.inner_text("h1") + " " + " ".join(page.locator("[role=alert]").all_inner_texts())

    page.goto(f"{base}/console/login")
    page.fill("#username", "reviewer")
    page.fill("#password", "not the password at all")
    page.click("form:has(#username) button[type=submit]")
    page.wait_for_selector("#login-error")
    assert page.inner_text("#login-error").strip() == "用户名或密码错误。"
    assert page.input_value("#username") == "reviewer"  # the form again, filled in
    assert page.get_attribute("#username", "aria-describedby") == "login-error"
    assert not ENGLISH.findall(said()) and not LEAKS.search(page.content())
    shot(page, "problems-sign-in")

    browser_sign_in(page, base, "reviewer", users["reviewer"])
    page.goto(f"{base}/console/entries/not-a-uuid")
    assert "条目编号：编号无效。" in page.inner_text("#problem")
    assert not ENGLISH.findall(said()) and not LEAKS.search(page.content())
    shot(page, "problems-bad-record-number")

    response = page.goto(f"{base}/console/no-such-page")
    assert response is not None and response.status == 404
    assert page.inner_text("h1") == "未找到" and not ENGLISH.findall(said())
    shot(page, "problems-not-found")
    with page.expect_navigation():
        page.click("main a:has-text('返回首页')")
    assert page.url == f"{base}/console/", page.url
    assert page_errors == []
    context.close()
