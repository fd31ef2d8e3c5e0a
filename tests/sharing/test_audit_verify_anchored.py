"""`fcx audit verify` anchored in the transparency log (#19 point 5): the insider who deletes the last audit
rows and rewrites the chain head passes the chain's own check, and is caught against the heads the log
committed; a checkpoint kept outside the platform (`--from-checkpoint`) is honoured."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core import audit
from fanchaoxin.core.audit import AuditChainHead
from fanchaoxin.sharing import translog
from tests.sharing.test_translog import listed, market, settings  # noqa: F401


def _said(result) -> str:  # type: ignore[no-untyped-def]
    return " ".join(result.output.split())


def test_fcx_audit_verify_catches_the_truncation_the_chain_alone_misses(db, market, settings, tmp_path):  # noqa: F811
    runner = CliRunner()
    listed(db, market)
    with db.session() as s:
        assert translog.run_jobs(s)["log_audit_head_committed"]
        anchored = s.get(AuditChainHead, 1).seq
    kept = tmp_path / "checkpoint"
    kept.write_bytes(runner.invoke(cli, ["log", "checkpoint"]).stdout.encode())
    ok = runner.invoke(cli, ["audit", "verify", "--from-checkpoint", str(kept)], env={"COLUMNS": "300"})
    assert ok.exit_code == 0, ok.output
    assert "Audit chain intact" in ok.output and "Anchored" in _said(ok)

    keep = anchored - 3
    with db.engine.begin() as conn:
        kept_hash = conn.execute(text("SELECT hash FROM audit_events WHERE id = :i"), {"i": keep}).scalar_one()
        conn.execute(text("DELETE FROM audit_events WHERE id > :i"), {"i": keep})
        conn.execute(
            text("UPDATE audit_chain_head SET seq = :s, hash = :h WHERE id = 1"), {"s": keep, "h": kept_hash}
        )
    with db.session() as s:
        assert audit.verify(s).ok  # the unkeyed chain with its head beside it: "intact"
    caught = runner.invoke(cli, ["audit", "verify"], env={"COLUMNS": "300"})
    assert caught.exit_code == 1, caught.output
    assert f"audit event {anchored}, committed in log leaf" in _said(caught)
    assert "is missing" in _said(caught)
