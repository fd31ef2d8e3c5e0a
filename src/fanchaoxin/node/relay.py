"""Instruction feedback relay: the enterprise's systems tell the node, the node tells the platform.

``POST /v1/instructions/{id}/ack`` and ``/feedback`` on the node are forwarded to the platform's routes of
the same name with the node's key. While the platform is unreachable (or answers 5xx) they are queued in
the store (``node_outbox``) and sent in order by the sync loop once it is back; a 4xx answer is the
platform's verdict on the request (unknown instruction, bad outcome) and is passed back, or for a queued
item recorded as ``refused`` with the platform's problem detail.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.store import Store, now

log = logging.getLogger("fanchaoxin.node.relay")

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0


def enqueue(store: Store, instruction_id: str, action: str, body: dict[str, Any] | None) -> int:
    with store.transaction() as conn:
        t = now()
        row = conn.exec_driver_sql(
            "INSERT INTO node_outbox(instruction_id, action, body, created_at, attempts, next_at, status) "
            "VALUES (?, ?, ?, ?, 0, ?, 'queued') RETURNING id",
            (instruction_id, action, json.dumps(body), t, t),
        ).one()
    return int(row[0])


def relay(
    store: Store, client: PlatformClient, instruction_id: str, action: str, body: dict[str, Any] | None
) -> tuple[int, dict[str, Any]]:
    """Forward now, or queue if the platform is unavailable (or older items still wait, to keep order)."""
    with store.read() as conn:
        waiting = conn.exec_driver_sql("SELECT count(*) FROM node_outbox WHERE status='queued'").scalar_one()
    if not waiting:
        try:
            response = client.instruction(instruction_id, action, body)
            return response.status_code, response.json()
        except PlatformRefused as exc:
            return exc.status, exc.problem
        except PlatformUnavailable as exc:
            log.warning(
                "platform unavailable (%s): %s for instruction %s queued", exc, action, instruction_id
            )
    outbox_id = enqueue(store, instruction_id, action, body)
    return 202, {"queued": True, "outbox_id": outbox_id, "instruction_id": instruction_id, "action": action}


def flush(store: Store, client: PlatformClient) -> dict[str, int]:
    """Send queued items in order; stop at the first one the platform cannot take now."""
    sent = refused = 0
    with store.read() as conn:
        items = conn.exec_driver_sql(
            "SELECT id, instruction_id, action, body, attempts, next_at FROM node_outbox "
            "WHERE status='queued' ORDER BY id"
        ).all()
    for oid, instruction_id, action, body, attempts, next_at in items:
        if next_at > now():
            break
        try:
            client.instruction(instruction_id, action, json.loads(body))
        except PlatformUnavailable as exc:
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempts)
            with store.transaction() as conn:
                conn.exec_driver_sql(
                    "UPDATE node_outbox SET attempts = attempts + 1, next_at = ?, last_error = ? "
                    "WHERE id = ?",
                    (now() + delay, str(exc)[:500], oid),
                )
            break
        except PlatformRefused as exc:
            log.error("platform refused queued %s for instruction %s: %s", action, instruction_id, exc)
            with store.transaction() as conn:
                conn.exec_driver_sql(
                    "UPDATE node_outbox SET attempts = attempts + 1, status = 'refused', last_error = ? "
                    "WHERE id = ?",
                    (json.dumps(exc.problem)[:2000], oid),
                )
            refused += 1
            continue
        with store.transaction() as conn:
            conn.exec_driver_sql(
                "UPDATE node_outbox SET attempts = attempts + 1, status = 'sent', sent_at = ? WHERE id = ?",
                (now(), oid),
            )
        sent += 1
    return {"sent": sent, "refused": refused}


def listing(store: Store, status: str | None = None) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, instruction_id, action, status, attempts, created_at, sent_at, last_error "
        "FROM node_outbox"
    )
    params: tuple[Any, ...] = ()
    if status:
        sql += " WHERE status = ?"
        params = (status,)
    with store.read() as conn:
        rows = conn.exec_driver_sql(sql + " ORDER BY id", params).all()
    keys = ("id", "instruction_id", "action", "status", "attempts", "created_at", "sent_at", "last_error")
    return [dict(zip(keys, r, strict=True)) for r in rows]
