"""Public pages of the console (no sign-in), as 信用中国 users expect them: one search box, a record page
per published entry (公示信息), guides to objection (异议) and credit repair (信用修复), and the forms —
objection, repair, report (举报) — that take their record from the record page.

Only the public 失信 list is ever shown here (lists.yaml, `core.catalogue.shown_publicly`): entries on an
administrative penalty or a judicial decision, of a published severity. Enterprise findings form the
market-shared list of the participating enterprises and never appear on a public page — not in the
search, not on a record page, not in the statistics, not in the correction notices.

The search (公示查询, `blacklist.public_search`) is never an oracle for personal data: names are matched
only among the public list's units; a natural person is found only by an identifier together with their
full name (as 信用中国 asks name and ID number of individuals). A person not listed and a person whose name
was not given or does not match get the same answer, word for word. The search is a POST, so nothing
searched lands in a URL or an access log, and it is rate-limited per address.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, notices, remedies, repair, reports
from fanchaoxin.appeals import corrections as correction_notices
from fanchaoxin.appeals.models import CorrectionNotice
from fanchaoxin.appeals.ratelimit import PublicLimits, TokenBuckets
from fanchaoxin.appeals.schemas import ObjectionIn, RepairIn, ReportIn
from fanchaoxin.appeals.views import _report_targets
from fanchaoxin.blacklist import public_search
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console import log_proofs
from fanchaoxin.console.auth import public_page
from fanchaoxin.console.common import console_router, listed_name
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.problems import describe, form_errors
from fanchaoxin.console.web import locale_of, render
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.catalogue import catalogues, shown_publicly
from fanchaoxin.core.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    Problem,
    TooManyRequests,
    UnsupportedMediaType,
)
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, normalise
from fanchaoxin.core.logs import mask_text
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
CASE_PROOFS = ("objection", "repair")  # the confirmations that carry the entry's inclusion proof
_lock = threading.Lock()

MAX_QUERY = 200

# What the page calls each field when it names one in an error.
FIELD = {
    "q": N_("Name or identifier"),
    "full_name": N_("Full name (for a natural person)"),
    "entry_id": N_("Record"),
    "reference": N_("Notice number or entry number"),
    "identifier": N_("Identifier"),
    "grounds": N_("Grounds"),
    "contact_email": N_("E-mail"),
    "contact_phone": N_("Mobile number"),
    "files": N_("Attachments"),
    "commitment_text": N_("Credit commitment"),
    "commitment_accepted": N_("Credit commitment"),
    "rectification": N_("What was put right"),
    "description": N_("What happened"),
    "reported": N_("Who is reported"),
    "behaviours": N_("Behaviours"),
    "enterprise_org_id": N_("Where it happened"),
    "form": "",
}

# The steps of an entry the public is shown in its history (公示信息的状态变化); review, notice and
# rejection happen before publication and are not public.
PUBLIC_EVENT = {
    Action.publish.value: N_("Published on the public list"),
    Action.dispute.value: N_("Objection filed: marked as disputed"),
    Action.resolve_dispute.value: N_("Objection decided: the record stands (corrected where needed)"),
    Action.revoke.value: N_("Revoked"),
    Action.expire.value: N_("Ended: the publication period is over"),
    Action.repair.value: N_("Ended: credit repair approved"),
}

NOT_PROVEN = N_(
    "No record with this number has a subject with this identifier: check the number and the identifier."
)
NO_REFERENCE = N_("Enter the notice number or the entry number you were given.")
NO_RECORD = N_(
    "No public record was found at this address. Search for the record and open it from the results."
)
BAD_PHONE = N_("Enter a mainland mobile number: 11 digits starting with 1.")
SHORT_NAME = N_("Enter at least two characters of the name, besides words such as 有限公司.")
TOO_LONG = N_("At most 200 characters.")
TOO_LARGE = N_("{name} is larger than {size}.")
WRONG_TYPE = N_("{name} is not a PDF, an image or a text file.")
TOO_MANY = N_("At most {n} files.")


def size_text(n: int) -> str:
    """A size as people read it (10 MB, 512 KB), never in bytes."""
    if n >= 1024 * 1024:
        value, unit = n / (1024 * 1024), "MB"
    elif n >= 1024:
        value, unit = n / 1024, "KB"
    else:
        return f"{n} B"
    return f"{value:.0f} {unit}" if value == int(value) or value >= 10 else f"{value:.1f} {unit}"


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


def _field(key: str) -> str:
    """The form field an error path names: `identifier.value` → `identifier`, `reported.x` → `reported`."""
    head = key.split(".")[0] if key else "form"
    return head if head in FIELD else "form"


def _errors_in(locale: str, errors: dict[str, str]) -> dict[str, str]:
    """Errors keyed by the form's own fields, in the page's language (one message per field)."""
    _ = translator(locale)
    out: dict[str, str] = {}
    for key, message in errors.items():
        field = _field(key)
        out.setdefault(field, _(message))
    return out


def _validation_errors(request: Request, exc: ValidationError) -> dict[str, str]:
    return _errors_in(locale_of(request), form_errors(exc, locale_of(request)))


def _problem_errors(request: Request, exc: Problem) -> dict[str, str]:
    text = describe(exc, locale_of(request))
    fields = {_field(k): m for k, m in text.by_field.items() if m}
    return fields or {"form": " ".join(text.messages) or text.title}


def _file_error(request: Request, exc: Problem, filename: str) -> dict[str, str]:
    """An attachment refused, in words: its name and the limit in KB/MB."""
    _ = translator(locale_of(request))
    s = get_settings()
    if isinstance(exc, PayloadTooLarge):
        return {"files": _(TOO_LARGE).format(name=filename, size=size_text(s.attachment_max_bytes))}
    if isinstance(exc, UnsupportedMediaType):
        return {"files": _(WRONG_TYPE).format(name=filename)}
    if isinstance(exc, Conflict):
        return {"files": _(TOO_MANY).format(n=s.attachment_max_count)}
    return _problem_errors(request, exc)


def _phone(value: str) -> str | None:
    """The mobile number in its canonical form (core.identifiers' phone rules); raises on a bad one."""
    value = value.strip()
    return normalise(IdentifierType.phone, value) if value else None


def _upload_limits() -> dict[str, Any]:
    s = get_settings()
    return {"max_bytes": s.attachment_max_bytes, "max_size": size_text(s.attachment_max_bytes),
            "max_files": s.attachment_max_count}  # fmt: skip


def _attach(
    session: Session, case_type: str, case: Any, files: list[UploadFile]
) -> tuple[str, Problem] | None:
    """Store the filer's files on the case (appeals.attachments: checked by content and size); the first
    file refused and why, if one is (the caller rolls the whole filing back)."""
    limit = get_settings().attachment_max_bytes
    for upload in files:
        if upload.filename:
            try:
                attachments.add_attachment(
                    session,
                    PUBLIC_ACTOR,
                    case_type,
                    case,
                    filename=upload.filename,
                    declared_type=upload.content_type,
                    data=upload.file.read(limit + 1),
                )
            except Problem as exc:
                return upload.filename, exc
    return None


# --- what the public sees of an entry ---------------------------------------------------------------------


def is_public_entry(e: Entry) -> bool:
    """Whether the public pages show this entry in force (公示): on the public 失信 list (its basis,
    `public_bases()`: bases.yaml ``list`` → lists.yaml ``public``), and of a severity that is published
    (severities.yaml ``public``: a minor case never is)."""
    return shown_publicly(e.basis, e.severity)


def public_entry(e: Entry, remedy: remedies.Remedies | None = None) -> dict[str, Any]:
    """What anyone may see of an entry in force in a list of results: no reporter, masked personal data
    — and the subject's remedies (objection, credit repair): possible now, or from which day."""
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


def _public_record(session: Session, entry_id: str | uuid.UUID) -> Entry | None:
    """The entry behind a record page, if the public may see it now (in force, on the public list)."""
    try:
        eid = entry_id if isinstance(entry_id, uuid.UUID) else uuid.UUID(str(entry_id).strip())
    except ValueError:
        return None
    entry = session.get(Entry, eid)
    if entry is None or not public_search.is_public(entry):
        return None
    return entry


def _public_facts(entry: Entry) -> str:
    """The facts as published: resident IDs, phones and e-mails in them masked (`core.logs`), and a
    natural person's own name masked where the text gives it."""
    text = mask_text(entry.facts or "")
    if subjects.is_personal(entry.subject.kind) and entry.subject.name.strip():
        text = text.replace(entry.subject.name.strip(), listed_name(entry.subject))
    return text


def _authority(session: Session, entry: Entry) -> str:
    """认定部门: the authority that issued the decision; the reporting organisation when none is named."""
    if entry.issuing_authority:
        return entry.issuing_authority
    org = session.get(Organisation, entry.owner_org_id)
    return org.name if org is not None else ""


def record_view(session: Session, entry: Entry) -> dict[str, Any]:
    """A record page's content (公示信息): the facts, who decided, the document, the dates, the public
    steps of its history, and the subject's remedies now."""
    subject = entry.subject
    possible = remedies.remedies_of(session, [entry], today=china_today())[entry.id]
    history = [
        {"at": t.at, "event": PUBLIC_EVENT[t.action]} for t in entry.transitions if t.action in PUBLIC_EVENT
    ]
    return {
        "id": entry.id,
        "subject": {
            "kind": subject.kind,
            "personal": subjects.is_personal(subject.kind),
            "name": listed_name(subject),
            "identifiers": subjects.identifiers_out(subject, reveal=False),
        },
        "status": entry.status,
        "behaviours": entry.behaviours,
        "role": entry.role,
        "liable_role": entry.liable_role,
        "severity": entry.severity,
        "basis": entry.basis,
        "facts": _public_facts(entry),
        "authority": _authority(session, entry),
        "document_number": entry.document_number,
        "document_date": entry.document_date,
        "occurred_from": entry.occurred_from,
        "occurred_to": entry.occurred_to,
        "published_at": entry.published_at,
        "max_end_on": entry.max_end_on,
        "repair_from": remedies.repair_possible_from(entry),
        "objection": possible.objection,
        "repair": possible.repair,
        "history": history,
        "proof_types": [t.value for t in catalogues().subject_kinds[subject.kind].identifiers],
    }


# --- the search box -----------------------------------------------------------------------------------


def _confirmed(subject: Subject, by_identifier: bool, full_name: str) -> bool:
    """Whether the search may show this subject: a unit always; a natural person only when found by an
    identifier and the full name given matches theirs. A name search never lists a person."""
    if not subjects.is_personal(subject.kind):
        return True
    if not by_identifier or not full_name:
        return False
    return name_key(full_name) == name_key(subject.name)


def _query_page(
    request: Request,
    q: str,
    kind: str,
    results: list[dict[str, Any]] | None,
    errors: list[str],
    full_name: str = "",
    more: bool = False,
) -> Response:
    template = "public/results.html" if request.headers.get("hx-request") else "public/query.html"
    return render(
        request,
        template,
        # An identifier searched for is not written back into the page (as on the "who looked me up"
        # form): a page must not hold a plain resident ID or phone (#14). A name is.
        q=q if kind == "name" else "",
        kind=kind,
        full_name=full_name,
        results=results,
        errors=errors,
        more=more,
        limit=public_search.LIMIT,
    )


@router.get("/public")
def query_form(request: Request, _: Principal = public_page()) -> Response:
    """The empty search box: a search is a POST, so searched names and identifiers stay out of logs."""
    return _query_page(request, "", "name", None, [])


@router.post("/public")
def query(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    q: str = Form(""),
    full_name: str = Form(""),
) -> Response:
    q, full_name = q.strip(), full_name.strip()
    if not q:
        return _query_page(request, q, "name", None, [], full_name)
    _query_limit(request)
    locale = locale_of(request)
    t = translator(locale)
    colon = "：" if locale == "zh_CN" else ": "
    read = public_search.read_query(q[: MAX_QUERY + 1])
    errors: list[str] = []
    found: list[tuple[Subject, bool]] = []
    more = False
    if len(q) > MAX_QUERY or len(full_name) > MAX_QUERY:
        field = "q" if len(q) > MAX_QUERY else "full_name"
        errors = [f"{t(FIELD[field])}{colon}{t(TOO_LONG)}"]
    elif read.code_error is not None:
        err = read.code_error
        errors = [f"{t(FIELD['q'])}{colon}{err.message_zh if locale == 'zh_CN' else err.message}"]
    else:
        pairs = [(i.type.value, i.value) for i in read.identifiers]
        by_id = subjects.find_by_identifiers(session, pairs) if pairs else {}
        found = [(s, True) for s in dict.fromkeys(by_id.values())]
        if read.as_name:
            if len(public_search.name_words(q)) < public_search.MIN_NAME_CHARS and not found:
                errors = [f"{t(FIELD['q'])}{colon}{t(SHORT_NAME)}"]
            else:
                named, more = public_search.search_names(session, q)
                seen = {s.id for s, _by in found}
                found += [(s, False) for s in named if s.id not in seen]
    results: list[dict[str, Any]] = []
    today = china_today()
    for subject, by_identifier in found:
        # A person not listed and a person not confirmed take the same path to the same empty answer.
        if not _confirmed(subject, by_identifier, full_name):
            continue
        shown = public_search.public_entries_of(session, subject.id)
        if not shown:
            continue
        possible = remedies.remedies_of(session, shown, today=today)
        results.append(
            {
                "kind": subject.kind,
                "name": listed_name(subject),
                "identifiers": subjects.identifiers_out(subject, reveal=False),
                "entries": [public_entry(e, possible[e.id]) for e in shown],
            }
        )
    # The query may itself be personal data: the log keeps its digest only.
    audit.record_read(
        session, PUBLIC_ACTOR, "public_query", "subject", "-",
        detail={
            "by": read.kind, "value_digest": audit.digest(f"{read.kind}:{q}"), "with_name": bool(full_name),
            "results": len(results),
        },
    )  # fmt: skip
    return _query_page(request, q, read.kind, None if errors else results, errors, full_name, more)


# --- the record page and the guides ---------------------------------------------------------------------


@router.get("/public/records/{entry_id}")
def record_page(
    request: Request, entry_id: str, session: Session = DB, _: Principal = public_page()
) -> Response:
    """公示信息: one published entry of the public list, with the links to object or to apply for repair."""
    entry = _public_record(session, entry_id)
    if entry is None:
        return render(request, "public/record.html", status_code=404, record=None)
    return render(
        request,
        "public/record.html",
        record=record_view(session, entry),
        log_proof=log_proofs.proof_section(session, entry.id),
    )


def _log_proof_download(session: Session, entry_id: uuid.UUID, name: str) -> Response:
    """The entry's inclusion proof as a file; a 404 when it has none or the log cannot give one now."""
    doc = log_proofs.proof_or_none(session, entry_id)
    if doc is None:
        raise NotFound("This record has no inclusion proof in the transparency log now")
    return log_proofs.proof_response(doc, name)


@router.get("/public/records/{entry_id}/log-proof.json")
def record_log_proof(entry_id: str, session: Session = DB, _: Principal = public_page()) -> Response:
    """透明日志收录证明 of a public record: what `docs/verify_log.py` checks."""
    entry = _public_record(session, entry_id)
    if entry is None:
        raise NotFound("No public record has this number")
    return _log_proof_download(session, entry.id, str(entry.id))


def _guide_facts() -> dict[str, Any]:
    """The numbers the guides state, from the settings and the catalogue (never written into a page)."""
    s = get_settings()
    cat = catalogues()
    return {
        "severities": [sev for code, sev in cat.severities.items() if sev.public],
        "dispute_days": s.objection_dispute_working_days,
        "decide_days": s.objection_decide_working_days,
        "forward_days": s.objection_forward_working_days,
        "answer_days": s.objection_answer_working_days,
        "after_answer_days": s.objection_decide_after_answer_working_days,
        "repair_days": s.repair_decide_working_days,
        "commitment_months": s.commitment_term_months,
        **_upload_limits(),
    }


@router.get("/public/guide/objection")
def objection_guide(request: Request, _: Principal = public_page()) -> Response:
    """异议指南: who may object, with what, and how long each step takes."""
    return render(request, "public/guide_objection.html", g=_guide_facts())


@router.get("/public/guide/repair")
def repair_guide(request: Request, _: Principal = public_page()) -> Response:
    """信用修复指南: when repair is possible, what to submit, how long the decision takes."""
    return render(request, "public/guide_repair.html", g=_guide_facts())


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
    return render(request, "public/corrections.html", notices=notices, log_key=log_proofs.key_facts())


@router.get("/public/corrections/{notice_id}/log-proof.json")
def correction_log_proof(notice_id: str, session: Session = DB, _: Principal = public_page()) -> Response:
    """The inclusion proof of a corrected (revoked) entry, from its correction notice (更正公告)."""
    try:
        notice = session.get(CorrectionNotice, uuid.UUID(notice_id.strip()))
    except ValueError:
        notice = None
    if notice is None:
        raise NotFound("No correction notice has this number")
    return _log_proof_download(session, notice.entry_id, str(notice.id))


def _filed(request: Request, session: Session, kind: str, filing: Any, due: Any) -> Response:
    return render(
        request,
        "public/filed.html",
        status_code=201,
        kind=kind,
        tracking=filing.case.tracking_number,
        secret=filing.secret,
        due=due,
        # an objection or a repair is about a listed entry; a report names no entry of the list
        log_proof=log_proofs.proof_section(session, filing.case.entry_id) if kind in CASE_PROOFS else None,
    )


def _file_case(
    request: Request,
    session: Session,
    kind: str,
    form: dict[str, Any],
    entry_id: str,
    reference: str,
    contact_phone: str,
    files: list[UploadFile],
    validated: Callable[[uuid.UUID], Any],
    filed: Callable[[Any], Any],
) -> Response:
    """An objection or a repair application filed from the public form: the record it is about (from its
    page, or by the notice's or entry's number), the form checked, the filer's proof of identity, the
    files attached — all stored, or nothing, every problem said at its field."""
    page = f"public/{kind}.html"
    found = _public_record(session, entry_id) if entry_id else None
    record = record_view(session, found) if found is not None else None
    meant = _entry_meant(session, entry_id, reference)
    if meant is None:
        return _unmeant(request, page, form, reference)
    errors: dict[str, str] = {}
    try:
        body = validated(meant)
    except ValidationError as exc:
        errors = _validation_errors(request, exc)
        body = None
    try:
        phone = _phone(contact_phone)
    except IdentifierError:
        errors["contact_phone"] = translator(locale_of(request))(BAD_PHONE)
    if body is None or errors:
        return _case_form(request, page, record, form, errors, 422)
    _filing_limits(request).check(_address(request), [audit.digest(f"entry:{body.entry_id}") or ""])
    try:
        filing = filed(body)
        if phone:
            filing.case.contact_phone = phone
        refused = _attach(session, kind, filing.case, files)
    except NotFound:
        session.rollback()
        errors = {"identifier": translator(locale_of(request))(NOT_PROVEN)}
        return _case_form(request, page, record, form, errors, 422)
    except Problem as exc:
        session.rollback()
        return _case_form(request, page, record, form, _problem_errors(request, exc), exc.status)
    if refused is not None:
        session.rollback()
        errors = _file_error(request, refused[1], refused[0])
        return _case_form(request, page, record, form, errors, refused[1].status)
    return _filed(request, session, kind, filing, filing.case.decide_due_on)


# --- objection (异议) ---------------------------------------------------------------------------------------


def _form_start(session: Session, entry: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A form opened from a record page (?entry=): the record if it is public, shown with the form;
    otherwise nothing of it is shown, and what was given is kept as the number the filer goes by."""
    found = _public_record(session, entry) if entry else None
    if found is not None:
        record = record_view(session, found)
        return record, {"identifier_type": record["proof_types"][0]}
    return None, {"reference": entry}


def _entry_meant(session: Session, entry_id: str, reference: str) -> uuid.UUID | None:
    """Which entry a filing is about: the record page's (hidden `entry_id`), or, for a record that is not
    public (the shared list, a minor case), the number the subject was told — its notice number (告知书编号)
    or its entry number. None when neither names one; the filing's proof decides the rest, and an unknown
    number reads exactly like a wrong identifier."""
    for value in (entry_id.strip(), reference.strip()):
        if not value:
            continue
        notice = notices.by_number(session, value) if value.upper().startswith("GZ") else None
        if notice is not None:
            return notice.entry_id
        try:
            return uuid.UUID(value)
        except ValueError:
            continue
    return None


def _case_form(
    request: Request,
    template: str,
    record: dict[str, Any] | None,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    return render(
        request,
        template,
        status_code=status_code,
        record=record,
        proof_types=record["proof_types"] if record else [t.value for t in IdentifierType],
        form=form,
        errors=_errors_in(locale_of(request), errors),
        fields=FIELD,
        **_upload_limits(),
    )


def _unmeant(request: Request, page: str, form: dict[str, Any], reference: str) -> Response:
    """No entry named: ask for the number; a number that names nothing reads exactly like a wrong
    identifier (the same field, words and status), and costs a token like a filing, so that notice
    numbers cannot be tried at speed."""
    if not reference.strip():
        return _case_form(request, page, None, form, {"reference": NO_REFERENCE}, 422)
    _filing_limits(request).check(_address(request), [audit.digest(f"ref:{reference.strip().upper()}") or ""])
    return _case_form(request, page, None, form, {"identifier": NOT_PROVEN}, 422)


@router.get("/public/objection")
def objection_form(
    request: Request, session: Session = DB, _: Principal = public_page(), entry: str = ""
) -> Response:
    """The objection form of one record: opened from the record page (?entry=), never by a typed id."""
    record, form = _form_start(session, entry)
    return _case_form(request, "public/objection.html", record, form, {})


@router.post("/public/objection")
def objection_submit(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    entry_id: str = Form(""),
    reference: str = Form(""),
    identifier_type: str = Form(""),
    identifier_value: str = Form(""),
    grounds: str = Form(""),
    contact_email: str = Form(""),
    contact_phone: str = Form(""),
    files: list[UploadFile] = File(default_factory=list),
) -> Response:
    """An objection (异议) to a published record, with its supporting files: all stored, or nothing."""
    form = {"identifier_type": identifier_type, "grounds": grounds, "contact_email": contact_email,
            "contact_phone": contact_phone, "reference": reference}  # fmt: skip

    def validated(meant: uuid.UUID) -> ObjectionIn:
        return ObjectionIn.model_validate(
            {
                "entry_id": str(meant),
                "identifier": {"type": identifier_type, "value": identifier_value},
                "grounds": grounds,
                "contact_email": contact_email.strip(),
            }
        )

    def filed(body: ObjectionIn) -> Any:
        return due_process.file_objection(
            session, PUBLIC_ACTOR, entry_id=body.entry_id, identifier_type=body.identifier.type.value,
            identifier_value=body.identifier.value, grounds=body.grounds, contact_email=body.contact_email,
            channel="public",
        )  # fmt: skip

    return _file_case(
        request, session, "objection", form, entry_id, reference, contact_phone, files, validated, filed
    )


# --- credit repair (信用修复) -------------------------------------------------------------------------------


@router.get("/public/repair")
def repair_form(
    request: Request, session: Session = DB, _: Principal = public_page(), entry: str = ""
) -> Response:
    """The credit repair application of one record, opened from the record page (?entry=)."""
    record, form = _form_start(session, entry)
    return _case_form(request, "public/repair.html", record, form, {})


@router.post("/public/repair")
def repair_submit(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    entry_id: str = Form(""),
    reference: str = Form(""),
    identifier_type: str = Form(""),
    identifier_value: str = Form(""),
    commitment_accepted: bool = Form(False),
    commitment_text: str = Form(""),
    rectification: str = Form(""),
    contact_email: str = Form(""),
    contact_phone: str = Form(""),
    proof: list[UploadFile] = File(default_factory=list),
) -> Response:
    """An application for credit repair with its credit commitment and the proof of rectification."""
    form = {
        "identifier_type": identifier_type,
        "commitment_accepted": commitment_accepted,
        "commitment_text": commitment_text,
        "rectification": rectification,
        "contact_email": contact_email,
        "contact_phone": contact_phone,
        "reference": reference,
    }

    def validated(meant: uuid.UUID) -> RepairIn:
        return RepairIn.model_validate(
            {
                "entry_id": str(meant),
                "identifier": {"type": identifier_type, "value": identifier_value},
                "commitment_accepted": commitment_accepted,
                "commitment_text": commitment_text,
                "rectification": rectification,
                "contact_email": contact_email.strip(),
            }
        )

    def filed(body: RepairIn) -> Any:
        return repair.file_repair(
            session, PUBLIC_ACTOR, entry_id=body.entry_id, identifier_type=body.identifier.type.value,
            identifier_value=body.identifier.value, commitment_accepted=body.commitment_accepted,
            commitment_text=body.commitment_text, rectification=body.rectification,
            contact_email=body.contact_email, channel="public",
        )  # fmt: skip

    return _file_case(
        request, session, "repair", form, entry_id, reference, contact_phone, proof, validated, filed
    )


# --- report (举报) -----------------------------------------------------------------------------------------


def _enterprises(session: Session) -> list[Organisation]:
    """The enterprises a report may name as the one it concerns."""
    return org_service.active_organisations(session, (OrgKind.enterprise.value,))


def _report_page(
    request: Request,
    session: Session,
    form: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    record: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "public/report.html",
        status_code=status_code,
        form=form,
        errors=_errors_in(locale_of(request), errors),
        fields=FIELD,
        record=record,
        enterprises=_enterprises(session),
        behaviours=catalogues().behaviours,
        id_types=[t.value for t in IdentifierType],
        **_upload_limits(),
    )


@router.get("/public/report")
def report_form(
    request: Request, session: Session = DB, _: Principal = public_page(), entry: str = ""
) -> Response:
    """The report form; opened from a unit's record page, it names that unit already."""
    form: dict[str, Any] = {}
    found = _public_record(session, entry) if entry else None
    record = None
    if found is not None and not subjects.is_personal(found.subject.kind):
        record = record_view(session, found)
        form["name"] = found.subject.name
        first = next(iter(found.subject.identifiers), None)
        if first is not None:
            form["identifier_type"], form["identifier_value"] = first.type, first.value
    return _report_page(request, session, form, {}, record=record)


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
    contact_phone: str = Form(""),
    files: list[UploadFile] = File(default_factory=list),
) -> Response:
    """A report (举报) with its screenshots or documents; the reporter's identity is kept confidential."""
    form = {
        "description": description,
        "name": name,
        "shop": shop,
        "account": account,
        "platform": platform,
        "identifier_type": identifier_type,
        "behaviours": behaviours,
        "enterprise_org_id": enterprise_org_id,
        "contact_email": contact_email,
        "contact_phone": contact_phone,
    }
    reported: dict[str, Any] = {
        k: v.strip()
        for k, v in (("name", name), ("shop", shop), ("account", account), ("platform", platform))
        if v.strip()
    }  # fmt: skip
    if identifier_value.strip():
        itype = identifier_type
        if not itype:
            # "Detect" (the default): the first identifier type whose rules the value passes.
            read = public_search.read_query(identifier_value)
            itype = read.identifiers[0].type.value if read.identifiers else IdentifierType.uscc.value
        reported["identifiers"] = [{"type": itype, "value": identifier_value}]
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
        errors = _validation_errors(request, exc)
        body = None
    try:
        phone = _phone(contact_phone)
    except IdentifierError:
        errors["contact_phone"] = translator(locale_of(request))(BAD_PHONE)
    if body is None or errors:
        return _report_page(request, session, form, errors, 422)
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
        if phone:
            filing.case.contact_phone = phone
        refused = _attach(session, "report", filing.case, files)
    except Problem as exc:
        session.rollback()
        return _report_page(request, session, form, _problem_errors(request, exc), exc.status)
    if refused is not None:
        session.rollback()
        return _report_page(
            request, session, form, _file_error(request, refused[1], refused[0]), refused[1].status
        )
    return _filed(request, session, "report", filing, None)
