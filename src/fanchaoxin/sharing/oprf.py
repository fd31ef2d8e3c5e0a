"""Identifier tags: RFC 9497 OPRF / VOPRF over ristretto255-SHA512, keyed by the platform.

A tag is ``VOPRF(k, "type:normalised value")`` (DESIGN §4 "Sharing without leaking"). The feed carries
tags, never plain identifiers. The platform computes the tags of its own entries directly
(:func:`evaluate`); an enterprise node learns the tags of *its own* users by blinded evaluation, so
the platform never sees them:

    node:      blinds, blinded = blind_batch(inputs)                   # client, secret blinds
    platform:  evaluated, proof = blind_evaluate(sk, blinded)          # server, one DLEQ proof
    node:      outputs = finalize_batch(inputs, blinds, evaluated,     # verifies the proof first
                                        blinded=blinded, proof=proof, pk=pk)
               tag(key_id, output) == the tag the platform publishes for the same identifier

Who does what
-------------
* **libsodium** (through ``pysodium``; ≥ 1.0.18, Debian ``libsodium23``) does every group and scalar
  operation: ``crypto_core_ristretto255_from_hash`` (the RFC 9496 one-way map used by RFC 9380
  hash_to_ristretto255), ``crypto_scalarmult_ristretto255[_base]`` (constant time in the scalar; it
  also decodes the point, refusing non-canonical encodings, and refuses an identity result),
  ``crypto_core_ristretto255_add``, ``crypto_core_ristretto255_is_valid_point``, and the scalar field
  ``crypto_core_ristretto255_scalar_{reduce,mul,sub,invert,random}``. Secret scalars (the key, the
  client's blinds, the proof nonce) are only ever handled as 32-byte strings by libsodium: no secret
  passes through Python integer arithmetic.
* **hashlib** does SHA-512: expand_message_xmd (RFC 9380 §5.3.1) for HashToGroup / HashToScalar,
  the Finalize hash and the composite seed.
* This module does the RFC 9497 protocol layer: contexts and DSTs, DeriveKeyPair, Blind, BlindEvaluate
  (batched, with one proof), Finalize, Evaluate, GenerateProof / VerifyProof with
  ComputeComposites(Fast), serialisation checks, and the tag encoding and key ring.

Modes: ``MODE_OPRF`` (0, base) and ``MODE_VOPRF`` (1, verifiable; the default and what the platform
uses). The mode is part of every DST, so outputs differ between modes for the same key and input.

Tag encoding
------------
``tag(key_id, output) = key_id + ":" + base64url(output[:32])`` without padding, e.g.
``"k1:3q2-7w…"`` (key id + 44 characters). 256 bits of the 512-bit Finalize output keep a 2^128
collision bound, far beyond any identifier population; the key id prefix lets a node tell which
platform key a tag belongs to during a rotation overlap, and keeps tags of different keys apart.

Key rotation
------------
:class:`KeyRing` holds the platform's keys by id. :meth:`KeyRing.rotate` makes a new key current and
keeps the previous one *active* for an overlap window: during the window the platform publishes each
entry's tags under both keys (:meth:`KeyRing.tags`) and still answers blinded evaluations under the old
key, so nodes holding old-key tags keep matching while they re-tag their users under the new key.
After the window the old key is refused (:class:`RetiredKeyError`) and its tags leave the feed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from fanchaoxin.core.identifiers import normalise

try:
    import pysodium as _na
except (ImportError, ValueError, OSError) as exc:  # pysodium raises ValueError when libsodium is absent
    raise ImportError(
        "fanchaoxin.sharing.oprf needs pysodium and libsodium >= 1.0.18 "
        "(Debian/Ubuntu: apt-get install libsodium23)"
    ) from exc

if not _na.sodium_version_check(1, 0, 18):  # ristretto255 arrived in libsodium 1.0.18
    raise ImportError(
        f"libsodium >= 1.0.18 is required for ristretto255, found "
        f"{_na.sodium_major}.{_na.sodium_minor}.{_na.sodium_patch}"
    )

__all__ = [
    "ELEMENT_BYTES",
    "MODE_OPRF",
    "MODE_VOPRF",
    "OUTPUT_BYTES",
    "PROOF_BYTES",
    "SCALAR_BYTES",
    "SUITE",
    "DeriveKeyPairError",
    "InvalidElementError",
    "InvalidInputError",
    "InvalidScalarError",
    "KeyRing",
    "OPRFError",
    "OPRFKey",
    "ProofError",
    "RetiredKeyError",
    "UnknownKeyError",
    "blind",
    "blind_batch",
    "blind_evaluate",
    "context_string",
    "derive_key_pair",
    "evaluate",
    "expand_message_xmd",
    "finalize",
    "finalize_batch",
    "generate_key_pair",
    "generate_proof",
    "hash_to_group",
    "hash_to_scalar",
    "identifier_input",
    "parse_tag",
    "public_key",
    "tag",
    "verify_proof",
]

SUITE = "ristretto255-SHA512"
MODE_OPRF = 0
MODE_VOPRF = 1
_MODES = (MODE_OPRF, MODE_VOPRF)

ELEMENT_BYTES = 32  # Noe
SCALAR_BYTES = 32  # Nsk / Ns
OUTPUT_BYTES = 64  # Nh
PROOF_BYTES = 2 * SCALAR_BYTES
TAG_BYTES = 32  # bytes of the Finalize output kept in a tag

_MAX_INPUT = 0xFFFF  # inputs are length-prefixed with I2OSP(len, 2)
_MAX_BATCH = 0xFFFF  # composites index elements with I2OSP(i, 2)
_IDENTITY = bytes(ELEMENT_BYTES)  # the canonical encoding of the ristretto255 identity
_ZERO_SCALAR = bytes(SCALAR_BYTES)
# The ristretto255 generator (RFC 9496 §4.4), i.e. crypto_scalarmult_ristretto255_base(1).
_GENERATOR = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")


# --- errors -------------------------------------------------------------------------------------------


class OPRFError(Exception):
    """Base class of this module's errors."""


class InvalidElementError(OPRFError, ValueError):
    """Bytes that are not a valid, non-identity ristretto255 element (RFC 9497 DeserializeError)."""


class InvalidScalarError(OPRFError, ValueError):
    """Bytes that are not a canonical scalar (or are zero where a non-zero scalar is needed)."""


class InvalidInputError(OPRFError, ValueError):
    """An input longer than 65535 bytes, or one that hashes to the identity (RFC 9497 InvalidInputError)."""


class ProofError(OPRFError):
    """A DLEQ proof that does not verify: the evaluation was not made with the key of ``pk``
    (wrong key), or an element or the proof was altered (RFC 9497 VerifyError)."""


class DeriveKeyPairError(OPRFError):
    """DeriveKeyPair found no non-zero scalar within 256 counters (RFC 9497 DeriveKeyPairError)."""


class UnknownKeyError(OPRFError, KeyError):
    """A key id the key ring does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown key"


class RetiredKeyError(UnknownKeyError):
    """A key id whose rotation overlap window has ended: its tags are no longer published."""


# --- contexts, hashing --------------------------------------------------------------------------------


def _check_mode(mode: int) -> int:
    if mode not in _MODES:
        raise ValueError(f"mode must be {MODE_OPRF} (OPRF) or {MODE_VOPRF} (VOPRF), not {mode!r}")
    return mode


def context_string(mode: int) -> bytes:
    """``"OPRFV1-" || I2OSP(mode, 1) || "-" || "ristretto255-SHA512"`` (RFC 9497 §3.1)."""
    return b"OPRFV1-" + bytes([_check_mode(mode)]) + b"-" + SUITE.encode()


_CONTEXT = {m: context_string(m) for m in _MODES}


def _dst_prime(dst: bytes) -> bytes:
    if len(dst) > 255:
        raise ValueError("DST longer than 255 bytes")
    return dst + bytes([len(dst)])


_GROUP_DST_PRIME = {m: _dst_prime(b"HashToGroup-" + _CONTEXT[m]) for m in _MODES}
_SCALAR_DST_PRIME = {m: _dst_prime(b"HashToScalar-" + _CONTEXT[m]) for m in _MODES}
_DERIVE_DST_PRIME = {m: _dst_prime(b"DeriveKeyPair" + _CONTEXT[m]) for m in _MODES}
_SEED_DST = {m: b"Seed-" + _CONTEXT[m] for m in _MODES}

# SHA-512 state after absorbing Z_pad (128 zero bytes = one block): every expand_message_xmd call starts
# from it, saving one compression per hash.
_ZPAD_SHA512 = hashlib.sha512(bytes(128))


def _expand_xmd(msg: bytes, dst_prime: bytes, len_in_bytes: int) -> bytes:
    ell = -(-len_in_bytes // 64)
    if not 1 <= len_in_bytes <= 0xFFFF or ell > 255:
        raise ValueError("expand_message_xmd: requested length out of range")
    h = _ZPAD_SHA512.copy()
    h.update(msg)
    h.update(len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime)
    b0 = h.digest()
    b = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    if ell == 1:
        return b[:len_in_bytes]
    out = [b]
    for i in range(2, ell + 1):
        b = hashlib.sha512(bytes(x ^ y for x, y in zip(b0, b, strict=True)) + bytes([i]) + dst_prime).digest()
        out.append(b)
    return b"".join(out)[:len_in_bytes]


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 §5.3.1 expand_message_xmd with SHA-512."""
    return _expand_xmd(bytes(msg), _dst_prime(bytes(dst)), len_in_bytes)


def _h2g(msg: bytes, mode: int) -> bytes:
    element = _na.crypto_core_ristretto255_from_hash(_expand_xmd(msg, _GROUP_DST_PRIME[mode], 64))
    if hmac.compare_digest(element, _IDENTITY):  # RFC 9497 Blind/Evaluate: InvalidInputError
        raise InvalidInputError("input hashes to the identity element")
    return element


def hash_to_group(msg: bytes, mode: int = MODE_VOPRF) -> bytes:
    """HashToGroup: hash_to_ristretto255 (RFC 9380 / RFC 9496), DST ``"HashToGroup-" || contextString``."""
    return _h2g(bytes(msg), _check_mode(mode))


def _h2s(msg: bytes, dst_prime: bytes) -> bytes:
    return _na.crypto_core_ristretto255_scalar_reduce(_expand_xmd(msg, dst_prime, 64))


def hash_to_scalar(msg: bytes, mode: int = MODE_VOPRF, dst: bytes | None = None) -> bytes:
    """HashToScalar: expand_message_xmd(msg, DST, 64) reduced mod the group order (libsodium), with
    DST ``"HashToScalar-" || contextString`` unless ``dst`` is given."""
    _check_mode(mode)
    return _h2s(bytes(msg), _SCALAR_DST_PRIME[mode] if dst is None else _dst_prime(dst))


def _lp(data: bytes) -> bytes:
    """``I2OSP(len(data), 2) || data`` (lengths are public)."""
    return len(data).to_bytes(2, "big") + data


def _check_input(data: bytes) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"OPRF input must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > _MAX_INPUT:
        raise InvalidInputError(f"OPRF input is {len(data)} bytes; at most {_MAX_INPUT}")
    return data


def _finalize_hash(data: bytes, element: bytes) -> bytes:
    return hashlib.sha512(_lp(data) + _lp(element) + b"Finalize").digest()


def identifier_input(type: str, value: object, *, normalised: bool = False) -> bytes:
    """The OPRF input for an identifier: ``"type:normalised value"`` in UTF-8.

    The value is normalised with :func:`fanchaoxin.core.identifiers.normalise` unless ``normalised``
    says it already is; the same identifier thus gives the same tag at the platform and at every node.
    """

    type_name = str(getattr(type, "value", type))
    canonical = str(value) if normalised else normalise(type_name, value)
    return f"{type_name}:{canonical}".encode()


# --- serialisation checks -----------------------------------------------------------------------------


def _scalar(s: bytes, what: str, *, nonzero: bool = True) -> bytes:
    """DeserializeScalar: 32 bytes, canonical (< group order); checked by libsodium's reduction."""
    if not isinstance(s, bytes | bytearray | memoryview) or len(s) != SCALAR_BYTES:
        raise InvalidScalarError(f"{what} must be {SCALAR_BYTES} bytes")
    s = bytes(s)
    if not hmac.compare_digest(_na.crypto_core_ristretto255_scalar_reduce(s + _ZERO_SCALAR), s):
        raise InvalidScalarError(f"{what} is not a canonical ristretto255 scalar")
    if nonzero and hmac.compare_digest(s, _ZERO_SCALAR):
        raise InvalidScalarError(f"{what} is zero")
    return s


def _element_shape(e: object, what: str) -> bytes:
    if not isinstance(e, bytes | bytearray | memoryview) or len(e) != ELEMENT_BYTES:
        raise InvalidElementError(f"{what} must be {ELEMENT_BYTES} bytes")
    e = bytes(e)
    if e == _IDENTITY:
        raise InvalidElementError(f"{what} is the identity element")
    return e


def _element(e: object, what: str) -> bytes:
    """DeserializeElement: a canonical ristretto255 encoding, not the identity."""
    e = _element_shape(e, what)
    if not _na.crypto_core_ristretto255_is_valid_point(e):
        raise InvalidElementError(f"{what} is not a valid ristretto255 encoding")
    return e


def _mul(k: bytes, e: bytes, what: str) -> bytes:
    """k * e. libsodium decodes e (refusing a non-canonical encoding) and refuses an identity result,
    which for a non-zero k and a non-identity e of this prime-order group means e was invalid."""
    try:
        return _na.crypto_scalarmult_ristretto255(k, e)
    except ValueError:
        raise InvalidElementError(f"{what} is not a valid ristretto255 encoding") from None


def _add(p: bytes, q: bytes) -> bytes:
    return _na.crypto_core_ristretto255_add(p, q)


# --- keys ---------------------------------------------------------------------------------------------


def public_key(sk: bytes) -> bytes:
    """``pkS = skS * G``."""
    return _na.crypto_scalarmult_ristretto255_base(_scalar(sk, "secret key"))


def derive_key_pair(seed: bytes, info: bytes, mode: int = MODE_VOPRF) -> tuple[bytes, bytes]:
    """RFC 9497 §3.2.1 DeriveKeyPair: a deterministic ``(skS, pkS)`` from a secret seed and public info."""
    dst_prime = _DERIVE_DST_PRIME[_check_mode(mode)]
    seed, info = bytes(seed), bytes(info)
    if len(info) > 0xFFFF:
        raise ValueError("key info longer than 65535 bytes")
    derive_input = seed + _lp(info)
    for counter in range(256):
        sk = _h2s(derive_input + bytes([counter]), dst_prime)
        if not hmac.compare_digest(sk, _ZERO_SCALAR):
            return sk, _na.crypto_scalarmult_ristretto255_base(sk)
    raise DeriveKeyPairError("no non-zero secret key within 256 counters")


def generate_key_pair(mode: int = MODE_VOPRF) -> tuple[bytes, bytes]:
    """A random ``(skS, pkS)``: libsodium's uniform non-zero scalar."""
    _check_mode(mode)
    sk = _na.crypto_core_ristretto255_scalar_random()
    return sk, _na.crypto_scalarmult_ristretto255_base(sk)


# --- client -------------------------------------------------------------------------------------------


def blind(input: bytes, mode: int = MODE_VOPRF, *, blind: bytes | None = None) -> tuple[bytes, bytes]:
    """RFC 9497 Blind: ``(blind, blindedElement = blind * HashToGroup(input))``.

    ``blind`` is a fresh random scalar unless given (tests replay the RFC vectors with it). The blind is
    the client's secret: keep it until :func:`finalize`, never send it.
    """
    data = _check_input(input)
    r = _na.crypto_core_ristretto255_scalar_random() if blind is None else _scalar(blind, "blind")
    return r, _na.crypto_scalarmult_ristretto255(r, _h2g(data, _check_mode(mode)))


def blind_batch(inputs: Sequence[bytes], mode: int = MODE_VOPRF) -> tuple[list[bytes], list[bytes]]:
    """:func:`blind` for each input: ``(blinds, blinded_elements)``."""
    pairs = [blind(x, mode) for x in inputs]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def finalize(
    input: bytes,
    blind: bytes,
    evaluated_element: bytes,
    mode: int = MODE_VOPRF,
    *,
    proof: bytes | None = None,
    pk: bytes | None = None,
    blinded_element: bytes | None = None,
) -> bytes:
    """RFC 9497 Finalize for one input. In mode 1, ``proof``, ``pk`` and ``blinded_element`` are required
    and the proof is verified first (:class:`ProofError` if it fails)."""
    blinded = None if blinded_element is None else [blinded_element]
    return finalize_batch([input], [blind], [evaluated_element], mode, proof=proof, pk=pk, blinded=blinded)[0]


def finalize_batch(
    inputs: Sequence[bytes],
    blinds: Sequence[bytes],
    evaluated_elements: Sequence[bytes],
    mode: int = MODE_VOPRF,
    *,
    proof: bytes | None = None,
    pk: bytes | None = None,
    blinded: Sequence[bytes] | None = None,
) -> list[bytes]:
    """RFC 9497 Finalize for a batch answered with one proof (mode 1), returning one 64-byte output each.

    Mode 1 verifies ``proof`` over ``(G, pk, blinded, evaluated_elements)`` before unblinding anything.
    """
    _check_mode(mode)
    n = len(inputs)
    if len(blinds) != n or len(evaluated_elements) != n:
        raise ValueError("inputs, blinds and evaluated elements differ in number")
    # Shape and identity checks here; the scalar multiplications below decode (validate) each element.
    evaluated = [_element_shape(d, f"evaluated element {i}") for i, d in enumerate(evaluated_elements)]
    if mode == MODE_VOPRF:
        if proof is None or pk is None or blinded is None:
            raise ProofError(
                "verifiable mode needs the proof, the server's public key and the blinded elements"
            )
        if len(blinded) != n:
            raise ValueError("blinded and evaluated elements differ in number")
        verify_proof(_GENERATOR, pk, blinded, evaluated, proof, mode)
    elif proof is not None:
        raise ValueError("mode 0 (OPRF) has no proof; use mode 1 to verify one")
    outputs = []
    for i, (x, r, d) in enumerate(zip(inputs, blinds, evaluated, strict=True)):
        data = _check_input(x)
        r_inv = _na.crypto_core_ristretto255_scalar_invert(_scalar(r, f"blind {i}"))
        outputs.append(_finalize_hash(data, _mul(r_inv, d, f"evaluated element {i}")))
    return outputs


# --- server -------------------------------------------------------------------------------------------


def blind_evaluate(
    sk: bytes,
    blinded_elements: Sequence[bytes],
    mode: int = MODE_VOPRF,
    *,
    pk: bytes | None = None,
    proof_random: bytes | None = None,
) -> tuple[list[bytes], bytes | None]:
    """RFC 9497 BlindEvaluate over a batch: ``(evaluated_elements, proof)``.

    Mode 1 returns ONE batched DLEQ proof (RFC 9497 §2.2 GenerateProof with ComputeCompositesFast)
    that every ``evaluated[i] = sk * blinded[i]`` under ``pk``; mode 0 returns ``None`` as proof.
    A malformed blinded element (wrong length, not a canonical ristretto255 encoding, the identity)
    raises :class:`InvalidElementError` naming its index, before any answer is produced.
    ``pk`` (else derived from ``sk``) and ``proof_random`` (the proof nonce; tests only) are optional.
    """
    _check_mode(mode)
    k = _scalar(sk, "secret key")
    m = len(blinded_elements)
    if m > _MAX_BATCH:
        raise ValueError(f"a batch holds at most {_MAX_BATCH} elements, not {m}")
    blinded = [_element_shape(c, f"blinded element {i}") for i, c in enumerate(blinded_elements)]
    # The scalar multiplication decodes (validates) each element: no separate is_valid_point pass.
    evaluated = [_mul(k, c, f"blinded element {i}") for i, c in enumerate(blinded)]
    if mode == MODE_OPRF:
        return evaluated, None
    if m == 0:
        raise ValueError("an empty batch has nothing to prove")
    if pk is None:
        pk = _na.crypto_scalarmult_ristretto255_base(k)
    return evaluated, _generate_proof(k, _GENERATOR, pk, blinded, evaluated, mode, proof_random)


def evaluate(sk: bytes, input: bytes, mode: int = MODE_VOPRF) -> bytes:
    """RFC 9497 Evaluate: the server's direct 64-byte output for an input it knows (its own entries);
    equal to what a client obtains for the same input through blind → blind_evaluate → finalize."""
    k = _scalar(sk, "secret key")
    data = _check_input(input)
    return _finalize_hash(data, _na.crypto_scalarmult_ristretto255(k, _h2g(data, _check_mode(mode))))


# --- DLEQ proofs (RFC 9497 §2.2) ----------------------------------------------------------------------


def _composite_seed(b: bytes, mode: int) -> bytes:
    return hashlib.sha512(_lp(b) + _lp(_SEED_DST[mode])).digest()


def _composite_scalars(b: bytes, c: Sequence[bytes], d: Sequence[bytes], mode: int) -> list[bytes]:
    prefix = _lp(_composite_seed(b, mode))
    dst_prime = _SCALAR_DST_PRIME[mode]
    return [
        _h2s(prefix + i.to_bytes(2, "big") + _lp(ci) + _lp(di) + b"Composite", dst_prime)
        for i, (ci, di) in enumerate(zip(c, d, strict=True))
    ]


def _linear_combination(scalars: Sequence[bytes], elements: Sequence[bytes], what: str) -> bytes:
    """sum s_i * e_i (public scalars and elements); a malformed e_i raises InvalidElementError."""
    acc = _IDENTITY
    for i, (s, e) in enumerate(zip(scalars, elements, strict=True)):
        acc = _add(acc, _mul(s, e, f"{what} {i}"))
    return acc


def _challenge(b: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes, mode: int) -> bytes:
    transcript = _lp(b) + _lp(m) + _lp(z) + _lp(t2) + _lp(t3) + b"Challenge"
    return _h2s(transcript, _SCALAR_DST_PRIME[mode])


def _generate_proof(
    k: bytes, a: bytes, b: bytes, c: Sequence[bytes], d: Sequence[bytes], mode: int, r: bytes | None
) -> bytes:
    # ComputeCompositesFast: M = sum d_i * C_i, Z = k * M.
    m_elt = _linear_combination(_composite_scalars(b, c, d, mode), c, "blinded element")
    z_elt = _na.crypto_scalarmult_ristretto255(k, m_elt)
    r = _na.crypto_core_ristretto255_scalar_random() if r is None else _scalar(r, "proof random scalar")
    t2 = (
        _na.crypto_scalarmult_ristretto255_base(r)
        if a == _GENERATOR
        else _na.crypto_scalarmult_ristretto255(r, a)
    )
    t3 = _na.crypto_scalarmult_ristretto255(r, m_elt)
    ch = _challenge(b, m_elt, z_elt, t2, t3, mode)
    s = _na.crypto_core_ristretto255_scalar_sub(r, _na.crypto_core_ristretto255_scalar_mul(ch, k))
    return ch + s


def generate_proof(
    k: bytes,
    a: bytes,
    b: bytes,
    c: Sequence[bytes],
    d: Sequence[bytes],
    mode: int = MODE_VOPRF,
    *,
    proof_random: bytes | None = None,
) -> bytes:
    """RFC 9497 GenerateProof: a 64-byte ``c || s`` proof that ``b = k*a`` and ``d[i] = k*c[i]`` for all i."""
    _check_mode(mode)
    k = _scalar(k, "secret key")
    a, b = _element(a, "A"), _element(b, "B")
    c = [_element(x, f"C[{i}]") for i, x in enumerate(c)]
    d = [_element(x, f"D[{i}]") for i, x in enumerate(d)]
    if not c or len(c) != len(d) or len(c) > _MAX_BATCH:
        raise ValueError("C and D must be non-empty lists of the same length (at most 65535)")
    return _generate_proof(k, a, b, c, d, mode, proof_random)


def verify_proof(
    a: bytes, b: bytes, c: Sequence[bytes], d: Sequence[bytes], proof: bytes, mode: int = MODE_VOPRF
) -> None:
    """RFC 9497 VerifyProof (with ComputeComposites). Returns None, or raises :class:`ProofError`
    (or :class:`InvalidElementError` for a malformed element)."""
    _check_mode(mode)
    a = _element(a, "A")
    b = _element(b, "public key")
    # Shape and identity checks here; the composites' scalar multiplications decode each element.
    c = [_element_shape(x, f"blinded element {i}") for i, x in enumerate(c)]
    d = [_element_shape(x, f"evaluated element {i}") for i, x in enumerate(d)]
    if not c or len(c) != len(d) or len(c) > _MAX_BATCH:
        raise ValueError("blinded and evaluated elements must be non-empty lists of the same length")
    if not isinstance(proof, bytes | bytearray | memoryview) or len(proof) != PROOF_BYTES:
        raise ProofError(f"a proof is {PROOF_BYTES} bytes")
    proof = bytes(proof)
    try:
        ch = _scalar(proof[:SCALAR_BYTES], "proof challenge", nonzero=False)
        s = _scalar(proof[SCALAR_BYTES:], "proof response", nonzero=False)
        ds = _composite_scalars(b, c, d, mode)
        m_elt = _linear_combination(ds, c, "blinded element")
        z_elt = _linear_combination(ds, d, "evaluated element")
        s_a = (
            _na.crypto_scalarmult_ristretto255_base(s)
            if a == _GENERATOR
            else _na.crypto_scalarmult_ristretto255(s, a)
        )
        t2 = _add(s_a, _na.crypto_scalarmult_ristretto255(ch, b))
        t3 = _add(_na.crypto_scalarmult_ristretto255(s, m_elt), _na.crypto_scalarmult_ristretto255(ch, z_elt))
    except InvalidElementError:
        raise
    except ValueError:
        # A zero or non-canonical c or s, or a composite that collapsed to the identity: libsodium refuses
        # such operands, and no valid proof contains them.
        raise ProofError("malformed proof") from None
    if not hmac.compare_digest(_challenge(b, m_elt, z_elt, t2, t3, mode), ch):
        raise ProofError(
            "proof does not verify: the elements were not evaluated with the key of this public key "
            "(wrong key) or were altered"
        )


# --- tags ---------------------------------------------------------------------------------------------

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"key id must match {_KEY_ID.pattern}, not {key_id!r}")
    return key_id


def tag(key_id: str, output: bytes) -> str:
    """``key_id + ":" + base64url(output[:32])`` without padding (see the module doc)."""
    if len(output) != OUTPUT_BYTES:
        raise ValueError(f"an OPRF output is {OUTPUT_BYTES} bytes")
    return (
        _check_key_id(key_id)
        + ":"
        + base64.urlsafe_b64encode(bytes(output[:TAG_BYTES])).rstrip(b"=").decode()
    )


def parse_tag(value: str) -> tuple[str, bytes]:
    """Split a tag into ``(key_id, 32 tag bytes)``; ``ValueError`` if it is not one."""
    key_id, sep, body = value.partition(":")
    if not sep or len(body) != 43:
        raise ValueError(f"not a tag: {value!r}")
    _check_key_id(key_id)
    try:
        raw = base64.urlsafe_b64decode(body + "=")
    except ValueError:
        raise ValueError(f"not a tag: {value!r}") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != body:  # canonical form only
        raise ValueError(f"not a tag: {value!r}")
    return key_id, raw


# --- key ring -----------------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("use an aware datetime")
    return now


@dataclass(frozen=True, eq=False)
class OPRFKey:
    """One platform key. ``active_until`` is None while the key is current (or otherwise open-ended),
    else the end of its rotation overlap window."""

    key_id: str
    sk: bytes = field(repr=False)
    pk: bytes
    mode: int = MODE_VOPRF
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    active_until: datetime | None = None

    def active(self, now: datetime | None = None) -> bool:
        return self.active_until is None or _now(now) < self.active_until

    def evaluate(self, input: bytes) -> bytes:
        return evaluate(self.sk, input, self.mode)

    def tag(self, input: bytes) -> str:
        return tag(self.key_id, evaluate(self.sk, input, self.mode))

    def blind_evaluate(self, blinded_elements: Sequence[bytes]) -> tuple[list[bytes], bytes | None]:
        return blind_evaluate(self.sk, blinded_elements, self.mode, pk=self.pk)


class KeyRing:
    """The platform's OPRF keys by id: one current key plus keys still inside their rotation overlap.

    Mutations take a lock; reads see a consistent snapshot. Key storage (where ``sk`` lives at rest)
    is the caller's concern: build a ring from stored keys with :meth:`add`.
    """

    def __init__(self, mode: int = MODE_VOPRF) -> None:
        self.mode = _check_mode(mode)
        self._keys: dict[str, OPRFKey] = {}
        self._current: str | None = None
        self._lock = threading.Lock()

    # building
    def add(
        self,
        key_id: str,
        sk: bytes,
        *,
        current: bool = True,
        active_until: datetime | None = None,
        created_at: datetime | None = None,
    ) -> OPRFKey:
        """Add a key (from storage); ``current`` makes it the key new evaluations and tags use."""
        key_id = _check_key_id(key_id)
        sk = _scalar(sk, "secret key")
        key = OPRFKey(key_id, sk, public_key(sk), self.mode, created_at or datetime.now(UTC), active_until)
        with self._lock:
            if key_id in self._keys:
                raise ValueError(f"key id {key_id!r} is already in the ring")
            self._keys[key_id] = key
            if current:
                self._current = key_id
        return key

    def generate(self, key_id: str, **kwargs) -> OPRFKey:
        """Add a fresh random key."""
        return self.add(key_id, generate_key_pair(self.mode)[0], **kwargs)

    def derive(self, key_id: str, seed: bytes, info: bytes, **kwargs) -> OPRFKey:
        """Add a key from DeriveKeyPair(seed, info)."""
        return self.add(key_id, derive_key_pair(seed, info, self.mode)[0], **kwargs)

    def rotate(
        self, new_key_id: str, *, overlap: timedelta, sk: bytes | None = None, now: datetime | None = None
    ) -> OPRFKey:
        """Make a new key (random unless ``sk``) current; the previous current key stays active, its
        tags published and its blinded evaluations answered, until ``now + overlap``."""
        if overlap < timedelta(0):
            raise ValueError("overlap must not be negative")
        now = _now(now)
        new = self.add(
            new_key_id, generate_key_pair(self.mode)[0] if sk is None else sk, current=False, created_at=now
        )
        with self._lock:
            old = self._current
            if old is not None:
                self._keys[old] = replace(self._keys[old], active_until=now + overlap)
            self._current = new.key_id
        return new

    def prune(self, now: datetime | None = None) -> list[str]:
        """Drop keys whose overlap window has ended; returns their ids."""
        now = _now(now)
        with self._lock:
            gone = [kid for kid, k in self._keys.items() if not k.active(now) and kid != self._current]
            for kid in gone:
                del self._keys[kid]
        return gone

    # reading
    @property
    def current(self) -> OPRFKey:
        with self._lock:
            if self._current is None:
                raise UnknownKeyError("the key ring holds no key")
            return self._keys[self._current]

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key_id: str, now: datetime | None = None) -> OPRFKey:
        """The active key ``key_id``: :class:`UnknownKeyError` if never held, :class:`RetiredKeyError`
        once its overlap window has ended."""
        with self._lock:
            key = self._keys.get(key_id)
        if key is None:
            raise UnknownKeyError(f"unknown OPRF key id {key_id!r}")
        if not key.active(now):
            raise RetiredKeyError(f"OPRF key {key_id!r} was retired at {key.active_until.isoformat()}")
        return key

    def active(self, now: datetime | None = None) -> list[OPRFKey]:
        """The keys whose tags are published now: the current key first, then any in overlap, newest first."""
        now = _now(now)
        with self._lock:
            keys = [k for k in self._keys.values() if k.active(now)]
            cur = self._current
        keys.sort(key=lambda k: (k.key_id != cur, -k.created_at.timestamp()))
        return keys

    def public_keys(self, now: datetime | None = None) -> dict[str, bytes]:
        """``{key_id: pk}`` of the active keys, for nodes to verify proofs with."""
        return {k.key_id: k.pk for k in self.active(now)}

    # using
    def tag(self, input: bytes, key_id: str | None = None, now: datetime | None = None) -> str:
        """The tag of ``input`` under one key (the current one unless named)."""
        key = self.current if key_id is None else self.get(key_id, now)
        return key.tag(input)

    def tags(self, input: bytes, now: datetime | None = None) -> list[str]:
        """The tags the platform publishes for its own entry ``input``: one per active key (two during a
        rotation overlap)."""
        return [k.tag(input) for k in self.active(now)]

    def blind_evaluate(
        self, blinded_elements: Sequence[bytes], key_id: str | None = None, now: datetime | None = None
    ) -> tuple[str, list[bytes], bytes | None]:
        """Answer a node's blinded batch under ``key_id`` (current unless named; a retired or unknown id is
        refused): ``(key_id, evaluated_elements, proof)``."""
        key = self.current if key_id is None else self.get(key_id, now)
        evaluated, proof = key.blind_evaluate(blinded_elements)
        return key.key_id, evaluated, proof
