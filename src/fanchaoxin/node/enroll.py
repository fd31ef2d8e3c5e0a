"""`fcx node enroll users.csv`: the enterprise's own identifiers → tags, by blinded evaluation.

The platform never sees an identifier: the node blinds ``"type:normalised value"`` with a fresh secret
scalar (``oprf.blind_batch``), sends only the blinded elements in batches of up to 1,000 to
``POST /v1/sharing/evaluate``, verifies the batch DLEQ proof against the OPRF public key published at
``/v1/sharing/keys`` (``oprf.finalize_batch``: a proof for another key is refused and nothing of the batch
is kept) and keeps ``(user_ref, HMAC(node secret, "type:value"), key id, tag)``.

Every row is validated before anything is sent (a bad row is named by line and column, never by value);
each batch is committed with its tags, so an enrolment stopped by the quota (429 + Retry-After, which is
honoured) resumes where it stopped when run again.
"""

from __future__ import annotations

import csv
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.node.client import PlatformClient, PlatformRefused
from fanchaoxin.node.sdk import id_hmac
from fanchaoxin.node.store import Store, now
from fanchaoxin.sharing import oprf
from fanchaoxin.sharing.protocol import b64, unb64

log = logging.getLogger("fanchaoxin.node.enroll")

BATCH = 1000


class EnrollError(ValueError):
    """Bad input (a row, a column, the type) or a refused evaluation; nothing of the failing batch is kept."""


@dataclass
class EnrollResult:
    rows: int
    distinct: int
    already: int
    enrolled: int
    key_id: str
    batches: int
    waited_seconds: float


def read_rows(path: Path, id_col: str, type_: str, value_col: str) -> list[tuple[str, str]]:
    """``(user_ref, canonical "type:value")`` for every row; raises EnrollError naming the first bad row."""
    try:
        t = IdentifierType(type_)
    except ValueError:
        raise EnrollError(f"--type: {type_!r} is not one of {', '.join(IdentifierType)}") from None
    out: list[tuple[str, str]] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        for col, opt in ((id_col, "--id-col"), (value_col, "--value-col")):
            if col not in fields:
                raise EnrollError(f"{opt}: {path.name} has no column {col!r} (columns: {', '.join(fields)})")
        for line_no, row in enumerate(reader, start=2):
            ref = (row.get(id_col) or "").strip()
            if not ref:
                raise EnrollError(f"{path.name} line {line_no}, column {id_col}: empty user id")
            try:
                canonical = normalise(t, row.get(value_col) or "")
            except IdentifierError as exc:
                raise EnrollError(f"{path.name} line {line_no}, column {value_col}: {exc}") from None
            out.append((ref, f"{t.value}:{canonical}"))
    return out


def _oprf_key(keys: dict[str, Any], key_id: str | None) -> tuple[str, bytes]:
    oprf_keys = keys.get("oprf") or []
    chosen = None
    for k in oprf_keys:
        if (key_id is None and k.get("current")) or (key_id is not None and k.get("key_id") == key_id):
            chosen = k
    if chosen is None:
        wanted = f"key id {key_id!r}" if key_id else "a current key"
        raise EnrollError(f"/v1/sharing/keys lists no OPRF {wanted}")
    return str(chosen["key_id"]), unb64(chosen["public_key"], "OPRF public key")


def enroll(
    store: Store,
    rows: list[tuple[str, str]],
    *,
    client: PlatformClient | None = None,
    key_id: str | None = None,
    batch_size: int = BATCH,
    max_wait: float = 3600.0,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> EnrollResult:
    cfg = store.get_config()
    secret = unb64(cfg["node_secret"], "node secret")
    own = client is None
    if client is None:
        client = PlatformClient(cfg["platform_url"], cfg["api_key"])
    try:
        kid, pk = _oprf_key(client.keys(), key_id)
        # distinct (user, identifier) pairs not yet tagged under this key
        by_hmac: dict[bytes, tuple[str, str]] = {}
        for ref, canonical in rows:
            by_hmac.setdefault(id_hmac(secret, canonical), (ref, canonical))
        with store.read() as conn:
            have = {
                bytes(h)
                for (h,) in conn.exec_driver_sql("SELECT id_hmac FROM node_users WHERE key_id = ?", (kid,))
            }
        todo = [(h, ref, canonical) for h, (ref, canonical) in by_hmac.items() if h not in have]
        result = EnrollResult(len(rows), len(by_hmac), len(by_hmac) - len(todo), 0, kid, 0, 0.0)
        if progress and result.already:
            progress(result.already)
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            inputs = [c.encode() for _h, _r, c in batch]
            blinds, blinded = oprf.blind_batch(inputs)
            while True:
                try:
                    answer = client.evaluate([b64(e) for e in blinded], kid)
                    break
                except PlatformRefused as exc:
                    if exc.status != 429:
                        raise EnrollError(
                            f"the platform refused batch {start // batch_size + 1}: {exc}"
                        ) from exc
                    wait = exc.retry_after if exc.retry_after is not None else 60.0
                    if result.waited_seconds + wait > max_wait:
                        raise EnrollError(
                            f"quota reached (429); Retry-After {wait:.0f} s exceeds --max-wait; "
                            f"{result.enrolled} enrolled in this run are kept, run again to resume"
                        ) from exc
                    log.warning(
                        "quota reached (429): waiting %.0f s as the platform asks (Retry-After)", wait
                    )
                    sleep(wait)
                    result.waited_seconds += wait
            if answer.get("key_id") != kid:
                raise EnrollError(
                    f"the platform answered with key {answer.get('key_id')!r}, asked for {kid!r}"
                )
            evaluated = [unb64(e, f"evaluated[{i}]") for i, e in enumerate(answer.get("evaluated") or [])]
            if len(evaluated) != len(blinded):
                raise EnrollError(
                    f"the platform answered {len(evaluated)} evaluations for {len(blinded)} elements"
                )
            try:
                outputs = oprf.finalize_batch(
                    inputs,
                    blinds,
                    evaluated,
                    proof=unb64(answer.get("proof"), "proof"),
                    pk=pk,
                    blinded=blinded,
                )
            except (oprf.ProofError, oprf.InvalidElementError) as exc:
                log.error("refused evaluation batch %s: %s; nothing of it kept", start // batch_size + 1, exc)
                raise EnrollError(f"the evaluation proof does not verify against key {kid}: {exc}") from None
            at = now()
            user_rows = [
                (h, kid, ref, canonical.partition(":")[0], oprf.tag(kid, out), at)
                for (h, ref, canonical), out in zip(batch, outputs, strict=True)
            ]
            with store.transaction() as conn:
                conn.exec_driver_sql(
                    "INSERT OR REPLACE INTO node_users(id_hmac, key_id, user_ref, id_type, tag, enrolled_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    user_rows,
                )
                store.set_config(conn, users_version=uuid.uuid4().hex)
            result.enrolled += len(batch)
            result.batches += 1
            if progress:
                progress(len(batch))
        return result
    finally:
        if own:
            client.close()


def remove_users(store: Store, user_refs: Iterable[str]) -> int:
    refs = [(r,) for r in user_refs]
    with store.transaction() as conn:
        n = 0
        for ref in refs:
            n += conn.exec_driver_sql("DELETE FROM node_users WHERE user_ref = ?", ref).rowcount
        store.set_config(conn, users_version=uuid.uuid4().hex)
    return n
