"""Continuous re-screening (持续复筛): which enrolled users each applied snapshot or delta newly hits,
changes or lifts, kept as a worklist for the enterprise's own systems.

In the transaction that applies a snapshot or delta (:mod:`.sync`), :func:`rescreen_delta` or
:func:`rescreen_all` compares, for the entries concerned, the enrolled users (``user_ref``) each entry in
force matches by tag with what the worklist last said (``node_hit_state``), and appends the difference to
``node_hits``:

* ``hit`` — an entry in force now concerns the user (published, or newly matching);
* ``changed`` — it still does, with another status (disputed, undisputed) or other measures (corrected);
* ``lifted`` — it no longer does: revoked, expired, repaired, gone from the feed, or no longer matching
  the user's tags. The row names the measures that were applied, to undo.

Each row names the entry, the measures of the shared record that this enterprise implements (its
``business_types``, all measures when not configured) with their parameters and the actions that may
apply (the record names no actions, and a natural person's record no behaviours or role: an action whose
condition rests on them is listed), and a deadline: the instruction's acknowledgement date when the record
carries one, else 3 PRC working days from today. **The node does not see instruction ids**: the feed
carries entries, and the instructions addressed to the enterprise are on the platform, one per entry and
measure — a hit names the entry and the measures, which identify them there.

The join goes by tag: a delta's records carry their entries' tags, looked up in the enrolled users'
tag index (never users × entries); a snapshot, or the first apply after an enrolment, reconciles every
entry in force against all users in one pass. Being in the apply's transaction, a crash loses no hit and
a snapshot applied again adds none (the state already says it).

``GET /v1/hits?after=N`` pages the worklist (:func:`listing`); a webhook (:func:`webhook_loop`) posts new
rows in batches to the enterprise's own system, signed with the node's profile's MAC over the body
(``sha256=`` HMAC-SHA256, or ``hmac-sm3=`` HMAC-SM3 under gm).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy.engine import Connection

from fanchaoxin.core import crypto
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.logs import REQUEST_ID_HEADER, current_request_id, job_request_id
from fanchaoxin.node.store import IN_FORCE_STATUSES, SEP, Store, crypto_profile, now
from fanchaoxin.sanctions.policy import ActionWhen, MeasureCatalogue, measure_catalogue
from fanchaoxin.sharing.protocol import mac_key, unb64

log = logging.getLogger("fanchaoxin.node.hits")

HIT, CHANGED, LIFTED = "hit", "changed", "lifted"
# Why a user's entry no longer concerns them, besides the entry's own status (revoked, expired, repaired).
GONE = "not_in_feed"  # absent from the snapshot applied
UNMATCHED = "no_longer_matches"  # in force, but none of its tags is the user's any more
NOT_IMPLEMENTED = "no_measures_here"  # in force, but none of its measures is one this enterprise implements
MEASURES_CHANGED = "measures_changed"  # a change with the same status: the entry was corrected
DEADLINE_WORKING_DAYS = 3  # acknowledge, and confirm a lift, within 3 PRC working days
PAGE_MAX = 1000
IN_CHUNK = 500  # parameters in one IN (…) look-up
SIGNATURE_HEADER = "X-FCX-Hits-Signature"
WEBHOOK_BATCH = 500
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


class CursorAhead(ValueError):
    """``after`` names a hit the worklist does not have yet."""

    def __init__(self, after: int, head: int) -> None:
        super().__init__(f"after: {after} is beyond the newest hit ({head})")
        self.after = after
        self.head = head


class WebhookFailed(RuntimeError):
    """The enterprise's webhook did not take a batch; it is sent again later."""


# --- what an entry asks of the users it matches -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """An entry in force as the worklist states it: its status and the measures this enterprise
    implements (compact canonical JSON: code, params, actions), and the deadline its record gives."""

    status: str
    measures: str
    deadline: str | None


def _may_apply(
    when: ActionWhen | None,
    severity: str,
    subject_kind: str,
    behaviours: Sequence[str] | None,
    role: str | None,
) -> bool:
    """Whether an action's condition can hold for the record: a condition on what the record does not
    carry (a natural person's behaviours and role) counts as met — the instruction says for sure."""
    if when is None:
        return True
    return when.matches(
        severity=severity,
        subject_kind=subject_kind,
        behaviours=behaviours if behaviours is not None else (when.behaviours or ()),
        role=role if role is not None else (when.role[0] if when.role else ""),
    )


class Screening:
    """One re-screening's context: the catalogue, the enterprise's business types, today's deadline, and
    caches (most entries share their measures)."""

    def __init__(self, cfg: Mapping[str, str], today: date | None = None) -> None:
        self.catalogue: MeasureCatalogue = measure_catalogue()
        types = [t for t in (cfg.get("business_types") or "").split(",") if t]
        self.business_types = frozenset(types) if types else None
        self.today = today or china_today()
        self.deadline = add_working_days(self.today, DEADLINE_WORKING_DAYS).isoformat()
        self._compact: dict[tuple[Any, ...], str] = {}
        self._views: dict[str, list[dict[str, Any]]] = {}

    def implements(self, code: str) -> bool:
        measure = self.catalogue.measures.get(code)
        if measure is None:
            return False
        return self.business_types is None or bool(self.business_types & set(measure.implementers))

    def target(self, record: Mapping[str, Any]) -> Target | None:
        """What a record in force asks of this enterprise; None when it is not in force or asks nothing
        this enterprise implements."""
        status = str(record.get("status") or "")
        if status not in IN_FORCE_STATUSES:
            return None
        behaviours = record.get("behaviours")
        role = record.get("role")
        key = (
            _encode(record.get("measures") or []),
            str(record.get("severity") or ""),
            str(record.get("subject_kind") or ""),
            tuple(behaviours) if isinstance(behaviours, list) else None,
            role if isinstance(role, str) else None,
        )
        compact = self._compact.get(key)
        if compact is None:
            compact = self._compact[key] = self._compact_measures(key[0], *key[1:])
        if not compact:
            return None
        due = record.get("ack_due_on")  # an instruction's date, if a record ever carries one
        return Target(status, compact, str(due)[:10] if due else None)

    def _compact_measures(
        self,
        measures_json: str,
        severity: str,
        subject_kind: str,
        behaviours: tuple[str, ...] | None,
        role: str | None,
    ) -> str:
        out: list[dict[str, Any]] = []
        for m in json.loads(measures_json):
            code = m.get("code") if isinstance(m, dict) else None
            if not isinstance(code, str) or not self.implements(code):
                continue
            definition = self.catalogue.measures[code]
            named = m.get("actions")
            if isinstance(named, list):  # the record names the entry's actions itself
                actions = [a.code for a in definition.actions if a.code in named]
            else:
                actions = [
                    a.code
                    for a in definition.actions
                    if _may_apply(a.when, severity, subject_kind, behaviours, role)
                ]
            out.append({"code": code, "params": m.get("params") or {}, "actions": actions})
        out.sort(key=lambda m: self.catalogue.measures[m["code"]].number)
        return _encode(out) if out else ""

    def views(self, compact: str) -> list[dict[str, Any]]:
        """The measures as a hit shows them: number, names, parameters, actions with their names, and
        what lifting the measure means."""
        views = self._views.get(compact)
        if views is None:
            views = []
            for m in json.loads(compact) if compact else []:
                definition = self.catalogue.measures[m["code"]]
                by_code = definition.action_by_code
                views.append(
                    {
                        "code": m["code"], "number": definition.number, "zh": definition.zh,
                        "en": definition.en, "params": m["params"],
                        "actions": [
                            {"code": a, "zh": by_code[a].zh, "en": by_code[a].en} for a in m["actions"]
                        ],
                        "lift": {"zh": definition.lift.zh, "en": definition.lift.en},
                    }
                )  # fmt: skip
            self._views[compact] = views
        return views


# --- the re-screening -------------------------------------------------------------------------------------

_INSERT_HIT = (
    "INSERT INTO node_hits(user_ref, entry_id, kind, reason, status, measures, previous, deadline, "
    "feed_seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), IN_CHUNK):
        yield values[i : i + IN_CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _users_by_tag(conn: Connection, tags: Iterable[str]) -> dict[str, list[str]]:
    """The enrolled users of these tags, through the tag index."""
    out: dict[str, list[str]] = {}
    for chunk in _chunks(sorted(set(tags))):
        for tag, ref in conn.exec_driver_sql(
            f"SELECT tag, user_ref FROM node_users WHERE tag IN ({_marks(len(chunk))})", tuple(chunk)
        ):
            out.setdefault(tag, []).append(ref)
    return out


def _state(conn: Connection, entry_ids: Sequence[str] | None) -> dict[tuple[str, str], tuple[str, str]]:
    """What the worklist last said: (entry, user) → (status, compact measures); of these entries, or all."""
    sql = "SELECT entry_id, user_ref, status, measures FROM node_hit_state"
    if entry_ids is None:
        return {(e, u): (s, m) for e, u, s, m in conn.exec_driver_sql(sql)}
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for chunk in _chunks(entry_ids):
        for e, u, s, m in conn.exec_driver_sql(
            f"{sql} WHERE entry_id IN ({_marks(len(chunk))})", tuple(chunk)
        ):
            out[(e, u)] = (s, m)
    return out


@dataclass
class Rescreened:
    """What one re-screening appended."""

    hit: int = 0
    changed: int = 0
    lifted: int = 0


def _change(before: str, after: str) -> str:
    """Why a hit changed: the entry disputed or undisputed (an objection opened or settled), else its
    measures (a correction graded it again)."""
    if before != after:
        return "disputed" if after == "disputed" else "undisputed"
    return MEASURES_CHANGED


def _write(
    conn: Connection,
    screening: Screening,
    records: Mapping[str, Mapping[str, Any] | None],
    matched: Mapping[str, set[str]],
    old: dict[tuple[str, str], tuple[str, str]],
    feed_seq: int,
) -> Rescreened:
    """Compare the users each entry now concerns with the state; append the difference and update the
    state. ``records``: every entry in scope (None: no longer in the feed); ``old``: the state of them."""
    at = now()
    rows: list[tuple[Any, ...]] = []
    upserts: list[tuple[str, str, str, str]] = []
    counts = Rescreened()
    targets: dict[str, Target | None] = {}
    for eid, record in records.items():
        target = targets[eid] = screening.target(record) if record is not None else None
        if target is None:
            continue
        deadline = target.deadline or screening.deadline
        for user in sorted(matched.get(eid, ())):
            before = old.pop((eid, user), None)
            if before == (target.status, target.measures):
                continue
            if before is None:
                kind, reason, previous = HIT, target.status, None
                counts.hit += 1
            else:
                kind, reason = CHANGED, _change(before[0], target.status)
                previous = _encode({"status": before[0], "measures": screening.views(before[1])})
                counts.changed += 1
            views = _encode(screening.views(target.measures))
            rows.append((user, eid, kind, reason, target.status, views, previous, deadline, feed_seq, at))
            upserts.append((eid, user, target.status, target.measures))
    lifted: list[tuple[str, str]] = []
    for (eid, user), (status, measures) in sorted(old.items()):
        record = records.get(eid)
        target = targets.get(eid)
        if record is None:
            reason, now_status = GONE, None
        else:
            now_status = str(record.get("status") or "")
            if now_status not in IN_FORCE_STATUSES:
                reason = now_status
            else:
                reason = UNMATCHED if target is not None else NOT_IMPLEMENTED
        previous = _encode({"status": status, "measures": screening.views(measures)})
        due = record.get("ack_due_on") if record is not None else None
        rows.append(
            (user, eid, LIFTED, reason, now_status, _encode(screening.views(measures)), previous,
             str(due)[:10] if due else screening.deadline, feed_seq, at)
        )  # fmt: skip
        lifted.append((eid, user))
        counts.lifted += 1
    if rows:
        conn.exec_driver_sql(_INSERT_HIT, rows)
    if upserts:
        conn.exec_driver_sql(
            "INSERT OR REPLACE INTO node_hit_state(entry_id, user_ref, status, measures) VALUES (?, ?, ?, ?)",
            upserts,
        )
    if lifted:
        conn.exec_driver_sql("DELETE FROM node_hit_state WHERE entry_id = ? AND user_ref = ?", lifted)
    return counts


def rescreen_delta(
    conn: Connection,
    records: Mapping[str, Mapping[str, Any]],
    *,
    feed_seq: int,
    cfg: Mapping[str, str],
    today: date | None = None,
) -> Rescreened:
    """Re-screen the entries a delta touched (entry id → its last record in the delta), inside the
    delta's transaction. When users were enrolled since the last re-screening, every entry is
    reconciled instead (:func:`rescreen_all`), so that the new users' hits are not missed."""
    if cfg.get("users_version", "") != cfg.get("hits_users_version", ""):
        return rescreen_all(conn, feed_seq=feed_seq, cfg=cfg, today=today)
    tags = [t for r in records.values() for t in r.get("tags") or ()]
    users = _users_by_tag(conn, tags) if tags else {}
    matched: dict[str, set[str]] = {}
    if users:
        for eid, record in records.items():
            for tag in record.get("tags") or ():
                refs = users.get(tag)
                if refs:
                    matched.setdefault(eid, set()).update(refs)
    old = _state(conn, list(records))
    if not matched and not old:
        return Rescreened()  # nothing of this delta concerns an enrolled user (the common case)
    return _write(conn, Screening(cfg, today), records, matched, old, feed_seq)


def _match_all(conn: Connection) -> dict[str, set[str]]:
    """Every entry in force → the enrolled users it concerns. The smaller side is the one held in memory:
    the entries' keys probed in the users' tag index when they are fewer than the users, else the users'
    tags loaded and every entry's keys looked up in them."""
    users = int(conn.exec_driver_sql("SELECT count(*) FROM node_users").scalar_one())
    matched: dict[str, set[str]] = {}
    if not users:
        return matched
    entry_keys = int(
        conn.exec_driver_sql(  # counted in SQL: a million entries' keys are not held twice
            "SELECT coalesce(sum(length(keys) - length(replace(keys, ?, '')) + 1), 0) FROM node_entries "
            "WHERE in_force = 1",
            (SEP,),
        ).scalar_one()
    )
    rows = conn.exec_driver_sql("SELECT entry_id, keys FROM node_entries WHERE in_force = 1")
    if entry_keys < users:
        by_key: dict[str, list[str]] = {}
        for eid, keys in rows:
            for key in keys.split(SEP):
                by_key.setdefault(key, []).append(eid)
        for tag, holders in _users_by_tag(conn, by_key).items():
            for eid in by_key[tag]:
                matched.setdefault(eid, set()).update(holders)
        return matched
    tags: dict[str, list[str]] = {}
    for tag, ref in conn.exec_driver_sql("SELECT tag, user_ref FROM node_users"):
        tags.setdefault(tag, []).append(ref)
    get = tags.get
    for eid, keys in rows:
        for key in keys.split(SEP):
            refs = get(key)
            if refs:
                matched.setdefault(eid, set()).update(refs)
    return matched


def rescreen_all(
    conn: Connection, *, feed_seq: int, cfg: Mapping[str, str], today: date | None = None
) -> Rescreened:
    """Reconcile every entry in the store with every enrolled user (after a snapshot, or an enrolment)."""
    old = _state(conn, None)
    matched = _match_all(conn)
    result = Rescreened()
    if matched or old:
        scope = sorted(set(matched) | {eid for eid, _ in old})
        records: dict[str, Mapping[str, Any] | None] = dict.fromkeys(scope)
        for chunk in _chunks(scope):
            for eid, record in conn.exec_driver_sql(
                f"SELECT entry_id, record FROM node_entries WHERE entry_id IN ({_marks(len(chunk))})",
                tuple(chunk),
            ):
                records[eid] = json.loads(record)
        result = _write(conn, Screening(cfg, today), records, matched, old, feed_seq)
    conn.exec_driver_sql(
        "INSERT INTO node_config(name, value) VALUES ('hits_users_version', ?) "
        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (cfg.get("users_version", ""),),
    )
    return result


# --- the worklist -----------------------------------------------------------------------------------------


def head(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT coalesce(max(seq), 0) FROM node_hits").scalar_one())


def _item(row: Sequence[Any]) -> dict[str, Any]:
    seq, user_ref, entry_id, kind, reason, status, measures, previous, deadline, feed_seq, created = row
    return {
        "seq": seq,
        "kind": kind,
        "user_ref": user_ref,
        "entry_id": entry_id,
        "reason": reason,
        "status": status,
        "measures": json.loads(measures),
        "previous": json.loads(previous) if previous else None,
        "deadline": deadline,
        "feed_seq": feed_seq,
        "created_at": datetime.fromtimestamp(created, UTC).isoformat(),
    }


def listing(store: Store, *, after: int = 0, limit: int = 100) -> dict[str, Any]:
    """The hits numbered above ``after``, oldest first, at most ``limit`` (1 … :data:`PAGE_MAX`).
    ``next_after`` is the cursor for the next page; raises :class:`CursorAhead` for a cursor beyond the
    newest hit, ValueError for a negative cursor or a limit out of range."""
    if after < 0:
        raise ValueError("after: must not be negative")
    if not 1 <= limit <= PAGE_MAX:
        raise ValueError(f"limit: must be 1 to {PAGE_MAX}")
    with store.read() as conn:
        newest = head(conn)
        if after > newest:
            raise CursorAhead(after, newest)
        rows = conn.exec_driver_sql(
            "SELECT seq, user_ref, entry_id, kind, reason, status, measures, previous, deadline, feed_seq, "
            "created_at FROM node_hits WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).all()
    items = [_item(r) for r in rows]
    return {
        "items": items,
        "after": after,
        "next_after": items[-1]["seq"] if items else after,
        "head": newest,
    }


# --- the webhook to the enterprise's own system -----------------------------------------------------------


# The header's scheme names the MAC. International keeps the name receivers of before #18 check for.
_LEGACY_SCHEME = {"international": "sha256"}


def signature_scheme(profile: crypto.Profile) -> str:
    """``sha256`` (HMAC-SHA256, international) or ``hmac-sm3`` (gm): what precedes ``=`` in the header."""
    return _LEGACY_SCHEME.get(profile.name) or profile.mac_algorithm.lower()


def signature(secret: bytes, body: bytes, profile: crypto.Profile | None = None) -> str:
    """The :data:`SIGNATURE_HEADER` value: ``<scheme>=<hex MAC(secret, body)>`` with the MAC of the node's
    crypto profile: ``sha256=<HMAC-SHA256>`` under international, ``hmac-sm3=<HMAC-SM3>`` under gm."""
    prof = profile or crypto.profile("international")
    return f"{signature_scheme(prof)}={prof.mac(mac_key(secret), body).hex()}"


def webhook_secret(cfg: Mapping[str, str], configured: str | None = None) -> bytes:
    """The key of the webhook's signature: the configured secret, else the node secret."""
    secret = configured or cfg.get("hits_webhook_secret")
    if secret:
        return secret.encode()
    return unb64(cfg["node_secret"], "node secret")


def deliver(store: Store, url: str, secret: bytes, http: httpx.Client, *, batch: int = WEBHOOK_BATCH) -> int:
    """POST the hits not yet delivered, in batches (``{"after", "next_after", "head", "items"}``), each
    signed; the delivered position moves after each 2xx answer. Returns how many were sent; raises
    :class:`WebhookFailed` at the first batch not taken (the rest wait for the next try)."""
    sent = 0
    while True:
        cfg = store.get_config()
        after = int(cfg.get("hits_webhook_delivered", "0"))
        page = listing(store, after=after, limit=batch)
        if not page["items"]:
            return sent
        body = _encode(page).encode()
        request_id = current_request_id() or job_request_id("node-hits")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret, body, crypto_profile(cfg)),
            REQUEST_ID_HEADER: request_id,
        }
        try:
            response = http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise WebhookFailed(f"hits webhook unreachable: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise WebhookFailed(f"hits webhook answered {response.status_code}")
        with store.transaction() as conn:
            Store.set_config(conn, hits_webhook_delivered=str(page["next_after"]))
        sent += len(page["items"])
        _log_delivered(store, page, request_id)


def _log_delivered(store: Store, page: dict[str, Any], request_id: str) -> None:
    """One line per batch taken, naming the platform's request ids of the changes behind its hits (#23)."""
    if not log.isEnabledFor(logging.INFO):
        return
    entry_ids = sorted({item["entry_id"] for item in page["items"]})
    with store.read() as conn:
        behind = [
            rid
            for (rid,) in conn.exec_driver_sql(
                "SELECT DISTINCT request_id FROM node_entry_requests WHERE entry_id IN "
                f"({','.join('?' * len(entry_ids))}) ORDER BY request_id",
                tuple(entry_ids),
            )
        ]
    log.info(
        "hits webhook: hits %s..%s delivered (entries %s)",
        page["after"], page["next_after"], ",".join(entry_ids),
        extra={"request_id": request_id, "entry_ids": entry_ids, "change_request_ids": behind},
    )  # fmt: skip


async def webhook_loop(
    store: Store, url: str, secret: bytes, *, poll_seconds: float = 1.0, timeout: float = 10.0
) -> None:
    """Deliver new hits as they appear (the store is polled: a sync never waits on the enterprise's
    system); after a failure, wait 1, 2, 4 … up to 300 seconds before trying again."""
    failures = 0
    with httpx.Client(timeout=timeout) as http:
        while True:
            try:
                sent = await asyncio.to_thread(deliver, store, url, secret, http)
                if sent:
                    log.info("hits webhook: delivered %s hits", sent)
                failures = 0
                delay = poll_seconds
            except WebhookFailed as exc:
                failures += 1
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
                log.warning("%s; trying again in %.0f s", exc, delay)
            except Exception:
                failures += 1
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
                log.exception("hits webhook delivery failed")
            await asyncio.sleep(delay)
