"""RFC 9497 OPRF/VOPRF (ristretto255-SHA512) identifier tags: vectors, round trips, failures, key rotation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fanchaoxin.sharing import oprf
from fanchaoxin.sharing.oprf import (
    MODE_OPRF,
    MODE_VOPRF,
    InvalidElementError,
    InvalidInputError,
    InvalidScalarError,
    KeyRing,
    ProofError,
    RetiredKeyError,
    UnknownKeyError,
)

VECTORS = (
    Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "rfc9497-ristretto255-sha512.json"
)
GENERATOR = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
# Group order L, little-endian: a non-canonical scalar.
ORDER = (2**252 + 27742317777372353535851937790883648493).to_bytes(32, "little")


def _suites() -> list[dict]:
    if not VECTORS.exists():
        return []
    return json.loads(VECTORS.read_text())


def _cases() -> list:
    cases = []
    for suite in _suites():
        for i, vector in enumerate(suite["vectors"]):
            cases.append(
                pytest.param(suite, vector, id=f"mode{suite['mode']}-vector{i + 1}-batch{vector['Batch']}")
            )
    if not cases:
        cases.append(
            pytest.param(
                None, None, marks=pytest.mark.skip(reason=f"RFC 9497 test vectors not found at {VECTORS}")
            )
        )
    return cases


def _hexes(field: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in field.split(",")]


# --- RFC 9380 / RFC 9497 vectors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "length", "expected"),
    [
        (b"", 32, "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"),
        (b"abc", 32, "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"),
        (
            b"",
            128,
            "41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251b921b052b62eaed99b46f72f2ef4cc96bfaf"
            "254ebbbec091e1a3b9e4fb5e5b619d2e0c5414800a1d882b62bb5cd1778f098b8eb6cb399d5d9d18f5d5842cf5d13d7e"
            "b00a7cff859b605da678b318bd0e65ebff70bec88c753b159a805d2c89c55961",
        ),
    ],
)
def test_expand_message_xmd_sha512_rfc9380_vectors(msg, length, expected):
    dst = b"QUUX-V01-CS02-with-expander-SHA512-256"
    assert oprf.expand_message_xmd(msg, dst, length).hex() == expected


@pytest.mark.skipif(not VECTORS.exists(), reason=f"RFC 9497 test vectors not found at {VECTORS}")
@pytest.mark.parametrize("suite", _suites(), ids=lambda s: f"mode{s['mode']}")
def test_rfc9497_derive_key_pair_and_contexts(suite):
    mode = suite["mode"]
    assert suite["identifier"] == oprf.SUITE
    assert (b"HashToGroup-" + oprf.context_string(mode)).hex() == suite["groupDST"]
    sk, pk = oprf.derive_key_pair(bytes.fromhex(suite["seed"]), bytes.fromhex(suite["keyInfo"]), mode)
    assert sk.hex() == suite["skSm"]
    if "pkSm" in suite:
        assert pk.hex() == suite["pkSm"]
    assert oprf.public_key(sk) == pk


@pytest.mark.parametrize(("suite", "vector"), _cases())
def test_rfc9497_vector(suite, vector):
    mode = suite["mode"]
    sk = bytes.fromhex(suite["skSm"])
    pk = oprf.public_key(sk)
    inputs = _hexes(vector["Input"])
    blinds = _hexes(vector["Blind"])
    expected_blinded = _hexes(vector["BlindedElement"])
    expected_evaluated = _hexes(vector["EvaluationElement"])
    expected_outputs = _hexes(vector["Output"])
    assert len(inputs) == vector["Batch"] == len(blinds) == len(expected_outputs)

    # client: Blind
    blinded = []
    for x, r in zip(inputs, blinds, strict=True):
        r_out, b = oprf.blind(x, mode, blind=r)
        assert r_out == r
        blinded.append(b)
    assert blinded == expected_blinded

    # server: BlindEvaluate, one proof for the whole batch in mode 1
    proof_random = bytes.fromhex(vector["Proof"]["r"]) if mode == MODE_VOPRF else None
    evaluated, proof = oprf.blind_evaluate(sk, blinded, mode, proof_random=proof_random)
    assert evaluated == expected_evaluated
    if mode == MODE_VOPRF:
        assert proof.hex() == vector["Proof"]["proof"]
        oprf.verify_proof(GENERATOR, pk, blinded, evaluated, proof, mode)
    else:
        assert proof is None

    # client: Finalize (verifying the proof in mode 1)
    kwargs = {"proof": proof, "pk": pk, "blinded": blinded} if mode == MODE_VOPRF else {}
    assert oprf.finalize_batch(inputs, blinds, evaluated, mode, **kwargs) == expected_outputs
    if len(inputs) == 1:
        single = {"proof": proof, "pk": pk, "blinded_element": blinded[0]} if mode == MODE_VOPRF else {}
        assert oprf.finalize(inputs[0], blinds[0], evaluated[0], mode, **single) == expected_outputs[0]

    # server: Evaluate
    assert [oprf.evaluate(sk, x, mode) for x in inputs] == expected_outputs


# --- round trips --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    return oprf.derive_key_pair(b"\x01" * 32, b"fanchaoxin test", MODE_VOPRF)


@pytest.mark.parametrize("mode", [MODE_OPRF, MODE_VOPRF])
def test_round_trip_equals_direct_evaluate(mode):
    sk, pk = oprf.generate_key_pair(mode)
    inputs = [b"phone:13800138000", b"email:someone@example.com", b"uscc:91110000MA01ABCD2X", b""]
    blinds, blinded = oprf.blind_batch(inputs, mode)
    assert len(set(blinded)) == len(inputs)
    evaluated, proof = oprf.blind_evaluate(sk, blinded, mode)
    kwargs = {"proof": proof, "pk": pk, "blinded": blinded} if mode == MODE_VOPRF else {}
    outputs = oprf.finalize_batch(inputs, blinds, evaluated, mode, **kwargs)
    assert outputs == [oprf.evaluate(sk, x, mode) for x in inputs]
    assert all(len(o) == oprf.OUTPUT_BYTES for o in outputs)


def test_blinding_hides_the_input_and_is_fresh(keys):
    sk, pk = keys
    r1, b1 = oprf.blind(b"phone:13800138000")
    r2, b2 = oprf.blind(b"phone:13800138000")
    assert r1 != r2 and b1 != b2
    assert b1 != oprf.hash_to_group(b"phone:13800138000")
    (e1,), p1 = oprf.blind_evaluate(sk, [b1])
    (e2,), p2 = oprf.blind_evaluate(sk, [b2])
    o1 = oprf.finalize(b"phone:13800138000", r1, e1, proof=p1, pk=pk, blinded_element=b1)
    o2 = oprf.finalize(b"phone:13800138000", r2, e2, proof=p2, pk=pk, blinded_element=b2)
    assert o1 == o2 == oprf.evaluate(sk, b"phone:13800138000")


def test_modes_and_keys_give_different_outputs(keys):
    sk, _ = keys
    other, _ = oprf.generate_key_pair()
    x = b"phone:13800138000"
    assert oprf.evaluate(sk, x, MODE_OPRF) != oprf.evaluate(sk, x, MODE_VOPRF)
    assert oprf.evaluate(sk, x) != oprf.evaluate(other, x)
    assert oprf.evaluate(sk, x) != oprf.evaluate(sk, b"phone:13800138001")


def test_identifier_input_normalises():
    assert oprf.identifier_input("phone", "13800138000", normalised=True) == b"phone:13800138000"
    assert oprf.identifier_input("email", "Someone@Example.COM") == oprf.identifier_input(
        "email",
        oprf.identifier_input("email", "Someone@Example.COM").decode().split(":", 1)[1],
        normalised=True,
    )


# --- proofs -------------------------------------------------------------------------------------------


def _batch(sk, n=3):
    inputs = [f"phone:1380013800{i}".encode() for i in range(n)]
    blinds, blinded = oprf.blind_batch(inputs)
    evaluated, proof = oprf.blind_evaluate(sk, blinded)
    return inputs, blinds, blinded, evaluated, proof


def test_proof_for_another_key_fails(keys):
    sk, _ = keys
    _, other_pk = oprf.generate_key_pair()
    inputs, blinds, blinded, evaluated, proof = _batch(sk)
    with pytest.raises(ProofError, match="wrong key"):
        oprf.finalize_batch(inputs, blinds, evaluated, proof=proof, pk=other_pk, blinded=blinded)


def test_evaluation_under_another_key_fails(keys):
    sk, pk = keys
    other_sk, _ = oprf.generate_key_pair()
    inputs, blinds, blinded, _, _ = _batch(sk)
    evaluated, proof = oprf.blind_evaluate(other_sk, blinded)  # a server using a key other than pk's
    with pytest.raises(ProofError):
        oprf.finalize_batch(inputs, blinds, evaluated, proof=proof, pk=pk, blinded=blinded)


def test_tampered_evaluated_element_fails(keys):
    sk, pk = keys
    inputs, blinds, blinded, evaluated, proof = _batch(sk)
    tampered = list(evaluated)
    tampered[1] = oprf.hash_to_group(b"something else")
    with pytest.raises(ProofError):
        oprf.finalize_batch(inputs, blinds, tampered, proof=proof, pk=pk, blinded=blinded)
    swapped = [evaluated[1], evaluated[0], evaluated[2]]
    with pytest.raises(ProofError):
        oprf.finalize_batch(inputs, blinds, swapped, proof=proof, pk=pk, blinded=blinded)
    # a single bit flip usually makes a non-canonical encoding: refused before the proof is checked
    flipped = list(evaluated)
    flipped[0] = bytes([evaluated[0][0] ^ 1]) + evaluated[0][1:]
    with pytest.raises((ProofError, InvalidElementError)):
        oprf.finalize_batch(inputs, blinds, flipped, proof=proof, pk=pk, blinded=blinded)


def test_tampered_or_malformed_proof_fails(keys):
    sk, pk = keys
    inputs, blinds, blinded, evaluated, proof = _batch(sk)
    bad_s = proof[:32] + oprf.hash_to_scalar(b"x")
    for bad in (bad_s, proof[:32] + bytes(32), ORDER + proof[32:], proof[:-1], b""):
        with pytest.raises(ProofError):
            oprf.finalize_batch(inputs, blinds, evaluated, proof=bad, pk=pk, blinded=blinded)
    with pytest.raises(ProofError, match="needs the proof"):
        oprf.finalize_batch(inputs, blinds, evaluated, pk=pk, blinded=blinded)
    with pytest.raises(ProofError):  # one proof covers exactly its batch, not a part of it
        oprf.finalize_batch(inputs[:2], blinds[:2], evaluated[:2], proof=proof, pk=pk, blinded=blinded[:2])
    with pytest.raises(ProofError):  # the proof binds the blinded elements too
        other_blinded = oprf.blind_batch(inputs)[1]
        oprf.finalize_batch(inputs, blinds, evaluated, proof=proof, pk=pk, blinded=other_blinded)


# --- malformed inputs ---------------------------------------------------------------------------------

MALFORMED = {
    "identity": bytes(32),
    "non-canonical": b"\xff" * 32,
    "negative (odd) field element": (1).to_bytes(32, "little"),
    "field prime p (non-canonical zero)": (2**255 - 19).to_bytes(32, "little"),
    "p + 1 (non-canonical)": (2**255 - 18).to_bytes(32, "little"),
    "not on the curve": bytes.fromhex("0200000000000000000000000000000000000000000000000000000000000000"),
    "short": b"\x01" * 31,
    "long": GENERATOR + b"\x00",
    "not bytes": "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76",
}


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_blinded_element_is_refused(keys, bad):
    sk, _ = keys
    good = oprf.blind(b"phone:13800138000")[1]
    with pytest.raises(InvalidElementError, match="blinded element 1"):
        oprf.blind_evaluate(sk, [good, bad])
    with pytest.raises(InvalidElementError):
        oprf.blind_evaluate(sk, [bad], MODE_OPRF)


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_evaluated_element_is_refused(keys, bad):
    sk, pk = keys
    r, b = oprf.blind(b"phone:13800138000")
    _, proof = oprf.blind_evaluate(sk, [b])
    with pytest.raises(InvalidElementError):
        oprf.finalize(b"phone:13800138000", r, bad, proof=proof, pk=pk, blinded_element=b)
    with pytest.raises(InvalidElementError):
        oprf.finalize(b"phone:13800138000", r, bad, MODE_OPRF)


def test_bad_scalars_and_inputs_are_refused(keys):
    sk, _ = keys
    with pytest.raises(InvalidScalarError):
        oprf.evaluate(bytes(32), b"x")
    with pytest.raises(InvalidScalarError):
        oprf.evaluate(ORDER, b"x")
    with pytest.raises(InvalidScalarError):
        oprf.blind(b"x", blind=bytes(32))
    with pytest.raises(InvalidScalarError):
        oprf.public_key(b"\x01" * 31)
    with pytest.raises(InvalidInputError):
        oprf.evaluate(sk, b"x" * 65536)
    with pytest.raises(TypeError):
        oprf.evaluate(sk, "phone:13800138000")
    with pytest.raises(ValueError, match="mode"):
        oprf.evaluate(sk, b"x", 2)


# --- tags and key ring --------------------------------------------------------------------------------


def test_tag_encoding(keys):
    sk, _ = keys
    output = oprf.evaluate(sk, b"phone:13800138000")
    t = oprf.tag("k1", output)
    assert t.startswith("k1:") and len(t) == 3 + 43 and "=" not in t
    assert oprf.parse_tag(t) == ("k1", output[:32])
    for bad_id in ("", "k:1", "k 1", "x" * 33):
        with pytest.raises(ValueError):
            oprf.tag(bad_id, output)
    for bad in ("k1", "k1:abc", t + "A", t[:-1] + "!"):
        with pytest.raises(ValueError):
            oprf.parse_tag(bad)
    with pytest.raises(ValueError):
        oprf.tag("k1", output[:32])


def test_keyring_rotation_overlap():
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    ring = KeyRing()
    k1 = ring.derive("k1", b"\x02" * 32, b"fanchaoxin k1")
    x = b"phone:13800138000"
    assert ring.tags(x, now=t0) == [ring.tag(x)] and ring.tag(x).startswith("k1:")

    # a node tags its user under k1 by blinded evaluation
    def node_tag(ring, now):
        r, b = oprf.blind(x)
        key_id, (e,), proof = ring.blind_evaluate([b], now=now)
        pk = ring.public_keys(now)[key_id]
        return oprf.tag(key_id, oprf.finalize(x, r, e, proof=proof, pk=pk, blinded_element=b))

    old_node_tag = node_tag(ring, t0)
    assert old_node_tag in ring.tags(x, now=t0)

    ring.rotate("k2", overlap=timedelta(days=7), now=t0 + timedelta(days=1))
    during = t0 + timedelta(days=3)
    assert ring.current.key_id == "k2"
    assert [k.key_id for k in ring.active(during)] == ["k2", "k1"]
    published = ring.tags(x, now=during)
    assert len(published) == 2 and published[0].startswith("k2:") and published[1].startswith("k1:")
    # both the node's old tag and a fresh one under the new key match during the overlap
    assert old_node_tag in published
    new_node_tag = node_tag(ring, during)
    assert new_node_tag.startswith("k2:") and new_node_tag in published
    assert ring.get("k1", during) is not None
    key_id, _, _ = ring.blind_evaluate([oprf.blind(x)[1]], key_id="k1", now=during)
    assert key_id == "k1"
    assert set(ring.public_keys(during)) == {"k1", "k2"}

    after = t0 + timedelta(days=8, seconds=1)
    assert ring.tags(x, now=after) == [new_node_tag]
    assert old_node_tag not in ring.tags(x, now=after)
    with pytest.raises(RetiredKeyError, match="retired"):
        ring.get("k1", after)
    with pytest.raises(RetiredKeyError):
        ring.blind_evaluate([oprf.blind(x)[1]], key_id="k1", now=after)
    with pytest.raises(UnknownKeyError, match="unknown"):
        ring.get("k9", after)
    assert set(ring.public_keys(after)) == {"k2"}
    assert ring.prune(after) == ["k1"] and "k1" not in ring and len(ring) == 1
    assert k1.sk.hex() not in repr(k1)


def test_keyring_refuses_duplicates_and_empty():
    ring = KeyRing()
    with pytest.raises(UnknownKeyError):
        _ = ring.current
    ring.generate("k1")
    with pytest.raises(ValueError, match="already"):
        ring.generate("k1")
    with pytest.raises(ValueError):
        ring.rotate("k2", overlap=timedelta(days=-1))
