"""The crypto profile (密码配置): one module for every digest, keyed digest, signature and AEAD (#18).

A platform runs under one of two profiles, chosen when it is created:

* ``international``: SHA-256, HMAC-SHA256, Ed25519 (RFC 8032, raw 64-byte signatures) and AES-256-GCM;
* ``gm`` (商用密码, 国密): SM3 (GB/T 32905-2016), HMAC-SM3, SM2 signatures with SM3 (GB/T 32918.2-2016, the
  signer's distinguishing ID in Z_A, default ``1234567812345678`` per GM/T 0009-2012) and SM4-GCM
  (GB/T 32907-2016 in GCM, as RFC 8998 uses it).

No cipher code here: SHA-256, HMAC, Ed25519, AES-GCM, SM3, HMAC-SM3 and SM4-GCM are ``cryptography``'s
(OpenSSL); SM2 is ``gmssl_pyx``, the C extension over GmSSL 3.2 (chosen in #18 against the standards'
vectors; ``cryptography`` exposes no SM2 curve). ``docs/crypto.md`` lists what each place of the platform
uses under each profile.

Signing keys are handles (:class:`SigningKey`), not bytes: a profile signs by calling ``key.sign``, so
a key held in a 密码机 (HSM) behind PKCS#11 is another implementation of the same protocol and never
enters the process (GB/T 39786-2021 level 3 expects keys in a certified module).

Every failure is a :class:`CryptoError` (a ``ValueError``) whose message says what was expected: an
unknown profile, a key of the other profile's algorithm, a signature in the wrong encoding, a signature
or an authentication tag that does not verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac as std_hmac
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

import gmssl_pyx
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from fanchaoxin.core.settings import get_settings

CRYPTO_PROFILES: Final = ("international", "gm")

# GM/T 0009-2012 §10: the signer's ID when the parties agreed on none (ENTL = 128 bits).
SM2_DEFAULT_USER_ID: Final = b"1234567812345678"
# The ID's length goes into Z_A as a 16-bit count of bits (GB/T 32918.2 §5.5).
_SM2_MAX_USER_ID = 8191

NONCE_BYTES: Final = 12  # GCM's 96-bit nonce, for both AES-GCM and SM4-GCM (RFC 8998 §3.1)
TAG_BYTES: Final = 16  # GCM's full 128-bit tag; never truncated


class CryptoError(ValueError):
    """A cryptographic input was refused; the message says what was expected (密码运算失败)."""


class UnknownProfile(CryptoError):
    pass


class WrongKeyError(CryptoError):
    """A key of the other profile (Ed25519 under ``gm``, SM2 under ``international``) or of a wrong size."""


class SignatureEncodingError(CryptoError):
    """A signature not in the profile's encoding (Ed25519: 64 raw bytes; SM2: DER ``SEQUENCE {r, s}``)."""


class BadSignature(CryptoError):
    """A well-formed signature that does not verify (签名验证失败)."""


class BadMac(CryptoError):
    """A keyed digest that does not match."""


class DecryptionFailed(CryptoError):
    """The AEAD tag did not verify: wrong key, nonce or associated data, or tampered ciphertext."""


@runtime_checkable
class SigningKey(Protocol):
    """A private signing key (签名私钥) as a handle: in this process, or in a 密码机 through PKCS#11.

    ``algorithm`` is ``"ed25519"`` or ``"sm2"``; ``public_bytes`` is what receivers pin; ``sign`` returns
    the signature in the profile's encoding. A module-held key implements these three and nothing more.
    """

    @property
    def algorithm(self) -> str: ...

    def public_bytes(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True, repr=False)
class Ed25519SigningKey:
    """An Ed25519 key held in the process (the 32-byte seed, RFC 8032)."""

    _key: Ed25519PrivateKey
    algorithm: str = field(default="ed25519", init=False)

    def public_bytes(self) -> bytes:
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def private_bytes(self) -> bytes:
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:  # never the secret, in logs or tracebacks
        return f"Ed25519SigningKey(public={self.public_bytes().hex()[:16]}…)"


@dataclass(frozen=True, repr=False)
class Sm2SigningKey:
    """An SM2 key held in the process: the 32-byte scalar d and its public point ``04 ‖ x ‖ y``.

    ``user_id`` is the signer's distinguishing ID hashed into Z_A (用户身份标识 ID_A); a verifier must
    use the same one.
    """

    _secret: bytes
    _public: bytes
    user_id: bytes = SM2_DEFAULT_USER_ID
    algorithm: str = field(default="sm2", init=False)

    def public_bytes(self) -> bytes:
        return self._public

    def private_bytes(self) -> bytes:
        return self._secret

    def sign(self, data: bytes) -> bytes:
        # GmSSL takes the public key as x ‖ y (64 bytes) and checks that it belongs to the scalar.
        return bytes(gmssl_pyx.sm2_sign(self._secret, self._public[1:], data, signer_id=self.user_id))

    def __repr__(self) -> str:
        return f"Sm2SigningKey(public={self._public.hex()[:18]}…, user_id={self.user_id!r})"


class Profile(ABC):
    """What every slice calls to hash, MAC, sign and encrypt; nothing else in the code names an algorithm.

    Sizes in bytes. Digests and MACs are 32 bytes under both profiles, so stored hex columns keep
    their width (64 characters).
    """

    name: str
    hash_algorithm: str
    mac_algorithm: str
    signature_algorithm: str
    signature_encoding: str
    aead_algorithm: str
    digest_size: int = 32
    mac_key_size: int = 32  # HMAC's key as long as its output (RFC 2104 §3)
    aead_key_size: int
    aead_nonce_size: int = NONCE_BYTES
    public_key_size: int

    # --- digests (摘要) ----------------------------------------------------------------------------

    @abstractmethod
    def _hash(self) -> hashes.HashAlgorithm: ...

    def digest(self, data: bytes) -> bytes:
        h = hashes.Hash(self._hash())
        h.update(data)
        return h.finalize()

    def hexdigest(self, data: bytes) -> str:
        return self.digest(data).hex()

    def hasher(self) -> hashes.Hash:
        """An incremental digest (``update``, ``copy``, ``finalize``) for files and chains."""
        return hashes.Hash(self._hash())

    # --- keyed digests (消息鉴别码) ---------------------------------------------------------------

    def mac(self, key: bytes, data: bytes) -> bytes:
        _check_len(key, self.mac_key_size, f"an {self.mac_algorithm} key", key=True, at_least=True)
        h = c_hmac.HMAC(key, self._hash())
        h.update(data)
        return h.finalize()

    def mac_hasher(self, key: bytes) -> c_hmac.HMAC:
        """An incremental keyed digest (``update``, ``copy``, ``finalize``): keyed once, then copied per
        value, which halves the cost of a fresh MAC on short inputs (blind indexes)."""
        _check_len(key, self.mac_key_size, f"an {self.mac_algorithm} key", key=True, at_least=True)
        return c_hmac.HMAC(key, self._hash())

    def verify_mac(self, key: bytes, data: bytes, tag: bytes) -> None:
        # compare_digest: the time taken does not tell how many leading bytes matched
        if not std_hmac.compare_digest(self.mac(key, data), tag):
            raise BadMac(f"{self.mac_algorithm}: the tag does not match")

    # --- signatures (数字签名) --------------------------------------------------------------------

    @abstractmethod
    def generate_signing_key(self) -> SigningKey: ...

    @abstractmethod
    def load_signing_key(self, private: bytes, public: bytes | None = None) -> SigningKey:
        """The in-process key from its stored bytes: the 32-byte Ed25519 seed (``public``, if given, is
        checked), or the 32-byte SM2 scalar with its 65-byte public point (required)."""

    def public_key_of(self, key: SigningKey) -> bytes:
        self._check_key(key)
        return key.public_bytes()

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        self._check_key(key)
        return key.sign(data)

    @abstractmethod
    def verify(
        self, public_key: bytes, data: bytes, signature: bytes, *, user_id: bytes | None = None
    ) -> None:
        """Return if ``signature`` over ``data`` verifies under ``public_key``; raise :class:`CryptoError`."""

    def _check_key(self, key: SigningKey) -> None:
        if not isinstance(key, SigningKey):
            raise WrongKeyError(f"{self.name}: expected a signing key handle, got {type(key).__name__}")
        if key.algorithm != self.signature_algorithm:
            raise WrongKeyError(
                f"the {self.name} profile signs with {self.signature_algorithm}, "
                f"this key is {key.algorithm}: a key of the other profile"
            )

    # --- authenticated encryption (认证加密) ------------------------------------------------------

    @abstractmethod
    def aead_encrypt(self, key: bytes, nonce: bytes, plain: bytes, associated: bytes) -> bytes:
        """``ciphertext ‖ 16-byte tag``. The nonce must never repeat under one key (a fresh random one)."""

    @abstractmethod
    def aead_decrypt(self, key: bytes, nonce: bytes, sealed: bytes, associated: bytes) -> bytes:
        """The plaintext, or :class:`DecryptionFailed`."""

    def __repr__(self) -> str:
        return f"profile({self.name!r})"


class International(Profile):
    name = "international"
    hash_algorithm = "SHA-256"
    mac_algorithm = "HMAC-SHA256"
    signature_algorithm = "ed25519"
    signature_encoding = "raw 64 bytes (RFC 8032)"
    aead_algorithm = "AES-256-GCM"
    aead_key_size = 32
    public_key_size = 32

    def _hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA256()

    def digest(self, data: bytes) -> bytes:
        # hashlib's SHA-256 is the same OpenSSL code without cryptography's per-call object (≈2× faster on
        # short inputs, which the audit chain hashes by the million)
        return hashlib.sha256(data).digest()

    def hexdigest(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def generate_signing_key(self) -> SigningKey:
        return Ed25519SigningKey(Ed25519PrivateKey.generate())

    def load_signing_key(self, private: bytes, public: bytes | None = None) -> SigningKey:
        _check_len(private, 32, "an Ed25519 private key (seed)", key=True)
        key = Ed25519SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(private)))
        if public is not None and public != key.public_bytes():
            raise WrongKeyError("the Ed25519 public key is not the one of this seed")
        return key

    def verify(
        self, public_key: bytes, data: bytes, signature: bytes, *, user_id: bytes | None = None
    ) -> None:
        if user_id is not None:
            raise CryptoError("Ed25519 has no signer ID: user_id is for SM2 (the gm profile) only")
        if len(public_key) == 65 and public_key[:1] == b"\x04":
            raise WrongKeyError(
                "Ed25519 public keys have 32 bytes; this looks like an SM2 point (04 ‖ x ‖ y)"
            )
        _check_len(public_key, 32, "an Ed25519 public key", key=True)
        if len(signature) != 64:
            hint = "; it parses as DER (SM2/ECDSA), not Ed25519" if _is_der(signature) else ""
            raise SignatureEncodingError(
                f"an Ed25519 signature is 64 raw bytes (R ‖ S), got {len(signature)}{hint}"
            )
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
        except InvalidSignature:
            raise BadSignature("Ed25519: the signature does not verify") from None

    def aead_encrypt(self, key: bytes, nonce: bytes, plain: bytes, associated: bytes) -> bytes:
        _check_len(key, 32, "an AES-256 key", key=True)
        _check_len(nonce, NONCE_BYTES, "a GCM nonce")
        return AESGCM(key).encrypt(nonce, plain, associated)

    def aead_decrypt(self, key: bytes, nonce: bytes, sealed: bytes, associated: bytes) -> bytes:
        _check_len(key, 32, "an AES-256 key", key=True)
        _check_len(nonce, NONCE_BYTES, "a GCM nonce")
        try:
            return AESGCM(key).decrypt(nonce, sealed, associated)
        except InvalidTag:
            raise DecryptionFailed("AES-256-GCM: the tag does not verify") from None


def _hashlib_sm3() -> hashlib._Hash | None:
    try:
        return hashlib.new("sm3")
    except ValueError:  # an OpenSSL built without SM3: `cryptography`'s, which has it
        return None


_SM3_BASE = _hashlib_sm3()


class Gm(Profile):
    """The commercial-cryptography profile (国密): SM3, HMAC-SM3, SM2 (DER signatures), SM4-GCM."""

    name = "gm"
    hash_algorithm = "SM3"
    mac_algorithm = "HMAC-SM3"
    signature_algorithm = "sm2"
    # DER SEQUENCE {r INTEGER, s INTEGER}: GM/T 0009-2012 §7.3 (SM2Signature) and what GmSSL, Tongsuo,
    # OpenSSL, X.509 and CMS/GM/T 0010 carry; a raw r ‖ s is refused with a message that says so.
    signature_encoding = "DER SEQUENCE {r, s} (GM/T 0009)"
    aead_algorithm = "SM4-GCM"
    aead_key_size = 16  # SM4 has one key size, 128 bits
    public_key_size = 65  # uncompressed point 04 ‖ x ‖ y (GM/T 0009 §6)

    def _hash(self) -> hashes.HashAlgorithm:
        return hashes.SM3()

    def digest(self, data: bytes) -> bytes:
        # The same OpenSSL SM3 through hashlib when it offers it, copied from one made once: ≈3× cheaper
        # than a new `cryptography` Hash per call, which the audit chain pays per event
        if _SM3_BASE is None:
            return super().digest(data)
        h = _SM3_BASE.copy()
        h.update(data)
        return h.digest()

    def hexdigest(self, data: bytes) -> str:
        return self.digest(data).hex()

    def generate_signing_key(self) -> SigningKey:
        public, secret = gmssl_pyx.sm2_key_generate()
        return Sm2SigningKey(bytes(secret), b"\x04" + bytes(public))

    def load_signing_key(
        self, private: bytes, public: bytes | None = None, *, user_id: bytes = SM2_DEFAULT_USER_ID
    ) -> SigningKey:
        _check_len(private, 32, "an SM2 private key (the scalar d)", key=True)
        _check_user_id(user_id)
        if public is None:
            # gmssl_pyx has no d → d·G of its own, and curve arithmetic of ours is out of the question
            raise WrongKeyError("an SM2 key is stored with its public point (04 ‖ x ‖ y) beside the scalar")
        _check_sm2_point(public)
        key = Sm2SigningKey(bytes(private), bytes(public), user_id)
        # GmSSL signs with the point it derives from d and ignores the one it is given, so a stored point
        # that is not d·G would sign things nobody can verify against it: prove the pair once, at load.
        probe = b"fcx key pair check"
        try:
            self.verify(key.public_bytes(), probe, key.sign(probe), user_id=user_id)
        except (BadSignature, gmssl_pyx.InvalidValueError):
            raise WrongKeyError("the SM2 public point is not the one of this private key") from None
        return key

    def verify(
        self, public_key: bytes, data: bytes, signature: bytes, *, user_id: bytes | None = None
    ) -> None:
        uid = SM2_DEFAULT_USER_ID if user_id is None else user_id
        _check_user_id(uid)
        _check_sm2_point(public_key)
        _check_sm2_der(signature)
        try:
            ok = gmssl_pyx.sm2_verify(bytes(public_key[1:]), data, bytes(signature), signer_id=uid)
        except gmssl_pyx.InvalidValueError:
            # GmSSL refuses a point that is not on the curve before it looks at the signature
            raise WrongKeyError("the SM2 public key is not a point of the curve sm2p256v1") from None
        if not ok:
            raise BadSignature("SM2: the signature does not verify (data, key or signer ID differ)")

    def aead_encrypt(self, key: bytes, nonce: bytes, plain: bytes, associated: bytes) -> bytes:
        _check_len(key, 16, "an SM4 key", key=True)
        _check_len(nonce, NONCE_BYTES, "a GCM nonce")
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(associated)
        sealed = enc.update(plain) + enc.finalize()
        return sealed + enc.tag

    def aead_decrypt(self, key: bytes, nonce: bytes, sealed: bytes, associated: bytes) -> bytes:
        _check_len(key, 16, "an SM4 key", key=True)
        _check_len(nonce, NONCE_BYTES, "a GCM nonce")
        if len(sealed) < TAG_BYTES:
            raise DecryptionFailed("SM4-GCM: shorter than its 16-byte tag")
        body, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
        dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(associated)
        try:
            return dec.update(body) + dec.finalize()
        except InvalidTag:
            raise DecryptionFailed("SM4-GCM: the tag does not verify") from None


_PROFILES: dict[str, Profile] = {"international": International(), "gm": Gm()}


def active() -> Profile:
    """The platform's profile (``FCX_CRYPTO_PROFILE``, checked against the database's record at start-up
    by :mod:`core.crypto_record`). What every slice calls."""
    return _PROFILES[get_settings().crypto_profile]


def profile_of_public_key(public_key: bytes) -> Profile:
    """The profile whose signature algorithm a stored public key belongs to: a 32-byte Ed25519 key or a
    65-byte uncompressed SM2 point. For verifying what was signed before a profile change (old audit
    checkpoints, old receipts); what is signed now is checked against :func:`active`."""
    if isinstance(public_key, bytes | bytearray) and len(public_key) == 32:
        return _PROFILES["international"]
    if isinstance(public_key, bytes | bytearray) and len(public_key) == 65 and public_key[0] == 4:
        return _PROFILES["gm"]
    raise WrongKeyError(
        "a public key must be a 32-byte Ed25519 key or a 65-byte uncompressed SM2 point "
        f"(got {len(public_key) if isinstance(public_key, bytes | bytearray) else type(public_key).__name__})"
    )


# --- stored hashes of high-entropy secrets (API keys, case access codes, session tokens) ------------------
#
# The columns hold 64 hex characters under either profile, without a mark of the profile. A hash is made
# under the active profile; a stored one is checked against every profile, so hashes made before a change
# of profile keep working (the secrets are random, 128 bits and more: a SHA-256 of one is as safe to keep
# as an SM3 of it); callers that can rewrite a matching old hash do so on use.


def secret_hash(secret: str | bytes) -> str:
    """The stored hash of a random secret: hex digest under the active profile (SHA-256 | SM3)."""
    return active().hexdigest(secret.encode() if isinstance(secret, str) else secret)


def secret_hashes(secret: str | bytes) -> list[str]:
    """The secret's hash under each profile, the active one first (look-ups by hash)."""
    data = secret.encode() if isinstance(secret, str) else secret
    first = active()
    return [first.hexdigest(data)] + [p.hexdigest(data) for p in _PROFILES.values() if p is not first]


def secret_matches(stored: str, secret: str | bytes) -> Profile | None:
    """The profile under which ``stored`` is the hash of ``secret``, or None. Constant time per profile
    and the same work whether or not it matches."""
    found: Profile | None = None
    for p, h in zip(_ordered(), secret_hashes(secret), strict=True):
        if std_hmac.compare_digest(stored.encode(), h.encode()) and found is None:
            found = p
    return found


def _ordered() -> list[Profile]:
    first = active()
    return [first] + [p for p in _PROFILES.values() if p is not first]


# --- passwords (口令) --------------------------------------------------------------------------------------
#
# Stored self-describing, so a hash made under either profile verifies whatever the platform runs now:
#   scrypt$<N>$<r>$<p>$<salt b64>$<key b64>             international (RFC 7914)
#   pbkdf2-sm3$<iterations>$<salt b64>$<key b64>        gm: PBKDF2 (RFC 8018) with HMAC-SM3, the usual
#                                                       national answer (there is no national password KDF)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PBKDF2_SM3_ITERATIONS = 100_000
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    """A password hash under the active profile (scrypt | PBKDF2-HMAC-SM3), salted, self-describing."""
    salt = secrets.token_bytes(16)
    b64 = base64.b64encode
    if active().name == "gm":
        key = _pbkdf2_sm3(password, salt, PBKDF2_SM3_ITERATIONS, 32)
        return f"pbkdf2-sm3${PBKDF2_SM3_ITERATIONS}${b64(salt).decode()}${b64(key).decode()}"
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_SCRYPT_MAXMEM
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def check_password(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from, under the scheme it names."""
    try:
        scheme, *fields = stored.split("$")
        if scheme == "scrypt":
            n, r, p, salt, key = fields
            expected = base64.b64decode(key, validate=True)
            got = hashlib.scrypt(
                password.encode(),
                salt=base64.b64decode(salt, validate=True),
                n=int(n),
                r=int(r),
                p=int(p),
                maxmem=_SCRYPT_MAXMEM,
                dklen=len(expected),
            )
        elif scheme == "pbkdf2-sm3":
            iterations, salt, key = fields
            expected = base64.b64decode(key, validate=True)
            if not 1 <= int(iterations) <= 10_000_000 or not expected:
                return False
            got = _pbkdf2_sm3(password, base64.b64decode(salt, validate=True), int(iterations), len(expected))
        else:
            return False
    except (ValueError, TypeError, binascii.Error):
        return False
    return std_hmac.compare_digest(got, expected)


def password_needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made under another profile's scheme (re-hash it at the next sign-in)."""
    return not stored.startswith("pbkdf2-sm3$" if active().name == "gm" else "scrypt$")


def _pbkdf2_sm3(password: str, salt: bytes, iterations: int, length: int) -> bytes:
    return PBKDF2HMAC(hashes.SM3(), length, salt, iterations).derive(password.encode())


def profile(name: str) -> Profile:
    """The profile called ``name`` (one of :data:`CRYPTO_PROFILES`)."""
    try:
        return _PROFILES[name]
    except (KeyError, TypeError):
        raise UnknownProfile(
            f"unknown crypto profile {name!r}: expected one of {', '.join(CRYPTO_PROFILES)}"
        ) from None


# --- checks -------------------------------------------------------------------------------------------


def _check_len(value: bytes, size: int, what: str, *, key: bool = False, at_least: bool = False) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise (WrongKeyError if key else CryptoError)(f"{what} must be bytes, got {type(value).__name__}")
    n = len(value)
    if n < size if at_least else n != size:
        bound = "at least " if at_least else ""
        raise (WrongKeyError if key else CryptoError)(f"{what} has {bound}{size} bytes, got {n}")


def _check_user_id(user_id: bytes) -> None:
    if not isinstance(user_id, bytes) or not 0 < len(user_id) <= _SM2_MAX_USER_ID:
        raise CryptoError(f"an SM2 signer ID is 1 to {_SM2_MAX_USER_ID} bytes")


def _is_der(signature: bytes) -> bool:
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    return encode_dss_signature(r, s) == signature


def _check_sm2_der(signature: bytes) -> None:
    """Refuse anything but canonical DER: one signature, one encoding (no malleable re-encodings)."""
    if not _is_der(signature):
        hint = " (64 bytes: raw r ‖ s? encode it as DER)" if len(signature) == 64 else ""
        raise SignatureEncodingError(
            f"an SM2 signature is DER SEQUENCE {{r, s}} (GM/T 0009), got {len(signature)} bytes "
            f"that are not canonical DER{hint}"
        )


def _check_sm2_point(public_key: bytes) -> None:
    if not isinstance(public_key, bytes | bytearray | memoryview):
        raise WrongKeyError(f"an SM2 public key must be bytes, got {type(public_key).__name__}")
    if len(public_key) == 32:
        raise WrongKeyError("an SM2 public key is a 65-byte point 04 ‖ x ‖ y; 32 bytes is an Ed25519 key")
    if len(public_key) != 65 or public_key[:1] != b"\x04":
        raise WrongKeyError(
            f"an SM2 public key is the uncompressed point 04 ‖ x ‖ y (65 bytes), got {len(public_key)} bytes"
        )
