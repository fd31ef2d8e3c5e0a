"""The crypto profile between the platform and a node (#18): the node learns it from the manifest at init,
verifies everything under it (never under FCX_CRYPTO_PROFILE, the platform's setting), and refuses a
platform of the other profile, a signature in the wrong encoding and a key of the wrong algorithm, each
with its reason."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fanchaoxin.core import crypto
from fanchaoxin.node import hits, relay
from fanchaoxin.node.sdk import id_hmac
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import InitError, SyncRefused, initialise, read_feed, sync
from fanchaoxin.sharing import protocol as P
from tests.node.test_node_support import FakePlatform, record

GM, INTL = crypto.profile("gm"), crypto.profile("international")
OTHER = {"gm": INTL, "international": GM}


@pytest.fixture(params=["gm", "international"])
def platform(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A platform of either profile, whatever FCX_CRYPTO_PROFILE this run has: the node must not care."""
    f = FakePlatform(P.SigningKey.generate("s1", crypto.profile(request.param)))
    yield f
    f.close()


def _config(path: str) -> dict[str, str]:
    s = Store(path)
    try:
        return s.get_config()
    finally:
        s.dispose()


def test_a_node_verifies_a_platforms_feed_end_to_end_under_its_profile(
    tmp_path: Path, platform: FakePlatform
) -> None:
    prof = platform.key.profile
    platform.publish(record("e1", tags=["t1"]))
    platform.build_snapshot()
    platform.publish(record("e2", tags=["t2"]))
    path = str(tmp_path / "n.db")
    pinned = initialise(path, platform.url, "k", fingerprint=P.fingerprint(platform.key.public))
    assert pinned["crypto_profile"] == prof.name
    # the fingerprint is the first 32 hex digits of the key's own profile's digest (SM3 of an SM2 point)
    assert pinned["fingerprint"] == prof.hexdigest(platform.key.public)[:32]
    cfg = _config(path)
    assert cfg["crypto_profile"] == prof.name and cfg["id_hmac_profile"] == prof.name
    manifest = P.verify_manifest(platform.manifest(), platform.key.public, prof)
    assert manifest["crypto_profile"] == prof.name
    assert manifest["signature_algorithm"] == prof.signature_algorithm
    assert (
        manifest["hash_algorithm"] == prof.hash_algorithm and manifest["mac_algorithm"] == prof.mac_algorithm
    )
    result = sync(Store(path))
    assert result.snapshot == 1 and result.head_after == 2 and result.deltas == 1
    platform.publish(record("e3"))
    assert sync(Store(path)).head_after == 3
    # the node's own receipt key follows the platform's profile
    key, made = relay.ensure_node_key(Store(path))
    assert made and key.profile.name == prof.name and len(key.public) == prof.public_key_size


def test_a_node_expecting_the_other_profile_is_refused_at_init(
    tmp_path: Path, platform: FakePlatform
) -> None:
    prof = platform.key.profile
    path = tmp_path / "n.db"
    with pytest.raises(InitError) as exc:
        initialise(str(path), platform.url, "k", expect_profile=OTHER[prof.name].name)
    message = str(exc.value)
    assert f"the platform runs the {prof.name} crypto profile" in message
    assert "--expect-profile" in message and "nothing written" in message
    assert not path.exists()
    with pytest.raises(InitError, match="unknown crypto profile"):
        initialise(str(path), platform.url, "k", expect_profile="sm9")
    assert initialise(str(path), platform.url, "k", expect_profile=prof.name)["crypto_profile"] == prof.name


def test_a_platform_that_changed_its_profile_is_refused_until_the_node_is_re_initialised(
    tmp_path: Path, platform: FakePlatform
) -> None:
    before = platform.key.profile
    after = OTHER[before.name]
    platform.publish(record("e1"))
    path = str(tmp_path / "n.db")
    initialise(path, platform.url, "k")
    sync(Store(path))
    old_node_key, _ = relay.ensure_node_key(Store(path))
    # fcx crypto migrate on the platform: a new signing key of the other profile, the same feed
    platform.key = P.SigningKey.generate("s2", after)
    platform.build_snapshot()
    platform.publish(record("e2"))
    change = (
        f"the platform changed its crypto profile from {before.name} to {after.name}; run `fcx node init`"
    )
    with pytest.raises(SyncRefused, match=change.replace("`", ".")):
        sync(Store(path))
    assert Store(path).state()["head"] == 1
    with pytest.raises(InitError, match=change.replace("`", ".")):
        initialise(path, platform.url, "k")
    assert _config(path)["crypto_profile"] == before.name
    pinned = initialise(path, platform.url, "k", repin=True)
    assert pinned["crypto_profile"] == after.name == _config(path)["crypto_profile"]
    assert sync(Store(path)).head_after == 2
    # a node key of the old algorithm is replaced by one of the new profile (to be enrolled again)
    new_node_key, made = relay.ensure_node_key(Store(path))
    assert made and new_node_key.profile.name == after.name and new_node_key.key_id != old_node_key.key_id
    # identifiers enrolled before keep their HMAC profile: re-keying needs the plain values, never stored
    assert _config(path)["id_hmac_profile"] == before.name


def test_a_raw_r_s_signature_is_refused_by_an_sm2_verifier() -> None:
    key = P.SigningKey.generate("s1", GM)
    events = [{"seq": 1, "event": "published", "record": {"entry_id": "e1"}}]
    data = P.write_feed_file(P.DELTA_FORMAT, {"from": 0, "to": 1, "count": 1}, events, key)
    assert P.read_feed_file(data, key.public, profile=GM).records == events
    lines = gzip.decompress(data).split(b"\n")
    der = P.unb64(json.loads(lines[-2])["signature"], "sig")
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    lines[-2] = P.canonical_json({"signature": P.b64(raw)})
    with pytest.raises(P.ProtocolError, match="DER") as exc:
        P.read_feed_file(gzip.compress(b"\n".join(lines)), key.public, profile=GM)
    assert "raw r ‖ s" in str(exc.value)
    doc = P.sign_manifest({"head": 1}, key)
    doc["signature"] = P.b64(raw)
    with pytest.raises(P.ProtocolError, match="manifest: an SM2 signature is DER"):
        P.verify_manifest(doc, key.public, GM)


def test_a_feed_of_one_profile_is_refused_by_a_node_of_the_other() -> None:
    for signer, verifier in ((INTL, GM), (GM, INTL)):
        key = P.SigningKey.generate("s1", signer)
        data = P.write_feed_file(P.SNAPSHOT_FORMAT, {"seq": 0, "count": 0}, [], key)
        with pytest.raises(P.ProtocolError, match=r"feed file: .*key"):
            P.read_feed_file(data, key.public, profile=verifier)
        with pytest.raises(P.ProtocolError, match="manifest"):
            P.verify_manifest(P.sign_manifest({"head": 0}, key), key.public, verifier)


def test_node_macs_follow_the_profile() -> None:
    body, secret = b'{"items":[]}', b"s3"
    assert hits.signature(secret, body, INTL).startswith("sha256=")
    sm3 = hits.signature(secret, body, GM)
    assert sm3.startswith("hmac-sm3=") and sm3 != "hmac-sm3=" + hits.signature(secret, body, INTL)[7:]
    # a short secret gives the standard HMAC (zero-padded per RFC 2104), so receivers keep working
    assert hits.signature(secret, body, GM) == "hmac-sm3=" + GM.mac(secret + bytes(30), body).hex()
    # the platform's webhook MAC keeps its shape (v1=…) and is checked under the profile given
    headers = P.webhook_headers(secret, "ev1", body, now=1000, profile=GM)
    assert headers["X-FCX-Signature"].startswith("v1=")
    assert P.verify_webhook(secret, headers, body, now=1000, profile=GM) == "ev1"
    with pytest.raises(P.ProtocolError, match="bad MAC"):
        P.verify_webhook(secret, headers, body, now=1000, profile=INTL)
    node_secret = bytes(range(32))
    assert id_hmac(node_secret, "phone:13812345678", GM) != id_hmac(node_secret, "phone:13812345678", INTL)
    assert len(id_hmac(node_secret, "phone:13812345678", GM)) == 32


def test_a_gm_node_verifies_a_10000_event_delta_within_a_second() -> None:
    key = P.SigningKey.generate("s1", GM)
    events = [
        {
            "seq": i + 1,
            "event": "published",
            "at": "2026-01-01T00:00:00Z",
            "record": record(f"e{i}", tags=[f"t{i}"]),
        }
        for i in range(10_000)
    ]
    data = P.write_feed_file(P.DELTA_FORMAT, {"from": 0, "to": 10_000, "count": 10_000}, events, key)
    digest = GM.hexdigest(data)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        assert GM.hexdigest(data) == digest  # the digest a manifest names
        feed = read_feed(data, key.public, P.DELTA_FORMAT, GM)  # signature, count, sequence
        best = min(best, time.perf_counter() - started)
    assert len(feed.records) == 10_000
    assert best <= 1.0, f"verifying a 10,000-event delta under gm took {best:.2f} s"
