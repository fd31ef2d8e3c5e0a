"""`fcx detect … --submit`: findings become `submitted` `enterprise_finding` entries, with evidence.

The platform is the real app, in-process (the `client` fixture, SQLite and PostgreSQL): the submit
module's HTTP client is replaced by the TestClient, so no network server is needed.
"""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.core import crypto
from fanchaoxin.core.roles import Role
from fanchaoxin.detect import brushing
from fanchaoxin.detect import submit as S
from fanchaoxin.detect.findings import Finding
from tests.blacklist.registry_helpers import USCC_A

runner = CliRunner()
NS = "testshop"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "m"
    res = runner.invoke(app, ["simulate", "marketplace", "--out", str(out), "--seed", "5", "--scale", "0.05"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def orders(sim: Path) -> Path:
    return sim / "orders.csv"


@pytest.fixture(scope="module")
def brushing_findings(orders: Path) -> list[Finding]:
    rel = brushing.read_orders(str(orders))
    shops = [s for chunk in brushing.detect_order_brushing(rel, details=True) for s in chunk.shops]
    found = brushing.findings_from(shops, window=3600, rate=3.0)
    assert found and sum(len(f.subject_ids) for f in found) > len(found)  # shops with buyers
    return found


@pytest.fixture
def platform(client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI's client is the in-process platform app."""
    monkeypatch.setattr(S, "open_client", lambda url: contextlib.nullcontext(client))
    monkeypatch.delenv("FCX_PLATFORM_URL", raising=False)
    monkeypatch.delenv("FCX_API_KEY", raising=False)
    return client


def _entries(client: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = client.get("/v1/entries", params={"limit": 1000}, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["entries"]


def _detail(client: Any, entry_id: str, headers: dict[str, str]) -> dict[str, Any]:
    resp = client.get(f"/v1/entries/{entry_id}", params={"reveal": "true"}, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _brushing_args(orders: Path, out: Path, key: str, *extra: str) -> list[str]:
    return [
        "detect",
        "order-brushing",
        "-i",
        str(orders),
        "-o",
        str(out),
        "--format",
        "shopee",
        "--submit",
        "--platform",
        "http://testserver",
        "--key",
        key,
        "--account-namespace",
        NS,
        *extra,
    ]


def test_order_brushing_submitted_with_evidence_and_not_twice(
    orders: Path, brushing_findings: list[Finding], tmp_path: Path, platform: Any, world: Any
) -> None:
    ent = world.enterprise("刷单监测测试企业")
    reviewer = world.platform().headers(Role.platform_reviewer)
    operator = ent.headers(Role.enterprise_operator)
    n_subjects = sum(len(f.subject_ids) for f in brushing_findings)

    res = runner.invoke(app, _brushing_args(orders, tmp_path / "out.csv", ent.keys[Role.enterprise_operator]))
    assert res.exit_code == 0, res.output
    assert (
        f"submitted {n_subjects}, accepted {n_subjects}, already on the platform 0, skipped 0, refused 0; "
        f"with the evidence file {n_subjects}"
    ) in res.output
    assert (tmp_path / "out.csv").read_text().startswith("shopid,userid\n")  # the answer is unchanged

    entries = _entries(platform, operator)
    assert len(entries) == n_subjects
    expected_roles = {}
    for n, f in enumerate(brushing_findings, 1):
        for i, sid in enumerate(f.subject_ids):
            expected_roles[f"{NS}:{sid}"] = ("organizer" if i == 0 else "participant", n, f)
    seen = set()
    for e in entries:
        assert e["status"] == "submitted" and e["basis"] == "enterprise_finding"
        assert e["behaviours"] == ["order_brushing"] and e["severity"] == "minor"
        assert e["subject"]["kind"] == "platform_account"
        d = _detail(platform, e["id"], reviewer)
        (ident,) = d["subject"]["identifiers"]
        assert ident["type"] == "platform_account"
        role, n, f = expected_roles[ident["value"]]
        seen.add(ident["value"])
        assert d["role"] == role
        assert "刷单炒信" in d["facts"] and f"score: {f.score:.6g}" in d["facts"] and f.summary in d["facts"]
        assert d["occurred_from"] == f.evidence["first_seen"][:10]
        (ev,) = d["evidence"]
        assert ev["filename"] == f"finding-{n}.json" and ev["media_type"] == "text/plain"
        blob = platform.get(f"/v1/evidence/{e['id']}/{ev['digest']}", headers=reviewer)
        assert blob.status_code == 200
        assert json.loads(blob.content.decode("utf-8")) == json.loads(S.finding_json(f))
    assert seen == set(expected_roles)

    # the same detection again: nothing new, no second evidence file
    again = runner.invoke(
        app, _brushing_args(orders, tmp_path / "out2.csv", ent.keys[Role.enterprise_operator])
    )
    assert again.exit_code == 0, again.output
    assert (
        f"submitted 0, accepted 0, already on the platform {n_subjects}, skipped 0, refused 0" in again.output
    )
    after = _entries(platform, operator)
    assert sorted(e["id"] for e in after) == sorted(e["id"] for e in entries)
    for e in after:
        assert len(_detail(platform, e["id"], reviewer)["evidence"]) == 1


def test_bulk_upload_then_one_by_one_creates_nothing_new(
    brushing_findings: list[Finding], client: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(S, "UPLOAD_CHUNK_ROWS", 2)  # several files
    ent = world.enterprise()
    key = ent.keys[Role.enterprise_operator]
    reviewer = world.platform().headers(Role.platform_reviewer)
    n_subjects = sum(len(f.subject_ids) for f in brushing_findings)

    first = S.submit_findings(brushing_findings, client=client, key=key, namespace=NS, bulk_threshold=0)
    assert first.mode == "upload" and first.ok
    assert (first.accepted, first.refused, first.count("existing")) == (n_subjects, 0, 0)
    entries = _entries(client, ent.headers(Role.enterprise_operator))
    assert len(entries) == n_subjects
    d = _detail(client, entries[0]["id"], reviewer)
    assert d["evidence"] == [] and "evidence (the finding's JSON)" in d["facts"]  # uploads carry no files

    again = S.submit_findings(brushing_findings, client=client, key=key, namespace=NS, bulk_threshold=0)
    assert (again.accepted, again.count("existing")) == (0, n_subjects)

    # one by one now: the uploaded entries are recognised and get their evidence file
    third = S.submit_findings(brushing_findings, client=client, key=key, namespace=NS)
    assert third.mode == "entries" and third.ok
    assert (third.accepted, third.count("existing")) == (0, n_subjects)
    assert all(o.evidence == "attached" for o in third.outcomes)
    after = _entries(client, ent.headers(Role.enterprise_operator))
    assert sorted(e["id"] for e in after) == sorted(e["id"] for e in entries)
    assert all(len(_detail(client, e["id"], reviewer)["evidence"]) == 1 for e in after)


def test_idempotency_key_replays_when_the_entry_list_misses_it(
    brushing_findings: list[Finding], client: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ent = world.enterprise()
    key = ent.keys[Role.enterprise_operator]
    first = S.submit_findings(brushing_findings, client=client, key=key, namespace=NS)
    assert first.count("created") == first.accepted > 0
    monkeypatch.setattr(S._Platform, "existing", lambda self: {})  # e.g. two runs at once
    second = S.submit_findings(brushing_findings, client=client, key=key, namespace=NS)
    assert second.count("replayed") == first.accepted and second.count("created") == 0
    assert [o.entry_id for o in second.outcomes] == [o.entry_id for o in first.outcomes]
    assert len(_entries(client, ent.headers(Role.enterprise_operator))) == first.accepted


def _finding(detector: str, kind: str, ids: list[str], **evidence: Any) -> Finding:
    behaviour = "empty_parcel" if detector == "empty-parcel" else "fake_review"
    return Finding(detector, behaviour, kind, ids, 2.5, f"{detector} test finding", dict(evidence))


def test_subjects_without_a_usable_identifier_are_skipped(client: Any, world: Any) -> None:
    ent = world.enterprise()
    key = ent.keys[Role.enterprise_operator]
    findings = [
        _finding("review-templates", "review", ["r1", "r2"], reviews=["r1", "r2"]),
        _finding("lockstep", "platform_account", ["acc1", "bad id"], hits_per_user={"acc1": 4}),
        _finding("empty-parcel", "courier_company", ["SF"], level="courier"),
        _finding("empty-parcel", "courier_staff", ["SF001"], level="courier"),
        _finding("empty-parcel", "courier_staff", [f"{USCC_A}:SF-002"], level="courier", waybills_flagged=9),
        _finding("empty-parcel", "platform_account", ["sender9"], level="waybill"),
    ]
    report = S.submit_findings(findings, client=client, key=key, namespace=NS)
    assert report.ok and report.accepted == 2
    lines = "\n".join(report.lines())
    assert "skipped 6" in lines
    assert "skipped 2 (finding 1 subject 'r1', finding 1 subject 'r2'): " in lines  # reviews, not accounts
    assert lines.count("--author-col") == 1
    assert "skipped finding 2 subject 'bad id': not a usable platform account id" in lines
    assert "skipped finding 3 subject 'SF': a courier_company needs its USCC" in lines
    assert "skipped finding 4 subject 'SF001'" in lines and "--courier-uscc" in lines
    assert "skipped finding 6 subject 'sender9': a single waybill is not submitted" in lines

    entries = {e["subject"]["kind"]: e for e in _entries(client, ent.headers(Role.enterprise_operator))}
    assert set(entries) == {"platform_account", "courier_staff"}
    assert entries["platform_account"]["role"] == "participant"
    assert entries["courier_staff"]["role"] == "facilitator"
    assert entries["courier_staff"]["services"] == ["logistics"]
    assert "hits_per_user[acc1]: 4" in entries["platform_account"]["facts"]

    # without --account-namespace no account is submitted, and the message says what to give
    ent2 = world.enterprise()
    r2 = S.submit_findings(
        findings[1:2], client=client, key=ent2.keys[Role.enterprise_operator], namespace=None
    )
    assert r2.accepted == 0 and len(r2.skipped) == 2
    assert all("--account-namespace" in s.reason for s in r2.skipped)
    assert _entries(client, ent2.headers(Role.enterprise_operator)) == []
    # with the company's USCC the staff number becomes an identifier
    r3 = S.submit_findings(
        findings[3:4], client=client, key=ent2.keys[Role.enterprise_operator], courier_uscc=USCC_A
    )
    assert r3.accepted == 1 and r3.outcomes[0].candidate.identifier["value"] == f"{USCC_A}:SF001"


def test_bad_key_is_one_clear_line(orders: Path, tmp_path: Path, platform: Any, world: Any) -> None:
    world.enterprise()
    res = runner.invoke(app, _brushing_args(orders, tmp_path / "out.csv", "fcx_not_a_real_key"))
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    err = [line for line in res.output.splitlines() if line.startswith("submit error:")]
    assert len(err) == 1 and "the platform refused the API key" in err[0] and "HTTP 401" in err[0]
    assert (tmp_path / "out.csv").is_file()  # the detection's own answer is still written


def test_a_key_that_may_not_submit_is_refused(
    brushing_findings: list[Finding], client: Any, world: Any
) -> None:
    auditor = world.platform().keys[Role.auditor]  # may read entries, may not submit them
    with pytest.raises(S.SubmitError, match="refused the API key"):
        S.submit_findings(brushing_findings, client=client, key=auditor, namespace=NS)


def test_unreachable_platform(orders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FCX_PLATFORM_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("FCX_API_KEY", "k")
    args = _brushing_args(orders, tmp_path / "out.csv", "k")
    args = [a for a in args if a not in ("--platform", "http://testserver", "--key", "k")]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "submit error: platform unreachable at http://127.0.0.1" in res.output
    assert "Traceback" not in res.output


def test_submit_needs_platform_and_key(orders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FCX_PLATFORM_URL", raising=False)
    monkeypatch.delenv("FCX_API_KEY", raising=False)
    out = tmp_path / "out.csv"
    res = runner.invoke(app, ["detect", "order-brushing", "-i", str(orders), "-o", str(out), "--submit"])
    assert res.exit_code == 2
    assert "--submit needs --platform (or FCX_PLATFORM_URL) and --key (or FCX_API_KEY)" in res.output
    assert not out.exists()  # checked before any work


COMMANDS = {
    "order-brushing": ["order-brushing", "-i", "orders.csv"],
    "dense-blocks": ["dense-blocks", "-i", "edges.csv", "--src", "userid", "--dst", "productid"],
    "lockstep": ["lockstep", "-i", "actions.csv"],
    "registrations": ["registrations", "-i", "registrations.csv"],
    "parcels": ["parcels", "-i", "waybills.csv"],
    "reviews duplicates": ["reviews", "duplicates", "--input", "reviews.csv", "--author-col", "author"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_finding_command_has_submit(
    command: str, sim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FCX_PLATFORM_URL", raising=False)
    monkeypatch.setenv("FCX_API_KEY", "k")
    args = [str(sim / a) if a.endswith(".csv") else a for a in COMMANDS[command]]
    out = tmp_path / "out.json"
    out_opt = "--output" if command == "reviews duplicates" else "-o"
    extra = ["--account-namespace", NS, "--severity", "general", "--submit-min-score", "1"]
    res = runner.invoke(app, ["detect", *args, out_opt, str(out), "--submit", *extra])
    assert res.exit_code == 2, res.output
    assert "--submit needs --platform (or FCX_PLATFORM_URL)" in res.output and "--key" not in res.output
    assert not out.exists()


def test_parcels_senders_and_couriers(sim: Path, tmp_path: Path, platform: Any, world: Any) -> None:
    ent = world.enterprise("快递监测测试企业")
    submit = ["--submit", "--platform", "http://testserver", "--key", ent.keys[Role.enterprise_operator]]
    extra = ["--account-namespace", NS, "--courier-uscc", USCC_A, "--severity", "general"]
    args = ["detect", "parcels", "-i", str(sim / "waybills.csv"), "-o", str(tmp_path / "p.json")]
    res = runner.invoke(app, [*args, *submit, *extra])
    assert res.exit_code == 0, res.output
    findings = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))["findings"]
    levels = [f["evidence"]["level"] for f in findings]
    assert "skipped {} (".format(levels.count("waybill")) in res.output  # one line for all waybills
    entries = _entries(platform, ent.headers(Role.enterprise_operator))
    kinds = sorted((e["subject"]["kind"], e["role"], tuple(e["services"])) for e in entries)
    assert kinds == sorted(
        [("platform_account", "organizer", ())] * levels.count("sender")
        + [("courier_staff", "facilitator", ("logistics",))] * levels.count("courier")
    )
    assert levels.count("courier") and all(e["severity"] == "general" for e in entries)
    assert all(e["behaviours"] == ["empty_parcel"] and e["status"] == "submitted" for e in entries)


def _mock_platform(handler: Any) -> httpx.Client:
    return httpx.Client(base_url="http://platform.test", transport=httpx.MockTransport(handler))


def test_refusals_name_every_field_and_exit_non_zero(
    brushing_findings: list[Finding], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/v1/entries":
            return httpx.Response(200, json={"entries": [], "next_cursor": None})
        if request.url.path == "/v1/entries":
            assert request.headers["Idempotency-Key"].startswith("fcx-detect-")
            assert request.headers["Authorization"] == "Bearer k"
            return httpx.Response(
                422,
                json={
                    "status": 422,
                    "detail": "Invalid input",
                    "errors": [
                        {"field": "subject.identifiers[0].value", "message": "already listed elsewhere"},
                        {"field": "occurred_to", "message": "before occurred_from"},
                    ],
                },
            )
        raise AssertionError(f"unexpected {request.method} {request.url}")

    monkeypatch.setattr(S, "open_client", lambda url: _mock_platform(handler))
    with pytest.raises(typer.Exit) as exc:
        S.cli_submit(
            brushing_findings[:1],
            platform="http://platform.test",
            key="k",
            namespace=NS,
            severity="minor",
            min_score=None,
        )
    assert exc.value.exit_code == 1
    err = capsys.readouterr().err
    n = len(brushing_findings[0].subject_ids)
    assert f"submitted {n}, accepted 0, already on the platform 0, skipped 0, refused {n}" in err
    assert (
        f"refused finding 1 subject {NS}:{brushing_findings[0].subject_ids[0]}: HTTP 422 Invalid input; "
        "subject.identifiers[0].value: already listed elsewhere; occurred_to: before occurred_from"
    ) in err


def test_server_error_stops_with_one_line(brushing_findings: list[Finding]) -> None:
    client = _mock_platform(lambda request: httpx.Response(503, text="upstream down"))
    with pytest.raises(S.SubmitError, match=r"^the platform failed: HTTP 503: upstream down$"):
        S.submit_findings(brushing_findings, client=client, key="k", namespace=NS)


def test_min_score_keys_and_facts(brushing_findings: list[Finding]) -> None:
    f = brushing_findings[0]
    top = max(x.score for x in brushing_findings)
    cands, skips, below = S.prepare(brushing_findings, namespace=NS, min_score=top)
    assert below == sum(1 for x in brushing_findings if x.score < top) and not skips
    assert {c.finding_no for c in cands} == {n for n, x in enumerate(brushing_findings, 1) if x.score >= top}

    # The shop carries all its brushing orders, each buyer its own: measure 5 deducts what they earned.
    every, _, _ = S.prepare([f], namespace=NS)
    gains = {c.subject_id: c.body.get("gains") for c in every}
    assert gains[f.subject_ids[0]] == {"brushed_orders": len(f.evidence["order_ids"])}
    for user in f.evidence["suspicious_users"]:
        assert gains[user["userid"]] == {"brushed_orders": user["orders"]}

    ident = {"type": "platform_account", "value": f"{NS}:{f.subject_ids[0]}"}
    same = Finding(**json.loads(S.finding_json(f)))
    assert S.submission_key(f, "platform_account", ident) == S.submission_key(same, "platform_account", ident)
    other = {"type": "platform_account", "value": f"{NS}x:{f.subject_ids[0]}"}
    assert S.submission_key(f, "platform_account", ident) != S.submission_key(f, "platform_account", other)

    big = Finding(
        "lockstep",
        "fake_review",
        "platform_account",
        [f"u{i}" for i in range(5000)],
        9.0,
        "huge group",
        {"users": [f"u{i}" for i in range(5000)], "hits_per_user": {f"u{i}": i for i in range(5000)}},
    )
    (c, *_), _, _ = S.prepare([big], namespace=NS, severity="serious")
    assert c.body["severity"] == "serious"
    for excerpt in (False, True):
        facts = S._facts(c, excerpt=excerpt)
        assert len(facts) <= 20_000
        assert facts.endswith(c.key) and "hits_per_user[u0]: 0" in facts


def test_upload_row_errors_map_back_to_subjects(brushing_findings: list[Finding]) -> None:
    sent: list[list[dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"entries": [], "next_cursor": None})
        assert request.url.path == "/v1/uploads" and request.url.params["all_or_nothing"] == "false"
        content = request.read()
        body = content.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]  # the one multipart part
        assert request.headers["Idempotency-Key"] == "fcx-detect-upload-" + crypto.active().hexdigest(body)
        rows = [json.loads(line) for line in body.decode("utf-8").splitlines()]
        sent.append(rows)
        errors = [{"row": 2, "field": "subject.identifiers", "message": "belongs to a subject of kind unit"}]
        return httpx.Response(
            201, json={"batch_id": "b", "accepted": len(rows) - 1, "rejected_rows": 1, "errors": errors}
        )

    report = S.submit_findings(
        brushing_findings, client=_mock_platform(handler), key="k", namespace=NS, bulk_threshold=0
    )
    (rows,) = sent
    assert [r["subject"]["identifiers"][0]["value"] for r in rows] == [
        f"{NS}:{sid}" for f in brushing_findings for sid in f.subject_ids
    ]
    assert all(r["basis"] == "enterprise_finding" and len(r["facts"]) <= 20_000 for r in rows)
    assert report.mode == "upload" and not report.ok
    assert [o.status for o in report.outcomes] == ["created", "refused"] + ["created"] * (len(rows) - 2)
    assert f"refused finding 1 subject {rows[1]['subject']['identifiers'][0]['value']}: " in "\n".join(
        report.lines()
    )
