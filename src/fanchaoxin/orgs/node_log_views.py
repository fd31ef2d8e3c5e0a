"""``POST /v1/decision-log/node``: an enterprise node relays the decision-log records it kept."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.errors import Forbidden
from fanchaoxin.core.roles import Role
from fanchaoxin.core.schemas import ResponseModel
from fanchaoxin.orgs import node_logs

router = APIRouter(prefix="/v1", tags=["decision log"])


class IngestedOut(ResponseModel):
    received: int
    stored: int


@router.post(
    "/decision-log/node",
    response_model=IngestedOut,
    summary="Relay a node's decision-log records (batches of up to 1,000; a re-sent batch is stored once)",
    description="Each record is one decision the enterprise's node answered: time, purpose, scene, verdict, "
    "entry ids, feed position and the identifiers' tags (never a plain value). Stored for the sending "
    "organisation with channel `node`; records already stored (same `id`) are not stored again.",
)
def relay_node_records(
    body: node_logs.NodeBatchIn, session: Session = DB, principal: Principal = allow(Role.enterprise_node)
) -> IngestedOut:
    if principal.org_id is None:  # an enterprise_node key always has its organisation
        raise Forbidden("This key belongs to no organisation")
    result = node_logs.ingest(session, principal.actor, principal.org_id, principal.key_id, body)
    return IngestedOut(received=result.received, stored=result.stored)
