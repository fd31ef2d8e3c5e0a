"""core.tlog's roots against pymerkle 7 (RFC 9162 hashing), an independent implementation.

pymerkle is a test-only cross-check, never a runtime dependency: skipped where it is not installed.
"""

from __future__ import annotations

import pytest

from fanchaoxin.core.tlog import MerkleLog

pymerkle = pytest.importorskip("pymerkle")


def test_roots_agree_with_pymerkle_for_every_size_up_to_300() -> None:
    ours, theirs = MerkleLog(), pymerkle.InmemoryTree(algorithm="sha256")
    for i in range(300):
        leaf = i.to_bytes(2, "big") * (i % 7)
        ours.append(leaf)
        theirs.append_entry(leaf)
    assert theirs.get_size() == 300
    for size in range(1, 301):
        assert ours.root(size) == theirs.get_root(size), size
