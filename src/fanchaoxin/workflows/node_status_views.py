"""``POST /v1/nodes/status`` (a node reports where it stands) and ``GET /v1/nodes`` (each node and its
lag behind the platform's feed head): orgs.node_status, with the head from the sharing slice."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from fanchaoxin.core import permissions
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Forbidden
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import node_status
from fanchaoxin.sharing import changes

router = APIRouter(prefix="/v1", tags=["nodes"])


@router.post(
    "/nodes/status",
    summary="A node reports its status: feed position and age, policy version, enrolled, live tags, errors",
    description="Sent by `fcx node serve` at a fixed interval (and by `fcx node status --report`). The node "
    "names itself by the `node_id` it made at its first report. The answer states the platform's feed "
    "head and the node's lag behind it.",
)
def report_status(
    body: node_status.NodeStatusIn,
    request: Request,
    session: Session = DB,
    principal: Principal = allow(Role.enterprise_node),
) -> dict[str, Any]:
    if principal.org_id is None:  # an enterprise_node key always has its organisation
        raise Forbidden("This key belongs to no organisation")
    now = utcnow()
    node_status.record_report(session, principal.actor, principal.org_id, principal.key_id, body, now)
    head = changes.head(session)
    return {"node_id": body.node_id, "feed_head": head, "lag": max(0, head - body.feed_seq)}


@router.get(
    "/nodes",
    summary="Enterprise nodes and their lag (platform staff: all; an enterprise: its own)",
    description="Each node's last report, its lag behind the platform's feed head (events), and `silent`: "
    "no report for longer than FCX_NODE_SILENT_ALERT_SECONDS (a security alert of kind `node_silent` is "
    "raised by the scheduler).",
)
def get_nodes(
    request: Request,
    session: Session = DB,
    principal: Principal = allow(*permissions.PLATFORM, Role.enterprise_operator, Role.enterprise_node),
) -> dict[str, Any]:
    if not principal.is_platform and principal.org_id is None:
        raise Forbidden("This key belongs to no organisation")
    head = changes.head(session)
    nodes = node_status.list_nodes(
        session,
        org_id=None if principal.is_platform else principal.org_id,
        feed_head=head,
        now=utcnow(),
        threshold_seconds=request.app.state.settings.node_silent_alert_seconds,
    )
    return {"feed_head": head, "nodes": [n.out() for n in nodes]}
