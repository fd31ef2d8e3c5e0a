"""The administrator's CLI: organisations, keys, database."""

import json

from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from fanchaoxin.blacklist.models import Entry
from fanchaoxin.cli import app as cli
from fanchaoxin.demo import load_demo, print_demo
from fanchaoxin.sanctions.models import Instruction
from tests.blacklist.registry_helpers import judicial


def test_org_and_key_lifecycle(db, settings, client):
    runner = CliRunner()
    r = runner.invoke(cli, ["db", "upgrade"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        cli,
        [
            "org",
            "add",
            "--kind",
            "enterprise",
            "--name",
            "某电商",
            "--business-type",
            "ecommerce",
            "--business-type",
            "internet_finance",
            "--agreement-signed",
            "2017-01-01",
            "--uscc",
            "91110000600037341L",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        cli, ["key", "create", "--org", "91110000600037341L", "--role", "enterprise_node", "--label", "node"]
    )
    assert r.exit_code == 0, r.output
    secret = next(line.strip() for line in r.output.splitlines() if line.strip().startswith("fcx_"))
    assert client.get("/v1/whoami", headers={"X-API-Key": secret}).json()["role"] == "enterprise_node"
    listed = runner.invoke(cli, ["key", "list"])
    assert secret not in listed.output
    prefix = secret.split("_")[1]
    r = runner.invoke(cli, ["key", "revoke", prefix, "--reason", "rotated"])
    assert r.exit_code == 0, r.output
    assert client.get("/v1/whoami", headers={"X-API-Key": secret}).status_code == 401
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0


def test_bad_cli_input_is_a_clear_error(db, settings):
    runner = CliRunner()
    r = runner.invoke(cli, ["org", "add", "--kind", "bank", "--name", "x"])
    assert r.exit_code == 1
    assert "--kind" in r.output
    r = runner.invoke(
        cli,
        [
            "org",
            "add",
            "--kind",
            "enterprise",
            "--name",
            "x",
            "--business-type",
            "ecommerce",
            "--agreement-signed",
            "2017-02-30",
        ],
    )
    assert r.exit_code == 1 and "--agreement-signed" in r.output
    r = runner.invoke(
        cli,
        [
            "org",
            "add",
            "--kind",
            "enterprise",
            "--name",
            "x",
            "--business-type",
            "ecommerce",
            "--agreement-signed",
            "2017-02-03",
            "--uscc",
            "123",
        ],
    )
    assert r.exit_code == 1 and "uscc" in r.output
    r = runner.invoke(cli, ["key", "create", "--org", "nobody", "--role", "enterprise_node"])
    assert r.exit_code == 1 and "nobody" in r.output


def test_demo_loads_once(db, settings):
    keys = load_demo(db)
    assert keys is not None
    roles = {k.role for k in keys}
    assert {
        "platform_admin",
        "platform_reviewer",
        "auditor",
        "department_officer",
        "enterprise_operator",
        "enterprise_node",
    } <= roles

    with db.session() as s:
        statuses = {e.status for e in s.scalars(select(Entry))}
    assert statuses == {
        "submitted",
        "under_review",
        "notice_period",
        "published",
        "disputed",
        "rejected",
        "revoked",
        "expired",
    }

    with db.session() as s:
        outcomes = {(i.kind, i.status) for i in s.scalars(select(Instruction))}
    assert {
        ("apply", "executed"),
        ("apply", "not_applicable"),
        ("apply", "failed"),
        ("apply", "acknowledged"),
        ("apply", "pending"),
        ("lift", "executed"),
        ("lift", "pending"),
    } <= outcomes
    narrow = Console(record=True, width=60)
    print_demo(narrow, keys)
    printed = narrow.export_text().replace("\n", "")
    assert all(k.secret in printed for k in keys), (
        "every key must be printed whole, even on a narrow terminal"
    )
    assert load_demo(db) is None
    console = Console(record=True, width=200)
    print_demo(console, None)
    assert "already loaded" in console.export_text()


def test_entries_cli_walks_the_lifecycle(db, settings, tmp_path, world):
    world.enterprise("某电商")
    runner = CliRunner()
    path = tmp_path / "entry.json"
    path.write_text(json.dumps(judicial(), ensure_ascii=False), encoding="utf-8")
    r = runner.invoke(cli, ["entries", "submit", str(path), "--org", "某电商"])
    assert r.exit_code == 0, r.output
    entry_id = r.output.split("entry ")[1].split()[0]
    assert runner.invoke(cli, ["entries", "review", entry_id]).exit_code == 0
    r = runner.invoke(cli, ["entries", "publish", entry_id])
    assert r.exit_code == 0 and "published" in r.output
    r = runner.invoke(cli, ["entries", "revoke", entry_id])
    assert r.exit_code != 0  # --reason is required
    r = runner.invoke(cli, ["entries", "revoke", entry_id, "--reason", "撤销"])
    assert r.exit_code == 0 and "revoked" in r.output
    r = runner.invoke(cli, ["entries", "show", entry_id])
    assert "revoked" in r.output and "publish" in r.output
    assert runner.invoke(cli, ["entries", "list", "--status", "revoked"]).exit_code == 0
    r = runner.invoke(cli, ["entries", "publish", entry_id])
    assert r.exit_code == 1 and "Cannot publish" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(judicial(behaviours=["nope"])), encoding="utf-8")
    r = runner.invoke(cli, ["entries", "submit", str(bad), "--org", "某电商"])
    assert r.exit_code == 1 and "behaviours[0]" in r.output
    csv = tmp_path / "bulk.csv"
    csv.write_text(
        "subject_kind,subject_name,domain,behaviours,role,severity,basis,facts\n"
        "website,刷单网,shuadan.example.cn,order_brushing,organizer,general,enterprise_finding,刷单\n",
        encoding="utf-8",
    )
    r = runner.invoke(cli, ["entries", "submit", str(csv), "--org", "某电商"])
    assert r.exit_code == 0 and "1 accepted" in r.output
    r = runner.invoke(cli, ["jobs", "run"])
    assert r.exit_code == 0 and "expired" in r.output
