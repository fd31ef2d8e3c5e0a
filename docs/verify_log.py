#!/usr/bin/env python3
"""Check an inclusion proof of the fanchaoxin transparency log (透明日志) by yourself, offline.

Python 3.8+ standard library only: nothing of the platform, nothing to install. Give it the inclusion
proof the platform handed you (``GET /v1/log/proof/inclusion``, or a confirmation / record page's JSON
that carries one: ``{"tree_size", "checkpoint", "leaves": [{"index", "leaf", "proof"}]}``) and the log's
verifier key, which you got from somewhere you trust (the platform's published key, a newspaper, a
court filing; ``GET /v1/log/key`` only if you trust the connection)::

    python3 verify_log.py proof.json --vkey 'fanchaoxin.local/log+1a2b3c4d+AX…'
    python3 verify_log.py proof.json --vkey … --witness 'dept.example/w1+…'   # also check a witness

It checks, and prints each check:

1. the verifier key: its key ID is SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4] (C2SP signed-note);
2. the checkpoint (C2SP tlog-checkpoint) carries a signature by that key, and the signature verifies:
   Ed25519 (RFC 8032) or, for a log under the Chinese commercial-cryptography profile, SM2 with SM3
   (GB/T 32918.2, signer ID 1234567812345678). Both are checked here in plain Python integers
   (the standard library has no signature algorithms; the curve arithmetic below follows RFC 8032 §5.1.7
   and GB/T 32918.2 §7). That is slow (tens of milliseconds) and not constant-time, which does not
   matter for verifying public data;
3. every leaf's inclusion proof (RFC 9162 §2.1.3.2) leads from ``H(0x00 ‖ leaf)`` to the checkpoint's
   root hash; H is SHA-256, or SM3 for a gm log (``hashlib.new("sm3")`` where this Python's OpenSSL has
   it, else the plain-Python SM3 below, GB/T 32905-2016);
4. with ``--witness``: that witness's cosignature on the checkpoint (C2SP tlog-cosignature).

It does not check that the checkpoint is the newest, nor that others were shown the same one: for that,
compare it with a checkpoint cosigned by witnesses you trust (``--witness``), or with a later
checkpoint and a consistency proof (``fcx log verify --from-checkpoint``).

Exit status 0 when every check passed, 1 when one failed (the line starting ``FAIL`` says which),
2 on bad usage or an unsupported algorithm.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
ED25519_TYPE = b"\x01"
ED25519_COSIGNATURE_TYPE = b"\x04"
SM2_TYPE = b"\xff" + b"gm-sm2-sm3-note/v1\x00"  # signed-note's escape 0xff, as the platform uses it
SM2_COSIGNATURE_TYPE = b"\xff" + b"gm-sm2-sm3-cosignature/v1\x00"
SM2_DEFAULT_ID = b"1234567812345678"


class Failed(Exception):
    pass


class Unsupported(Exception):
    pass


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sm3(data: bytes) -> bytes:
    """SM3 from this Python's OpenSSL when it has it, else :func:`sm3_python`."""
    try:
        return hashlib.new("sm3", data).digest()
    except ValueError:
        return sm3_python(data)


_SM3_IV = (0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600, 0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E)
_M32 = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    n %= 32
    return ((x << n) | (x >> (32 - n))) & _M32


def sm3_python(data: bytes) -> bytes:
    """SM3 (GB/T 32905-2016) in plain Python, for an OpenSSL built without it (slow; leaves are short)."""
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + (len(data) * 8).to_bytes(8, "big")
    v = list(_SM3_IV)
    for at in range(0, len(padded), 64):
        w = [int.from_bytes(padded[at + 4 * i : at + 4 * i + 4], "big") for i in range(16)]
        for j in range(16, 68):
            x = w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15)
            w.append((x ^ _rotl(x, 15) ^ _rotl(x, 23)) ^ _rotl(w[j - 13], 7) ^ w[j - 6])
        a, b, c, d, e, f, g, h = v
        for j in range(64):
            t = 0x79CC4519 if j < 16 else 0x7A879D8A
            ss1 = _rotl((_rotl(a, 12) + e + _rotl(t, j)) & _M32, 7)
            ss2 = ss1 ^ _rotl(a, 12)
            ff = a ^ b ^ c if j < 16 else (a & b) | (a & c) | (b & c)
            gg = e ^ f ^ g if j < 16 else (e & f) | (~e & g)
            tt1 = (ff + d + ss2 + (w[j] ^ w[j + 4])) & _M32
            tt2 = (gg + h + ss1 + w[j]) & _M32
            d, c, b, a = c, _rotl(b, 9), a, tt1
            h, g, f, e = g, _rotl(f, 19), e, tt2 ^ _rotl(tt2, 9) ^ _rotl(tt2, 17)
        v = [v[i] ^ r for i, r in enumerate((a, b, c, d, e, f, g, h))]
    return b"".join(x.to_bytes(4, "big") for x in v)


# --- Ed25519 verification (RFC 8032 §5.1.7), integers only ------------------------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _ed_add(a, b):  # extended coordinates (X, Y, Z, T), RFC 8032 §5.1.4
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % _P
    bb = (y1 + x1) * (y2 + x2) % _P
    cc = 2 * t1 * t2 * _D % _P
    dd = 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _ed_mul(s, point):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _ed_add(q, point)
        point = _ed_add(point, point)
        s >>= 1
    return q


def _ed_equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _ed_decode(s: bytes):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        if sign:
            return None
        x = 0
    else:
        x = pow(x2, (_P + 3) // 8, _P)
        if (x * x - x2) % _P != 0:
            x = x * _SQRT_M1 % _P
        if (x * x - x2) % _P != 0:
            return None
        if (x & 1) != sign:
            x = _P - x
    return (x, y, 1, x * y % _P)


_ED_B = _ed_decode((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _ed_decode(public)
    r = _ed_decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    return _ed_equal(_ed_mul(s, _ED_B), _ed_add(r, _ed_mul(k, a)))


# --- SM2 verification (GB/T 32918.2-2016 §7), integers only -----------------------------------------------

_SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_SM2_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_SM2_G = (
    0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)


def _sm2_add(p1, p2):  # affine; None is the point at infinity
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % _SM2_P == 0:
            return None
        m = (3 * x1 * x1 + _SM2_A) * pow(2 * y1, -1, _SM2_P) % _SM2_P
    else:
        m = (y2 - y1) * pow(x2 - x1, -1, _SM2_P) % _SM2_P
    x3 = (m * m - x1 - x2) % _SM2_P
    return (x3, (m * (x1 - x3) - y1) % _SM2_P)


def _sm2_mul(k, point):
    q = None
    while k > 0:
        if k & 1:
            q = _sm2_add(q, point)
        point = _sm2_add(point, point)
        k >>= 1
    return q


def _der_integers(sig: bytes):
    """``SEQUENCE { INTEGER r, INTEGER s }`` (short lengths, as SM2 signatures have)."""
    if len(sig) < 8 or sig[0] != 0x30 or sig[1] != len(sig) - 2:
        return None
    out, at = [], 2
    for _ in range(2):
        if at + 2 > len(sig) or sig[at] != 0x02:
            return None
        n = sig[at + 1]
        out.append(int.from_bytes(sig[at + 2 : at + 2 + n], "big"))
        at += 2 + n
    return out if at == len(sig) else None


def sm2_verify(public: bytes, message: bytes, signature: bytes, user_id: bytes = SM2_DEFAULT_ID) -> bool:
    if len(public) != 65 or public[0] != 4:
        return False
    px, py = int.from_bytes(public[1:33], "big"), int.from_bytes(public[33:], "big")
    if (py * py - (px * px * px + _SM2_A * px + _SM2_B)) % _SM2_P != 0:
        return False
    rs = _der_integers(signature)
    if rs is None:
        return False
    r, s = rs
    if not (1 <= r < _SM2_N and 1 <= s < _SM2_N):
        return False

    def i32(v: int) -> bytes:
        return v.to_bytes(32, "big")

    entl = (len(user_id) * 8).to_bytes(2, "big")
    z = sm3(entl + user_id + i32(_SM2_A) + i32(_SM2_B) + i32(_SM2_G[0]) + i32(_SM2_G[1]) + public[1:])
    e = int.from_bytes(sm3(z + message), "big")
    t = (r + s) % _SM2_N
    if t == 0:
        return False
    point = _sm2_add(_sm2_mul(s, _SM2_G), _sm2_mul(t, (px, py)))
    return point is not None and (e + point[0]) % _SM2_N == r


# --- signed notes, checkpoints, proofs --------------------------------------------------------------------


def b64(value: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (ValueError, binascii.Error):
        raise Failed(f"{what} is not base64") from None


def parse_vkey(vkey: str):
    """``name+hex key ID+base64(type ‖ key)`` → (name, key ID, algorithm, public key, cosigner)."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or len(parts[1]) != 8:
        raise Failed(f"verifier key: expected name+hex8+base64, got {vkey[:60]!r}")
    name, hex_id, typed = parts[0], parts[1].lower(), b64(parts[2], "verifier key")
    for prefix, algorithm, size, cosigner in (
        (ED25519_TYPE, "Ed25519", 32, False),
        (ED25519_COSIGNATURE_TYPE, "Ed25519", 32, True),
        (SM2_TYPE, "SM2", 65, False),
        (SM2_COSIGNATURE_TYPE, "SM2", 65, True),
    ):
        if typed.startswith(prefix) and len(typed) == len(prefix) + size:
            if sha256(name.encode() + b"\n" + typed)[:4].hex() != hex_id:
                raise Failed(f"verifier key {name!r}: the key ID does not match the name and key")
            return name, bytes.fromhex(hex_id), algorithm, typed[len(prefix) :], cosigner
    raise Unsupported(f"verifier key {name!r}: neither Ed25519 (0x01/0x04) nor the platform's SM2 type")


def split_note(note: str):
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise Failed("checkpoint: not a signed note (no blank line before the signatures)")
    text, lines = note[: cut + 1], []
    for line in note[cut + 2 : -1].split("\n"):
        fields = line[2:].split(" ") if line.startswith("\u2014 ") else []
        if len(fields) != 2:
            raise Failed(f"checkpoint: malformed signature line {line[:40]!r}")
        lines.append((fields[0], b64(fields[1], f"signature by {fields[0]!r}")))
    return text, lines


def verify_signature(algorithm: str, public: bytes, message: bytes, signature: bytes) -> bool:
    if algorithm == "Ed25519":
        return ed25519_verify(public, message, signature)
    return sm2_verify(public, message, signature)


def root_from_proof(index: int, size: int, leaf_hash: bytes, proof, h) -> bytes:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        raise Failed(f"leaf {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise Failed(f"the inclusion proof of leaf {index} is too long")
        if fn & 1 or fn == sn:
            r = h(NODE_PREFIX + p + r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = h(NODE_PREFIX + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Failed(f"the inclusion proof of leaf {index} is too short")
    return r


def find_proof(document):
    """The inclusion-proof object in ``document``: itself, or nested in a confirmation or record page."""
    if isinstance(document, dict):
        if isinstance(document.get("checkpoint"), str) and isinstance(document.get("leaves"), list):
            return document
        children = list(document.values())
    elif isinstance(document, list):
        children = document
    else:
        return None
    for child in children:
        found = find_proof(child)
        if found is not None:
            return found
    return None


def describe(leaf: bytes) -> str:
    try:
        obj = json.loads(leaf)
    except ValueError:
        return f"{len(leaf)} bytes"
    if not isinstance(obj, dict):
        return f"{len(leaf)} bytes"
    event = obj.get("event") if isinstance(obj.get("event"), dict) else {}
    bits = [f"{obj.get('type')} {obj.get('seq')}"]
    for name in ("entry_id", "status"):
        if event.get(name):
            bits.append(f"{name} {event[name]}")
    return ", ".join(bits)


def verify(document, vkey: str, witnesses=(), origin: str | None = None, hash_name: str | None = None):
    """Run every check, printing one line each; raises Failed or Unsupported."""
    proof = find_proof(document)
    if proof is None:
        raise Failed("no inclusion proof in the file (an object with 'checkpoint' and 'leaves')")
    name, key_id, algorithm, public, cosigner = parse_vkey(vkey)
    if cosigner:
        raise Failed(f"{name!r} is a witness key, not the log's: give it with --witness")
    print(f"ok    log key {name} ({algorithm}, key ID {key_id.hex()})")
    h = {"sha256": sha256, "sm3": sm3}[(hash_name or ("sm3" if algorithm == "SM2" else "sha256")).lower()]
    text, lines = split_note(proof["checkpoint"])
    body = text.split("\n")
    if len(body) < 4:
        raise Failed("checkpoint: fewer than origin, size and root lines")
    cp_origin, size_s, root_b64 = body[0], body[1], body[2]
    if not size_s.isdigit():
        raise Failed(f"checkpoint: tree size {size_s!r} is not a number")
    size, root = int(size_s), b64(root_b64, "checkpoint root")
    if origin is not None and cp_origin != origin:
        raise Failed(f"checkpoint: of log {cp_origin!r}, expected {origin!r}")
    mine = [blob for n, blob in lines if n == name and blob[:4] == key_id]
    if not mine:
        raise Failed(f"checkpoint: no signature by {name} (key ID {key_id.hex()})")
    if not verify_signature(algorithm, public, text.encode(), mine[0][4:]):
        raise Failed(f"checkpoint: the signature by {name} does not verify")
    print(f"ok    checkpoint of {cp_origin}: size {size}, root {root_b64}, signature by {name} verifies")
    if proof.get("tree_size") not in (None, size):
        raise Failed(f"the proof says tree size {proof.get('tree_size')}, its checkpoint {size}")
    if not proof["leaves"]:
        raise Failed("the proof holds no leaf")
    for item in proof["leaves"]:
        index, leaf = int(item["index"]), b64(item["leaf"], "leaf")
        path = [b64(p, f"proof of leaf {index}") for p in item.get("proof") or []]
        if root_from_proof(index, size, h(LEAF_PREFIX + leaf), path, h) != root:
            raise Failed(f"leaf {index} ({describe(leaf)}): its inclusion proof does not lead to the root")
        print(f"ok    leaf {index} ({describe(leaf)}) is in the log")
    for w in witnesses:
        wname, wid, walg, wpub, wcos = parse_vkey(w)
        if not wcos:
            raise Failed(f"--witness {wname!r}: a note key, not a cosignature key")
        found = [blob for n, blob in lines if n == wname and blob[:4] == wid]
        if not found:
            raise Failed(f"checkpoint: no cosignature by witness {wname}")
        stamp = int.from_bytes(found[0][4:12], "big")
        message = b"cosignature/v1\ntime %d\n" % stamp + text.encode()
        if not verify_signature(walg, wpub, message, found[0][12:]):
            raise Failed(f"checkpoint: the cosignature by witness {wname} does not verify")
        print(f"ok    cosigned by witness {wname} at {stamp} (seconds since 1970)")
    others = sorted({n for n, _ in lines} - {name} - {parse_vkey(w)[0] for w in witnesses})
    if others:
        print(f"note  other signatures on the checkpoint, not checked: {', '.join(others)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("proof", help="JSON file with the inclusion proof ('-' for standard input)")
    parser.add_argument("--vkey", required=True, help="the log's verifier key (name+keyid+base64)")
    parser.add_argument("--witness", action="append", default=[], help="a witness's verifier key")
    parser.add_argument("--origin", help="the log's origin line, if you know it")
    parser.add_argument("--hash", choices=("sha256", "sm3"), help="default: SM3 for an SM2 key, else SHA-256")
    args = parser.parse_args(argv)
    try:
        if args.proof == "-":
            raw = sys.stdin.read()
        else:
            with open(args.proof, encoding="utf-8") as fh:
                raw = fh.read()
        document = json.loads(raw)
    except (OSError, ValueError) as exc:
        print(f"FAIL  cannot read {args.proof}: {exc}")
        return 2
    try:
        verify(document, args.vkey, args.witness, args.origin, args.hash)
    except Failed as exc:
        print(f"FAIL  {exc}")
        return 1
    except Unsupported as exc:
        print(f"FAIL  {exc}")
        return 2
    print("OK    every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
