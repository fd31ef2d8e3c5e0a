"""Blinded evaluation for enterprise nodes: batches of up to 1,000 elements, one DLEQ proof, a daily quota.

The node learns the tags of its own users without the platform seeing them: it sends blinded
elements, the platform multiplies them by its key and proves (one batch DLEQ proof) that it used the
key it publishes. Each enterprise has a token bucket whose capacity is one day's quota — set from the
organisation's declared user count — refilled continuously; a batch over quota is refused with 429
and ``Retry-After``. The same batches draw on the organisation's per-minute budget of evaluations
(orgs.budget, shared with plain-identifier matching). Each answered batch is one audit event and one
decision-log record, holding the count only.
"""

from __future__ import annotations

import base64
import binascii
import math
import uuid
from dataclasses import dataclass
from datetime import datetime

import pysodium
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import TooManyRequests, ValidationProblem
from fanchaoxin.core.settings import Settings
from fanchaoxin.orgs.budget import Budget, limits_of
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sharing import oprf
from fanchaoxin.sharing.models import EvaluationQuota

MAX_BATCH = 1000
DAY_SECONDS = 86_400


def daily_quota(org: Organisation, settings: Settings) -> int:
    """Evaluations per day: declared users × the per-user allowance, at least the minimum."""
    declared = org.declared_users or 0
    return max(
        settings.sharing_min_daily_evaluations, math.ceil(declared * settings.sharing_evaluations_per_user)
    )


def _invalid(errors: list[dict[str, str]]) -> ValidationProblem:
    fields = ", ".join(e["field"] for e in errors[:10])
    return ValidationProblem(f"Invalid fields: {fields}", errors=errors)


def decode_batch(blinded: object) -> list[bytes]:
    """Base64 elements → bytes; every malformed one named (``blinded[i]``). Nothing is evaluated or
    counted unless all are valid ristretto255 encodings (canonical, not the identity)."""
    if not isinstance(blinded, list) or not 1 <= len(blinded) <= MAX_BATCH:
        raise _invalid(
            [
                {
                    "in": "body",
                    "field": "blinded",
                    "type": "value_error",
                    "message": f"give 1 to {MAX_BATCH} elements",
                }
            ]
        )
    out: list[bytes] = []
    errors: list[dict[str, str]] = []
    for i, item in enumerate(blinded):
        field = f"blinded[{i}]"
        problem = None
        raw = b""
        if not isinstance(item, str):
            problem = "must be a base64 string"
        else:
            try:
                raw = base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError):
                problem = "is not valid base64"
        if problem is None and len(raw) != oprf.ELEMENT_BYTES:
            problem = f"must decode to {oprf.ELEMENT_BYTES} bytes, not {len(raw)}"
        if problem is None and raw == bytes(oprf.ELEMENT_BYTES):
            problem = "is the identity element"
        if problem is None and not pysodium.crypto_core_ristretto255_is_valid_point(raw):
            problem = "is not a valid ristretto255 element"
        if problem is not None:
            errors.append({"in": "body", "field": field, "type": "value_error", "message": problem})
        out.append(raw)
    if errors:
        raise _invalid(errors)
    return out


@dataclass
class Bucket:
    capacity: int
    tokens: float

    @property
    def rate(self) -> float:
        return self.capacity / DAY_SECONDS


def _refilled(row: EvaluationQuota | None, capacity: int, now: datetime) -> float:
    if row is None:
        return float(capacity)
    elapsed = max(0.0, (now - row.updated_at).total_seconds())
    return min(float(capacity), row.tokens + elapsed * capacity / DAY_SECONDS)


def bucket(session: Session, org: Organisation, settings: Settings, now: datetime | None = None) -> Bucket:
    """The enterprise's bucket now (read only)."""
    capacity = daily_quota(org, settings)
    return Bucket(capacity, _refilled(session.get(EvaluationQuota, org.id), capacity, now or utcnow()))


def _retry_after(needed: float, b: Bucket) -> int:
    return max(1, math.ceil((needed - b.tokens) / b.rate))


def _over_quota(n: int, b: Bucket) -> TooManyRequests:
    wait = _retry_after(n, b)
    return TooManyRequests(
        f"Daily quota of blinded evaluations used up: {int(b.tokens)} of {b.capacity} left, "
        f"{n} asked; retry in {wait} s",
        headers={"Retry-After": str(wait)},
        quota=b.capacity,
        remaining=int(b.tokens),
    )


def check(session: Session, org: Organisation, n: int, settings: Settings) -> None:
    """A cheap look before the work: refuse a batch that cannot fit (no lock, nothing written)."""
    b = bucket(session, org, settings)
    if b.tokens < n:
        raise _over_quota(n, b)


def take(session: Session, org: Organisation, n: int, settings: Settings) -> Bucket:
    """Take ``n`` tokens under the bucket row's lock; 429 (nothing taken) if they are not there."""
    now = utcnow()
    capacity = daily_quota(org, settings)
    row = session.scalar(select(EvaluationQuota).where(EvaluationQuota.org_id == org.id).with_for_update())
    if row is None:
        _create_row(session, org.id, capacity, now)
        row = session.scalar(
            select(EvaluationQuota).where(EvaluationQuota.org_id == org.id).with_for_update()
        )
        assert row is not None
    b = Bucket(capacity, _refilled(row, capacity, now))
    if b.tokens < n:
        raise _over_quota(n, b)
    row.tokens = b.tokens - n
    row.updated_at = now
    return Bucket(capacity, row.tokens)


def _create_row(session: Session, org_id: uuid.UUID, capacity: int, now: datetime) -> None:
    values = {"org_id": org_id, "tokens": float(capacity), "updated_at": now}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(EvaluationQuota).values(**values).on_conflict_do_nothing())


def evaluate(
    session: Session,
    actor: Actor,
    org: Organisation,
    ring: oprf.KeyRing,
    blinded_b64: object,
    key_id: str | None,
    settings: Settings,
    budget: Budget | None = None,
) -> dict[str, object]:
    """Validate, evaluate (outside any lock), then take the quota and audit, in the caller's transaction.

    With ``budget`` the batch also draws on the organisation's per-minute evaluations (orgs.budget),
    after the cheap look at the daily bucket: a batch refused by either quota is not evaluated."""
    elements = decode_batch(blinded_b64)
    try:
        key = ring.current if key_id is None else ring.get(key_id)
    except oprf.UnknownKeyError as exc:
        raise _invalid(
            [{"in": "body", "field": "key_id", "type": "value_error", "message": str(exc)}]
        ) from None
    check(session, org, len(elements), settings)
    if budget is not None:
        budget.charge_evaluations(org.id, len(elements), limits_of(org, settings).evaluations_per_minute)
    try:
        evaluated, proof = key.blind_evaluate(elements)
    except oprf.InvalidElementError as exc:  # defence in depth: decode_batch checked every element
        raise _invalid(
            [{"in": "body", "field": "blinded", "type": "value_error", "message": str(exc)}]
        ) from None
    left = take(session, org, len(elements), settings)
    audit.record_read(
        session,
        actor,
        "sharing.evaluate",
        "organisation",
        org.id,
        detail={"count": len(elements), "key_id": key.key_id},
    )
    return {
        "key_id": key.key_id,
        "evaluated": [base64.b64encode(e).decode() for e in evaluated],
        "proof": base64.b64encode(proof or b"").decode(),
        "quota": {"daily": left.capacity, "remaining": int(left.tokens)},
    }
