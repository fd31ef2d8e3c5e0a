"""Crypto-profile benchmarks (#18): what the gm profile costs against the international one.

    .venv/bin/python -m bench.bench_crypto [--seconds 2.0] [--events 10000]

0. Machine: CPU, cryptography's OpenSSL, gmssl_pyx's version.
1. Digests of 1 KB messages: SM3 vs SHA-256, one call per message through the profile (MB/s and
   messages/s), and the audit chain's step (hash of ``prev_hash ‖ ~300 bytes of content``). The target
   (the chain's append cost under gm within 2× of SHA-256's) is for the whole append, not the hash.
2. Signatures over a 1 KB message: SM2 (GmSSL) vs Ed25519 (OpenSSL), signs/s and verifies/s. Targets:
   signing a snapshot ≤ 1 s (one signature over the file); a node verifying a 10,000-event delta ≤ 1 s
   (one signature per feed file plus a digest per event: `--events` digests and one verify, timed).
3. AEAD of 64-byte values (a resident ID with its column as associated data): SM4-GCM vs AES-256-GCM.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import gmssl_pyx
from cryptography.hazmat.backends.openssl import backend

from fanchaoxin.core.crypto import CRYPTO_PROFILES, profile

ROUNDS = 5


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second: the median of ROUNDS runs of about `seconds`/ROUNDS each (after a warm-up call).
    A shared machine's load comes and goes; the median of short runs shrugs most of it off."""
    fn()
    rates = []
    for _ in range(ROUNDS):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / ROUNDS:
            fn()
            n += 1
        rates.append(n / elapsed)
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement (split into 5 runs)")
    ap.add_argument("--events", type=int, default=10_000, help="events in the delta a node verifies")
    args = ap.parse_args()
    s = args.seconds

    print(
        f"0. {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"   cryptography on {backend.openssl_version_text()}; gmssl_pyx {gmssl_pyx.__version__} (GmSSL 3.2)"
    )

    msg = os.urandom(1024)
    content = os.urandom(300)
    prev = os.urandom(32).hex().encode()
    print("\n1. digests (one call per message)")
    per = {}
    for name in CRYPTO_PROFILES:
        p = profile(name)
        r = rate(lambda p=p: p.digest(msg), s)
        chain = rate(lambda p=p: p.hexdigest(prev + content), s)
        per[name] = chain
        print(
            f"   {p.hash_algorithm:8} 1 KB: {r:>10,.0f} msg/s = {r * 1024 / 1e6:7.1f} MB/s;"
            f"  audit chain step: {chain:>10,.0f}/s ({1e6 / chain:5.2f} µs)"
        )
    print(
        f"   chain step gm / international: {per['international'] / per['gm']:.2f}× the time of the hash alone"
        " (SHA-256 has CPU instructions, SM3 none); #18's ≤ 2× is for the whole append (canonical JSON,"
        " insert), to measure once the chain is wired"
    )

    print("\n2. signatures over 1 KB")
    sig_rates = {}
    for name in CRYPTO_PROFILES:
        p = profile(name)
        key = p.generate_signing_key()
        public = p.public_key_of(key)
        signature = p.sign(key, msg)
        signs = rate(lambda p=p, key=key: p.sign(key, msg), s)
        verifies = rate(lambda p=p, public=public, signature=signature: p.verify(public, msg, signature), s)
        sig_rates[name] = (signs, verifies)
        print(
            f"   {p.signature_algorithm:8} sign {signs:>8,.0f}/s ({1e3 / signs:6.3f} ms)"
            f"   verify {verifies:>8,.0f}/s ({1e3 / verifies:6.3f} ms)   {len(signature)}-byte signatures"
        )
        events = [os.urandom(200) for _ in range(args.events)]
        start = time.perf_counter()
        for e in events:
            p.digest(e)
        p.verify(public, msg, signature)
        print(
            f"            a node's {args.events:,}-event delta: {args.events:,} digests + 1 verify in "
            f"{time.perf_counter() - start:.3f} s (target ≤ 1 s)"
        )
    ed, sm2 = sig_rates["international"], sig_rates["gm"]
    print(f"   SM2 / Ed25519: sign {ed[0] / sm2[0]:.1f}× slower, verify {ed[1] / sm2[1]:.1f}× slower")

    print("\n3. AEAD of 64-byte values")
    value, aad = os.urandom(64), b"subjects.id_number"
    for name in CRYPTO_PROFILES:
        p = profile(name)
        key, nonce = os.urandom(p.aead_key_size), os.urandom(p.aead_nonce_size)
        sealed = p.aead_encrypt(key, nonce, value, aad)
        enc = rate(lambda p=p, key=key, nonce=nonce: p.aead_encrypt(key, nonce, value, aad), s)
        dec = rate(
            lambda p=p, key=key, nonce=nonce, sealed=sealed: p.aead_decrypt(key, nonce, sealed, aad), s
        )
        print(f"   {p.aead_algorithm:12} seal {enc:>10,.0f}/s   open {dec:>10,.0f}/s")


if __name__ == "__main__":
    main()
