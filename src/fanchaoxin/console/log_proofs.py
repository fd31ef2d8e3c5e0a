"""The transparency log's inclusion proof (透明日志收录证明, #19) on the public pages.

The record page of a listed entry and the confirmations of an objection (异议), a credit repair
application (信用修复) and a correction notice (更正公告) carry the entry's inclusion proof and the
checkpoint it is in, so that the listed subject can show anyone, offline, that this is what the platform
logged — with `docs/verify_log.py` (standard library only) and the log's verifier key.

The proof is `translog.entry_proof` as it is: the entry's leaves (shared records: identifiers only as
tags, a person's name and other personal fields left out by `sharing.feed.share_record`), their audit
paths and the signed checkpoint. Nothing here adds to it. An entry without a leaf (published before the
log began) is said so in words; a log that cannot be read (its key file) is said so too, never a 500.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fanchaoxin.core.crypto import CryptoError
from fanchaoxin.sharing import translog
from fanchaoxin.sharing.translog_models import LogCheckpoint

log = logging.getLogger(__name__)

# What reading or signing the log may raise (its key file, a signature, a tile, the database): the page
# then says the proof is unavailable, and the request goes on.
UNREADABLE = (translog.LogError, CryptoError, OSError, ValueError, SQLAlchemyError)

INCLUDED = "included"
NO_LEAF = "no_leaf"
UNAVAILABLE = "unavailable"


def proof_document(session: Session, entry_id: uuid.UUID) -> dict[str, Any] | None:
    """The proof in the interface's shape ``{"tree_size","checkpoint","leaves":[{index,leaf,proof}]}``,
    or None when the entry has no leaf. Raises one of `UNREADABLE` when the log cannot be read or signed.

    In a savepoint: the checkpoint `entry_proof` may sign is written in the request's transaction, and a
    failure there must not undo what the request did (the objection just filed)."""
    with session.begin_nested():
        return translog.entry_proof(session, entry_id)


def proof_or_none(session: Session, entry_id: uuid.UUID) -> dict[str, Any] | None:
    """`proof_document`, or None when the entry has no leaf or the log cannot give a proof now."""
    try:
        return proof_document(session, entry_id)
    except UNREADABLE:
        log.warning("no inclusion proof for entry %s", entry_id, exc_info=True)
        return None


def _key_id(vkey: str) -> str:
    # signed-note's verifier key is <name>+<hex key ID>+<base64>; a name never holds a '+'
    parts = vkey.split("+")
    return parts[1] if len(parts) == 3 else ""


def proof_section(session: Session, entry_id: uuid.UUID | None) -> dict[str, Any]:
    """What a page shows of the entry's inclusion proof: its state, the tree size, the checkpoint's time,
    the signing key's vkey and its fingerprint (key ID); the document itself is the download's."""
    if entry_id is None:
        return {"state": NO_LEAF}
    try:
        doc = proof_document(session, entry_id)
        if doc is None:
            return {"state": NO_LEAF}
        cp = session.scalar(
            select(LogCheckpoint)
            .where(LogCheckpoint.size == doc["tree_size"])
            .order_by(LogCheckpoint.id.desc())
            .limit(1)
        )
        keys = translog.load_log_keys()
    except UNREADABLE:
        log.warning("no inclusion proof for entry %s", entry_id, exc_info=True)
        return {"state": UNAVAILABLE}
    vkey = cp.vkey if cp is not None else keys.vkey
    return {
        "state": INCLUDED,
        "tree_size": doc["tree_size"],
        "checkpoint_at": cp.at if cp is not None else None,
        "origin": keys.origin,
        "hash": keys.hash_name,
        "vkey": vkey,
        "key_id": _key_id(vkey),
        "indices": [leaf["index"] for leaf in doc["leaves"]],
    }


def key_facts() -> dict[str, Any] | None:
    """The log's origin, hash and current verifier key with its fingerprint, or None when unreadable."""
    try:
        keys = translog.load_log_keys()
        vkey = keys.vkey
    except UNREADABLE:
        log.warning("the transparency log's key cannot be read", exc_info=True)
        return None
    return {"origin": keys.origin, "hash": keys.hash_name, "vkey": vkey, "key_id": _key_id(vkey)}


def proof_response(doc: dict[str, Any], name: str) -> Response:
    """The proof as a JSON download, ``log-proof-<name>.json``, the file `verify_log.py` reads."""
    body = json.dumps(doc, ensure_ascii=False, indent=1).encode()
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="log-proof-{name}.json"',
            "Cache-Control": "no-store",
        },
    )
