"""Public pages of the console (no sign-in): the published blacklist query (masked, rate-limited),
statistics, correction notices, and the report (举报) and objection (异议) forms.

Only the public 失信 list is ever shown here (lists.yaml, `core.catalogue.public_bases`): entries on an
administrative penalty or a judicial decision. Enterprise findings form the market-shared list of the
participating enterprises and never appear on a public page — not in the query, not in the statistics,
not in the correction notices.

The public query (公示查询) is never an oracle for personal data: it answers only for entries that are
public (:func:`is_public_entry`), and a natural person is found only by an identifier together with
their full name (as 信用中国 asks name and ID number of individuals). A person not listed and a person
whose name was not given or does not match get the same answer, word for word."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, remedies, repair, reports
from fanchaoxin.appeals import corrections as correction_notices
from fanchaoxin.appeals.ratelimit import PublicLimits, TokenBuckets
from fanchaoxin.appeals.schemas import ObjectionIn, RepairIn, ReportIn
from fanchaoxin.appeals.views import _report_targets
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console.auth import public_page
from fanchaoxin.console.common import console_router, listed_name
from fanchaoxin.console.web import render
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.catalogue import catalogues, shown_publicly
from fanchaoxin.core.errors import NotFound, Problem, TooManyRequests, ValidationProblem
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import service as org_service
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.stats import service as stats
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.models import Subject
from fanchaoxin.subjects.names import name_key
from fanchaoxin.workflows import appeals as due_process

router = console_router()

PUBLIC_ACTOR = Actor("public")
_lock = threading.Lock()


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _query_limit(request: Request) -> None:
    """Per client address: stops scraping the list name by name (FCX_CONSOLE_QUERY_RATE_PER_ADDRESS)."""
    s = get_settings()
    with _lock:
        buckets = getattr(request.app.state, "console_query_buckets", None)
        if buckets is None:
            buckets = TokenBuckets(s.console_query_rate_per_address, s.console_query_window_seconds)
            request.app.state.console_query_buckets = buckets
    wait = buckets.take(f"query:{_address(request)}")
    if wait > 0:
        seconds = max(1, int(wait) + 1)
        raise TooManyRequests(
            f"Too many queries; try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
            retry_after=seconds,
        )


def _filing_limits(request: Request) -> PublicLimits:
    # The same buckets as the API's public filing routes (appeals.views): one budget per address.
    with _lock:
        limits = getattr(request.app.state, "appeal_limits", None)
        if limits is None:
            limits = request.app.state.appeal_limits = PublicLimits(get_settings())
        return limits


def public_entry(e: Entry, remedy: remedies.Remedies | None = None) -> dict[str, Any]:
    """What anyone may see of an entry in force: no facts, no reporter, masked personal data — and
    the subject's remedies (objection, credit repair): possible now, or from which day."""
    return {
        "id": e.id,
        "status": e.status,
        "behaviours": e.behaviours,
        "severity": e.severity,
        "basis": e.basis,
        "document_number": e.document_number,
        "issuing_authority": e.issuing_authority,
        "published_at": e.published_at,
        "max_end_on": e.max_end_on,
        "liable_role": e.liable_role,
        "objection": remedy.objection if remedy is not None else None,
        "repair": remedy.repair if remedy is not None else None,
    }


def is_public_entry(e: Entry) -> bool:
    """Whether the public query shows this entry in force (公示): on the public 失信 list (its basis,
    `public_bases()`: bases.yaml ``list`` → lists.yaml ``public``), and of a severity that is published
    (severities.yaml ``public``: a minor case never is)."""
    return shown_publicly(e.basis, e.severity)


def _find(session: Session, by: str, q: str) -> list[Subject]:
    if by == "name":
        if len(q) < 2:
            raise _form_error("q", "at least 2 characters")
        return subjects.search_by_name(session, q, limit=20)
    try:
        itype = IdentifierType(by)
        canonical = normalise(itype, q)
    except IdentifierError as exc:
        raise _form_error("q", str(exc)) from exc
    except ValueError as exc:
        raise _form_error("by", "unknown identifier type") from exc
    found = subjects.find_by_identifiers(session, [(itype.value, canonical)]).get((itype.value, canonical))
    return [found] if found is not None else []


def _confirmed(subject: Subject, by: str, full_name: str) -> bool:
    """Whether the query may show this subject: a unit always; a natural person only when found by an
    identifier and the full name given matches theirs. A name search alone never lists a person."""
    if not subjects.is_personal(subject.kind):
        return True
    if by == "name" or not full_name:
        return False
    return name_key(full_name) == name_key(subject.name)


def _form_error(field: str, message: str) -> Problem:
    return ValidationProblem(f"{field}: {message}", errors=[{"field": field, "message": message}])


def _query_page(
    request: Request,
    q: str,
    by: str,
    results: list[dict[str, Any]] | None,
    errors: list[str],
    full_name: str = "",
) -> Response:
    template = "public/results.html" if request.headers.get("hx-request") else "public/query.html"
    return render(
        request,
        template,
        # An identifier searched for is not written back into the page (as on the "who looked me up"
        # form): a page must not hold a plain resident ID or phone (#14). A name is.
        q=q if by == "name" else "",
        by=by,
        full_name=full_name,
        results=results,
        errors=errors,
        id_types=[t.value for t in IdentifierType],
    )


@router.get("/public")
def query_form(request: Request, _: Principal = public_page()) -> Response:
    """The empty form: a search is a POST, so searched names and identifiers stay out of access logs."""
    return _query_page(request, "", "name", None, [])


@router.post("/public")
def query(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    q: str = Form(""),
    by: str = Form("name"),
    full_name: str = Form(""),
) -> Response:
    q, full_name = q.strip(), full_name.strip()
    if not q:
        return _query_page(request, q, by, None, [], full_name)
    _query_limit(request)
    errors: list[str] = []
    try:
        if len(full_name) > 200:
            raise _form_error("full_name", "at most 200 characters")
        found = _find(session, by, q)
    except Problem as exc:
        found = []
        errors = [f"{e['field']}: {e['message']}" for e in (exc.errors or [])] or [exc.detail]
    results: list[dict[str, Any]] = []
    today = china_today()
    for subject in found:
        # A person not listed and a person not confirmed take the same path to the same empty answer.
        if not _confirmed(subject, by, full_name):
            continue
        shown = [e for e in registry.entries_in_force(session, subject.id) if is_public_entry(e)]
        if not shown:
            continue
        # Links to object or to apply for repair appear only when possible (else the earliest day).
        possible = remedies.remedies_of(session, shown, today=today)
        entries = [public_entry(e, possible[e.id]) for e in shown]
        results.append(
            {
                "kind": subject.kind,
                "name": listed_name(subject),
                "identifiers": subjects.identifiers_out(subject, reveal=False),
                "entries": entries,
            }
        )
    # The query may itself be personal data: the log keeps its digest only.
    audit.record_read(
        session, PUBLIC_ACTOR, "public_query", "subject", "-",
        detail={
            "by": by, "value_digest": audit.digest(f"{by}:{q}"), "with_name": bool(full_name),
            "results": len(results),
        },
    )  # fmt: skip
    return _query_page(request, q, by, results, errors, full_name)


@router.get("/public/stats")
def public_stats(request: Request, session: Session = DB, _: Principal = public_page()) -> Response:
    return render(
        request, "public/stats.html", summary=stats.public_summary_cached(request.app.state, session)
    )


@router.get("/public/corrections")
def corrections(request: Request, session: Session = DB, _: Principal = public_page()) -> Response:
    notices = []
    for n in correction_notices.list_corrections(session, limit=200):
        zh, en = correction_notices.correction_text(n)
        notices.append({"n": n, "zh": zh, "en": en})
    return render(request, "public/corrections.html", notices=notices)


def _validation_messages(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out[loc or "form"] = str(err.get("msg", ""))
    return out


# --- objection (异议) ---------------------------------------------------------------------------------------


@router.get("/public/objection")
def objection_form(
    request: Request, session: Session = DB, _: Principal = public_page(), entry: str = ""
) -> Response:
    return render(
        request,
        "public/objection.html",
        form={"entry_id": entry},
        errors={},
        filed=None,
        id_types=[t.value for t in IdentifierType],
    )


@router.post("/public/objection")
def objection_submit(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    entry_id: str = Form(""),
    identifier_type: str = Form(""),
    identifier_value: str = Form(""),
    grounds: str = Form(""),
    contact_email: str = Form(""),
) -> Response:
    form = {
        "entry_id": entry_id,
        "identifier_type": identifier_type,
        "identifier_value": identifier_value,
        "grounds": grounds,
        "contact_email": contact_email,
    }
    errors: dict[str, str] = {}
    try:
        body = ObjectionIn.model_validate(
            {
                "entry_id": entry_id.strip(),
                "identifier": {"type": identifier_type, "value": identifier_value},
                "grounds": grounds,
                "contact_email": contact_email.strip(),
            }
        )
    except ValidationError as exc:
        errors = _validation_messages(exc)
        body = None
    if body is not None:
        _filing_limits(request).check(_address(request), [audit.digest(f"entry:{body.entry_id}") or ""])
        try:
            filing = due_process.file_objection(
                session,
                PUBLIC_ACTOR,
                entry_id=body.entry_id,
                identifier_type=body.identifier.type.value,
                identifier_value=body.identifier.value,
                grounds=body.grounds,
                contact_email=body.contact_email,
                channel="public",
            )
        except NotFound:
            session.rollback()
            errors = {"identifier": "no published entry with this id has a subject with this identifier"}
        except Problem as exc:
            session.rollback()
            errors = {e.get("field") or "form": e.get("message", "") for e in (exc.errors or [])} or {
                "form": exc.detail
            }
        else:
            return render(
                request,
                "public/filed.html",
                status_code=201,
                kind="objection",
                tracking=filing.case.tracking_number,
                secret=filing.secret,
                due=filing.case.decide_due_on,
            )
    return render(
        request,
        "public/objection.html",
        status_code=422,
        form=form,
        errors=errors,
        filed=None,
        id_types=[t.value for t in IdentifierType],
    )


# --- credit repair (信用修复) -------------------------------------------------------------------------------


def _repair_form(
    request: Request, form: dict[str, Any], errors: dict[str, str], status_code: int
) -> Response:
    return render(
        request,
        "public/repair.html",
        status_code=status_code,
        form=form,
        errors=errors,
        id_types=[t.value for t in IdentifierType],
        max_bytes=get_settings().attachment_max_bytes,
    )


@router.get("/public/repair")
def repair_form(request: Request, _: Principal = public_page(), entry: str = "") -> Response:
    return _repair_form(request, {"entry_id": entry}, {}, 200)


@router.post("/public/repair")
def repair_submit(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    entry_id: str = Form(""),
    identifier_type: str = Form(""),
    identifier_value: str = Form(""),
    commitment_accepted: bool = Form(False),
    commitment_text: str = Form(""),
    rectification: str = Form(""),
    contact_email: str = Form(""),
    proof: UploadFile | None = File(None),
) -> Response:
    """An application for credit repair with its credit commitment and the proof of rectification."""
    form = {
        "entry_id": entry_id,
        "identifier_type": identifier_type,
        "identifier_value": identifier_value,
        "commitment_accepted": commitment_accepted,
        "commitment_text": commitment_text,
        "rectification": rectification,
        "contact_email": contact_email,
    }
    try:
        body = RepairIn.model_validate(
            {
                "entry_id": entry_id.strip(),
                "identifier": {"type": identifier_type, "value": identifier_value},
                "commitment_accepted": commitment_accepted,
                "commitment_text": commitment_text,
                "rectification": rectification,
                "contact_email": contact_email.strip(),
            }
        )
    except ValidationError as exc:
        return _repair_form(request, form, _validation_messages(exc), 422)
    _filing_limits(request).check(_address(request), [audit.digest(f"entry:{body.entry_id}") or ""])
    limit = get_settings().attachment_max_bytes
    try:
        filing = repair.file_repair(
            session,
            PUBLIC_ACTOR,
            entry_id=body.entry_id,
            identifier_type=body.identifier.type.value,
            identifier_value=body.identifier.value,
            commitment_accepted=body.commitment_accepted,
            commitment_text=body.commitment_text,
            rectification=body.rectification,
            contact_email=body.contact_email,
            channel="public",
        )
        if proof is not None and proof.filename:
            attachments.add_attachment(
                session,
                PUBLIC_ACTOR,
                "repair",
                filing.case,
                filename=proof.filename,
                declared_type=proof.content_type,
                data=proof.file.read(limit + 1),
            )
    except NotFound:
        session.rollback()
        errors = {"identifier": "no published entry with this id has a subject with this identifier"}
        return _repair_form(request, form, errors, 422)
    except Problem as exc:
        session.rollback()
        errors = {e.get("field") or "form": e.get("message", "") for e in (exc.errors or [])} or {
            "form": exc.detail
        }
        return _repair_form(request, form, errors, exc.status)
    return render(
        request,
        "public/filed.html",
        status_code=201,
        kind="repair",
        tracking=filing.case.tracking_number,
        secret=filing.secret,
        due=filing.case.decide_due_on,
    )


# --- report (举报) -----------------------------------------------------------------------------------------


def _enterprises(session: Session) -> list[Organisation]:
    """The enterprises a report may name as the one it concerns."""
    return org_service.active_organisations(session, (OrgKind.enterprise.value,))


@router.get("/public/report")
def report_form(request: Request, session: Session = DB, _: Principal = public_page()) -> Response:
    return render(
        request,
        "public/report.html",
        form={},
        errors={},
        enterprises=_enterprises(session),
        behaviours=catalogues().behaviours,
        id_types=[t.value for t in IdentifierType],
    )


@router.post("/public/report")
def report_submit(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    description: str = Form(""),
    name: str = Form(""),
    shop: str = Form(""),
    account: str = Form(""),
    platform: str = Form(""),
    identifier_type: str = Form(""),
    identifier_value: str = Form(""),
    behaviours: list[str] = Form(default_factory=list),
    enterprise_org_id: str = Form(""),
    contact_email: str = Form(""),
) -> Response:
    form = {
        "description": description,
        "name": name,
        "shop": shop,
        "account": account,
        "platform": platform,
        "identifier_type": identifier_type,
        "identifier_value": identifier_value,
        "behaviours": behaviours,
        "enterprise_org_id": enterprise_org_id,
        "contact_email": contact_email,
    }
    reported: dict[str, Any] = {
        k: v.strip()
        for k, v in (("name", name), ("shop", shop), ("account", account), ("platform", platform))
        if v.strip()
    }  # fmt: skip
    if identifier_value.strip():
        reported["identifiers"] = [{"type": identifier_type, "value": identifier_value}]
    errors: dict[str, str] = {}
    try:
        body = ReportIn.model_validate(
            {
                "description": description,
                "reported": reported,
                "behaviours": behaviours,
                "enterprise_org_id": enterprise_org_id or None,
                "contact_email": contact_email.strip() or None,
            }
        )
    except ValidationError as exc:
        errors = _validation_messages(exc)
        body = None
    if body is not None:
        targets = [audit.digest(t) or t for t in _report_targets(body)]
        _filing_limits(request).check(_address(request), targets)
        try:
            filing = reports.file_report(
                session,
                PUBLIC_ACTOR,
                description=body.description,
                reported=body.reported.model_dump(mode="json"),
                behaviours=body.behaviours,
                enterprise_org_id=body.enterprise_org_id,
                contact_email=body.contact_email,
                channel="public",
            )
        except Problem as exc:
            session.rollback()
            errors = {e.get("field") or "form": e.get("message", "") for e in (exc.errors or [])} or {
                "form": exc.detail
            }
        else:
            return render(
                request,
                "public/filed.html",
                status_code=201,
                kind="report",
                tracking=filing.case.tracking_number,
                secret=filing.secret,
                due=None,
            )
    return render(
        request,
        "public/report.html",
        status_code=422,
        form=form,
        errors=errors,
        enterprises=_enterprises(session),
        behaviours=catalogues().behaviours,
        id_types=[t.value for t in IdentifierType],
    )
