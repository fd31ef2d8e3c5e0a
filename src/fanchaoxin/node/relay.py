"""Instruction feedback relay: the enterprise's systems tell the node, the node tells the platform.

``POST /v1/instructions/{id}/ack`` and ``/feedback`` on the node are forwarded to the platform's routes of
the same name with the node's key. While the platform is unreachable (or answers 5xx) they are queued in
the store (``node_outbox``) and sent in order by the sync loop once it is back; a 4xx answer is the
platform's verdict on the request (unknown instruction, bad outcome) and is passed back, or for a queued
item recorded as ``refused`` with the platform's problem detail.

Execution receipts (执行回执, #16)
---------------------------------
``fcx node init`` gives the node a key of its own (:func:`ensure_node_key`, a ``sharing.protocol.SigningKey``
of the crypto profile the node learnt from the platform's manifest: Ed25519, or SM2 under ``gm``; a key of
the other profile, left from before the platform changed its profile, is replaced) and enrols its public
key with the platform (:func:`enrol_node_key`,
``POST /v1/nodes/keys``). Once enrolled, every feedback the node relays carries a receipt signed with it
(:func:`sign_feedback`): the instruction, the outcome, when (``executed_at``; now, if the feedback gives no
time) and how many accounts were affected (``accounts_affected`` of the feedback, a count the enterprise
gives — never the accounts). The platform verifies it before it records the report.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from fanchaoxin.core import crypto
from fanchaoxin.core.errors import ValidationProblem
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.store import Store, crypto_profile, now
from fanchaoxin.sharing import protocol as P

log = logging.getLogger("fanchaoxin.node.relay")

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0

# node_config names of the node key: its secret (the Ed25519 seed or the SM2 scalar: it never leaves the
# store), its public key (required for SM2), its crypto profile, its id (the public key's fingerprint), and
# whether the platform has enrolled it ("1"). A key stored before #18 has a seed only: Ed25519.
NODE_KEY_SEED = "node_key_seed"
NODE_KEY_PUBLIC = "node_key_public"
NODE_KEY_PROFILE = "node_key_profile"
NODE_KEY_ID = "node_key_id"
NODE_KEY_ENROLLED = "node_key_enrolled"


class NodeKeyError(RuntimeError):
    """The platform did not enrol the node key (the message says why)."""


def _key_from(cfg: dict[str, str]) -> P.SigningKey | None:
    secret = cfg.get(NODE_KEY_SEED)
    if not secret:
        return None
    prof = crypto.profile(cfg.get(NODE_KEY_PROFILE) or "international")
    public = P.unb64(cfg[NODE_KEY_PUBLIC], "node key public") if cfg.get(NODE_KEY_PUBLIC) else None
    try:
        return P.SigningKey.load(cfg[NODE_KEY_ID], P.unb64(secret, "node key secret"), public, prof)
    except crypto.CryptoError as exc:
        raise NodeKeyError(
            f"the node key in the store cannot be used: {exc}; make a new one with "
            "`fcx node init --new-node-key`"
        ) from None


def ensure_node_key(store: Store, *, new: bool = False) -> tuple[P.SigningKey, bool]:
    """The node's receipt-signing key, made now if the store has none (or ``new``: a fresh one, after a
    revocation; or the stored one is of another profile than the platform's, after a profile change);
    returns it and whether it was made. A new key is not enrolled until the platform says so."""
    with store.transaction() as conn:
        cfg = store.get_config(conn)
        profile = crypto_profile(cfg)
        key = None if new else _key_from(cfg)
        if key is not None and key.profile.name == profile.name:
            return key, False
        made = P.SigningKey.generate("", profile)
        key = made.with_id(P.fingerprint(made.public))
        store.set_config(
            conn,
            **{
                NODE_KEY_SEED: P.b64(key.private_bytes()),
                NODE_KEY_PUBLIC: P.b64(key.public),
                NODE_KEY_PROFILE: profile.name,
                NODE_KEY_ID: key.key_id,
                NODE_KEY_ENROLLED: "0",
            },
        )
    return key, True


def enrol_node_key(store: Store, client: PlatformClient, *, label: str = "") -> dict[str, Any]:
    """Enrol the node key's public half with the platform (``POST /v1/nodes/keys``); the platform's answer.

    Raises :class:`NodeKeyError` when the platform names another fingerprint, PlatformRefused or
    PlatformUnavailable as the client does; the key stays unenrolled then (receipts are not signed)."""
    key = _key_from(store.get_config())
    if key is None:
        raise NodeKeyError("the node has no key yet: run `fcx node init`")
    answer = client.request(
        "POST", "/v1/nodes/keys", json={"public_key": P.b64(key.public), "label": label}
    ).json()
    if not isinstance(answer, dict) or answer.get("key_id") != key.key_id:
        got = answer.get("key_id") if isinstance(answer, dict) else None
        raise NodeKeyError(f"the platform enrolled key {got!r}, not this node's {key.key_id}")
    with store.transaction() as conn:
        store.set_config(conn, **{NODE_KEY_ENROLLED: "1"})
    return answer


def enrolled_node_key(store: Store) -> P.SigningKey | None:
    """The node key if the platform has enrolled it (only then are receipts signed) and it is of the
    platform's profile (a key left from before a profile change is not: re-run ``fcx node init``)."""
    cfg = store.get_config()
    if cfg.get(NODE_KEY_ENROLLED) != "1":
        return None
    key = _key_from(cfg)
    return key if key is not None and key.profile.name == crypto_profile(cfg).name else None


def _invalid(field: str, message: str) -> dict[str, Any]:
    return ValidationProblem(
        f"{field}: {message}", errors=[{"in": "body", "field": field, "message": message}]
    ).to_dict()


def sign_feedback(
    key: P.SigningKey, instruction_id: str, body: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The feedback with the node's signed receipt, or (None, a 422 problem) when it cannot be signed:
    ``accounts_affected`` missing, or an ``executed_at`` without its UTC offset."""
    count = body.get("accounts_affected")
    if not isinstance(count, int) or isinstance(count, bool):
        return None, _invalid(
            "accounts_affected",
            "required: how many of your accounts the execution touched (a count, 0 if none), for the "
            "signed execution receipt",
        )
    executed_at = body.get("executed_at") or datetime.now(UTC).isoformat(timespec="seconds")
    try:
        P.receipt_time(str(executed_at))
    except ValueError as exc:
        return None, _invalid("executed_at", str(exc).removeprefix("executed_at: "))
    receipt = P.sign_receipt(
        key,
        instruction_id=instruction_id,
        outcome=str(body.get("outcome")),
        executed_at=str(executed_at),
        accounts_affected=count,
    )
    return {**body, "executed_at": str(executed_at), "receipt": receipt}, None


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
    """Forward now, or queue if the platform is unavailable (or older items still wait, to keep order).
    Feedback is signed first when the node key is enrolled (a receipt the caller sent is replaced)."""
    if action == "feedback" and body is not None:
        key = enrolled_node_key(store)
        if key is not None:
            signed, problem = sign_feedback(key, instruction_id, body)
            if signed is None:
                return 422, problem or {}
            body = signed
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
