"""The transparency log's foundation (透明日志, #19): RFC 9162 hashing and proofs, C2SP notes and tiles."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fanchaoxin.core.crypto import profile
from fanchaoxin.core.tlog import (
    Checkpoint,
    MerkleLog,
    NoteError,
    NoteSigner,
    NoteVerifier,
    OpenedNote,
    ProofError,
    TileError,
    TileReader,
    TlogError,
    consistency_proof,
    encode_tile_index,
    entries_path,
    entry_bundle,
    inclusion_proof,
    leaf_hash,
    node_hash,
    note_key_id,
    open_checkpoint,
    open_note,
    parse_entry_bundle,
    range_hash,
    sign_checkpoint,
    sign_note,
    tile_path,
    verify_consistency,
    verify_inclusion,
)

# The test tree of RFC 6962's reference implementations (certificate-transparency C++ and Go's
# transparency-dev/merkle testdata): eight leaves and the roots of its first 1 … 8 leaves.
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes.fromhex("606162636465666768696a6b6c6d6e6f"),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Audit and consistency paths of the same suites.
INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CONSISTENCY = {
    (1, 8): INCLUSION[(0, 8)],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def reference_mth(leaves: list[bytes], hash_fn=lambda b: hashlib.sha256(b).digest()) -> bytes:
    """MTH straight from RFC 9162 §2.1.1's recursion, over the leaves themselves: the independent root."""
    n = len(leaves)
    if n == 0:
        return hash_fn(b"")
    if n == 1:
        return hash_fn(b"\x00" + leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return hash_fn(b"\x01" + reference_mth(leaves[:k], hash_fn) + reference_mth(leaves[k:], hash_fn))


def build(n: int, hash_fn=None) -> tuple[MerkleLog, list[bytes]]:
    log = MerkleLog() if hash_fn is None else MerkleLog(hash_fn)
    leaves = [i.to_bytes(4, "big") + b"entry" for i in range(n)]
    for leaf in leaves:
        log.append(leaf)
    return log, leaves


@pytest.fixture(scope="module")
def tree8() -> MerkleLog:
    log = MerkleLog()
    for i, leaf in enumerate(LEAVES):
        assert log.append(leaf) == i
    return log


# --- RFC vectors -------------------------------------------------------------------------------------------


def test_roots_of_the_reference_tree(tree8: MerkleLog) -> None:
    assert [tree8.root(n).hex() for n in range(1, 9)] == ROOTS
    assert tree8.root(0) == hashlib.sha256(b"").digest()
    assert tree8.leaf_hash(0).hex() == ROOTS[0]  # one leaf: the root is its leaf hash


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_known_inclusion_paths(tree8: MerkleLog, index: int, size: int) -> None:
    proof = tree8.inclusion_proof(index, size)
    assert [p.hex() for p in proof] == INCLUSION[(index, size)]
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), proof, bytes.fromhex(ROOTS[size - 1]))


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_known_consistency_paths(tree8: MerkleLog, old: int, new: int) -> None:
    proof = tree8.consistency_proof(old, new)
    assert [p.hex() for p in proof] == CONSISTENCY[(old, new)]
    verify_consistency(old, new, bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1]), proof)


# --- proofs against independently computed roots -------------------------------------------------------------


def test_every_inclusion_proof_up_to_64() -> None:
    log, leaves = build(64)
    for n in range(1, 65):
        root = reference_mth(leaves[:n])
        assert log.root(n) == root
        for m in range(n):
            proof = log.inclusion_proof(m, n)
            verify_inclusion(m, n, leaf_hash(leaves[m]), proof, root)
            # the same leaf under another index, or against another size's root, fails
            with pytest.raises(ProofError):
                verify_inclusion(m, n, leaf_hash(leaves[(m + 1) % 64]), proof, root)
            if n > 1:
                with pytest.raises(ProofError):
                    verify_inclusion((m + 1) % n, n, leaf_hash(leaves[m]), proof, root)


def test_every_consistency_proof_up_to_100() -> None:
    log, leaves = build(100)
    roots = [reference_mth(leaves[:n]) for n in range(101)]
    bad = hashlib.sha256(b"not the old root").digest()
    for new in range(1, 101):
        for old in range(1, new + 1):
            proof = log.consistency_proof(old, new)
            verify_consistency(old, new, roots[old], roots[new], proof)
            with pytest.raises(ProofError):
                verify_consistency(old, new, bad, roots[new], proof)
            with pytest.raises(ProofError):
                verify_consistency(old, new, roots[old], bad, proof)


def test_tampered_and_misapplied_proofs_fail() -> None:
    log, leaves = build(37)
    root = log.root()
    proof = log.inclusion_proof(20)
    for i in range(len(proof)):
        tampered = list(proof)
        tampered[i] = bytes([tampered[i][0] ^ 1]) + tampered[i][1:]
        with pytest.raises(ProofError, match="does not lead to the root"):
            verify_inclusion(20, 37, leaf_hash(leaves[20]), tampered, root)
    with pytest.raises(ProofError):  # the right proof checked as if the tree had another size
        verify_inclusion(20, 36, leaf_hash(leaves[20]), proof, log.root(36))
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(20, 37, leaf_hash(leaves[20]), [*proof, proof[0]], root)
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(20, 37, leaf_hash(leaves[20]), proof[:-1], root)
    with pytest.raises(ProofError, match="not below"):
        verify_inclusion(37, 37, leaf_hash(leaves[20]), proof, root)

    cproof = log.consistency_proof(13, 37)
    for i in range(len(cproof)):
        tampered = list(cproof)
        tampered[i] = hashlib.sha256(tampered[i]).digest()
        with pytest.raises(ProofError):
            verify_consistency(13, 37, log.root(13), root, tampered)
    with pytest.raises(ProofError):  # the proof for 13 → 37 does not show 14 → 37
        verify_consistency(14, 37, log.root(14), root, cproof)
    with pytest.raises(ProofError, match="empty consistency proof"):
        verify_consistency(13, 37, log.root(13), root, [])
    with pytest.raises(ProofError, match="down to"):
        verify_consistency(37, 13, root, log.root(13), cproof)


def test_consistency_edge_sizes() -> None:
    log, _ = build(10)
    assert log.consistency_proof(0, 10) == [] and log.consistency_proof(10, 10) == []
    verify_consistency(0, 10, b"", log.root(), [])
    verify_consistency(10, 10, log.root(), log.root(), [])
    with pytest.raises(ProofError, match="different roots"):  # a split view: one size, two roots
        verify_consistency(10, 10, log.root(), log.root(9), [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(0, 10, b"", log.root(), [log.root()])


def test_sizes_the_log_does_not_have_are_refused() -> None:
    log, _ = build(5)
    with pytest.raises(TlogError):
        log.root(6)
    with pytest.raises(ProofError):
        log.inclusion_proof(0, 6)
    with pytest.raises(ProofError, match="no leaf 5"):
        log.inclusion_proof(5)
    with pytest.raises(ProofError):
        log.consistency_proof(2, 6)
    with pytest.raises(ProofError):
        log.consistency_proof(4, 3)
    with pytest.raises(TlogError, match="32 bytes"):
        log.append_hash(b"short")


def test_rebuilt_from_leaf_hashes_is_the_same_tree() -> None:
    log, _ = build(300)
    again = MerkleLog.from_leaf_hashes(log.leaf_hash(i) for i in range(300))
    assert again.root() == log.root() and len(again) == 300


def test_the_gm_profile_hashes_with_sm3() -> None:
    sm3 = profile("gm").digest
    log, leaves = build(50, sm3)
    assert log.root() == reference_mth(leaves, sm3)
    assert log.root() != build(50)[0].root()
    proof = log.inclusion_proof(17)
    verify_inclusion(17, 50, leaf_hash(leaves[17], sm3), proof, log.root(), sm3)
    with pytest.raises(ProofError):  # an SM3 proof does not verify under SHA-256
        verify_inclusion(17, 50, leaf_hash(leaves[17], sm3), proof, log.root())
    verify_consistency(20, 50, log.root(20), log.root(), log.consistency_proof(20), sm3)
    intl = profile("international").digest
    assert build(9, intl)[0].root() == build(9)[0].root()


def test_node_hash_is_rfc_9162() -> None:
    a, b = b"a" * 32, b"b" * 32
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


# --- signed notes and checkpoints ----------------------------------------------------------------------------

ORIGIN = "fanchaoxin.example/log"


def signer(name: str = "fanchaoxin.example/log") -> NoteSigner:
    return NoteSigner(name, Ed25519PrivateKey.generate())


def test_checkpoint_round_trip(tree8: MerkleLog) -> None:
    s = signer()
    cp = Checkpoint(ORIGIN, 8, tree8.root())
    note = sign_checkpoint(cp, [s])
    text, sigs = note.decode().split("\n\n")
    assert text.split("\n") == [ORIGIN, "8", base64.b64encode(bytes.fromhex(ROOTS[7])).decode()]
    assert sigs.startswith("\u2014 fanchaoxin.example/log ") and sigs.endswith("\n")
    blob = base64.b64decode(sigs.split(" ")[2])
    assert blob[:4] == s.verifier.key_id and len(blob) == 4 + 64
    assert open_checkpoint(note, ORIGIN, [s.verifier]) == cp
    extended = Checkpoint(ORIGIN, 8, tree8.root(), ("ext line",))
    assert open_checkpoint(sign_checkpoint(extended, [s]), ORIGIN, [s.verifier]) == extended


def test_the_published_signed_note_example_verifies() -> None:
    """The example of Go's golang.org/x/mod/sumdb/note (signed-note's reference implementation): its
    verifier key and note, signed elsewhere, read and verify here: key ID, key and line formats agree."""
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    sig = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    verifier = NoteVerifier.from_vkey(vkey)
    assert verifier.vkey() == vkey and verifier.key_id.hex() == "c74f20a3"
    note = f"{text}\n\u2014 PeterNeumann {sig}\n".encode()
    assert open_note(note, [verifier]) == OpenedNote(text, ("PeterNeumann",))
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note.replace(b"answer", b"Answer"), [verifier])


def test_key_id_and_verifier_key_follow_signed_note() -> None:
    s = signer("example.com/log")
    v = s.verifier
    assert v.key_id == hashlib.sha256(b"example.com/log\n\x01" + v.public_key).digest()[:4]
    assert note_key_id(v.name, b"\x01" + v.public_key) == v.key_id
    vkey = v.vkey()
    name, hex_id, b64 = vkey.split("+", 2)
    assert (name, hex_id, base64.b64decode(b64)) == (
        "example.com/log",
        v.key_id.hex(),
        b"\x01" + v.public_key,
    )
    assert NoteVerifier.from_vkey(vkey) == v
    for _ in range(64):  # keys whose base64 holds '+' or '/' (most of them) read back too
        other = signer("example.com/log").verifier
        assert NoteVerifier.from_vkey(other.vkey()) == other
    with pytest.raises(NoteError, match="key ID does not match"):
        NoteVerifier.from_vkey(f"other.name+{hex_id}+{b64}")
    with pytest.raises(NoteError):
        NoteVerifier.from_vkey("no-plus-signs")
    with pytest.raises(NoteError, match="key name"):
        NoteSigner("has space", Ed25519PrivateKey.generate())


def test_checkpoint_refusals(tree8: MerkleLog) -> None:
    s, other = signer(), signer("someone.else")
    note = sign_checkpoint(Checkpoint(ORIGIN, 8, tree8.root()), [s])
    with pytest.raises(NoteError, match=r"expected 'fanchaoxin\.example/log'"):
        open_checkpoint(
            sign_checkpoint(Checkpoint("evil.example/log", 8, tree8.root()), [s]), ORIGIN, [s.verifier]
        )
    with pytest.raises(NoteError, match="no known key"):
        open_checkpoint(note, ORIGIN, [other.verifier])
    # same name, another key: its key ID differs, so it is an unknown key too
    with pytest.raises(NoteError, match="no known key"):
        open_checkpoint(note, ORIGIN, [signer().verifier])
    forged = note.replace(b"\n8\n", b"\n9\n")
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(forged, ORIGIN, [s.verifier])
    text, sig = note.split(b"\n\n")
    raw = base64.b64decode(sig.split(b" ")[2])
    bad_sig = (
        text
        + b"\n\n"
        + "\u2014 ".encode()
        + s.name.encode()
        + b" "
        + base64.b64encode(raw[:4] + bytes(64))
        + b"\n"
    )
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(bad_sig, ORIGIN, [s.verifier])
    # an unknown key's extra signature is skipped, the known one still counts
    cosigned = sign_note(Checkpoint(ORIGIN, 8, tree8.root()).text(), [other, s])
    assert open_note(cosigned, [s.verifier]).verified_by == (s.name,)
    assert open_note(cosigned, [s.verifier, other.verifier]).verified_by == (other.name, s.name)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (b"no blank line\n", "blank line"),
        (b"a\nb\nc\n\n- name AAAA\n", "starts with"),
        (b"a\nb\nc\n\n\xe2\x80\x94 name AAAA", "end with a newline"),
        (b"a\nb\nc\n\n\xe2\x80\x94 name !!!!\n", "not base64"),
        (b"a\nb\nc\n\n\xe2\x80\x94 name AAAA\n", "shorter"),
        (b"a\nb\nc\n\n\xe2\x80\x94 name\n", "name> <base64"),
        (b"a\rb\nc\n\n\xe2\x80\x94 name AAAAAAAA\n", "control characters"),
        (b"\xff\n\n\xe2\x80\x94 name AAAAAAAA\n", "UTF-8"),
    ],
)
def test_malformed_notes_are_refused(note: bytes, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        open_note(note, [signer().verifier])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("origin\n8\n", "origin, tree size and root hash"),
        ("origin\n08\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
        ("origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
        ("origin\n8\nnot base64!\n", "base64"),
        ("origin\n8\n" + base64.b64encode(bytes(31)).decode() + "\n", "32 bytes"),
        ("\n8\n" + base64.b64encode(bytes(32)).decode() + "\n", "origin line is empty"),
    ],
)
def test_malformed_checkpoints_are_refused(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Checkpoint.parse(text)


# --- tiles ----------------------------------------------------------------------------------------------------


def test_tile_paths() -> None:
    assert encode_tile_index(1234067) == "x001/x234/067"  # the example of c2sp.org/tlog-tiles
    assert (
        encode_tile_index(0) == "000"
        and encode_tile_index(5) == "005"
        and encode_tile_index(1000) == "x001/000"
    )
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 1234067, 8) == "tile/1/x001/x234/067.p/8"
    assert entries_path(1234067, 8) == "tile/entries/x001/x234/067.p/8"
    with pytest.raises(TileError):
        tile_path(0, 0, 0)
    with pytest.raises(TileError):
        tile_path(64, 0)


def test_tiles_of_a_tree() -> None:
    log, _ = build(70000)
    tiles = dict(log.tiles())
    # level 0: 273 full tiles and one of 112; level 1: 70000 >> 8 = 273 hashes, one full tile and 17;
    # level 2: 70000 >> 16 = 1 hash, a partial tile of one.
    assert len([p for p in tiles if p.startswith("tile/0/")]) == 274
    assert tiles["tile/0/273.p/112"] == b"".join(log.leaf_hash(i) for i in range(273 * 256, 70000))
    assert set(p for p in tiles if not p.startswith("tile/0/")) == {
        "tile/1/000",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
    }
    assert tiles["tile/1/000"][:32] == log.root(256)  # a level-1 hash is a full level-0 tile's root
    assert tiles["tile/2/000.p/1"] == log.root(65536)
    assert all(len(data) % 32 == 0 and 0 < len(data) <= 256 * 32 for data in tiles.values())


@pytest.mark.parametrize("size", [1, 255, 256, 257, 1000, 65536, 70000])
def test_proofs_from_tiles_equal_proofs_from_the_tree(size: int) -> None:
    log, _ = build(size)
    tiles = dict(log.tiles())
    for reader in (TileReader(size, tiles.__getitem__), TileReader(size, tiles.__getitem__, root=log.root())):
        assert range_hash(reader, 0, size) == log.root()
        for index in {0, size // 3, size // 2, size - 1}:
            assert inclusion_proof(reader, index, size) == log.inclusion_proof(index)
        for old in {1, size // 7 + 1, size // 2, size - 1, size}:
            assert consistency_proof(reader, old, size) == log.consistency_proof(old)
    TileReader(size, tiles.__getitem__).check_root(log.root())


def tampered(tiles: dict[str, bytes], path: str) -> dict[str, bytes]:
    out = dict(tiles)
    out[path] = bytes(32) + out[path][32:]
    return out


def test_a_tampered_tile_is_caught() -> None:
    log, _ = build(70000)
    tiles, root = dict(log.tiles()), log.root()
    # a full level-0 tile: does not fold to its level-1 entry (the root alone would not see it)
    reader = TileReader(70000, tampered(tiles, "tile/0/001").__getitem__, root=root)
    with pytest.raises(TileError, match="tile/0/001 does not hash to its entry in the tile above"):
        inclusion_proof(reader, 300, 70000)
    inclusion_proof(reader, 70000 - 1, 70000)  # the untouched tiles still serve
    # a full level-1 tile: every level-0 tile under it is refused, the level-1 tile named
    reader = TileReader(70000, tampered(tiles, "tile/1/000").__getitem__, root=root)
    with pytest.raises(TileError, match="tile/1/000 does not hash"):
        inclusion_proof(reader, 5, 70000)
    # a right-edge tile: the root does not match
    for path in ("tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"):
        reader = TileReader(70000, tampered(tiles, path).__getitem__, root=root)
        with pytest.raises(TileError, match="do not hash to the checkpoint's root"):
            inclusion_proof(reader, 69999, 70000)
        with pytest.raises(TileError, match="do not hash to the checkpoint's root"):
            TileReader(70000, tampered(tiles, path).__getitem__).check_root(root)
    short = dict(tiles)
    short["tile/0/002"] = short["tile/0/002"][:-32]
    with pytest.raises(TileError, match="expected 8192"):
        TileReader(70000, short.__getitem__).node(0, 600)


def test_entry_bundles() -> None:
    entries = [b"", b"a", b"x" * 300]
    bundle = entry_bundle(entries)
    assert bundle == b"\x00\x00" + b"\x00\x01a" + b"\x01\x2c" + b"x" * 300
    assert parse_entry_bundle(bundle) == entries
    with pytest.raises(TileError):
        parse_entry_bundle(bundle[:-1])
    with pytest.raises(TileError):
        entry_bundle([])
