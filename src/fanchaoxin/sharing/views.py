"""Routes of sharing without leaking: keys, signed manifest, snapshots, deltas, blinded evaluation with
quotas, need-to-know entry details, webhooks and dead letters (docs/sharing.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse
from pydantic import Field
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.views import entry_out
from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import NotFound, Problem, ValidationProblem
from fanchaoxin.core.permissions import allow_participant
from fanchaoxin.core.roles import Role as R
from fanchaoxin.core.schemas import INT64_MAX, ResponseModel, StrictModel
from fanchaoxin.core.tenancy import get_visible
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.budget import limits_of
from fanchaoxin.orgs.decision_log import DecisionLogWriter, LogRecord
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sharing import changes, feed, outbox, protocol, service
from fanchaoxin.sharing import evaluate as evaluation
from fanchaoxin.sharing.models import FeedEvent, Snapshot

router = APIRouter(prefix="/v1/sharing", tags=["sharing"])
changes_router = APIRouter(prefix="/v1", tags=["feed"])

# The feed, its snapshots and deltas carry the market-shared list: never a department's (lists.yaml).
FEED_READERS = permissions.SHARED_LIST_READERS
SUBSCRIBERS = permissions.WEBHOOK_SUBSCRIBERS


class Gone(Problem):
    status = 410
    slug = "gone"
    title = "No longer available"
    title_zh = "已不可用"


def _takes_part(session: Session, principal: Principal) -> bool:
    """An enterprise sees shared entries while its sharing agreement is in force (orgs.agreements, as
    instructions go only to such participants: sanctions.service.participants)."""
    org = session.get(Organisation, principal.org_id) if principal.org_id else None
    return org is not None and agreements.standing(session, org, china_today()).in_force


def _settings(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.settings


def _not_modified(request: Request, etag: str) -> bool:
    return request.headers.get("if-none-match") in (etag, f"W/{etag}")


@router.get("/keys", summary="The feed-signing public key and the active OPRF public keys")
def get_keys(request: Request, principal: Principal = allow(*FEED_READERS)) -> dict[str, Any]:
    return service.load_keys(_settings(request)).public()


@router.get("/manifest", summary="The signed manifest: head, snapshot, key ids (ETag, If-None-Match)")
def get_manifest(
    request: Request, session: Session = DB, principal: Principal = allow_participant(*FEED_READERS)
) -> Response:
    settings = _settings(request)
    keys = service.load_keys(settings)
    snap = feed.current_snapshot(
        request.app.state.db, keys, service.snapshot_dir(settings), workers=settings.sharing_tag_workers
    )
    document, etag = feed.manifest(session, keys, snap)
    if _not_modified(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(document, headers={"ETag": etag, "Cache-Control": "no-cache"})


@router.get("/snapshots/{seq}", summary="A signed snapshot file (fcx-feed-snapshot/2, gzip)")
def get_snapshot(
    seq: Annotated[int, Path(ge=0, le=INT64_MAX)],
    request: Request,
    session: Session = DB,
    principal: Principal = allow_participant(*FEED_READERS),
) -> Response:
    snap = session.get(Snapshot, seq)
    directory = service.snapshot_dir(_settings(request))
    # A file that no longer matches the digest the manifest signed is never sent.
    if snap is None or not feed.snapshot_file_intact(snap, directory):
        raise NotFound(f"No snapshot at {seq}; the manifest names the current one")
    path = directory / snap.filename
    etag = f'"{snap.digest}"'
    if _not_modified(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    audit.record_read(
        session, principal.actor, "sharing.snapshot.read", "snapshot", str(seq), detail={"count": snap.count}
    )
    return FileResponse(path, media_type="application/gzip", headers={"ETag": etag})


@router.get("/deltas", summary="Signed delta file of the feed events after a sequence number")
def get_deltas(
    request: Request,
    after: int = Query(ge=0, le=INT64_MAX, description="The receiver's head: events after it are sent."),
    limit: int = Query(10_000, ge=1, le=feed.DELTA_MAX),
    session: Session = DB,
    principal: Principal = allow_participant(*FEED_READERS),
) -> Response:
    keys = service.load_keys(_settings(request))
    try:
        delta = feed.delta(session, keys, after, limit)
    except feed.DeltaGone as exc:
        raise Gone(str(exc)) from None
    if _not_modified(request, delta.etag):
        return Response(status_code=304, headers={"ETag": delta.etag})
    if delta.header["count"]:
        audit.record_read(
            session,
            principal.actor,
            "sharing.delta.read",
            "feed",
            f"{delta.header['from']}..{delta.header['to']}",
            detail={"count": delta.header["count"]},
        )
    return Response(delta.data, media_type="application/gzip", headers={"ETag": delta.etag})


class EvaluateIn(StrictModel):
    key_id: str | None = Field(None, description="OPRF key id; the current key if absent.")
    blinded: list[Any] = Field(description="Base64 blinded elements (32 bytes each), 1 to 1,000.")
    purpose: str | None = Field(
        None, min_length=1, max_length=200, description="Why these are evaluated (decision log)."
    )


@router.post("/evaluate", summary="Blinded evaluation of up to 1,000 elements with one DLEQ proof (quota)")
def post_evaluate(
    body: EvaluateIn,
    request: Request,
    session: Session = DB,
    principal: Principal = allow_participant(R.enterprise_node),
) -> dict[str, Any]:
    """Draws on the enterprise's daily bucket and its per-minute evaluations (429 with `Retry-After`);
    each batch answered is one decision-log record with its count (the platform never sees the
    identifiers)."""
    settings = _settings(request)
    org = session.get(Organisation, principal.org_id)
    assert org is not None
    ring = service.load_keys(settings).ring
    buckets: evaluation.EvaluationBuckets = request.app.state.evaluation_buckets
    out = evaluation.evaluate(
        session, org, ring, body.blinded, body.key_id, buckets, request.app.state.budget
    )
    writer: DecisionLogWriter = request.app.state.decision_log
    count = len(out["evaluated"])  # type: ignore[arg-type]
    writer.submit(
        [
            LogRecord(
                org_id=org.id,
                key_id=principal.key_id,
                kind="evaluation",
                identifier_count=count,
                purpose=body.purpose,
            )
        ]
    )
    return out


class QuotaIn(StrictModel):
    declared_users: int = Field(ge=0, le=2_000_000_000, description="The enterprise's declared user count.")


def _quota_out(session: Session, org: Organisation, request: Request) -> dict[str, Any]:
    settings = _settings(request)
    b = request.app.state.evaluation_buckets.bucket(session, org)
    return {
        "org_id": str(org.id),
        "declared_users": org.declared_users,
        "daily": b.capacity,
        "remaining": int(b.tokens),
        # The per-minute share of the organisation's budget (orgs.budget; PUT /v1/organisations/{id}/quotas).
        "per_minute": limits_of(org, settings).evaluations_per_minute,
    }


@router.get("/quotas/{org_id}", summary="An enterprise's daily blinded-evaluation quota and what is left")
def get_quota(
    org_id: uuid.UUID,
    request: Request,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, R.auditor, R.enterprise_operator, R.enterprise_node),
) -> dict[str, Any]:
    org = get_visible(session, Organisation, org_id, principal, what="organisation")
    return _quota_out(session, org, request)


@router.put("/quotas/{org_id}", summary="Set an enterprise's declared user count (its quota follows)")
def put_quota(
    org_id: uuid.UUID,
    body: QuotaIn,
    request: Request,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, fresh=True),
) -> dict[str, Any]:
    org = get_visible(session, Organisation, org_id, principal, what="organisation")
    set_declared_users(session, principal.actor, org, body.declared_users)
    return _quota_out(session, org, request)


def set_declared_users(session: Session, actor, org: Organisation, declared_users: int) -> None:  # type: ignore[no-untyped-def]
    if org.kind != "enterprise":
        raise ValidationProblem(
            "Only an enterprise has an evaluation quota",
            errors=[{"in": "path", "field": "org_id", "type": "value_error", "message": "not an enterprise"}],
        )
    before = org.snapshot()
    org.declared_users = declared_users
    session.flush()
    audit.record(
        session, actor, "sharing.quota.set", "organisation", org.id, before=before, after=org.snapshot()
    )


@router.get(
    "/entries/{entry_id}", summary="Details of one shared entry a node matched (need to know; audited)"
)
def get_entry(
    entry_id: uuid.UUID,
    session: Session = DB,
    purpose_header: str | None = Header(
        None,
        alias="X-FCX-Purpose",
        max_length=600,
        description="Why the details are needed; percent-encoded UTF-8 (e.g. Chinese text), audited",
    ),
    principal: Principal = allow(R.enterprise_node, R.enterprise_operator),
) -> dict[str, Any]:

    try:
        purpose = protocol.decode_purpose(purpose_header)
    except UnicodeDecodeError:
        raise ValidationProblem(
            "X-FCX-Purpose must be percent-encoded UTF-8",
            errors=[
                {"in": "header", "field": "X-FCX-Purpose", "type": "value_error", "message": "bad encoding"}
            ],
        ) from None
    if not purpose:
        raise ValidationProblem(
            "Say why you need this entry in the X-FCX-Purpose header",
            errors=[{"in": "header", "field": "X-FCX-Purpose", "type": "missing", "message": "required"}],
        )
    entry = session.get(Entry, entry_id)
    if (
        entry is None
        or not _takes_part(session, principal)
        or not session.scalar(select(exists().where(FeedEvent.entry_id == entry_id)))
    ):
        raise NotFound(f"No shared entry {entry_id}")
    if entry.status not in IN_FORCE:
        # Shared once and ended since: the feed has told the participants; its details no longer are.
        raise Gone(f"Entry {entry_id} has ended ({entry.status}) and is no longer shared")
    audit.record_pii_read(
        session,
        principal.actor,
        "entry",
        entry.id,
        purpose=purpose[:200],
        fields=["entry", "masked_subject"],
    )
    out = entry_out(session, entry, principal).model_dump(mode="json")
    return {"entry": out, "measures": entry.measures or []}


class WebhookIn(StrictModel):
    url: str = Field(min_length=1, max_length=500)
    org_id: uuid.UUID | None = Field(None, description="Platform admin only: the organisation to subscribe.")


def _hook_out(hook, secret: str | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out = {
        "id": str(hook.id),
        "org_id": str(hook.owner_org_id),
        "url": hook.url,
        "audience": hook.audience,
        "created_at": hook.created_at.isoformat(),
    }
    if secret is not None:
        out["secret"] = secret
    return out


@router.post(
    "/webhooks", status_code=status.HTTP_201_CREATED, summary="Subscribe a URL; the secret is shown once"
)
def post_webhook(
    body: WebhookIn, session: Session = DB, principal: Principal = allow(*SUBSCRIBERS)
) -> dict[str, Any]:
    if body.org_id is not None and not principal.is_platform and body.org_id != principal.org_id:
        raise NotFound(f"No organisation {body.org_id}")
    org_id = body.org_id or principal.org_id
    if org_id is None:
        raise ValidationProblem(
            "Give org_id",
            errors=[{"in": "body", "field": "org_id", "type": "missing", "message": "required"}],
        )
    org = get_visible(session, Organisation, org_id, principal, what="organisation")
    hook, secret = outbox.subscribe(session, principal.actor, org, body.url)
    return _hook_out(hook, secret)


@router.get("/webhooks", summary="Active webhook subscriptions (one's own; the platform sees all)")
def get_webhooks(
    session: Session = DB, principal: Principal = allow(*SUBSCRIBERS, R.auditor)
) -> list[dict[str, Any]]:
    return [_hook_out(h) for h in outbox.list_webhooks(session, principal)]


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Unsubscribe")
def delete_webhook(
    webhook_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*SUBSCRIBERS)
) -> Response:
    outbox.unsubscribe(session, principal.actor, outbox.get_webhook(session, webhook_id, principal))
    return Response(status_code=204)


@router.get("/dead-letters", summary="Webhook deliveries that failed every attempt")
def get_dead_letters(
    limit: int = Query(100, ge=1, le=1000),
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, R.auditor),
) -> list[dict[str, Any]]:
    return [outbox.item_out(i) for i in outbox.dead_letters(session, limit=limit)]


@router.post("/dead-letters/{item_id}/replay", summary="Deliver a dead letter again (same event id)")
def replay_dead_letter(
    item_id: Annotated[int, Path(ge=1, le=INT64_MAX)],
    session: Session = DB,
    principal: Principal = allow(R.platform_admin),
) -> dict[str, Any]:
    return outbox.item_out(outbox.replay(session, principal.actor, item_id))


class FeedEventOut(ResponseModel):
    seq: int
    at: Any
    event: str
    entry_id: uuid.UUID
    record: dict[str, Any]


class FeedPageOut(ResponseModel):
    events: list[FeedEventOut]
    head: int = Field(description="The newest sequence number; a reader that reached it is up to date.")


@changes_router.get("/feed", response_model=FeedPageOut, summary="Change feed since a sequence number")
def read_feed(
    session: Session = DB,
    _: Principal = allow_participant(*FEED_READERS),
    after: int = Query(0, ge=0, le=INT64_MAX),
    limit: int = Query(1000, ge=1, le=10000),
) -> FeedPageOut:
    events = changes.events_after(session, after, limit)
    return FeedPageOut(events=[FeedEventOut.model_validate(e) for e in events], head=changes.head(session))
