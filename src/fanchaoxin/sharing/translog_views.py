"""Routes of the transparency log (透明日志, #19): checkpoint, key, tiles, proofs, cosignatures, statements.

The checkpoint, the verifier keys, the hash tiles and consistency proofs hold no record: anyone may read
them (a CDN or a static server can serve the same files). Entry bundles and inclusion proofs carry the
shared records, so they are for those who read the shared feed.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.core import audit, permissions, tlog
from fanchaoxin.core.auth import DB, Principal, allow, allow_public
from fanchaoxin.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from fanchaoxin.core.schemas import INT64_MAX, StrictModel
from fanchaoxin.orgs.node_keys import NodeKey
from fanchaoxin.sharing import translog

router = APIRouter(prefix="/v1/log", tags=["transparency log"])

FEED_READERS = permissions.SHARED_LIST_READERS
WITNESSES = permissions.INSTRUCTION_ADDRESSEES  # enterprises (their nodes) and departments
IMMUTABLE = "public, max-age=31536000, immutable"


def _invalid(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(
        message, errors=[{"in": "query", "field": field, "type": "invalid", "message": message}]
    )


@router.get("/checkpoint", summary="The latest checkpoint (C2SP signed note) with witness cosignatures")
def get_checkpoint(session: Session = DB, principal: Principal = allow_public()) -> Response:
    note = translog.current_checkpoint_note(session)
    return PlainTextResponse(note, headers={"Cache-Control": "no-cache"})


@router.get("/key", summary="The log's origin, profile, hash and verifier keys (current and retired)")
def get_key(principal: Principal = allow_public()) -> dict[str, Any]:
    return translog.load_log_keys().public()


def _tile_response(session: Session, path: str) -> Response:
    try:
        data, full = translog.read_tile(session, path)
    except tlog.TileError as exc:
        raise NotFound(str(exc)) from None
    except translog.LogError as exc:
        raise NotFound(str(exc)) from None
    cache = IMMUTABLE if full else "public, max-age=60"
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})


@router.get("/tile/entries/{path:path}", summary="An entry bundle (tlog-tiles): the leaves themselves")
def get_entries(path: str, session: Session = DB, principal: Principal = allow(*FEED_READERS)) -> Response:
    return _tile_response(session, f"tile/entries/{path}")


@router.get("/tile/{path:path}", summary="A hash tile (tlog-tiles); full tiles are immutable")
def get_tile(path: str, session: Session = DB, principal: Principal = allow_public()) -> Response:
    if path.startswith("entries/"):
        raise Forbidden("Entry bundles are read at /v1/log/tile/entries/ with a key that reads the feed")
    return _tile_response(session, f"tile/{path}")


@router.get(
    "/proof/inclusion", summary="Inclusion proofs of an entry's leaves, a leaf, or a feed event's leaf"
)
def get_inclusion(
    entry: uuid.UUID | None = Query(None, description="Every leaf about this entry."),
    index: int | None = Query(None, ge=0, le=INT64_MAX, description="The leaf at this index."),
    feed_seq: int | None = Query(None, ge=1, le=INT64_MAX, description="The leaf of this feed event."),
    session: Session = DB,
    principal: Principal = allow(*FEED_READERS),
) -> dict[str, Any]:
    if sum(x is not None for x in (entry, index, feed_seq)) != 1:
        raise _invalid("entry", "give exactly one of entry, index, feed_seq")
    try:
        return translog.inclusion(session, entry_id=entry, index=index, feed_seq=feed_seq)
    except LookupError as exc:
        raise NotFound(str(exc)) from None


@router.get("/proof/consistency", summary="A consistency proof between two tree sizes")
def get_consistency(
    from_: Annotated[int, Query(alias="from", ge=0, le=INT64_MAX)],
    to: Annotated[int, Query(ge=0, le=INT64_MAX)],
    session: Session = DB,
    principal: Principal = allow_public(),
) -> dict[str, Any]:
    try:
        return translog.consistency(session, from_, to)
    except tlog.ProofError as exc:
        raise _invalid("to", str(exc)) from None


class CosignatureIn(StrictModel):
    checkpoint: str = Field(max_length=20_000, description="The checkpoint's signed note as served.")
    cosignature: str = Field(max_length=2_000, description="The witness's signature line (— name base64).")


@router.post("/cosignature", summary="A witness's cosignature of a checkpoint (tlog-cosignature)")
def post_cosignature(
    body: CosignatureIn, session: Session = DB, principal: Principal = allow(*WITNESSES)
) -> dict[str, Any]:
    if principal.org_id is None:
        raise Forbidden("This key belongs to no organisation; witnesses cosign with their enrolled key")
    keys = [
        translog.WitnessKey(k.key_id, k.public_bytes)
        for k in session.scalars(
            select(NodeKey).where(NodeKey.owner_org_id == principal.org_id, NodeKey.revoked_at.is_(None))
        )
    ]
    try:
        row = translog.add_cosignature(session, principal.org_id, body.checkpoint, body.cosignature, keys)
    except translog.CosignatureRefused as exc:
        if exc.unknown_key:
            raise Forbidden(str(exc)) from None
        raise ValidationProblem(
            str(exc), errors=[{"in": "body", "field": "cosignature", "type": "invalid", "message": str(exc)}]
        ) from None
    audit.record(
        session,
        principal.actor,
        "log.cosignature",
        "log_checkpoint",
        str(row.checkpoint_id),
        detail={"witness_key_id": row.witness_key_id},
    )
    return {"checkpoint_id": row.checkpoint_id, "witness_key_id": row.witness_key_id, "accepted": True}


class StatementIn(StrictModel):
    subject_id: uuid.UUID | None = Field(None, description="The subject, by its id.")
    tag: str | None = Field(None, max_length=200, description="Or one of the subject's identifier tags.")
    entry_id: uuid.UUID | None = Field(None, description="For 'entry X was revoked/repaired on D'.")


@router.post("/statement", summary="A signed statement, checkable offline, about a subject or an entry")
def post_statement(
    body: StatementIn, session: Session = DB, principal: Principal = allow(*permissions.REVIEWERS)
) -> Response:
    try:
        note = translog.make_statement(
            session, subject_id=body.subject_id, tag=body.tag, entry_id=body.entry_id
        )
    except translog.StatementRefused as exc:
        raise Conflict(str(exc)) from None
    audit.record(
        session,
        principal.actor,
        "log.statement",
        "entry" if body.entry_id else "subject",
        str(body.entry_id or body.subject_id or "tag"),
    )
    return PlainTextResponse(note)
