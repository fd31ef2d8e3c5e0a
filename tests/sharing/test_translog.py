"""The transparency log, platform side (#19): leaves, checkpoints, tiles, proofs, witnesses, statements,
the auditor's check and the anchored audit verify, under the active crypto profile."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.cli import app as cli
from fanchaoxin.core import audit, tlog
from fanchaoxin.core.audit import Actor, AuditChainHead, AuditEvent
from fanchaoxin.core.crypto import active, profile
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.node_keys import NodeKey
from fanchaoxin.sharing import protocol, translog
from fanchaoxin.sharing.translog_models import LogLeaf
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import USCC_B, judicial, person_entry

REVIEWER = Actor("test:reviewer")


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def market(world):  # type: ignore[no-untyped-def]
    return {
        "platform": world.platform(),
        "shop": world.enterprise("电商"),
        "ride": world.enterprise("出行"),
        "dept": world.department("市场监管局"),
    }


def publish(db, org_id, body):  # type: ignore[no-untyped-def]
    with db.session() as s:
        e = registry.submit(s, REVIEWER, org_id, EntryIn.model_validate(body))
        take_step(s, REVIEWER, e, Action.start_review)
        if body["basis"] == "enterprise_finding":
            take_step(s, REVIEWER, e, Action.open_notice)
            e.notice_ends_on = date.today() - timedelta(days=1)
        take_step(s, REVIEWER, e, Action.publish)
        return e.id


def revoke(db, entry_id):  # type: ignore[no-untyped-def]
    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, entry_id), Action.revoke, reason="wrongly listed")


def log_key(client):  # type: ignore[no-untyped-def]
    doc = client.get("/v1/log/key").json()
    return doc, [tlog.NoteVerifier.from_vkey(v) for v in doc["vkeys"]]


def hash_fn():  # type: ignore[no-untyped-def]
    return active().digest


def listed(db, market):  # type: ignore[no-untyped-def]
    person = publish(db, market["shop"].org.id, person_entry())
    unit = publish(db, market["shop"].org.id, judicial())
    other = publish(
        db,
        market["ride"].org.id,
        judicial(
            subject={"kind": "unit", "name": "杭州某公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}
        ),
    )
    revoke(db, unit)
    return person, unit, other


# --- leaves, checkpoint, proofs ----------------------------------------------------------------------------


def test_every_feed_event_is_a_leaf_with_a_verifiable_inclusion_proof(client, db, market):
    person, unit, _ = listed(db, market)
    node = market["shop"].headers()
    doc, verifiers = log_key(client)
    assert doc["hash"] == active().hash_algorithm and doc["profile"] == active().name
    note = client.get("/v1/log/checkpoint")
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    cp = tlog.open_checkpoint(note.content, doc["origin"], verifiers)
    assert cp.size == 4  # three publications and one revocation

    r = client.get("/v1/log/proof/inclusion", params={"entry": str(unit)}, headers=node)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["leaves"]) == 2
    cp2 = tlog.open_checkpoint(body["checkpoint"].encode(), doc["origin"], verifiers)
    assert cp2.size == body["tree_size"] == 4
    for leaf in body["leaves"]:
        data = base64.b64decode(leaf["leaf"])
        proof = [base64.b64decode(p) for p in leaf["proof"]]
        tlog.verify_inclusion(
            leaf["index"], cp2.size, tlog.leaf_hash(data, hash_fn()), proof, cp2.root_hash, hash_fn()
        )
    statuses = [json.loads(base64.b64decode(x["leaf"]))["event"]["status"] for x in body["leaves"]]
    assert statuses == ["published", "revoked"]

    # the leaf of a feed event is {"type":"feed","seq":s,"event":<the shared record as the delta carries it>}
    delta = client.get("/v1/sharing/deltas", params={"after": 0}, headers=node)
    lines = [json.loads(x) for x in gzip.decompress(delta.content).decode().splitlines()[1:] if x.strip()]
    lines = [x for x in lines if "seq" in x]
    for line in lines:
        proof = client.get("/v1/log/proof/inclusion", params={"feed_seq": line["seq"]}, headers=node).json()
        (leaf,) = proof["leaves"]
        assert base64.b64decode(leaf["leaf"]) == protocol.canonical_json(
            {"type": "feed", "seq": line["seq"], "event": line["record"]}
        )
    person_leaf = json.loads(
        base64.b64decode(
            client.get("/v1/log/proof/inclusion", params={"entry": str(person)}, headers=node).json()[
                "leaves"
            ][0]["leaf"]
        )
    )
    # no plain personal data: a person's record carries tags, never a name or identifier
    assert "subject_name" not in person_leaf["event"] and "identifiers" not in person_leaf["event"]
    assert person_leaf["event"]["tags"]
    assert "张小三" not in json.dumps(person_leaf, ensure_ascii=False)

    by_index = client.get("/v1/log/proof/inclusion", params={"index": 0}, headers=node).json()
    assert by_index["leaves"][0]["index"] == 0
    assert client.get("/v1/log/proof/inclusion", params={"index": 99}, headers=node).status_code == 404
    assert client.get("/v1/log/proof/inclusion", params={"index": 0}).status_code == 401
    assert (
        client.get(
            "/v1/log/proof/inclusion", params={"index": 0}, headers=market["dept"].headers()
        ).status_code
        == 403
    )


def test_consistency_proofs_tiles_and_manifest(client, db, market):
    listed(db, market)
    doc, verifiers = log_key(client)
    old = tlog.open_checkpoint(client.get("/v1/log/checkpoint").content, doc["origin"], verifiers)
    publish(
        db,
        market["ride"].org.id,
        person_entry(
            subject={
                "kind": "individual",
                "name": "李四",
                "identifiers": [{"type": "phone", "value": "13900139000"}],
            }
        ),
    )
    with db.session() as s:
        translog.run_jobs(s)
    new = tlog.open_checkpoint(client.get("/v1/log/checkpoint").content, doc["origin"], verifiers)
    assert new.size > old.size
    r = client.get("/v1/log/proof/consistency", params={"from": old.size, "to": new.size})
    assert r.status_code == 200 and r.json()["from"] == old.size
    proof = [base64.b64decode(p) for p in r.json()["proof"]]
    tlog.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof, hash_fn())
    assert client.get("/v1/log/proof/consistency", params={"from": 1, "to": 10_000}).status_code == 422

    # tiles: the partial level-0 tile hashes to the checkpoint; a proof built from tiles is the served one
    tile = client.get(f"/v1/log/tile/0/000.p/{new.size}")
    assert tile.status_code == 200 and len(tile.content) == new.size * 32
    reader = tlog.TileReader(
        new.size, lambda p: client.get(f"/v1/log/{p}").content, hash_fn(), root=new.root_hash
    )
    assert tlog.consistency_proof(reader, old.size, new.size) == proof
    assert client.get("/v1/log/tile/0/000").status_code == 404  # not full yet
    assert client.get("/v1/log/tile/0/0").status_code == 404  # not canonical
    entries = client.get(f"/v1/log/tile/entries/000.p/{new.size}", headers=market["shop"].headers())
    assert entries.status_code == 200 and len(tlog.parse_entry_bundle(entries.content)) == new.size
    assert client.get(f"/v1/log/tile/entries/000.p/{new.size}").status_code == 401

    manifest = client.get("/v1/sharing/manifest", headers=market["shop"].headers()).json()
    assert manifest["manifest"]["log"] == {
        "origin": doc["origin"],
        "vkey": doc["vkeys"][0],
        "profile": doc["profile"],
        "hash": doc["hash"],  # the tree's hash, named: a node does not infer it from the key's profile
    }


def test_full_tiles_are_immutable_and_stored(db, settings):
    keys = translog.load_log_keys()
    with db.session() as s:
        translog.append_leaves(s, [translog.NewLeaf("feed", b'{"n":%d}' % i) for i in range(600)], keys)
        cp = translog.publish_checkpoint(s, keys)
        assert cp.size == 600
        data, full = translog.read_tile(s, "tile/0/001", keys)
        assert full and len(data) == 256 * 32
        bundle, full = translog.read_tile(s, "tile/entries/001", keys)
        assert full and tlog.parse_entry_bundle(bundle)[0] == b'{"n":256}'
        report = translog.verify_local(s, keys)
    assert report.ok, report.problems
    assert report.leaves_checked == 600 and report.tiles_checked >= 4


# --- the auditor's check: three ways of rewriting history ----------------------------------------------------


def _verify(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["log", "verify", *args], env={"COLUMNS": "300"})


def test_fcx_log_verify_passes_then_catches_dropped_and_edited_leaves(client, db, market, tmp_path):
    listed(db, market)
    kept = tmp_path / "checkpoint"
    kept.write_bytes(client.get("/v1/log/checkpoint").content)
    ok = _verify("--from-checkpoint", str(kept))
    assert ok.exit_code == 0, ok.output
    assert "Log intact" in ok.output

    # 1. an edited old leaf (its stored hash rewritten too): the leaves no longer hash to the checkpoint
    with db.engine.begin() as conn:
        leaf = conn.execute(text("SELECT leaf FROM tlog_leaves WHERE idx = 0")).scalar_one()
        edited = bytes(leaf).replace(b'"published"', b'"revoked"')
        conn.execute(
            text("UPDATE tlog_leaves SET leaf = :l, leaf_hash = :h WHERE idx = 0"),
            {"l": edited, "h": hash_fn()(b"\x00" + edited)},
        )
    bad = _verify()
    assert bad.exit_code == 1
    assert "do not hash to the checkpoint's root" in bad.output or "does not hash" in bad.output
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE tlog_leaves SET leaf = :l, leaf_hash = :h WHERE idx = 0"),
            {"l": bytes(leaf), "h": hash_fn()(b"\x00" + bytes(leaf))},
        )
    assert _verify().exit_code == 0

    # 2. the last events dropped, and a new checkpoint signed over what is left: the older one is not a prefix
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM tlog_leaves WHERE idx >= 2"))
        conn.execute(text("DELETE FROM tlog_cosignatures"))
        conn.execute(text("DELETE FROM tlog_checkpoints"))
        conn.execute(text("UPDATE tlog_head SET size = 2 WHERE id = 1"))
    dropped = _verify("--from-checkpoint", str(kept))
    assert dropped.exit_code == 1
    assert "the log shrank" in dropped.output


def test_two_enterprises_shown_two_trees_are_caught_by_consistency(client, db, market, tmp_path):
    """A split view: enterprise A keeps the checkpoint it saw; the platform rewrites an old leaf for B
    and signs the rewritten tree. A's consistency check (and fcx log verify --from-checkpoint) fails."""
    listed(db, market)
    doc, verifiers = log_key(client)
    seen_by_a = client.get("/v1/log/checkpoint").content
    a = tlog.open_checkpoint(seen_by_a, doc["origin"], verifiers)
    with db.engine.begin() as conn:
        leaf = bytes(conn.execute(text("SELECT leaf FROM tlog_leaves WHERE idx = 1")).scalar_one())
        forged = leaf.replace(b'"serious"', b'"minor"')
        conn.execute(
            text("UPDATE tlog_leaves SET leaf = :l, leaf_hash = :h WHERE idx = 1"),
            {"l": forged, "h": hash_fn()(b"\x00" + forged)},
        )
    translog.forget_trees()
    publish(
        db,
        market["ride"].org.id,
        person_entry(
            subject={
                "kind": "individual",
                "name": "王五",
                "identifiers": [{"type": "phone", "value": "13700137000"}],
            }
        ),
    )
    with db.session() as s:
        translog.run_jobs(s)
    shown_to_b = client.get("/v1/log/checkpoint").content
    b = tlog.open_checkpoint(shown_to_b, doc["origin"], verifiers)  # validly signed
    proof = client.get("/v1/log/proof/consistency", params={"from": a.size, "to": b.size}).json()["proof"]
    with pytest.raises(tlog.ProofError, match="does not lead to the"):
        tlog.verify_consistency(
            a.size, b.size, a.root_hash, b.root_hash, [base64.b64decode(p) for p in proof], hash_fn()
        )
    kept = tmp_path / "a.checkpoint"
    kept.write_bytes(seen_by_a)
    result = _verify("--from-checkpoint", str(kept))
    assert result.exit_code == 1
    assert "consistency with the older checkpoint" in result.output


def test_the_auditor_names_a_bad_signature_a_bad_tile_and_a_failing_proof(client, db, market):
    listed(db, market)
    doc, verifiers = log_key(client)
    keys = translog.load_log_keys()
    with db.session() as s:
        honest = translog.local_fetcher(s, keys)
        files = {
            p: honest(p) for p in ["checkpoint", "tile/0/000.p/4", "tile/entries/000.p/4", "consistency/2/4"]
        }

    def fetch_with(**over: bytes):  # type: ignore[no-untyped-def]
        return lambda p: over.get(p, files[p])

    note = files["checkpoint"]
    bad_sig = note[:-10] + (b"A" if note[-10:-9] != b"A" else b"B") + note[-9:]
    r = translog.audit_log(fetch_with(checkpoint=bad_sig), verifiers, doc["origin"], hash_fn())
    assert not r.ok and "checkpoint refused" in r.problems[0] and "does not verify" in r.problems[0]

    tile = bytearray(files["tile/0/000.p/4"])
    tile[0] ^= 1
    r = translog.audit_log(fetch_with(**{"tile/0/000.p/4": bytes(tile)}), verifiers, doc["origin"], hash_fn())
    assert not r.ok and r.problems == [
        "tile tile/0/000.p/4 does not hash to the checkpoint (it differs from the leaves)"
    ]

    with db.session() as s:
        two = translog.tree(s, keys)
        old_note = tlog.sign_checkpoint(tlog.Checkpoint(keys.origin, 2, two.root(2)), [keys.signer])
    broken = json.dumps({"from": 2, "to": 4, "proof": [base64.b64encode(b"\x00" * 32).decode()]}).encode()
    r = translog.audit_log(
        fetch_with(**{"consistency/2/4": broken}),
        verifiers,
        doc["origin"],
        hash_fn(),
        old_checkpoint=old_note,
    )
    assert not r.ok and any("the served consistency proof fails" in p for p in r.problems)


# --- the audit chain, anchored in the log ------------------------------------------------------------------


def test_anchored_audit_verify_catches_the_insider_truncation(db, market, settings):
    listed(db, market)
    with db.session() as s:
        assert translog.run_jobs(s)["log_audit_head_committed"]
    with db.session() as s:
        report = translog.verify_audit_anchored(s)
        assert report.ok, report.problems
        assert report.anchors_checked == 1
        head = s.get(AuditChainHead, 1)
        anchored = head.seq
    # the insider: delete the last audit rows and rewrite the chain head to the new last row
    keep = anchored - 3
    with db.engine.begin() as conn:
        kept_hash = conn.execute(
            text("SELECT hash FROM audit_events WHERE id = :i"), {"i": keep}
        ).scalar_one()
        conn.execute(text("DELETE FROM audit_events WHERE id > :i"), {"i": keep})
        conn.execute(
            text("UPDATE audit_chain_head SET seq = :s, hash = :h WHERE id = 1"), {"s": keep, "h": kept_hash}
        )
    with db.session() as s:
        assert audit.verify(s).ok  # the chain alone says "intact"
        report = translog.verify_audit_anchored(s)
    assert not report.ok
    assert any(
        f"audit event {anchored}, committed in log leaf" in p and "is missing" in p for p in report.problems
    )
    out = CliRunner().invoke(cli, ["log", "audit-verify"], env={"COLUMNS": "300"})
    assert out.exit_code == 1 and "is missing" in " ".join(out.output.split())


# --- witnesses ---------------------------------------------------------------------------------------------


def _witness_profile():  # type: ignore[no-untyped-def]
    """Witnesses sign with keys of the platform's profile; an SM2 point (88 base64 characters) needs
    node_keys.public_key widened by the crypto profile's migration, until then an Ed25519 witness."""
    if NodeKey.__table__.c.public_key.type.length >= 88:
        return active()
    return profile("international")


def _enrol(db, org_id, key):  # type: ignore[no-untyped-def]
    public = key.public_bytes()
    key_id = active().hexdigest(public)[:32]
    with db.session() as s:
        s.add(
            NodeKey(
                key_id=key_id,
                owner_org_id=org_id,
                public_key=base64.b64encode(public).decode(),
                enrolled_by="test",
            )
        )
    return key_id


def test_witness_cosignatures_are_checked_gathered_and_served(client, db, market):
    listed(db, market)
    shop, dept = market["shop"], market["dept"]
    note = client.get("/v1/log/checkpoint").text
    text_part = note[: note.index("\n\n") + 1]
    shop_key = _witness_profile().generate_signing_key()
    _enrol(db, shop.org.id, shop_key)
    witness = tlog.NoteSigner("shop.example/witness", shop_key, cosigner=True)
    line = witness.signature_line(text_part.encode())

    r = client.post(
        "/v1/log/cosignature", json={"checkpoint": note, "cosignature": line}, headers=shop.headers()
    )
    assert r.status_code == 200, r.text
    served = client.get("/v1/log/checkpoint").content
    doc, verifiers = log_key(client)
    opened = tlog.open_note(served, [*verifiers, witness.verifier])
    assert opened.verified_by == (doc["origin"], "shop.example/witness")

    # a department's enrolled key is a witness too
    dept_key = _witness_profile().generate_signing_key()
    _enrol(db, dept.org.id, dept_key)
    dline = tlog.NoteSigner("dept.example/witness", dept_key, cosigner=True).signature_line(
        text_part.encode()
    )
    r = client.post(
        "/v1/log/cosignature", json={"checkpoint": note, "cosignature": dline}, headers=dept.headers()
    )
    assert r.status_code == 200, r.text

    # unknown witness key: a key nobody enrolled, or another organisation's
    stranger = tlog.NoteSigner("x.example/w", active().generate_signing_key(), cosigner=True)
    r = client.post(
        "/v1/log/cosignature",
        json={"checkpoint": note, "cosignature": stranger.signature_line(text_part.encode())},
        headers=shop.headers(),
    )
    assert r.status_code == 403 and "unknown witness key" in r.json()["detail"]
    r = client.post(
        "/v1/log/cosignature",
        json={"checkpoint": note, "cosignature": line},
        headers=market["ride"].headers(),
    )
    assert r.status_code == 403 and "unknown witness key" in r.json()["detail"]

    # a checkpoint the platform never issued
    forged_text = text_part.replace(text_part.split("\n")[1], "999", 1)
    r = client.post(
        "/v1/log/cosignature",
        json={
            "checkpoint": forged_text + "\n" + line,
            "cosignature": witness.signature_line(forged_text.encode()),
        },
        headers=shop.headers(),
    )
    assert r.status_code == 422 and "never issued" in r.json()["detail"]

    # a cosignature that does not verify (over another text)
    wrong = witness.signature_line(b"another\n")
    r = client.post(
        "/v1/log/cosignature", json={"checkpoint": note, "cosignature": wrong}, headers=shop.headers()
    )
    assert r.status_code == 422 and "does not verify" in r.json()["detail"]


# --- statements and key rotation ---------------------------------------------------------------------------


def test_statements_are_verifiable_offline_and_refused_when_untrue(client, db, market):
    person, unit, other = listed(db, market)
    admin = market["platform"].headers()
    doc, verifiers = log_key(client)
    with db.session() as s:
        subject_of_unit = s.get(Entry, unit).subject_id
        subject_of_other = s.get(Entry, other).subject_id

    r = client.post("/v1/log/statement", json={"entry_id": str(unit)}, headers=admin)
    assert r.status_code == 200, r.text
    body = translog.verify_statement(r.text, verifiers, doc["origin"], hash_fn())
    assert body["claim"]["kind"] == "entry_ended" and body["claim"]["status"] == "revoked"

    r = client.post("/v1/log/statement", json={"subject_id": str(subject_of_unit)}, headers=admin)
    assert r.status_code == 200, r.text
    body = translog.verify_statement(r.text, verifiers, doc["origin"], hash_fn())
    assert body["claim"]["kind"] == "no_entry_in_force"

    r = client.post("/v1/log/statement", json={"subject_id": str(subject_of_other)}, headers=admin)
    assert r.status_code == 409 and "in force" in r.json()["detail"]
    assert client.post("/v1/log/statement", json={"entry_id": str(person)}, headers=admin).status_code == 409

    # offline, by the CLI; a statement altered after signing is refused
    ok = client.post("/v1/log/statement", json={"entry_id": str(unit)}, headers=admin).text
    with pytest.raises(tlog.NoteError, match="does not verify"):
        translog.verify_statement(ok.replace("revoked", "repaired", 1), verifiers, doc["origin"], hash_fn())


def test_rotating_the_log_key_keeps_old_checkpoints_verifiable(client, db, market, tmp_path):
    listed(db, market)
    doc, _ = log_key(client)
    old_note = client.get("/v1/log/checkpoint").content
    kept = tmp_path / "old"
    kept.write_bytes(old_note)
    out = CliRunner().invoke(cli, ["log", "rotate-key"])
    assert out.exit_code == 0, out.output
    doc2, verifiers2 = log_key(client)
    assert len(doc2["vkeys"]) == 2 and doc2["vkeys"][1] == doc["vkeys"][0]
    with db.session() as s:
        translog.run_jobs(s)
    new_note = client.get("/v1/log/checkpoint").content
    assert tlog.open_note(new_note, [verifiers2[0]]).verified_by == (doc["origin"],)
    tlog.open_checkpoint(old_note, doc["origin"], verifiers2)  # the retired key still verifies its own
    assert _verify("--from-checkpoint", str(kept)).exit_code == 0


def test_key_file_and_note_signature_types_follow_the_profile(settings):
    keys = translog.load_log_keys()
    vkey = keys.vkey
    typed = base64.b64decode(vkey.split("+", 2)[2])
    if active().name == "gm":
        assert typed.startswith(tlog.NOTE_SM2) and len(typed) == len(tlog.NOTE_SM2) + 65
    else:
        assert typed[0] == tlog.NOTE_ED25519 and len(typed) == 33
    assert tlog.NoteVerifier.from_vkey(vkey) == keys.signer.verifier
    assert translog.profile_problem(keys) is None
    assert keys.public()["hash"] == active().hash_algorithm


def test_leaf_rows_record_feed_seq_and_entry(db, market, settings):
    person, _, _ = listed(db, market)
    with db.session() as s:
        rows = s.scalars(select(LogLeaf).order_by(LogLeaf.idx)).all()
        assert [r.feed_seq for r in rows] == [1, 2, 3, 4]
        assert rows[0].entry_id == person and rows[0].kind == "feed"
        assert all(r.leaf_hash == hash_fn()(b"\x00" + r.leaf) for r in rows)
        ev = s.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
        assert ev is not None
        logged = translog.logged_events(s, [1, 2, 99])
        assert sorted(logged) == [1, 2] and logged[1] == json.loads(rows[0].leaf)["event"]
        proof = translog.entry_proof(s, person)
        assert proof is not None and [x["index"] for x in proof["leaves"]] == [0]
        assert translog.entry_proof(s, uuid.uuid4()) is None


@pytest.mark.parametrize("name", ["international", "gm"])
def test_notes_and_cosignatures_of_both_algorithms(name):
    """Ed25519 (types 0x01/0x04) and SM2 (the 0xff escape) sign and verify through core.crypto, and
    read back from their verifier keys; a reader that does not know a key skips its line."""
    p = profile(name)
    signer = tlog.NoteSigner("example.com/log", p.generate_signing_key())
    witness = tlog.NoteSigner(
        "example.com/witness", p.generate_signing_key(), cosigner=True, clock=lambda: 1_700_000_000
    )
    cp = tlog.Checkpoint("example.com/log", 3, p.digest(b"root"))
    note = tlog.sign_checkpoint(cp, [signer])
    cosigned = note + witness.signature_line(cp.text().encode()).encode()
    for v in (signer.verifier, witness.verifier):
        assert tlog.NoteVerifier.from_vkey(v.vkey()) == v
    opened = tlog.open_note(cosigned, [signer.verifier, witness.verifier])
    assert opened.verified_by == ("example.com/log", "example.com/witness")
    _, lines = tlog.split_note(cosigned)
    assert witness.verifier.timestamp(lines[1][1][4:]) == 1_700_000_000
    assert tlog.open_note(cosigned, [signer.verifier]).verified_by == ("example.com/log",)
    with pytest.raises(tlog.NoteError, match="does not verify"):
        tlog.open_note(cosigned.replace(b"\n3\n", b"\n4\n"), [signer.verifier])


def test_an_auditor_over_http_reads_everything_it_needs(client, db, market):
    """What `fcx log verify --url` does, with the routes as the only source."""
    listed(db, market)
    doc, verifiers = log_key(client)
    headers = market["shop"].headers()
    kept = client.get("/v1/log/checkpoint").content
    publish(
        db,
        market["ride"].org.id,
        person_entry(
            subject={
                "kind": "individual",
                "name": "赵六",
                "identifiers": [{"type": "phone", "value": "13600136000"}],
            }
        ),
    )
    with db.session() as s:
        translog.run_jobs(s)

    def fetch(path: str) -> bytes:
        if path.startswith("consistency/"):
            _, m, n = path.split("/")
            r = client.get("/v1/log/proof/consistency", params={"from": m, "to": n})
        else:
            r = client.get(f"/v1/log/{path}", headers=headers)
        if r.status_code != 200:
            raise LookupError(f"{path}: {r.status_code}")
        return r.content

    hash_of = {"SHA-256": profile("international").digest, "SM3": profile("gm").digest}[doc["hash"]]
    report = translog.audit_log(fetch, verifiers, doc["origin"], hash_of, old_checkpoint=kept)
    assert report.ok, report.problems
    assert report.size == 6 and report.leaves_checked == 6


def test_the_tree_cuts_back_to_what_was_committed(db, settings):
    """A transaction that appended and rolled back leaves the process's tree ahead: the next read cuts
    it back (no rebuild) and goes on from there."""
    keys = translog.load_log_keys()
    with db.session() as s:
        translog.append_leaves(s, [translog.NewLeaf("feed", b"%d" % i) for i in range(300)], keys)
    with db.session() as s:
        t = translog.tree(s, keys)
        root300 = t.root()
    with db.engine.connect() as conn:
        conn.begin()
        bare = Session(bind=conn)
        translog.append_leaves(bare, [translog.NewLeaf("feed", b"x%d" % i) for i in range(5)], keys)
        assert translog.tree(bare, keys).size == 305
        bare.rollback()
        bare.close()
    with db.session() as s:
        again = translog.tree(s, keys)
        assert again is t and again.size == 300 and again.root() == root300
        translog.append_leaves(s, [translog.NewLeaf("feed", b"y")], keys)
        assert translog.tree(s, keys).size == 301


def test_cli_init_show_checkpoint_and_verify_statement(client, db, market, tmp_path):
    runner = CliRunner()
    _, unit, _ = listed(db, market)
    shown = runner.invoke(cli, ["log", "show"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["hash"] == active().hash_algorithm and doc["file"].endswith("log.json")
    again = runner.invoke(cli, ["log", "init", "--origin", "other.example/log"])
    assert again.exit_code == 0 and "Already there" in again.output  # an existing key is never replaced
    out = runner.invoke(cli, ["log", "checkpoint"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith(doc["origin"] + "\n")
    note = client.post(
        "/v1/log/statement", json={"entry_id": str(unit)}, headers=market["platform"].headers()
    )
    path = tmp_path / "statement"
    path.write_text(note.text)
    args = ["log", "verify-statement", str(path), "--origin", doc["origin"], "--hash", doc["hash"]]
    for v in doc["vkeys"]:
        args += ["--vkey", v]
    ok = runner.invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["kind"] == "entry_ended"
    path.write_text(note.text.replace("revoked", "repaired", 1))
    bad = runner.invoke(cli, args, env={"COLUMNS": "300"})
    assert bad.exit_code == 1 and "statement refused" in " ".join(bad.output.split())
