"""The sharing wire formats: what a receiver refuses (forged, truncated, reordered, replayed, skipped)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fanchaoxin.core import crypto
from fanchaoxin.sharing import protocol as P

# keys of the profile the suite runs under (FCX_CRYPTO_PROFILE): Ed25519, or SM2 under gm
KEY = P.SigningKey.generate("s1")
OTHER = P.SigningKey.generate("s2")


def _delta(start: int = 10, n: int = 3, key: P.SigningKey = KEY) -> bytes:
    events = [{"seq": start + i + 1, "event": "published", "record": {"entry_id": f"e{i}"}} for i in range(n)]
    return P.write_feed_file(P.DELTA_FORMAT, {"from": start, "to": start + n, "count": n}, events, key)


def test_round_trip_and_header() -> None:
    f = P.read_feed_file(_delta(), KEY.public, expect=P.DELTA_FORMAT)
    assert f.header["from"] == 10 and f.header["to"] == 13 and f.header["key_id"] == "s1"
    assert [r["seq"] for r in f.records] == [11, 12, 13]


def test_wrong_key_is_refused() -> None:
    with pytest.raises(P.ProtocolError, match="signature does not verify"):
        P.read_feed_file(_delta(key=OTHER), KEY.public)


def test_forged_record_is_refused() -> None:
    raw = gzip.decompress(_delta()).replace(b'"e1"', b'"ex"')
    with pytest.raises(P.ProtocolError, match="signature does not verify"):
        P.read_feed_file(gzip.compress(raw), KEY.public)


@pytest.mark.parametrize("cut", [5, 40, -3])
def test_truncated_file_is_refused(cut: int) -> None:
    data = _delta()
    with pytest.raises(P.ProtocolError):
        P.read_feed_file(data[:cut], KEY.public)
    raw = gzip.decompress(data)
    with pytest.raises(P.ProtocolError):
        P.read_feed_file(gzip.compress(raw[:cut]), KEY.public)


def test_reordered_lines_are_refused_even_if_resigned_lines_dropped() -> None:
    raw = gzip.decompress(_delta()).split(b"\n")
    raw[1], raw[2] = raw[2], raw[1]
    with pytest.raises(P.ProtocolError, match="signature does not verify"):
        P.read_feed_file(gzip.compress(b"\n".join(raw)), KEY.public)
    # a file signed over out-of-order events is refused too (the signer's bug must not be applied)
    events = [{"seq": 12}, {"seq": 11}]
    bad = P.write_feed_file(P.DELTA_FORMAT, {"from": 10, "to": 12, "count": 2}, events, KEY)
    with pytest.raises(P.ProtocolError, match="not consecutive"):
        P.read_feed_file(bad, KEY.public)


def test_delta_must_fit_the_local_head() -> None:
    header = P.read_feed_file(_delta(), KEY.public).header
    P.check_delta_fits(header, 10)
    with pytest.raises(P.ProtocolError, match="replays"):
        P.check_delta_fits(header, 11)
    with pytest.raises(P.ProtocolError, match="skips"):
        P.check_delta_fits(header, 9)


def test_manifest_signature() -> None:
    doc = P.sign_manifest({"head": 13, "snapshot": {"seq": 10}}, KEY)
    assert P.verify_manifest(json.loads(json.dumps(doc)), KEY.public)["head"] == 13
    doc["manifest"]["head"] = 14
    with pytest.raises(P.ProtocolError, match="manifest"):
        P.verify_manifest(doc, KEY.public)


def test_webhook_mac_time_and_replay() -> None:
    secret, body = b"k" * 32, b'{"x":1}'
    headers = P.webhook_headers(secret, "ev-1", body, now=1_000_000)
    seen: set[str] = set()
    assert P.verify_webhook(secret, headers, body, seen=seen.__contains__, now=1_000_010) == "ev-1"
    seen.add("ev-1")
    with pytest.raises(P.ProtocolError, match="replay"):
        P.verify_webhook(secret, headers, body, seen=seen.__contains__, now=1_000_010)
    with pytest.raises(P.ProtocolError, match="stale"):
        P.verify_webhook(secret, headers, body, now=1_000_000 + 301)
    with pytest.raises(P.ProtocolError, match="bad MAC"):
        P.verify_webhook(b"other", headers, body, now=1_000_010)
    with pytest.raises(P.ProtocolError, match="bad MAC"):
        P.verify_webhook(secret, headers, body + b" ", now=1_000_010)
    with pytest.raises(P.ProtocolError, match="missing"):
        P.verify_webhook(secret, {}, body)


# --- format /2: the signature covers a short message naming the body's digest ---------------------------

PROFILES = [crypto.profile(name) for name in crypto.CRYPTO_PROFILES]


def _events(start: int, n: int) -> list[dict[str, object]]:
    return [{"seq": start + i + 1, "event": "published", "record": {"entry_id": f"e{i}"}} for i in range(n)]


def _split(data: bytes) -> tuple[bytes, bytes]:
    """A feed file's body (header and records, newlines included) and its signature line."""
    raw = gzip.decompress(data)
    cut = raw.rfind(b"\n", 0, len(raw) - 1) + 1
    return raw[:cut], raw[cut:]


def _resigned(body: bytes, message: bytes, key: P.SigningKey) -> bytes:
    return gzip.compress(body + P.canonical_json({"signature": P.b64(key.sign(message))}) + b"\n")


def _v1_file(fmt: str, header: dict[str, object], lines: list[dict[str, object]], key: P.SigningKey) -> bytes:
    """A file as a platform of before format /2 wrote it: the signature over the body itself."""
    head = {**header, "format": fmt, "key_id": key.key_id, "crypto_profile": key.profile.name}
    body = b"".join(P.canonical_json(x) + b"\n" for x in [head, *lines])
    return _resigned(body, body, key)


@pytest.mark.parametrize("prof", PROFILES, ids=lambda p: p.name)
def test_v2_signs_the_domain_separated_body_digest(prof: crypto.Profile) -> None:
    key = P.SigningKey.generate("s1", prof)
    events = _events(10, 3)
    data, digest = P.write_feed_file_digest(P.DELTA_FORMAT, {"from": 10, "to": 13, "count": 3}, events, key)
    body, sig_line = _split(data)
    assert body.startswith(b'{"count":3') and b'"format":"fcx-feed-delta/2"' in body.split(b"\n")[0]
    assert digest == prof.hexdigest(body)  # the ETag's digest: the body without its signature
    message = P.feed_body_message(P.DELTA_FORMAT, prof.digest(body))
    assert message.startswith(b"fcx-feed-body/2\nfcx-feed-delta/2\n") and len(message) < 80
    P.verify_signature(key.public, message, P.unb64(json.loads(sig_line)["signature"], "sig"), "f", prof)
    feed = P.read_feed_file(data, key.public, expect=P.DELTA_FORMAT, profile=prof)
    assert feed.records == events and feed.format == feed.wire_format == P.DELTA_FORMAT


@pytest.mark.parametrize("prof", PROFILES, ids=lambda p: p.name)
def test_v2_tampering_is_refused(prof: crypto.Profile) -> None:
    key = P.SigningKey.generate("s1", prof)
    data = P.write_feed_file(P.DELTA_FORMAT, {"from": 10, "to": 13, "count": 3}, _events(10, 3), key)
    other = P.write_feed_file(P.DELTA_FORMAT, {"from": 13, "to": 16, "count": 3}, _events(13, 3), key)
    body, sig_line = _split(data)
    other_body, other_sig = _split(other)

    def refused(raw: bytes, match: str = "feed file: signature does not verify") -> None:
        with pytest.raises(P.ProtocolError, match=match):
            P.read_feed_file(gzip.compress(raw), key.public, profile=prof)

    refused(body.replace(b'"e1"', b'"ex"') + sig_line)  # a record line changed
    lines = body.split(b"\n")
    refused(b"\n".join([other_body.split(b"\n")[0], *lines[1:]]) + sig_line)  # another file's header
    refused(body + other_sig)  # a /2 signature replayed on another body
    refused(other_body + sig_line)
    refused(b"\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + sig_line)  # reordered
    refused(body.replace(b"fcx-feed-delta/2", b"fcx-feed-delta/9") + sig_line, "unknown format")
    refused(b"not json\n" + b"\n".join(lines[1:]) + sig_line, "not a JSON header")


@pytest.mark.parametrize("prof", PROFILES, ids=lambda p: p.name)
def test_a_signature_over_the_wrong_message_is_refused(prof: crypto.Profile) -> None:
    key = P.SigningKey.generate("s1", prof)
    data = P.write_feed_file(P.DELTA_FORMAT, {"from": 10, "to": 13, "count": 3}, _events(10, 3), key)
    body, _ = _split(data)
    digest = prof.digest(body)
    assert P.read_feed_file(_resigned(body, P.feed_body_message(P.DELTA_FORMAT, digest), key), key.public)
    wrong = [
        P.feed_body_message(P.SNAPSHOT_FORMAT, digest),  # another format's message
        P.feed_body_message(P.DELTA_FORMAT_V1, digest),
        P.DELTA_FORMAT.encode() + b"\n" + digest,  # no domain line
        b"fcx-feed-body/1\n" + P.DELTA_FORMAT.encode() + b"\n" + digest,  # another domain
        P.feed_body_message(P.DELTA_FORMAT, digest.hex().encode()),  # the digest in hex
        body,  # a /1 signature (over the body itself) under a /2 header
    ]
    other = next(p for p in PROFILES if p.name != prof.name)
    if other.digest_size == prof.digest_size:
        wrong.append(P.feed_body_message(P.DELTA_FORMAT, other.digest(body)))  # the other profile's digest
    for message in wrong:
        with pytest.raises(P.ProtocolError, match="feed file: signature does not verify"):
            P.read_feed_file(_resigned(body, message, key), key.public, profile=prof)


@pytest.mark.parametrize("prof", PROFILES, ids=lambda p: p.name)
def test_a_v1_file_is_still_read_and_verified(prof: crypto.Profile) -> None:
    key = P.SigningKey.generate("s1", prof)
    events = _events(10, 3)
    v1 = _v1_file(P.DELTA_FORMAT_V1, {"from": 10, "to": 13, "count": 3}, events, key)
    feed = P.read_feed_file(v1, key.public, expect=P.DELTA_FORMAT, profile=prof)
    assert feed.records == events
    assert (feed.format, feed.wire_format) == (P.DELTA_FORMAT, P.DELTA_FORMAT_V1)
    snap = _v1_file(P.SNAPSHOT_FORMAT_V1, {"seq": 3, "count": 1}, [{"record": {"entry_id": "e"}}], key)
    assert P.read_feed_file(snap, key.public, expect=P.SNAPSHOT_FORMAT).format == P.SNAPSHOT_FORMAT
    with pytest.raises(P.ProtocolError, match=r"expected fcx-feed-snapshot/2, got fcx-feed-delta/1"):
        P.read_feed_file(v1, key.public, expect=P.SNAPSHOT_FORMAT)
    body, sig_line = _split(v1)
    for raw in (
        body.replace(b'"e1"', b'"ex"') + sig_line,  # tampered
        body
        + P.canonical_json(
            {"signature": P.b64(key.sign(P.feed_body_message(P.DELTA_FORMAT_V1, prof.digest(body))))}
        )
        + b"\n",  # a /1 header with a /2-style signature
    ):
        with pytest.raises(P.ProtocolError, match="feed file: signature does not verify"):
            P.read_feed_file(gzip.compress(raw), key.public, profile=prof)
    stranger = P.SigningKey.generate("s2", prof)
    with pytest.raises(P.ProtocolError, match="feed file: signature does not verify"):
        P.read_feed_file(v1, stranger.public, profile=prof)


@pytest.mark.parametrize("prof", PROFILES, ids=lambda p: p.name)
def test_streamed_file_matches_the_in_memory_one(prof: crypto.Profile, tmp_path: Path) -> None:
    key = P.SigningKey.generate("s1", prof)
    lines = [{"record": {"entry_id": f"e{i}", "pad": "x" * 500}} for i in range(5000)]  # several chunks
    header = {"seq": 7, "count": len(lines)}
    path = tmp_path / "snap.jsonl.gz"
    digest, size = P.write_feed_file_to(path, P.SNAPSHOT_FORMAT, header, iter(lines), key)
    data = path.read_bytes()
    assert (digest, size) == (prof.hexdigest(data), len(data))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.jsonl.gz"]  # no temporary body file
    in_memory, body_digest = P.write_feed_file_digest(P.SNAPSHOT_FORMAT, header, lines, key)
    assert _split(data)[0] == _split(in_memory)[0] and body_digest == prof.hexdigest(_split(data)[0])
    assert P.read_feed_file(data, key.public, expect=P.SNAPSHOT_FORMAT, profile=prof).records == lines
    with pytest.raises(ValueError, match="header says 5001 records, 5000 written"):
        P.write_feed_file_to(path, P.SNAPSHOT_FORMAT, {**header, "count": 5001}, lines, key)
    assert not path.exists()  # nothing half-written is left to be served
