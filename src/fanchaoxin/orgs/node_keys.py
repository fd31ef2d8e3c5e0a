"""Node keys (节点签名密钥): the public keys an enterprise's `fcx node` signs its execution receipts with
(issue #16), of the platform's crypto profile (#18): Ed25519 under ``international``, SM2 under ``gm``.

`fcx node init` generates the key pair on the node and enrols the public key here with the enterprise's
``enterprise_node`` API key; the secret never leaves the node. A key is named by its fingerprint
(``sharing.protocol.fingerprint``, computed by the caller above this layer: the same short form the node
prints), so the one public key cannot be enrolled twice, nor by two enterprises. The platform's admin may
revoke a key: receipts signed with it are refused from then on (sanctions.receipts).

A department enrols its transparency-log witness key here too (#19, ``fcx node witness`` with a
``department_officer`` key): ``POST /v1/log/cosignature`` takes a cosignature by an active key of the
caller's organisation, so a department's witness is checked exactly as an enterprise node's is.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fanchaoxin.core import audit, crypto
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.db import Base, UTCDateTime, utcnow
from fanchaoxin.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from fanchaoxin.core.tenancy import can_see, scoped


class NodeKey(Base):
    """One enrolled node key of an enterprise: its fingerprint (the key id), the public key, a label."""

    __tablename__ = "node_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # protocol.fingerprint(public key)
    # Tenancy: the enterprise whose node holds the secret half.
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    # base64 of the public key: 32 bytes (Ed25519) or a 65-byte SM2 point, per the crypto profile
    public_key: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(200), default="")
    enrolled_by: Mapped[str] = mapped_column(String(200))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoked_reason: Mapped[str | None] = mapped_column(String(500))

    @property
    def public_bytes(self) -> bytes:
        return base64.b64decode(self.public_key)

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at is not None else "active"

    def snapshot(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "owner_org_id": str(self.owner_org_id),
            "label": self.label,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_reason": self.revoked_reason,
        }


def public_key_problem(public_key: bytes) -> str | None:
    """Why ``public_key`` cannot be a node key under the platform's crypto profile, or None."""
    prof = crypto.active()
    try:
        own = crypto.profile_of_public_key(public_key)
    except crypto.WrongKeyError as exc:
        return f"{exc}; this platform's node keys are {prof.signature_algorithm} ({prof.name} crypto profile)"
    if own.name != prof.name:
        return (
            f"a {own.signature_algorithm} key ({own.public_key_size} bytes), but this platform runs the "
            f"{prof.name} crypto profile: node keys are {prof.signature_algorithm} "
            f"({prof.public_key_size} bytes); run `fcx node init` again against this platform"
        )
    return None


def enrol(
    session: Session, principal: Principal, *, key_id: str, public_key: bytes, label: str = ""
) -> tuple[NodeKey, bool]:
    """Enrol the caller's node key (``key_id``: its fingerprint) for the caller's organisation (an
    enterprise's node, or a department's log witness); returns the key and whether it is new.

    Enrolling the same key again (``fcx node init`` run twice) returns it unchanged; a key revoked, or
    enrolled by another organisation, is refused — a node whose key was revoked makes a new one."""
    if principal.org_id is None:  # enterprise_node and department_officer keys always have their org
        raise Forbidden("This key belongs to no organisation")
    key_problem = public_key_problem(public_key)
    if key_problem:
        raise ValidationProblem(
            f"public_key: {key_problem}",
            errors=[{"in": "body", "field": "public_key", "message": key_problem}],
        )
    found = session.get(NodeKey, key_id)
    if found is not None:
        if found.owner_org_id != principal.org_id:
            raise Conflict(f"Node key {key_id} is enrolled by another organisation; generate a new key")
        if found.revoked_at is not None:
            raise Conflict(
                f"Node key {key_id} was revoked at {found.revoked_at.isoformat()}; generate a new key "
                "(fcx node init --new-node-key)"
            )
        return found, False
    key = NodeKey(
        key_id=key_id,
        owner_org_id=principal.org_id,
        public_key=base64.b64encode(public_key).decode("ascii"),
        label=label.strip(),
        enrolled_by=principal.actor.name,
        enrolled_at=utcnow(),
    )
    session.add(key)
    session.flush()
    audit.record(session, principal.actor, "node_key.enrol", "node_key", key_id, after=key.snapshot())
    return key, True


def list_keys(session: Session, principal: Principal, *, org_id: uuid.UUID | None = None) -> list[NodeKey]:
    """The node keys the caller may see: its own enterprise's, or (platform staff) every one or one org's."""
    stmt = scoped(select(NodeKey), NodeKey, principal)
    if org_id is not None:
        stmt = stmt.where(NodeKey.owner_org_id == org_id)
    return list(session.scalars(stmt.order_by(NodeKey.enrolled_at, NodeKey.key_id)))


def get_key(session: Session, key_id: str, principal: Principal) -> NodeKey:
    found = session.get(NodeKey, key_id)
    if found is None or not can_see(found, principal):
        raise NotFound(f"No node key {key_id}")
    return found


def revoke(session: Session, actor: Actor, key: NodeKey, *, reason: str) -> NodeKey:
    """Revoke a node key at once: receipts signed with it are refused from now on."""
    if not reason.strip():
        raise ValidationProblem(
            "Say why the node key is revoked",
            errors=[{"in": "body", "field": "reason", "message": "say why the key is revoked"}],
        )
    if key.revoked_at is not None:
        raise Conflict(f"Node key {key.key_id} was already revoked at {key.revoked_at.isoformat()}")
    before = key.snapshot()
    key.revoked_at = utcnow()
    key.revoked_by = actor.name
    key.revoked_reason = reason.strip()
    session.flush()
    audit.record(
        session, actor, "node_key.revoke", "node_key", key.key_id, before=before, after=key.snapshot()
    )
    return key
