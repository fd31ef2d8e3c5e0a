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
   (GB/T 32918.2, signer ID 1234567812345678). The standard library has no signature algorithm and this
   script writes none: the signature is checked with `cryptography` (Ed25519) or `gmssl-pyx` (SM2) where
   they are installed; otherwise the line says NOT CHECKED (``--require-signature`` makes that a failure),
   and the proof still shows the leaf is in the tree whose root the checkpoint names;
3. every leaf's inclusion proof (RFC 9162 §2.1.3.2) leads from ``H(0x00 ‖ leaf)`` to the checkpoint's
   root hash; H is SHA-256, or SM3 for a gm log (``hashlib.new("sm3")``: this Python's OpenSSL);
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


class NotChecked(Exception):
    """The signature cannot be checked here: no library for its algorithm is installed."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sm3(data: bytes) -> bytes:
    try:
        return hashlib.new("sm3", data).digest()
    except ValueError:
        raise Unsupported(
            "this Python's OpenSSL has no SM3 (hashlib.new('sm3')): run the script with a Python built "
            "against OpenSSL 1.1.1 or later with SM3 enabled (Debian's and most distributions' are)"
        ) from None


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    # The standard library has no signature algorithm, and nobody should write one for this: the
    # signature is checked with the `cryptography` package where it is installed, else reported unchecked.
    try:
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415  (optional)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
            Ed25519PublicKey,
        )
    except ImportError:
        raise NotChecked("Ed25519: `pip install cryptography` to check it") from None
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def sm2_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    # SM2 with SM3 and the default signer ID (GB/T 32918.2, GM/T 0009), through GmSSL's Python binding.
    try:
        import gmssl_pyx  # noqa: PLC0415  (optional)
    except ImportError:
        raise NotChecked("SM2: `pip install gmssl-pyx` (GmSSL) to check it") from None
    if len(public) != 65 or public[0] != 4:
        return False
    try:  # GmSSL takes the point without its 0x04 prefix; it raises its own error on a bad key
        return bool(gmssl_pyx.sm2_verify(public[1:], message, signature, signer_id=SM2_DEFAULT_ID))
    except Exception:
        return False


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


def verify(
    document, vkey: str, witnesses=(), origin: str | None = None, hash_name: str | None = None,
    require_signature: bool = False,
):
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
    try:
        if not verify_signature(algorithm, public, text.encode(), mine[0][4:]):
            raise Failed(f"checkpoint: the signature by {name} does not verify")
        signed = f"signature by {name} verifies"
    except NotChecked as exc:
        if require_signature:
            raise Unsupported(f"checkpoint: the signature by {name} was not checked ({exc})") from None
        signed = f"signature by {name} NOT CHECKED ({exc})"
    print(f"ok    checkpoint of {cp_origin}: size {size}, root {root_b64}, {signed}")
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
        try:
            if not verify_signature(walg, wpub, message, found[0][12:]):
                raise Failed(f"checkpoint: the cosignature by witness {wname} does not verify")
        except NotChecked as exc:
            raise Unsupported(f"the cosignature by witness {wname} was not checked ({exc})") from None
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
    parser.add_argument(
        "--require-signature", action="store_true",
        help="fail (status 2) when the checkpoint's signature cannot be checked here",
    )
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
        verify(document, args.vkey, args.witness, args.origin, args.hash, args.require_signature)
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
