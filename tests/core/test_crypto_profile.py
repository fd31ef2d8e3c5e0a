"""The crypto profile (#18): the standards' vectors, round trips under both profiles, refusals.

Vectors: SM3 from GB/T 32905-2016 Annex A; SM4 from GB/T 32907-2016 Annex A; SM4-GCM from RFC 8998
Appendix A.1; SM2 signatures from GB/T 32918.2-2016 Annex A (its example curve, ID ALICE123@YAHOO.COM)
and from GM/T 0003.5-2012 on the recommended curve sm2p256v1 (default ID 1234567812345678).
"""

from __future__ import annotations

import os

import gmssl_pyx
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmalg import ellipticcurve as gm_ec
from gmalg import sm2 as gm_sm2
from gmalg.sm3 import SM3 as PureSM3

from fanchaoxin.core import crypto
from fanchaoxin.core.crypto import (
    CRYPTO_PROFILES,
    BadMac,
    BadSignature,
    CryptoError,
    DecryptionFailed,
    SignatureEncodingError,
    UnknownProfile,
    WrongKeyError,
    profile,
)

GM = profile("gm")
INTL = profile("international")
MSG = b"message digest"

# GM/T 0003.5-2012 (sm2p256v1): key, signer ID, Z_A and signature (r, s) over "message digest"
REC_D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
REC_X = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
REC_Y = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
REC_PUBLIC = b"\x04" + REC_X.to_bytes(32, "big") + REC_Y.to_bytes(32, "big")
REC_ZA = bytes.fromhex("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
REC_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
REC_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA

# GB/T 32918.2-2016 Annex A: the example 256-bit prime curve (not sm2p256v1), ID ALICE123@YAHOO.COM
ANNEX = {
    "p": 0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    "a": 0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    "b": 0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    "gx": 0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    "gy": 0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
    "n": 0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
}
ANNEX_D = 0x128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263
ANNEX_P = (
    0x0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A,
    0x7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857,
)
ANNEX_ID = b"ALICE123@YAHOO.COM"
ANNEX_ZA = bytes.fromhex("F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A")
ANNEX_E = bytes.fromhex("B524F552CD82B8B028476E005C377FB19A87E6FC682D48BB5D42E3D9B9EFFE76")
ANNEX_R = 0x40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1
ANNEX_S = 0x6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7


@pytest.fixture(params=CRYPTO_PROFILES)
def p(request: pytest.FixtureRequest) -> crypto.Profile:
    return profile(request.param)


# --- the standards' vectors ---------------------------------------------------------------------------


def test_sm3_vectors_gbt_32905_annex_a() -> None:
    assert GM.hexdigest(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert GM.hexdigest(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    h = GM.hasher()
    for chunk in (b"abcd" * 5, b"abcd" * 11):  # incremental = one shot
        h.update(chunk)
    assert h.finalize() == GM.digest(b"abcd" * 16)


def test_sha256_vector() -> None:
    assert INTL.hexdigest(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert INTL.hasher().finalize() == INTL.digest(b"")


def test_sm4_block_gbt_32907_annex_a() -> None:
    # The profile uses SM4 in GCM only; the block cipher underneath is the same cryptography.SM4.
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (enc.update(key) + enc.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_gcm_rfc_8998_a1() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    nonce = bytes.fromhex("00001234567800000000ABCD")
    plain = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    expected = bytes.fromhex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"  # the tag
    )
    assert GM.aead_encrypt(key, nonce, plain, aad) == expected
    assert GM.aead_decrypt(key, nonce, expected, aad) == plain


def test_hmac_sm3_agrees_with_gmssl() -> None:
    # No annex vector for HMAC-SM3: two independent implementations (OpenSSL's, GmSSL's) must agree.
    key = bytes(range(32))
    assert GM.mac(key, b"abc") == gmssl_pyx.sm3_hmac(key, b"abc")


def test_sm2_verifies_gmt_0003_5_example() -> None:
    GM.verify(REC_PUBLIC, MSG, encode_dss_signature(REC_R, REC_S))  # default signer ID
    GM.verify(REC_PUBLIC, MSG, encode_dss_signature(REC_R, REC_S), user_id=b"1234567812345678")
    with pytest.raises(BadSignature):  # the ID is in Z_A: another ID, another digest
        GM.verify(REC_PUBLIC, MSG, encode_dss_signature(REC_R, REC_S), user_id=ANNEX_ID)
    with pytest.raises(BadSignature):
        GM.verify(REC_PUBLIC, MSG + b".", encode_dss_signature(REC_R, REC_S))


def test_sm2_z_a_is_the_published_one() -> None:
    # e = SM3(Z_A ‖ M) with the annex's Z_A verifies through GmSSL's digest entry point: the library's
    # Z_A for (default ID, this key) is the published one. The pure implementation computes it alike.
    e = GM.digest(REC_ZA + MSG)
    assert gmssl_pyx.sm2_verify_sm3_digest(REC_PUBLIC[1:], e, encode_dss_signature(REC_R, REC_S))
    pure = gm_sm2.SM2(pk=REC_PUBLIC, uid=crypto.SM2_DEFAULT_USER_ID)
    assert pure._core.entity_info(crypto.SM2_DEFAULT_USER_ID, (REC_X, REC_Y)) == REC_ZA


def test_sm2_gbt_32918_annex_a_example_curve() -> None:
    # GmSSL is fixed to sm2p256v1, so the annex's own curve runs on the pure-Python gmalg: this checks
    # the annex's Z_A, e and signature with ID ALICE123@YAHOO.COM, i.e. the user-ID handling itself.
    curve = gm_ec.ECDLP(ANNEX["p"], ANNEX["a"], ANNEX["b"], (ANNEX["gx"], ANNEX["gy"]), ANNEX["n"])
    core = gm_sm2.SM2Core(curve, PureSM3())
    assert core.generate_pk(ANNEX_D) == ANNEX_P
    z_a = core.entity_info(ANNEX_ID, ANNEX_P)
    assert z_a == ANNEX_ZA
    h = PureSM3()
    h.update(z_a + MSG)
    assert h.value() == ANNEX_E
    assert core.verify(MSG, ANNEX_R, ANNEX_S, ANNEX_ID, ANNEX_P)
    assert not core.verify(MSG, ANNEX_R, ANNEX_S, crypto.SM2_DEFAULT_USER_ID, ANNEX_P)


def test_sm2_signer_id_interoperates_with_an_independent_implementation() -> None:
    key = GM.load_signing_key(REC_D, REC_PUBLIC, user_id=ANNEX_ID)
    signature = GM.sign(key, MSG)
    r, s = decode_dss_signature(signature)
    pure = gm_sm2.SM2(pk=REC_PUBLIC, uid=ANNEX_ID)
    assert pure.verify(MSG, r.to_bytes(32, "big"), s.to_bytes(32, "big"))
    r2, s2 = gm_sm2.SM2(sk=REC_D, uid=ANNEX_ID).sign(b"other way round")
    GM.verify(
        REC_PUBLIC,
        b"other way round",
        encode_dss_signature(int.from_bytes(r2), int.from_bytes(s2)),
        user_id=ANNEX_ID,
    )


# --- round trips, both profiles -----------------------------------------------------------------------


def test_profiles_by_name() -> None:
    assert CRYPTO_PROFILES == ("international", "gm")
    assert [profile(n).name for n in CRYPTO_PROFILES] == list(CRYPTO_PROFILES)
    with pytest.raises(UnknownProfile, match="expected one of international, gm"):
        profile("sm")
    assert issubclass(UnknownProfile, ValueError)


def test_digest_and_mac(p: crypto.Profile) -> None:
    assert len(p.digest(b"x")) == p.digest_size == 32
    assert p.hexdigest(b"x") == p.digest(b"x").hex()
    key = os.urandom(p.mac_key_size)
    tag = p.mac(key, b"data")
    assert len(tag) == 32 and tag != p.digest(b"data")
    p.verify_mac(key, b"data", tag)
    with pytest.raises(BadMac):
        p.verify_mac(key, b"datA", tag)
    with pytest.raises(WrongKeyError, match="at least 32 bytes"):
        p.mac(b"short", b"data")


def test_profiles_differ() -> None:
    assert GM.digest(b"abc") != INTL.digest(b"abc")
    key = bytes(32)
    assert GM.mac(key, b"abc") != INTL.mac(key, b"abc")


def test_sign_verify_round_trip(p: crypto.Profile) -> None:
    key = p.generate_signing_key()
    public = p.public_key_of(key)
    assert len(public) == p.public_key_size
    signature = p.sign(key, b"snapshot 42")
    p.verify(public, b"snapshot 42", signature)
    with pytest.raises(BadSignature):
        p.verify(public, b"snapshot 43", signature)
    with pytest.raises(BadSignature):
        p.verify(p.public_key_of(p.generate_signing_key()), b"snapshot 42", signature)
    reloaded = p.load_signing_key(key.private_bytes(), public)
    p.verify(public, b"again", p.sign(reloaded, b"again"))
    assert key.private_bytes().hex() not in repr(key)


def test_aead_round_trip_and_tampering(p: crypto.Profile) -> None:
    key, nonce = os.urandom(p.aead_key_size), os.urandom(p.aead_nonce_size)
    sealed = p.aead_encrypt(key, nonce, "居民身份证号".encode(), b"subjects.id_number")
    assert len(sealed) == len("居民身份证号".encode()) + crypto.TAG_BYTES
    assert p.aead_decrypt(key, nonce, sealed, b"subjects.id_number") == "居民身份证号".encode()
    with pytest.raises(DecryptionFailed):  # moved to another column
        p.aead_decrypt(key, nonce, sealed, b"subjects.phone")
    flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
    with pytest.raises(DecryptionFailed):
        p.aead_decrypt(key, nonce, flipped, b"subjects.id_number")
    with pytest.raises(DecryptionFailed):
        p.aead_decrypt(os.urandom(p.aead_key_size), nonce, sealed, b"subjects.id_number")
    with pytest.raises(DecryptionFailed):
        p.aead_decrypt(key, nonce, sealed[:5], b"subjects.id_number")


def test_aead_key_and_nonce_sizes(p: crypto.Profile) -> None:
    other = 16 if p.aead_key_size == 32 else 32  # the other profile's key size
    with pytest.raises(WrongKeyError, match=f"has {p.aead_key_size} bytes, got {other}"):
        p.aead_encrypt(bytes(other), bytes(12), b"x", b"")
    with pytest.raises(CryptoError, match="GCM nonce"):
        p.aead_encrypt(bytes(p.aead_key_size), bytes(8), b"x", b"")


# --- bad input ----------------------------------------------------------------------------------------


def test_a_key_of_the_other_profile_is_refused() -> None:
    ed, sm2 = INTL.generate_signing_key(), GM.generate_signing_key()
    with pytest.raises(WrongKeyError, match="gm profile signs with sm2, this key is ed25519"):
        GM.sign(ed, b"x")
    with pytest.raises(WrongKeyError, match="international profile signs with ed25519, this key is sm2"):
        INTL.sign(sm2, b"x")
    with pytest.raises(WrongKeyError, match="32 bytes is an Ed25519 key"):
        GM.verify(ed.public_bytes(), b"x", GM.sign(sm2, b"x"))
    with pytest.raises(WrongKeyError, match="looks like an SM2 point"):
        INTL.verify(sm2.public_bytes(), b"x", INTL.sign(ed, b"x"))
    with pytest.raises(WrongKeyError, match="signing key handle"):
        GM.sign(b"\x01" * 32, b"x")


def test_bad_sm2_keys() -> None:
    off_curve = REC_PUBLIC[:-1] + bytes([REC_PUBLIC[-1] ^ 1])
    with pytest.raises(WrongKeyError, match="not a point of the curve"):
        GM.verify(off_curve, MSG, encode_dss_signature(REC_R, REC_S))
    with pytest.raises(WrongKeyError, match="65 bytes"):
        GM.verify(REC_PUBLIC[1:], MSG, encode_dss_signature(REC_R, REC_S))
    with pytest.raises(WrongKeyError, match="public point"):
        GM.load_signing_key(REC_D)
    other = GM.generate_signing_key().public_bytes()
    with pytest.raises(WrongKeyError, match="not the one of this private key"):
        GM.load_signing_key(REC_D, other)
    with pytest.raises(WrongKeyError, match="not the one of this seed"):
        INTL.load_signing_key(bytes(32), bytes(32))
    with pytest.raises(WrongKeyError, match="has 32 bytes, got 31"):
        GM.load_signing_key(REC_D[1:], REC_PUBLIC)
    with pytest.raises(CryptoError, match="signer ID"):
        GM.verify(REC_PUBLIC, MSG, encode_dss_signature(REC_R, REC_S), user_id=b"")
    with pytest.raises(CryptoError, match="no signer ID"):
        INTL.verify(bytes(32), MSG, bytes(64), user_id=b"ALICE")


def test_signature_in_the_wrong_encoding() -> None:
    raw = REC_R.to_bytes(32, "big") + REC_S.to_bytes(32, "big")
    with pytest.raises(SignatureEncodingError, match=r"raw r ‖ s\? encode it as DER"):
        GM.verify(REC_PUBLIC, MSG, raw)
    der = encode_dss_signature(REC_R, REC_S)
    with pytest.raises(SignatureEncodingError, match="not canonical DER"):
        GM.verify(REC_PUBLIC, MSG, der + b"\x00")  # trailing byte: a second encoding of one signature
    ed = INTL.generate_signing_key()
    with pytest.raises(SignatureEncodingError, match="parses as DER"):
        INTL.verify(ed.public_bytes(), MSG, der)
    with pytest.raises(SignatureEncodingError, match="64 raw bytes"):
        INTL.verify(ed.public_bytes(), MSG, INTL.sign(ed, MSG)[:63])
