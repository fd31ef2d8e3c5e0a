"""Routes of execution receipts (#16): the node keys that sign them, and which lifts they confirmed.

* ``POST /v1/nodes/keys`` — an enterprise's node enrols its public key (``fcx node init``), and a
  department officer its transparency-log witness key (``fcx node witness``, #19: the key its checkpoint
  cosignatures are checked against): Ed25519 or SM2, the platform's crypto profile's;
  ``GET /v1/nodes/keys`` lists the keys (an enterprise or a department its own, platform staff every one);
  ``POST /v1/nodes/keys/{key_id}/revoke`` — the platform's admin revokes one.
* ``GET /v1/stats/lift-receipts`` — platform staff: per enterprise, lifts confirmed within 3 PRC working
  days, late, missing (sanctions.receipts).

Here, above the sharing layer, because a key's id is its fingerprint as the wire format computes it
(``sharing.protocol.fingerprint``); the table is the orgs slice's (orgs.node_keys).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from fastapi import APIRouter, Query, Response, status
from pydantic import Field
from sqlalchemy.orm import Session

from fanchaoxin.core import crypto
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.core.permissions import ENTERPRISE, PLATFORM
from fanchaoxin.core.roles import Role
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.orgs import node_keys
from fanchaoxin.sanctions import receipts
from fanchaoxin.sharing import protocol as P

router = APIRouter(prefix="/v1", tags=["execution receipts"])


class NodeKeyIn(StrictModel):
    public_key: str = Field(
        min_length=1,
        max_length=200,
        description="base64 of the public key of the platform's crypto profile: 32-byte Ed25519 "
        "(international) or the 65-byte SM2 point 04‖x‖y (gm).",
    )
    label: str = Field("", max_length=200, description="Which node (host, data centre).")


class NodeKeyOut(ResponseModel):
    key_id: str = Field(
        description="The key's fingerprint: the first 32 hex digits of its digest (SHA-256 of an Ed25519 "
        "key, SM3 of an SM2 point)."
    )
    owner_org_id: uuid.UUID
    public_key: str
    label: str
    enrolled_by: str
    enrolled_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    status: str


class NodeKeysOut(ResponseModel):
    keys: list[NodeKeyOut]


class NodeKeyRevokeIn(StrictModel):
    reason: str = Field(min_length=1, max_length=500)


def _out(key: node_keys.NodeKey) -> NodeKeyOut:
    data = {f: getattr(key, f) for f in NodeKeyOut.model_fields}
    return NodeKeyOut(**data)


@router.post(
    "/nodes/keys",
    response_model=NodeKeyOut,
    summary="Enrol the node's receipt-signing key (fcx node init) or a department's log witness key "
    "(fcx node witness); the same key again is answered 200",
    responses={201: {"description": "Enrolled"}},
)
def enrol_node_key(
    body: NodeKeyIn,
    response: Response,
    session: Session = DB,
    principal: Principal = allow(Role.enterprise_node, Role.department_officer),
) -> NodeKeyOut:
    try:
        public = P.unb64(body.public_key, "public_key")
    except P.ProtocolError as exc:
        raise ValidationProblem(
            str(exc), errors=[{"in": "body", "field": "public_key", "message": "not valid base64"}]
        ) from None
    try:
        P.check_public_key(crypto.active(), public, "public_key")
    except P.ProtocolError as exc:
        message = str(exc).removeprefix("public_key: ")
        raise ValidationProblem(
            f"public_key: {message}", errors=[{"in": "body", "field": "public_key", "message": message}]
        ) from None
    key, new = node_keys.enrol(
        session, principal, key_id=P.fingerprint(public), public_key=public, label=body.label
    )
    response.status_code = status.HTTP_201_CREATED if new else status.HTTP_200_OK
    return _out(key)


@router.get("/nodes/keys", response_model=NodeKeysOut, summary="Enrolled node keys")
def list_node_keys(
    session: Session = DB,
    principal: Principal = allow(*PLATFORM, *ENTERPRISE, Role.department_officer),
    org_id: uuid.UUID | None = Query(None, description="Platform staff: one organisation's keys."),
) -> NodeKeysOut:
    return NodeKeysOut(keys=[_out(k) for k in node_keys.list_keys(session, principal, org_id=org_id)])


@router.post(
    "/nodes/keys/{key_id}/revoke",
    response_model=NodeKeyOut,
    summary="Revoke a node key: receipts signed with it are refused from now on",
)
def revoke_node_key(
    key_id: str,
    body: NodeKeyRevokeIn,
    session: Session = DB,
    principal: Principal = allow(Role.platform_admin, fresh=True),
) -> NodeKeyOut:
    key = node_keys.get_key(session, key_id, principal)
    return _out(node_keys.revoke(session, principal.actor, key, reason=body.reason))


class LiftReceiptOut(ResponseModel):
    instruction_id: uuid.UUID
    entry_id: uuid.UUID
    measure: str
    issued_at: datetime
    due_on: date = Field(description="3 PRC working days after the China day of issue.")
    status: str = Field(description="confirmed | late | missing")
    late: bool = Field(description="Carried out after its due day, or still unconfirmed past it.")
    outcome: str | None
    executed_at: datetime | None = Field(description="As the node's receipt signs it.")
    reported_at: datetime | None
    accounts_affected: int | None
    receipt_key_id: str | None


class OrgLiftReceiptsOut(ResponseModel):
    org_id: uuid.UUID
    org_name: str
    confirmed: int
    late: int
    missing: int
    lifts: list[LiftReceiptOut]


class LiftReceiptsOut(ResponseModel):
    today: date
    working_days: int
    organisations: list[OrgLiftReceiptsOut]


@router.get(
    "/stats/lift-receipts",
    response_model=LiftReceiptsOut,
    summary="Per enterprise: lifts confirmed by a signed receipt within 3 PRC working days, late, missing",
)
def lift_receipts(
    session: Session = DB,
    _: Principal = allow(*PLATFORM),
    org_id: uuid.UUID | None = Query(None, description="One enterprise only."),
) -> LiftReceiptsOut:
    today = china_today()
    groups = receipts.lift_receipts(session, org_id=org_id, today=today)
    return LiftReceiptsOut(
        today=today,
        working_days=receipts.LIFT_WORKING_DAYS,
        organisations=[
            OrgLiftReceiptsOut(
                org_id=g.org_id,
                org_name=g.org_name,
                confirmed=g.confirmed,
                late=g.late,
                missing=g.missing,
                lifts=[LiftReceiptOut(**vars(i)) for i in g.items],
            )
            for g in groups
        ],
    )
