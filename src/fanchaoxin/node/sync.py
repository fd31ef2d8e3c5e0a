"""`fcx node sync`: manifest → snapshot or deltas, each verified before anything is applied.

Order of checks (docs/sharing.md "Node side"):

1. the manifest's signature against the **pinned** key, under the crypto profile the node learnt at
   ``fcx node init`` (``protocol.verify_manifest``: Ed25519, or SM2 with SM3 digests under ``gm``; the
   manifest must state that profile; one that states another means the platform changed its profile and
   the node must be re-initialised); a manifest whose head is behind the local head is refused (an old
   manifest replayed);
2. a snapshot is taken when the store is empty or the platform answers 410 for the deltas after the local
   head: its bytes must have the manifest's ``digest`` (SHA-256 or SM3), it must verify
   (``protocol.read_feed_file``) and its ``seq`` must be the manifest's;
3. each delta must verify (signature over the exact bytes, count, consecutive sequence numbers) and fit
   the local head exactly (``protocol.check_delta_fits``: no replay, no skip), checked again inside the
   transaction that applies it;
4. a snapshot, and each delta, is applied in ONE SQLite transaction together with the new head.

A refusal raises :class:`SyncRefused` after logging one line that says what was refused and that nothing
was applied; the store keeps its last verified copy.

Request ids (#23): a sync runs under its own id (``job-node-sync-…``, or the id of the node request that
asked for it), sent to the platform with every call; each event applied from a delta is logged by
``fanchaoxin.node.sync.events`` under the platform's request id that made the change (the delta line's
``request_id``), which is also kept for the entry (``node_entry_requests``) so that the node's answers can
name it.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fanchaoxin.core import crypto
from fanchaoxin.core.logs import current_request_id, job_request_id, request_context, well_formed_request_id
from fanchaoxin.core.roles import BusinessType
from fanchaoxin.node import hits, logcheck
from fanchaoxin.node.client import PlatformClient, PlatformRefused, PlatformUnavailable
from fanchaoxin.node.store import (
    BULK_INDEXES,
    ENTRY_COLUMNS,
    IN_FORCE_STATUSES,
    RULEBOOK_KEY,
    Store,
    crypto_profile,
    entry_row,
    now,
)
from fanchaoxin.sharing import protocol as P

log = logging.getLogger("fanchaoxin.node.sync")
# One line per applied delta event: silenced alone (FCX_NODE_LOG_LEVEL or a logging config) if too chatty.
events_log = logging.getLogger("fanchaoxin.node.sync.events")

DELTA_LIMIT = 10_000
PAUSE_ENV = "FCX_NODE_TEST_APPLY_PAUSE"  # tests: seconds to sleep inside the apply transaction


class SyncRefused(Exception):
    """A manifest, snapshot or delta that was refused; nothing of it was applied."""


class PlatformSuspended(SyncRefused):
    """The platform refused this enterprise the feed (403 with an `agreement.*` code): its
    information-sharing agreement is suspended, withdrawn, lapsed or not signed. The sync stops; the store
    keeps its last verified copy and the node's status says why (:func:`suspension`)."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(suspended_message(code, reason))


SUSPENDED_KEY = "platform_suspended"  # config: why the platform refuses the feed (empty: it does not)
RESTORED_KEY = "platform_restored_epoch"  # config: the platform's latest restore from a backup, as seen


def suspended_message(code: str, reason: str) -> str:
    what = {
        "agreement.suspended": "suspended by the platform",
        "agreement.withdrawn": "withdrawn from the joint action",
        "agreement.lapsed": "the sharing agreement has lapsed (sign the current version)",
        "agreement.none": "no sharing agreement in force",
        "agreement.applied": "the sharing agreement is not signed yet",
    }.get(code, f"refused by the platform ({code})")
    return f"{what}: {reason}" if reason else what


def suspension(store: Store) -> str | None:
    """Why the platform refuses this node the feed, as its last sync found (None: it does not)."""
    return store.get_config().get(SUSPENDED_KEY) or None


def _agreement_refusal(store: Store, exc: PlatformRefused) -> PlatformSuspended | None:
    """A 403 naming the agreement: noted in the store, logged once (not at every retry), and raised."""
    code = str(exc.problem.get("code") or "")
    if exc.status != 403 or not code.startswith("agreement."):
        return None
    params = exc.problem.get("params") if isinstance(exc.problem.get("params"), dict) else {}
    refused = PlatformSuspended(code, str((params or {}).get("reason") or ""))
    message = str(refused)
    if suspension(store) != message:
        log.error(
            "%s; sync stopped, the store keeps its last verified copy (seq %s)",
            message,
            store.state()["head"],
        )
        with store.transaction() as conn:
            store.set_config(conn, **{SUSPENDED_KEY: message})
    return refused


@dataclass
class SyncResult:
    head_before: int
    head_after: int
    manifest_head: int
    snapshot: int | None = None  # the snapshot seq applied, if any
    deltas: int = 0
    events: int = 0
    refused: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return self.head_after >= self.manifest_head


_MARKS = ", ".join("?" * len(ENTRY_COLUMNS.split(",")))


def _pause_for_tests(what: str) -> None:
    pause = os.environ.get(PAUSE_ENV)
    if pause:
        print(f"fcx-node: paused inside the {what} transaction", file=sys.stderr, flush=True)
        time.sleep(float(pause))


def read_feed(
    data: bytes, public_key: bytes, expect: str, profile: crypto.Profile | None = None
) -> P.FeedFile:
    """protocol.read_feed_file with the cyclic garbage collector paused: a million parsed records would
    otherwise trigger repeated full collections (most of the parse time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return P.read_feed_file(data, public_key, expect=expect, profile=profile)
    finally:
        if was_enabled:
            gc.enable()


def _public_key(store_config: dict[str, str]) -> bytes:
    return P.unb64(store_config["signing_public_key"], "pinned signing public key")


# --- apply (also used by bench/bench_node.py without HTTP) ---------------------------------------------


def apply_snapshot(store: Store, feed: P.FeedFile, *, allow_rollback: bool = False) -> int:
    """Replace the store's entries with a verified snapshot, in one transaction; returns its seq.

    The rows are prepared before the transaction opens (a malformed record refuses the whole file); inside
    it the bulk indexes are dropped, the rows inserted with executemany and the indexes rebuilt (one sort
    each), and the head moves — all or nothing."""
    if feed.format != P.SNAPSHOT_FORMAT:
        raise P.ProtocolError(f"expected a snapshot, got {feed.format}")
    seq = int(feed.header["seq"])
    entry_rows: list[tuple[Any, ...]] = []
    was_enabled = gc.isenabled()
    gc.disable()  # millions of small tuples: no point scanning them while they are made
    try:
        for n, line in enumerate(feed.records):
            record = line.get("record") if isinstance(line, dict) else None
            if not isinstance(record, dict) or not isinstance(record.get("entry_id"), str):
                raise P.ProtocolError(f"snapshot {seq}: line {n + 2} has no record with an entry_id")
            entry_rows.append(entry_row(seq, record, True))
    finally:
        if was_enabled:
            gc.enable()
    with store.transaction() as conn:
        head = int(store.get_config(conn).get("head", "0"))
        if seq < head and not allow_rollback:
            raise P.ProtocolError(f"snapshot {seq} is older than the local head {head} (rollback refused)")
        for name in BULK_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        conn.exec_driver_sql("DELETE FROM node_entries")
        conn.exec_driver_sql("DELETE FROM node_entry_requests")  # a snapshot names no request
        if entry_rows:
            conn.exec_driver_sql(f"INSERT INTO node_entries({ENTRY_COLUMNS}) VALUES ({_MARKS})", entry_rows)
        for ddl in BULK_INDEXES.values():  # a duplicate entry id fails here: nothing applied
            conn.exec_driver_sql(ddl)
        # which enrolled users the new copy hits, changes or lifts: in this transaction, so that a crash
        # loses no hit and a snapshot applied again adds none
        cfg = store.get_config(conn)
        hits.rescreen_all(conn, feed_seq=seq, cfg=cfg)
        _pause_for_tests("snapshot")
        generation = int(cfg.get("generation", "0")) + 1
        store.set_config(conn, head=str(seq), snapshot_seq=str(seq), generation=str(generation))
    store.checkpoint()
    return seq


def apply_delta(store: Store, feed: P.FeedFile) -> int:
    """Apply a verified delta in one transaction with the new head; returns the new head.

    The fit (``from`` == local head) is checked inside the transaction, so two syncs racing cannot both
    apply it. Revoked and expired entries stay as tombstones (in_force 0) so that an index can follow."""
    if feed.format != P.DELTA_FORMAT:
        raise P.ProtocolError(f"expected a delta, got {feed.format}")
    start, end = int(feed.header["from"]), int(feed.header["to"])
    last: dict[str, tuple[int, dict[str, Any]]] = {}
    requests: dict[str, tuple[str, int, str | None]] = {}  # entry id → (its last change's request id, seq)
    for line in feed.records:
        record = line.get("record")
        if not isinstance(record, dict) or not isinstance(record.get("entry_id"), str):
            raise P.ProtocolError(
                f"delta {start}..{end}: event {line.get('seq')} has no record with an entry_id"
            )
        last[record["entry_id"]] = (int(line["seq"]), record)
        request_id = line.get("request_id")
        if well_formed_request_id(request_id):
            requests[record["entry_id"]] = (request_id, int(line["seq"]), line.get("event"))
        else:
            requests.pop(record["entry_id"], None)
    # The keys (tags, a unit's public identifiers) live in the entry row itself: one write per entry,
    # no second table to keep in step (its random-order indexes doubled a delta's commit).
    entry_rows = [
        entry_row(seq, record, record.get("status") in IN_FORCE_STATUSES) for seq, record in last.values()
    ]
    with store.transaction() as conn:
        cfg = store.get_config(conn)
        P.check_delta_fits(feed.header, int(cfg.get("head", "0")))
        if entry_rows:
            conn.exec_driver_sql(
                f"INSERT OR REPLACE INTO node_entries({ENTRY_COLUMNS}) VALUES ({_MARKS})", entry_rows
            )
            hits.rescreen_delta(conn, {eid: rec for eid, (_seq, rec) in last.items()}, feed_seq=end, cfg=cfg)
            # an entry changed by a request-less event keeps no earlier change's id
            unnamed = [(eid,) for eid in last if eid not in requests]
            if unnamed:
                conn.exec_driver_sql("DELETE FROM node_entry_requests WHERE entry_id = ?", unnamed)
            if requests:
                conn.exec_driver_sql(
                    "INSERT OR REPLACE INTO node_entry_requests(entry_id, seq, request_id) VALUES (?, ?, ?)",
                    [(eid, seq, rid) for eid, (rid, seq, _event) in requests.items()],
                )
            _pause_for_tests("delta")
        store.set_config(conn, head=str(end))
    _log_applied(feed)
    return end


def _log_applied(feed: P.FeedFile) -> None:
    """One line per applied event, under the platform's request id that made the change (#23)."""
    if not events_log.isEnabledFor(logging.INFO):
        return
    sync_id = current_request_id()
    for line in feed.records:
        record = line["record"]
        request_id = line.get("request_id")
        events_log.info(
            "applied event %s (%s) of entry %s, status %s",
            line.get("seq"), line.get("event"), record.get("entry_id"), record.get("status"),
            extra={
                "request_id": request_id if well_formed_request_id(request_id) else None,
                "sync_id": sync_id,
                "seq": line.get("seq"),
                "event": line.get("event"),
                "entry_id": record.get("entry_id"),
            },
        )  # fmt: skip


def mark_synced(store: Store, manifest: dict[str, Any] | None = None) -> None:
    values: dict[str, object] = {"last_sync_at": repr(now()), SUSPENDED_KEY: ""}
    if manifest is not None:
        values["manifest_head"] = str(int(manifest.get("head", 0)))
        values["oprf_key_ids"] = json.dumps(list(manifest.get("oprf_key_ids") or []))
    with store.transaction() as conn:
        store.set_config(conn, **values)


# --- the sync ------------------------------------------------------------------------------------------


def _refuse(what: str, exc: Exception) -> SyncRefused:
    message = f"refused {what}: {exc}; nothing applied, the store keeps its last verified copy"
    log.error(message)
    return SyncRefused(message)


def _fetch_snapshot(
    client: PlatformClient,
    manifest: dict[str, Any],
    public_key: bytes,
    profile: crypto.Profile,
    store: Store | None = None,
) -> P.FeedFile:
    snap = manifest.get("snapshot") or {}
    try:
        url = str(snap["url"])
        expected_seq = int(snap["seq"])
        expected_digest = P.snapshot_digest(manifest)
    except (KeyError, TypeError, ValueError):
        raise _refuse("manifest", P.ProtocolError("manifest names no snapshot (url, seq, digest)")) from None
    try:
        data = client.get_bytes(url)
    except PlatformRefused as exc:
        refusal = _agreement_refusal(store, exc) if store is not None else None
        if refusal is not None:
            raise refusal from None
        raise
    what = f"snapshot {expected_seq}"
    if profile.hexdigest(data) != expected_digest:
        raise _refuse(
            what,
            P.ProtocolError(
                f"its {profile.hash_algorithm} digest differs from the manifest's (truncated or replaced)"
            ),
        )
    try:
        feed = read_feed(data, public_key, P.SNAPSHOT_FORMAT, profile)
    except P.ProtocolError as exc:
        raise _refuse(what, exc) from None
    if int(feed.header.get("seq", -1)) != expected_seq:
        raise _refuse(what, P.ProtocolError(f"its header says seq {feed.header.get('seq')}"))
    return feed


def _delta_url(manifest: dict[str, Any], after: int) -> str:
    template = str(manifest.get("delta_url") or "/v1/sharing/deltas?after={seq}")
    url = template.replace("{seq}", str(after)).replace("{after}", str(after))
    if "limit=" not in url:
        url += ("&" if "?" in url else "?") + f"limit={DELTA_LIMIT}"
    return url


def _oprf_keys_changed(cfg: dict[str, str], manifest: dict[str, Any]) -> bool:
    before = json.loads(cfg.get("oprf_key_ids") or "null")
    after = list(manifest.get("oprf_key_ids") or [])
    if before is None or before == after:
        return False
    log.warning(
        "the platform's OPRF keys changed from %s to %s: taking a new snapshot; re-enrol users with "
        "`fcx node enroll` under the new key before the old key's overlap window ends",
        ",".join(before),
        ",".join(after),
    )
    return True


def sync(store: Store, client: PlatformClient | None = None) -> SyncResult:
    """Bring the store to the platform's head. Raises PlatformUnavailable, SyncRefused."""
    cfg = store.get_config()
    own_client = client is None
    if client is None:
        client = PlatformClient(cfg["platform_url"], cfg["api_key"])
    try:
        # its own id, unless a node request asked for it (POST /v1/sync): sent with every platform call
        with request_context(current_request_id() or job_request_id("node-sync")):
            return _sync(store, client, cfg)
    finally:
        if own_client:
            client.close()


def profile_changed_message(before: str, after: str) -> str:
    return (
        f"the platform changed its crypto profile from {before} to {after}; run `fcx node init` again "
        "(check the new feed-signing key's fingerprint with the platform out of band, then --repin)"
    )


def _sync(store: Store, client: PlatformClient, cfg: dict[str, str]) -> SyncResult:
    public_key = _public_key(cfg)
    profile = crypto_profile(cfg)
    state = store.state()
    head = state["head"]
    try:
        document = client.manifest()
        claimed = P.manifest_profile(document)
        if claimed is not None and claimed != profile.name:
            # not verified (it is signed with a key this node has not pinned), only the reason to refuse
            raise P.ProtocolError(profile_changed_message(profile.name, claimed))
        manifest = P.verify_manifest(document, public_key, profile)
    except P.ProtocolError as exc:
        raise _refuse("manifest", exc) from None
    except PlatformRefused as exc:
        raise _agreement_refusal(store, exc) or PlatformUnavailable(str(exc)) from exc
    manifest_head = int(manifest.get("head", 0))
    result = SyncResult(head, head, manifest_head)
    restored = _new_restore(store, cfg, manifest, head)
    rollback = restored is not None and head > int(restored.get("feed_head") or 0)
    if manifest_head < head and not rollback:
        raise _refuse(
            "manifest",
            P.ProtocolError(
                f"its head {manifest_head} is behind the local head {head} (an old manifest replayed?)"
            ),
        )
    try:  # the transparency log (#19): checkpoint, witnesses, consistency, the events that waited
        tlog = logcheck.SyncLog.open(store, client, manifest)
    except logcheck.LogRefused as exc:
        raise _refuse("the transparency log", exc) from None
    need_snapshot = state["snapshot_seq"] == 0 and head == 0 and (manifest.get("snapshot") or {}).get("url")
    rebase = (_oprf_keys_changed(cfg, manifest) if head else False) or rollback
    if rebase:
        # Entries applied earlier carry tags under the old key set only; users re-enrolled under a new key
        # would silently stop matching them once the old key retires. The platform's snapshot is rebuilt
        # for every key-set change, so take it and follow the deltas after it.
        need_snapshot = True
    while True:
        if need_snapshot:
            feed = _fetch_snapshot(client, manifest, public_key, profile, store)
            try:
                tlog.check(feed)
                head = apply_snapshot(store, feed, allow_rollback=rebase)
            except P.ProtocolError as exc:
                raise _refuse(f"snapshot {feed.header.get('seq')}", exc) from None
            result.snapshot = head
            result.events += len(feed.records)
            log.info("applied snapshot %s (%s entries)", head, len(feed.records))
            need_snapshot = False
        if head >= manifest_head:
            break
        url = _delta_url(manifest, head)
        try:
            data = client.get_bytes(url)
        except PlatformRefused as exc:
            if exc.status == 410:
                log.warning("deltas after %s are no longer available (410): taking the snapshot", head)
                need_snapshot = True
                snap_seq = int((manifest.get("snapshot") or {}).get("seq", 0))
                if snap_seq < head:
                    raise _refuse(
                        "snapshot",
                        P.ProtocolError(f"410 for deltas after {head} but the snapshot is at {snap_seq}"),
                    ) from None
                continue
            raise _agreement_refusal(store, exc) or PlatformUnavailable(str(exc)) from exc
        what = f"delta after {head}"
        try:
            feed = read_feed(data, public_key, P.DELTA_FORMAT, profile)
            what = f"delta {feed.header.get('from')}..{feed.header.get('to')}"
            P.check_delta_fits(feed.header, head)
            if feed.header.get("count") == 0:
                log.warning(
                    "the platform has no events after %s although its manifest says %s", head, manifest_head
                )
                break
            tlog.check(feed)  # its events in the log (a LogRefused is a ProtocolError)
            head = apply_delta(store, feed)
        except P.ProtocolError as exc:
            raise _refuse(what, exc) from None
        result.deltas += 1
        result.events += len(feed.records)
        log.info("applied %s (%s events)", what, len(feed.records))
    result.head_after = head
    tlog.close()
    sync_rulebook(store, client)
    mark_synced(store, manifest)
    if restored is not None:
        with store.transaction() as conn:
            store.set_config(conn, **{RESTORED_KEY: str(restored["epoch"])})
    return result


def _new_restore(
    store: Store, cfg: dict[str, str], manifest: dict[str, Any], head: int
) -> dict[str, Any] | None:
    """The platform's restore from a backup (#23) that this node has not followed yet, from the SIGNED
    manifest (``restored``: epoch, feed head restored); None when there is none or it was seen.

    The platform's sequence numbers after the restored head are given again to other events, and its
    transparency log lost the leaves after the backup: a node that followed it past that head takes the
    snapshot again (a rollback the signed fact allows), and every node follows the log anew from here
    (its last checkpoint belongs to the history before the restore). Both are logged as a warning."""
    fact = manifest.get("restored")
    if not isinstance(fact, dict) or not fact.get("epoch") or str(fact["epoch"]) == cfg.get(RESTORED_KEY):
        return None
    restored_head = int(fact.get("feed_head") or 0)
    log.warning(
        "the platform was restored from a backup at feed head %s (%s): %s; the transparency log is "
        "followed anew from this sync",
        restored_head,
        fact.get("restored_at"),
        f"this node's head {head} is past it, taking the platform's snapshot again"
        if head > restored_head
        else "nothing this node applied was lost",
    )
    with store.transaction() as conn:
        conn.exec_driver_sql("DELETE FROM node_log_pending")
        forgotten = (
            logcheck.C_SIZE, logcheck.C_ROOT, logcheck.C_NOTE, logcheck.C_CURSOR, logcheck.C_FEED_SEQ,
            logcheck.C_COSIGNED,
        )  # fmt: skip
        # the log is read again from the last event both histories share (the snapshot moves it on)
        anchor = {logcheck.C_ANCHOR: str(min(head, restored_head))}
        store.set_config(conn, **dict.fromkeys(forgotten, ""), **anchor)
    return fact


def sync_rulebook(store: Store, client: PlatformClient) -> None:
    """Keep the enterprise's rulebook (企业规则: the measures its rules exclude, with the clause) so that
    the node's decisions leave them out as the platform's do. A platform that cannot say (down, or too
    old to have the route) leaves the last known rulebook in place: a failure here never fails the sync."""
    try:
        document = client.rulebook()
    except (PlatformRefused, PlatformUnavailable) as exc:
        log.warning("could not read the enterprise's rulebook (%s); keeping the last one", exc)
        return
    rules = document.get("rules") if isinstance(document, dict) else None
    excluded = {
        str(r["measure"]): str(r.get("clause") or "")
        for r in rules or []
        if isinstance(r, dict) and r.get("measure") and r.get("applicable") is False
    }
    with store.transaction() as conn:
        store.set_config(conn, **{RULEBOOK_KEY: json.dumps(excluded, ensure_ascii=False, sort_keys=True)})


# --- fcx node init -------------------------------------------------------------------------------------


class InitError(ValueError):
    """The platform's signing key does not match the fingerprint given, the store is pinned to another, or
    the platform runs another crypto profile than the node expects."""


def _hits_config(
    webhook: str | None, secret: str | None, business_types: Sequence[str] | None
) -> dict[str, str]:
    """The re-screening settings to store, checked before anything is written."""
    values: dict[str, str] = {}
    if webhook is not None:
        if not webhook.startswith(("http://", "https://")):
            raise InitError(f"--hits-webhook: {webhook!r} is not an http(s) URL")
        values["hits_webhook_url"] = webhook
    if secret is not None:
        values["hits_webhook_secret"] = secret
    if business_types:
        known = {t.value for t in BusinessType}
        for t in business_types:
            if t not in known:
                raise InitError(f"--business-type: {t!r} is not one of {', '.join(sorted(known))}")
        values["business_types"] = ",".join(sorted(set(business_types)))
    return values


def initialise(
    path: str,
    platform_url: str,
    api_key: str,
    *,
    fingerprint: str | None = None,
    client: PlatformClient | None = None,
    repin: bool = False,
    hits_webhook: str | None = None,
    hits_webhook_secret: str | None = None,
    business_types: Sequence[str] | None = None,
    expect_profile: str | None = None,
) -> dict[str, str]:
    """Fetch ``/v1/sharing/keys`` and the manifest, pin the signing key (it must match ``fingerprint``
    when given), learn the platform's crypto profile from the manifest (it must be ``expect_profile`` when
    given), and write the config into the store (created if missing). Returns the pinned key's id and
    fingerprint and the profile.

    The node never reads ``FCX_CRYPTO_PROFILE`` (the platform's setting): from here on it verifies under
    the profile stored now. A store pinned under one profile is re-pinned to a platform of the other only
    with ``repin`` (the platform changed its profile: a new signing key, checked out of band).

    Re-screening (:mod:`.hits`): ``hits_webhook`` is the enterprise's URL that new hits are posted to
    (signed with ``hits_webhook_secret``, else the node secret); ``business_types`` the enterprise's, whose
    measures the hits name (all measures when not given)."""
    hits_config = _hits_config(hits_webhook, hits_webhook_secret, business_types)
    if expect_profile is not None:
        try:
            crypto.profile(expect_profile)
        except crypto.UnknownProfile as exc:
            raise InitError(f"--expect-profile: {exc}") from None
    own = client is None
    if client is None:
        client = PlatformClient(platform_url, api_key)
    try:
        keys = client.keys()
        document = client.manifest()
    finally:
        if own:
            client.close()
    signing = keys.get("signing") or {}
    public = P.unb64(signing.get("public_key"), "signing.public_key")
    try:
        key_profile = crypto.profile_of_public_key(public)
    except crypto.WrongKeyError as exc:
        raise InitError(f"the platform's signing public key: {exc}") from None
    claimed = P.manifest_profile(document) or "international"
    if claimed != key_profile.name:
        raise InitError(
            f"the platform's manifest states the {claimed} crypto profile but its signing key is "
            f"{key_profile.signature_algorithm} ({key_profile.name}): a key of the wrong algorithm for the "
            "profile; nothing written"
        )
    try:
        manifest = P.verify_manifest(document, public, key_profile)
    except P.ProtocolError as exc:
        raise InitError(
            f"the platform's {exc} (signing key {signing.get('key_id')}); nothing written"
        ) from None
    profile = key_profile
    if expect_profile is not None and expect_profile != profile.name:
        raise InitError(
            f"the platform runs the {profile.name} crypto profile ({_algorithms(profile)}), but this node "
            f"expects {expect_profile} (--expect-profile); nothing written"
        )
    actual = P.fingerprint(public)
    if fingerprint is not None and fingerprint.strip().lower() != actual:
        raise InitError(
            f"--fingerprint: the platform's signing key has fingerprint {actual}, not {fingerprint.strip()} "
            "(wrong platform, or someone in between); nothing written"
        )
    store = Store(path, create=True)
    try:
        with store.transaction() as conn:
            cfg = store.get_config(conn)
            pinned = cfg.get("signing_public_key")
            before = crypto_profile(cfg).name if pinned else None
            if before is not None and before != profile.name and not repin:
                raise InitError(
                    f"{profile_changed_message(before, profile.name)}. Its signing key is now {actual} "
                    f"({_algorithms(profile)}); nothing written"
                )
            if pinned and pinned != P.b64(public) and not repin:
                raise InitError(
                    f"this store is pinned to signing key {cfg.get('signing_fingerprint')}; the platform now "
                    f"shows {actual}. Re-pin only after checking it out of band (--repin)"
                )
            values: dict[str, object] = {
                "platform_url": platform_url.rstrip("/"),
                "api_key": api_key,
                "signing_public_key": P.b64(public),
                "signing_key_id": str(signing.get("key_id", "")),
                "signing_fingerprint": actual,
                "crypto_profile": profile.name,
                "oprf_keys": json.dumps(keys.get("oprf") or []),
            }
            if not cfg.get("node_secret"):
                values["node_secret"] = P.b64(os.urandom(32))
            if not cfg.get("id_hmac_profile"):
                # a store with users enrolled before #18 keyed them with HMAC-SHA256; a new one follows
                # the platform (the HMACs cannot be recomputed without the plain identifiers)
                values["id_hmac_profile"] = "international" if cfg.get("node_secret") else profile.name
            for name in ("head", "snapshot_seq", "generation"):
                if name not in cfg:
                    values[name] = "0"
            values.update(hits_config)
            store.set_config(conn, **values)
    finally:
        store.dispose()
    return {
        "key_id": str(signing.get("key_id", "")),
        "fingerprint": actual,
        "crypto_profile": profile.name,
        "manifest_head": str(manifest.get("head", 0)),
    }


def _algorithms(profile: crypto.Profile) -> str:
    return f"{profile.signature_algorithm} signatures, {profile.hash_algorithm} digests"
