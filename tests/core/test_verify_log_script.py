"""docs/verify_log.py, the independent verifier (#19 Done-when): standard library only, it accepts an
inclusion proof in the interface's shape signed under the run's profile (Ed25519 + SHA-256, or under
``FCX_CRYPTO_PROFILE=gm`` SM2 + SM3) and refuses a forged checkpoint, an altered leaf or proof, another
key, a bad witness cosignature, each with a line naming what failed.

The script runs in a separate interpreter in isolated mode (``-I``: no project on the path)."""

from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fanchaoxin.core import crypto
from fanchaoxin.core import tlog as T

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_log.py"
ORIGIN = "fanchaoxin.test/log"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def log() -> dict[str, Any]:
    p = crypto.active()
    key = p.generate_signing_key()
    signer = T.NoteSigner("fanchaoxin.test/log-key", key)
    tree = T.MerkleLog(p.digest)
    leaves = [
        json.dumps(
            {"type": "feed", "seq": i + 1, "event": {"entry_id": f"e{i}", "status": "published"}}
        ).encode()
        for i in range(300)
    ]
    for leaf in leaves:
        tree.append(leaf)
    witness_key = p.generate_signing_key()
    witness = T.NoteSigner("dept.example/w1", witness_key, cosigner=True)
    note = T.sign_checkpoint(T.Checkpoint(ORIGIN, tree.size, tree.root()), [signer])
    note += witness.signature_line(note[: note.rfind(b"\n\n") + 1]).encode()
    chosen = [5, 257, 299]
    proof = {
        "tree_size": tree.size,
        "checkpoint": note.decode(),
        "leaves": [
            {"index": i, "leaf": _b64(leaves[i]), "proof": [_b64(h) for h in tree.inclusion_proof(i)]}
            for i in chosen
        ],
    }
    return {"proof": proof, "vkey": signer.verifier.vkey(), "witness": witness.verifier.vkey(), "profile": p}


def _run(tmp_path: Path, document: Any, *args: str, bare: bool = False) -> tuple[int, str]:
    """``bare``: no site-packages at all (``-S``), the standard library alone."""
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(document))
    flags = ["-I", "-S"] if bare else ["-I"]
    done = subprocess.run(
        [sys.executable, *flags, str(SCRIPT), str(path), *args], capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def test_the_script_imports_the_standard_library_only() -> None:
    # At module level; the signature libraries are optional imports inside the two verify functions.
    tree = ast.parse(SCRIPT.read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)


def test_with_the_standard_library_alone_the_proof_is_checked_and_the_signature_said_unchecked(
    tmp_path: Path, log: dict[str, Any]
) -> None:
    rc, out = _run(tmp_path, log["proof"], "--vkey", log["vkey"], "--origin", ORIGIN, bare=True)
    assert rc == 0, out
    assert "signature by fanchaoxin.test/log-key NOT CHECKED" in out
    assert "leaf 257 (feed 258, entry_id e257, status published) is in the log" in out
    rc, out = _run(tmp_path, log["proof"], "--vkey", log["vkey"], "--require-signature", bare=True)
    assert rc == 2 and "was not checked" in out, out
    # an altered leaf is caught by the hashing alone
    bad = json.loads(json.dumps(log["proof"]))
    bad["leaves"][0]["leaf"] = _b64(b'{"type":"feed","seq":6,"event":{"entry_id":"forged"}}')
    rc, out = _run(tmp_path, bad, "--vkey", log["vkey"], bare=True)
    assert rc == 1 and "its inclusion proof does not lead to the root" in out, out


def test_a_good_proof_is_accepted(tmp_path: Path, log: dict[str, Any]) -> None:
    rc, out = _run(
        tmp_path, log["proof"], "--vkey", log["vkey"], "--witness", log["witness"], "--origin", ORIGIN
    )
    assert rc == 0, out
    assert "signature by fanchaoxin.test/log-key verifies" in out
    assert "leaf 257 (feed 258, entry_id e257, status published) is in the log" in out
    assert "cosigned by witness dept.example/w1" in out
    assert out.strip().endswith("OK    every check passed")
    # carried inside a confirmation, as the record page and the confirmations carry it
    rc, out = _run(tmp_path, {"objection": {"id": "x", "log_proof": log["proof"]}}, "--vkey", log["vkey"])
    assert rc == 0, out
    assert "note  other signatures on the checkpoint, not checked: dept.example/w1" in out


def _flip_last(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return _b64(bytes(raw))


def test_forgeries_are_refused_naming_what_failed(tmp_path: Path, log: dict[str, Any]) -> None:
    good = log["proof"]
    text, lines = T.split_note(good["checkpoint"].encode())
    (name, blob), witness_line = lines[0], lines[1]

    def with_checkpoint(sig_lines: list[tuple[str, bytes]]) -> dict[str, Any]:
        note = text + "\n" + "".join(T.signature_line(n, b) for n, b in sig_lines)
        return dict(good, checkpoint=note)

    cases = [
        (with_checkpoint([(name, blob[:-1] + bytes([blob[-1] ^ 1])), witness_line]), (), "does not verify"),
        (
            dict(good, leaves=[dict(good["leaves"][0], leaf=_b64(b'{"type":"feed","seq":6}'))]),
            (),
            "leaf 5 (feed 6): its inclusion proof does not lead to the root",
        ),
        (
            dict(good, leaves=[dict(good["leaves"][1], proof=[_flip_last(good["leaves"][1]["proof"][0])])]),
            (),
            "leaf 257",
        ),
        (dict(good, leaves=[dict(good["leaves"][1], index=258)]), (), "leaf 258"),
        (
            with_checkpoint(
                [(name, blob), (witness_line[0], witness_line[1][:-1] + bytes([witness_line[1][-1] ^ 1]))]
            ),
            ("--witness", log["witness"]),
            "the cosignature by witness dept.example/w1 does not verify",
        ),
        (with_checkpoint([(name, blob)]), ("--witness", log["witness"]), "no cosignature by witness"),
        ({"something": 1}, (), "no inclusion proof in the file"),
    ]
    for document, extra, expected in cases:
        rc, out = _run(tmp_path, document, "--vkey", log["vkey"], *extra)
        assert rc == 1, out
        assert "FAIL" in out and expected in out, out
    # another log's key: the checkpoint carries no signature by it
    other = T.NoteSigner("fanchaoxin.test/log-key", log["profile"].generate_signing_key())
    rc, out = _run(tmp_path, good, "--vkey", other.verifier.vkey())
    assert rc == 1 and "no signature by fanchaoxin.test/log-key" in out, out
    # the witness key given as the log key
    rc, out = _run(tmp_path, good, "--vkey", log["witness"])
    assert rc == 1 and "a witness key, not the log's" in out, out
