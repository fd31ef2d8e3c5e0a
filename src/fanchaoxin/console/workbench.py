"""The operator's instruction workbench (执行指令工作台), as Ant Design Pro lays out a list page.

Tabs by state with their counts (待确认 / 待执行 / 已逾期 / 已完成, `sanctions.bulk.tab_clause`), filters
(measure, scene, entry, issue date, deadline), server-side paging, one row per entry with its measures,
their parameters, the deadline and how long the listing holds. Rows are selected (all of a page at once,
up to 500) and acknowledged or reported together, all or nothing (`sanctions.bulk`); the outcome of a
report is always chosen, never assumed. The list exports to CSV or XLSX and a filled-in export comes
back as a feedback file, checked row by row: one wrong row and nothing is applied.

The subject's identifiers are shown in full where they are the enterprise's own accounts — the
platform or social accounts it submitted itself about that subject, its own courier staff (the company
part of the identifier is its USCC) — and masked otherwise (a person's ID number or phone always is).
Where the enterprise runs a node (#16) each row says whether its nodes have the entry yet, and an
instruction reported through a node shows its signed receipt's count of accounts.

The 报送 form submits an entry with its evidence through the registry (`blacklist.service.submit`,
`add_evidence`): all of it is stored, or nothing, and what is wrong is shown on the form.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload
from starlette.datastructures import QueryParams

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.console.auth import page, participant_page
from fanchaoxin.console.common import (
    ADDRESSEES,
    console_router,
    deadline_badge,
    listed_name,
    open_search,
    seal_search,
)
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.labels import label
from fanchaoxin.console.problems import describe, form_errors
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render, secure_headers
from fanchaoxin.core import permissions
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Forbidden, Problem
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, mask, normalise
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.spreadsheet import safe_row
from fanchaoxin.orgs import node_status
from fanchaoxin.orgs import service as orgs
from fanchaoxin.sanctions import bulk
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sharing import changes
from fanchaoxin.sharing.models import FeedEvent
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.models import Subject
from fanchaoxin.subjects.names import name_key

router = console_router()

PAGE_SIZES = (20, 50, 100, 200, 500)
DEFAULT_SIZE = 50
EXPORT_MAX_ENTRIES = 10_000
IMPORT_MAX_ROWS = 5_000
IMPORT_MAX_BYTES = 5 * 1024 * 1024
MAX_EVIDENCE_FILES = 10

TAB_LABELS = {
    "to_ack": N_("To acknowledge"),
    "to_execute": N_("To execute"),
    "overdue": N_("Overdue"),
    "done": N_("Done"),
}
PARAM_LABELS = {
    "max_new_listings_per_day": N_("New listings a day at most"),
    "points": N_("Credit points to deduct"),
    "levels": N_("Levels to lower"),
    "credit_line_factor": N_("Credit line factor"),
    "rate_markup_percent": N_("Rate mark-up (%)"),
    "search_demotion_factor": N_("Search ranking factor"),
    "label_zh": N_("Risk label (Chinese)"),
    "label_en": N_("Risk label (English)"),
}
OUTCOMES = ("executed", "not_applicable", "failed")
ALL_POINTS = N_("All the points gained by brushing, as your records show")
SUPERSEDED = N_("Superseded by the lift: nothing to do")

# Columns of the export and of a feedback file (a header is the code, or its name in either language).
COLUMNS = (
    ("instruction_id", N_("Instruction number")),
    ("entry_id", N_("Entry number")),
    ("subject", N_("Subject")),
    ("identifiers", N_("Identifiers")),
    ("kind", N_("Kind")),
    ("measure", N_("Measure")),
    ("parameters", N_("Parameters")),
    ("status", N_("Status")),
    ("ack_due_on", N_("Acknowledge by")),
    ("holds_until", N_("Listed until")),
    ("outcome", N_("Outcome")),
    ("reason", N_("Reason")),
)


# --- filters --------------------------------------------------------------------------------------------


@dataclass
class Filters:
    """The list's filters as sent (to fill the form in again) and as understood."""

    values: dict[str, str]
    work: bulk.WorkFilter
    page: int
    size: int
    errors: dict[str, str] = field(default_factory=dict)
    org_id: uuid.UUID | None = None

    def query(self, **over: Any) -> str:
        """The query string of this view, with some values replaced (empty ones left out). The search
        term travels sealed (``qs``): it may be a phone number or an ID number, which must never stand
        in an address, a browser's history or a log (#14)."""
        values = {**self.values, "page": str(self.page), "size": str(self.size), **over}
        q = values.pop("q", "")
        if q and self.org_id is not None:
            values["qs"] = seal_search(q, self.org_id)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


FILTER_FIELDS = ("tab", "measure", "scene", "kind", "q", "issued_from", "issued_to", "due_from", "due_to")


def _date(values: dict[str, str], name: str, errors: dict[str, str]) -> date | None:
    raw = values.get(name, "")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = N_("Enter a date as YYYY-MM-DD.")
        return None


def _measure_codes() -> dict[str, Any]:
    cat = measure_catalogue()
    return {**cat.measures, **cat.department_measures}


def search_entries(session: Session, org_id: uuid.UUID, q: str) -> frozenset[uuid.UUID]:
    """Entries addressed to the organisation that a search names: by entry or instruction number, by
    document number, by any identifier of the subject (in any form it is typed), by part of a unit's
    name, or by a natural person's full name."""
    q = q.strip()
    addressed = select(Instruction.entry_id).where(Instruction.owner_org_id == org_id)
    ors: list[Any] = [Entry.document_number == q]
    try:
        as_id = uuid.UUID(q)
        ors += [Entry.id == as_id, Entry.id.in_(select(Instruction.entry_id).where(Instruction.id == as_id))]
    except ValueError:
        pass
    pairs = []
    for t in IdentifierType:
        try:
            pairs.append((t.value, normalise(t, q)))
        except IdentifierError:
            continue
    found = subjects.find_by_identifiers(session, pairs)
    if found:
        ors.append(Entry.subject_id.in_([s.id for s in found.values()]))
    key = name_key(q)
    if key:
        unit_kinds = [k for k in catalogues().subject_kinds if not subjects.is_personal(k)]
        ors.append(
            Entry.subject_id.in_(
                select(Subject.id).where(
                    or_(
                        Subject.kind.in_(unit_kinds) & Subject.name_key.contains(key, autoescape=True),
                        Subject.name_key == subjects.stored_name_key("individual", q),
                    )
                )
            )
        )
    rows = session.scalars(select(Entry.id).where(Entry.id.in_(addressed), or_(*ors)))
    return frozenset(rows)


def read_filters(
    request: Request, session: Session, principal: Principal, back: str | None = None
) -> Filters:
    """The filters of the page's address, or after a POST those of the list it was sent from (`back`)."""
    params = QueryParams(back.lstrip("?")) if back is not None else request.query_params
    values = {name: (params.get(name) or "").strip()[:200] for name in FILTER_FIELDS}
    errors: dict[str, str] = {}
    assert principal.org_id is not None
    if params.get("qs"):
        opened = open_search(params["qs"], principal.org_id)
        if opened is None:
            errors["q"] = N_("This search has expired. Search again.")
        values["q"] = (opened or "").strip()[:200]
    if values["tab"] not in bulk.TABS:
        values["tab"] = "to_ack"
    if values["measure"] and values["measure"] not in _measure_codes():
        errors["measure"] = N_("Choose a measure from the list.")
        values["measure"] = ""
    if values["scene"] and values["scene"] not in measure_catalogue().scenes:
        errors["scene"] = N_("Choose a scene from the list.")
        values["scene"] = ""
    if values["kind"] not in ("", "apply", "lift"):
        values["kind"] = ""
    dates = {n: _date(values, n, errors) for n in ("issued_from", "issued_to", "due_from", "due_to")}
    for low, high in (("issued_from", "issued_to"), ("due_from", "due_to")):
        lo, hi = dates[low], dates[high]
        if lo and hi and hi < lo:
            errors[high] = N_("The end date is before the start date.")
            dates[high] = None
    entry_ids = search_entries(session, principal.org_id, values["q"]) if values["q"] else None
    try:
        number = max(1, int(params.get("page") or 1))
    except ValueError:
        number = 1
    try:
        size = int(params.get("size") or DEFAULT_SIZE)
    except ValueError:
        size = DEFAULT_SIZE
    size = size if size in PAGE_SIZES else DEFAULT_SIZE
    work = bulk.WorkFilter(
        tab=values["tab"],
        measure=values["measure"] or None,
        scene=values["scene"] or None,
        kind=values["kind"] or None,
        entry_ids=entry_ids,
        issued_from=dates["issued_from"],
        issued_to=dates["issued_to"],
        due_from=dates["due_from"],
        due_to=dates["due_to"],
    )
    return Filters(values, work, number, size, errors, principal.org_id)


# --- rows -----------------------------------------------------------------------------------------------


@dataclass
class ShownIdentifier:
    type: str
    value: str
    own: bool


@dataclass
class InstructionRow:
    ins: Instruction
    measure: str
    params: list[tuple[str, str]]
    actions: list[str]
    superseded: bool
    due: str  # deadline badge kind
    accounts_affected: int | None
    audience: str | None = None  # measure 11: addressed as the employer, or as its peers
    notices: list[str] = field(default_factory=list)  # texts to pass on (measure 11: to the peers)


@dataclass
class EntryRow:
    entry: Entry
    identifiers: list[ShownIdentifier]
    instructions: list[InstructionRow]
    node_synced: tuple[int, int] | None  # (nodes that have the entry's latest change, nodes)


def _in_locale(text: Any, locale: str) -> str | None:
    """A catalogue text (zh, en) in the reader's language."""
    if text is None:
        return None
    return str(text.zh if locale == "zh_CN" else text.en)


def measure_name(code: str, kind: str, locale: str) -> str:
    """A measure as the instruction names it: what to apply, or for a lift what lifting it means."""
    m = _measure_codes().get(code)
    if m is None:
        return code
    text = m.lift if kind == "lift" and hasattr(m, "lift") else m
    return str(text.zh if locale == "zh_CN" else text.en)


def shown_params(params: dict[str, Any], locale: str) -> list[tuple[str, str]]:
    """An instruction's parameters in words; the risk label in the reader's language only."""
    _ = translator(locale)
    out = []
    for name, value in (params or {}).items():
        if (name == "label_zh" and locale != "zh_CN") or (name == "label_en" and locale == "zh_CN"):
            continue
        if value is None:
            # measure 5 without a figure from the finding: the enterprise's own records say how many
            if name != "points":
                continue
            shown = _(ALL_POINTS)
        else:
            shown = _("Yes") if value is True else _("No") if value is False else str(value)
        out.append((_(PARAM_LABELS[name]) if name in PARAM_LABELS else name, shown))
    return out


# The identifiers that can be an enterprise's own accounts: an account on its platform, a handle on its
# social platform, its courier staff's number. A person's resident ID, phone, e-mail or device is personal
# data the platform masks for every enterprise, even the one that submitted it (least disclosure, #14).
ACCOUNT_TYPES = frozenset(
    {
        IdentifierType.platform_account.value,
        IdentifierType.social_account.value,
        IdentifierType.courier_staff.value,
    }
)


def own_identifiers(session: Session, org: Any, subject_ids: list[uuid.UUID]) -> set[tuple[str, str]]:
    """The account identifiers the enterprise sent itself in its submissions about these subjects."""
    own: set[tuple[str, str]] = set()
    if not subject_ids:
        return own
    sent = session.scalars(
        select(Entry.submitted_subject).where(Entry.owner_org_id == org.id, Entry.subject_id.in_(subject_ids))
    )
    for subject in sent:
        for ident in (subject or {}).get("identifiers", []):
            if ident["type"] in ACCOUNT_TYPES:
                own.add((ident["type"], ident["value"]))
    return own


def _is_own(org: Any, t: str, v: str, sent: set[tuple[str, str]]) -> bool:
    """Its own account: one it submitted itself, or a courier staff number under its own USCC."""
    if (t, v) in sent:
        return True
    return bool(org.uscc) and t == IdentifierType.courier_staff.value and v.split(":", 1)[0] == org.uscc


def _shown(t: str, v: str, own: bool) -> ShownIdentifier:
    """Masked unless it is the organisation's own; `own` is set where that unmasked something."""
    try:
        masked = mask(t, v)
    except IdentifierError:
        masked = "***"
    if own:
        return ShownIdentifier(t, v, masked != v)
    return ShownIdentifier(t, masked, False)


def _node_sync(
    request: Request, session: Session, org_id: uuid.UUID, entry_ids: list[uuid.UUID]
) -> tuple[list[node_status.NodeView], dict[uuid.UUID, tuple[int, int]]]:
    nodes = node_status.list_nodes(
        session,
        org_id=org_id,
        feed_head=changes.head(session),
        now=utcnow(),
        threshold_seconds=request.app.state.settings.node_silent_alert_seconds,
    )
    if not nodes or not entry_ids:
        return nodes, {}
    latest = dict(
        session.execute(
            select(FeedEvent.entry_id, func.max(FeedEvent.seq))
            .where(FeedEvent.entry_id.in_(entry_ids))
            .group_by(FeedEvent.entry_id)
        ).all()
    )
    return nodes, {e: (sum(1 for n in nodes if n.feed_seq >= seq), len(nodes)) for e, seq in latest.items()}


def build_rows(
    request: Request,
    session: Session,
    principal: Principal,
    entry_ids: list[uuid.UUID],
    groups: dict[uuid.UUID, list[Instruction]],
    superseded: set[uuid.UUID],
    locale: str,
) -> tuple[list[EntryRow], list[node_status.NodeView]]:
    assert principal.org_id is not None
    org = orgs.get_organisation(session, principal.org_id, principal)
    entries = (
        {
            e.id: e
            for e in session.scalars(
                select(Entry)
                .where(Entry.id.in_(entry_ids))
                .options(selectinload(Entry.subject).selectinload(Subject.identifiers))
            )
        }
        if entry_ids
        else {}
    )
    sent = own_identifiers(session, org, [e.subject_id for e in entries.values()])
    nodes, synced = _node_sync(request, session, org.id, entry_ids)
    today = china_today()
    rows = []
    for entry_id in entry_ids:
        entry = entries.get(entry_id)
        if entry is None:
            continue
        idents = [
            _shown(i.type, i.value, _is_own(org, i.type, i.value, sent))
            for i in sorted(entry.subject.identifiers, key=lambda i: (i.type, i.created_at))
        ]
        shown = []
        for ins in groups.get(entry_id, []):
            named = ins.named_actions()
            shown.append(
                InstructionRow(
                    ins=ins,
                    measure=measure_name(ins.measure, ins.kind, locale),
                    params=shown_params(ins.params, locale),
                    actions=[a.zh if locale == "zh_CN" else a.en for a in named],
                    superseded=ins.id in superseded,
                    due=deadline_badge(ins.ack_due_on, today, ins.acknowledged_at is not None),
                    accounts_affected=(ins.receipt or {}).get("accounts_affected"),
                    audience=_in_locale(ins.audience_names(), locale),
                    notices=[
                        (_in_locale(a.notice, locale) or "").replace("{entry_id}", str(ins.entry_id))
                        for a in named
                        if a.notice and ins.kind == "apply"
                    ],
                )
            )
        rows.append(EntryRow(entry, idents, shown, synced.get(entry_id) if nodes else None))
    return rows, nodes


# --- the page -------------------------------------------------------------------------------------------


def _feedback_fields(rows: list[EntryRow], locale: str) -> list[dict[str, str]]:
    """The confirmations the selected instructions may ask for: each field once, with its measures."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        for r in row.instructions:
            for f in r.ins.feedback_fields():
                item = out.setdefault(
                    f.field,
                    {
                        "field": f.field,
                        "type": f.type,
                        "name": f.zh if locale == "zh_CN" else f.en,
                        "measures": [],
                    },
                )
                if r.measure not in item["measures"]:
                    item["measures"].append(r.measure)
    return [
        {**v, "measures": "、".join(v["measures"]) if locale == "zh_CN" else ", ".join(v["measures"])}
        for v in out.values()
    ]


def workbench_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    errors: list[str] | None = None,
    form: dict[str, Any] | None = None,
    import_report: dict[str, Any] | None = None,
    status_code: int = 200,
    back: str | None = None,
) -> Response:
    locale = locale_of(request)
    filters = read_filters(request, session, principal, back)
    found = bulk.worklist(
        session, principal, filters.work, offset=(filters.page - 1) * filters.size, limit=filters.size
    )
    rows, nodes = build_rows(
        request, session, principal, found.entry_ids, found.instructions, found.superseded, locale
    )
    pages = max(1, -(-found.total_entries // filters.size))
    cat = measure_catalogue()
    measures = [(code, m.zh if locale == "zh_CN" else m.en) for code, m in cat.measures.items()]
    measures += [(code, m.zh if locale == "zh_CN" else m.en) for code, m in cat.department_measures.items()]
    scenes = [(code, s.zh if locale == "zh_CN" else s.en) for code, s in cat.scenes.items()]
    done = request.query_params.get("done")
    done_n = request.query_params.get("n") or ""
    return render(
        request,
        "workbench.html",
        status_code=status_code,
        filters=filters,
        tabs=[(t, TAB_LABELS[t], found.counts.get(t, 0)) for t in bulk.TABS],
        rows=rows,
        nodes=nodes,
        found=found,
        pages=pages,
        page_sizes=PAGE_SIZES,
        measures=measures,
        scenes=scenes,
        outcomes=OUTCOMES,
        feedback_fields=_feedback_fields(rows, locale),
        errors=errors or [],
        form=form or {},
        import_report=import_report,
        done=done if done in ("ack", "feedback", "import", "submit") else None,
        done_n=int(done_n) if done_n.isdigit() else 0,
        superseded_text=SUPERSEDED,
        today=china_today(),
        may_submit=principal.role in permissions.SUBMITTERS,
    )


@router.get("/workbench")
def workbench(
    request: Request, session: Session = DB, principal: Principal = participant_page(*ADDRESSEES)
) -> Response:
    if request.query_params.get("q"):  # a plain search term in the address: seal it, and forget this one
        return redirect(request, f"{PREFIX}/workbench?" + read_filters(request, session, principal).query())
    return workbench_page(request, session, principal)


@router.post("/workbench")
async def workbench_filter(
    request: Request, session: Session = DB, principal: Principal = participant_page(*ADDRESSEES)
) -> Response:
    """The filter form is sent by POST, so that the search term never stands in an address: the list
    is then shown at its address with the term sealed (``qs``)."""
    form = await request.form()
    back = urlencode({name: str(form.get(name) or "") for name in (*FILTER_FIELDS, "size")})
    return redirect(request, f"{PREFIX}/workbench?" + read_filters(request, session, principal, back).query())


def _back(back: str) -> str:
    """The list the operator was on (its query string only: never another address)."""
    back = back.lstrip("?")
    return f"{PREFIX}/workbench" + ("?" + back if back and "//" not in back and "\\" not in back else "")


def _with_done(back: str, done: str, n: int) -> str:
    url = _back(back)
    return url + ("&" if "?" in url else "?") + urlencode({"done": done, "n": n})


def _ids(raw: list[str]) -> tuple[list[uuid.UUID], list[str]]:
    ids, bad = [], []
    for value in raw:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            bad.append(value)
    return ids, bad


def _refusals(session: Session, principal: Principal, exc: bulk.BulkRefused, locale: str) -> list[str]:
    """Each refused instruction as a line: its subject and measure, and why, in the reader's words.
    One that is not the organisation's own is only "not found" (another's is never named)."""
    _ = translator(locale)
    known = {
        i.id: i
        for i in session.scalars(
            select(Instruction).where(
                Instruction.id.in_([uuid.UUID(f.id) for f in exc.failures]),
                Instruction.owner_org_id == principal.org_id,
            )
        )
    }
    entries = registry.entries_by_id(session, {i.entry_id for i in known.values()})
    lines = []
    for failure in exc.failures:
        ins = known.get(uuid.UUID(failure.id))
        where = _("Instruction not found")
        if ins is not None:
            entry = entries.get(ins.entry_id)
            who = listed_name(entry.subject) if entry else ""
            where = f"{who} · {measure_name(ins.measure, ins.kind, locale)}"
        colon = "：" if locale == "zh_CN" else ": "
        lines.append(f"{where}{colon}{_problem_text(failure.problem, locale, _confirmation_names(locale))}")
    return lines


def _field_name(name: str, locale: str, fields: dict[str, str]) -> str:
    """A field a problem names, as the form or the file calls it."""
    _ = translator(locale)
    name = name.removeprefix("body.")
    if name.startswith("confirmations."):
        return fields.get(name.removeprefix("confirmations."), _("Confirmation"))
    return {"outcome": _("Outcome"), "reason": _("Reason"), "id": _("Instruction number")}.get(name, "")


def _problem_text(problem: Problem, locale: str, fields: dict[str, str] | None = None) -> str:
    """One problem in the reader's words (console.problems), each message after the field it names."""
    text = describe(problem, locale)
    stop, sep, colon = ("。", "；", "：") if locale == "zh_CN" else (".", "; ", ": ")
    parts = []
    for name, message in text.by_field.items():
        label_ = _field_name(name, locale, fields or {})
        message = message.rstrip(stop)
        parts.append(f"{label_}{colon}{message}" if label_ and message else message or label_)
    joined = sep.join(p for p in parts if p)
    return joined + stop if joined else text.title


def _confirmation_names(locale: str) -> dict[str, str]:
    """Every feedback field of the catalogue by code, named in the reader's language."""
    out: dict[str, str] = {}
    for m in measure_catalogue().measures.values():
        for a in m.actions:
            for f in a.feedback:
                out[f.field] = f.zh if locale == "zh_CN" else f.en
    return out


@router.post("/workbench/ack")
def workbench_ack(
    request: Request,
    session: Session = DB,
    principal: Principal = participant_page(*ADDRESSEES),
    ids: list[str] = Form(default_factory=list),
    back: str = Form(""),
) -> Response:
    """Acknowledge every selected instruction, or none (each refusal named on the list)."""
    locale = locale_of(request)
    parsed, _bad = _ids(ids)
    if not parsed:
        return workbench_page(
            request,
            session,
            principal,
            back=back,
            errors=[translator(locale)(NOTHING_SELECTED)],
            status_code=422,
        )
    try:
        done = bulk.acknowledge_many(session, principal, parsed)
    except bulk.BulkRefused as exc:
        session.rollback()
        errors = _refusals(session, principal, exc, locale)
        return workbench_page(
            request,
            session,
            principal,
            back=back,
            errors=errors,
            form={"selected": set(ids)},
            status_code=422,
        )
    except Problem as exc:
        session.rollback()
        return workbench_page(
            request,
            session,
            principal,
            back=back,
            errors=[_problem_text(exc, locale)],
            status_code=exc.status,
        )
    return redirect(request, _with_done(back, "ack", len(done)))


NOTHING_SELECTED = N_("Select at least one instruction.")
CHOOSE_OUTCOME = N_("Choose the outcome: executed, not applicable or failed.")


async def confirmations_of(request: Request) -> dict[str, str]:
    """The report form's `confirm.<field>` inputs (an unticked box sends nothing)."""
    form = await request.form()
    return {
        name.removeprefix("confirm."): value.strip()
        for name, value in form.items()
        if name.startswith("confirm.") and isinstance(value, str) and value.strip()
    }


@router.post("/workbench/feedback")
def workbench_feedback(
    request: Request,
    session: Session = DB,
    principal: Principal = participant_page(*ADDRESSEES),
    ids: list[str] = Form(default_factory=list),
    outcome: str = Form(""),
    reason: str = Form(""),
    back: str = Form(""),
    confirmations: dict[str, str] = Depends(confirmations_of),
) -> Response:
    """Report every selected instruction with the one outcome chosen, or none. Each instruction gets the
    confirmations it asks for (measure 6 its mark, measure 5 its points …), not the others'."""
    locale = locale_of(request)
    _ = translator(locale)
    parsed, _bad = _ids(ids)
    errors = []
    if not parsed:
        errors.append(_(NOTHING_SELECTED))
    if outcome not in OUTCOMES:
        errors.append(_(CHOOSE_OUTCOME))
    form = {"selected": set(ids), "outcome": outcome, "reason": reason, "confirm": confirmations}
    if errors:
        return workbench_page(
            request, session, principal, back=back, errors=errors, form=form, status_code=422
        )
    found = bulk.own_instructions(session, principal, parsed)
    items = []
    for instruction_id in parsed:
        ins = found.get(instruction_id)
        asked = {f.field for f in ins.feedback_fields()} if ins is not None else set()
        own = {k: v for k, v in confirmations.items() if k in asked}
        items.append(
            bulk.FeedbackItem(id=instruction_id, outcome=outcome, reason=reason, confirmations=own or None)
        )
    try:
        done = bulk.report_many(session, principal, items)
    except bulk.BulkRefused as exc:
        session.rollback()
        errors = _refusals(session, principal, exc, locale)
        return workbench_page(
            request, session, principal, back=back, errors=errors, form=form, status_code=422
        )
    except Problem as exc:
        session.rollback()
        return workbench_page(
            request,
            session,
            principal,
            errors=[_problem_text(exc, locale)],
            form=form,
            status_code=exc.status,
        )
    return redirect(request, _with_done(back, "feedback", len(done)))


# --- export and feedback files ---------------------------------------------------------------------------


def _export_lines(rows: list[EntryRow], locale: str, fields: dict[str, str]) -> list[list[object]]:
    _ = translator(locale)
    header: list[object] = [_(name) for _code, name in COLUMNS]
    lines: list[list[object]] = [header + list(fields.values())]
    for row in rows:
        idents = "; ".join(f"{label('identifier', i.type, locale)}: {i.value}" for i in row.identifiers)
        subject = listed_name(row.entry.subject)
        for r in row.instructions:
            ins = r.ins
            status = _(SUPERSEDED) if r.superseded else label("instruction_status", ins.status, locale)
            asked = {f.field for f in ins.feedback_fields()}
            given = ins.confirmations or {}
            line: list[object] = [
                str(ins.id),
                str(ins.entry_id),
                subject,
                idents,
                label("instruction_kind", ins.kind, locale),
                r.measure,
                "; ".join(f"{k}: {v}" for k, v in r.params),
                status,
                ins.ack_due_on.isoformat(),
                row.entry.max_end_on.isoformat() if row.entry.max_end_on else "",
                label("instruction_status", ins.outcome, locale) if ins.outcome else "",
                ins.outcome_reason or "",
            ]
            line += [str(given.get(code, "")) if code in asked else "" for code in fields]
            lines.append(line)
    return lines


@router.get("/workbench/export")
def workbench_export(
    request: Request,
    session: Session = DB,
    principal: Principal = participant_page(*ADDRESSEES),
) -> Response:
    """The filtered list (every page of it), one line per instruction: CSV (UTF-8 with a BOM, so that
    Excel and WPS read the Chinese) or XLSX. Filled in, it is a feedback file."""
    locale = locale_of(request)
    filters = read_filters(request, session, principal)
    found = bulk.worklist(session, principal, filters.work, offset=0, limit=EXPORT_MAX_ENTRIES)
    rows, _nodes = build_rows(
        request, session, principal, found.entry_ids, found.instructions, found.superseded, locale
    )
    lines = _export_lines(rows, locale, _confirmation_names(locale))
    stamp = china_today().strftime("%Y%m%d")
    name = f"instructions-{filters.work.tab}-{stamp}"
    if request.query_params.get("format") == "xlsx":
        from openpyxl import Workbook  # heavy: only for an XLSX export

        book = Workbook(write_only=True)
        sheet = book.create_sheet("instructions")
        for line in lines:
            sheet.append(safe_row(line))
        out = io.BytesIO()
        book.save(out)
        response = Response(
            out.getvalue(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    else:
        text = io.StringIO()
        writer = csv.writer(text)
        for line in lines:
            writer.writerow(safe_row(line))
        response = Response(
            ("\ufeff" + text.getvalue()).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return secure_headers(request, response)


class FileUnreadable(Exception):
    """A feedback file that cannot be read as CSV or XLSX (the message is a msgid)."""


def _read_table(data: bytes, filename: str) -> list[list[object]]:
    """The rows of a CSV (UTF-8, or GB 18030 as Excel saves it in China) or XLSX file."""
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook  # heavy: only for an XLSX file

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a damaged file
            raise FileUnreadable(N_("The file is not a readable XLSX workbook.")) from exc
        try:
            sheet = book.worksheets[0]
            rows = []
            for n, values in enumerate(sheet.iter_rows(values_only=True)):
                if n > IMPORT_MAX_ROWS + 1:
                    break
                rows.append(list(values))
            return rows
        finally:
            book.close()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise FileUnreadable(N_("The file is neither UTF-8 nor GB 18030 text."))
    if "\x00" in text:
        raise FileUnreadable(N_("The file is not a CSV or XLSX file."))
    return [list(r) for r in csv.reader(io.StringIO(text))]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text[1:] if text.startswith("'") else text  # the export's guard against formulas


def _outcome_words() -> dict[str, str]:
    """Every way a file may write an outcome: its code and its name in each language."""
    words = {code: code for code in OUTCOMES}
    for locale in ("zh_CN", "en"):
        for code in OUTCOMES:
            words[label("instruction_status", code, locale).casefold()] = code
    return words


_YES_NO = {"是": "true", "否": "false", "已": "true", "√": "true", "✓": "true"}


@dataclass
class ImportRow:
    number: int  # the row number a spreadsheet shows (the header is row 1)
    item: bulk.FeedbackItem


def _columns(header: list[str], fields: dict[str, str]) -> dict[str, int]:
    """Header cell → column: by code or by the name in either language."""
    names: dict[str, str] = {}
    for code, msgid in COLUMNS:
        names[code] = code
        for locale in ("zh_CN", "en"):
            names[translator(locale)(msgid).casefold()] = code
    for code in fields:
        names[f"confirm.{code}"] = f"confirm.{code}"
        for locale in ("zh_CN", "en"):
            names[_confirmation_names(locale)[code].casefold()] = f"confirm.{code}"
    out: dict[str, int] = {}
    for i, cell in enumerate(header):
        column = names.get(cell.strip().casefold())
        if column and column not in out:
            out[column] = i
    return out


def parse_feedback(
    table: list[list[object]], locale: str
) -> tuple[list[ImportRow], list[tuple[int | None, str]], int]:
    """(rows to report, row errors, rows left blank). A row whose outcome is blank is left out: the
    outcome is never assumed."""
    _ = translator(locale)
    fields = _confirmation_names(locale)
    if not table:
        return [], [(1, _("The file is empty."))], 0
    header = [_cell(c) for c in table[0]]
    cols = _columns(header, fields)
    missing = [code for code in ("instruction_id", "outcome") if code not in cols]
    if missing:
        names = "、".join(_(dict(COLUMNS)[m]) for m in missing)
        return [], [(1, _("The header row lacks the column(s): %(names)s.") % {"names": names})], 0
    if len(table) - 1 > IMPORT_MAX_ROWS:
        return [], [(1, _("A file may hold at most %(n)d rows.") % {"n": IMPORT_MAX_ROWS})], 0
    words = _outcome_words()
    rows: list[ImportRow] = []
    errors: list[tuple[int | None, str]] = []
    blank = 0
    seen: dict[uuid.UUID, int] = {}
    for n, raw in enumerate(table[1:], start=2):
        cells = [_cell(c) for c in raw]

        def get(code: str, cells: list[str] = cells) -> str:
            i = cols.get(code)
            return cells[i] if i is not None and i < len(cells) else ""

        if not any(cells):
            continue
        outcome_text = get("outcome")
        if not outcome_text:
            blank += 1
            continue
        raw_id = get("instruction_id")
        try:
            instruction_id = uuid.UUID(raw_id)
        except ValueError:
            errors.append((n, _("The instruction number is missing or not a number from an export.")))
            continue
        if instruction_id in seen:
            errors.append(
                (n, _("This instruction is already on row %(row)d.") % {"row": seen[instruction_id]})
            )
            continue
        seen[instruction_id] = n
        outcome = words.get(outcome_text.casefold())
        if outcome is None:
            errors.append((n, _("Unknown outcome: write executed, not applicable or failed.")))
            continue
        confirmations = {}
        for code in fields:
            value = get(f"confirm.{code}")
            if value:
                confirmations[code] = _YES_NO.get(value, value)
        item = bulk.FeedbackItem(
            id=instruction_id, outcome=outcome, reason=get("reason"), confirmations=confirmations or None
        )
        rows.append(ImportRow(n, item))
    return rows, errors, blank


@router.post("/workbench/import")
def workbench_import(
    request: Request,
    session: Session = DB,
    principal: Principal = participant_page(*ADDRESSEES),
    file: UploadFile | None = File(None),
    back: str = Form(""),
) -> Response:
    """A feedback file: every row checked (by the file's rules, then the instruction's), the report per
    row; one wrong row and nothing is applied."""
    locale = locale_of(request)
    _ = translator(locale)
    report: dict[str, Any] = {"errors": [], "applied": 0, "blank": 0, "filename": ""}

    def refused(status: int) -> Response:
        return workbench_page(
            request, session, principal, back=back, import_report=report, status_code=status
        )

    if file is None or not file.filename:
        report["errors"] = [(None, _("Choose a CSV or XLSX file."))]
        return refused(422)
    report["filename"] = file.filename
    data = file.file.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        report["errors"] = [(None, _("The file is larger than 5 MB."))]
        return refused(413)
    try:
        table = _read_table(data, file.filename)
    except FileUnreadable as exc:
        report["errors"] = [(None, _(str(exc)))]
        return refused(422)
    rows, errors, blank = parse_feedback(table, locale)
    report["blank"] = blank
    if not errors and not rows:
        errors = [(None, _("No row has an outcome: fill in the outcome of the instructions to report."))]
    if rows:
        # Checked by the instructions' own rules even when other rows are already wrong, so that one
        # upload lists every wrong row; rolled back unless the whole file is right.
        try:
            bulk.report_many(session, principal, [r.item for r in rows])
        except bulk.BulkRefused as exc:
            fields = _confirmation_names(locale)
            errors += [
                (rows[f.index].number, _problem_text(f.problem, locale, fields))
                if f.problem.status != 404
                else (rows[f.index].number, _("No instruction of yours has this number."))
                for f in exc.failures
            ]
        except Problem as exc:
            errors.append((None, _problem_text(exc, locale)))
        if errors:
            session.rollback()
    if errors:
        report["errors"] = sorted(errors, key=lambda e: e[0] or 0)
        return refused(422)
    return redirect(request, _with_done(back, "import", len(rows)))


# --- 报送: submit an entry with its evidence ---------------------------------------------------------------

SUBMIT_FIELDS = (
    "subject_kind", "subject_name", "behaviours", "role", "severity", "basis", "document_number",
    "issuing_authority", "document_date", "occurred_from", "occurred_to", "facts",
    "contact_email", "contact_phone", "contact_postal_address", "contact_addressee",
    "brushed_orders", "points_gained",
)  # fmt: skip
IDENTIFIER_ROWS = 3


def _submit_form(
    request: Request, form: dict[str, Any], errors: dict[str, str], status_code: int = 200
) -> Response:
    cat = catalogues()
    limits = get_settings()
    return render(
        request,
        "workbench_submit.html",
        status_code=status_code,
        form=form,
        errors=errors,
        subject_kinds=list(cat.subject_kinds),
        behaviours=list(cat.behaviours),
        severities=list(cat.severities),
        bases=list(cat.vocabulary("basis")),
        roles=("organizer", "participant", "facilitator"),
        identifier_types=[t.value for t in IdentifierType],
        identifier_rows=IDENTIFIER_ROWS,
        max_files=MAX_EVIDENCE_FILES,
        max_mb=max(1, limits.evidence_max_bytes // (1024 * 1024)),
    )


@router.get("/workbench/submit")
def submit_form(request: Request, principal: Principal = page(*ADDRESSEES)) -> Response:
    permissions_check(principal)
    return _submit_form(request, {"basis": "enterprise_finding", "identifiers": []}, {})


def permissions_check(principal: Principal) -> None:
    if principal.role not in permissions.SUBMITTERS:
        raise Forbidden("Your role may not submit entries")


# A form field for each part of the submission a validation error may name (pydantic's path).
_ERROR_FIELDS = {
    "subject.kind": "subject_kind",
    "subject.name": "subject_name",
    "subject.identifiers": "identifiers",
    "subject": "identifiers",
    "contact.email": "contact_email",
    "contact.phone": "contact_phone",
    "contact.postal_address": "contact_postal_address",
    "contact.addressee": "contact_addressee",
    "contact": "contact_email",
    "gains.brushed_orders": "brushed_orders",
    "gains.points_gained": "points_gained",
    "gains": "brushed_orders",
}


def _error_field(path: str) -> str:
    for prefix, name in _ERROR_FIELDS.items():
        if path == prefix or path.startswith(prefix + "."):
            return name
    head = path.split(".", 1)[0]
    return head if head in SUBMIT_FIELDS else "form"


@router.post("/workbench/submit")
async def submit_entry(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*ADDRESSEES),
    evidence: list[UploadFile] = File(default_factory=list),
) -> Response:
    """Submit an entry (status submitted) and attach its evidence: all of it, or nothing."""
    permissions_check(principal)
    locale = locale_of(request)
    _ = translator(locale)
    raw = await request.form()
    form: dict[str, Any] = {name: str(raw.get(name) or "").strip() for name in SUBMIT_FIELDS}
    form["behaviours"] = [str(v) for v in raw.getlist("behaviours")]
    form["identifiers"] = [
        {"type": str(raw.get(f"id_type_{n}") or ""), "value": str(raw.get(f"id_value_{n}") or "").strip()}
        for n in range(IDENTIFIER_ROWS)
    ]
    files = [f for f in evidence if f.filename]
    errors: dict[str, str] = {}
    if len(files) > MAX_EVIDENCE_FILES:
        errors["evidence"] = _("At most %(n)d evidence files.") % {"n": MAX_EVIDENCE_FILES}
    body = {
        "subject": {
            "kind": form["subject_kind"],
            "name": form["subject_name"],
            "identifiers": [i for i in form["identifiers"] if i["value"]],
        },
        "behaviours": form["behaviours"],
        "role": form["role"],
        "severity": form["severity"],
        "basis": form["basis"],
        "facts": form["facts"],
        # how the subject is told (告知书) and what the finding says it gained (measure 5)
        "contact": {
            k: form[f"contact_{k}"] or None for k in ("email", "phone", "postal_address", "addressee")
        },
        "gains": {k: form[k] or None for k in ("brushed_orders", "points_gained")},
        **{
            k: form[k] or None
            for k in ("document_number", "issuing_authority", "document_date", "occurred_from", "occurred_to")
        },
    }
    try:
        data = EntryIn.model_validate(body)
    except ValidationError as exc:
        for path, message in form_errors(exc, locale).items():
            errors.setdefault(_error_field(path), message)
        data = None
    if data is None or errors:
        return _submit_form(request, form, errors, 422)
    assert principal.org_id is not None
    limit = get_settings().evidence_max_bytes
    try:
        entry = registry.submit(session, principal.actor, principal.org_id, data)
        for upload in files:
            registry.add_evidence(
                session,
                principal.actor,
                entry,
                filename=upload.filename or "evidence",
                declared_type=upload.content_type,
                data=upload.file.read(limit + 1),
            )
    except Problem as exc:
        session.rollback()
        text = describe(exc, locale)
        where = (
            "evidence"
            if any(k in ("file", "evidence") for k in text.by_field) or exc.status in (413, 415)
            else "form"
        )
        message = "; ".join(text.messages) or text.title
        if where == "evidence" and files:
            message = f"{text.title}: {message}" if text.messages else text.title
        return _submit_form(request, form, {where: message}, exc.status if exc.status < 500 else 422)
    return redirect(request, f"{PREFIX}/entries/{entry.id}?done=submitted")


def problem_lines(request: Request, problem: Problem) -> list[str]:
    """A refused single step as the lines of a page's error list, in the reader's language."""
    locale = locale_of(request)
    return [_problem_text(problem, locale, _confirmation_names(locale))]
