"""The audit log for auditors (审计日志): search by action, actor, target and dates (Beijing days), newest
first, 100 at a time (htmx loads the next rows); every search is itself audited.

Each event is shown in words: its action and actor (console.labels), what it recorded — a status that
moved from one value to another, what was added and removed, the other facts by name — and whether the
state it touched changed (the chain keeps only digests of the state before and after, never the state).
The page says whether the hash chain is intact, as `core.audit.verify` finds it (from the latest signed
pruning checkpoint, which it names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console import labels
from fanchaoxin.console.auth import page
from fanchaoxin.console.common import AUDITORS, console_router
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.problems import field_label
from fanchaoxin.console.web import locale_of, render
from fanchaoxin.core import audit
from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.schemas import INT64_MAX
from fanchaoxin.core.settings import get_settings
from fanchaoxin.sanctions.policy import measure_catalogue

router = console_router()

PAGE = 100

# The facts events record (`detail`), by name.
DETAIL_KEY = {
    "accepted": N_("Accepted"),
    "action": N_("Action searched"),
    "actor": N_("Actor searched"),
    "alert_id": N_("Alert"),
    "alerts": N_("Alerts"),
    "batch_id": N_("Batch"),
    "by": N_("Searched by"),
    "channel": N_("Channel"),
    "checks": N_("Look-ups"),
    "conflicts": N_("Conflicting identifiers"),
    "count": N_("Count"),
    "deadlines_moved_to": N_("Deadlines moved to"),
    "delivery_status": N_("Delivery"),
    "digest": N_("Content digest"),  # a file's address under the crypto profile (#18)
    "dropped": N_("Records dropped"),
    "due_on": N_("Due on"),
    "entries": N_("Entries"),
    "entry_id": N_("Entry"),
    "entry_status": N_("Entry status"),
    "error": N_("Error"),
    "errors": N_("Errors"),
    "fields": N_("Fields changed"),
    "flagged": N_("Flagged"),
    "format": N_("Format"),
    "found": N_("Found"),
    "identifier_type": N_("Identifier type"),
    "identifiers": N_("Identifiers"),
    "into": N_("Merged into"),
    "joined": N_("Joined"),
    "key_id": N_("Key"),
    "kind": N_("Kind"),
    "late": N_("After the deadline"),
    "matching": N_("Matching"),
    "measures": N_("Measures"),
    "media_type": N_("File type"),
    "merge_id": N_("Merge"),
    "merged_id": N_("Merged subject"),
    "method": N_("Method"),
    "months": N_("Months"),
    "node_id": N_("Node"),
    "node_version": N_("Node version"),
    "notice": N_("Notice"),
    "notice_ends_on": N_("Notice period ends"),
    "number": N_("Number"),
    "org_id": N_("Organisation"),
    "outcome": N_("Decision or outcome"),
    "party": N_("Party"),
    "policy_version": N_("Policy version"),
    "proposal_id": N_("Proposal"),
    "proposed_identifiers": N_("Identifiers proposed"),
    "proven": N_("Identity proven"),
    "published_on": N_("Published on"),
    "purpose": N_("Purpose"),
    "reason": N_("Reason"),
    "receipt_key_id": N_("Receipt key"),
    "rejected": N_("Rejected"),
    "repair": N_("Credit repair application"),
    "repaired_entry_id": N_("Repaired entry"),
    "request_id": N_("Request"),
    "results": N_("Results"),
    "row": N_("Row"),
    "rows": N_("Rows"),
    "seq": N_("Feed position"),
    "sha256": N_("SHA-256"),  # events recorded before #18 named the file's address so
    "silent_since": N_("Silent since"),
    "since": N_("From"),
    "size": N_("Size (bytes)"),
    "status": N_("Status"),
    "subject_created": N_("New subject"),
    "subject_id": N_("Subject"),
    "subjects": N_("Subjects"),
    "taken": N_("Already another subject's"),
    "target_id": N_("Target searched"),
    "to": N_("Addressed to"),
    "type": N_("Type"),
    "until": N_("Until"),
    "value": N_("Value"),
    "value_digest": N_("Digest of the value searched"),
    "webhook_id": N_("Webhook"),
    "why": N_("Why"),
    "with_name": N_("With a name"),
}
# Which vocabulary (console.labels) names a fact's value.
VALUE_KIND = {
    "outcome": "outcome",
    "identifier_type": "identifier",
    "type": "identifier",
    "conflicts": "identifier",
    "channel": "notice_channel",
    "entry_status": "entry_status",
    "party": "entry_role",
    "status": "entry_status",
    "delivery_status": "notice_delivery",
    "by": "identifier",
}
# Facts whose value is a list of measure codes.
MEASURE_LISTS = ("measures",)
# What the chain keeps of the state (digests): how it moved.
STATE = {
    "created": N_("State recorded (new)"),
    "changed": N_("State changed"),
    "unchanged": N_("State unchanged"),
    "removed": N_("State removed"),
}
# Why `core.audit.verify` found the chain broken, by what its reason says.
BROKEN = (
    (re.compile(r"^event (\d+) is missing"), N_("Event {n} is missing: events were deleted.")),
    (
        re.compile(r"^event (\d+) does not link"),
        N_("Event {n} does not link to the one before: the chain was cut."),
    ),
    (re.compile(r"^event (\d+) was altered"), N_("Event {n} was altered after it was written.")),
    (re.compile(r"^chain head says"), N_("Events at the end of the chain were deleted.")),
    (
        re.compile(r"^audit checkpoint"),
        N_("The pruning checkpoint cannot be trusted (its signature or key)."),
    ),
)
YES_NO = {True: N_("Yes"), False: N_("No")}


@dataclass
class Fact:
    name: str
    value: str = ""
    before: str | None = None  # a value that moved: from … to …
    added: list[str] | None = None
    removed: list[str] | None = None


def _pattern(text: str) -> str:
    """What the searcher typed, as a LIKE pattern: `*` matches any run of characters."""
    return text.strip().replace("*", "%")


def _day_bound(raw: str, *, end: bool) -> datetime | None:
    """The start of a day in the display time zone (of the day after, for the end of a range); a
    ValueError when `raw` is not a date."""
    if not raw.strip():
        return None
    day = date.fromisoformat(raw.strip())
    tz = ZoneInfo(get_settings().timezone_display)
    return datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=tz)


def _value(key: str, value: Any, locale: str, *, vocabulary: str | None = None) -> str:
    _ = translator(locale)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _(YES_NO[value])
    if isinstance(value, list):
        sep = "、" if locale == "zh_CN" else ", "
        return sep.join(_value(key, v, locale, vocabulary=vocabulary) for v in value) if value else "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value(k, v, locale)}" for k, v in value.items())
    kind = vocabulary or VALUE_KIND.get(key)
    if kind is not None:
        return labels.label(kind, str(value), locale)
    return str(value)


def _measure(code: str, locale: str) -> str:
    cat = measure_catalogue()
    m = cat.measures.get(code) or cat.department_measures.get(code)
    return m.text(locale) if m is not None else code


def facts(ev: AuditEvent, locale: str) -> list[Fact]:
    """What an event recorded, in words: status moves and additions/removals as a diff, the rest by name."""
    _ = translator(locale)
    detail = dict(ev.detail or {})
    out: list[Fact] = []
    if "from" in detail and "to" in detail:
        frm, to = detail.pop("from"), detail.pop("to")
        kind = "entry_status" if ev.target_type == "entry" else None
        name = _("Status") if kind else _("Value")
        out.append(
            Fact(
                name,
                _value("to", to, locale, vocabulary=kind),
                before=_value("from", frm, locale, vocabulary=kind),
            )
        )
    for key in sorted(k for k in detail if k.endswith("_added")):
        base = key[: -len("_added")]
        added, removed = detail.pop(key) or [], detail.pop(f"{base}_removed", None) or []
        name = _("Measures") if base == "measures" else _(DETAIL_KEY.get(base, base))
        out.append(
            Fact(
                name,
                added=[_measure(c, locale) for c in added],
                removed=[_measure(c, locale) for c in removed],
            )
        )
    for key, value in detail.items():
        name = _(DETAIL_KEY[key]) if key in DETAIL_KEY else key.replace("_", " ")
        sep = "、" if locale == "zh_CN" else ", "
        if key in MEASURE_LISTS and isinstance(value, list):
            shown = sep.join(_measure(str(c), locale) for c in value) or "—"
        elif key == "fields" and isinstance(value, list):
            # The record's fields that changed, named as the forms name them (console.problems).
            shown = sep.join(field_label(str(f), locale) or str(f) for f in value) or "—"
        else:
            shown = _value(key, value, locale)
        out.append(Fact(name, shown))
    return out


def state_change(ev: AuditEvent) -> str | None:
    """How the state the event touched moved, from the digests the chain keeps."""
    before, after = ev.before_digest, ev.after_digest
    if before is None and after is None:
        return None
    if before is None:
        return "created"
    if after is None:
        return "removed"
    return "unchanged" if before == after else "changed"


# Walking the whole chain takes seconds on millions of events: the page shows the last walk of this
# process while it is younger than this (and says when it was made); "check now" walks it again.
CHAIN_CHECK_SECONDS = 300


@dataclass(frozen=True)
class _ChainCheck:
    result: audit.VerifyResult
    at: datetime


def chain_status(request: Request, session: Session, locale: str, *, now: bool = False) -> dict[str, Any]:
    """The chain as `core.audit.verify` finds it, with the pruning checkpoint it started from."""
    _ = translator(locale)
    state = request.app.state
    last: _ChainCheck | None = getattr(state, "console_chain_check", None)
    fresh = last is not None and (utcnow() - last.at).total_seconds() < CHAIN_CHECK_SECONDS
    if now or not fresh or last is None:
        trusted = getattr(state, "audit_trusted_keys", None)
        last = _ChainCheck(
            audit.verify(session, trusted_keys=trusted() if trusted is not None else None), utcnow()
        )
        state.console_chain_check = last
    result = last.result
    cp = audit.latest_checkpoint(session)
    why = None
    if not result.ok:
        n = result.broken_at
        why = next(
            (_(text).format(n=n) for pattern, text in BROKEN if pattern.match(result.reason or "")),
            _("The chain does not verify at event {n}.").format(n=n),
        )
    return {
        "ok": result.ok,
        "checked": result.checked,
        "broken_at": result.broken_at,
        "why": why,
        "checkpoint": cp,
        "checked_at": last.at,
    }


@router.get("/audit")
def audit_search(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*AUDITORS),
    action: str = "",
    actor: str = "",
    target_id: str = "",
    date_from: str = "",
    date_to: str = "",
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    check: str = "",
) -> Response:
    locale = locale_of(request)
    _ = translator(locale)
    errors: dict[str, str] = {}
    bounds: dict[str, datetime | None] = {}
    for name, raw, end in (("date_from", date_from, False), ("date_to", date_to, True)):
        try:
            bounds[name] = _day_bound(raw, end=end)
        except ValueError:
            errors[name] = _("Enter a date as YYYY-MM-DD, e.g. 2026-12-01.")
    since, until = bounds.get("date_from"), bounds.get("date_to")
    if since is not None and until is not None and until <= since:
        errors["date_to"] = _("The end date is before the start date.")
    rows = (
        []
        if errors
        else audit.search(
            session,
            action=_pattern(action),
            actor=_pattern(actor),
            target_id=target_id.strip(),
            since=since,
            until=until,
            before_id=before,
            limit=PAGE,
        )
    )
    audit.record_read(
        session, principal.actor, "audit.search", "audit_log", "-",
        detail={"action": action, "actor": actor, "target_id": target_id, "results": len(rows)},
    )  # fmt: skip
    more = rows[-1].id if len(rows) == PAGE else None
    partial = bool(request.headers.get("hx-request"))
    events = [
        {
            "ev": ev,
            "action": labels.label("audit_action", ev.action, locale),
            "actor": labels.actor(ev.actor, locale),
            "facts": facts(ev, locale),
            "state": state_change(ev),
        }
        for ev in rows
    ]
    actions = sorted(
        ((code, labels.label("audit_action", code, locale)) for code in labels.AUDIT_ACTION),
        key=lambda a: a[0],
    )
    return render(
        request,
        "audit_rows.html" if partial else "audit.html",
        events=events,
        errors=errors,
        q={
            "action": action,
            "actor": actor,
            "target_id": target_id,
            "date_from": date_from,
            "date_to": date_to,
        },
        before=before,
        more=more,
        actions=actions,
        known_action=action in labels.AUDIT_ACTION or not action,
        state_names=STATE,
        # Walking the chain is the full page's: the next rows (htmx) need not walk it again.
        chain=None if partial else chain_status(request, session, locale, now=check == "now"),
    )
