"""Node status reports (节点状态上报, #16): the node tells the platform where it stands.

At a fixed interval (``fcx node serve --status-interval``, 60 s by default) and once on
``fcx node status --report``, the node sends ``POST /v1/nodes/status``: its ``node_id`` (made at its first
report, kept in its store's config), feed position and age, the policy version of what it applies, the
enrolled count, the live evaluations since its last report, the errors since then, its version and its
receipt-signing key id if it has one. The platform answers with its feed head and the node's lag.

The report carries the transparency log's check too (#19, ``log``: :func:`.logcheck.status`'s alarm,
events waiting for a checkpoint, the size verified), so the platform's node-status page shows a node that
refused a checkpoint. A platform from before that refuses the member (422 naming ``log``): the report
goes again without it, and this process stops sending it to that platform.

A report never blocks the node: it runs beside the sync loop, with a short timeout, and a platform that is
down or refuses costs one log line; the counts then go in the next report.

Live evaluations are counted by the live-tag path (:mod:`.live`): the serving node passes its running
total since the start (``LiveStats.evaluated``); otherwise (``fcx node status --report``) the total is the
number of live tags the store ever kept (``node_live_tags`` is numbered: its highest number). The report
sends the difference from the total at the last report the platform took.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fanchaoxin import __version__
from fanchaoxin.node import logcheck
from fanchaoxin.node.client import PlatformClient, PlatformRefused
from fanchaoxin.node.store import Store

REPORT_INTERVAL = 60.0
REPORT_TIMEOUT = 10.0  # seconds: a slow platform must not hold a report (or a thread) for long
_LIVE_TAGS_REPORTED = "status_live_tags_reported"  # the total as of the last report the platform took
ERROR_KINDS = ("sync_failures", "relay_failures")
LOG_ALARM_MAX = 1000  # characters of the alarm sent (it names what failed in its first words)
_without_log: set[str] = set()  # platforms (base URLs) that refused the ``log`` member


@dataclass
class ErrorCounts:
    """Errors since the last report the platform accepted (in the serving process)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    live_reported: int = 0  # the serving node's running total of live evaluations at the last report

    def add(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def taken(self, sent: dict[str, int]) -> None:
        """The platform took a report with these counts: what happened since stays for the next one."""
        for kind, n in sent.items():
            self.counts[kind] = max(0, self.counts.get(kind, 0) - n)


def node_id(store: Store) -> str:
    """This node's id (config ``node_id``), made at the first call and kept."""
    cfg = store.get_config()
    if cfg.get("node_id"):
        return cfg["node_id"]
    with store.transaction() as conn:
        have = store.get_config(conn).get("node_id")  # another process may have made it meanwhile
        if have:
            return have
        made = uuid.uuid4().hex
        store.set_config(conn, node_id=made)
        return made


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def build_report(
    store: Store, *, interval: float, errors: dict[str, int] | None = None, now: float | None = None
) -> dict[str, Any]:
    """The report's body (``orgs.node_status.NodeStatusIn``) from the store."""
    return _body(store, interval=interval, errors=errors, now=now)[0]


def _body(
    store: Store,
    *,
    interval: float,
    errors: dict[str, int] | None,
    now: float | None = None,
    live: tuple[int, int] | None = None,
) -> tuple[dict[str, Any], int]:
    """The body, and the running total of live evaluations it counts up to. ``live``: the serving
    node's (running total, total at the last report); else the store's live tags."""
    ident = node_id(store)
    at = time.time() if now is None else now
    cfg = store.get_config()
    state = store.state()
    with store.read() as conn:
        enrolled = int(conn.exec_driver_sql("SELECT count(*) FROM node_users").scalar_one())
        # the policy of the newest record (one row by the seq index: a million entries cost nothing)
        newest = "SELECT json_extract(record, '$.policy_version') FROM node_entries ORDER BY seq DESC LIMIT 1"
        policy = cfg.get("policy_version") or conn.exec_driver_sql(newest).scalar()
        kept = int(conn.exec_driver_sql("SELECT coalesce(max(n), 0) FROM node_live_tags").scalar_one())
    total, reported = live if live is not None else (kept, _int(cfg.get(_LIVE_TAGS_REPORTED)))
    last = state["last_sync_at"]
    body = {
        "node_id": ident,
        "node_version": __version__,
        "node_key_id": cfg.get("node_key_id") or None,
        "feed_seq": state["head"],
        "feed_age_seconds": None if last is None else round(max(0.0, at - last), 1),
        "policy_version": str(policy)[:64] if policy else None,
        "enrolled": enrolled,
        # a total below the one last reported was reset: all of it is new
        "live_tags": total - reported if total >= reported else total,
        "errors": {kind: int((errors or {}).get(kind, 0)) for kind in ERROR_KINDS},
        "interval_seconds": interval,
        "log": log_report(store),
    }
    return body, total


def log_report(store: Store) -> dict[str, Any]:
    """The ``log`` member: where the node stands with the transparency log (:func:`.logcheck.status`)."""
    st = logcheck.status(store)
    alarm = st["alarm"]
    return {
        "alarm": alarm[:LOG_ALARM_MAX] if alarm else None,
        "events_waiting": st["events_waiting"],
        "size": st["size"],
        "checked_up_to_feed_seq": st["checked_up_to_feed_seq"],
    }


def _refuses_log_member(exc: PlatformRefused) -> bool:
    if exc.status != 422:
        return False
    errors = exc.problem.get("errors") or []
    return any(isinstance(e, dict) and str(e.get("field", "")).split(".")[0] == "log" for e in errors)


def report(
    store: Store,
    client: PlatformClient,
    *,
    interval: float = REPORT_INTERVAL,
    errors: ErrorCounts | None = None,
    live_total: int | None = None,
) -> dict[str, Any]:
    """Send one report; the platform's answer (feed head, lag). Raises PlatformUnavailable or
    PlatformRefused, leaving the counts for the next report. ``live_total``: the serving node's running
    total of live evaluations (kept against ``errors.live_reported``)."""
    live = None
    if live_total is not None:
        live = (live_total, errors.live_reported if errors is not None else 0)
    body, total = _body(store, interval=interval, errors=dict(errors.counts) if errors else None, live=live)
    if client.base_url in _without_log:
        body.pop("log", None)
    try:
        answer = client.request("POST", "/v1/nodes/status", json=body, timeout=REPORT_TIMEOUT).json()
    except PlatformRefused as exc:
        if "log" not in body or not _refuses_log_member(exc):
            raise
        _without_log.add(client.base_url)
        body.pop("log")
        answer = client.request("POST", "/v1/nodes/status", json=body, timeout=REPORT_TIMEOUT).json()
    # the total as it was when the body was built: what was counted since goes in the next report
    if live is None:
        with store.transaction() as conn:
            store.set_config(conn, **{_LIVE_TAGS_REPORTED: str(total)})
    if errors is not None:
        errors.taken(body["errors"])
        if live is not None:
            errors.live_reported = total
    return answer if isinstance(answer, dict) else {}
