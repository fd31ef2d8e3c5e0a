"""The sharing wire formats: what a receiver refuses (forged, truncated, reordered, replayed, skipped)."""

from __future__ import annotations

import gzip
import json

import pytest

from fanchaoxin.sharing import protocol as P

KEY = P.SigningKey.from_seed("s1", b"\x01" * 32)
OTHER = P.SigningKey.from_seed("s2", b"\x02" * 32)


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
