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
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pysodium
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

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


def _refilled(tokens: float, at: datetime, capacity: int, now: datetime) -> float:
    """A bucket's tokens at ``now``: refilled continuously since ``at``, never above one day's quota."""
    elapsed = max(0.0, (now - at).total_seconds())
    return min(float(capacity), tokens + elapsed * capacity / DAY_SECONDS)


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


@dataclass
class _Held:
    """One enterprise's bucket as this process knows it: the row as last read (or written), and what
    this process took since (``pending``) or is writing now (``inflight``)."""

    tokens: float
    at: datetime
    pending: int = 0
    inflight: int = 0


@dataclass
class _Settled:
    org_id: uuid.UUID
    taken: int
    tokens: float = 0.0
    at: datetime = field(default_factory=utcnow)


class EvaluationBuckets:
    """The daily evaluation buckets of this process (see the module doc): a request takes its tokens
    here; the decision log's flush writes them (``orgs.decision_log.FlushShare``)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self._clock = clock
        self._held: dict[uuid.UUID, _Held] = {}
        self._lock = threading.Lock()

    def _know(self, session: Session, org_id: uuid.UUID, capacity: int) -> _Held:
        held = self._held.get(org_id)
        if held is not None:
            return held
        row = session.get(EvaluationQuota, org_id)
        fresh = _Held(float(capacity), self._clock()) if row is None else _Held(row.tokens, row.updated_at)
        with self._lock:
            return self._held.setdefault(org_id, fresh)

    def _left(self, held: _Held, capacity: int, now: datetime) -> float:
        return _refilled(held.tokens, held.at, capacity, now) - held.pending - held.inflight

    def bucket(self, session: Session, org: Organisation) -> Bucket:
        """The enterprise's bucket now, this process's takings included (read only)."""
        capacity = daily_quota(org, self.settings)
        held = self._know(session, org.id, capacity)
        with self._lock:
            return Bucket(capacity, max(0.0, self._left(held, capacity, self._clock())))

    def check(self, session: Session, org: Organisation, n: int) -> None:
        """A look before the work: refuse a batch that cannot fit (nothing taken)."""
        b = self.bucket(session, org)
        if b.tokens < n:
            raise _over_quota(n, b)

    def take(self, session: Session, org: Organisation, n: int) -> Bucket:
        """Take ``n`` tokens; 429 (nothing taken) if they are not there. No database write."""
        capacity = daily_quota(org, self.settings)
        held = self._know(session, org.id, capacity)
        with self._lock:
            left = self._left(held, capacity, self._clock())
            if left < n:
                raise _over_quota(n, Bucket(capacity, max(0.0, left)))
            held.pending += n
            return Bucket(capacity, left - n)

    # --- the decision log's flush (orgs.decision_log.FlushShare) -----------------------------------

    def has_news(self) -> bool:
        with self._lock:
            return any(h.pending for h in self._held.values())

    def sync(self, session: Session) -> list[_Settled]:
        """Write this process's takings into the rows, in the flush's transaction (row locks held)."""
        with self._lock:
            taking = [(org_id, h.pending, h.tokens, h.at) for org_id, h in self._held.items() if h.pending]
            for org_id, n, _tokens, _at in taking:
                self._held[org_id].inflight += n
                self._held[org_id].pending -= n
        settled: list[_Settled] = []
        try:
            capacities = _capacities(session, [org_id for org_id, *_rest in taking], self.settings)
            for org_id, n, tokens, at in taking:
                capacity = capacities.get(org_id, 0)
                now = self._clock()
                # A first batch's row starts from the bucket as this process first saw it.
                row = _locked_row(session, org_id, tokens, at)
                row.tokens = max(0.0, _refilled(row.tokens, row.updated_at, capacity, now) - n)
                row.updated_at = now
                settled.append(_Settled(org_id, n, row.tokens, now))
            session.flush()
        except BaseException:
            self.failed([_Settled(org_id, n) for org_id, n, *_rest in taking])
            raise
        return settled

    def written(self, taken: object) -> None:
        with self._lock:
            for s in _settled(taken):
                held = self._held.get(s.org_id)
                if held is not None:
                    held.inflight -= s.taken
                    held.tokens, held.at = s.tokens, s.at

    def failed(self, taken: object) -> None:
        with self._lock:
            for s in _settled(taken):
                held = self._held.get(s.org_id)
                if held is not None and held.inflight >= s.taken:
                    held.inflight -= s.taken
                    held.pending += s.taken

    def read_back(self, session: Session) -> None:
        """Every process's takings: the rows as they are now (this process's unwritten ones kept)."""
        with self._lock:
            ids = list(self._held)
        if not ids:
            return
        rows = session.scalars(select(EvaluationQuota).where(EvaluationQuota.org_id.in_(ids))).all()
        with self._lock:
            for row in rows:
                held = self._held.get(row.org_id)
                if held is not None and held.inflight == 0:
                    held.tokens, held.at = row.tokens, row.updated_at


def _settled(taken: object) -> list[_Settled]:
    return [s for s in taken if isinstance(s, _Settled)] if isinstance(taken, list) else []


def _capacities(session: Session, org_ids: list[uuid.UUID], settings: Settings) -> dict[uuid.UUID, int]:
    if not org_ids:
        return {}
    orgs = session.scalars(select(Organisation).where(Organisation.id.in_(org_ids))).all()
    return {o.id: daily_quota(o, settings) for o in orgs}


def _locked_row(session: Session, org_id: uuid.UUID, tokens: float, at: datetime) -> EvaluationQuota:
    query = select(EvaluationQuota).where(EvaluationQuota.org_id == org_id).with_for_update()
    row = session.scalar(query)
    if row is None:
        _create_row(session, org_id, tokens, at)
        row = session.scalar(query)
        assert row is not None
    return row


def _create_row(session: Session, org_id: uuid.UUID, tokens: float, at: datetime) -> None:
    values = {"org_id": org_id, "tokens": tokens, "updated_at": at}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(EvaluationQuota).values(**values).on_conflict_do_nothing())


def evaluate(
    session: Session,
    org: Organisation,
    ring: oprf.KeyRing,
    blinded_b64: object,
    key_id: str | None,
    buckets: EvaluationBuckets,
    budget: Budget | None = None,
) -> dict[str, object]:
    """Validate, look at the daily bucket, evaluate, then take the tokens (no database write).

    With ``budget`` the batch also draws on the organisation's per-minute evaluations (orgs.budget),
    after the look at the daily bucket: a batch refused by either quota is not evaluated. The caller
    hands the batch's decision-log record over (its account)."""
    elements = decode_batch(blinded_b64)
    try:
        key = ring.current if key_id is None else ring.get(key_id)
    except oprf.UnknownKeyError as exc:
        raise _invalid(
            [{"in": "body", "field": "key_id", "type": "value_error", "message": str(exc)}]
        ) from None
    buckets.check(session, org, len(elements))
    if budget is not None:
        limit = limits_of(org, buckets.settings).evaluations_per_minute
        budget.charge_evaluations(org.id, len(elements), limit)
    try:
        evaluated, proof = key.blind_evaluate(elements)
    except oprf.InvalidElementError as exc:  # defence in depth: decode_batch checked every element
        raise _invalid(
            [{"in": "body", "field": "blinded", "type": "value_error", "message": str(exc)}]
        ) from None
    left = buckets.take(session, org, len(elements))
    return {
        "key_id": key.key_id,
        "evaluated": [base64.b64encode(e).decode() for e in evaluated],
        "proof": base64.b64encode(proof or b"").decode(),
        "quota": {"daily": left.capacity, "remaining": int(left.tokens)},
    }
