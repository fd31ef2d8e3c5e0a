"""The information-sharing agreement's rules (orgs.agreements): versions, signing, standing, bad input."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import Conflict, ValidationProblem
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs import service as org_service
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.orgs.participation_models import AgreementSignature, Participation

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TODAY = date(2026, 3, 2)
ADMIN = Actor("key:admin")


def _enterprise(s, name: str = "某网店", signed: date | None = None) -> Organisation:
    return org_service.create_organisation(
        s, SYSTEM, kind=OrgKind.enterprise, name=name, business_types=[BusinessType.ecommerce],
        agreement_signed_on=signed, contact_email="Legal@Example.COM",
    )  # fmt: skip


def _publish(s, version: str = "2026.1", published_on: date = TODAY, resign_by: date | None = None):
    return agreements.publish_version(
        s, ADMIN, version=version, title="反炒信信息共享协议", text_zh="第一条 ……", summary_en="Share, do not leak.",
        published_on=published_on, resign_by=resign_by, today=published_on,
    )  # fmt: skip


def _sign(s, org, version: str = "2026.1", **kw):
    args = {
        "version": version, "signatory": "张三", "signatory_title": "法务总监", "signed_on": TODAY,
        "pdf": PDF, "filename": "signed.pdf", "today": TODAY,
    } | kw  # fmt: skip
    return agreements.sign(s, Actor("key:op"), org, **args)


def test_an_enterprise_registers_applies_signs_and_takes_part(db):
    with db.session() as s:
        org = _enterprise(s)
        assert org.contact_email == "legal@example.com"
        assert agreements.standing(s, org, TODAY).code == "agreement.none"
        _publish(s)
        agreements.apply(s, Actor("key:op"), org, TODAY)
        assert agreements.standing(s, org, TODAY).code == "agreement.applied"
        assert org.id not in agreements.in_force_enterprise_ids(s, TODAY)
        sig = _sign(s, org)
        assert len(sig.pdf_sha256) == 64 and sig.pdf_size == len(PDF)
        st = agreements.standing(s, org, TODAY)
        assert (st.in_force, st.code, st.version, st.signed_on) == (
            True,
            "agreement.in_force",
            "2026.1",
            TODAY,
        )
        assert s.get(Participation, org.id).status == "active"
        assert org.id in agreements.in_force_enterprise_ids(s, TODAY)


def test_bad_signatures_name_the_field_and_write_nothing(db):
    with db.session() as s:
        org = _enterprise(s)
        _publish(s, "2025.1", TODAY - timedelta(days=30))
        _publish(s, "2026.1", TODAY)
        cases = [
            ({"version": "2025.1"}, "version", "agreement.version_not_current"),
            ({"version": "9.9"}, "version", "agreement.version_not_current"),
            ({"pdf": b"GIF89a not a pdf"}, "file", "agreement.not_pdf"),
            ({"pdf": b"%PDF-1.4 cut short"}, "file", "agreement.not_pdf"),
            ({"signed_on": TODAY + timedelta(days=1)}, "signed_on", "agreement.signed_in_future"),
            ({"signatory": "  "}, "signatory", "agreement.signatory_required"),
        ]
        for kw, field, code in cases:
            with pytest.raises((Conflict, ValidationProblem)) as caught:
                _sign(s, org, **kw)
            assert caught.value.code == code, kw
            assert caught.value.errors and caught.value.errors[0]["field"] == field
        s.flush()
        assert s.query(AgreementSignature).count() == 0
        assert s.get(Participation, org.id) is None


def test_a_pdf_over_the_limit_is_refused(db, monkeypatch):
    monkeypatch.setattr(agreements, "pdf_max_bytes", lambda: 100)
    with db.session() as s:
        org = _enterprise(s)
        _publish(s)
        with pytest.raises(ValidationProblem) as caught:
            _sign(s, org, pdf=PDF[:-7] + b" " * 200 + b"%%EOF\n")
        assert caught.value.code == "agreement.pdf_too_large"
        assert caught.value.params["limit"] == 100


def test_versions_and_reasons_are_checked(db):
    with db.session() as s:
        _publish(s)
        with pytest.raises(Conflict):
            _publish(s)  # the same version twice
        with pytest.raises(ValidationProblem) as caught:
            _publish(s, "2026.2", TODAY, resign_by=TODAY)
        assert caught.value.errors[0]["field"] == "resign_by"
        with pytest.raises(ValidationProblem) as caught:
            _publish(s, "2025.9", TODAY - timedelta(days=1))
        assert caught.value.errors[0]["field"] == "published_on"
        org = _enterprise(s)
        with pytest.raises(ValidationProblem) as caught:
            agreements.suspend(s, ADMIN, org, " ")
        assert caught.value.errors[0]["field"] == "reason"
        dept = org_service.create_organisation(
            s, SYSTEM, kind=OrgKind.department, name="某局", department_kind="market_regulation"
        )
        with pytest.raises(Conflict):
            agreements.apply(s, ADMIN, dept, TODAY)
        assert agreements.standing(s, dept, TODAY).in_force


def test_suspend_reinstate_withdraw(db):
    with db.session() as s:
        org = _enterprise(s)
        _publish(s)
        _sign(s, org)
        agreements.suspend(s, ADMIN, org, "数据泄露")
        st = agreements.standing(s, org, TODAY)
        assert (st.in_force, st.code, st.params["reason"]) == (False, "agreement.suspended", "数据泄露")
        assert org.id not in agreements.in_force_enterprise_ids(s, TODAY)
        with pytest.raises(Conflict):
            _sign(s, org)
        agreements.reinstate(s, ADMIN, org)
        assert agreements.standing(s, org, TODAY).in_force
        agreements.withdraw(s, Actor("key:op"), org, "业务调整")
        st = agreements.standing(s, org, TODAY)
        assert (st.code, st.params["reason"]) == ("agreement.withdrawn", "业务调整")


def test_an_earlier_version_lapses_after_the_resign_day(db):
    with db.session() as s:
        org = _enterprise(s)
        legacy = _enterprise(s, "老企业", signed=date(2017, 1, 1))
        _publish(s, "2025.1", TODAY - timedelta(days=60))
        _sign(s, org, "2025.1", signed_on=TODAY - timedelta(days=50), today=TODAY - timedelta(days=50))
        resign_by = TODAY + timedelta(days=30)
        _publish(s, "2026.1", TODAY, resign_by=resign_by)
        for o in (org, legacy):
            st = agreements.standing(s, o, resign_by)
            assert st.in_force and st.params["resign_by"] == resign_by.isoformat()
        reminded = {o.id for o, _ in agreements.participants_to_resign(s, TODAY)}
        assert reminded == {org.id, legacy.id}
        after = resign_by + timedelta(days=1)
        for o in (org, legacy):
            st = agreements.standing(s, o, after)
            assert (st.in_force, st.code, st.params["version"]) == (False, "agreement.lapsed", "2026.1")
        assert agreements.in_force_enterprise_ids(s, after) == set()
        _sign(s, org, "2026.1", signed_on=after, today=after)
        assert agreements.standing(s, org, after).in_force
        assert agreements.in_force_enterprise_ids(s, after) == {org.id}


def test_legacy_enterprises_stay_in_force_and_a_future_date_does_not_count(db):
    with db.session() as s:
        legacy = _enterprise(s, "老企业", signed=date(2017, 1, 1))
        later = _enterprise(s, "新企业", signed=TODAY + timedelta(days=1))
        assert agreements.standing(s, legacy, TODAY).in_force
        assert agreements.standing(s, later, TODAY).code == "agreement.none"
        _publish(s)  # no resign day: the legacy agreement stays in force
        assert agreements.in_force_enterprise_ids(s, TODAY) == {legacy.id}
        agreements.suspend(s, ADMIN, legacy, "滥用查询")
        assert agreements.standing(s, legacy, TODAY).code == "agreement.suspended"


def test_a_bad_contact_email_is_refused(db):
    with db.session() as s, pytest.raises(ValidationProblem) as caught:
        org_service.create_organisation(
            s, SYSTEM, kind=OrgKind.enterprise, name="某店", business_types=[BusinessType.ecommerce],
            contact_email="not an address",
        )  # fmt: skip
    assert caught.value.errors[0]["field"] == "contact_email"


def test_a_key_carries_its_enterprise_standing(db):
    with db.session() as s:
        org = _enterprise(s)
        key = org_service.create_key(s, SYSTEM, org, Role.enterprise_node).secret
    with db.session() as s:
        principal, _ = org_service.authenticate_key(s, key)
        assert principal.agreement == "agreement.none"
        epoch = org_service.authenticate_key.revocation_epoch(s)
        agreements.suspend(s, ADMIN, s.get(Organisation, org.id), "数据泄露")
    with db.session() as s:
        principal, _ = org_service.authenticate_key(s, key)
        assert principal.agreement == "agreement.suspended"
        assert dict(principal.agreement_params)["reason"] == "数据泄露"
        assert org_service.authenticate_key.revocation_epoch(s) != epoch


def test_the_cli_publishes_signs_suspends_and_tells(db, settings, tmp_path):  # type: ignore[no-untyped-def]
    with db.session() as s:
        _enterprise(s, "命令行电商")
    text, pdf, bad = tmp_path / "agreement.txt", tmp_path / "signed.pdf", tmp_path / "signed.txt"
    text.write_text("第一条 ……", encoding="utf-8")
    pdf.write_bytes(PDF)
    bad.write_bytes(b"not a pdf")
    run = CliRunner().invoke
    today = china_today().isoformat()
    out = run(cli, ["agreement", "publish", "--version", "2026.1", "--title", "反炒信信息共享协议",
                    "--text", str(text), "--summary-en", "Share.", "--published-on", today])  # fmt: skip
    assert out.exit_code == 0, out.output
    sign = [
        "agreement",
        "sign",
        "命令行电商",
        "--version",
        "2026.1",
        "--signatory",
        "张三",
        "--signed-on",
        today,
    ]
    out = run(cli, [*sign, "--pdf", str(bad)])
    assert out.exit_code != 0 and "PDF" in out.output, out.output
    assert run(cli, [*sign, "--pdf", str(pdf)]).exit_code == 0
    out = run(cli, ["agreement", "suspend", "命令行电商", "--reason", "滥用查询"])
    assert out.exit_code == 0, out.output
    out = run(cli, ["agreement", "status", "命令行电商"])
    assert "suspended" in out.output and "滥用查询" in out.output and "version 2026.1 signed" in out.output
    out = run(cli, ["org", "list"])
    assert "suspended" in out.output, out.output
