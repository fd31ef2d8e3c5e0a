"""The transparency log (透明日志) of the list, its foundation (#19): an append-only Merkle tree.

What this module is, on its own, without the platform:

* **Hashing** as RFC 9162 (Certificate Transparency 2.0) §2.1 defines it: a leaf hashes as
  ``H(0x00 ‖ leaf)``, an interior node as ``H(0x01 ‖ left ‖ right)``, and the Merkle Tree Hash of ``n``
  leaves splits at the largest power of two smaller than ``n``. ``H`` is a parameter (any ``bytes →
  bytes`` callable), so the crypto profile plugs in: ``profile("international").digest`` (SHA-256, the
  default and what CT and C2SP verifiers expect) or ``profile("gm").digest`` (SM3).
* **Proofs**: inclusion (审计路径, §2.1.3) and consistency (一致性证明, §2.1.4), generated and verified
  with the RFC's algorithms, step for step.
* **C2SP formats**: the checkpoint as a signed note (https://c2sp.org/tlog-checkpoint,
  https://c2sp.org/signed-note), witness cosignatures (https://c2sp.org/tlog-cosignature) and the tiles
  of https://c2sp.org/tlog-tiles, with a reader that builds proofs from tiles alone, as a verifier
  holding only the static files does. Signatures go through :mod:`core.crypto`: Ed25519 (signed-note
  type 0x01, cosignature type 0x04) under the ``international`` profile, SM2 with SM3 under ``gm``
  (signed-note has no SM2 type: it is carried under the spec's escape 0xff, followed by an identifier,
  see :data:`NOTE_SM2` and ``docs/transparency-log.md``).

The tree keeps, for every height, the hashes of its complete (power-of-two, aligned) subtrees in one
``bytearray`` per height: appending computes each complete node once, a root or a proof reads
O(log n) of them, and the heights 0, 8, 16, … are the tiles as they are served. 1,000,000 leaves take
about 64 MB (2 n hashes of 32 bytes). What goes into the leaves, where the log lives and who verifies it
at which moment are the platform's business (``docs/transparency-log.md``).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from fanchaoxin.core.crypto import CryptoError, SigningKey, profile, profile_of_public_key

HashFn = Callable[[bytes], bytes]

LEAF_PREFIX: Final = b"\x00"  # RFC 9162 §2.1.1: domain separation of leaves from interior nodes
NODE_PREFIX: Final = b"\x01"

TILE_HEIGHT: Final = 8  # c2sp.org/tlog-tiles: a tile is 8 levels of the tree,
TILE_WIDTH: Final = 1 << TILE_HEIGHT  # so 256 hashes wide when full

# c2sp.org/signed-note: the signature type byte of Ed25519 in the key ID and the verifier key, and
# c2sp.org/tlog-cosignature's timestamped Ed25519 witness cosignature.
NOTE_ED25519: Final = 0x01
NOTE_COSIGNATURE_ED25519: Final = 0x04
# Signed-note assigns no type to SM2. Its escape: "0xff — reserved for signature types without an
# identifier byte assigned by this specification; it is RECOMMENDED that this byte be followed by a
# longer identifier that is unlikely to collide". The identifier ends in NUL so that the 65-byte SM2
# point (04 ‖ x ‖ y) after it is found without knowing it. The signature is SM2 with SM3 over the note
# text, signer ID 1234567812345678 (GM/T 0009), DER-encoded; the cosignature form signs the same
# message as tlog-cosignature's Ed25519 one ("cosignature/v1", "time <t>", the note text) and carries
# the same u64 timestamp before the signature.
NOTE_SM2: Final = b"\xff" + b"gm-sm2-sm3-note/v1\x00"
NOTE_COSIGNATURE_SM2: Final = b"\xff" + b"gm-sm2-sm3-cosignature/v1\x00"
_COSIGNATURE_HEADER: Final = b"cosignature/v1\n"
# Signed-note verifiers bound the work a note can cost them (Go's golang.org/x/mod/sumdb/note: 100).
MAX_NOTE_SIGNATURES: Final = 100
_EM_DASH_PREFIX: Final = "\u2014 "  # "— ": every signature line starts with an em dash and a space


_SHA256 = profile("international").digest


def sha256(data: bytes) -> bytes:
    """SHA-256, the default ``H`` (RFC 9162's, and the one every CT and C2SP verifier knows)."""
    return _SHA256(data)


class TlogError(ValueError):
    """Something about the log was refused; the message names what failed."""


class ProofError(TlogError):
    """An inclusion or consistency proof that does not verify, or one asked for sizes the tree lacks."""


class NoteError(TlogError):
    """A signed note or checkpoint that is malformed, unsigned by a known key, or badly signed."""


class TileError(TlogError):
    """A tile path that is not in the tlog-tiles form, or a tile of the wrong size or contents."""


# --- hashing (RFC 9162 §2.1.1) ----------------------------------------------------------------------------


def leaf_hash(leaf: bytes, hash_fn: HashFn = sha256) -> bytes:
    """``H(0x00 ‖ leaf)``."""
    return hash_fn(LEAF_PREFIX + leaf)


def node_hash(left: bytes, right: bytes, hash_fn: HashFn = sha256) -> bytes:
    """``H(0x01 ‖ left ‖ right)``."""
    return hash_fn(NODE_PREFIX + left + right)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` ≥ 2): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


class NodeSource(Protocol):
    """Where complete subtree hashes come from: the tree in memory, or tiles fetched from a server."""

    @property
    def hash_fn(self) -> HashFn: ...

    def node(self, height: int, index: int) -> bytes:
        """The hash of the complete subtree of ``2**height`` leaves starting at leaf ``index << height``."""
        ...


def range_hash(source: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) (§2.1.1), read from the complete subtrees ``source`` holds.

    The RFC's recursion only ever asks for ranges whose left part is aligned to its size, so the
    complete ones are a single lookup; any other range splits as the RFC splits it.
    """
    n = end - start
    if n == 0:
        return source.hash_fn(b"")  # MTH({}) = HASH()
    if n & (n - 1) == 0 and start % n == 0:
        height = n.bit_length() - 1
        return source.node(height, start >> height)
    k = _split(n)
    return node_hash(range_hash(source, start, start + k), range_hash(source, start + k, end), source.hash_fn)


# --- proofs (RFC 9162 §2.1.3.1, §2.1.4.1) ----------------------------------------------------------------


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(m, D[n]) of §2.1.3.1: the audit path of leaf ``index`` in the tree of ``size`` leaves.

    The RFC recurses top-down and appends on the way back, so the path runs from the leaf's sibling up to
    the root's other child; this walks down and reverses.
    """
    if not 0 <= index < size:
        raise ProofError(f"no leaf {index} in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:  # m < k: PATH(m, D[0:k]) : MTH(D[k:n])
            ranges.append((start + k, end))
            end = start + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            ranges.append((start, start + k))
            start += k
    return [range_hash(source, a, b) for a, b in reversed(ranges)]


def consistency_proof(source: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of §2.1.4.1.

    Empty when ``old_size`` is 0 or equals ``new_size`` (nothing to prove; the verifier below handles
    both as Go's transparency-dev/merkle does).
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, m, b = 0, new_size, old_size, True
    while True:
        if m == end - start:  # SUBPROOF(m, D[m], b): {} when b, {MTH(D[m])} otherwise
            if not b:
                ranges.append((start, end))
            break
        k = _split(end - start)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            ranges.append((start + k, end))
            end = start + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            ranges.append((start, start + k))
            start += k
            m -= k
            b = False
    return [range_hash(source, a, b_) for a, b_ in reversed(ranges)]


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ------------------------------------------------------------


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], hash_fn: HashFn = sha256
) -> bytes:
    """The root that ``proof`` leads to from the leaf hash ``leaf`` (§2.1.3.2 steps 1–5, less the compare)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof too long for leaf {index} of a tree of size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r, hash_fn)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p, hash_fn)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof too short for leaf {index} of a tree of size {size}")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes, hash_fn: HashFn = sha256
) -> None:
    """§2.1.3.2: that leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` leaves with ``root``."""
    if root_from_inclusion_proof(index, size, leaf, proof, hash_fn) != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root of tree size {size}")


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
    hash_fn: HashFn = sha256,
) -> None:
    """§2.1.4.2: that the tree of ``old_size`` leaves, ``old_root``, is a prefix of the one with ``new_root``.

    The RFC's algorithm assumes 0 < old < new; equal sizes need equal roots and an empty proof, and the
    empty tree is a prefix of every tree (as in Go's transparency-dev/merkle).
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"tree size went from {old_size} down to {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:  # step 1
        raise ProofError(f"empty consistency proof from size {old_size} to {new_size}")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ProofError(f"consistency proof from size {old_size} to {new_size} too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr, hash_fn)
            sr = node_hash(c, sr, hash_fn)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c, hash_fn)
        fn >>= 1
        sn >>= 1
    # step 7
    if sn != 0:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root (size {new_size})")


# --- the tree -------------------------------------------------------------------------------------------


class MerkleLog:
    """An append-only Merkle tree log (只增不改的默克尔树日志) over leaf hashes.

    ``_levels[h]`` holds, end to end, the hashes of the complete subtrees of ``2**h`` leaves, left to
    right: level 0 is the leaf hashes. Appending a leaf completes at most one new node per height, so each
    node is hashed once, ever; nothing is ever rewritten. The leaves themselves are not kept (the
    platform stores its entries; the log commits to them).
    """

    def __init__(self, hash_fn: HashFn = sha256) -> None:
        self.hash_fn = hash_fn
        self.hash_size = len(hash_fn(b""))
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes], hash_fn: HashFn = sha256) -> MerkleLog:
        """A log rebuilt from its stored leaf hashes (e.g. at start-up)."""
        log = cls(hash_fn)
        for h in hashes:
            log.append_hash(h)
        return log

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> int:
        """Append one leaf (its bytes); returns its index."""
        return self.append_hash(self.hash_fn(LEAF_PREFIX + leaf))

    def append_hash(self, h: bytes) -> int:
        """Append a leaf by its leaf hash; returns its index."""
        if len(h) != self.hash_size:
            raise TlogError(f"a leaf hash is {self.hash_size} bytes, got {len(h)}")
        index = self._size
        levels, hs, hash_fn = self._levels, self.hash_size, self.hash_fn
        levels[0] += h
        # Climb while the new node is a right child: its parent is now complete.
        i, height = index, 0
        while i & 1:
            level = levels[height]
            parent = hash_fn(NODE_PREFIX + level[-2 * hs :])  # left ‖ right, the level's last two
            height += 1
            if height == len(levels):
                levels.append(bytearray())
            levels[height] += parent
            i >>= 1
        self._size = index + 1
        return index

    def truncate(self, size: int) -> None:
        """Forget the leaves from ``size`` on (a copy that ran ahead of what its store committed, e.g.
        a transaction that appended and rolled back). The complete subtrees within the first ``size``
        leaves are what they were, so this only cuts each level: O(log n)."""
        if not 0 <= size <= self._size:
            raise TlogError(f"cannot truncate a log of {self._size} leaves to {size}")
        hs = self.hash_size
        for height, level in enumerate(self._levels):
            del level[(size >> height) * hs :]
        while len(self._levels) > 1 and not self._levels[-1]:
            self._levels.pop()
        self._size = size

    def node(self, height: int, index: int) -> bytes:
        """The complete subtree hash at ``height``, ``index`` (:class:`NodeSource`)."""
        if height >= len(self._levels) or (index + 1) << height > self._size or index < 0:
            raise TlogError(f"no complete subtree of height {height} at index {index} in size {self._size}")
        at = index * self.hash_size
        return bytes(self._levels[height][at : at + self.hash_size])

    def leaf_hash(self, index: int) -> bytes:
        return self.node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all of them)."""
        size = self._size if size is None else size
        if not 0 <= size <= self._size:
            raise TlogError(f"no tree of size {size}: the log has {self._size} leaves")
        return range_hash(self, 0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self._size if size is None else size
        if size > self._size:
            raise ProofError(f"no tree of size {size}: the log has {self._size} leaves")
        return inclusion_proof(self, index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self._size if new_size is None else new_size
        if new_size > self._size:
            raise ProofError(f"no tree of size {new_size}: the log has {self._size} leaves")
        return consistency_proof(self, old_size, new_size)

    def tiles(self, size: int | None = None) -> Iterator[tuple[str, bytes]]:
        """The hash tiles of the tree of ``size`` leaves (tlog-tiles), as ``(path, contents)``.

        For each tile level L with at least one hash at tree height 8·L: the full tiles of 256 hashes and
        the partial one at the right edge (``.p/<W>``).
        """
        size = self._size if size is None else size
        if not 0 <= size <= self._size:
            raise TlogError(f"no tree of size {size}: the log has {self._size} leaves")
        hs = self.hash_size
        level = 0
        while (count := size >> (TILE_HEIGHT * level)) > 0:
            hashes = self._levels[TILE_HEIGHT * level]
            for n in range(0, (count + TILE_WIDTH - 1) // TILE_WIDTH):
                width = min(TILE_WIDTH, count - n * TILE_WIDTH)
                at = n * TILE_WIDTH * hs
                yield tile_path(level, n, width), bytes(hashes[at : at + width * hs])
            level += 1


# --- tlog-tiles paths (c2sp.org/tlog-tiles) --------------------------------------------------------------


def encode_tile_index(n: int) -> str:
    """N as tlog-tiles writes it: 3-digit groups, every group but the last prefixed with ``x``.

    ``1234067`` → ``x001/x234/067``; ``5`` → ``005``. Directories then hold at most 1000 entries.
    """
    if n < 0:
        raise TileError(f"a tile index is not negative, got {n}")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``: the partial suffix only when fewer than 256 hashes."""
    if not 0 <= level <= 63:
        raise TileError(f"a tile level is 0 to 63, got {level}")
    if not 1 <= width <= TILE_WIDTH:
        raise TileError(f"a tile holds 1 to {TILE_WIDTH} hashes, got {width}")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{encode_tile_index(index)}{suffix}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``: the bundle of the leaves that level-0 tile ``index`` hashes."""
    if not 1 <= width <= TILE_WIDTH:
        raise TileError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, got {width}")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/entries/{encode_tile_index(index)}{suffix}"


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its bytes (tlog-tiles)."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise TileError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, got {len(entries)}")
    out = bytearray()
    for e in entries:
        if len(e) > 0xFFFF:
            raise TileError(f"an entry is at most 65535 bytes, got {len(e)}")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def parse_entry_bundle(data: bytes) -> list[bytes]:
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise TileError("entry bundle ends inside a length prefix")
        n = int.from_bytes(data[at : at + 2], "big")
        at += 2
        if at + n > len(data):
            raise TileError("entry bundle ends inside an entry")
        entries.append(data[at : at + n])
        at += n
    return entries


def _fold(row: list[bytes], hash_fn: HashFn) -> bytes:
    """The root of a complete subtree over ``row`` (a power of two of hashes at one height)."""
    while len(row) > 1:
        row = [node_hash(row[j], row[j + 1], hash_fn) for j in range(0, len(row), 2)]
    return row[0]


@dataclass
class TileReader:
    """Complete subtree hashes read from the tiles of a tree of ``size`` leaves (:class:`NodeSource`).

    ``fetch(path)`` returns a tile's bytes (from a directory, a CDN, a test's dict); each tile is fetched
    once. A proof built from the reader is the proof built from the tree.

    Given the checkpoint's ``root``, every tile is authenticated before a hash of it is used, top-down as
    Go's golang.org/x/mod/sumdb/tlog does: the right-edge (partial) tiles are exactly what the root is
    computed from, so they are checked against the root together; a full tile at level L must hash to its
    entry in the level L+1 tile, itself checked the same way. A tile that was altered is then refused
    with its path. Without ``root`` the tiles are taken as they come (the caller checks the result).
    """

    size: int
    fetch: Callable[[str], bytes]
    hash_fn: HashFn = sha256
    root: bytes | None = None
    _raw: dict[str, bytes] = field(default_factory=dict, repr=False)
    _verified: set[str] = field(default_factory=set, repr=False)

    def _tile(self, level: int, index: int, *, authenticate: bool = True) -> bytes:
        count = self.size >> (TILE_HEIGHT * level)
        width = min(TILE_WIDTH, count - index * TILE_WIDTH)
        if width <= 0:
            raise TileError(f"no tile {level}/{index} in a tree of size {self.size}")
        path = tile_path(level, index, width)
        if path not in self._raw:
            data = self.fetch(path)
            hs = len(self.hash_fn(b""))
            if len(data) != width * hs:
                raise TileError(f"tile {path} is {len(data)} bytes, expected {width * hs}")
            self._raw[path] = data
        data = self._raw[path]
        if authenticate and self.root is not None and path not in self._verified:
            if width < TILE_WIDTH:
                self.check_root(self.root)  # authenticates every right-edge tile at once
                if path not in self._verified:  # the root reads every right-edge tile; never reached
                    raise TileError(f"tile {path} is not covered by the checkpoint's root")
            else:
                hs = len(self.hash_fn(b""))
                row = [data[j * hs : (j + 1) * hs] for j in range(TILE_WIDTH)]
                if _fold(row, self.hash_fn) != self.node(TILE_HEIGHT * (level + 1), index):
                    raise TileError(f"tile {path} does not hash to its entry in the tile above it")
                self._verified.add(path)
        return data

    def _node(self, height: int, index: int, *, authenticate: bool) -> bytes:
        if index < 0 or (index + 1) << height > self.size:
            raise TileError(f"no complete subtree of height {height} at index {index} in size {self.size}")
        hs = len(self.hash_fn(b""))
        level, rest = divmod(height, TILE_HEIGHT)
        # The node covers 2**rest consecutive hashes of one tile at tree height 8·level (256 is a
        # multiple of 2**rest, so they never straddle two tiles); hash them up as a complete subtree.
        first = index << rest
        data = self._tile(level, first // TILE_WIDTH, authenticate=authenticate)
        at = first % TILE_WIDTH
        return _fold([data[(at + j) * hs : (at + j + 1) * hs] for j in range(1 << rest)], self.hash_fn)

    def node(self, height: int, index: int) -> bytes:
        return self._node(height, index, authenticate=True)

    def check_root(self, root: bytes) -> None:
        """That the right-edge tiles hash to ``root``; they are then trusted (the rest follow from them)."""
        raw = _UncheckedTiles(self)
        if range_hash(raw, 0, self.size) != root:
            raise TileError(f"the tiles of tree size {self.size} do not hash to the checkpoint's root")
        self._verified.update(raw.read)


@dataclass
class _UncheckedTiles:
    """A reader's tiles as fetched, for computing the root they claim (which is then compared)."""

    reader: TileReader
    read: set[str] = field(default_factory=set)

    @property
    def hash_fn(self) -> HashFn:
        return self.reader.hash_fn

    def node(self, height: int, index: int) -> bytes:
        level, rest = divmod(height, TILE_HEIGHT)
        count = self.reader.size >> (TILE_HEIGHT * level)
        tile = (index << rest) // TILE_WIDTH
        self.read.add(tile_path(level, tile, min(TILE_WIDTH, count - tile * TILE_WIDTH)))
        return self.reader._node(height, index, authenticate=False)


# --- signed notes (c2sp.org/signed-note) -------------------------------------------------------------------


def note_key_id(name: str, typed_public_key: bytes) -> bytes:
    """The 4-byte key ID: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ type ‖ public key).

    SHA-256 under both profiles: signed-note fixes it, and the ID only picks the key to try (the
    signature is what is checked)."""
    return _SHA256(name.encode() + b"\n" + typed_public_key)[:4]


def _check_key_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError(f"a key name is non-empty, without spaces or '+', got {name!r}")


def _type_prefix(public_key: bytes, cosigner: bool) -> bytes:
    """The signature type of a key: by its size, 32 bytes Ed25519, 65 bytes (04 ‖ x ‖ y) SM2."""
    if len(public_key) == 32:
        return bytes([NOTE_COSIGNATURE_ED25519 if cosigner else NOTE_ED25519])
    if len(public_key) == 65 and public_key[:1] == b"\x04":
        return NOTE_COSIGNATURE_SM2 if cosigner else NOTE_SM2
    raise NoteError(
        "a note key is a 32-byte Ed25519 key or a 65-byte SM2 point (04 ‖ x ‖ y), "
        f"got {len(public_key)} bytes"
    )


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """What a witness signs (tlog-cosignature): ``cosignature/v1``, ``time <t>``, the note text."""
    return _COSIGNATURE_HEADER + b"time %d\n" % timestamp + text


@dataclass(frozen=True)
class NoteVerifier:
    """A known signer of notes: its name and public key (32-byte Ed25519 or 65-byte SM2 point).

    ``cosigner``: a witness key, whose signatures are tlog-cosignature's timestamped ones."""

    name: str
    public_key: bytes
    cosigner: bool = False

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        _type_prefix(self.public_key, self.cosigner)

    @property
    def type_prefix(self) -> bytes:
        return _type_prefix(self.public_key, self.cosigner)

    @property
    def algorithm(self) -> str:
        return "ed25519" if len(self.public_key) == 32 else "sm2"

    @property
    def key_id(self) -> bytes:
        return note_key_id(self.name, self.type_prefix + self.public_key)

    def vkey(self) -> str:
        """The verifier key string ``<name>+<hex key ID>+<base64(type ‖ key)>`` (signed-note)."""
        encoded = base64.b64encode(self.type_prefix + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        parts = vkey.split("+", 2)  # the name has no '+'; the base64 key may
        if len(parts) != 3 or len(parts[1]) != 8:
            raise NoteError(f"a verifier key is name+hex8+base64, got {vkey!r}")
        name, hex_id, b64 = parts
        try:
            key_id, typed = bytes.fromhex(hex_id), base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError(f"verifier key {name!r}: bad hex key ID or base64 key") from None
        for prefix, size, cosigner in (
            (bytes([NOTE_ED25519]), 32, False),
            (bytes([NOTE_COSIGNATURE_ED25519]), 32, True),
            (NOTE_SM2, 65, False),
            (NOTE_COSIGNATURE_SM2, 65, True),
        ):
            if typed.startswith(prefix) and len(typed) == len(prefix) + size:
                verifier = cls(name, typed[len(prefix) :], cosigner)
                break
        else:
            raise NoteError(
                f"verifier key {name!r}: supported are Ed25519 (type 0x01, cosignature 0x04, 32-byte key) "
                "and SM2 (type 0xff gm-sm2-sm3-note/v1 or gm-sm2-sm3-cosignature/v1, 65-byte point)"
            )
        if verifier.key_id != key_id:
            raise NoteError(f"verifier key {name!r}: the key ID does not match the name and key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (after the key ID) verifies over the note text ``message``."""
        if self.cosigner:
            if len(signature) < 9:
                return False
            message = cosigned_message(message, int.from_bytes(signature[:8], "big"))
            signature = signature[8:]
        try:
            profile_of_public_key(self.public_key).verify(self.public_key, message, signature)
        except CryptoError:
            return False
        return True

    def timestamp(self, signature: bytes) -> int | None:
        """A cosignature's timestamp (seconds since the epoch); None for a plain note signature."""
        return int.from_bytes(signature[:8], "big") if self.cosigner and len(signature) >= 8 else None


def _as_signing_key(key: Any) -> SigningKey:
    """A core.crypto signing key; a raw Ed25519 private key object (as older callers pass) is loaded
    into the international profile's handle from its seed."""
    if isinstance(key, SigningKey):
        return key
    raw = getattr(key, "private_bytes_raw", None)
    if raw is None:
        raise NoteError(f"a note signer needs a core.crypto signing key, got {type(key).__name__}")
    return profile("international").load_signing_key(raw())


@dataclass(frozen=True)
class NoteSigner:
    """A signer of notes: a name and a :class:`core.crypto.SigningKey` (Ed25519 or SM2; the log's key,
    apart from the feed's). ``cosigner``: signs witness cosignatures (tlog-cosignature) instead."""

    name: str
    private_key: SigningKey
    cosigner: bool = False
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        object.__setattr__(self, "private_key", _as_signing_key(self.private_key))

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.private_key.public_bytes(), self.cosigner)

    def signature_line(self, text: bytes) -> str:
        if self.cosigner:
            ts = int(self.clock())
            stamp = ts.to_bytes(8, "big")
            blob = self.verifier.key_id + stamp + self.private_key.sign(cosigned_message(text, ts))
        else:
            blob = self.verifier.key_id + self.private_key.sign(text)
        return f"{_EM_DASH_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    if "\n\n" in text or text.startswith("\n"):
        raise NoteError("a note's text has no blank line (the blank line separates the signatures)")
    if any((c < " " and c != "\n") or c == "\x7f" for c in text):
        raise NoteError("a note's text has no control characters other than newlines")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """The signed note: ``text``, a blank line, one signature line per signer."""
    _check_note_text(text)
    if not signers:
        raise NoteError("a signed note needs at least one signer")
    body = text.encode()
    return body + b"\n" + "".join(s.signature_line(body) for s in signers).encode()


@dataclass(frozen=True)
class OpenedNote:
    text: str
    verified_by: tuple[str, ...]  # names of the known keys whose signatures verified


def open_note(note: bytes, verifiers: Sequence[NoteVerifier]) -> OpenedNote:
    """Parse ``note`` and check its signatures against the known ``verifiers``.

    As signed-note says, signatures by keys the reader does not know are skipped; but a note signed by
    no known key is refused, and so is one whose signature by a known key (same name and key ID) fails.
    """
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("a signed note is UTF-8") from None
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("a signed note has a blank line before its signatures")
    text, sig_block = decoded[: split + 1], decoded[split + 2 :]
    _check_note_text(text)
    if not sig_block.endswith("\n"):
        raise NoteError("a signed note's signature lines end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise NoteError(f"a signed note has at most {MAX_NOTE_SIGNATURES} signatures, got {len(lines)}")
    known = {(v.name, v.key_id): v for v in verifiers}
    body, verified = text.encode(), []
    for line in lines:
        name, blob = parse_signature_line(line)
        verifier = known.get((name, blob[:4]))
        if verifier is None:
            continue
        if not verifier.verify(body, blob[4:]):
            raise NoteError(f"signature by {name!r} (key {blob[:4].hex()}) does not verify")
        verified.append(name)
    if not verified:
        names = ", ".join(sorted({v.name for v in verifiers})) or "none"
        raise NoteError(f"the note is signed by no known key (known: {names})")
    return OpenedNote(text, tuple(verified))


# --- checkpoints (c2sp.org/tlog-checkpoint) ----------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's state: its origin (the log's name), tree size and root hash, and extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.origin or "\n" in self.origin:
            raise NoteError("a checkpoint's origin is one non-empty line")
        if any(not e or "\n" in e for e in self.extensions):
            raise NoteError("a checkpoint's extension lines are non-empty single lines")
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str, hash_size: int = 32) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is origin, tree size and root hash lines, each ending in a newline")
        origin, size_s, root_s, *extensions = lines[:-1]
        if not origin:
            raise NoteError("a checkpoint's origin line is empty")
        # ASCII decimal without leading zeros (or "0"): one spelling per size, so one text per state.
        if not size_s.isascii() or not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
            raise NoteError(f"a checkpoint's tree size is a decimal number, got {size_s!r}")
        try:
            root = base64.b64decode(root_s, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError(f"a checkpoint's root hash is base64, got {root_s!r}") from None
        if len(root) != hash_size:
            raise NoteError(f"a checkpoint's root hash is {hash_size} bytes, got {len(root)}")
        return cls(origin, int(size_s), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[NoteSigner]) -> bytes:
    return sign_note(checkpoint.text(), signers)


def open_checkpoint(
    note: bytes, origin: str, verifiers: Sequence[NoteVerifier], hash_size: int = 32
) -> Checkpoint:
    """The checkpoint in ``note``, refused unless it is ``origin``'s and signed by a known key."""
    opened = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(opened.text, hash_size)
    if checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is of log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


def split_note(note: bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """A note's text and its signature lines as ``(key name, key ID ‖ signature)``, unverified (for
    gathering cosignatures: who signed what is then checked with :func:`open_note`)."""
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("a signed note is UTF-8") from None
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("a signed note has a blank line before its signatures")
    text, sig_block = decoded[: split + 1], decoded[split + 2 :]
    _check_note_text(text)
    if not sig_block.endswith("\n"):
        raise NoteError("a signed note's signature lines end with a newline")
    out = []
    for line in sig_block[:-1].split("\n"):
        out.append(parse_signature_line(line))
    return text, out


def parse_signature_line(line: str) -> tuple[str, bytes]:
    """``— <name> <base64>`` (with or without its newline) as ``(name, key ID ‖ signature)``."""
    line = line.removesuffix("\n")
    if not line.startswith(_EM_DASH_PREFIX):
        raise NoteError(f"a signature line starts with '— ', got {line[:20]!r}")
    fields = line[len(_EM_DASH_PREFIX) :].split(" ")
    if len(fields) != 2 or not fields[0]:
        raise NoteError(f"a signature line is '— <name> <base64>', got {line[:40]!r}")
    name, b64 = fields
    try:
        blob = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error):
        raise NoteError(f"signature by {name!r} is not base64") from None
    if len(blob) < 5:
        raise NoteError(f"signature by {name!r} is shorter than its 4-byte key ID and a signature")
    return name, blob


def signature_line(name: str, blob: bytes) -> str:
    return f"{_EM_DASH_PREFIX}{name} {base64.b64encode(blob).decode()}\n"
