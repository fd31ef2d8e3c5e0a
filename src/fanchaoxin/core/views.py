"""Routes every deployment has: health, readiness, metrics, the audit log, identifier checks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, Principal, allow, allow_public
from fanchaoxin.core.db import Database, DatabaseBusy
from fanchaoxin.core.errors import Problem, ValidationProblem
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, validate
from fanchaoxin.core.permissions import AUDIT_READERS, STAFF
from fanchaoxin.core.schemas import INT64_MAX, ResponseModel, StrictModel

router = APIRouter()


class NotReady(Problem):
    status = 503
    slug = "not-ready"
    title = "Not ready"
    title_zh = "服务未就绪"


@router.get("/healthz", tags=["operations"], summary="The process is alive")
def healthz(_: Principal = allow_public()) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], summary="Database reachable and migrations current")
async def readyz(request: Request, _: Principal = allow_public()) -> dict[str, Any]:
    db: Database = request.app.state.db
    retry = {"Retry-After": str(request.app.state.settings.database_retry_after_seconds)}
    # Within its own budget, however the database fails: a probe left waiting on a frozen database
    # ends by the database timeouts (core.db), and no second one starts while it waits.
    budget = db.timeouts.connect
    try:
        with anyio.fail_after(budget):
            current, head = await anyio.to_thread.run_sync(db.probe, abandon_on_cancel=True)
    except TimeoutError as exc:
        raise NotReady(f"The database did not answer within {budget:g} s", headers=retry) from exc
    except DatabaseBusy as exc:
        raise NotReady("An earlier check is still waiting for the database", headers=retry) from exc
    except Exception as exc:
        raise NotReady(f"Database unreachable: {type(exc).__name__}", headers=retry) from exc
    # A schema this code does not know is a later release's, migrated while this one still serves
    # (a rolling upgrade, #23): by the phase rule it keeps working, so it stays in the load balancer.
    if current != head and not await anyio.to_thread.run_sync(db.schema_is_newer, current):
        raise NotReady(f"Database schema at {current}, code expects {head}; run `fcx db upgrade`")
    return {"status": "ready", "database": db.engine.dialect.name, "revision": current, "code_revision": head}


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics")
def metrics(request: Request, _: Principal = allow_public()) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# --- audit ------------------------------------------------------------------------------------------


class AuditEventOut(ResponseModel):
    id: int
    at: datetime
    actor: str
    actor_org_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str
    before_digest: str | None
    after_digest: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(ResponseModel):
    events: list[AuditEventOut]
    next_after: int | None


@router.get("/v1/audit/events", response_model=AuditPage, tags=["audit"], summary="Search the audit log")
def audit_events(
    session: Session = DB,
    _: Principal = allow(*AUDIT_READERS),
    action: str | None = None,
    actor: str | None = None,
    target_id: str | None = None,
    after: int = Query(
        0, ge=0, le=INT64_MAX, description="Return events with id greater than this (cursor)."
    ),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditPage:
    stmt = select(audit.AuditEvent).where(audit.AuditEvent.id > after)
    if action:
        stmt = stmt.where(audit.AuditEvent.action == action)
    if actor:
        stmt = stmt.where(audit.AuditEvent.actor == actor)
    if target_id:
        stmt = stmt.where(audit.AuditEvent.target_id == target_id)
    rows = list(session.scalars(stmt.order_by(audit.AuditEvent.id).limit(limit)))
    return AuditPage(
        events=[AuditEventOut.model_validate(r) for r in rows],
        next_after=rows[-1].id if len(rows) == limit else None,
    )


class VerifyOut(ResponseModel):
    ok: bool
    checked: int
    broken_at: int | None
    reason: str | None


@router.get("/v1/audit/verify", response_model=VerifyOut, tags=["audit"], summary="Walk the hash chain")
def audit_verify(
    request: Request, session: Session = DB, _: Principal = allow(*AUDIT_READERS)
) -> VerifyOut:
    # A pruning checkpoint must carry the platform's own signature, not merely one that matches the key
    # stored beside it: the application says which keys those are (core cannot read the sharing keys).
    trusted = getattr(request.app.state, "audit_trusted_keys", None)
    result = audit.verify(session, trusted_keys=trusted() if trusted is not None else None)
    return VerifyOut(ok=result.ok, checked=result.checked, broken_at=result.broken_at, reason=result.reason)


# --- identifiers ------------------------------------------------------------------------------------


class IdentifierIn(StrictModel):
    type: IdentifierType
    value: str


class IdentifierOut(ResponseModel):
    type: IdentifierType
    value: str
    masked: str


@router.post(
    "/v1/identifiers/validate",
    response_model=IdentifierOut,
    tags=["identifiers"],
    summary="Normalise and check an identifier before submitting it",
)
def validate_identifier(body: IdentifierIn, _: Principal = allow(*STAFF)) -> IdentifierOut:
    try:
        ident = validate(body.type, body.value)
    except IdentifierError as exc:
        raise ValidationProblem(
            str(exc), errors=[{"in": "body", "field": "value", "type": exc.rule, "message": str(exc)}]
        ) from exc
    return IdentifierOut(type=ident.type, value=ident.value, masked=ident.masked)
