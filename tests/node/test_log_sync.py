"""The node checks the transparency log at every sync (#19 point 3): checkpoint signature against the key
pinned from the manifest, consistency with the last checkpoint it saw, inclusion of every applied event,
witness cosignatures; it refuses (and keeps the alarm) otherwise, and cosigns what it verified.

Against the fake log in test_log_support.py (core.tlog, the interface's leaf format), under the profile
of the run (``FCX_CRYPTO_PROFILE=gm``: SM3 tree, SM2 checkpoint and witness signatures).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fanchaoxin.cli import app as cli
from fanchaoxin.core import crypto
from fanchaoxin.core import tlog as T
from fanchaoxin.node import logcheck, relay
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import SyncRefused, initialise, sync
from fanchaoxin.sharing import protocol as P
from tests.node.test_log_support import ORIGIN, FakeLog, LogPlatform
from tests.node.test_node_support import SIGNING, record


@pytest.fixture
def fake():
    f = LogPlatform()
    yield f
    f.close()


def _init(tmp_path: Path, fake: LogPlatform, name: str = "node.db", api_key: str = "fcx_test_key") -> Store:
    path = str(tmp_path / name)
    initialise(path, fake.url, api_key, fingerprint=P.fingerprint(SIGNING.public))
    return Store(path)


@pytest.fixture
def store(tmp_path: Path, fake: LogPlatform):
    s = _init(tmp_path, fake)
    yield s
    s.dispose()


def _enrol_node_key(store: Store) -> P.SigningKey:
    key, _ = relay.ensure_node_key(store)
    with store.transaction() as conn:
        store.set_config(conn, **{relay.NODE_KEY_ENROLLED: "1"})
    return key


def _publish(fake: LogPlatform, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        fake.publish(record(f"e{i}", tags=[f"t{i}"]))


def _refused(store: Store, match: str) -> str:
    with pytest.raises(SyncRefused, match=match) as caught:
        sync(store)
    assert logcheck.status(store)["alarm"]
    return str(caught.value)


# --- the good path ----------------------------------------------------------------------------------------


def test_sync_verifies_the_log_and_the_node_cosigns(store: Store, fake: LogPlatform) -> None:
    key = _enrol_node_key(store)
    _publish(fake, 3)
    fake.log.append_audit(7)  # audit-head leaves sit between feed leaves
    _publish(fake, 2, start=3)
    result = sync(store)
    assert result.head_after == 5
    st = logcheck.status(store)
    assert st["size"] == 6 and st["checked_up_to_feed_seq"] == 5 and st["events_waiting"] == 0
    assert st["alarm"] is None and st["origin"] == ORIGIN
    # the cosignature: C2SP tlog-cosignature over the checkpoint text, by the enrolled node key
    (posted,) = fake.posted
    name, blob = T.parse_signature_line(posted["cosignature"])
    assert name == f"fcx-node/{key.key_id}"
    witness = logcheck.witness(name, key.public)
    text, _ = T.split_note(posted["checkpoint"].encode())
    assert text == fake.log.checkpoint().text()
    assert witness.key_id == blob[:4] and witness.verify(text.encode(), blob[4:])
    assert abs(witness.timestamp(blob[4:]) - time.time()) < 60
    # a second sync with nothing new: consistent (equal size, equal root), not cosigned again
    sync(store)
    assert len(fake.posted) == 1


def test_a_platform_without_a_log_is_followed_until_it_has_shown_one(store: Store, fake: LogPlatform) -> None:
    fake.with_log = False
    _publish(fake, 2)
    sync(store)
    assert logcheck.status(store)["size"] is None
    fake.with_log = True
    _publish(fake, 1, start=2)
    sync(store)  # first contact: the log is read from the node's head on
    assert logcheck.status(store)["size"] == 3
    fake.with_log = False  # a manifest that drops the log after the node followed it: a downgrade
    _refused(store, "names no log any more")


def test_a_log_begun_after_the_feed_is_checked_from_its_first_event(
    tmp_path: Path, fake: LogPlatform
) -> None:
    _publish(fake, 2)
    fake.log = FakeLog(fake.log.profile, fake.log.key)  # the platform gained its log after event 2
    fake.log.append_audit(1)
    _publish(fake, 2, start=2)
    fresh = _init(tmp_path, fake, "fresh.db")
    sync(fresh)
    st = logcheck.status(fresh)
    assert st["log_begins_at_feed_seq"] == 3 and st["checked_up_to_feed_seq"] == 4
    assert st["events_waiting"] == 0 and st["alarm"] is None
    fresh.dispose()


def test_events_wait_for_a_checkpoint_that_covers_them(store: Store, fake: LogPlatform) -> None:
    _publish(fake, 3)
    fake.log.published = 1  # the platform has signed no checkpoint past event 1 yet
    sync(store)
    st = logcheck.status(store)
    assert st["size"] == 1 and st["checked_up_to_feed_seq"] == 1 and st["events_waiting"] == 2
    fake.log.published = None
    sync(store)
    st = logcheck.status(store)
    assert st["checked_up_to_feed_seq"] == 3 and st["events_waiting"] == 0


def test_snapshot_then_deltas(store: Store, fake: LogPlatform) -> None:
    _publish(fake, 4)
    fake.build_snapshot()
    _publish(fake, 2, start=4)
    sync(store)  # snapshot at 4 (its position in the log found by feed_seq), then events 5 and 6
    st = logcheck.status(store)
    assert st["checked_up_to_feed_seq"] == 6 and st["events_waiting"] == 0


def test_a_rotated_log_key_arrives_with_the_manifest(store: Store, fake: LogPlatform) -> None:
    _publish(fake, 2)
    sync(store)
    old_vkey = fake.log.vkey
    fake.log.rotate()  # the manifest names the new key; the latest checkpoint is still the old key's
    assert fake.log.vkey != old_vkey
    _publish(fake, 0)
    sync(store)
    _publish(fake, 1, start=2)  # the next checkpoint, signed by the new key
    sync(store)
    assert logcheck.status(store)["size"] == 3 and logcheck.status(store)["alarm"] is None
    # a checkpoint signed by a key neither pinned now nor before is refused
    stranger = FakeLog(fake.log.profile)
    for leaf in fake.log.leaves:
        stranger.append(leaf)
    fake.tamper = lambda path, body: stranger.note() if path == "/v1/log/checkpoint" else body
    _refused(store, "checkpoint: the note is signed by no known key")


# --- refusals (each names what failed) --------------------------------------------------------------------


def test_bad_checkpoint_signature_is_refused(store: Store, fake: LogPlatform) -> None:
    _publish(fake, 2)
    good = fake.log.note()
    text, lines = T.split_note(good)
    (name, blob) = lines[0]
    forged = text.encode() + b"\n" + T.signature_line(name, blob[:-1] + bytes([blob[-1] ^ 1])).encode()
    fake.tamper = lambda path, body: forged if path == "/v1/log/checkpoint" else body
    _refused(store, r"the transparency log: checkpoint: .*does not verify")
    # signed by another key than the one the manifest pins
    other = FakeLog()
    for leaf in fake.log.leaves:
        other.append(leaf)
    fake.tamper = lambda path, body: other.note() if path == "/v1/log/checkpoint" else body
    _refused(store, "checkpoint: the note is signed by no known key")
    assert Store(store.path).state()["head"] == 0  # refused before anything was applied


def test_a_tile_that_does_not_hash_to_the_checkpoint_is_refused(store: Store, fake: LogPlatform) -> None:
    _publish(fake, 3)

    def bad_tile(path: str, body: bytes) -> bytes:
        return bytes([body[0] ^ 1]) + body[1:] if path.startswith("/v1/log/tile/0/") else body

    fake.tamper = bad_tile
    msg = _refused(store, "tile")
    assert "do not hash to the checkpoint's root" in msg
    fake.tamper = None

    def bad_leaf(path: str, body: bytes) -> bytes:  # an entry bundle whose leaf was edited
        return body.replace(b'"e1"', b'"eX"') if path.startswith("/v1/log/tile/entries/") else body

    fake.tamper = bad_leaf
    _refused(store, "leaf 1 of the entry bundles does not hash to the checkpoint's tile")


def test_a_failing_consistency_proof_is_refused(store: Store, fake: LogPlatform) -> None:
    _publish(fake, 3)
    sync(store)
    _publish(fake, 2, start=3)

    def bad_proof(path: str, body: bytes) -> bytes:
        if not path.startswith("/v1/log/proof/consistency"):
            return body
        doc = json.loads(body)
        doc["proof"][0] = doc["proof"][-1]
        return json.dumps(doc).encode()

    fake.tamper = bad_proof
    _refused(store, r"consistency proof 3→5: ")
    fake.tamper = None
    sync(store)  # the same platform, honest again: consistent with the last checkpoint accepted
    assert logcheck.status(store)["alarm"] is None


def test_history_rewritten_is_caught_by_the_sync(store: Store, fake: LogPlatform) -> None:
    """Done-when: drops the last events; edits an old event."""
    _publish(fake, 4)
    sync(store)
    honest = fake.log
    # 1. the last events dropped (the log rebuilt without them)
    shrunk = FakeLog(honest.profile, honest.key)
    for leaf in honest.leaves[:2]:
        shrunk.append(leaf)
    fake.log = shrunk
    _refused(store, "the log shrank from size 4 to 2")
    # 2. an old event edited, the log rebuilt and grown past the old size
    edited = FakeLog(honest.profile, honest.key)
    for i, leaf in enumerate(honest.leaves):
        edited.append(leaf.replace(b'"serious"', b'"minor"') if i == 1 else leaf)
    fake.log = edited
    _publish(fake, 1, start=4)
    _refused(store, r"consistency proof 4→5: ")
    # 3. same size, another root
    same = FakeLog(honest.profile, honest.key)
    for i, leaf in enumerate(honest.leaves):
        same.append(leaf.replace(b'"serious"', b'"minor"') if i == 1 else leaf)
    fake.log = same
    fake.log.published = 4
    _refused(store, "split view: the log shows size 4 with another root")
    assert Store(store.path).state()["head"] == 4  # event 5 was never applied


def test_an_event_that_differs_from_its_leaf_is_refused_before_it_is_applied(
    store: Store, fake: LogPlatform
) -> None:
    _publish(fake, 2)
    # the feed shows this node event 2 with other tags than the log holds (a listing shown to one node)
    fake.events[1]["record"] = dict(fake.events[1]["record"], tags=["someone-else"])
    msg = _refused(store, "feed event 2 as the platform sent it differs from leaf 1 of the log")
    assert "only its tags differ" in msg
    assert Store(store.path).state()["head"] == 0


def test_a_log_that_skips_an_event_is_refused(store: Store, fake: LogPlatform) -> None:
    _publish(fake, 3)
    gap = FakeLog(fake.log.profile, fake.log.key)
    for leaf in fake.log.leaves[:1] + fake.log.leaves[2:]:
        gap.append(leaf)
    fake.log = gap
    _refused(store, "leaf 1 of the log is feed event 3, expected 2")


# --- witnesses and a split view ---------------------------------------------------------------------------


def _department(tmp_path: Path, name: str) -> tuple[crypto.SigningKey, T.NoteVerifier]:
    key = logcheck.load_witness_key(tmp_path / f"{name}.key")
    return key, logcheck.witness(name, key.public_bytes())


def test_split_view_is_caught_by_the_witnesses(tmp_path: Path, fake: LogPlatform) -> None:
    """Done-when: two enterprises shown different trees; a department witness catches it."""
    _publish(fake, 3)
    a = _init(tmp_path, fake, "a.db", "key_a")
    b = _init(tmp_path, fake, "b.db", "key_b")
    # B is shown a tree of the same size whose last leaf commits to another audit head (same log key):
    # the feed events agree, so only the roots differ
    forked = fake.log.copy()
    fake.log.append_audit(7)
    forked.append_audit(8)
    fake.views["key_b"] = forked
    dept_key, dept = _department(tmp_path, "dept.example/witness")
    for s in (a, b):
        logcheck.set_witnesses(s, [dept.vkey()], quorum=1)
    # the department sees A's tree and cosigns it
    with PlatformClient(fake.url, "key_a") as c:
        logcheck.witness_once(c, tmp_path / "dept.json", dept_key, dept.name)
    sync(a)
    assert logcheck.status(a)["alarm"] is None
    # B's tree carries no cosignature of the department: refused (the quorum is not met)
    with pytest.raises(SyncRefused, match=r"0 of the 1 witness cosignatures required"):
        sync(b)
    # the department shown B's tree refuses to cosign it: same size, another root
    with PlatformClient(fake.url, "key_b") as c, pytest.raises(logcheck.LogRefused, match="split view"):
        logcheck.witness_once(c, tmp_path / "dept.json", dept_key, dept.name)
    # A's cosigned checkpoint, handed to B out of band, conflicts with what B was shown
    logcheck.set_witnesses(b, [dept.vkey()], quorum=0)
    sync(b)
    with PlatformClient(fake.url, "key_b") as c, pytest.raises(logcheck.LogRefused, match="split view"):
        logcheck.compare(b, c, fake.log.note())
    assert "split view" in logcheck.status(b)["alarm"]
    # copying the department's cosignature line onto B's checkpoint does not pass: it does not verify
    line = next(iter(fake.log.cosignatures.values()))[0]
    forked.add_cosignature(forked.note().decode(), line)
    logcheck.set_witnesses(b, [dept.vkey()], quorum=1)
    with pytest.raises(SyncRefused, match=r"cosignature by witness 'dept.example/witness' does not verify"):
        sync(b)
    a.dispose()
    b.dispose()


def test_a_cosignature_from_an_unknown_witness_key_does_not_count(
    tmp_path: Path, store: Store, fake: LogPlatform
) -> None:
    _publish(fake, 2)
    _, dept = _department(tmp_path, "dept.example/witness")
    impostor_key = crypto.active().generate_signing_key()  # the same name, another key
    cp = fake.log.checkpoint()
    line = logcheck.cosign(cp.text(), dept.name, impostor_key)
    fake.log.add_cosignature(fake.log.note().decode(), line)
    logcheck.set_witnesses(store, [dept.vkey()], quorum=1)
    msg = _refused(store, "0 of the 1 witness cosignatures required")
    assert "cosignatures from an unknown key: dept.example/witness" in msg
    with pytest.raises(logcheck.LogRefused, match="a quorum of 2 needs at least 2 witnesses"):
        logcheck.set_witnesses(store, [dept.vkey()], quorum=2)
    with pytest.raises(logcheck.LogRefused, match="not a cosignature key"):
        logcheck.set_witnesses(store, [fake.log.vkey], quorum=0)


def test_the_department_witness_command(tmp_path: Path, fake: LogPlatform) -> None:
    _publish(fake, 2)
    args = [
        "node", "witness", "--url", fake.url, "--key", "dept_key", "--name", "dept.example/w1",
        "--witness-key", str(tmp_path / "w.key"), "--state", str(tmp_path / "w.json"),
    ]  # fmt: skip
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert "cosigned checkpoint of size 2" in out.output
    # the first round made the key (of the platform's profile) and enrolled it before posting
    key = logcheck.load_witness_key(tmp_path / "w.key")
    assert key.algorithm == fake.log.profile.signature_algorithm
    assert f"witness key {P.fingerprint(key.public_bytes())} enrolled" in out.output
    assert fake.enrolled == [{"public_key": P.b64(key.public_bytes()), "label": "dept.example/w1"}]
    state = json.loads((tmp_path / "w.json").read_text())
    assert state["size"] == 2 and state["vkey"] == fake.log.vkey
    assert state["enrolled_key_id"] == P.fingerprint(key.public_bytes())
    _publish(fake, 1, start=2)
    out = CliRunner().invoke(cli, ["log", *args[1:]])  # `fcx log witness`: the same round
    assert out.exit_code == 0, out.output
    assert "enrolled" not in out.output and len(fake.enrolled) == 1  # enrolled once
    # the platform rewrites history: the witness refuses and says why
    rewritten = FakeLog(fake.log.profile, fake.log.key)
    for leaf in fake.log.leaves[:2]:
        rewritten.append(leaf)
    fake.log = rewritten
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 1
    assert "the log shrank from size 3 to 2" in out.output


# --- cost ---------------------------------------------------------------------------------------------------


def test_a_large_delta_is_checked_with_tiles_not_a_request_per_event(store: Store, fake: LogPlatform) -> None:
    n = 10_000
    for i in range(n):  # straight into the fake's lists: publish() per event would take long
        line = {"seq": i + 1, "event": "published", "at": "2026-01-01T00:00:00Z", "record": record(f"e{i}")}
        fake.events.append(line)
        fake.log.append_feed(line)
    started = time.perf_counter()
    sync(store)
    elapsed = time.perf_counter() - started
    st = logcheck.status(store)
    assert st["checked_up_to_feed_seq"] == n and st["events_waiting"] == 0
    # 40 entry bundles, 40 level-0 tiles and the level-1 tile, one checkpoint (no anchor: head 0)
    assert len(fake.log_requests) < 100, len(fake.log_requests)
    assert elapsed < 60
    # the consistency check of the next sync: checkpoint, signature, proof (the fake serves it over HTTP)
    for i in range(n, n + 5):
        line = {"seq": i + 1, "event": "published", "at": "2026-01-01T00:00:00Z", "record": record(f"e{i}")}
        fake.events.append(line)
        fake.log.append_feed(line)
    with PlatformClient(fake.url, "fcx_test_key") as client:
        manifest = P.verify_manifest(client.manifest(), SIGNING.public)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            logcheck.SyncLog.open(store, client, manifest)
            times.append(time.perf_counter() - t0)
    assert min(times) < 0.05, times
