"""Personal data at rest (#14 point 5): a dump of the database holds no plain identifier of a listed person.

The demo is loaded into a fresh database, the main flows are driven over HTTP (entries about natural
persons with resident IDs, phones and e-mails, publication, evidence, an objection and a report with
contact e-mails and attachments, look-ups and decisions), and then the database file (SQLite, after a
WAL checkpoint) or `pg_dump` of the test schema (PostgreSQL) is searched for every plain form of those
values — and for the data keys themselves. A hit names the table and column it sits in.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, select, text

from fanchaoxin.app import create_app
from fanchaoxin.appeals.models import CorrectionNotice, Objection, Report
from fanchaoxin.core import vault
from fanchaoxin.core.db import MIGRATIONS_DIR, Base, Database
from fanchaoxin.core.identifiers import normalise
from fanchaoxin.demo import load_demo
from tests.conftest import POSTGRES_URL, _empty_tables

PEOPLE = [
    # (name, resident ID as typed, phone as typed, e-mail as typed)
    ("王小明", "440305199001010018", "139-2233-4455", "Wang.XiaoMing@Example.CN"),
    ("李丽", "11010519920315002x", "+86 137 1122 3344", "lili.contact@mail.example.com"),
]
DEMO_PERSONAL = ["11010519491231002X", "110101199003071233", "13912345678"]
DEMO_EMAILS = ["objector@example.cn", "repair@example.cn"]
REPORTER_EMAIL = "Reporter.Zhou@Example.ORG"
OBJECTOR_EMAIL = "Objector.Wang@Example.NET"


def _forms(type_: str, raw: str) -> set[str]:
    """The plain forms a value may be stored in: as typed, canonical, and the bare digits."""
    canonical = normalise(type_, raw)
    forms = {raw, canonical, raw.lower(), raw.upper(), canonical.lower()}
    if type_ == "phone":
        digits = re.sub(r"\D", "", canonical)
        forms |= {digits, digits[-11:]}
    return {f for f in forms if len(f) >= 6}


def needles() -> dict[str, str]:
    """Plain value -> what it is."""
    out: dict[str, str] = {}
    for name, rid, phone, email in PEOPLE:
        out.update({f: f"resident ID of {name}" for f in _forms("resident_id", rid)})
        out.update({f: f"phone of {name}" for f in _forms("phone", phone)})
        out.update({f: f"e-mail of {name}" for f in _forms("email", email)})
    for value in DEMO_PERSONAL:
        kind = "phone" if len(value) == 11 else "resident_id"
        out.update({f: f"demo {kind}" for f in _forms(kind, value)})
    for email in [*DEMO_EMAILS, REPORTER_EMAIL, OBJECTOR_EMAIL]:
        out.update({f: "contact e-mail" for f in _forms("email", email)})
    for name, *_ in PEOPLE:
        out[name] = f"name {name}"
        out[json.dumps(name)[1:-1]] = f"name (escaped) {name}"
    ring = vault.ring()
    for kid, key in ring.keys.items():
        out[base64.b64encode(key).decode()] = f"data key {kid}"
    out[base64.b64encode(ring.index_key).decode()] = "blind-index key"
    return out


def drive(client: TestClient, keys: dict[tuple[str, str], str]) -> None:
    """The main flows over HTTP, with plain personal data in every request."""

    def h(org: str, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[(org, role)]}", **extra}

    dept = ("示范市市场监督管理局", "department_officer")
    reviewer = ("全国信用信息共享平台（反炒信子系统）", "platform_reviewer")
    shop = ("示例优选电子商务有限公司", "enterprise_operator")
    pdf_with_id = b"%PDF-1.4\n% evidence for " + PEOPLE[0][1].encode() + b"\n%%EOF\n"
    entry_ids = []
    for n, (name, rid, phone, email) in enumerate(PEOPLE):
        body = {
            "subject": {
                "kind": "individual",
                "name": name,
                "identifiers": [
                    {"type": "resident_id", "value": rid},
                    {"type": "phone", "value": phone},
                    {"type": "email", "value": email},
                ],
            },
            "behaviours": ["order_brushing"],
            "role": "participant",
            "severity": "general",
            "basis": "administrative_penalty",
            "document_number": f"示市监罚〔2026〕{n + 7}号",
            "issuing_authority": "示范市市场监督管理局",
            "document_date": "2026-01-05",
            "facts": "参与组织刷单。",
        }
        r = client.post("/v1/entries", json=body, headers=h(*dept, **{"Idempotency-Key": f"grep-{n}"}))
        assert r.status_code == 201, r.text
        entry = r.json()
        entry_ids.append(entry["id"])
        r = client.post(
            f"/v1/evidence/{entry['id']}",
            files={"file": (f"{rid}.pdf", pdf_with_id, "application/pdf")},
            headers=h(*dept),
        )
        assert r.status_code == 201, r.text
        version = entry["version"]
        for action in ("start_review", "publish"):
            r = client.post(
                f"/v1/entries/{entry['id']}/transitions",
                json={"action": action, "version": version},
                headers=h(*reviewer),
            )
            assert r.status_code == 200, r.text
            version = r.json()["version"]

    # Look-ups and decisions by an enterprise, with the plain identifiers.
    for _, rid, phone, email in PEOPLE:
        for type_, value in (("resident_id", rid), ("phone", phone), ("email", email)):
            r = client.get("/v1/lookup", params={"type": type_, "value": value}, headers=h(*shop))
            assert r.status_code == 200, r.text
        r = client.post(
            "/v1/decisions",
            json={
                "scene": "account_registration",
                "identifiers": [{"type": "resident_id", "value": rid}, {"type": "phone", "value": phone}],
                "purpose": "account opening check",
            },
            headers=h(*shop),
        )
        assert r.status_code == 200, r.text

    # The first person objects (public form), attaches a file naming their ID; the reviewer decides.
    name, rid, phone, email = PEOPLE[0]
    r = client.post(
        "/v1/objections",
        json={
            "entry_id": entry_ids[0],
            "identifier": {"type": "resident_id", "value": rid},
            "grounds": "本人从未参与刷单，相关订单为真实交易。",
            "contact_email": OBJECTOR_EMAIL,
        },
    )
    assert r.status_code == 201, r.text
    filed = r.json()
    r = client.post(
        f"/v1/attachments/objections/{filed['tracking_number']}",
        files={"file": (f"身份证{rid}.txt", f"身份证号 {rid} 手机 {phone}".encode(), "text/plain")},
        headers={"X-Case-Secret": filed["secret"]},
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/v1/objections/{filed['id']}/decision",
        json={
            "outcome": "revoked",
            "reason": "主体认定错误",
            "identity_verification": f"核对身份证 {rid} 与手机 {phone}",
        },
        headers=h(*reviewer),
    )
    assert r.status_code == 200, r.text

    # A public report naming the second person by every identifier, with a contact e-mail and a file.
    name, rid, phone, email = PEOPLE[1]
    r = client.post(
        "/v1/public/reports",
        json={
            "description": "该用户组织刷单群，收取佣金。",
            "reported": {
                "identifiers": [
                    {"type": "resident_id", "value": rid},
                    {"type": "phone", "value": phone},
                    {"type": "email", "value": email},
                ],
                "name": name,
            },
            "behaviours": ["order_brushing"],
            "contact_email": REPORTER_EMAIL,
        },
    )
    assert r.status_code == 201, r.text
    report = r.json()
    r = client.post(
        f"/v1/attachments/reports/{report['tracking_number']}",
        files={"file": ("聊天记录.txt", f"群主手机 {phone}，身份证 {rid}".encode(), "text/plain")},
        headers={"X-Case-Secret": report["secret"]},
    )
    assert r.status_code == 201, r.text


def _demo_keys(db: Database) -> dict[tuple[str, str], str]:
    loaded = load_demo(db)
    assert loaded is not None
    return {(k.organisation, k.role): k.secret for k in loaded}


def _locate(db: Database, plain: str) -> list[str]:
    """Which table.column holds ``plain`` (as a substring of its text), for the failure message."""
    where = []
    with db.engine.connect() as conn:
        for t in Base.metadata.sorted_tables:
            for c in t.columns:
                stmt = text(f'SELECT 1 FROM "{t.name}" WHERE CAST("{c.name}" AS TEXT) LIKE :p LIMIT 1')
                try:
                    if conn.execute(stmt, {"p": f"%{plain}%"}).first():
                        where.append(f"{t.name}.{c.name}")
                except Exception:
                    conn.rollback()
    return where


def _hits(dump: bytes, db: Database) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for plain, what in needles().items():
        if plain.encode() in dump:
            found[f"{what} {plain!r}"] = _locate(db, plain) or ["(not in a live row: free pages or WAL)"]
    return found


def _sqlite_dump(db: Database) -> bytes:
    path = Path(make_url(db.url).database or "")
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    dump = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return dump + (wal.read_bytes() if wal.exists() else b"")


def _pg_dump(db: Database) -> bytes:
    url = make_url(db.url)
    exe = shutil.which("pg_dump")
    assert exe, "pg_dump is not installed"
    out = subprocess.run(
        [exe, f"--schema={db.schema}", "-d", url.database or "test", "-h", url.host or "127.0.0.1",
         "-p", str(url.port or 5432), "-U", url.username or "postgres"],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    return out.stdout


def test_a_dump_of_the_database_holds_no_plain_identifier(backend, settings, tmp_path):
    if backend.name == "sqlite":
        # A file of its own: the shared test database's free pages hold what other tests wrote.
        db = Database(f"sqlite:///{tmp_path / 'grep.db'}")
        db.upgrade()
    else:
        db = backend.db
        _empty_tables(db)
    try:
        keys = _demo_keys(db)
        with TestClient(create_app(settings, db=db), raise_server_exceptions=False) as client:
            drive(client, keys)
        dump = _sqlite_dump(db) if backend.name == "sqlite" else _pg_dump(db)
        assert b"fcx1:" in dump  # sealed values are there
        hits = _hits(dump, db)
        assert not hits, "plain personal data at rest:\n" + json.dumps(hits, ensure_ascii=False, indent=1)
    finally:
        if backend.name == "sqlite":
            db.dispose()
        else:
            _empty_tables(db)


@contextmanager
def fresh_database(backend, tmp_path: Path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    """A database of its own at the head revision (a file, or a schema dropped afterwards)."""
    if backend.name == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'migrate.db'}")
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
        return
    schema = f"fcx_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(POSTGRES_URL, schema=schema)
    try:
        db.upgrade()
        yield db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_0010(db: Database, step: str) -> None:
    """Run migration 0010's upgrade or downgrade by itself on a database at head."""
    path = MIGRATIONS_DIR / "versions" / "0010_encrypted_cases_and_files.py"
    spec = importlib.util.spec_from_file_location("migration_0010", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with db.engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        spec.loader.exec_module(module)
        getattr(module, step)()


SEALED_BY_0010 = [
    ("objections", "contact_email"),
    ("objections", "identity_verification"),
    ("repair_applications", "contact_email"),
    ("reports", "reported"),
    ("reports", "contact_email"),
    ("case_attachments", "filename"),
    ("correction_notices", "subject_name"),
    ("idempotency_records", "body"),
]


def _stored(db: Database, table: str, column: str) -> list[str]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(f'SELECT CAST("{column}" AS TEXT) FROM "{table}" WHERE "{column}" IS NOT NULL')
        )
        return [v for (v,) in rows]


def test_migration_0010_seals_existing_rows_and_its_downgrade_opens_them(backend, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with fresh_database(backend, tmp_path) as db:
        keys = _demo_keys(db)
        with TestClient(create_app(settings, db=db), raise_server_exceptions=False) as client:
            drive(client, keys)
        for table, column in SEALED_BY_0010:  # the application writes them sealed
            assert all(v.startswith("fcx1:") for v in _stored(db, table, column)), f"{table}.{column}"
        # 0010 alone, down then up (the revisions after it are other steps' business).
        run_0010(db, "downgrade")
        # Before 0010 (or after its downgrade) the values are plain; a revoked objection's correction
        # notice refers to its objection, so the objections table must change without being re-created.
        for table, column in SEALED_BY_0010:
            values = _stored(db, table, column)
            assert values, f"{table}.{column}: the flows left no value to migrate"
            assert not any(v.startswith("fcx1:") for v in values), f"{table}.{column}"
        assert OBJECTOR_EMAIL.lower() in _stored(db, "objections", "contact_email")
        assert any(PEOPLE[1][1].upper() in v for v in _stored(db, "reports", "reported"))

        run_0010(db, "upgrade")
        for table, column in SEALED_BY_0010:
            assert all(v.startswith("fcx1:") for v in _stored(db, table, column)), f"{table}.{column}"
        vault.check_database(db.engine)
        with db.session() as s:
            objection = s.scalars(select(Objection).where(Objection.outcome == "revoked")).one()
            assert objection.contact_email == OBJECTOR_EMAIL.lower()
            assert PEOPLE[0][1] in (objection.identity_verification or "")
            report = s.scalars(select(Report).where(Report.contact_email == None)).first()  # noqa: E711
            assert report is not None  # the demo's report has no contact
            filed = [r for r in s.scalars(select(Report)) if r.contact_email == REPORTER_EMAIL.lower()]
            assert filed[0].reported["identifiers"][0]["value"] == PEOPLE[1][1].upper()
            notice = select(CorrectionNotice.subject_name).where(
                CorrectionNotice.subject_kind == "individual"
            )
            assert s.scalar(notice) == "王*明"
