"""Routes of the blacklist registry: submission, review, evidence, change feed, information service."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile, status
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.blacklist import bulk
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn, EntryOut, RejectIdentifierIn
from fanchaoxin.blacklist.uploads import UploadError, parse_upload
from fanchaoxin.core import audit, idempotency, permissions, vault
from fanchaoxin.core.audit import canonical_json
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.errors import Forbidden, NotFound, Problem, ValidationProblem
from fanchaoxin.core.identifiers import IdentifierError, IdentifierType, mask, mask_person_name, normalise
from fanchaoxin.core.permissions import REVIEWERS as REVIEWERS
from fanchaoxin.core.permissions import allow_participant, may_reveal
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.orgs import budget as budgets
from fanchaoxin.orgs.decision_log import DecisionLogWriter, LogRecord
from fanchaoxin.subjects import service as subjects
from fanchaoxin.subjects.models import LiableLink

router = APIRouter(prefix="/v1", tags=["blacklist"])

# Who may call what: core.permissions (REVIEWERS is imported from here by workflows.views).
SUBMITTERS = permissions.SUBMITTERS
READERS = permissions.ENTRY_READERS


def _subject_as_submitted(entry: Entry) -> dict[str, Any]:
    sent = entry.submitted_subject or {}
    personal = subjects.is_personal(sent["kind"])
    return {
        "id": None,
        "kind": sent["kind"],
        "name": mask_person_name(sent["name"]) if personal else sent["name"],
        "identifiers": [
            {"type": i["type"], "value": mask(i["type"], i["value"]) if personal else i["value"]}
            for i in sent["identifiers"]
        ],
    }


def _proposed_out(session: Session, entry: Entry, *, reveal: bool) -> list[dict[str, Any]]:
    out = []
    for p in registry.proposed_of(session, [entry.id])[entry.id]:
        personal = subjects.is_personal(entry.subject.kind if p.party == "subject" else "individual")
        out.append(
            {
                "id": p.id,
                "party": p.party,
                "subject_id": p.subject_id,
                "type": p.type,
                "value": p.value if (reveal or not personal) else mask(p.type, p.value),
                "status": p.status,
                "reason": p.reason,
                "decided_by": p.decided_by,
                "decided_at": p.decided_at,
            }
        )
    return out


def _liable_out(
    session: Session, entry: Entry, principal: Principal, *, reveal: bool
) -> list[dict[str, Any]]:
    """The persons the submission names to be listed with the unit, for the reviewer deciding on it.

    Before publication no linked entry exists yet: the reviewer reads them from the submission's links.
    Names and identifiers are masked unless revealed (audited as the subject's are).
    """
    out = []
    for link in session.scalars(
        select(LiableLink).where(LiableLink.entry_id == entry.id).order_by(LiableLink.role, LiableLink.id)
    ):
        person = subjects.survivor(session, subjects.get_subject(session, link.person_id))
        if reveal:
            audit.record_pii_read(
                session,
                principal.actor,
                "subject",
                person.id,
                purpose=f"entry {entry.id} (liable person)",
                fields=sorted({i.type for i in person.identifiers} | {"name"}),
            )
        out.append(
            {
                "role": link.role,
                "subject_id": person.id,
                "name": person.name if reveal else mask_person_name(person.name),
                "identifiers": subjects.identifiers_out(person, reveal=reveal),
            }
        )
    return out


def entry_out(
    session: Session, entry: Entry, principal: Principal, *, reveal: bool = False, detail: bool = False
) -> EntryOut:
    if reveal and not may_reveal(principal):
        raise Forbidden("Only a platform reviewer may see plain personal identifiers")
    subject = entry.subject
    personal = subjects.is_personal(subject.kind)
    if reveal and personal:
        offered = {p.type for p in registry.proposed_of(session, [entry.id])[entry.id]} if detail else set()
        audit.record_pii_read(
            session,
            principal.actor,
            "subject",
            subject.id,
            purpose=f"entry {entry.id}",
            fields=sorted({i.type for i in subject.identifiers} | offered | {"name"}),
        )
    owner_or_platform = principal.is_platform or principal.org_id == entry.owner_org_id
    if registry.shows_as_submitted(entry, principal):
        shown = _subject_as_submitted(entry)
    else:
        shown = {
            "id": subject.id,
            "kind": subject.kind,
            "name": subject.name if (reveal or not personal) else mask_person_name(subject.name),
            "identifiers": subjects.identifiers_out(subject, reveal=reveal),
        }
    data: dict[str, Any] = {
        "id": entry.id,
        "status": entry.status,
        "version": entry.version,
        "subject": shown,
        "behaviours": entry.behaviours,
        "role": entry.role,
        "services": entry.services,
        "severity": entry.severity,
        "basis": entry.basis,
        "document_number": entry.document_number,
        "issuing_authority": entry.issuing_authority,
        "document_date": entry.document_date,
        "occurred_from": entry.occurred_from,
        "occurred_to": entry.occurred_to,
        # The facts may describe people and business secrets: the reporter and the platform only.
        "facts": entry.facts if owner_or_platform else None,
        "reporting_org_id": entry.owner_org_id,
        "parent_entry_id": entry.parent_entry_id,
        "liable_role": entry.liable_role,
        "submitted_at": entry.submitted_at,
        "notice_ends_on": entry.notice_ends_on,
        "published_at": entry.published_at,
        "min_end_on": entry.min_end_on,
        "max_end_on": entry.max_end_on,
        "ended_at": entry.ended_at,
        "end_reason": entry.end_reason,
    }
    if detail:
        data["linked_entry_ids"] = [e.id for e in registry.linked_entries(session, entry)]
        if owner_or_platform:
            data["timeline"] = [
                {
                    "from_status": t.from_status,
                    "to_status": t.to_status,
                    "action": t.action,
                    "actor": t.actor,
                    "reason": t.reason,
                    "at": t.at,
                }
                for t in entry.transitions
            ]
            data["evidence"] = [
                {"digest": e.digest, "filename": e.filename, "media_type": e.media_type, "size": e.size}
                for e in entry.evidence
            ]
        if principal.is_platform:
            # The reviewer's to settle; to a submitter they would tell of subjects it may not know.
            data["proposed_identifiers"] = _proposed_out(session, entry, reveal=reveal)
            data["resolution_conflicts"] = list(entry.resolution_conflicts or [])
        if principal.role in REVIEWERS:
            data["liable_persons"] = _liable_out(session, entry, principal, reveal=reveal)
    return EntryOut.model_validate(data)


@router.post(
    "/entries",
    response_model=EntryOut,
    status_code=status.HTTP_201_CREATED,
    summary="Submit one entry (status submitted); repeat-safe with Idempotency-Key",
)
def submit_entry(
    body: EntryIn,
    response: Response,
    session: Session = DB,
    principal: Principal = allow(*SUBMITTERS),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Any:
    key = idempotency.check_key(idempotency_key)
    assert principal.org_id is not None
    req_hash = idempotency.request_hash("POST /v1/entries", canonical_json(body.model_dump(mode="json")))
    previous = idempotency.replay(session, principal.org_id, key, req_hash)
    if previous is not None:
        response.status_code = previous.status_code
        response.headers["Idempotent-Replayed"] = "true"
        return previous.body
    entry = registry.submit(session, principal.actor, principal.org_id, body)
    out = entry_out(session, entry, principal, detail=True)
    idempotency.remember(session, principal.org_id, key, req_hash, 201, out.model_dump(mode="json"))
    return out


class EntryPageOut(ResponseModel):
    entries: list[EntryOut]
    next_cursor: str | None


@router.get("/entries", response_model=EntryPageOut, summary="Entries the caller may see")
def list_entries(
    session: Session = DB,
    principal: Principal = allow(*READERS),
    status_: str | None = Query(None, alias="status"),
    severity: str | None = None,
    behaviour: str | None = None,
    basis: str | None = None,
    subject_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> EntryPageOut:
    page = registry.list_entries(
        session,
        principal,
        status=status_,
        severity=severity,
        behaviour=behaviour,
        basis=basis,
        subject_id=subject_id,
        cursor=cursor,
        limit=limit,
    )
    return EntryPageOut(
        entries=[entry_out(session, e, principal) for e in page.entries], next_cursor=page.next_cursor
    )


@router.get("/entries/{entry_id}", response_model=EntryOut, summary="One entry with its timeline")
def get_entry(
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = allow(*READERS),
    reveal: bool = Query(False, description="Plain personal identifiers (reviewers only; audited)."),
) -> EntryOut:
    entry = registry.get_entry(session, entry_id, principal)
    return entry_out(session, entry, principal, reveal=reveal, detail=True)


@router.post(
    "/entries/{entry_id}/proposed-identifiers/{proposal_id}/reject",
    response_model=EntryOut,
    summary="Keep one identifier a submission proposed from joining its subject (before publication)",
)
def reject_proposed_identifier(
    entry_id: uuid.UUID,
    proposal_id: uuid.UUID,
    body: RejectIdentifierIn,
    session: Session = DB,
    principal: Principal = allow(*REVIEWERS),
) -> EntryOut:
    entry = registry.get_entry_for_update(session, entry_id)
    registry.reject_proposed(
        session, principal.actor, entry, proposal_id, reason=body.reason, expected_version=body.version
    )
    return entry_out(session, entry, principal, detail=True)


class EvidenceOut(ResponseModel):
    digest: str = Field(
        description="The file's content address: the hex digest of its bytes under the platform's "
        "crypto profile (`international` or `gm`, see docs/crypto.md); the download URL and ETag name it"
    )
    filename: str
    media_type: str
    size: int


@router.post(
    "/evidence/{entry_id}",
    response_model=EvidenceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Attach an evidence file (PDF, image, text); stored by its digest (the crypto profile's)",
)
def add_evidence(
    entry_id: uuid.UUID,
    file: UploadFile = File(...),
    session: Session = DB,
    principal: Principal = allow(*SUBMITTERS),
) -> EvidenceOut:
    entry = registry.get_entry(session, entry_id, principal)
    if not (principal.is_platform or entry.owner_org_id == principal.org_id):
        raise NotFound(f"No entry with id {entry_id}")
    data = file.file.read()
    ev = registry.add_evidence(
        session,
        principal.actor,
        entry,
        filename=file.filename or "evidence",
        declared_type=file.content_type,
        data=data,
    )
    return EvidenceOut.model_validate(ev)


@router.get("/evidence/{entry_id}/{digest}", summary="Download an evidence file (reporter and platform)")
def get_evidence(
    entry_id: uuid.UUID,
    digest: str,
    session: Session = DB,
    principal: Principal = allow(*permissions.EVIDENCE_READERS),
) -> Response:
    ev, blob = registry.read_evidence(session, principal, entry_id, digest)
    return Response(
        blob.data,
        media_type=blob.media_type,
        headers={"Content-Disposition": f'attachment; filename="{ev.digest}"', "ETag": f'"{ev.digest}"'},
    )


class LookupSubjectOut(ResponseModel):
    id: uuid.UUID
    kind: str
    name: str
    identifiers: list[dict[str, str]]
    entries: list[EntryOut]


class LookupOut(ResponseModel):
    subjects: list[LookupSubjectOut]


class LookupIn(StrictModel):
    type: str | None = Field(None, description="Identifier type, with value.")
    value: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, min_length=2, max_length=200)
    purpose: str | None = Field(
        None, min_length=1, max_length=200, description="Why you look this subject up (decision log)."
    )
    limit: int = Field(20, ge=1, le=100)


# The GET form puts identifiers in URLs (and so in access logs and proxies): kept until the next minor
# version, announced by the Deprecation, Sunset and Link headers (RFC 9745, RFC 8594, RFC 8288).
LOOKUP_SUNSET = "Wed, 30 Jun 2027 00:00:00 GMT"
LOOKUP_DEPRECATION_HEADERS = {
    "Deprecation": "true",
    "Sunset": LOOKUP_SUNSET,
    "Link": '</v1/lookup>; rel="successor-version"; title="POST /v1/lookup with a JSON body"',
}


@router.post(
    "/lookup",
    response_model=LookupOut,
    tags=["information service"],
    summary="Basic information and published entries of a subject, by identifier or name (信息查询)",
)
def lookup(
    body: LookupIn,
    request: Request,
    session: Session = DB,
    principal: Principal = allow_participant(*READERS),
) -> LookupOut:
    """The identifier travels in the body, never in the URL. Each look-up draws one identifier on the
    organisation's budget (429 with `Retry-After` over quota; 403 while suspended for a suspected
    sweep) and is one decision-log record with the identifier's keyed digest and `purpose`."""
    return _lookup(
        request, session, principal, body.type, body.value, body.name, body.limit, body.purpose, "body"
    )


@router.get(
    "/lookup",
    response_model=LookupOut,
    tags=["information service"],
    deprecated=True,
    summary="Deprecated: use POST /v1/lookup (identifiers do not belong in URLs)",
)
def lookup_by_get(
    request: Request,
    response: Response,
    session: Session = DB,
    principal: Principal = allow_participant(*READERS),
    type_: str | None = Query(None, alias="type", description="Identifier type, with value."),
    value: str | None = Query(None),
    name: str | None = Query(None, min_length=2, max_length=200),
    limit: int = Query(20, ge=1, le=100),
    purpose: str | None = Query(None, min_length=1, max_length=200),
) -> LookupOut:
    """Answers as `POST /v1/lookup` does, metered and logged the same, with `Deprecation: true`,
    `Sunset` and a `Link` to the POST form."""
    response.headers.update(LOOKUP_DEPRECATION_HEADERS)
    try:
        return _lookup(request, session, principal, type_, value, name, limit, purpose, "query")
    except Problem as exc:
        exc.headers = {**LOOKUP_DEPRECATION_HEADERS, **exc.headers}
        raise


def _lookup(
    request: Request,
    session: Session,
    principal: Principal,
    type_: str | None,
    value: str | None,
    name: str | None,
    limit: int,
    purpose: str | None,
    where: str,
) -> LookupOut:
    if name is None and (type_ is None or value is None):
        raise ValidationProblem(
            "Give an identifier (type and value) or a name",
            errors=[{"in": where, "field": "value", "type": "missing", "message": "type+value or name"}],
        )
    found: list[Any] = []
    query_detail: dict[str, Any]
    pair: tuple[str, str] | None = None
    if type_ is not None and value is not None:
        try:
            itype = IdentifierType(type_)
            canonical = normalise(itype, value)
        except ValueError as exc:
            rule = getattr(exc, "rule", "enum")
            field = "value" if isinstance(exc, IdentifierError) else "type"
            raise ValidationProblem(
                str(exc), errors=[{"in": where, "field": field, "type": rule, "message": str(exc)}]
            ) from exc
        pair = (itype.value, canonical)
    app = request.app
    budget: budgets.Budget = app.state.budget
    org_id = principal.org_id
    metered = budgets.metered(principal) and org_id is not None
    if metered and org_id is not None:
        budgets.learn_if_new(budget, app.state.db, org_id, app.state.settings)
        budget.charge_plain(org_id, 1)
    digests: list[str] = []
    if pair is not None:
        subject = subjects.find_by_identifiers(session, [pair]).get(pair)
        found = [subject] if subject is not None else []
        digests = [vault.identifier_index(*pair)]
        # The query value itself may be personal data: the log keeps its digest only.
        query_detail = {"by": pair[0], "value_digest": audit.digest(f"{pair[0]}:{pair[1]}")}
    else:
        found = subjects.search_by_name(session, name or "", limit=limit)
        query_detail = {"by": "name", "value_digest": audit.digest(name)}
    out = []
    entry_ids: list[str] = []
    for subject in found:
        # Published and disputed entries are shared with every participant: no tenant filter needed —
        # but a department sees only the lists that reach departments (never the market-shared list).
        in_force = registry.entries_in_force(session, subject.id)
        entries = [e for e in in_force if registry.sees_list(principal, e)]
        if not entries:
            continue
        entry_ids.extend(str(e.id) for e in entries)
        personal = subjects.is_personal(subject.kind)
        out.append(
            LookupSubjectOut(
                id=subject.id,
                kind=subject.kind,
                name=mask_person_name(subject.name) if personal else subject.name,
                identifiers=subjects.identifiers_out(subject, reveal=False),
                entries=[entry_out(session, e, principal) for e in entries],
            )
        )
    if metered and org_id is not None and pair is not None and not out:
        # An identifier that answers nothing is a miss: a sweep of them trips the enumeration alarm.
        budget.observe_misses(org_id, [pair], key_prefix=principal.key_prefix)
    audit.record_read(
        session, principal.actor, "lookup", "subject", "-", detail={**query_detail, "results": len(out)}
    )
    if org_id is not None:
        writer: DecisionLogWriter = app.state.decision_log
        writer.submit(
            [
                LogRecord(
                    org_id=org_id,
                    key_id=principal.key_id,
                    kind="lookup",
                    digests=digests,
                    identifier_count=len(digests),
                    purpose=purpose,
                    verdict="found" if out else "none",
                    entry_ids=sorted(entry_ids),
                )
            ]
        )
    return LookupOut(subjects=out)


class UploadOut(ResponseModel):
    batch_id: uuid.UUID
    format: str
    encoding: str | None
    total_rows: int
    accepted: int
    rejected_rows: int
    all_or_nothing: bool
    errors: list[dict[str, Any]]


@router.post(
    "/uploads",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    tags=["blacklist"],
    summary="Bulk submission: CSV (UTF-8/GBK), XLSX or JSON Lines, up to 100,000 rows, with a per-row report",
)
def upload_entries(
    response: Response,
    file: UploadFile = File(...),
    all_or_nothing: bool = Query(False, description="Accept nothing if any row has an error."),
    session: Session = DB,
    principal: Principal = allow(*SUBMITTERS),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Any:

    key = idempotency.check_key(idempotency_key)
    assert principal.org_id is not None
    content = file.file.read()
    req_hash = idempotency.request_hash("POST /v1/uploads", str(all_or_nothing), content)
    previous = idempotency.replay(session, principal.org_id, key, req_hash)
    if previous is not None:
        response.status_code = previous.status_code
        response.headers["Idempotent-Replayed"] = "true"
        return previous.body
    try:
        parsed = parse_upload(content, filename=file.filename, media_type=file.content_type)
    except UploadError as exc:
        field = getattr(exc, "field", None) or "file"
        row = getattr(exc, "row", None)
        raise ValidationProblem(
            str(exc),
            errors=[{"in": "body", "field": field, "row": row, "type": "upload", "message": str(exc)}],
        ) from exc
    result = bulk.submit_batch(
        session,
        principal.actor,
        principal.org_id,
        parsed.entries,
        filename=file.filename or "upload",
        file_format=parsed.format,
        content=content,
        total_rows=parsed.total_rows,
        row_errors=[e.as_dict() for e in parsed.errors],
        all_or_nothing=all_or_nothing,
    )
    out = UploadOut(
        batch_id=result.batch.id,
        format=parsed.format,
        encoding=parsed.encoding,
        total_rows=parsed.total_rows,
        accepted=result.batch.accepted,
        rejected_rows=result.batch.rejected_rows,
        all_or_nothing=all_or_nothing,
        errors=result.errors,
    )
    code = 201 if result.batch.accepted else 422
    response.status_code = code
    idempotency.remember(session, principal.org_id, key, req_hash, code, out.model_dump(mode="json"))
    return out
