"""Sharing without leaking (DESIGN §4): identifier tags and what carries them to enterprise nodes.

:mod:`fanchaoxin.sharing.oprf` is the cryptographic core: ``tag = VOPRF(k, "type:normalised value")``
per RFC 9497 (ristretto255-SHA512, verifiable mode), keyed by the platform, with blinded batch
evaluation for nodes and a key ring with rotation overlap.
"""
